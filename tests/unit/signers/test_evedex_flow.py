"""EVEDEX ``flow``: SIWE login, proactive refresh, 401 -> single-flight refresh + one replay.

``send`` drives the simulated venue in-process (``httpx.ASGITransport``); it can answer a
path with canned replies first, standing in for a venue that rejects or fails. The sim
verifies SIWE, tokens and EIP-712 signatures independently of ``proxy.signers``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from proxy.clock import FakeClock
from proxy.errors import CredentialsUnavailable, UpstreamUnreachable
from proxy.messages import Credentials, OutgoingRequest, UpstreamReply
from proxy.signers.base import SignContext
from proxy.signers.evedex.signer import EvedexSigner
from proxy.sim.evedex import EvedexSim, create_app
from tests import vectors

TRADING, AUTH = "http://trading.evedex.test", "http://auth.evedex.test"
KEY: str = vectors.vector("evedex", "siwe_login")["inputs"]["private_key"]
ADDRESS: str = vectors.vector("evedex", "siwe_login")["inputs"]["address"]
OTHER_KEY = "0x" + "11" * 32
CREDS = Credentials({"wallet_private_key": KEY})
ACCESS_TTL_S, REFRESH_TTL_S, LEEWAY_S = 300, 3600, 30
UNAUTHORIZED = UpstreamReply(401, (("content-type", "application/json"),), b'{"message":"Unauthorized"}')


class SimSend:
    """The pipeline's ``send``, against the sim; records ``(request, reply)`` pairs."""

    def __init__(self, sim: EvedexSim, client: httpx.AsyncClient) -> None:
        self.sim, self.client = sim, client
        self.calls: list[tuple[OutgoingRequest, UpstreamReply]] = []
        self.canned: dict[str, list[UpstreamReply]] = {}  # path -> replies served before the sim's

    async def __call__(self, request: OutgoingRequest) -> UpstreamReply:
        await asyncio.sleep(0)  # real I/O yields here; ASGITransport alone would not interleave
        canned = self.canned.get(request.path)
        reply = canned.pop(0) if canned else await self._forward(request)
        self.calls.append((request, reply))
        return reply

    async def _forward(self, request: OutgoingRequest) -> UpstreamReply:
        url = (request.origin or TRADING) + request.target
        response = await self.client.request(
            request.method, url, headers=list(request.headers), content=request.body
        )
        return UpstreamReply(response.status_code, tuple(response.headers.items()), response.content)

    def steps(self) -> list[str]:
        return [f"{r.method} {r.origin or TRADING}{r.path} {reply.status}" for r, reply in self.calls]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()  # 2023-11-14T22:13:20Z, the SIWE vector's issuedAt


@pytest.fixture
def sim(clock: FakeClock) -> EvedexSim:
    keys = {ADDRESS: {"wallet_private_key": KEY}, "other": {"wallet_private_key": OTHER_KEY}}
    return create_app(keys, clock, access_ttl_s=ACCESS_TTL_S, refresh_ttl_s=REFRESH_TTL_S)


@pytest.fixture
async def send(sim: EvedexSim) -> AsyncIterator[SimSend]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim)) as client:
        yield SimSend(sim, client)


@pytest.fixture
def signer() -> EvedexSigner:
    return EvedexSigner({"auth_upstream": AUTH, "refresh_leeway_s": LEEWAY_S})


def _ctx(clock: FakeClock, account: str = "main") -> SignContext:
    return SignContext("evedex", account, int(clock.now() * 1000))


async def _get(
    signer: EvedexSigner, send: SimSend, clock: FakeClock, creds: Credentials = CREDS, account: str = "main"
) -> UpstreamReply:
    return await signer.flow(OutgoingRequest("GET", "/api/user/me"), creds, _ctx(clock, account), send)


LOGIN = [f"GET {AUTH}/auth/nonce 200", f"POST {AUTH}/auth/user/sign-up 200"]
ME = f"GET {TRADING}/api/user/me 200"
REFRESH = f"POST {AUTH}/auth/refresh 200"


# --- login and token reuse -------------------------------------------------------------------


async def test_first_request_logs_in_then_reuses_the_token(
    signer: EvedexSigner, send: SimSend, sim: EvedexSim, clock: FakeClock
) -> None:
    first = await _get(signer, send, clock)
    clock.advance(ACCESS_TTL_S - LEEWAY_S - 1)
    second = await _get(signer, send, clock)
    assert (first.status, second.status) == (200, 200)
    assert json.loads(second.body) == {"wallet": ADDRESS}
    assert send.steps() == [*LOGIN, ME, ME]
    assert sim.logins == 1 and sim.refreshes == 0


async def test_login_sends_the_sdk_sign_up(signer: EvedexSigner, send: SimSend, clock: FakeClock) -> None:
    await _get(signer, send, clock)
    nonce_reply = json.loads(send.calls[0][1].body)
    sign_up, _ = send.calls[1]
    body = json.loads(sign_up.body)
    assert list(body) == ["wallet", "message", "nonce", "signature"]
    assert body["wallet"] == ADDRESS and body["nonce"] == nonce_reply["nonce"]
    template = vectors.vector("evedex", "siwe_login")["message"]
    assert body["message"] == template.replace("A1b2C3d4E5f6G7h8", nonce_reply["nonce"])
    assert sign_up.header("content-type") == "application/json"
    assert sign_up.origin == AUTH


async def test_proactive_refresh_just_before_expiry(
    signer: EvedexSigner, send: SimSend, sim: EvedexSim, clock: FakeClock
) -> None:
    await _get(signer, send, clock)
    clock.advance(ACCESS_TTL_S - LEEWAY_S)
    reply = await _get(signer, send, clock)
    assert reply.status == 200
    assert send.steps() == [*LOGIN, ME, REFRESH, ME]  # no 401 was ever needed
    refresh, _ = send.calls[3]
    assert refresh.body == b""
    assert (refresh.header("authorization") or "").startswith("Bearer ")
    assert sim.refreshes == 1


async def test_clock_skew_does_not_change_when_tokens_are_renewed(
    signer: EvedexSigner, clock: FakeClock
) -> None:
    venue_clock = FakeClock(start=clock.now() + 200)  # the venue runs 200 s ahead (SIWE still passes)
    sim = create_app({ADDRESS: {"wallet_private_key": KEY}}, venue_clock, access_ttl_s=ACCESS_TTL_S)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim)) as client:
        send = SimSend(sim, client)
        await _get(signer, send, clock)
        for seconds in (ACCESS_TTL_S - LEEWAY_S - 1, 1):
            clock.advance(seconds)
            venue_clock.advance(seconds)
            await _get(signer, send, clock)
    # Judged by its raw exp the token would look valid until 470 s, 170 s after the venue
    # expired it; its 300 s lifetime counts from receipt: renewed at 270 s, no 401.
    assert send.steps() == [*LOGIN, ME, ME, REFRESH, ME]


async def test_expired_refresh_token_goes_straight_to_login(
    signer: EvedexSigner, send: SimSend, sim: EvedexSim, clock: FakeClock
) -> None:
    await _get(signer, send, clock)
    clock.advance(REFRESH_TTL_S)
    await _get(signer, send, clock)
    assert send.steps() == [*LOGIN, ME, *LOGIN, ME]
    assert sim.logins == 2


# --- 401: refresh once, replay once ----------------------------------------------------------


async def test_401_refreshes_once_and_replays_the_same_request(
    signer: EvedexSigner, send: SimSend, sim: EvedexSim, clock: FakeClock
) -> None:
    await _get(signer, send, clock)
    send.canned["/api/v2/order/limit"] = [UNAUTHORIZED]
    order = vectors.vector("evedex", "eip712_limit")["inputs"]["order"]
    request = OutgoingRequest("POST", "/api/v2/order/limit", body=json.dumps(order).encode())
    reply = await signer.flow(request, CREDS, _ctx(clock), send)
    assert reply.status == 200
    assert send.steps()[3:] == [
        f"POST {TRADING}/api/v2/order/limit 401",
        REFRESH,
        f"POST {TRADING}/api/v2/order/limit 200",
    ]
    (first, _), (replay, _) = send.calls[3], send.calls[5]
    assert replay.body == first.body  # signed once, replayed byte for byte
    assert replay.header("authorization") != first.header("authorization")
    assert sim.refreshes == 1 and signer.replay_rejections == 0


async def test_refresh_refused_falls_back_to_login(
    signer: EvedexSigner, send: SimSend, sim: EvedexSim, clock: FakeClock
) -> None:
    await _get(signer, send, clock)
    send.canned = {"/api/user/me": [UNAUTHORIZED], "/auth/refresh": [UNAUTHORIZED]}
    reply = await _get(signer, send, clock)
    assert reply.status == 200
    assert send.steps()[3:] == [f"GET {TRADING}/api/user/me 401", f"POST {AUTH}/auth/refresh 401", *LOGIN, ME]
    assert sim.logins == 2


@pytest.mark.parametrize("garbled", [b"{}", b"not json", b'{"token": {"accessToken": "a"}}'])
async def test_unreadable_refresh_answer_falls_back_to_login(
    signer: EvedexSigner, send: SimSend, sim: EvedexSim, clock: FakeClock, garbled: bytes
) -> None:
    await _get(signer, send, clock)
    send.canned = {"/api/user/me": [UNAUTHORIZED], "/auth/refresh": [UpstreamReply(200, (), garbled)]}
    assert (await _get(signer, send, clock)).status == 200
    assert send.steps()[4:] == [REFRESH, *LOGIN, ME]
    assert sim.logins == 2


async def test_second_401_is_returned_as_is_and_counted(
    signer: EvedexSigner, send: SimSend, sim: EvedexSim, clock: FakeClock
) -> None:
    await _get(signer, send, clock)
    again = UpstreamReply(401, (("x-venue", "1"),), b'{"message":"Unauthorized","code":"replayed"}')
    send.canned["/api/user/me"] = [UNAUTHORIZED, again]
    reply = await _get(signer, send, clock)
    assert reply is again
    assert send.steps()[3:] == [f"GET {TRADING}/api/user/me 401", REFRESH, f"GET {TRADING}/api/user/me 401"]
    assert sim.refreshes == 1 and signer.replay_rejections == 1


async def test_other_venue_errors_pass_through_without_retry(
    signer: EvedexSigner, send: SimSend, clock: FakeClock
) -> None:
    await _get(signer, send, clock)
    forbidden = UpstreamReply(403, (), b'{"message":"Forbidden"}')
    send.canned["/api/user/me"] = [forbidden]
    assert await _get(signer, send, clock) is forbidden
    assert len(send.calls) == 4


# --- single flight -----------------------------------------------------------------------------


async def test_50_concurrent_requests_on_an_expired_token_refresh_once(
    signer: EvedexSigner, send: SimSend, sim: EvedexSim, clock: FakeClock
) -> None:
    await _get(signer, send, clock)
    clock.advance(ACCESS_TTL_S + 1)
    replies = await asyncio.gather(*(_get(signer, send, clock) for _ in range(50)))
    assert [r.status for r in replies] == [200] * 50
    assert sim.refreshes == 1 and sim.logins == 1


async def test_50_concurrent_401s_cause_exactly_one_refresh(
    signer: EvedexSigner, send: SimSend, sim: EvedexSim, clock: FakeClock
) -> None:
    await _get(signer, send, clock)
    stale = _ctx(clock)  # the proxy still believes the token is fresh (clock skew) ...
    clock.advance(ACCESS_TTL_S + 1)  # ... the venue has expired it
    request = OutgoingRequest("GET", "/api/user/me")
    replies = await asyncio.gather(*(signer.flow(request, CREDS, stale, send) for _ in range(50)))
    assert [r.status for r in replies] == [200] * 50
    statuses = [reply.status for _, reply in send.calls[3:]]
    assert statuses.count(401) == 50 and statuses.count(200) == 51  # 50 replays + 1 refresh
    assert sim.refreshes == 1 and sim.logins == 1 and signer.replay_rejections == 0


async def test_50_concurrent_first_requests_log_in_once(
    signer: EvedexSigner, send: SimSend, sim: EvedexSim, clock: FakeClock
) -> None:
    replies = await asyncio.gather(*(_get(signer, send, clock) for _ in range(50)))
    assert [r.status for r in replies] == [200] * 50
    assert sim.logins == 1


# --- sessions: per account, per wallet -----------------------------------------------------------


async def test_one_session_per_account(
    signer: EvedexSigner, send: SimSend, sim: EvedexSim, clock: FakeClock
) -> None:
    for account in ("main", "hedge", "main", "hedge"):
        assert (await _get(signer, send, clock, account=account)).status == 200
    assert sim.logins == 2


async def test_rotated_wallet_key_logs_in_again(
    signer: EvedexSigner, send: SimSend, sim: EvedexSim, clock: FakeClock
) -> None:
    await _get(signer, send, clock)
    rotated = Credentials({"wallet_private_key": OTHER_KEY}, version=2)
    reply = await _get(signer, send, clock, creds=rotated)
    assert reply.status == 200
    assert json.loads(reply.body)["wallet"] != ADDRESS  # the new wallet's session, not the old
    assert send.steps()[3:] == [*LOGIN, ME]


# --- failures of the auth API ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "reply", "detail"),
    [
        ("/auth/nonce", UpstreamReply(503, (), b"down"), "evedex login failed: nonce answered 503"),
        ("/auth/nonce", UpstreamReply(200, (), b'{"nonce": ""}'), "evedex login failed: unreadable nonce"),
        ("/auth/user/sign-up", UpstreamReply(500, (), b"{}"), "evedex login failed: sign-up answered 500"),
        ("/auth/user/sign-up", UpstreamReply(401, (), b"{}"), "evedex login failed: sign-up answered 401"),
        ("/auth/user/sign-up", UpstreamReply(200, (), b'{"user": {}}'), "unreadable sign-up answer"),
    ],
)
async def test_login_failures_make_credentials_unavailable(
    signer: EvedexSigner, send: SimSend, clock: FakeClock, path: str, reply: UpstreamReply, detail: str
) -> None:
    send.canned[path] = [reply]
    with pytest.raises(CredentialsUnavailable, match=detail):
        await _get(signer, send, clock)
    assert send.sim.recorder.count(path="/api/user/me") == 0  # nothing unauthenticated went out
    assert (await _get(signer, send, clock)).status == 200  # the session is not poisoned


async def test_refresh_failure_makes_credentials_unavailable(
    signer: EvedexSigner, send: SimSend, clock: FakeClock
) -> None:
    await _get(signer, send, clock)
    send.canned["/auth/refresh"] = [UpstreamReply(502, (), b"<html>bad gateway</html>")]
    clock.advance(ACCESS_TTL_S)
    with pytest.raises(CredentialsUnavailable, match="evedex login failed: refresh answered 502"):
        await _get(signer, send, clock)


async def test_unreachable_auth_api_makes_credentials_unavailable(
    signer: EvedexSigner, clock: FakeClock
) -> None:
    async def unreachable(request: OutgoingRequest) -> UpstreamReply:
        raise UpstreamUnreachable(f"cannot connect to {request.origin} (ClientConnectorError)")

    with pytest.raises(CredentialsUnavailable, match="nonce upstream_unreachable") as caught:
        await signer.flow(OutgoingRequest("GET", "/api/user/me"), CREDS, _ctx(clock), unreachable)
    assert caught.value.__cause__ is None


# --- orders through the flow, verified by the sim ---------------------------------------------

ORDER_VECTORS = [
    v
    for v in vectors.load("evedex")["vectors"]
    if v["name"].startswith("eip712_") and "replace" not in v["name"]
]


async def _post(
    signer: EvedexSigner, send: SimSend, clock: FakeClock, method: str, path: str, body: Any
) -> UpstreamReply:
    request = OutgoingRequest(method, path, (("authorization", "Bearer forged"),), json.dumps(body).encode())
    return await signer.flow(request, CREDS, _ctx(clock), send)


@pytest.mark.parametrize("vector", ORDER_VECTORS, ids=lambda v: v["name"])
async def test_signed_orders_are_accepted_by_the_sim(
    signer: EvedexSigner, send: SimSend, clock: FakeClock, vector: dict[str, Any]
) -> None:
    method, template = vector["endpoint"].split()[:2]
    order = vector["inputs"]["order"] | {"signature": "0xclient", "chainId": "1"}
    reply = await _post(signer, send, clock, method, template.format(**order), order)
    assert reply.status == 200, reply.body


async def test_replace_and_cancel_through_the_flow(
    signer: EvedexSigner, send: SimSend, sim: EvedexSim, clock: FakeClock
) -> None:
    limit = vectors.vector("evedex", "eip712_limit")["inputs"]["order"]
    replace = {"quantity": "0.003", "limitPrice": "64000", "postOnly": True}
    order_path = "/api/order/00123%3A0123456789abcdef0123456789"
    assert (await _post(signer, send, clock, "POST", "/api/v2/order/limit", limit)).status == 200
    assert (await _post(signer, send, clock, "PUT", order_path + "/limit", replace)).status == 200
    assert sim.orders[limit["id"]]["limitPrice"] == "64000"
    cancel = await signer.flow(OutgoingRequest("DELETE", order_path), CREDS, _ctx(clock), send)
    assert cancel.status == 200
    opened = await signer.flow(OutgoingRequest("GET", "/api/order/opened"), CREDS, _ctx(clock), send)
    assert json.loads(opened.body)["count"] == 0


async def test_mass_limit_through_the_flow(
    signer: EvedexSigner, send: SimSend, sim: EvedexSim, clock: FakeClock
) -> None:
    limit = vectors.vector("evedex", "eip712_limit")["inputs"]["order"]
    batch = [limit | {"id": f"00123:{i:026x}", "limitPrice": f"6500{i}.5"} for i in range(20)]
    reply = await _post(signer, send, clock, "POST", "/api/v2/order/mass-limit/BTCUSDT", batch)
    assert reply.status == 200, reply.body
    assert len(sim.orders) == 20


async def test_api_key_mode_needs_no_login(clock: FakeClock) -> None:
    sim = create_app({"k-1": {"api_key": "k-1", "wallet_private_key": KEY}}, clock)
    signer = EvedexSigner({"mode": "api_key"})
    creds = Credentials({"wallet_private_key": KEY, "api_key": "k-1"})
    limit = vectors.vector("evedex", "eip712_limit")["inputs"]["order"]
    request = OutgoingRequest("POST", "/api/v2/order/limit", body=json.dumps(limit).encode())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim)) as client:
        send = SimSend(sim, client)
        reply = await signer.flow(request, creds, _ctx(clock), send)
    assert reply.status == 200
    assert send.steps() == [f"POST {TRADING}/api/v2/order/limit 200"]
    assert sim.logins == 0


# --- secrets stay out of reprs -----------------------------------------------------------------


async def test_tokens_never_appear_in_reprs(signer: EvedexSigner, send: SimSend, clock: FakeClock) -> None:
    await _get(signer, send, clock)
    clock.advance(ACCESS_TTL_S)
    await _get(signer, send, clock)
    answers = [json.loads(reply.body) for request, reply in send.calls if request.path.startswith("/auth/")]
    tokens = [t for a in answers if "token" in a for t in a["token"].values()]
    assert len(tokens) == 4
    shown = [repr(signer), repr(signer._sessions), *(repr(r) + str(r) for r, _ in send.calls)]
    leaked = [t for t in tokens for text in shown if t in text or t.split(".")[2] in text]
    assert leaked == []
    assert KEY[2:] not in " ".join(shown)

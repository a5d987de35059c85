"""Stream logins: frames pinned to the independent vectors, reply handling, client frames."""

from __future__ import annotations

import asyncio
import gzip
import json
import zlib
from typing import Any

import httpx
import pytest
from eth_account import Account

from proxy.clock import FakeClock
from proxy.errors import SigningFailed
from proxy.messages import Credentials, OutgoingRequest, UpstreamReply
from proxy.signers import SIGNERS
from proxy.signers.coinex import CoinexSigner
from proxy.signers.evedex.signer import EvedexSigner
from proxy.signers.icrypex import IcrypexSigner
from proxy.sim.evedex import create_app as evedex_sim
from proxy.venue import Venue
from proxy.ws import coinex as coinex_ws
from proxy.ws.base import LoginFailed, StreamContext, Verdict
from proxy.ws.coinex import CoinexLogin, client_login_id, deflate, inflate
from proxy.ws.evedex import EvedexLogin, is_private
from proxy.ws.frames import Closed, Frame
from proxy.ws.icrypex import IcrypexLogin
from proxy.ws.logins import LOGINS, stream_config_problem
from tests import vectors


class ScriptedVenue:
    """Records what the login sends and answers from a script."""

    def __init__(self, *replies: Frame | Closed) -> None:
        self.sent: list[Frame] = []
        self.replies = list(replies)
        self.protocol = None

    async def receive(self) -> Frame | Closed:
        if not self.replies:
            await asyncio.Event().wait()  # a venue that never answers
        return self.replies.pop(0)

    async def send(self, frame: Frame) -> None:
        self.sent.append(frame)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        pass


async def _no_http(request: OutgoingRequest) -> UpstreamReply:
    raise AssertionError("no HTTP expected")


def _ctx(
    signer: Any, fields: dict[str, str], now_s: float, http: Any = _no_http, timeout: float = 1
) -> StreamContext:
    venue = Venue(signer.scheme, "http://venue.test", frozenset({"main"}), signer, "ws://venue.test")
    return StreamContext(venue, "main", Credentials(fields), FakeClock(now_s), http, timeout)


# --- CoinEx ---------------------------------------------------------------------------------

COINEX = vectors.vector("coinex", "ws_server_sign")
COINEX_FIELDS = {"api_key": COINEX["inputs"]["access_id"], "secret_key": COINEX["inputs"]["secret_key"]}
OK = {"id": 1, "code": 0, "message": "OK"}


def coinex_login() -> CoinexLogin:
    return CoinexLogin(_ctx(CoinexSigner(), COINEX_FIELDS, COINEX["inputs"]["timestamp_ms"] / 1000))


async def test_coinex_login_frame_is_the_vector() -> None:
    venue = ScriptedVenue(Frame(gzip.compress(json.dumps(OK).encode())))
    assert await coinex_login().login(venue) == []
    assert [json.loads(frame.data) for frame in venue.sent] == [COINEX["frame"]]
    assert venue.sent[0].is_text


@pytest.mark.parametrize("codec", ["gzip", "zlib", "deflate", "plain"])
async def test_coinex_reply_in_any_compression_and_frames_before_it_are_kept(codec: str) -> None:
    early = Frame(gzip.compress(b'{"method":"state.update","data":{},"id":null}'))
    reply = deflate(json.dumps(OK).encode(), codec)
    venue = ScriptedVenue(early, Frame(reply if codec != "plain" else reply.decode()))
    login = coinex_login()
    assert await login.login(venue) == [early]
    verdict = await login.from_client(Frame('{"method":"server.sign","params":{},"id":77}'))
    assert verdict.to_venue is None and verdict.dropped == "client server.sign"
    assert verdict.to_client is not None
    answer = verdict.to_client.data
    plain = answer.encode() if isinstance(answer, str) else (inflate(answer) or (b"", ""))[0]
    assert json.loads(plain) == {"id": 77, "code": 0, "message": "OK"}


@pytest.mark.parametrize(
    ("replies", "detail"),
    [
        (
            [Frame(gzip.compress(b'{"id":1,"code":21002,"message":"x"}'))],
            "answered server.sign with code 21002",
        ),
        ([Closed(1008, "no")], "closed the connection (1008) before answering server.sign"),
        ([], "no answer to server.sign within 0.05 s"),
        ([Frame(b"\x00garbage")] * 64, "no answer to server.sign within 64 frames"),
    ],
)
async def test_coinex_login_failures(replies: list[Frame | Closed], detail: str) -> None:
    login = CoinexLogin(_ctx(CoinexSigner(), COINEX_FIELDS, 1_700_000_000, timeout=0.05))
    with pytest.raises(LoginFailed) as failed:
        await login.login(ScriptedVenue(*replies))
    assert detail in failed.value.detail


@pytest.mark.parametrize(
    ("frame", "is_login", "request_id"),
    [
        ('{"method":"server.sign","params":{},"id":3}', True, 3),
        ('{"method":"server.sign","id":4,"method":"server.ping"}', True, 4),  # duplicate keys
        ('{"method":"server.sig\\u006e","id":5}', True, 5),  # escapes decode first
        ('{"method":"server.ping","id":6}', False, None),
        ('{"params":{"method":"server.sign"},"id":7}', True, 7),  # nested: dropped, to be safe
        ("server.sign", False, None),  # not JSON: the venue refuses it anyway
        (b"\xff\xfe", False, None),
    ],
)
def test_coinex_client_login_detection(frame: str | bytes, is_login: bool, request_id: Any) -> None:
    assert client_login_id(Frame(frame)) == (is_login, request_id)


def test_inflate_is_bounded() -> None:
    bomb = gzip.compress(b"{" + b" " * 10_000_000 + b"}")
    assert inflate(bomb) is None  # larger than MAX_REPLY_BYTES: not decompressed
    assert inflate(zlib.compress(b'{"a":1}')) == (b'{"a":1}', "zlib")
    assert coinex_ws.read_message(Frame(b"\x01\x02")) is None


# --- Icrypex --------------------------------------------------------------------------------

ICRYPEX = vectors.vector("icrypex", "ws_api_login")
ICRYPEX_FIELDS = {"api_key": ICRYPEX["inputs"]["api_key"], "secret_key": ICRYPEX["inputs"]["secret_base64"]}


def icrypex_login(timeout: float = 1) -> IcrypexLogin:
    signer = IcrypexSigner({"tolerance_ms": ICRYPEX["inputs"]["nonce_tolerance_ms"]})
    return IcrypexLogin(_ctx(signer, ICRYPEX_FIELDS, ICRYPEX["inputs"]["ts_ms"] / 1000, timeout=timeout))


async def test_icrypex_login_frame_is_the_vector() -> None:
    early = Frame('ticker|{"ps":"BTCTRY"}')
    venue = ScriptedVenue(early, Frame('api-auth|{"v":true}'))
    assert await icrypex_login().login(venue) == [early]
    assert venue.sent == [Frame(ICRYPEX["frame"])]


@pytest.mark.parametrize("reply", ['api-auth|{"v":false}', "api-auth|not json", 'api-auth|{"v":"true"}'])
async def test_icrypex_refused_login(reply: str) -> None:
    with pytest.raises(LoginFailed):
        await icrypex_login().login(ScriptedVenue(Frame(reply)))


@pytest.mark.parametrize(
    ("frame", "dropped"),
    [
        ('api-login|{"pk":"x"}', True),
        ('  Api-Login |{"pk":"x"}', True),
        (b'api-login|{"pk":"x"}', True),
        ('subscribe|{"c":"api-login","s":true}', False),
        ("api-login", False),  # no '|': not a message the venue reads as a login
        ("ping|{}", False),
    ],
)
async def test_icrypex_client_logins_are_dropped(frame: str | bytes, dropped: bool) -> None:
    verdict = await icrypex_login().from_client(Frame(frame))
    if dropped:
        assert verdict == Verdict(to_client=Frame('api-auth|{"v":true}'), dropped="client api-login")
    else:
        assert verdict == Verdict(to_venue=Frame(frame))


# --- EVEDEX ---------------------------------------------------------------------------------

WALLET = vectors.vector("evedex", "siwe_login")["inputs"]["private_key"]
ADDRESS = Account.from_key(WALLET).address
AUTH = "http://auth.evedex.test"


@pytest.mark.parametrize(
    ("channel", "private"),
    [
        ("futures-perp:order-123", True),
        ("futures-perp:order-fee-123", True),
        ("futures-perp-beta:transfer-update-1", True),
        ("futures-perp:orderBook-BTCUSDT-0.1", False),
        ("futures-perp:trade-BTCUSDT", False),
        ("futures-perp:recent-trade-BTCUSDT", False),
        ("user-5", True),
        ("futures-perp:info", False),
    ],
)
def test_private_channels(channel: str, private: bool) -> None:
    assert is_private(channel) is private


class EvedexWorld:
    def __init__(self, access_ttl_s: int = 300) -> None:
        self.clock = FakeClock()
        self.sim = evedex_sim(
            {ADDRESS: {"wallet_private_key": WALLET}}, self.clock, access_ttl_s=access_ttl_s
        )
        self.signer = EvedexSigner({"auth_upstream": AUTH})

    async def http(self, request: OutgoingRequest) -> UpstreamReply:
        transport = httpx.ASGITransport(app=self.sim)
        async with httpx.AsyncClient(transport=transport, base_url=AUTH) as client:
            response = await client.request(
                request.method, request.target, headers=list(request.headers), content=request.body
            )
        return UpstreamReply(response.status_code, (), response.content)

    def login(self) -> EvedexLogin:
        venue = Venue("evedex", AUTH, frozenset({"main"}), self.signer, "ws://evedex.test")
        creds = Credentials({"wallet_private_key": WALLET})
        return EvedexLogin(StreamContext(venue, "main", creds, self.clock, self.http, 1))

    def token_in(self, verdict: Verdict, line: int = 0) -> str:
        assert verdict.to_venue is not None
        command = json.loads(verdict.to_venue.text().split("\n")[line])
        return str(command["subscribe"]["data"]["accessToken"])


def _subscribe(channel: str, **body: Any) -> str:
    return json.dumps({"id": 2, "subscribe": {"channel": channel, **body}})


async def test_evedex_token_is_injected_and_verified_by_the_venue() -> None:
    world = EvedexWorld()
    verdict = await world.login().from_client(Frame(_subscribe(f"futures-perp:order-{ADDRESS}")))
    assert world.sim.access_token_wallet(world.token_in(verdict)) == ADDRESS


async def test_evedex_streams_share_one_single_flight_session() -> None:
    world = EvedexWorld()
    logins = [world.login() for _ in range(5)]
    frame = Frame(_subscribe(f"futures-perp:position-{ADDRESS}"))
    verdicts = await asyncio.gather(*(login.from_client(frame) for login in logins))
    assert len({world.token_in(v) for v in verdicts}) == 1
    assert world.sim.logins == 1


async def test_evedex_token_is_renewed_when_it_expires() -> None:
    world = EvedexWorld(access_ttl_s=120)
    login = world.login()
    frame = Frame(_subscribe(f"futures-perp:user-{ADDRESS}"))
    first = world.token_in(await login.from_client(frame))
    world.clock.advance(119)  # within the leeway of the 120 s token: renewed before use
    second = world.token_in(await login.from_client(frame))
    assert first != second and (world.sim.logins, world.sim.refreshes) == (1, 1)
    assert world.sim.access_token_wallet(second) == ADDRESS


async def test_evedex_batched_commands_are_rewritten_line_by_line() -> None:
    world = EvedexWorld()
    connect = '{"id": 1, "connect": {"name": "js"}}'
    private = _subscribe(f"futures-perp:order-{ADDRESS}", data={"accessToken": "FORGED"}, token="FORGED")
    public = _subscribe("futures-perp:trade-BTCUSDT", data={"accessToken": "FORGED"})
    verdict = await world.login().from_client(Frame("\n".join([connect, private, public])))
    assert verdict.to_venue is not None
    lines = verdict.to_venue.text().split("\n")
    assert lines[0] == connect  # untouched commands keep their bytes
    assert "FORGED" not in verdict.to_venue.text()
    assert json.loads(lines[2])["subscribe"]["data"] == {}
    assert world.sim.access_token_wallet(world.token_in(verdict, 1)) == ADDRESS


@pytest.mark.parametrize("frame", ["{}", "not json", '["subscribe"]', b"\xff\x00binary"])
async def test_evedex_other_frames_pass_unchanged(frame: str | bytes) -> None:
    assert await EvedexWorld().login().from_client(Frame(frame)) == Verdict(to_venue=Frame(frame))


async def test_evedex_api_key_mode_has_no_token() -> None:
    signer = EvedexSigner({"mode": "api_key"})
    with pytest.raises(SigningFailed):
        await signer.access_token(Credentials({"wallet_private_key": WALLET}), None, _no_http)  # type: ignore[arg-type]


# --- registry -----------------------------------------------------------------------------


def test_registry_and_startup_checks() -> None:
    assert set(LOGINS) == {"coinex", "icrypex", "evedex"}
    # The stream logins and the signers that say they have streams are the same set.
    assert set(LOGINS) == {scheme for scheme, signer in SIGNERS.items() if signer.streams}
    assert stream_config_problem("coinex", {}) is None
    assert stream_config_problem("evedex", {"mode": "jwt"}) is None
    assert "mode jwt" in (stream_config_problem("evedex", {"mode": "api_key"}) or "")
    assert "has no stream login" in (stream_config_problem("haqqex", {}) or "")

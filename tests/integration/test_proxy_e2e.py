"""The full pipeline over real sockets: real OpenBao, strict simulated venues, the proxy."""

from __future__ import annotations

import json

import httpx
import pytest

from proxy.dev.stack import LocalStack
from proxy.sim.base import SimResponse, json_response
from proxy.sim.samples import ORDERS as SAMPLE_ORDERS
from proxy.sim.samples import READS as SAMPLE_READS
from tests.integration.rawhttp import raw_request

pytestmark = pytest.mark.asyncio(loop_scope="session")

# One representative read and one order per HMAC venue (Invex and EVEDEX: their own file).
HMAC = ("coinex", "icrypex", "haqqex")
READS = {scheme: SAMPLE_READS[scheme] for scheme in HMAC}
ORDERS = {scheme: SAMPLE_ORDERS[scheme] for scheme in HMAC}
# Headers each scheme owns: a client sending them must never reach the venue with them.
FORGED = {
    "coinex": {"X-COINEX-KEY": "forged", "X-COINEX-SIGN": "forged", "X-COINEX-TIMESTAMP": "1"},
    "icrypex": {"ICX-API-KEY": "forged", "ICX-SIGN": "forged", "ICX-TS": "1", "ICX-NONCE": "1"},
    "haqqex": {"x-api-key": "forged", "x-api-sign": "forged", "x-api-timestamp": "1"},
}


def _accepted(scheme: str, response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    assert "x-signing-proxy-error" not in response.headers
    if scheme == "coinex":  # CoinEx answers auth failures with HTTP 200 and a non-zero code
        assert response.json()["code"] == 0, response.text


@pytest.fixture
async def http():
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


@pytest.mark.parametrize("scheme", sorted(READS))
async def test_signed_get_accepted(stack: LocalStack, http: httpx.AsyncClient, scheme: str) -> None:
    response = await http.get(stack.url(scheme, READS[scheme]), headers=stack.headers())
    _accepted(scheme, response)


@pytest.mark.parametrize("scheme", sorted(ORDERS))
async def test_signed_post_accepted(stack: LocalStack, http: httpx.AsyncClient, scheme: str) -> None:
    path, body = ORDERS[scheme]
    response = await http.post(stack.url(scheme, path), json=body, headers=stack.headers())
    _accepted(scheme, response)
    seen = stack.sims[scheme].recorder.requests[-1]
    assert json.loads(seen.body) == body  # the order arrived with its fields intact


async def test_query_forwarded_byte_for_byte(stack: LocalStack, http: httpx.AsyncClient) -> None:
    target = "/v2/spot/pending-order?market=BTCUSDT&market_type=SPOT&side=buy&page=1&limit=10&x=a%20b+c"
    response = await http.get(stack.url("coinex", target), headers=stack.headers())
    _accepted("coinex", response)
    assert stack.sims["coinex"].recorder.requests[-1].target == target


@pytest.mark.parametrize("scheme", sorted(FORGED))
async def test_forged_venue_headers_never_reach_the_venue(
    stack: LocalStack, http: httpx.AsyncClient, scheme: str
) -> None:
    headers = {**stack.headers(), **FORGED[scheme], "Authorization": "Bearer forged"}
    response = await http.get(stack.url(scheme, READS[scheme]), headers=headers)
    _accepted(scheme, response)
    seen = stack.sims[scheme].recorder.requests[-1]
    assert all(value != "forged" for _, value in seen.headers)
    assert "forged" not in json.dumps(seen.headers)
    assert seen.header("proxy-authorization") is None
    assert seen.header("authorization") is None


async def test_no_token_is_401_whatever_the_path(stack: LocalStack, http: httpx.AsyncClient) -> None:
    before = sum(len(s.recorder.requests) for s in stack.sims.values())
    for url in (
        stack.url("coinex", READS["coinex"]),
        f"{stack.proxy_url}/nope/none/x",
        f"{stack.proxy_url}/",
    ):
        response = await http.get(url)
        assert response.status_code == 401
        assert response.headers["x-signing-proxy-error"] == "unauthenticated"
        error = response.json()["error"]
        assert error["code"] == "unauthenticated" and error["request_id"] and error["message"]
    wrong = await http.get(
        stack.url("coinex", READS["coinex"]), headers={"Proxy-Authorization": "Bearer nope"}
    )
    assert wrong.status_code == 401
    assert sum(len(s.recorder.requests) for s in stack.sims.values()) == before


async def test_policy_denial_sends_nothing(stack: LocalStack, http: httpx.AsyncClient) -> None:
    sim = stack.sims["coinex"]
    before = len(sim.recorder.requests)
    response = await http.post(
        stack.url("coinex", "/v2/assets/withdraw"), json={"amount": "1"}, headers=stack.headers()
    )
    assert response.status_code == 403
    assert response.headers["x-signing-proxy-error"] == "policy_denied"
    assert "deny rule trader.deny[0]" in response.json()["error"]["message"]
    not_allowed = await http.post(
        stack.url("coinex", "/v2/spot/batch-order"), json={}, headers=stack.headers()
    )
    assert not_allowed.status_code == 403
    assert "no allow rule" in not_allowed.json()["error"]["message"]
    assert len(sim.recorder.requests) == before


@pytest.mark.parametrize(
    ("path", "code", "status"),
    [
        ("/nope/main/v2/x", "unknown_route", 404),
        ("/coinex/other/v2/x", "unknown_route", 404),
        ("/coinex/main/v2/../v2/assets/withdraw", "bad_request", 400),
        ("/coinex/main/v2/%2e%2e/assets/withdraw", "bad_request", 400),
        ("/coinex/main/v2//spot/order", "bad_request", 400),
        ("/coinex/main/v2/assets/%2fwithdraw", "bad_request", 400),
        ("http://evil.example/coinex/main/v2/assets/spot/balance", "bad_request", 400),
        # spellings a standard server routes to withdraw (docs/policies.md, "Paths"); GET /** is allowed
        ("/coinex/main/v2/assets/with%64raw", "bad_request", 400),
        ("/coinex/main/v2/assets/withdraw;x=1", "bad_request", 400),
        ("/coinex/main/v2/assets/WITHDRAW", "policy_denied", 403),
        ("/coinex/main/v2/assets/withdraw/", "policy_denied", 403),
    ],
)
async def test_route_errors(stack: LocalStack, path: str, code: str, status: int) -> None:
    # httpx would collapse '..' itself: send the raw target as an attacker would.
    before = sum(len(s.recorder.requests) for s in stack.sims.values())
    token = stack.clients["trader"].token
    head = f"GET {path} HTTP/1.1\r\nHost: proxy\r\nProxy-Authorization: Bearer {token}".encode()
    response = await raw_request(stack.proxy_url, head)
    assert response.status == status
    assert response.headers["x-signing-proxy-error"] == code
    assert response.json()["error"]["code"] == code
    assert sum(len(s.recorder.requests) for s in stack.sims.values()) == before


async def test_body_too_large(stack: LocalStack, http: httpx.AsyncClient) -> None:
    path, _ = ORDERS["coinex"]
    response = await http.post(
        stack.url("coinex", path), content=b"x" * (1_048_576 + 1), headers=stack.headers()
    )
    assert response.status_code == 413
    assert response.headers["x-signing-proxy-error"] == "body_too_large"


async def test_rate_limited_sends_nothing(stack: LocalStack, http: httpx.AsyncClient) -> None:
    sim = stack.sims["icrypex"]
    statuses = []
    before = len(sim.recorder.requests)
    for _ in range(4):
        response = await http.get(stack.url("icrypex", READS["icrypex"]), headers=stack.headers("tiny"))
        statuses.append(response.status_code)
    assert statuses[:2] == [200, 200] and statuses[2:] == [429, 429]
    assert response.headers["x-signing-proxy-error"] == "rate_limited"
    assert int(response.headers["retry-after"]) >= 1
    assert "client tiny" in response.json()["error"]["message"]
    assert len(sim.recorder.requests) == before + 2


async def test_missing_secret_field_names_the_field(stack: LocalStack, http: httpx.AsyncClient) -> None:
    stack.vault.put_secret("signing-proxy/coinex/incomplete", {"api_key": "only-the-key"})
    response = await http.get(
        stack.url("coinex", READS["coinex"], account="incomplete"), headers=stack.headers()
    )
    assert response.status_code == 503
    assert response.headers["x-signing-proxy-error"] == "credentials_unavailable"
    message = response.json()["error"]["message"]
    assert "coinex/incomplete" in message and "secret_key" in message
    assert "only-the-key" not in response.text


async def test_absent_secret(stack: LocalStack, http: httpx.AsyncClient) -> None:
    response = await http.get(
        stack.url("icrypex", READS["icrypex"], account="absent"), headers=stack.headers()
    )
    assert response.status_code == 503
    assert "icrypex/absent" in response.json()["error"]["message"]


async def test_upstream_unreachable(stack: LocalStack, http: httpx.AsyncClient) -> None:
    response = await http.get(stack.url("coinex-dead", READS["coinex"]), headers=stack.headers())
    assert response.status_code == 502
    assert response.headers["x-signing-proxy-error"] == "upstream_unreachable"


async def test_upstream_timeout_is_not_retried(stack: LocalStack, http: httpx.AsyncClient) -> None:
    sim = stack.sims["coinex"]
    sim.scripted.append(SimResponse(200, b"{}", delay_s=3))
    before = len(sim.recorder.requests)
    path, body = ORDERS["coinex"]
    response = await http.post(stack.url("coinex", path), json=body, headers=stack.headers())
    assert response.status_code == 504
    assert response.headers["x-signing-proxy-error"] == "upstream_timeout"
    assert len(sim.recorder.requests) == before + 1  # sent once, never re-sent


async def test_venue_errors_pass_through_unchanged(stack: LocalStack, http: httpx.AsyncClient) -> None:
    sim = stack.sims["coinex"]
    sim.scripted.append(
        json_response(503, {"code": 4001, "message": "Service unavailable"}, {"X-Venue": "1"})
    )
    sim.scripted.append(SimResponse(302, b"", (("location", "https://elsewhere.example/"),)))
    first = await http.get(stack.url("coinex", READS["coinex"]), headers=stack.headers())
    assert first.status_code == 503 and first.json() == {"code": 4001, "message": "Service unavailable"}
    assert first.headers["x-venue"] == "1" and "x-signing-proxy-error" not in first.headers
    redirect = await http.get(stack.url("coinex", READS["coinex"]), headers=stack.headers())
    assert redirect.status_code == 302  # relayed, not followed
    assert redirect.headers["location"] == "https://elsewhere.example/"


async def test_request_id_echoed(stack: LocalStack, http: httpx.AsyncClient) -> None:
    response = await http.get(
        stack.url("coinex", READS["coinex"]), headers={**stack.headers(), "X-Request-Id": "abc-123"}
    )
    assert response.headers["x-request-id"] == "abc-123"
    assert stack.sims["coinex"].recorder.requests[-1].header("x-request-id") is None

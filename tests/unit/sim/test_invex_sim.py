"""Simulated INVEX, in-process: accepts the vectors' signed requests, rejects forgeries."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from proxy.clock import FakeClock
from proxy.messages import Credentials, OutgoingRequest
from proxy.signers.base import SignContext
from proxy.signers.invex import InvexSigner
from proxy.sim.base import SimVenue
from proxy.sim.invex import create_app
from tests import vectors

DATA = vectors.load("invex")
SECRET_HEX: str = DATA["test_secret_key_hex_der_pkcs8"]
API_KEY = "test-invex-api-key-0001"
KEYS = {API_KEY: {"api_key": API_KEY, "private_key": SECRET_HEX}}
HEADERS = {"X-API-Key-Invex": API_KEY}
SIGNED = [v for v in DATA["vectors"] if "message_to_sign" in v]
# The vectors' expire_at is 2024-06-18 12:00:00, Tehran wall time.
EXPIRE_TS = datetime(2024, 6, 18, 12, 0, tzinfo=ZoneInfo("Asia/Tehran")).timestamp()
ACCOUNTS = vectors.vector("invex", "get_accounts_query")
ORDER = vectors.vector("invex", "post_create_order_official_example")


def _client(sim: SimVenue) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=sim), base_url="http://sim")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=EXPIRE_TS - 30)


@pytest.fixture
def sim(clock: FakeClock) -> SimVenue:
    return create_app(KEYS, clock)


@pytest.fixture
async def client(sim: SimVenue) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(sim) as client:
        yield client


async def _send(
    client: httpx.AsyncClient, vec: dict[str, Any], signature: str | None = None
) -> httpx.Response:
    """Replay a vector exactly as the venue docs' client would send it."""
    method, path = vec["inputs"]["method"], vec["inputs"]["path"]
    if method == "POST":
        body = vec["request_body"]
        if signature:
            body = body.replace(vec["example_signature_hex"], signature)
        return await client.request(method, path, content=body, headers=HEADERS)
    query = vec["request_query"]
    if signature:
        query = query.replace(vec["example_signature_hex"], signature)
    return await client.request(method, f"{path}?{query}", headers=HEADERS)


@pytest.mark.parametrize("vec", SIGNED, ids=lambda v: v["name"])
async def test_vector_requests_accepted(
    client: httpx.AsyncClient, sim: SimVenue, vec: dict[str, Any]
) -> None:
    response = await _send(client, vec)
    assert response.status_code == 200, response.text
    assert isinstance(response.json(), dict) and response.json()
    assert sim.recorder.count(vec["inputs"]["method"], vec["inputs"]["path"]) == 1
    assert sim.recorder.requests[0].header("x-api-key-invex") == API_KEY


@pytest.mark.parametrize("vec", SIGNED, ids=lambda v: v["name"])
async def test_oracle_signatures_accepted(client: httpx.AsyncClient, vec: dict[str, Any]) -> None:
    (oracle,) = vec["oracles"].values()
    response = await _send(client, vec, signature=oracle["signature_hex"])
    assert response.status_code == 200, response.text


async def test_success_bodies_have_the_swagger_shapes(client: httpx.AsyncClient) -> None:
    assert (await _send(client, ACCOUNTS)).json() == {
        "currency": "USDT",
        "available": "1000",
        "blocked": "0",
        "total": "1000",
    }
    assert set((await _send(client, ORDER)).json()) == {"order_id"}


async def test_tampered_query_rejected(client: httpx.AsyncClient, sim: SimVenue) -> None:
    query = ACCOUNTS["request_query"].replace("currency=USDT", "currency=BTC")
    response = await client.get(f"/trading/v1/accounts?{query}", headers=HEADERS)
    assert (response.status_code, response.json()) == (401, {"detail": "Invalid signature"})
    assert sim.recorder.count("GET", "/trading/v1/accounts") == 1


async def test_tampered_body_rejected(client: httpx.AsyncClient) -> None:
    body = ORDER["request_body"].replace('"price": "0.1"', '"price": "0.2"')
    response = await client.post("/trading/v1/orders", content=body, headers=HEADERS)
    assert (response.status_code, response.json()) == (401, {"detail": "Invalid signature"})


async def test_key_order_is_signed_whitespace_is_not(client: httpx.AsyncClient) -> None:
    # The venue signs json.dumps of what it parsed: the wire's whitespace is irrelevant, the
    # key order is not (cf. the serialisation_sensitivity vector).
    params = json.loads(ORDER["request_body"])
    compact = json.dumps(params, separators=(",", ":"))
    assert (await client.post("/trading/v1/orders", content=compact, headers=HEADERS)).status_code == 200
    reordered = json.dumps(dict(sorted(params.items())))
    response = await client.post("/trading/v1/orders", content=reordered, headers=HEADERS)
    assert (response.status_code, response.json()) == (401, {"detail": "Invalid signature"})


async def test_expired_rejected(client: httpx.AsyncClient, clock: FakeClock) -> None:
    clock.advance(31)
    response = await _send(client, ACCOUNTS)
    assert (response.status_code, response.json()) == (401, {"detail": "Request expired"})


async def test_too_far_ahead_rejected(client: httpx.AsyncClient, clock: FakeClock) -> None:
    clock.advance(-2 * 3600)
    response = await _send(client, ACCOUNTS)
    assert (response.status_code, response.json()) == (401, {"detail": "expire_at is too far in the future"})


async def test_utc_server_still_accepts_tehran_time(clock: FakeClock) -> None:
    # The signer's failure-safe default: Tehran wall time read as UTC lies 3.5 h ahead.
    async with _client(create_app(KEYS, clock, expire_at_timezone="UTC", max_ahead_s=4 * 3600)) as client:
        assert (await _send(client, ACCOUNTS)).status_code == 200


@pytest.mark.parametrize(
    ("headers", "detail"),
    [({}, "Not authenticated"), ({"X-API-Key-Invex": "someone-else"}, "Invalid API key")],
)
async def test_missing_or_unknown_api_key_rejected(
    client: httpx.AsyncClient, headers: dict[str, str], detail: str
) -> None:
    response = await client.get(f"/trading/v1/accounts?{ACCOUNTS['request_query']}", headers=headers)
    assert (response.status_code, response.json()) == (401, {"detail": detail})


async def test_missing_signature_is_a_validation_error(client: httpx.AsyncClient) -> None:
    query = ACCOUNTS["request_query"].partition("&signature=")[0]
    response = await client.get(f"/trading/v1/accounts?{query}", headers=HEADERS)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "signature"]
    assert response.json()["detail"][0]["type"] == "missing"


async def test_missing_expire_at_in_body_is_a_validation_error(client: httpx.AsyncClient) -> None:
    response = await client.post("/trading/v1/orders", json={"signature": "00"}, headers=HEADERS)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "expire_at"]


async def test_non_object_body_is_a_validation_error(client: httpx.AsyncClient) -> None:
    response = await client.post("/trading/v1/orders", content=b"[1]", headers=HEADERS)
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "model_attributes_type"


async def test_public_markets_need_no_credentials(client: httpx.AsyncClient) -> None:
    response = await client.get("/trading/v1/markets")
    assert response.status_code == 200
    assert response.json()["rules"][0]["symbol"] == "TRX_USDT"


async def test_unknown_path_and_method(client: httpx.AsyncClient) -> None:
    assert (await client.get("/trading/v1/nope")).status_code == 404
    assert (await client.put("/trading/v1/orders")).status_code == 405


async def test_signer_round_trip(sim: SimVenue, clock: FakeClock) -> None:
    """Our signer, fed the sim's clock, produces requests the independent verifier accepts."""
    creds = Credentials({"api_key": API_KEY, "private_key": SECRET_HEX})
    ctx = SignContext(venue="invex", account="main", now_ms=int(clock.now() * 1000))
    signer = InvexSigner()
    requests = [
        OutgoingRequest("GET", "/trading/v1/order?client_order_id=abc%20def"),
        OutgoingRequest("DELETE", "/trading/v1/orders?order_id=550e8400-e29b-41d4-a716-446655440000"),
        OutgoingRequest("POST", "/trading/v1/crypto-withdrawals", body=b'{"amount": 1.5, "memo": "\\u00e9"}'),
        OutgoingRequest("GET", "/trading/v1/markets"),
    ]
    async with _client(sim) as client:
        for request in requests:
            signed = signer.sign(request, creds, ctx)
            response = await client.request(
                signed.method, signed.target, headers=list(signed.headers), content=signed.body
            )
            assert response.status_code == 200, (request.target, response.text)
    assert len(sim.recorder.requests) == len(requests)

"""Invex and EVEDEX end to end: real OpenBao, the proxy over sockets, strict simulated venues."""

from __future__ import annotations

import asyncio
import json
import secrets
from urllib.parse import parse_qsl

import httpx
import pytest

from proxy.clock import SystemClock
from proxy.dev.stack import LocalStack

pytestmark = pytest.mark.asyncio(loop_scope="session")

FORGED_SIGNATURE = "f" * 512


def _order_id() -> str:
    return f"00001:{secrets.token_hex(13)}"


@pytest.fixture
async def http():
    async with httpx.AsyncClient(timeout=20) as client:
        yield client


async def test_invex_get_signed_in_query(stack: LocalStack, http: httpx.AsyncClient) -> None:
    url = stack.url(
        "invex", f"/trading/v1/accounts?currency=USDT&expire_at=2000-01-01&signature={FORGED_SIGNATURE}"
    )
    response = await http.get(url, headers={**stack.headers(), "X-API-Key-Invex": "forged"})
    assert response.status_code == 200, response.text
    seen = stack.sims["invex"].recorder.requests[-1]
    params = parse_qsl(seen.query)
    assert [k for k, _ in params] == ["currency", "expire_at", "signature"]  # the proxy's own, once
    assert dict(params)["signature"] != FORGED_SIGNATURE
    assert seen.header("x-api-key-invex") == stack.credentials["invex"]["api_key"]


async def test_invex_post_signed_in_body(stack: LocalStack, http: httpx.AsyncClient) -> None:
    order = {"symbol": "TRX_USDT", "side": "BUYER", "type": "LIMIT", "quantity": "10", "price": "0.1"}
    response = await http.post(
        stack.url("invex", "/trading/v1/orders"),
        json={**order, "signature": FORGED_SIGNATURE},
        headers=stack.headers(),
    )
    assert response.status_code == 200, response.text
    sent = json.loads(stack.sims["invex"].recorder.requests[-1].body)
    assert list(sent)[: len(order)] == list(order)  # client key order kept (it is signed)
    assert sent["signature"] != FORGED_SIGNATURE and "expire_at" in sent


async def test_invex_non_object_body_is_bad_request(stack: LocalStack, http: httpx.AsyncClient) -> None:
    before = len(stack.sims["invex"].recorder.requests)
    response = await http.post(stack.url("invex", "/trading/v1/orders"), json=[1, 2], headers=stack.headers())
    assert response.status_code == 400 and response.headers["x-signing-proxy-error"] == "bad_request"
    assert len(stack.sims["invex"].recorder.requests) == before


async def test_evedex_order_signed_by_the_proxy(stack: LocalStack, http: httpx.AsyncClient) -> None:
    order = {
        "id": _order_id(),
        "instrument": "BTCUSDT",
        "side": "BUY",
        "leverage": 5,
        "quantity": "0.001",
        "limitPrice": "65000.5",
        "signature": "0x" + "ab" * 65,
        "chainId": "1",
    }
    response = await http.post(
        stack.url("evedex", "/api/v2/order/limit"),
        json=order,
        headers={**stack.headers(), "Authorization": "Bearer forged", "x-api-key": "forged"},
    )
    assert response.status_code == 200, response.text
    seen = stack.sims["evedex"].recorder.requests[-1]
    sent = json.loads(seen.body)
    assert sent["signature"] != order["signature"] and sent["chainId"] == "161803"
    assert seen.header("x-api-key") is None
    assert seen.header("authorization") != "Bearer forged"


async def test_evedex_unsignable_order_names_the_field(stack: LocalStack, http: httpx.AsyncClient) -> None:
    response = await http.post(
        stack.url("evedex", "/api/v2/order/limit"),
        json={"id": _order_id(), "instrument": "BTCUSDT", "side": "BUY", "leverage": 5, "quantity": "0.001"},
        headers=stack.headers(),
    )
    assert response.status_code == 400
    assert response.headers["x-signing-proxy-error"] == "bad_request"
    assert "limitPrice" in response.json()["message"]  # EVEDEX's error shape: {"message", "error"}


class _ShiftedClock(SystemClock):
    def __init__(self, shift_s: float) -> None:
        self.shift_s = shift_s

    def now(self) -> float:
        return super().now() + self.shift_s


async def test_evedex_stampede_on_expired_token_costs_one_refresh(
    stack: LocalStack, http: httpx.AsyncClient
) -> None:
    sim = stack.sims["evedex"]
    first = await http.get(stack.url("evedex", "/api/user/me"), headers=stack.headers())
    assert first.status_code == 200
    logins, refreshes = sim.logins, sim.refreshes
    original = sim.clock
    sim.clock = _ShiftedClock(sim.access_ttl_s + 5)  # every access token the venue issued is now expired
    try:
        responses = await asyncio.gather(
            *(http.get(stack.url("evedex", "/api/user/me"), headers=stack.headers()) for _ in range(50))
        )
    finally:
        sim.clock = original
    assert [r.status_code for r in responses] == [200] * 50
    assert sim.refreshes == refreshes + 1
    assert sim.logins == logins
    metrics = stack.app.metrics.render().decode()
    assert 'signing_proxy_venue_sessions_total{event="refresh",result="ok",venue="evedex"} 1.0' in metrics
    # Requests that started after the refresh used the new token directly: no replay for them.
    assert 'signing_proxy_venue_sessions_total{event="replay",result="ok",venue="evedex"}' in metrics
    assert 'event="replay",result="rejected"' not in metrics

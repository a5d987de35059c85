"""Simulated CoinEx, driven in-process with the vectors' headers (never with the proxy's signer)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from proxy.clock import FakeClock
from proxy.sim import SIMULATORS
from proxy.sim.base import SimVenue
from proxy.sim.coinex import create_app
from tests import vectors

GET_VEC = vectors.vector("coinex", "get_with_query_docs_example")
BALANCE_VEC = vectors.vector("coinex", "get_no_query")
ORDER_VEC = vectors.vector("coinex", "post_order_compact_json")
ACCESS_ID: str = GET_VEC["inputs"]["access_id"]
KEYS = {ACCESS_ID: {"api_key": ACCESS_ID, "secret_key": GET_VEC["inputs"]["secret_key"]}}
TS_MS: int = GET_VEC["inputs"]["timestamp_ms"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=TS_MS / 1000)


@pytest.fixture
def sim(clock: FakeClock) -> SimVenue:
    return create_app(KEYS, clock)


async def _send(
    client: httpx.AsyncClient, vec: dict[str, Any], **header_changes: str | None
) -> httpx.Response:
    headers = {**vec["headers"], **header_changes}
    inputs = vec["inputs"]
    return await client.request(
        inputs["method"],
        inputs["request_path_with_query"],
        headers={k: v for k, v in headers.items() if v is not None},
        content=inputs["body"].encode(),
    )


def _code(response: httpx.Response) -> int:
    assert response.status_code == 200  # CoinEx reports auth errors inside an HTTP 200
    code: int = response.json()["code"]
    return code


@pytest.mark.parametrize("vec", [GET_VEC, BALANCE_VEC, ORDER_VEC], ids=lambda v: v["name"])
async def test_vector_request_is_accepted_and_recorded(
    client: httpx.AsyncClient, sim: SimVenue, vec: dict[str, Any]
) -> None:
    response = await _send(client, vec)
    assert response.json()["code"] == 0 and response.json()["message"] == "OK"
    assert sim.recorder.requests[-1].target == vec["inputs"]["request_path_with_query"]
    assert sim.recorder.requests[-1].header("x-coinex-sign") == vec["headers"]["X-COINEX-SIGN"]


async def test_placed_order_is_echoed_and_then_pending(client: httpx.AsyncClient) -> None:
    placed = (await _send(client, ORDER_VEC)).json()["data"]
    assert isinstance(placed["order_id"], int)
    assert (placed["market"], placed["side"], placed["amount"], placed["price"]) == (
        "BTCUSDT",
        "buy",
        "0.001",
        "30000",
    )
    pending = (await _send(client, GET_VEC)).json()
    assert [order["order_id"] for order in pending["data"]] == [placed["order_id"]]
    assert pending["pagination"] == {"total": 1, "has_next": False}


async def test_balance_has_ccy_rows(client: httpx.AsyncClient) -> None:
    data = (await _send(client, BALANCE_VEC)).json()["data"]
    assert {row["ccy"] for row in data} >= {"BTC", "USDT"}


async def test_wrong_signature_is_4006(client: httpx.AsyncClient) -> None:
    assert _code(await _send(client, GET_VEC, **{"X-COINEX-SIGN": "0" * 64})) == 4006


async def test_query_in_another_order_is_4006(client: httpx.AsyncClient) -> None:
    # ccxt's key-sorted query does not verify against a signature over the query as sent.
    response = await client.get(
        GET_VEC["legacy_ccxt"]["url"].removeprefix("https://api.coinex.com"), headers=GET_VEC["headers"]
    )
    assert _code(response) == 4006


async def test_legacy_sha256_signature_is_4006(client: httpx.AsyncClient) -> None:
    legacy = GET_VEC["legacy_ccxt"]
    response = await client.get(
        legacy["url"].removeprefix("https://api.coinex.com"), headers=legacy["headers"]
    )
    assert _code(response) == 4006


async def test_unknown_or_missing_key_is_4005(client: httpx.AsyncClient) -> None:
    assert _code(await _send(client, GET_VEC, **{"X-COINEX-KEY": "NOPE"})) == 4005
    assert _code(await _send(client, GET_VEC, **{"X-COINEX-KEY": None})) == 4005


@pytest.mark.parametrize("sign", [None, "", "abc", "g" * 64])
async def test_missing_or_abnormal_sign_is_4008(client: httpx.AsyncClient, sign: str | None) -> None:
    assert _code(await _send(client, GET_VEC, **{"X-COINEX-SIGN": sign})) == 4008


@pytest.mark.parametrize(
    "changes", [{"X-COINEX-TIMESTAMP": None}, {"X-COINEX-TIMESTAMP": "soon"}, {"X-COINEX-WINDOWTIME": "0"}]
)
async def test_bad_time_headers_are_4004(client: httpx.AsyncClient, changes: dict[str, str | None]) -> None:
    assert _code(await _send(client, GET_VEC, **changes)) == 4004


@pytest.mark.parametrize(("skew_s", "code"), [(5.0, 0), (5.001, 4010), (-5.0, 0), (-5.001, 4010)])
async def test_default_window_is_5000_ms_both_ways(
    client: httpx.AsyncClient, clock: FakeClock, skew_s: float, code: int
) -> None:
    clock.advance(skew_s)
    assert _code(await _send(client, GET_VEC)) == code


async def test_windowtime_header_widens_the_window(client: httpx.AsyncClient, clock: FakeClock) -> None:
    clock.advance(8)
    assert _code(await _send(client, GET_VEC)) == 4010
    assert _code(await _send(client, GET_VEC, **{"X-COINEX-WINDOWTIME": "10000"})) == 0


async def test_unknown_path_is_a_non_json_404(client: httpx.AsyncClient, sim: SimVenue) -> None:
    response = await client.get("/v1/market/list", headers=GET_VEC["headers"])
    assert response.status_code == 404
    assert not response.headers["content-type"].startswith("application/json")
    assert sim.recorder.count(path="/v1/market/list") == 1


async def test_ping_needs_no_auth(client: httpx.AsyncClient) -> None:
    response = await client.get("/v2/ping")
    assert response.json() == {"code": 0, "data": {"result": "pong"}, "message": "OK"}


def test_registered() -> None:
    assert SIMULATORS["coinex"] is create_app


# --- Public market data and the order lifecycle a real SDK drives (issue 18) ---------------


def _signed(method: str, target: str, body: str = "") -> dict[str, str]:
    # Signed here from the venue's documented formula, not with the sim's or the proxy's code.
    import hashlib
    import hmac

    message = f"{method}{target}{body}{TS_MS}".encode()
    secret = KEYS[ACCESS_ID]["secret_key"].encode()
    sign = hmac.new(secret, message, hashlib.sha256).hexdigest()
    return {"X-COINEX-KEY": ACCESS_ID, "X-COINEX-SIGN": sign, "X-COINEX-TIMESTAMP": str(TS_MS)}


async def _call(client: httpx.AsyncClient, method: str, target: str, payload: dict | None = None) -> Any:
    body = "" if payload is None else json.dumps(payload, separators=(",", ":"))
    response = await client.request(method, target, headers=_signed(method, target, body), content=body)
    assert response.status_code == 200
    return response.json()


@pytest.mark.parametrize(
    "path",
    ["/v2/spot/market", "/v2/futures/market", "/v2/spot/ticker", "/v2/assets/all-deposit-withdraw-config"],
)
async def test_public_market_data_answers_without_credentials(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    body = response.json()
    assert response.status_code == 200 and body["code"] == 0 and body["message"] == "OK"
    assert isinstance(body["data"], list) and len(body["data"]) >= 2


async def test_market_lists_carry_the_fields_sdks_parse(client: httpx.AsyncClient) -> None:
    spot = {m["market"]: m for m in (await client.get("/v2/spot/market")).json()["data"]}
    futures = {m["market"]: m for m in (await client.get("/v2/futures/market")).json()["data"]}
    assert {"BTCUSDT", "ETHUSDT"} <= set(spot) and {"BTCUSDT", "ETHUSDT"} <= set(futures)
    btc = spot["BTCUSDT"]
    assert (btc["base_ccy"], btc["quote_ccy"], btc["min_amount"]) == ("BTC", "USDT", "0.0001")
    assert btc["base_ccy_precision"] == 8 and btc["quote_ccy_precision"] == 2
    assert btc["is_api_trading_available"] is True
    assert futures["BTCUSDT"]["contract_type"] == "linear" and futures["BTCUSDT"]["leverage"][-1] == "100"
    one = (await client.get("/v2/spot/ticker?market=ETHUSDT")).json()["data"]
    assert [t["market"] for t in one] == ["ETHUSDT"] and one[0]["last"] == "3120.42"


async def test_public_endpoint_still_verifies_a_key_that_is_sent(client: httpx.AsyncClient) -> None:
    headers = {**_signed("GET", "/v2/spot/market"), "X-COINEX-SIGN": "0" * 64}
    assert _code(await client.get("/v2/spot/market", headers=headers)) == 4006


async def test_order_lifecycle_place_list_cancel(client: httpx.AsyncClient) -> None:
    order = {"market": "ETHUSDT", "market_type": "SPOT", "side": "buy", "type": "limit",
             "amount": "0.01", "price": "3000", "client_id": "c1"}  # fmt: skip
    placed = await _call(client, "POST", "/v2/spot/order", order)
    assert placed["code"] == 0
    order_id = placed["data"]["order_id"]
    listed = await _call(client, "GET", "/v2/spot/pending-order?market=ETHUSDT&market_type=SPOT")
    assert [o["order_id"] for o in listed["data"]] == [order_id]
    cancel = {"market": "ETHUSDT", "market_type": "SPOT", "order_id": order_id}
    cancelled = await _call(client, "POST", "/v2/spot/cancel-order", cancel)
    assert cancelled["code"] == 0 and cancelled["data"]["order_id"] == order_id
    assert (await _call(client, "GET", "/v2/spot/pending-order?market=ETHUSDT"))["data"] == []
    again = await _call(client, "POST", "/v2/spot/cancel-order", cancel)
    assert again["code"] == 3600 and again["message"] == "Order not found"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"market": ["BTCUSDT"]}, 4004),
        ({"side": "hold"}, 4004),
        ({"type": "stop"}, 4004),
        ({"market_type": "FUTURES"}, 4004),
        ({"amount": "abc"}, 4004),
        ({"amount": "-1"}, 4004),
        ({"amount": "NaN"}, 4004),
        ({"amount": 0.01}, 4004),
        ({"price": "0"}, 4004),
        ({"amount": "0.00001"}, 3127),
    ],
)
async def test_orders_outside_the_market_set_are_refused(
    client: httpx.AsyncClient, change: dict, code: int
) -> None:
    order = {"market": "BTCUSDT", "market_type": "SPOT", "side": "buy", "type": "limit",
             "amount": "0.001", "price": "30000"}  # fmt: skip
    assert (await _call(client, "POST", "/v2/spot/order", {**order, **change}))["code"] == code

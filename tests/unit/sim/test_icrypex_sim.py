"""Simulated ICRYPEX, driven in-process with the vector's headers (never with the proxy's signer)."""

from __future__ import annotations

import httpx
import pytest

from proxy.clock import FakeClock
from proxy.sim import SIMULATORS
from proxy.sim.base import SimVenue
from proxy.sim.icrypex import create_app
from tests import vectors

VEC = vectors.vector("icrypex", "rest_headers")
API_KEY: str = VEC["inputs"]["api_key"]
KEYS = {API_KEY: {"api_key": API_KEY, "secret_key": VEC["inputs"]["secret_base64"]}}
HEADERS: dict[str, str] = VEC["headers"]  # ICX-NONCE 15000
TS_MS: int = VEC["inputs"]["ts_ms"]
ORDER = {"symbol": "BTCTRY", "type": "LIMIT", "side": "BUY", "price": "2000000", "quantity": "0.01"}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=TS_MS / 1000)


@pytest.fixture
def sim(clock: FakeClock) -> SimVenue:
    return create_app(KEYS, clock)


def _with(**changes: str | None) -> dict[str, str]:
    merged = {**HEADERS, **changes}
    return {name: value for name, value in merged.items() if value is not None}


async def test_vector_headers_are_accepted_and_recorded(client: httpx.AsyncClient, sim: SimVenue) -> None:
    response = await client.get("/sapi/v1/wallet", headers=HEADERS)
    assert response.status_code == 200
    assert {row["asset"] for row in response.json()} >= {"BTC"}
    assert sim.recorder.count("GET", "/sapi/v1/wallet") == 1
    assert sim.recorder.requests[0].header("icx-sign") == VEC["icx_sign"]


async def test_order_lifecycle(client: httpx.AsyncClient) -> None:
    placed = (await client.post("/sapi/v1/orders", json=ORDER, headers=HEADERS)).json()
    assert placed["ok"] is True and placed["pairSymbol"] == "BTCTRY"
    open_orders = (await client.get("/sapi/v1/orders", headers=HEADERS)).json()
    assert [str(o["id"]) for o in open_orders["items"]] == [placed["id"]]
    cancel = await client.delete(f"/sapi/v1/orders?orderId={placed['id']}", headers=HEADERS)
    assert cancel.json() == {"ok": True, "id": int(placed["id"]), "code": "SUCCESS"}
    assert (await client.get("/sapi/v1/orders", headers=HEADERS)).json()["items"] == []
    history = (await client.get("/sapi/v1/orders/history", headers=HEADERS)).json()
    assert [o["status"] for o in history["items"]] == ["CANCEL"]


async def test_invalid_order_is_400_with_error_model(client: httpx.AsyncClient) -> None:
    response = await client.post("/sapi/v1/orders", json={"symbol": "BTCTRY"}, headers=HEADERS)
    assert response.status_code == 400
    assert set(response.json()) == {"code", "message"}


async def test_cancelling_an_unknown_order_is_422(client: httpx.AsyncClient) -> None:
    response = await client.delete("/sapi/v1/orders?orderId=1541007", headers=HEADERS)
    assert response.status_code == 422
    assert response.json()["code"] == "ORDER_NOT_FOUND"


@pytest.mark.parametrize(
    "headers",
    [
        _with(**{"ICX-SIGN": "5V+FXqenX/FcVbsgYI8lPaNvuuDOxli3PUcJKRVUZYE="}),
        _with(**{"ICX-API-KEY": "someone-else"}),
        _with(**{"ICX-SIGN": None}),
        _with(**{"ICX-NONCE": None}),
        _with(**{"ICX-NONCE": "60001"}),
        _with(**{"ICX-NONCE": "0"}),
        _with(**{"ICX-NONCE": str(TS_MS)}),  # what icrypex-sdk 0.5.2 sends
        _with(**{"ICX-NONCE": "15000.0"}),
        _with(**{"ICX-TS": "1700000000000.5"}),
        _with(**{"ICX-TS": str(TS_MS + 1)}),  # signature covers the timestamp
    ],
)
async def test_bad_auth_is_401_with_empty_body(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    response = await client.get("/sapi/v1/wallet", headers=headers)
    assert response.status_code == 401
    assert response.content == b""


@pytest.mark.parametrize(("skew_s", "status"), [(15.0, 200), (15.001, 401), (-15.0, 200), (-15.001, 401)])
async def test_tolerance_is_icx_nonce(
    client: httpx.AsyncClient, clock: FakeClock, skew_s: float, status: int
) -> None:
    clock.advance(skew_s)
    assert (await client.get("/sapi/v1/wallet", headers=HEADERS)).status_code == status


async def test_unknown_path_is_404_with_empty_body(client: httpx.AsyncClient) -> None:
    response = await client.get("/sapi/v1/nowhere", headers=HEADERS)
    assert (response.status_code, response.content) == (404, b"")


def test_registered() -> None:
    assert SIMULATORS["icrypex"] is create_app


# --- Public market data (trading-public.md) and orders on the market set (issue 18) --------


async def test_exchange_info_lists_assets_and_pairs_without_credentials(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/exchange/info")
    assert response.status_code == 200
    info = response.json()
    pairs = {pair["symbol"]: pair for pair in info["pairs"]}
    assert {"BTCTRY", "ETHTRY", "BTCUSDT", "ETHUSDT"} <= set(pairs)
    btc = pairs["BTCUSDT"]
    assert (btc["base"], btc["quote"], btc["minExchangeValue"]) == ("BTC", "USDT", "5")
    assert btc["quantityPrecision"] == 8
    assert "LIMIT" in btc["orderTypes"] and btc["marketTypes"] == ["SPOT"]
    assert {asset["symbol"] for asset in info["assets"]} >= {"BTC", "ETH", "USDT", "TRY"}


async def test_tickers_and_orderbook(client: httpx.AsyncClient) -> None:
    tickers = (await client.get("/v1/tickers")).json()
    assert {t["symbol"] for t in tickers} >= {"BTCTRY", "BTCUSDT"}
    assert all(isinstance(t["last"], str) and t["last"] for t in tickers)
    book = (await client.get("/v1/orderbook?symbol=BTCUSDT")).json()
    assert book["pairSymbol"] == "BTCUSDT" and book["asks"][0]["p"] > book["bids"][0]["p"]
    unknown = await client.get("/v1/orderbook?symbol=DOGETRY")
    assert unknown.status_code == 400 and unknown.json()["code"] == "INVALID_REQUEST"


async def test_public_endpoint_verifies_a_key_that_is_sent(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/tickers", headers=HEADERS)).status_code == 200
    assert (await client.get("/v1/tickers", headers=_with(**{"ICX-SIGN": "AAAA"}))).status_code == 401


async def test_order_symbol_must_be_a_string(client: httpx.AsyncClient) -> None:
    response = await client.post("/sapi/v1/orders", json={**ORDER, "symbol": ["BTCTRY"]}, headers=HEADERS)
    assert response.status_code == 400 and response.json()["code"] == "INVALID_REQUEST"

"""The simulated venues route as standard web servers do, so a path spelling the proxy let
past a deny rule would show up as an executed request. Requests are signed here from the
venues' documented schemes (independent of ``proxy.signers``)."""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx
import pytest

from proxy.clock import FakeClock
from proxy.sim import coinex, evedex, icrypex, invex
from proxy.sim.base import server_path
from proxy.sim.credentials import demo_credentials, sim_keys
from tests import vectors


@pytest.mark.parametrize(
    ("raw", "fold_case", "trailing_slash", "routed"),
    [
        ("/v2/assets/withdraw", True, True, "/v2/assets/withdraw"),
        ("/v2/assets/WITHDRAW", True, True, "/v2/assets/withdraw"),
        ("/v2/assets/withdraw/", True, True, "/v2/assets/withdraw"),
        ("/v2/assets/with%64raw", True, True, "/v2/assets/withdraw"),
        ("/v2/assets/With%44raw/", True, True, "/v2/assets/withdraw"),
        ("/api/order/00123%3AAbC", False, True, "/api/order/00123:AbC"),
        ("/trading/v1/orders/", False, False, "/trading/v1/orders/"),
        ("/trading/v1/%6Frders", False, False, "/trading/v1/orders"),
        ("/", True, True, "/"),
    ],
)
def test_server_path(raw: str, fold_case: bool, trailing_slash: bool, routed: str) -> None:
    assert server_path(raw, fold_case=fold_case, trailing_slash=trailing_slash) == routed


def _coinex_headers(creds: dict[str, str], method: str, target: str, body: bytes, ts: int) -> dict[str, str]:
    # venues.md section 5: HMAC-SHA256(secret, METHOD + path?query + body + timestamp), lower hex.
    message = method.encode() + target.encode() + body + str(ts).encode()
    sign = hmac.new(creds["secret_key"].encode(), message, hashlib.sha256).hexdigest()
    return {"X-COINEX-KEY": creds["api_key"], "X-COINEX-SIGN": sign, "X-COINEX-TIMESTAMP": str(ts)}


@pytest.mark.parametrize(
    "spelling",
    ["/v2/assets/withdraw", "/v2/assets/WITHDRAW", "/v2/Assets/Withdraw/", "/v2/assets/with%64raw"],
)
async def test_coinex_sim_executes_every_spelling_of_withdraw(spelling: str) -> None:
    creds = demo_credentials("coinex")
    clock = FakeClock(start=1_700_000_000)
    sim = coinex.create_app(sim_keys(creds), clock)
    body = json.dumps({"ccy": "USDT", "to_address": "0xabc", "amount": "10"}).encode()
    headers = _coinex_headers(creds, "POST", spelling, body, 1_700_000_000_000)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim), base_url="http://sim") as client:
        response = await client.post(spelling, headers=headers, content=body)
    assert response.json()["code"] == 0
    assert sim.recorder.requests[-1].path == spelling  # httpx sent the spelling unchanged
    handler = sim.handler.__self__  # type: ignore[attr-defined]
    assert [w["amount"] for w in handler.withdrawals] == ["10"]


async def test_icrypex_sim_routes_case_and_trailing_slash_variants() -> None:
    vec = vectors.vector("icrypex", "rest_headers")
    api_key = vec["inputs"]["api_key"]
    keys = {api_key: {"api_key": api_key, "secret_key": vec["inputs"]["secret_base64"]}}
    sim = icrypex.create_app(keys, FakeClock(start=vec["inputs"]["ts_ms"] / 1000))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim), base_url="http://sim") as client:
        for spelling in ("/sapi/v1/wallet", "/SAPI/v1/Wallet", "/sapi/v1/wallet/", "/sapi/v1/w%61llet"):
            response = await client.get(spelling, headers=vec["headers"])
            assert response.status_code == 200, spelling
            assert {row["asset"] for row in response.json()} >= {"BTC"}, spelling


async def test_invex_sim_routes_as_starlette() -> None:
    sim = invex.create_app({})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim), base_url="http://sim") as client:
        decoded = await client.get("/trading/v1/%6Darkets")  # Starlette routes on the decoded path
        slash = await client.get("/trading/v1/markets/?x=1")
        case = await client.get("/trading/v1/Markets")
    assert decoded.status_code == 200
    assert (slash.status_code, slash.headers["location"]) == (307, "/trading/v1/markets?x=1")
    assert case.status_code == 404


async def test_evedex_sim_routes_as_express() -> None:
    sim = evedex.create_app({"k-1": {"wallet_private_key": "0x" + "33" * 32}}, FakeClock())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim), base_url="http://sim") as client:
        for spelling in ("/api/user/me", "/API/User/Me", "/api/user/me/", "/api/%75ser/me"):
            response = await client.get(spelling, headers={"x-api-key": "k-1"})
            assert response.status_code == 200 and "wallet" in response.json(), spelling
        assert (await client.get("/api/user/nope", headers={"x-api-key": "k-1"})).status_code == 404

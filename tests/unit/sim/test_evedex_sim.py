"""Simulated EVEDEX, in-process: accepts the vectors' logins and orders, rejects forgeries.

Requests are built from the vectors and signed with eth-account directly -- never with
``proxy.signers`` -- so the sim and the signer check each other.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data

from proxy.clock import FakeClock
from proxy.sim.evedex import EvedexSim, create_app
from tests import vectors

SIWE = vectors.vector("evedex", "siwe_login")
KEY: str = SIWE["inputs"]["private_key"]
ADDRESS: str = SIWE["inputs"]["address"]
STRANGER_KEY = "0x" + "22" * 32
API_KEY = "k-evedex-1"
KEYS = {ADDRESS: {"wallet_private_key": KEY}, API_KEY: {"wallet_private_key": "0x" + "33" * 32}}
ORDERS = {v["name"]: v for v in vectors.load("evedex")["vectors"] if v["name"].startswith("eip712_")}
ISSUED_AT = SIWE["inputs"]["issued_at"]  # FakeClock() starts at this instant


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sim(clock: FakeClock) -> EvedexSim:
    return create_app(KEYS, clock, access_ttl_s=300, refresh_ttl_s=3600)


@pytest.fixture
async def client(sim: EvedexSim) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim), base_url="http://sim") as client:
        yield client


def _siwe(nonce: str, address: str = ADDRESS) -> str:
    """The vector's SIWE message with another nonce (and wallet)."""
    return str(SIWE["message"].replace(SIWE["inputs"]["nonce"], nonce).replace(ADDRESS, address))


def _personal_sign(message: str, key: str = KEY) -> str:
    return "0x" + bytes(Account.sign_message(encode_defunct(text=message), key).signature).hex()


async def _nonce(client: httpx.AsyncClient) -> str:
    nonce: str = (await client.get("/auth/nonce")).json()["nonce"]
    return nonce


async def _sign_up(
    client: httpx.AsyncClient, nonce: str, message: str, key: str = KEY, wallet: str = ADDRESS
) -> httpx.Response:
    body = {"wallet": wallet, "message": message, "nonce": nonce, "signature": _personal_sign(message, key)}
    return await client.post("/auth/user/sign-up", json=body)


async def _login(client: httpx.AsyncClient) -> dict[str, str]:
    nonce = await _nonce(client)
    response = await _sign_up(client, nonce, _siwe(nonce))
    assert response.status_code == 200, response.text
    tokens: dict[str, str] = response.json()["token"]
    return tokens


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


# --- login ------------------------------------------------------------------------------------


async def test_siwe_login_issues_jwt_shaped_tokens(client: httpx.AsyncClient, sim: EvedexSim) -> None:
    tokens = await _login(client)
    claims = json.loads(base64.urlsafe_b64decode(tokens["accessToken"].split(".")[1] + "=="))
    assert claims["sub"] == ADDRESS and claims["exp"] == 1_700_000_300
    me = await client.get("/api/user/me", headers=_bearer(tokens["accessToken"]))
    assert me.json() == {"wallet": ADDRESS}
    assert sim.logins == 1


async def test_the_vector_sign_up_verifies_once_its_nonce_is_issued(
    client: httpx.AsyncClient, sim: EvedexSim
) -> None:
    await _nonce(client)
    nonce = SIWE["inputs"]["nonce"]
    sim._nonces[nonce] = sim.clock.now()  # pretend the sim had issued the vector's nonce
    response = await client.post("/auth/user/sign-up", json=SIWE["sign_up_request"]["json"])
    assert response.status_code == 200, response.text


async def test_a_nonce_works_once(client: httpx.AsyncClient) -> None:
    nonce = await _nonce(client)
    assert (await _sign_up(client, nonce, _siwe(nonce))).status_code == 200
    replay = await _sign_up(client, nonce, _siwe(nonce))
    assert (replay.status_code, replay.json()) == (401, {"message": "Invalid nonce"})


async def test_an_unissued_or_stale_nonce_is_refused(client: httpx.AsyncClient, clock: FakeClock) -> None:
    assert (await _sign_up(client, "Zz9Zz9Zz9Zz9", _siwe("Zz9Zz9Zz9Zz9"))).status_code == 401
    nonce = await _nonce(client)
    clock.advance(301)
    assert (await _sign_up(client, nonce, _siwe(nonce))).status_code == 401


@pytest.mark.parametrize(
    "swap",
    [
        {"https://evedex.com wants": "https://evil.com wants"},
        {"https://evedex.com wants": "evedex.com wants"},
        {"URI: https://evedex.com": "URI: https://evil.com"},
        {"Chain ID: 161803": "Chain ID: 16182"},
        {"Version: 1": "Version: 2"},
        {ISSUED_AT: "2023-11-14T22:15:00.000Z"},  # 100 s in the future
        {ISSUED_AT: "2023-11-14T22:08:00.000Z"},  # before the nonce TTL
        {ISSUED_AT: "yesterday"},
        {ISSUED_AT: ISSUED_AT + "\nExpiration Time: 2023-11-14T22:13:00.000Z"},
        {ADDRESS: ADDRESS.lower()},  # EIP-4361 wants the EIP-55 form
    ],
)
async def test_siwe_fields_are_checked(client: httpx.AsyncClient, swap: dict[str, str]) -> None:
    nonce = await _nonce(client)
    message = _siwe(nonce)
    for old, new in swap.items():
        message = message.replace(old, new)
    response = await _sign_up(client, nonce, message)
    assert response.status_code == 401, message


async def test_a_nonce_mismatch_is_refused(client: httpx.AsyncClient) -> None:
    first, second = await _nonce(client), await _nonce(client)
    assert (await _sign_up(client, first, _siwe(second))).status_code == 401


async def test_the_signer_must_be_the_known_wallet(client: httpx.AsyncClient) -> None:
    nonce = await _nonce(client)
    assert (await _sign_up(client, nonce, _siwe(nonce), key=STRANGER_KEY)).status_code == 401
    stranger = Account.from_key(STRANGER_KEY).address
    nonce = await _nonce(client)
    response = await _sign_up(client, nonce, _siwe(nonce, stranger), key=STRANGER_KEY, wallet=stranger)
    assert (response.status_code, response.json()) == (401, {"message": "Invalid signature"})


async def test_malformed_sign_up_is_refused(client: httpx.AsyncClient) -> None:
    assert (await client.post("/auth/user/sign-up", content=b"{")).status_code == 400
    assert (await client.post("/auth/user/sign-up", content=b"[" * 1_000_000)).status_code == 400
    assert (await client.post("/auth/user/sign-up", json={"wallet": ADDRESS})).status_code == 400


# --- tokens -------------------------------------------------------------------------------------


async def test_refresh_rotates_and_each_refresh_token_works_once(
    client: httpx.AsyncClient, sim: EvedexSim
) -> None:
    tokens = await _login(client)
    refreshed = await client.post("/auth/refresh", headers=_bearer(tokens["refreshToken"]))
    assert refreshed.status_code == 200 and refreshed.json()["user"] == {"wallet": ADDRESS}
    assert refreshed.json()["token"]["refreshToken"] != tokens["refreshToken"]
    again = await client.post("/auth/refresh", headers=_bearer(tokens["refreshToken"]))
    assert (again.status_code, again.json()) == (401, {"message": "Unauthorized"})
    assert sim.refreshes == 1


async def test_token_kinds_are_not_interchangeable(client: httpx.AsyncClient) -> None:
    tokens = await _login(client)
    assert (await client.get("/api/user/me", headers=_bearer(tokens["refreshToken"]))).status_code == 401
    assert (await client.post("/auth/refresh", headers=_bearer(tokens["accessToken"]))).status_code == 401


async def test_expired_or_forged_access_tokens_are_refused(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    tokens = await _login(client)
    head, _, signature = tokens["accessToken"].split(".")
    forged = base64.urlsafe_b64encode(b'{"sub":"0x0","typ":"access","exp":9999999999}').rstrip(b"=").decode()
    for bad in [f"{head}.{forged}.{signature}", "garbage", ""]:
        response = await client.get("/api/user/me", headers=_bearer(bad))
        assert (response.status_code, response.json()) == (401, {"message": "Unauthorized"})
    assert (await client.get("/api/user/me")).status_code == 401
    clock.advance(300)
    assert (await client.get("/api/user/me", headers=_bearer(tokens["accessToken"]))).status_code == 401


async def test_expired_refresh_token_is_refused(client: httpx.AsyncClient, clock: FakeClock) -> None:
    tokens = await _login(client)
    clock.advance(3600)
    assert (await client.post("/auth/refresh", headers=_bearer(tokens["refreshToken"]))).status_code == 401


async def test_api_keys(client: httpx.AsyncClient) -> None:
    wallet = Account.from_key(KEYS[API_KEY]["wallet_private_key"]).address
    assert (await client.get("/api/user/me", headers={"x-api-key": API_KEY})).json() == {"wallet": wallet}
    assert (await client.get("/api/user/me", headers={"x-api-key": "nope"})).status_code == 401


# --- orders ---------------------------------------------------------------------------------------


def _path(vector: dict[str, Any]) -> tuple[str, str]:
    method, template = vector["endpoint"].split()[:2]
    return method, template.format(**vector["inputs"]["order"])


def _sign_typed(vector: dict[str, Any], key: str = KEY, **changes: Any) -> str:
    eip712 = vector["eip712"]
    domain = eip712["domain"] | {"chainId": int(eip712["domain"]["chainId"])}
    signable = encode_typed_data(domain, eip712["types"], eip712["message"] | changes)
    return "0x" + bytes(Account.sign_message(signable, key).signature).hex()


@pytest.fixture
async def authed(client: httpx.AsyncClient) -> httpx.AsyncClient:
    client.headers.update(_bearer((await _login(client))["accessToken"]))
    return client


async def _place_limit(client: httpx.AsyncClient) -> None:
    body = ORDERS["eip712_limit"]["request_body_fields_from_sdk"]
    assert (await client.post("/api/v2/order/limit", json=body)).status_code == 200


@pytest.mark.parametrize("name", [n for n in ORDERS if n != "eip712_replace_limit"])
async def test_the_vectors_orders_are_accepted(authed: httpx.AsyncClient, sim: EvedexSim, name: str) -> None:
    method, path = _path(ORDERS[name])
    response = await authed.request(method, path, json=ORDERS[name]["request_body_fields_from_sdk"])
    assert response.status_code == 200, response.text


async def test_replace_then_cancel(authed: httpx.AsyncClient, sim: EvedexSim) -> None:
    await _place_limit(authed)
    replace = ORDERS["eip712_replace_limit"]
    body = {k: v for k, v in replace["request_body_fields_from_sdk"].items() if k != "orderId"}
    path = "/api/order/00123%3A0123456789abcdef0123456789"
    assert (await authed.put(path + "/limit", json=body)).status_code == 200
    opened = (await authed.get("/api/order/opened")).json()
    assert opened["count"] == 1 and opened["list"][0]["limitPrice"] == "64000"
    assert (await authed.delete(path)).status_code == 200
    assert (await authed.delete(path)).status_code == 404
    assert (await authed.get("/api/order/opened")).json()["count"] == 0


async def test_replace_of_an_unknown_order_is_refused(authed: httpx.AsyncClient) -> None:
    body = ORDERS["eip712_replace_limit"]["request_body_fields_from_sdk"]
    response = await authed.put("/api/order/00123:0123456789abcdef0123456789/limit", json=body)
    assert (response.status_code, response.json()) == (404, {"message": "Order not found"})


def _limit_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = dict(ORDERS["eip712_limit"]["request_body_fields_from_sdk"])
    return body | changes


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_limit_body(quantity="0.002"), "Invalid signature"),  # tampered after signing
        (_limit_body(signature=_sign_typed(ORDERS["eip712_limit"], STRANGER_KEY)), "Invalid signature"),
        (_limit_body(signature="0x1234"), "Invalid signature"),
        (_limit_body(chainId="16182"), "Invalid chainId"),
        (_limit_body(chainId=161803), "Invalid chainId"),
        (_limit_body(postOnly=True), "Invalid postOnly"),
        (_limit_body(quantity="0.0010000001"), "quantity must be a decimal string with at most 8 decimals"),
        (_limit_body(quantity=0.001), "quantity must be a decimal string with at most 8 decimals"),
        (_limit_body(leverage="5"), "leverage must be an integer"),
        ({k: v for k, v in _limit_body().items() if k != "signature"}, "signature is required"),
        ({k: v for k, v in _limit_body().items() if k != "side"}, "side must be a non-empty string"),
    ],
)
async def test_bad_orders_are_refused(authed: httpx.AsyncClient, body: dict[str, Any], message: str) -> None:
    response = await authed.post("/api/v2/order/limit", json=body)
    assert (response.status_code, response.json()) == (400, {"message": message})


async def test_order_signed_for_another_chain_is_refused(clock: FakeClock) -> None:
    sim = create_app(KEYS, clock, chain_id=16182)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim), base_url="http://sim") as client:
        client.headers["x-api-key"] = API_KEY
        response = await client.post("/api/v2/order/limit", json=_limit_body())
    assert (response.status_code, response.json()) == (400, {"message": "Invalid chainId"})


async def test_order_signed_by_another_wallet_than_the_session_is_refused(client: httpx.AsyncClient) -> None:
    client.headers["x-api-key"] = API_KEY  # this key belongs to another wallet than the vector's
    response = await client.post("/api/v2/order/limit", json=_limit_body())
    assert (response.status_code, response.json()) == (400, {"message": "Invalid signature"})


async def test_path_values_must_match_the_body(authed: httpx.AsyncClient) -> None:
    body = ORDERS["eip712_position_close"]["request_body_fields_from_sdk"]
    response = await authed.post("/api/v2/position/ETHUSDT/close", json=body)
    assert (response.status_code, response.json()) == (400, {"message": "instrument does not match the path"})


async def test_mass_limit_verifies_every_order_before_placing_any(
    authed: httpx.AsyncClient, sim: EvedexSim
) -> None:
    limit = ORDERS["eip712_limit"]
    second_id = "00123:ffffffffffffffffffffffffff"
    second = _limit_body(id=second_id, signature=_sign_typed(limit, id=second_id))
    path = "/api/v2/order/mass-limit/BTCUSDT"
    bad = await authed.post(path, json=[_limit_body(), _limit_body(id=second_id)])
    assert bad.status_code == 400 and sim.orders == {}
    good = await authed.post(path, json=[_limit_body(), second])
    assert good.status_code == 200 and set(sim.orders) == {limit["inputs"]["order"]["id"], second_id}
    assert (await authed.post(path, json=[])).status_code == 400


async def test_duplicate_order_ids_conflict(authed: httpx.AsyncClient) -> None:
    await _place_limit(authed)
    response = await authed.post("/api/v2/order/limit", json=_limit_body())
    assert (response.status_code, response.json()) == (409, {"message": "Order already exists"})


async def test_unknown_paths_answer_404(authed: httpx.AsyncClient) -> None:
    assert (await authed.get("/api/nothing")).status_code == 404
    assert (await authed.get("/auth/nothing")).status_code == 404


async def test_every_request_is_recorded_before_verification(
    client: httpx.AsyncClient, sim: EvedexSim
) -> None:
    await client.get("/api/user/me", headers={"authorization": "Bearer nope"})
    assert sim.recorder.count("GET", "/api/user/me") == 1


# --- Public market data (exchange-api ExchangeRestGateway, issue 18) -----------------------


async def test_public_market_data_needs_no_session(client: httpx.AsyncClient) -> None:
    info = (await client.get("/api/market")).json()
    assert info["state"] == "OPEN" and set(info["fees"]) == {"maker", "taker"}
    coins = (await client.get("/api/coin")).json()["list"]
    assert {coin["symbol"] for coin in coins} >= {"BTC", "USDT"}
    instruments = {i["name"]: i for i in (await client.get("/api/market/instrument")).json()}
    assert {"BTCUSDT", "ETHUSDT"} <= set(instruments)
    btc = instruments["BTCUSDT"]
    assert btc["from"]["symbol"] == "BTC" and btc["to"]["symbol"] == "USDT" and btc["trading"] == "all"
    assert "lastPrice" not in btc
    with_metrics = (await client.get("/api/market/instrument?fields=metrics")).json()
    assert all(isinstance(i["lastPrice"], float) and i["minQuantity"] > 0 for i in with_metrics)
    book = (await client.get("/api/market/BTCUSDT/deep?maxLevel=10&roundPrice=0.1")).json()
    assert book["asks"][0]["price"] > book["bids"][0]["price"]
    assert (await client.get("/api/market/NOPE/deep")).status_code == 404


async def test_public_market_data_verifies_a_session_that_is_sent(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/market", headers={"x-api-key": API_KEY})).status_code == 200
    assert (await client.get("/api/market", headers={"x-api-key": "nope"})).status_code == 401
    assert (await client.get("/api/coin", headers={"Authorization": "Bearer junk"})).status_code == 401
    assert (await client.get("/api/user/me")).status_code == 401  # private paths still need one

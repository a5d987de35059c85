"""The simulated venues' stream endpoints verify logins as the venue would (no proxy here)."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
from typing import Any

import pytest
from eth_account import Account

from proxy.clock import FakeClock
from proxy.signers.icrypex import ws_login_frame
from proxy.sim import coinex, evedex, icrypex
from proxy.sim.credentials import demo_credentials, sim_keys
from proxy.ws.frames import Closed, Frame
from tests.unit.ws.harness import AsgiClient

NOW_MS = 1_700_000_000_000


async def _open(app: Any, path: str) -> AsgiClient:
    client = AsgiClient(app, path)
    assert (await client.handshake())["type"] == "websocket.accept"
    return client


async def _refused(app: Any, path: str) -> None:
    client = AsgiClient(app, path)
    assert (await client.handshake())["type"] == "websocket.close"


# --- CoinEx ---------------------------------------------------------------------------------


def _sign(fields: dict[str, str], ts: int, secret: str | None = None) -> str:
    signed = hmac.new((secret or fields["secret_key"]).encode(), str(ts).encode(), hashlib.sha256).hexdigest()
    params = {"access_id": fields["api_key"], "signed_str": signed, "timestamp": ts}
    return json.dumps({"method": "server.sign", "params": params, "id": 1})


async def _coinex_reply(client: AsgiClient, frame: str) -> dict[str, Any]:
    client.send(frame)
    received = await client.receive()
    assert isinstance(received, Frame) and isinstance(received.data, bytes)  # compressed binary
    return json.loads(gzip.decompress(received.data))


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda f: _sign(f, NOW_MS), 0),
        (lambda f: _sign(f, NOW_MS, secret="0" * 64), 21002),
        (lambda f: _sign(f, NOW_MS - 5001), 21002),
        (lambda f: _sign(f, NOW_MS + 5001), 21002),
        (lambda f: _sign({**f, "api_key": "UNKNOWN"}, NOW_MS), 21002),
        (lambda f: _sign(f, NOW_MS).replace(str(NOW_MS), f'"{NOW_MS}"'), 21002),  # timestamp as a string
    ],
)
async def test_coinex_sim_verifies_server_sign(make: Any, code: int) -> None:
    fields = demo_credentials("coinex")
    app = coinex.create_app(sim_keys(fields), FakeClock(NOW_MS / 1000))
    client = await _open(app, "/v2/spot")
    assert (await _coinex_reply(client, make(fields)))["code"] == code


async def test_coinex_sim_private_subscriptions_need_a_signed_connection() -> None:
    fields = demo_credentials("coinex")
    app = coinex.create_app(sim_keys(fields), FakeClock(NOW_MS / 1000))
    client = await _open(app, "/v2/futures")
    subscribe = json.dumps({"method": "balance.subscribe", "params": {"ccy_list": ["USDT"]}, "id": 2})
    assert (await _coinex_reply(client, subscribe))["code"] == 21001
    assert (await _coinex_reply(client, '{"method":"nope","id":3}'))["code"] == 20002
    assert (await _coinex_reply(client, _sign(fields, NOW_MS)))["code"] == 0
    assert (await _coinex_reply(client, subscribe))["code"] == 0
    event = json.loads(gzip.decompress((await client.receive()).data))  # type: ignore[arg-type]
    assert event["method"] == "balance.update"
    await _refused(app, "/v2/other")


# --- Icrypex --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ts_ms", "tolerance", "secret", "ok"),
    [
        (NOW_MS, 15000, None, True),
        (NOW_MS - 15001, 15000, None, False),
        (NOW_MS, 60001, None, False),
        (NOW_MS, 15000, demo_credentials("icrypex")["secret_key"], False),
    ],
)
async def test_icrypex_sim_verifies_api_login(
    ts_ms: int, tolerance: int, secret: str | None, ok: bool
) -> None:
    fields = demo_credentials("icrypex")
    app = icrypex.create_app(sim_keys(fields), FakeClock(NOW_MS / 1000))
    client = await _open(app, "/")
    client.send(ws_login_frame(fields["api_key"], secret or fields["secret_key"], ts_ms, tolerance))
    assert await client.receive() == Frame("api-auth|" + json.dumps({"v": ok}, separators=(",", ":")))


async def test_icrypex_sim_private_channels_need_a_login() -> None:
    fields = demo_credentials("icrypex")
    app = icrypex.create_app(sim_keys(fields), FakeClock(NOW_MS / 1000))
    client = await _open(app, "/")
    client.send('subscribe|{"c":"balance","s":true}')
    assert await client.receive() == Frame('subscribe-response|{"c":"balance","s":false}')
    client.send('subscribe|{"c":"tickers","s":true}')
    assert await client.receive() == Frame('subscribe-response|{"c":"tickers","s":true}')
    client.send(ws_login_frame(fields["api_key"], fields["secret_key"], NOW_MS, 15000))
    await client.receive()
    client.send('subscribe|{"c":"balance","s":true}')
    assert await client.receive() == Frame('subscribe-response|{"c":"balance","s":true}')
    assert (await client.receive()).data.startswith("balance|")  # type: ignore[union-attr]
    client.send("what|{}")
    assert await client.receive() == Frame('error|{"m":"unknown message"}')


# --- EVEDEX ---------------------------------------------------------------------------------


class Evedex:
    def __init__(self, access_ttl_s: int = 300) -> None:
        self.fields = demo_credentials("evedex")
        self.address = Account.from_key(self.fields["wallet_private_key"]).address
        self.clock = FakeClock()
        self.sim = evedex.create_app(sim_keys(self.fields), self.clock, access_ttl_s=access_ttl_s)

    def token(self, address: str | None = None) -> str:
        return self.sim._issue(address or self.address)["accessToken"]


async def _centrifugo(client: AsgiClient, *commands: dict[str, Any]) -> dict[str, Any]:
    client.send("\n".join(json.dumps(c) for c in commands))
    received = await client.receive()
    assert isinstance(received, Frame)
    return json.loads(received.data)


async def test_evedex_sim_private_subscription_checks_the_token_and_the_user() -> None:
    venue = Evedex(access_ttl_s=60)
    client = await _open(venue.sim, "/connection/websocket")
    assert "client" in (await _centrifugo(client, {"id": 1, "connect": {}}))["connect"]
    channel = f"futures-perp:order-{venue.address}"
    other = Account.from_key("0x" + "22" * 32).address
    for data, code in [
        ({}, 103),
        ({"accessToken": "not-a-token"}, 103),
        ({"accessToken": venue.token(other)}, 103),  # someone else's token
        ({"accessToken": "é"}, 103),
    ]:
        reply = await _centrifugo(client, {"id": 2, "subscribe": {"channel": channel, "data": data}})
        assert reply["error"]["code"] == code
    expired = venue.token()
    venue.clock.advance(61)
    reply = await _centrifugo(
        client, {"id": 3, "subscribe": {"channel": channel, "data": {"accessToken": expired}}}
    )
    assert reply["error"]["code"] == 103
    reply = await _centrifugo(
        client, {"id": 4, "subscribe": {"channel": channel, "data": {"accessToken": venue.token()}}}
    )
    assert reply["subscribe"]["recoverable"] is True
    pushes = [json.loads((await client.receive()).data) for _ in range(2)]  # type: ignore[arg-type]
    assert [p["push"]["pub"]["offset"] for p in pushes] == [1, 2]
    assert (await _centrifugo(client, {"id": 5, "rpc": {}}))["error"]["code"] == 104


async def test_evedex_sim_wants_connect_first() -> None:
    venue = Evedex()
    client = await _open(venue.sim, "/connection/websocket")
    reply = await _centrifugo(client, {"id": 1, "subscribe": {"channel": "futures-perp:trade-BTCUSDT"}})
    assert reply["error"]["code"] == 107
    assert await client.receive() == Closed(3501, "bad request")
    await _refused(venue.sim, "/connection/other")

"""Streams over real sockets: client -> proxy (uvicorn) -> simulated venue (uvicorn), with the
account keys read from a real OpenBao. The simulated venues verify every login."""

from __future__ import annotations

import asyncio
import gzip
import json
from typing import Any

import pytest
import websockets
from eth_account import Account
from websockets.exceptions import ConnectionClosed, InvalidStatus

from proxy.dev.stack import LocalStack

pytestmark = pytest.mark.asyncio(loop_scope="session")
WAIT_S = 10.0  # guards against hangs only


def ws_url(stack: LocalStack, venue: str, path: str, account: str | None = None) -> str:
    return stack.url(venue, path, account).replace("http://", "ws://", 1)


def connect(stack: LocalStack, venue: str, path: str, client: str | None = "trader", **options: Any) -> Any:
    headers = stack.headers(client) if client else {}
    return websockets.connect(
        ws_url(stack, venue, path, options.pop("account", None)), additional_headers=headers, **options
    )


async def recv(ws: Any) -> str | bytes:
    async with asyncio.timeout(WAIT_S):
        data: str | bytes = await ws.recv()
        return data


def gunzip(data: str | bytes) -> dict[str, Any]:
    assert isinstance(data, bytes), "CoinEx server frames are compressed binary frames"
    return json.loads(gzip.decompress(data))


def evedex_user(stack: LocalStack) -> str:
    return Account.from_key(stack.credentials["evedex"]["wallet_private_key"]).address


async def refusal(stack: LocalStack, venue: str, path: str, client: str | None = "trader") -> Any:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(stack, venue, path, client):
            pass
    return refused.value.response


# --- each venue's login, verified by its simulated venue ----------------------------------


async def test_coinex_private_stream(stack: LocalStack) -> None:
    before = len(stack.sims["coinex"].recorder.frames)
    async with connect(stack, "coinex", "/v2/spot") as ws:
        await ws.send(
            json.dumps({"method": "order.subscribe", "params": {"market_list": ["BTCUSDT"]}, "id": 1})
        )
        assert gunzip(await recv(ws)) == {"id": 1, "code": 0, "message": "OK"}
        assert gunzip(await recv(ws))["method"] == "order.update"
    login = json.loads(stack.sims["coinex"].recorder.frames[before].data)
    assert login["method"] == "server.sign"
    assert login["params"]["access_id"] == stack.credentials["coinex"]["api_key"]


async def test_icrypex_private_stream(stack: LocalStack) -> None:
    before = len(stack.sims["icrypex"].recorder.frames)
    async with connect(stack, "icrypex", "/") as ws:
        await ws.send('subscribe|{"c":"balance","s":true}')
        assert await recv(ws) == 'subscribe-response|{"c":"balance","s":true}'
        assert str(await recv(ws)).startswith("balance|")
    login = stack.sims["icrypex"].recorder.frames[before].text()
    assert login.startswith('api-login|{"pk":"' + stack.credentials["icrypex"]["api_key"] + '","s":"')


async def test_evedex_private_channel(stack: LocalStack) -> None:
    channel = f"futures-perp:order-{evedex_user(stack)}"
    async with connect(stack, "evedex", "/connection/websocket") as ws:
        await ws.send(json.dumps({"id": 1, "connect": {}}))
        await ws.send(json.dumps({"id": 2, "subscribe": {"channel": channel}}))
        assert "connect" in json.loads(await recv(ws))
        assert "subscribe" in json.loads(await recv(ws))
        assert json.loads(await recv(ws))["push"]["channel"] == channel


# --- forged client logins never reach the venue --------------------------------------------


async def test_forged_logins_are_dropped(stack: LocalStack) -> None:
    coinex, icrypex, evedex = (stack.sims[s].recorder for s in ("coinex", "icrypex", "evedex"))
    marks = len(coinex.frames), len(icrypex.frames), len(evedex.frames)
    forged = {"access_id": "FORGED", "signed_str": "f" * 64, "timestamp": 1}
    async with connect(stack, "coinex", "/v2/spot") as ws:
        await ws.send(json.dumps({"method": "server.sign", "params": forged, "id": 42}))
        assert gunzip(await recv(ws)) == {"id": 42, "code": 0, "message": "OK"}
    async with connect(stack, "icrypex", "/") as ws:
        await ws.send('api-login|{"pk":"FORGED","s":"x","ts":1,"n":15000}')
        assert await recv(ws) == 'api-auth|{"v":true}'
    async with connect(stack, "evedex", "/connection/websocket") as ws:
        channel = f"futures-perp:user-{evedex_user(stack)}"
        await ws.send(json.dumps({"id": 1, "connect": {"token": "FORGED"}}))
        await ws.send(
            json.dumps({"id": 2, "subscribe": {"channel": channel, "data": {"accessToken": "FORGED"}}})
        )
        await recv(ws)
        assert "subscribe" in json.loads(await recv(ws))  # the proxy's token, not the forged one
    arrived = [
        f.text() for f in coinex.frames[marks[0] :] + icrypex.frames[marks[1] :] + evedex.frames[marks[2] :]
    ]
    assert arrived and not any("FORGED" in text for text in arrived)
    assert (
        sum('"server.sign"' in t for t in arrived) == 1
        and sum(t.startswith("api-login") for t in arrived) == 1
    )


# --- refusals before the upgrade ------------------------------------------------------------


async def test_denied_stream_is_refused_with_the_contract_error(stack: LocalStack) -> None:
    connections = len(stack.sims["coinex"].recorder.connections)
    response = await refusal(stack, "coinex", "/v2/withdraw-updates")
    assert response.status_code == 403
    assert response.headers["x-signing-proxy-error"] == "policy_denied"
    body = json.loads(response.body)
    assert body["error"]["code"] == "policy_denied" and "deny rule" in body["error"]["message"]
    assert body["error"]["request_id"] == response.headers["x-request-id"]
    assert len(stack.sims["coinex"].recorder.connections) == connections


@pytest.mark.parametrize(
    ("venue", "path", "client", "status", "code"),
    [
        ("coinex", "/v2/spot", None, 401, "unauthenticated"),
        ("haqqex", "/ws", "trader", 404, "unknown_route"),  # a venue without streams
        ("coinex-dead", "/v2/spot", "trader", 502, "upstream_unreachable"),
    ],
)
async def test_other_refusals(
    stack: LocalStack, venue: str, path: str, client: str | None, status: int, code: str
) -> None:
    response = await refusal(stack, venue, path, client)
    assert (response.status_code, response.headers["x-signing-proxy-error"]) == (status, code)


async def test_path_and_query_reach_the_venue_byte_for_byte(stack: LocalStack) -> None:
    async with connect(stack, "coinex", "/v2/spot?x=%2e%2e&y=%41") as ws:
        await ws.send('{"method":"server.ping","params":{},"id":1}')
        assert gunzip(await recv(ws))["data"] == {"result": "pong"}
    assert stack.sims["coinex"].recorder.connections[-1] == "/v2/spot?x=%2e%2e&y=%41"


# --- relay fidelity under a burst --------------------------------------------------------


async def test_burst_keeps_order_and_frame_types_both_ways(stack: LocalStack) -> None:
    recorder = stack.sims["coinex"].recorder
    async with connect(stack, "coinex", "/v2/spot") as ws:
        mark = len(recorder.frames)  # after the proxy's login
        sent: list[str | bytes] = []
        for i in range(200):
            text = json.dumps({"method": "server.ping", "params": {}, "id": i})
            sent.append(text if i % 2 else text.encode())  # text and binary frames alternate
        for frame in sent:
            await ws.send(frame)
        replies = [gunzip(await recv(ws)) for _ in sent]
    assert [reply["id"] for reply in replies] == list(range(200))
    assert [f.data for f in recorder.frames[mark : mark + 200]] == sent  # same bytes, same types, same order


async def test_burst_of_text_frames_from_the_venue(stack: LocalStack) -> None:
    async with connect(stack, "icrypex", "/") as ws:
        for i in range(200):
            await ws.send(f'subscribe|{{"c":"ticker@pair{i}","s":true}}')
        replies = [await recv(ws) for _ in range(200)]
    assert replies == [f'subscribe-response|{{"c":"ticker@pair{i}","s":true}}' for i in range(200)]


# --- upstream disconnects are passed on, never reconnected -------------------------------


async def test_a_venue_close_reaches_the_client_and_is_not_reconnected(stack: LocalStack) -> None:
    connections = len(stack.sims["evedex"].recorder.connections)
    async with connect(stack, "evedex", "/connection/websocket") as ws:
        await ws.send(
            json.dumps({"id": 1, "subscribe": {"channel": "futures-perp:trade-BTCUSDT"}})
        )  # before connect
        assert json.loads(await recv(ws))["error"]["code"] == 107
        with pytest.raises(ConnectionClosed) as closed:
            await recv(ws)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (3501, "bad request")
    assert len(stack.sims["evedex"].recorder.connections) == connections + 1

"""The demo tour's stream steps: one private stream per venue that has streams.

Each step opens ``ws://<proxy>/<venue>/main/<stream path>`` with only the client token,
subscribes like the venue's SDKs do, and waits for the first *private* event: the proxy
logged in with the account's keys (CoinEx ``server.sign``, Icrypex ``api-login``) or put the
EVEDEX access token into the private subscription, and the simulated venue verified it.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from eth_account import Account

from proxy.dev.stack import LocalStack

Row = tuple[str, str, bool, str, int]
_EVENT_WAIT_S = 10.0


@dataclass(frozen=True)
class StreamStep:
    title: str
    scheme: str
    path: str
    subscribe: Callable[[LocalStack], list[str]]  # the client's frames, no key in them
    event: Callable[[str | bytes], str | None]  # a private event's summary, else None


def _coinex_event(data: str | bytes) -> str | None:
    message = json.loads(gzip.decompress(data)) if isinstance(data, bytes) else {}
    if message.get("method") != "order.update":
        return None
    return f"order.update (order {message['data']['order']['order_id']}, gzip frame)"


def _icrypex_event(data: str | bytes) -> str | None:
    if not (isinstance(data, str) and data.startswith("order|")):
        return None
    return f"order event (order {json.loads(data.partition('|')[2])['id']})"


def _evedex_subscribe(stack: LocalStack) -> list[str]:
    user = Account.from_key(stack.credentials["evedex"]["wallet_private_key"]).address
    subscribe = {"id": 2, "subscribe": {"channel": f"futures-perp:order-{user}"}}
    return [json.dumps({"id": 1, "connect": {}}), json.dumps(subscribe)]


def _evedex_event(data: str | bytes) -> str | None:
    push = json.loads(data).get("push") if isinstance(data, str) else None
    if not isinstance(push, dict):
        return None
    return f"publication on {push['channel'].rsplit('-', 1)[0]}-<user>"


STREAM_STEPS = [
    StreamStep(
        "CoinEx private stream (server.sign by the proxy)",
        "coinex",
        "/v2/spot",
        lambda _stack: [
            json.dumps({"method": "order.subscribe", "params": {"market_list": ["BTCUSDT"]}, "id": 1})
        ],
        _coinex_event,
    ),
    StreamStep(
        "Icrypex private stream (api-login by the proxy)",
        "icrypex",
        "/",
        lambda _stack: ['subscribe|{"c":"order","s":true}'],
        _icrypex_event,
    ),
    StreamStep(
        "EVEDEX private channel (access token injected)",
        "evedex",
        "/connection/websocket",
        _evedex_subscribe,
        _evedex_event,
    ),
]


async def stream_rows(stack: LocalStack) -> list[Row]:
    rows = []
    async with aiohttp.ClientSession() as session:
        for step in STREAM_STEPS:
            if step.scheme in stack.sims:
                request = f"WS /{step.scheme}/{stack.account}{step.path}"
                rows.append((step.title, request, *await _run_stream(stack, session, step)))
    return rows


async def _run_stream(
    stack: LocalStack, session: aiohttp.ClientSession, step: StreamStep
) -> tuple[bool, str, int]:
    url = stack.url(step.scheme, step.path).replace("http://", "ws://", 1)
    try:
        async with session.ws_connect(url, headers=stack.headers()) as ws:
            for frame in step.subscribe(stack):
                await ws.send_str(frame)
            return True, await _first_event(ws, step), 101
    except aiohttp.WSServerHandshakeError as exc:
        return (
            False,
            f"upgrade refused: {exc.headers.get('x-signing-proxy-error') if exc.headers else exc.status}",
            exc.status,
        )
    except (TimeoutError, aiohttp.ClientError, ValueError, KeyError) as exc:
        return False, f"no private event ({type(exc).__name__})", 101


async def _first_event(ws: aiohttp.ClientWebSocketResponse, step: StreamStep) -> str:
    async with asyncio.timeout(_EVENT_WAIT_S):
        while True:
            message = await ws.receive()
            if message.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                raise ValueError(f"stream ended: {ws.close_code}")
            data: Any = message.data
            summary = step.event(data)
            if summary is not None:
                return "private event: " + summary

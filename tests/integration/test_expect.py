"""``Expect`` is handled at the edge (issue 14, item 7).

The proxy answers ``100 Continue`` itself when it is ready for the body (uvicorn sends it
on the first body read, i.e. only after identity and policy let the request on), reads
the whole body, and forwards a complete request without ``Expect``. Forwarding ``Expect:
100-continue`` made aiohttp hold the body back until the venue sent ``100 Continue``;
a venue that just waits for the body (the raw-socket upstream here) never does, and the
request ended in 504. Any other expectation is refused with 417 ``expectation_failed``
and nothing is sent; a refused request never gets a ``100 Continue``.
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit

import pytest

from proxy.dev.stack import LocalStack
from tests.integration.faultserver import FaultServer

pytestmark = pytest.mark.asyncio(loop_scope="session")

ORDER = json.dumps(
    {"market": "BTCUSDT", "side": "buy", "type": "limit", "amount": "1", "price": "1"}
).encode()
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def _head(stack: LocalStack, venue: str, *headers: str, token: bool = True, version: str = "1.1") -> bytes:
    lines = [f"POST /{venue}/main/v2/spot/order HTTP/{version}", "Host: proxy", "Connection: close"]
    if token:
        lines.append(f"Proxy-Authorization: Bearer {stack.clients['trader'].token}")
    lines += [f"Content-Length: {len(ORDER)}", "Content-Type: application/json", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _exchange(url: str, head: bytes, body: bytes, wait_for_continue: bool) -> bytes:
    """Send the head; optionally wait for ``100 Continue`` before the body; all bytes back."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(head)
        await writer.drain()
        first = b""
        if wait_for_continue:
            first = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
            if first != CONTINUE:  # a final answer instead: the body is never sent
                return first + await asyncio.wait_for(reader.read(), timeout=10)
        writer.write(body)
        await writer.drain()
        return first + await asyncio.wait_for(reader.read(), timeout=15)
    finally:
        writer.close()


def _status(data: bytes) -> int:
    return int(data.split(b" ", 2)[1])


def _final(data: bytes) -> bytes:
    return data[len(CONTINUE) :] if data.startswith(CONTINUE) else data


@pytest.mark.parametrize("wait_for_continue", [True, False], ids=["waits", "sends-at-once"])
@pytest.mark.parametrize("value", ["100-continue", "100-Continue"])
async def test_100_continue_is_answered_here_and_never_forwarded(
    stack: LocalStack, faulty: FaultServer, value: str, wait_for_continue: bool
) -> None:
    faulty.mode = "ok"  # a raw-socket venue: reads head + body, then answers; never sends 100
    before = len(faulty.seen)
    data = await _exchange(
        stack.proxy_url, _head(stack, "coinex-faulty", f"Expect: {value}"), ORDER, wait_for_continue
    )
    assert data.startswith(CONTINUE)  # the client was told to go on
    assert _status(_final(data)) == 200, data[:300]
    assert faulty.seen[before:] == [b"POST /v2/spot/order HTTP/1.1"]
    # And at the simulated venue: the body arrived whole, without Expect.
    sim = stack.sims["coinex"]
    head = _head(stack, "coinex", f"Expect: {value}")
    data = await _exchange(stack.proxy_url, head, ORDER, wait_for_continue)
    assert _status(_final(data)) == 200
    seen = sim.recorder.requests[-1]
    assert seen.body == ORDER and seen.header("expect") is None


@pytest.mark.parametrize("value", ["something-else", "100-continue, foo", "100-continue;x=1", "", "200-ok"])
async def test_unknown_expectation_is_417_and_nothing_sent(stack: LocalStack, value: str) -> None:
    sim = stack.sims["coinex"]
    before = len(sim.recorder.requests)
    data = await _exchange(stack.proxy_url, _head(stack, "coinex", f"Expect: {value}"), ORDER, False)
    final = _final(data)
    assert _status(final) == 417, final[:300]
    assert b"x-signing-proxy-error: expectation_failed" in final.lower()
    assert json.loads(final.partition(b"\r\n\r\n")[2])["error"]["code"] == "expectation_failed"
    assert len(sim.recorder.requests) == before


async def test_refused_request_gets_no_100_continue(stack: LocalStack) -> None:
    sim = stack.sims["coinex"]
    before = len(sim.recorder.requests)
    data = await _exchange(
        stack.proxy_url, _head(stack, "coinex", "Expect: 100-continue", token=False), ORDER, True
    )
    assert _status(data) == 401  # final answer straight away: the body is not wanted
    assert not data.startswith(CONTINUE)
    assert len(sim.recorder.requests) == before


async def test_http10_expectation_is_ignored(stack: LocalStack) -> None:
    """RFC 9110 §10.1.1: a server MUST ignore 100-continue in an HTTP/1.0 request."""
    head = _head(stack, "coinex", "Expect: 100-continue", version="1.0")
    data = await _exchange(stack.proxy_url, head, ORDER, False)
    assert not data.startswith(CONTINUE)
    assert _status(data) == 200
    assert stack.sims["coinex"].recorder.requests[-1].body == ORDER

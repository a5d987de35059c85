"""Slow clients are cut off (issue 14, item 5), on the real served process over raw sockets.

A request head trickled a byte at a time, a body that never completes (or trickles),
an idle connection: each is closed once its deadline passes (``listen.header_timeout_s``
from the head's first byte, ``listen.body_timeout_s`` for the whole body), with 408
``request_timeout`` in the error contract where an answer is still possible, and nothing
reaches Vault or the venue. Connections over ``listen.max_connections`` are closed on
accept. The deadlines are configured small here so the tests stay quick; every wait is
bounded far above them (a test fails when the proxy keeps the connection, it never
measures how fast the proxy was).
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import pytest_asyncio

from proxy.dev.serve_process import ServeProcess
from proxy.dev.stack import LocalStack
from proxy.identity import token_sha256
from tests.integration.rawhttp import open_raw, read_until_closed
from tests.integration.served import served_copy

pytestmark = pytest.mark.asyncio(loop_scope="session")

HEADER_S, BODY_S = 0.5, 1.0
STEP_S = 0.1  # one byte per step: a trickle far slower than any deadline allows
BALANCE = "/coinex/main/v2/assets/spot/balance"
ORDER = "/coinex/main/v2/spot/order"


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def proxy(stack: LocalStack, tmp_path_factory):
    # One health pass (the warm-up) at start, none during the test: lookups then come from requests.
    config = {"listen": {"header_timeout_s": HEADER_S, "body_timeout_s": BODY_S}, "health_interval_s": 3600}
    served = await served_copy(stack, tmp_path_factory.mktemp("slow"), config=config).start()
    yield served
    await served.stop()


async def _trickle(url: str, data: bytes, prefix: bytes = b"") -> tuple[bytes, int]:
    """Send ``prefix`` at once, then ``data`` a byte per step; stop when the proxy closes.

    Returns what the proxy sent and how many trickled bytes went out (all of them: the
    proxy never closed, and the caller's assertion fails)."""
    reader, writer = await open_raw(url)
    sent = 0
    try:
        writer.write(prefix)
        for byte in data:
            writer.write(bytes([byte]))
            await writer.drain()
            sent += 1
            try:
                chunk = await asyncio.wait_for(reader.read(65536), timeout=STEP_S)
            except TimeoutError:
                continue
            return chunk + (await read_until_closed(reader) if chunk else b""), sent
        return b"", sent
    except ConnectionError:
        return b"", sent
    finally:
        writer.close()


def _parse(data: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split(" ")[1]), headers, body


def _assert_408(data: bytes, request_id: str | None = None) -> None:
    status, headers, body = _parse(data)
    assert status == 408, data[:300]
    assert headers["x-signing-proxy-error"] == "request_timeout"
    assert headers["connection"] == "close"
    error = json.loads(body)["error"]
    assert error["code"] == "request_timeout"
    if request_id is not None:
        assert error["request_id"] == request_id == headers["x-request-id"]


def _head(stack: LocalStack, line: str, *headers: str, token: bool = True) -> bytes:
    lines = [line, "Host: proxy"]
    if token:
        lines.append(f"Proxy-Authorization: Bearer {stack.clients['trader'].token}")
    return ("\r\n".join([*lines, *headers]) + "\r\n\r\n").encode()


async def _vault_lookups(proxy: ServeProcess) -> float:
    async with httpx.AsyncClient(timeout=10) as http:
        text = (await http.get(f"{proxy.admin_url}/metrics")).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("signing_proxy_vault_lookups_total")
    )


def _sent_to_venues(stack: LocalStack) -> int:
    return sum(len(sim.recorder.requests) for sim in stack.sims.values())


async def test_stalled_requests_touch_neither_vault_nor_venue(stack: LocalStack, proxy: ServeProcess) -> None:
    """After the start-up warm-up pass (and with no other health pass during the test), any
    Vault lookup made for a stalled request would show in the metric."""
    venues = _sent_to_venues(stack)
    async with httpx.AsyncClient(timeout=10) as http:  # ready: the warm-up pass has run
        for _ in range(100):
            if (await http.get(f"{proxy.admin_url}/readyz")).status_code == 200:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the proxy never became ready")
    before = await _vault_lookups(proxy)
    reader, writer = await open_raw(proxy.url)  # a body that never completes
    writer.write(_head(stack, f"POST {ORDER} HTTP/1.1", "Content-Length: 100") + b'{"market":')
    _assert_408(await read_until_closed(reader))
    writer.close()
    head = _head(stack, f"POST {ORDER} HTTP/1.1", "Content-Length: 100")
    data, _ = await _trickle(proxy.url, b"x" * 100, head)
    _assert_408(data)
    assert await _vault_lookups(proxy) == before
    assert _sent_to_venues(stack) == venues
    async with httpx.AsyncClient(timeout=10) as http:  # the metric does count a real request
        ok = await http.get(proxy.url + BALANCE, headers=stack.headers())
    assert ok.status_code == 200
    assert await _vault_lookups(proxy) >= before + 1


async def test_trickled_request_line_is_cut_off(stack: LocalStack, proxy: ServeProcess) -> None:
    request = _head(stack, f"GET {BALANCE} HTTP/1.1")
    data, sent = await _trickle(proxy.url, request)
    assert sent < len(request)  # closed before the head was complete
    _assert_408(data)


async def test_trickled_headers_are_cut_off(stack: LocalStack, proxy: ServeProcess) -> None:
    headers = b"X-Padding: " + b"a" * 200 + b"\r\n\r\n"
    data, sent = await _trickle(proxy.url, headers, prefix=f"GET {BALANCE} HTTP/1.1\r\nHost: p\r\n".encode())
    assert sent < len(headers)
    _assert_408(data)


async def test_leading_empty_lines_do_not_keep_a_connection(proxy: ServeProcess) -> None:
    crlf = b"\r\n" * 200  # allowed before a request line; no request ever begins
    data, sent = await _trickle(proxy.url, crlf)
    assert sent < len(crlf)
    assert data == b"" or _parse(data)[0] == 408


async def test_idle_connection_is_closed_silently(proxy: ServeProcess) -> None:
    reader, writer = await open_raw(proxy.url)
    try:
        assert await read_until_closed(reader) == b""  # no byte sent: nothing to answer
    finally:
        writer.close()


@pytest.mark.parametrize(
    ("framing", "partial"),
    [("Content-Length: 100", b'{"market": "BTC'), ("Transfer-Encoding: chunked", b"a\r\n0123456789\r\n")],
    ids=["content-length", "chunked"],
)
async def test_body_that_never_completes_gets_408(
    stack: LocalStack, proxy: ServeProcess, framing: str, partial: bytes
) -> None:
    venues = _sent_to_venues(stack)
    reader, writer = await open_raw(proxy.url)
    try:
        head = _head(stack, f"POST {ORDER} HTTP/1.1", framing, "X-Request-Id: stalled-1")
        writer.write(head + partial)
        _assert_408(await read_until_closed(reader), "stalled-1")
    finally:
        writer.close()
    assert _sent_to_venues(stack) == venues


async def test_trickled_body_is_cut_off_by_the_whole_body_deadline(
    stack: LocalStack, proxy: ServeProcess
) -> None:
    """A byte every step never lets an idle (between-reads) timeout fire; ours counts the whole body."""
    venues = _sent_to_venues(stack)
    body = b"x" * 200
    head = _head(stack, f"POST {ORDER} HTTP/1.1", "Content-Length: 200")
    data, sent = await _trickle(proxy.url, body, head)
    assert sent < len(body)
    _assert_408(data)
    assert _sent_to_venues(stack) == venues


async def test_kept_alive_connection_times_out_its_next_request(
    stack: LocalStack, proxy: ServeProcess
) -> None:
    reader, writer = await open_raw(proxy.url)
    try:
        writer.write(_head(stack, f"GET {BALANCE} HTTP/1.1"))
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
        status, headers, _ = _parse(head)
        assert status == 200
        await reader.readexactly(int(headers["content-length"]))
        writer.write(b"GET /coin")  # the next request starts, and stalls
        _assert_408(await read_until_closed(reader))
    finally:
        writer.close()


async def test_refused_request_with_a_stalled_body_is_closed(stack: LocalStack, proxy: ServeProcess) -> None:
    """Refused before its body is read (no token: 401), the connection still closes at the deadline."""
    reader, writer = await open_raw(proxy.url)
    try:
        writer.write(_head(stack, f"POST {ORDER} HTTP/1.1", "Content-Length: 100", token=False) + b"{")
        data = await read_until_closed(reader)
    finally:
        writer.close()
    assert _parse(data)[0] == 401
    assert data.count(b"HTTP/1.1") == 1  # the 401, and nothing after it


async def test_connections_over_the_cap_are_closed_on_accept(stack: LocalStack, tmp_path) -> None:
    config = {"listen": {"max_connections": 3, "header_timeout_s": 60}}
    served = await served_copy(stack, tmp_path, config=config).start()
    held = [await open_raw(served.url) for _ in range(3)]
    try:
        reader, writer = await open_raw(served.url)
        assert await read_until_closed(reader) == b""  # refused before a byte was read
        writer.close()
        held.pop()[1].close()  # a slot frees up
        async with httpx.AsyncClient(timeout=10) as http:
            for _ in range(100):
                try:
                    response = await http.get(served.url + BALANCE, headers=stack.headers())
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
            else:
                raise AssertionError("no connection accepted after a slot freed up")
        assert response.status_code == 200
    finally:
        for _, w in held:
            w.close()
        await served.stop()


async def test_body_deadline_waits_for_our_100_continue(stack: LocalStack, tmp_path) -> None:
    """A client that asked for ``100 Continue`` sends its body only once we answer it, and we
    answer only when the request is admitted: a rate-limit queue longer than the body
    deadline is our delay, not the client's."""
    token = "queued-client-token-for-the-100-continue-test"
    clients = {
        "queued": {
            "token_sha256": token_sha256(token),
            "rate_limit": {"per_second": 1, "burst": 1},  # the second request queues ~1 s
            "allow": [{"venue": "coinex", "methods": ["POST"], "paths": ["/v2/spot/order"]}],
        }
    }
    config = {"listen": {"body_timeout_s": 0.3}, "rate_limits": {"max_wait_ms": 5000}}
    served = await served_copy(stack, tmp_path, clients=clients, config=config).start()
    body = b'{"market": "BTCUSDT", "side": "buy", "type": "limit", "amount": "1", "price": "1"}'
    head = (
        f"POST {ORDER} HTTP/1.1\r\nHost: p\r\nProxy-Authorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    ).encode()
    try:
        statuses = []
        for _ in range(2):
            reader, writer = await open_raw(served.url)
            writer.write(head + b"Expect: 100-continue\r\n\r\n")
            interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
            assert interim == b"HTTP/1.1 100 Continue\r\n\r\n", interim
            writer.write(body)
            final = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
            statuses.append(_parse(final)[0])
            writer.close()
        assert statuses == [200, 200]
    finally:
        await served.stop()

"""Connections the server layer refuses are counted (``signing_proxy_connections_refused_total``).

Before any request reaches the app, ``proxy.server`` cuts off a head that does not arrive in
time (408), a connection that sends nothing, a body that does not complete (408), and
connections over ``listen.max_connections``. Each is counted under one of a fixed set of
``reason`` labels, on the real served process over raw sockets. Deadlines are small so the
tests stay quick; every wait is bounded far above them (nothing here measures speed).
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
import pytest_asyncio

from proxy.dev.serve_process import ServeProcess
from proxy.dev.stack import LocalStack
from tests.integration.rawhttp import open_raw, read_until_closed
from tests.integration.served import served_copy

pytestmark = pytest.mark.asyncio(loop_scope="session")

REASONS = ("header_timeout", "body_timeout", "no_request", "max_connections")


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def proxy(stack: LocalStack, tmp_path_factory):
    config = {"listen": {"header_timeout_s": 0.5, "body_timeout_s": 1.0}}
    served = await served_copy(stack, tmp_path_factory.mktemp("refused"), config=config).start()
    yield served
    await served.stop()


async def _refused(proxy: ServeProcess) -> dict[str, float]:
    async with httpx.AsyncClient(timeout=10) as http:
        text = (await http.get(f"{proxy.admin_url}/metrics")).text
    counts = {}
    for line in text.splitlines():
        if line.startswith("signing_proxy_connections_refused_total{"):
            labels, value = line.rsplit(" ", 1)
            counts[labels.split('reason="', 1)[1].split('"', 1)[0]] = float(value)
    return counts


async def _send_and_wait_close(url: str, data: bytes) -> bytes:
    reader, writer = await open_raw(url)
    try:
        writer.write(data)
        await writer.drain()
        return await read_until_closed(reader)
    finally:
        writer.close()


async def test_every_reason_is_exported_from_the_start(proxy: ServeProcess) -> None:
    assert set(await _refused(proxy)) == set(REASONS)  # a fixed set: nothing from the client


async def test_a_stalled_head_is_counted(proxy: ServeProcess) -> None:
    before = await _refused(proxy)
    answer = await _send_and_wait_close(proxy.url, b"GET /coinex/main/v2/assets HTTP/1.1\r\nHost: x")
    assert answer.startswith(b"HTTP/1.1 408")
    after = await _refused(proxy)
    assert after["header_timeout"] == before["header_timeout"] + 1
    assert after["body_timeout"] == before["body_timeout"]


async def test_a_connection_that_sends_nothing_is_counted(proxy: ServeProcess) -> None:
    before = await _refused(proxy)
    assert await _send_and_wait_close(proxy.url, b"") == b""
    after = await _refused(proxy)
    assert after["no_request"] == before["no_request"] + 1
    assert after["header_timeout"] == before["header_timeout"]


async def test_a_stalled_body_is_counted(stack: LocalStack, proxy: ServeProcess) -> None:
    before = await _refused(proxy)
    head = (
        "POST /coinex/main/v2/spot/order HTTP/1.1\r\nHost: proxy\r\n"
        f"Proxy-Authorization: Bearer {stack.clients['trader'].token}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    )
    answer = await _send_and_wait_close(proxy.url, head.encode() + b'{"market"')
    assert answer.startswith(b"HTTP/1.1 408")
    after = await _refused(proxy)
    assert after["body_timeout"] == before["body_timeout"] + 1


async def test_connections_over_the_cap_are_counted(stack: LocalStack, tmp_path) -> None:
    # A long head deadline: the held connections stay open while the extra ones are refused.
    config = {"listen": {"max_connections": 3, "header_timeout_s": 60}}
    served = await served_copy(stack, tmp_path, config=config).start()
    held: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    try:
        held += [await open_raw(served.url) for _ in range(3)]
        before = await _refused(served)
        for _ in range(2):
            reader, writer = await open_raw(served.url)
            assert await read_until_closed(reader) == b""  # refused before a byte was read
            writer.close()
        after = await _refused(served)
        assert after["max_connections"] == before["max_connections"] + 2
        assert after["no_request"] == before["no_request"]
    finally:
        for _, writer in held:
            writer.close()
        await served.stop()

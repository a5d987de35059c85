"""Stream limits and login failure over real sockets, on a stack with small ``websocket:`` limits."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import pytest_asyncio
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from proxy.dev.stack import LocalStack
from proxy.sim.credentials import demo_credentials

pytestmark = pytest.mark.asyncio(loop_scope="session")
WAIT_S = 10.0  # guards against hangs only
LIMITS = {
    "max_connections_per_client": 3,
    "max_connections_per_key": 2,
    "idle_timeout_s": 2,
    "max_frame_bytes": 4096,
}


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def small():
    async with LocalStack(
        schemes=("coinex",), unseeded_accounts=("wrong", "spare"), extra_config={"websocket": LIMITS}
    ) as stack:
        fields = stack.credentials["coinex"]
        stack.vault.put_secret(
            "signing-proxy/coinex/wrong", {**fields, "secret_key": demo_credentials("coinex")["secret_key"]}
        )
        stack.vault.put_secret("signing-proxy/coinex/spare", fields)
        yield stack


def connect(stack: LocalStack, account: str = "main", path: str = "/v2/spot") -> Any:
    url = stack.url("coinex", path, account).replace("http://", "ws://", 1)
    return websockets.connect(url, additional_headers=stack.headers())


async def closed_with(ws: Any) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as closed:
        async with asyncio.timeout(WAIT_S):
            while True:
                await ws.recv()
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def refused(stack: LocalStack, account: str) -> Any:
    with pytest.raises(InvalidStatus) as refusal:
        async with connect(stack, account):
            pass
    return refusal.value.response


async def open_streams(stack: LocalStack) -> int:
    assert stack.app is not None and stack.app.streams is not None
    return stack.app.streams.limits.open_streams()


async def settled(stack: LocalStack, count: int) -> None:
    """Wait until the proxy has released the slots of streams that ended (bounded)."""
    async with asyncio.timeout(WAIT_S):
        while await open_streams(stack) != count:
            await asyncio.sleep(0.01)


async def test_streams_per_key_and_per_client(small: LocalStack) -> None:
    first, second = await connect(small), await connect(small)
    try:
        response = await refused(small, "main")
        assert (response.status_code, response.headers["x-signing-proxy-error"]) == (429, "rate_limited")
        assert response.headers["retry-after"] == "1"
        assert "streams of account coinex/main (max 2)" in json.loads(response.body)["error"]["message"]
        third = await connect(small, "spare")  # another key: the client's third stream
        try:
            response = await refused(small, "spare")
            assert "streams of client trader (max 3)" in json.loads(response.body)["error"]["message"]
        finally:
            await third.close()
        await first.close()
        await settled(small, 1)
        again = await connect(small)  # a closed stream gives its slot back
        await again.close()
    finally:
        await first.close()
        await second.close()
    await settled(small, 0)


async def test_login_failure_closes_with_4001(small: LocalStack) -> None:
    async with connect(small, "wrong") as ws:
        code, reason = await closed_with(ws)
    assert (code, reason) == (4001, "login_failed: the venue answered server.sign with code 21002")
    await settled(small, 0)


async def test_frames_over_the_cap_close_with_1009(small: LocalStack) -> None:
    async with connect(small) as ws:
        await ws.send(json.dumps({"method": "server.ping", "params": {"pad": "x" * 5000}, "id": 1}))
        code, reason = await closed_with(ws)
    # The server's own frame cap (ws_max_size = websocket.max_frame_bytes) closes it before the
    # frame is buffered; the relay's check covers the venue-to-client direction.
    assert code == 1009 and "4096 bytes" in reason


async def test_idle_streams_are_closed(small: LocalStack) -> None:
    async with connect(small) as ws:
        assert await closed_with(ws) == (1001, "idle_timeout: no frames for 2 s")
    await settled(small, 0)

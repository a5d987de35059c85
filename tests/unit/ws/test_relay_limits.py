"""The relay in-process: order and frame types under a burst, closes both ways, idle and
frame-size limits, and the per-client / per-key stream limits."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from proxy.ws.frames import Closed, Frame
from tests.unit.ws.conftest import World
from tests.unit.ws.harness import AsgiClient


async def accepted(client: AsgiClient) -> None:
    message = await client.handshake()
    assert message["type"] == "websocket.accept", message


# --- relay -------------------------------------------------------------------------------


async def test_relay_keeps_order_and_frame_types_under_a_burst(echo_world: Callable[..., World]) -> None:
    world = echo_world(frame_burst=1000)  # 200 frames at once: over the default per-stream burst
    client = world.connect("/evedex/main/connection/websocket")
    await accepted(client)
    sent = [f"text-{i}" if i % 2 else f"binary-{i}".encode() + b"\xff\x00" for i in range(200)]
    for data in sent:
        client.send(data)
    received = [await client.receive() for _ in sent]
    assert [frame.data for frame in received] == sent  # same bytes, same type, same order
    assert [frame.data for frame in world.connector.opened[0].received] == sent
    client.disconnect()
    await client.finished()


async def test_a_venue_close_is_passed_on_and_not_reconnected(echo_world: Callable[..., World]) -> None:
    world = echo_world()
    client = world.connect("/evedex/main/connection/websocket")
    await accepted(client)
    world.connector.opened[0].queue.put_nowait(Closed(4321, "maintenance"))
    assert await client.receive() == Closed(4321, "maintenance")
    await client.finished()
    assert len(world.connector.opened) == 1


@pytest.mark.parametrize(
    ("client_code", "venue_code"), [(1000, 1000), (4000, 4000), (1006, 1000), (1005, 1000)]
)
async def test_a_client_close_is_passed_to_the_venue(
    echo_world: Callable[..., World], client_code: int, venue_code: int
) -> None:
    world = echo_world()
    client = world.connect("/evedex/main/connection/websocket")
    await accepted(client)
    client.disconnect(client_code, "bye")
    await client.finished()
    closed = world.connector.opened[0].closed_with
    assert closed is not None and closed.code == venue_code
    assert world.gateway.limits.open_streams() == 0


async def test_idle_streams_are_closed(echo_world: Callable[..., World]) -> None:
    world = echo_world(idle_timeout_s=0.05)
    client = world.connect("/evedex/main/connection/websocket")
    await accepted(client)
    assert await client.receive() == Closed(1001, "idle_timeout: no frames for 0.05 s")
    await client.finished()
    assert world.connector.opened[0].closed_with == Closed(1000)


async def test_client_frames_over_the_cap_close_with_1009(echo_world: Callable[..., World]) -> None:
    world = echo_world(max_frame_bytes=1024)
    client = world.connect("/evedex/main/connection/websocket")
    await accepted(client)
    client.send("x" * 1024)
    assert (await client.receive()).data == "x" * 1024  # at the cap: relayed
    client.send("é" * 600)  # 1200 bytes of UTF-8: counted in bytes, not characters
    assert await client.receive() == Closed(1009, "frame_too_large: client frame over 1024 bytes")
    await client.finished()
    assert len(world.connector.opened[0].received) == 1


async def test_venue_frames_over_the_cap_close_with_1009(echo_world: Callable[..., World]) -> None:
    world = echo_world(max_frame_bytes=1024)
    client = world.connect("/evedex/main/connection/websocket")
    await accepted(client)
    world.connector.opened[0].queue.put_nowait(Frame(b"y" * 2048))
    assert await client.receive() == Closed(1009, "frame_too_large: venue frame over 1024 bytes")
    await client.finished()


# --- connection limits --------------------------------------------------------------------


async def test_streams_per_client_are_limited_before_the_upgrade(echo_world: Callable[..., World]) -> None:
    world = echo_world(max_connections_per_client=2, max_connections_per_key=10)
    first = world.connect("/evedex/main/connection/websocket")
    second = world.connect("/evedex/wrong/connection/websocket")  # another key, same client
    await accepted(first)
    await accepted(second)
    third = world.connect("/evedex/main/connection/websocket")
    response = await third.handshake()
    headers = {k.decode(): v.decode() for k, v in response["headers"]}
    assert (response["status"], headers["x-signing-proxy-error"], headers["retry-after"]) == (
        429,
        "rate_limited",
        "1",
    )
    assert "streams of client streamer (max 2)" in json.loads(response["body"])["error"]["message"]
    assert len(world.connector.opened) == 2  # refused before any venue connection
    first.disconnect()
    await first.finished()
    again = world.connect("/evedex/main/connection/websocket")
    await accepted(again)  # the slot came back when the stream ended
    for client in (second, again):
        client.disconnect()
        await client.finished()
    assert world.gateway.limits.open_streams() == 0


async def test_streams_per_key_are_limited_before_the_upgrade(echo_world: Callable[..., World]) -> None:
    world = echo_world(max_connections_per_client=10, max_connections_per_key=1)
    first = world.connect("/evedex/main/connection/websocket")
    await accepted(first)
    other_key = world.connect("/evedex/wrong/connection/websocket")
    await accepted(other_key)  # another account of the venue has its own count
    again = world.connect("/evedex/main/connection/websocket")
    response = await again.handshake()
    assert response["status"] == 429
    assert "streams of account evedex/main (max 1)" in json.loads(response["body"])["error"]["message"]
    assert len(world.connector.opened) == 2
    for client in (first, other_key):
        client.disconnect()
        await client.finished()

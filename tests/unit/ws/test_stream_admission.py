"""Issue 14 item 4: a stream open is a request, admitted and limited like REST.

The open is charged, before the upgrade and before any venue connection or login, to the
client's and the account's buckets and to the venue profile's ``stream_open`` group, and a
venue cooldown refuses it; client frames sent to the venue pass a per-stream rate.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from proxy.ws.frames import Closed
from tests.unit.ws.conftest import LIMITED, World
from tests.unit.ws.harness import AsgiClient, EchoConnector

LIMITED_HEADERS = {"Proxy-Authorization": f"Bearer {LIMITED}"}


def _refusal(response: dict[str, Any]) -> tuple[int, str, str]:
    headers = {k.decode(): v.decode() for k, v in response["headers"]}
    return (
        response["status"],
        headers["x-signing-proxy-error"],
        json.loads(response["body"])["error"]["message"],
    )


async def _accepted(client: AsgiClient) -> None:
    message = await client.handshake()
    assert message["type"] == "websocket.accept", message


async def _close(client: AsgiClient) -> None:
    client.disconnect()
    await client.finished()


async def test_a_client_rate_limited_on_rest_cannot_open_streams(make_world: Callable[..., World]) -> None:
    world = make_world(rate_limits={})
    transport = httpx.ASGITransport(app=world.app, client=("10.0.0.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://proxy") as rest:
        answers = [
            (await rest.get("/coinex/main/v2/assets/spot/balance", headers=LIMITED_HEADERS)).status_code
            for _ in range(3)
        ]
    assert answers == [200, 200, 429]  # burst 2, then the client's bucket is empty
    stream = world.connect("/coinex/main/v2/spot", token=LIMITED)
    status, code, message = _refusal(await stream.handshake())
    assert (status, code) == (429, "rate_limited")
    assert "client limited" in message
    assert world.connector.opened == []  # refused before the venue connection
    assert world.sims["coinex"].recorder.frames == []  # so no server.sign was ever sent
    assert world.gateway.limits.open_streams() == 0  # and the slot was given back


async def test_stream_opens_spend_the_clients_bucket_too(make_world: Callable[..., World]) -> None:
    world = make_world(rate_limits={})
    first = world.connect("/icrypex/main/", token=LIMITED)
    second = world.connect("/coinex/main/v2/spot", token=LIMITED)
    await _accepted(first)
    await _accepted(second)
    third = world.connect("/evedex/main/connection/websocket", token=LIMITED)
    assert _refusal(await third.handshake())[:2] == (429, "rate_limited")
    for client in (first, second):
        await _close(client)
    transport = httpx.ASGITransport(app=world.app, client=("10.0.0.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://proxy") as rest:
        response = await rest.get("/coinex/main/v2/assets/spot/balance", headers=LIMITED_HEADERS)
    assert response.status_code == 429  # two stream opens emptied the bucket REST uses


async def test_a_burst_of_30_opens_is_refused_once_the_stream_group_is_empty(
    make_world: Callable[..., World],
) -> None:
    world = make_world(EchoConnector(), rate_limits={}, max_connections_per_key=100)
    outcomes = []
    for _ in range(30):
        client = world.connect("/evedex/main/connection/websocket")
        message = await client.handshake()
        if message["type"] == "websocket.accept":
            outcomes.append(101)
            await _close(client)
        else:
            status, code, text = _refusal(message)
            outcomes.append(status)
            assert code == "rate_limited" and "account evedex/main stream_open (10/60s)" in text
    assert outcomes == [101] * 10 + [429] * 20  # the shipped profile: 10 opens per 60 s
    assert len(world.connector.opened) == 10  # no venue connection for a refused open
    other = world.connect("/evedex/wrong/connection/websocket")  # another account has its own group
    await _accepted(other)
    await _close(other)


async def test_the_stream_group_is_tuned_by_overrides_and_rest_never_charges_it(
    make_world: Callable[..., World],
) -> None:
    overrides = {"evedex/main": {"stream_open": {"limit": 2}}}
    world = make_world(EchoConnector(), rate_limits={"overrides": overrides})
    transport = httpx.ASGITransport(app=world.app, client=("10.0.0.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://proxy") as rest:
        headers = {"Proxy-Authorization": "Bearer streamer-token"}
        for _ in range(5):  # REST GETs of the stream path itself: not a stream open
            await rest.get("/evedex/main/connection/websocket", headers=headers)
    opened = []
    for _ in range(3):
        client = world.connect("/evedex/main/connection/websocket")
        message = await client.handshake()
        opened.append(message["type"] == "websocket.accept")
        if opened[-1]:
            await _close(client)
    assert opened == [True, True, False]


async def test_a_venue_cooldown_refuses_the_open_before_the_upgrade(make_world: Callable[..., World]) -> None:
    world = make_world(rate_limits={})
    await world.limiter.cool_down("coinex/main", 30, "venue answered HTTP 429")
    await world.limiter.cool_down("icrypex", 30, "venue answered HTTP 429")  # a venue-wide pause
    for path, limit in (
        ("/coinex/main/v2/spot", "venue cooldown coinex/main (venue answered HTTP 429)"),
        ("/icrypex/main/", "venue cooldown icrypex (venue answered HTTP 429)"),
    ):
        client = world.connect(path)
        response = await client.handshake()
        status, code, message = _refusal(response)
        assert (status, code) == (429, "rate_limited") and limit in message
        headers = {k.decode(): v.decode() for k, v in response["headers"]}
        assert headers["retry-after"] == "30"
    assert world.connector.opened == []
    assert world.sims["coinex"].recorder.frames == [] and world.sims["icrypex"].recorder.frames == []
    evedex = world.connect("/evedex/main/connection/websocket")  # not paused: opens
    await _accepted(evedex)
    await _close(evedex)


async def test_frames_over_the_per_stream_rate_close_the_stream_with_4429(
    echo_world: Callable[..., World],
) -> None:
    world = echo_world(frames_per_second=0.001, frame_burst=5)
    client = world.connect("/evedex/main/connection/websocket")
    await _accepted(client)
    for number in range(8):
        client.send(f"frame-{number}")
    received = [await client.receive() for _ in range(6)]
    assert [frame.data for frame in received[:5]] == [f"frame-{n}" for n in range(5)]  # type: ignore[union-attr]
    closed = received[5]
    assert isinstance(closed, Closed) and closed.code == 4429
    assert (
        closed.reason.startswith("rate_limited: ")
        and "frames to the venue (0.001/s, burst 5)" in closed.reason
    )
    venue = world.connector.opened[0]
    assert [frame.data for frame in venue.received] == [f"frame-{n}" for n in range(5)]  # 6th never sent
    assert venue.closed_with == Closed(1000, "")
    await client.finished()

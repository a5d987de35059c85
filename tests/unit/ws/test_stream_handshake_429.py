"""A venue that answers the WebSocket upgrade with HTTP 429 pauses the key, as a REST 429 does.

The venue is a raw loopback socket that answers every upgrade with ``429 Too Many Requests``
and a ``Retry-After``; the proxy's real ``AiohttpConnector`` opens the stream. The first
open reaches the venue and is refused (502, naming the venue's status); the refusal starts
the key's cooldown through the rate gate's feedback (the venue profile's ``statuses``), so
the next open is a 429 before any venue connection, and so is a REST request on that key.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest_asyncio

from proxy.ws.upstream import AiohttpConnector
from tests.unit.ws.conftest import STREAMER, World

RETRY_AFTER_S = 7


class Refusing429:
    """A loopback server answering every request (the upgrade) with 429 and Retry-After."""

    def __init__(self) -> None:
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            self.requests.append(await reader.readuntil(b"\r\n\r\n"))
            writer.write(
                b"HTTP/1.1 429 Too Many Requests\r\n"
                + f"Retry-After: {RETRY_AFTER_S}\r\n".encode()
                + b"Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    @property
    def origin(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"ws://127.0.0.1:{port}"


@pytest_asyncio.fixture
async def venue() -> AsyncIterator[Refusing429]:
    refusing = Refusing429()
    refusing.server = await asyncio.start_server(refusing._handle, "127.0.0.1", 0)
    async with refusing.server:
        yield refusing


def _refusal(response: dict[str, Any]) -> tuple[int, str, str, dict[str, str]]:
    headers = {k.decode(): v.decode() for k, v in response["headers"]}
    message = json.loads(response["body"])["error"]["message"]
    return response["status"], headers["x-signing-proxy-error"], message, headers


async def test_a_429_on_the_upgrade_starts_the_keys_cooldown(
    make_world: Callable[..., World], venue: Refusing429
) -> None:
    world = make_world(AiohttpConnector(2.0, 5.0, 65536), rate_limits={})
    pipeline = world.gateway.pipeline
    coinex = pipeline.venues["coinex"]
    pipeline.venues = {**pipeline.venues, "coinex": dataclasses.replace(coinex, ws_origin=venue.origin)}
    await world.gateway.start()
    try:
        first = world.connect("/coinex/main/v2/spot")
        status, code, message, _ = _refusal(await first.handshake())
        assert (status, code) == (502, "upstream_unreachable") and "HTTP 429" in message
        assert len(venue.requests) == 1 and venue.requests[0].startswith(b"GET /v2/spot HTTP/1.1")

        second = world.connect("/coinex/main/v2/spot")
        status, code, message, headers = _refusal(await second.handshake())
        assert (status, code) == (429, "rate_limited"), message
        assert "venue cooldown coinex" in message and "venue answered HTTP 429" in message
        assert int(headers["retry-after"]) >= RETRY_AFTER_S - 1  # the venue's Retry-After, not 1 s
        assert len(venue.requests) == 1  # the paused key never reached the venue again

        transport = httpx.ASGITransport(app=world.app, client=("10.0.0.7", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://proxy") as rest:
            response = await rest.get(
                "/coinex/main/v2/assets/spot/balance",
                headers={"Proxy-Authorization": f"Bearer {STREAMER}"},
            )
        assert response.status_code == 429  # the same cooldown REST feedback sets
        assert response.headers["x-signing-proxy-error"] == "rate_limited"
    finally:
        await world.gateway.close()

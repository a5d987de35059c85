"""In-process WebSocket plumbing for the stream tests: no sockets.

``AsgiClient`` drives an ASGI app's ``websocket`` scope as a server would (queues in both
directions). ``SimConnector`` is a ``proxy.ws.upstream.Connector`` whose venue connections
are ``AsgiClient``s on the simulated venues' apps, so the gateway logs in against the same
verifiers as the integration tests. ``EchoUpstream`` sends every frame straight back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from proxy.errors import UpstreamUnreachable
from proxy.ws.frames import Closed, Frame
from proxy.ws.upstream import UpstreamSocket

WAIT_S = 5.0  # guards against a hang; never a timing assertion

Message = dict[str, Any]


class AsgiClient:
    def __init__(
        self,
        app: Any,
        path: str,
        headers: Sequence[tuple[str, str]] = (),
        *,
        extension: bool = True,
        peer: str = "10.0.0.7",
        subprotocols: Sequence[str] = (),
    ) -> None:
        raw_path, _, query = path.partition("?")
        self.to_app: asyncio.Queue[Message] = asyncio.Queue()
        self.from_app: asyncio.Queue[Message] = asyncio.Queue()
        scope = {
            "type": "websocket",
            "path": raw_path,
            "raw_path": raw_path.encode(),
            "query_string": query.encode(),
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
            "client": (peer, 50000),
            "subprotocols": list(subprotocols),
            "extensions": {"websocket.http.response": {}} if extension else {},
        }
        self.to_app.put_nowait({"type": "websocket.connect"})
        self.task = asyncio.create_task(app(scope, self.to_app.get, self.from_app.put))

    async def next(self) -> Message:
        async with asyncio.timeout(WAIT_S):
            return await self.from_app.get()

    async def handshake(self) -> Message:
        """``websocket.accept``, a close before accepting, or the refusal response (body joined)."""
        first = await self.next()
        if first["type"] == "websocket.http.response.start":
            body = await self.next()
            first = {**first, "body": body["body"]}
            self.disconnect(1006)
            self.disconnect(1006)
        return first

    async def receive(self) -> Frame | Closed:
        message = await self.next()
        if message["type"] == "websocket.close":
            return Closed(message.get("code", 1000), message.get("reason") or "")
        text = message.get("text")
        return Frame(text) if text is not None else Frame(message["bytes"])

    def send(self, data: str | bytes) -> None:
        key = "text" if isinstance(data, str) else "bytes"
        self.to_app.put_nowait({"type": "websocket.receive", key: data})

    def disconnect(self, code: int = 1000, reason: str = "") -> None:
        self.to_app.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})

    async def finished(self) -> None:
        async with asyncio.timeout(WAIT_S):
            await self.task


class AsgiUpstream:
    """A venue connection that is an ``AsgiClient`` on a simulated venue."""

    def __init__(self, client: AsgiClient) -> None:
        self.client = client
        self.protocol: str | None = None
        self.closed_with: Closed | None = None

    async def receive(self) -> Frame | Closed:
        message = await self.client.from_app.get()
        if message["type"] == "websocket.close":
            return Closed.of(message.get("code", 1000), message.get("reason") or "")
        text = message.get("text")
        return Frame(text) if text is not None else Frame(message["bytes"])

    async def send(self, frame: Frame) -> None:
        self.client.send(frame.data)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.closed_with is None:
            self.closed_with = Closed(code, reason)
            self.client.disconnect(code, reason)


class SimConnector:
    """Venue connections to in-process simulated venues, keyed by ws origin."""

    def __init__(self, apps: dict[str, Any]) -> None:
        self.apps = apps
        self.opened: list[AsgiUpstream] = []

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def connect(self, origin: str, target: str, protocols: Sequence[str]) -> UpstreamSocket:
        if origin not in self.apps:
            raise UpstreamUnreachable(f"cannot open a WebSocket to {origin} (test)")
        client = AsgiClient(self.apps[origin], target, peer="10.9.9.9")
        accepted = await client.handshake()
        if accepted["type"] != "websocket.accept":
            raise UpstreamUnreachable(f"{origin} refused the WebSocket upgrade (test)")
        upstream = AsgiUpstream(client)
        self.opened.append(upstream)
        return upstream


class EchoUpstream:
    """A venue that sends every frame back, records them, and closes when told to."""

    def __init__(self) -> None:
        self.protocol: str | None = None
        self.received: list[Frame] = []
        self.closed_with: Closed | None = None
        self.queue: asyncio.Queue[Frame | Closed] = asyncio.Queue()

    async def receive(self) -> Frame | Closed:
        return await self.queue.get()

    async def send(self, frame: Frame) -> None:
        self.received.append(frame)
        self.queue.put_nowait(frame)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.closed_with is None:
            self.closed_with = Closed(code, reason)


class EchoConnector:
    def __init__(self) -> None:
        self.opened: list[EchoUpstream] = []

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def connect(self, origin: str, target: str, protocols: Sequence[str]) -> UpstreamSocket:
        upstream = EchoUpstream()
        self.opened.append(upstream)
        return upstream

"""Shared plumbing for the simulated venues.

Each simulated venue (``proxy/sim/<scheme>.py``) exposes
``create_app(keys, clock=None) -> SimVenue``: an ASGI app that verifies the scheme's
authentication exactly as the venue does and answers with the venue's envelope and
error codes. ``keys`` maps the venue API key to the credential fields the proxy holds in
Vault (the same shape as ``proxy.messages.Credentials``).

Every request the venue receives is appended to ``SimVenue.recorder`` *before*
verification, so tests can assert what reached the upstream, including that nothing
did, and that a forged client header never arrived.

WebSocket: a venue that has streams sets ``ws_handler``; it gets a ``SimSocket`` per
connection. Every frame the venue receives is appended to ``recorder.frames`` before the
handler looks at it (so tests can assert that a forged login frame never arrived). Without
a handler the upgrade is refused (403), as before.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from proxy.clock import Clock, SystemClock

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
SendFn = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    target: str  # raw path + "?" + raw query, exactly as received
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def header_names(self) -> set[str]:
        return {key for key, _ in self.headers}

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]

    @property
    def query(self) -> str:
        return self.target.partition("?")[2]


def server_path(raw_path: str, *, fold_case: bool = True, trailing_slash: bool = True) -> str:
    """The path a standard web server routes ``raw_path`` to (written here, not taken from the
    proxy, so that the proxy's own reading is checked against it).

    Servers route on the percent-decoded path (ASP.NET Core, Go ``net/http``, nginx,
    Starlette's ``scope["path"]``); many match routes case-insensitively (ASP.NET Core,
    Express/NestJS by default: ``fold_case``) and treat ``/x/`` as ``/x`` (ASP.NET Core,
    Express non-strict routing, Spring before 6: ``trailing_slash``). Signatures are still
    verified over the raw bytes: only routing uses this.
    """
    path = unquote(raw_path) if "%" in raw_path else raw_path
    if fold_case:
        path = path.lower()
    if trailing_slash and len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    return path


@dataclass(frozen=True)
class ReceivedFrame:
    path: str  # the WebSocket connection's raw path
    data: str | bytes  # str: a text frame, bytes: a binary frame

    def text(self) -> str:
        return self.data if isinstance(self.data, str) else self.data.decode("utf-8", "replace")


@dataclass
class Recorder:
    requests: list[ReceivedRequest] = field(default_factory=list)
    frames: list[ReceivedFrame] = field(default_factory=list)
    connections: list[str] = field(default_factory=list)  # raw path + query of each WebSocket

    def clear(self) -> None:
        self.requests.clear()
        self.frames.clear()
        self.connections.clear()

    def count(self, method: str | None = None, path: str | None = None) -> int:
        return sum(
            1
            for r in self.requests
            if (method is None or r.method == method) and (path is None or r.path == path)
        )


@dataclass(frozen=True)
class SimResponse:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = (("content-type", "application/json"),)
    delay_s: float = 0.0  # fault tests: answer late


Handler = Callable[[ReceivedRequest], Awaitable[SimResponse] | SimResponse]


class SimSocket:
    """One simulated venue WebSocket over ASGI: records every frame it receives."""

    def __init__(self, scope: Scope, receive: Receive, send: SendFn, recorder: Recorder) -> None:
        self.path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        self.query = scope.get("query_string", b"").decode("latin-1")
        self.headers = tuple((k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"])
        self._receive, self._send, self._recorder = receive, send, recorder
        self.close_code: int | None = None  # the client's close code, once it closed

    async def accept(self) -> None:
        await self._send({"type": "websocket.accept"})

    async def reject(self) -> None:
        """Refuse the upgrade (the server answers 403)."""
        await self._send({"type": "websocket.close", "code": 1008})

    async def receive(self) -> str | bytes | None:
        """The next frame (``str`` text, ``bytes`` binary), or ``None`` once the client closed."""
        message = await self._receive()
        if message["type"] != "websocket.receive":
            self.close_code = message.get("code", 1005)
            return None
        data: str | bytes = (
            message["text"] if message.get("text") is not None else message.get("bytes") or b""
        )
        self._recorder.frames.append(ReceivedFrame(self.path, data))
        return data

    async def send(self, data: str | bytes) -> None:
        await self._send({"type": "websocket.send", "text" if isinstance(data, str) else "bytes": data})

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self._send({"type": "websocket.close", "code": code, "reason": reason})


WsHandler = Callable[[SimSocket], Awaitable[None]]


class SimVenue:
    """A minimal ASGI server for one simulated venue: records, then delegates to ``handler``."""

    def __init__(
        self, name: str, handler: Handler, clock: Clock | None = None, ws_handler: WsHandler | None = None
    ) -> None:
        self.name = name
        self.handler = handler
        self.ws_handler = ws_handler
        self.clock = clock or SystemClock()
        self.recorder = Recorder()
        # Canned answers for fault tests: popped in order, after the request is recorded.
        self.scripted: list[SimResponse] = []

    async def __call__(self, scope: Scope, receive: Receive, send: SendFn) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            return
        body = await _read_body(receive)
        raw_path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"")
        target = raw_path.decode("latin-1") + (("?" + query.decode("latin-1")) if query else "")
        headers = tuple((k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"])
        request = ReceivedRequest(scope["method"], target, headers, body)
        self.recorder.requests.append(request)
        if self.scripted:
            response = self.scripted.pop(0)
            if response.delay_s:
                await asyncio.sleep(response.delay_s)
        else:
            result = self.handler(request)
            response = result if isinstance(result, SimResponse) else await result
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [(k.encode(), v.encode()) for k, v in response.headers],
            }
        )
        await send({"type": "http.response.body", "body": response.body})

    async def _websocket(self, scope: Scope, receive: Receive, send: SendFn) -> None:
        await receive()  # websocket.connect
        socket = SimSocket(scope, receive, send, self.recorder)
        self.recorder.connections.append(socket.path + ("?" + socket.query if socket.query else ""))
        if self.ws_handler is None:
            await socket.reject()
            return
        with contextlib.suppress(OSError):  # the client went away mid-send (uvicorn's ClientDisconnected)
            await self.ws_handler(socket)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _lifespan(receive: Receive, send: SendFn) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def json_response(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> SimResponse:
    import json

    extra = tuple((k.lower(), v) for k, v in (headers or {}).items())
    return SimResponse(status, json.dumps(payload).encode(), (("content-type", "application/json"), *extra))


@dataclass(frozen=True)
class Demo:
    """What the demo, the soak script and the tests send this simulated venue: a read and an
    order it accepts (bodies as a client sends them: no credentials, no signature), the order
    endpoints the demo policy lets the demo client write to, and fresh throwaway keys shaped
    like the venue's (nothing real or reusable is ever shipped)."""

    scheme: str
    label: str  # how the demo tour names the venue
    read: str  # path (and query) of a signed GET
    read_shows: str
    order: tuple[str, dict[str, Any]]  # (path, JSON body) of a signed POST
    order_is: str
    order_paths: tuple[str, ...]  # demo policy globs for writes
    credentials: Callable[[], dict[str, str]]

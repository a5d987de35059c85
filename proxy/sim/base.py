"""Shared plumbing for the simulated venues.

Each simulated venue (``proxy/sim/<scheme>.py``) exposes
``create_app(keys, clock=None) -> SimVenue``: an ASGI app that verifies the scheme's
authentication exactly as the venue does and answers with the venue's envelope and
error codes. ``keys`` maps the venue API key to the credential fields the proxy holds in
Vault (the same shape as ``proxy.credentials.Credentials``).

Every request the venue receives is appended to ``SimVenue.recorder`` *before*
verification, so tests can assert what reached the upstream, including that nothing
did, and that a forged client header never arrived.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

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


@dataclass
class Recorder:
    requests: list[ReceivedRequest] = field(default_factory=list)

    def clear(self) -> None:
        self.requests.clear()

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


class SimVenue:
    """A minimal ASGI server for one simulated venue: records, then delegates to ``handler``."""

    def __init__(self, name: str, handler: Handler, clock: Clock | None = None) -> None:
        self.name = name
        self.handler = handler
        self.clock = clock or SystemClock()
        self.recorder = Recorder()
        # Canned answers for fault tests: popped in order, after the request is recorded.
        self.scripted: list[SimResponse] = []

    async def __call__(self, scope: Scope, receive: Receive, send: SendFn) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
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

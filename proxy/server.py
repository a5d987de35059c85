"""uvicorn glue: the HTTP protocol we run the data plane on.

uvicorn's httptools protocol keeps only the path of an absolute-form request target
(``GET http://evil.example/x``), which would make such a request look like an ordinary
one. DESIGN.md says absolute-form targets are refused, so this protocol puts the raw
target back into ``raw_path``, where ``proxy.routing`` rejects anything that does not
start with ``/``. (uvicorn's h11 protocol already keeps the raw target.) It also bounds
the total size and the number of request header fields, which httptools does not, and
never sends ``100 Continue`` to an HTTP/1.0 client.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Generator
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# httptools itself bounds neither the size nor the number of header fields, and every
# header we keep may travel to the venue: refuse what no trading client needs.
MAX_HEADER_BYTES = 32 * 1024
MAX_HEADER_COUNT = 100
REFUSED = "signing_proxy.refused"  # scope key: why the edge refuses this request


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value) + 4
        if self._header_bytes > MAX_HEADER_BYTES or len(self.headers) >= MAX_HEADER_COUNT:
            self.scope[REFUSED] = "request headers too large"  # type: ignore[literal-required]
            return  # not stored: it can never be forwarded
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        absolute_form = not self.url.startswith(b"/")
        if self.expect_100_continue and self.parser.get_http_version() != "1.1":
            self.expect_100_continue = False  # RFC 9110 §10.1.1: ignored in an HTTP/1.0 request
        super().on_headers_complete()
        if absolute_form and "raw_path" in self.scope:
            # The request cycle task is created but has not run yet: the app sees this.
            self.scope["raw_path"] = self.url.partition(b"?")[0]


class ProxyServer(uvicorn.Server):
    """The data-plane server: SIGTERM/SIGINT drain in-flight requests, then exit 0.

    (uvicorn re-raises the signal after shutdown, which ends the process with -15; a
    drained, orderly stop is a success for the supervisor.)
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        stops = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in stops}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


class QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to its owner (admin listener, tests, demo)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class BackgroundServer:
    """Serve an ASGI app on a loopback port inside the running event loop."""

    def __init__(self, config: uvicorn.Config) -> None:
        self.server = QuietServer(config)
        self.url = f"http://{config.host}:{config.port}"
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def for_app(cls, app: Any, port: int, host: str = "127.0.0.1") -> BackgroundServer:
        return cls(
            uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, proxy_headers=False)
        )

    async def start(self) -> BackgroundServer:
        self._task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError(f"server on {self.url} exited during startup")
            await asyncio.sleep(0.01)
        return self

    async def stop(self) -> None:
        self.server.should_exit = True
        if self._task is not None:
            await self._task
            self._task = None

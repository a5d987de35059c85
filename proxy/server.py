"""uvicorn glue: the HTTP protocol we run the data plane on.

uvicorn's httptools protocol keeps only the path of an absolute-form request target
(``GET http://evil.example/x``), which would make such a request look like an ordinary
one. DESIGN.md says absolute-form targets are refused, so this protocol puts the raw
target back into ``raw_path``, where ``proxy.policy.routing`` rejects anything that does not
start with ``/``. (uvicorn's h11 protocol already keeps the raw target.) It also bounds
the total size and the number of request header fields, which httptools does not, and
never sends ``100 Continue`` to an HTTP/1.0 client.

Slow clients (``ClientLimits``, ``listen.*`` settings): uvicorn has no header or body read
timeout, and its keep-alive timer is cancelled by any byte, so a request head trickled at
1 byte/s, or a body that never completes, holds a connection for ever. Here a request head
must arrive within ``header_timeout_s`` of its first byte (of the connection, for the
first request) and a body within ``body_timeout_s`` of the end of its head (a whole-body
deadline: nginx's ``client_body_timeout`` only bounds the gap between two reads, which a
trickle defeats); time the proxy itself holds the body back (flow control, or a client
waiting for our ``100 Continue``) does not count. Past a deadline the client gets 408
``request_timeout`` (the error contract) when no answer has started on the connection,
and the connection is closed; a connection that never sent a byte is closed silently. The
app is told through the scope (``TIMED_OUT``): its body read fails, so nothing reaches
Vault or the venue (the body is read before credentials, ``proxy.pipeline``). Connections
beyond ``max_connections`` are closed on accept, before a byte is read (Envoy's downstream
connection limit does the same). Each such close is counted, by a fixed reason, in
``signing_proxy_connections_refused_total`` (``on_refused``: the app's metrics).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from proxy.errors import RequestTimeout, choose_request_id, render_error
from proxy.metrics import RefusedReason

log = logging.getLogger("signing_proxy.access")

# httptools itself bounds neither the size nor the number of header fields, and every
# header we keep may travel to the venue: refuse what no trading client needs.
MAX_HEADER_BYTES = 32 * 1024
MAX_HEADER_COUNT = 100
REFUSED = "signing_proxy.refused"  # scope key: why the edge refuses this request
TIMED_OUT = "signing_proxy.timed_out"  # scope key: the RequestTimeout already answered


@dataclass(frozen=True, slots=True)
class ClientLimits:
    """How long a client may take to send a request, and how many may be connected.

    nginx's ``client_header_timeout``/``client_body_timeout`` default to 60 s each; our
    clients are trading services on the same host or network, whose request heads
    arrive in one packet and bodies (at most ``upstream.max_body_bytes``, 1 MiB) in a
    few: 10 s for the head and 30 s for the whole body leave two orders of magnitude of
    slack for a healthy client, and free a slot held by a stalled one six times sooner.
    """

    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    max_connections: int = 1024


def _not_counted(reason: RefusedReason) -> None:
    pass


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    limits = ClientLimits()
    on_refused = staticmethod(_not_counted)  # a connection closed here, by reason (metrics)
    _refusals_logged_at = 0.0  # over-the-cap warnings: at most one a minute per process

    @classmethod
    def with_limits(
        cls, limits: ClientLimits, on_refused: Callable[[RefusedReason], None] | None = None
    ) -> type[GuardedHttpToolsProtocol]:
        counted = staticmethod(on_refused or _not_counted)
        return type(cls.__name__, (cls,), {"limits": limits, "on_refused": counted})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._awaiting_head = True  # between requests, and while a head is being read
        self._head_started = False  # a byte of the current head has arrived

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._refuse_connection()
            return
        self._arm(self.limits.header_timeout_s, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._awaiting_head:
            self._head_started = True
            if self._deadline is None:  # a kept-alive connection starts its next request
                self._arm(self.limits.header_timeout_s, self._head_timed_out)
        super().data_received(data)

    def handle_websocket_upgrade(self) -> None:
        self._disarm()  # the WebSocket protocol owns the transport from here
        super().handle_websocket_upgrade()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0
        self._awaiting_head = self._head_started = True
        if self._deadline is None:  # a pipelined request begins in the same read
            self._arm(self.limits.header_timeout_s, self._head_timed_out)

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
        self._disarm()
        self._awaiting_head = self._head_started = False
        super().on_headers_complete()
        if absolute_form and "raw_path" in self.scope:
            # The request cycle task is created but has not run yet: the app sees this.
            self.scope["raw_path"] = self.url.partition(b"?")[0]
        if self.cycle is not None and self.cycle.scope is self.scope:  # not a WebSocket upgrade
            self._arm(self.limits.body_timeout_s, self._body_timed_out)

    def on_message_complete(self) -> None:
        self._disarm()
        self._awaiting_head = True
        super().on_message_complete()

    # Deadlines

    def _arm(self, seconds: float, callback: Callable[[], None]) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, callback)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _head_timed_out(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.keep_alive = False  # a stalled pipelined head: finish the answer in hand, then close
            self.flow.pause_reading()
            self.on_refused("header_timeout")
            return
        if self._head_started:  # (no byte at all: nothing to answer, just close)
            error = RequestTimeout("headers", self.limits.header_timeout_s)
            request_id = choose_request_id(None)
            self._answer_timeout(error, request_id)
            # No app saw this request, so the request log line is ours.
            log.info("request", extra={"request_id": request_id, "status": 408, "error": error.code})
            self.on_refused("header_timeout")
        else:
            self.on_refused("no_request")
        self.transport.close()

    def _body_timed_out(self) -> None:
        self._deadline = None
        cycle = self.cycle
        if self.transport.is_closing() or cycle is None:
            return
        if not cycle.response_complete and (self.flow.read_paused or cycle.waiting_for_100_continue):
            # We stopped reading, or the client waits for the "100 Continue" we send on the
            # app's first body read (after admission, which may queue): our delay, not its own.
            self._arm(self.limits.body_timeout_s, self._body_timed_out)
            return
        if not cycle.response_started and not self.pipeline:
            error = RequestTimeout("body", self.limits.body_timeout_s)
            # The app logs it: its body read raises this error (proxy.edge).
            cycle.scope[TIMED_OUT] = error  # type: ignore[literal-required]
            cycle.disconnected = True  # the app's sends are dropped, its body read fails
            cycle.message_event.set()
            supplied = dict(cycle.scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
            self._answer_timeout(error, choose_request_id(supplied))
        self.on_refused("body_timeout")
        self.transport.close()

    def _answer_timeout(self, error: RequestTimeout, request_id: str) -> None:
        rendered = render_error(error, request_id)
        lines = [f"HTTP/1.1 {rendered.status} Request Timeout"]
        lines += [f"{k}: {v}" for k, v in rendered.headers]
        lines += [f"content-length: {len(rendered.body)}", "connection: close", "", ""]
        self.transport.write("\r\n".join(lines).encode("latin-1") + rendered.body)

    def _refuse_connection(self) -> None:
        now = time.monotonic()
        if now - GuardedHttpToolsProtocol._refusals_logged_at > 60:
            GuardedHttpToolsProtocol._refusals_logged_at = now
            log.warning(
                "client connection refused: listen.max_connections reached",
                extra={"max_connections": self.limits.max_connections},
            )
        self.on_refused("max_connections")
        self.transport.abort()  # before reading anything: no request of it was seen


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

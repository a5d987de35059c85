"""The data-plane edge: the bare ASGI callable every client request enters through.

A bare ASGI callable rather than a FastAPI route: PERFORMANCE.md measured framework
routing at ~170 us per request, and this app has exactly one route. FastAPI serves the
admin listener (``proxy.admin``), where its conveniences pay.

``ProxyApp`` does the HTTP edge only: request id, reading the body under the cap,
turning any refusal into the contract response (an unexpected exception into
``internal_error``, logged by class only), relaying the venue's answer, one log line and
the metrics per request. WebSocket upgrades go to ``proxy.ws``. The lifespan hooks come
from ``proxy.app.create_app``, which wires everything.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any

from proxy.errors import (
    BadRequest,
    BodyTooLarge,
    Envelope,
    ExpectationFailed,
    InternalError,
    ProxyError,
    Unauthenticated,
    choose_request_id,
    render_error,
)
from proxy.hygiene import response_headers
from proxy.logs import info_fields
from proxy.messages import Incoming
from proxy.metrics import UNKNOWN, Metrics
from proxy.pipeline import Audit, Pipeline
from proxy.readiness import Health
from proxy.server import REFUSED, TIMED_OUT
from proxy.ws.gateway import StreamGateway

log = logging.getLogger("signing_proxy.access")

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class ProxyApp:
    def __init__(
        self,
        pipeline: Pipeline,
        max_body_bytes: int,
        startup: Callable[[], Awaitable[None]] | None = None,
        shutdown: Callable[[], Awaitable[None]] | None = None,
        metrics: Metrics | None = None,
        streams: StreamGateway | None = None,
        envelopes: Mapping[str, Envelope] | None = None,
        health: Health | None = None,
    ) -> None:
        self.pipeline = pipeline
        # scheme -> that venue's error shape (proxy.signers.envelopes); empty: the plain contract body.
        self.envelopes = envelopes or {}
        self.health = health  # readiness and degradation (proxy.readiness), for the admin listener
        self.streams = streams  # WebSocket streams (proxy.ws); None: every upgrade is refused
        self.metrics = metrics or Metrics.disabled()
        self.max_body_bytes = max_body_bytes
        self._startup = startup
        self._shutdown = shutdown

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.streams is None:
            await send({"type": "websocket.close", "code": 1008, "reason": "unknown_route"})
            return
        headers = dict((k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"])
        await self.streams.serve(scope, receive, send, choose_request_id(headers.get("x-request-id")))

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        headers = tuple([(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]])
        request = Incoming(
            method=scope["method"],
            raw_path=scope.get("raw_path") or scope["path"].encode(),
            query=scope.get("query_string", b""),
            headers=headers,
            peer=(scope.get("client") or (None,))[0],
        )
        request_id = choose_request_id(request.header("x-request-id"))
        audit = Audit()
        try:
            if scope.get(REFUSED):
                raise BadRequest(scope[REFUSED])
            if not _expectation_met(headers):
                raise ExpectationFailed()
            read_body = partial(self._read_body, request, receive, scope)
            reply = await self.pipeline.handle(request, read_body, audit)
            status, out_headers, body = reply.status, response_headers(reply.headers), reply.body
            code = None
        except Exception as exc:
            error = exc if isinstance(exc, ProxyError) else _internal(exc, request_id)
            rendered = render_error(error, request_id, self._envelope(error, audit, request))
            status, out_headers, body, code = rendered.status, rendered.headers, rendered.body, error.code
        await _respond(send, status, out_headers, request_id, b"" if request.method == "HEAD" else body)
        total_s = time.perf_counter() - started
        _log_request(request, request_id, audit, status, code, total_s)
        _record(self.metrics, audit, code, total_s)

    def _envelope(self, error: ProxyError, audit: Audit, request: Incoming) -> Envelope | None:
        """The venue's error shape for this refusal, or ``None`` for the plain contract body.

        ``audit.scheme`` is set once the route names a configured venue and account. A 401
        comes before routing: it takes the shape of the scheme the first path segment is
        *named* after (``/coinex/...``), a function of the path text alone, so a stranger
        learns nothing about which venues or accounts are configured.
        """
        if not self.envelopes:
            return None
        scheme = audit.scheme
        if scheme is None and isinstance(error, Unauthenticated):
            scheme = _first_segment(request.raw_path)
        return self.envelopes.get(scheme) if scheme is not None else None

    async def _read_body(self, request: Incoming, receive: Receive, scope: Scope) -> bytes:
        declared = request.header("content-length")
        if declared is not None:
            if not declared.isdigit():
                raise BadRequest("invalid Content-Length")
            if int(declared) > self.max_body_bytes:
                raise BodyTooLarge(self.max_body_bytes)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                if scope.get(TIMED_OUT):  # the server already answered 408 and closed (proxy.server)
                    raise scope[TIMED_OUT]
                raise BadRequest("client disconnected before sending the whole body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise BodyTooLarge(self.max_body_bytes)
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    if self._startup:
                        await self._startup()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": type(exc).__name__})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._shutdown:
                    await self._shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _internal(exc: Exception, request_id: str) -> InternalError:
    log.error("internal error", extra={"request_id": request_id, "error": type(exc).__name__})
    return InternalError()


def _first_segment(raw_path: bytes) -> str | None:
    if not raw_path.startswith(b"/"):
        return None
    return raw_path[1:].partition(b"/")[0].decode("latin-1")


def _expectation_met(headers: tuple[tuple[str, str], ...]) -> bool:
    """Only ``100-continue`` (any case): uvicorn sends ``100 Continue`` on our first body
    read, i.e. after identity and policy let the request on; ``Expect`` is not forwarded."""
    return all(v.strip().lower() == "100-continue" for k, v in headers if k == "expect")


async def _respond(
    send: Send, status: int, headers: list[tuple[str, str]], request_id: str, body: bytes
) -> None:
    """Our ``X-Request-Id`` replaces any the headers carry (a venue's own, or the error's)."""
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers if k != "x-request-id"]
    raw.append((b"x-request-id", request_id.encode("latin-1")))
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _labels(audit: Audit) -> tuple[str | None, str | None]:
    """Venue and account as metric labels: configured names only (``proxy.metrics``)."""
    if audit.venue is None:
        return None, None
    venue = audit.venue if audit.venue_known else UNKNOWN
    return venue, audit.account if audit.account_known else UNKNOWN


def _record(metrics: Metrics, audit: Audit, code: str | None, total_s: float) -> None:
    upstream_s = (audit.upstream_ms or 0) / 1000
    venue, account = _labels(audit)
    metrics.request(venue, account, code or "forwarded")
    metrics.added(venue, total_s - upstream_s)
    if audit.decision is not None:
        metrics.decision(code != "policy_denied", audit.rule)
    if audit.would_deny is not None:
        metrics.reported(audit.rule)
    if audit.limit is not None and code == "rate_limited":
        metrics.limited(audit.limit)
    if audit.rate_wait_ms:
        metrics.rate_waited(venue, audit.rate_wait_ms / 1000)
    if audit.scheme is not None and audit.sign_ms is not None:
        metrics.signed(audit.scheme, audit.sign_ms / 1000)
    if audit.upstream_status is not None and venue is not None:
        metrics.upstream(venue, audit.upstream_status, upstream_s)


def _log_request(
    request: Incoming, request_id: str, audit: Audit, status: int, code: str | None, total_s: float
) -> None:
    info_fields(
        log,
        "request",
        {
            "request_id": request_id,
            "client": audit.client,
            "venue": audit.venue,
            "account": audit.account,
            "method": request.method,
            "path": audit.path,
            "decision": audit.decision,
            "would_deny": audit.would_deny,
            "limit": audit.limit,
            "status": status,
            "error": code,
            "upstream_status": audit.upstream_status,
            "upstream_ms": audit.upstream_ms,
            "sign_ms": audit.sign_ms,
            "rate_wait_ms": audit.rate_wait_ms,
            "total_ms": round(total_s * 1000, 3),
        },
    )

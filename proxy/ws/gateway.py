"""One stream through the proxy, in contract order (``proxy.ws`` docstring).

A stream is decided as what it is on the wire, the HTTP ``GET`` of its path (RFC 6455
4.1), by the REST steps themselves (``Pipeline.authorize``): identity first (401 whatever
the path), then the route (404, also for a venue without ``ws_upstream``), then the policy
with method ``GET`` and the upstream path (403). A rule with ``methods: [GET]`` (or without
``methods``) covering the path allows the stream; a deny rule on the path refuses it. Field
constraints on such a rule see the query string (a stream has no body).

The open is then admitted like a REST request, by the same pipeline calls: after the
concurrency slot (it costs nothing), ``Pipeline.admit`` (the client's and account's
buckets, the key's cooldown) and ``Pipeline.charge_venue`` with ``stream=True`` (the venue
profile's ``streams`` groups), then ``Pipeline.credentials``, the venue connection and the
login. A stream open is a request (``docs/websockets.md``). The state is read from the
pipeline at connection time, so a reload applies to the next stream; a stream keeps what it
started with.

Before the upgrade every refusal is the HTTP error contract: ``X-Signing-Proxy-Error`` and
the JSON body, sent with the ASGI ``websocket.http.response`` extension (uvicorn has it);
a server without it gets close 1008 with the error code as the reason. The venue
connection is opened *before* the client's upgrade is accepted, so an unreachable venue
is a 502/504 too, and the client gets the subprotocol the venue chose. After the upgrade
the proxy logs in, then relays; it speaks in close codes (``proxy.ws.frames``).

One log line per stream (``signing_proxy.stream``): who, which venue account and path,
the decision, how it ended and frame counts. Never frame content, keys or tokens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from proxy.errors import ProxyError, UnknownRoute, render_error
from proxy.messages import Incoming, OutgoingRequest
from proxy.pipeline import Audit, Grant, Pipeline
from proxy.policy.rules import RateSpec
from proxy.settings import WebSocketSettings
from proxy.ws import frames
from proxy.ws.base import LoginFailed, StreamContext, StreamLogin
from proxy.ws.frames import Closed
from proxy.ws.limits import ConnectionLimits, Lease
from proxy.ws.logins import LOGINS
from proxy.ws.relay import ClientSide, Ending, Relay, RelayStats
from proxy.ws.upstream import Connector, HandshakeRefused, UpstreamGone, UpstreamSocket

log = logging.getLogger("signing_proxy.stream")
_DISCONNECT_WAIT_S = 0.5
STREAM_METHOD = "GET"  # a stream is decided as the HTTP GET of its path

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(slots=True)
class _Open:
    grant: Grant
    lease: Lease
    login: StreamLogin
    upstream: UpstreamSocket


class StreamGateway:
    def __init__(
        self, pipeline: Pipeline, settings: WebSocketSettings, connector: Connector, reply_timeout_s: float
    ) -> None:
        self.pipeline = pipeline
        self.settings = settings
        self.connector = connector
        self.reply_timeout_s = reply_timeout_s  # the venue's time to answer the login
        self.limits = ConnectionLimits(settings.max_connections_per_client, settings.max_connections_per_key)

    async def start(self) -> None:
        await self.connector.start()

    async def close(self) -> None:
        await self.connector.close()

    async def serve(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        if (await receive())["type"] != "websocket.connect":
            return  # the client left before the handshake reached us
        started = self.pipeline.clock.monotonic()
        request = _incoming(scope)
        entry: dict[str, Any] = {"request_id": request_id, "path": None}
        audit = Audit()  # what admission charged: the limit that refused, the wait
        try:
            opened = await self._open(request, scope, entry, audit)
        except ProxyError as error:
            await _refuse(scope, send, error, request_id)
            entry.update(limit=audit.limit, rate_wait_ms=audit.rate_wait_ms)
            self._log(entry, started, status=error.status, error=error.code)
            await _await_disconnect(receive)
            return
        entry.update(rate_wait_ms=audit.rate_wait_ms)
        try:
            headers = [(b"x-request-id", request_id.encode())]
            await send(
                {"type": "websocket.accept", "subprotocol": opened.upstream.protocol, "headers": headers}
            )
            ending, stats = await self._stream(opened, ClientSide(receive, send))
        finally:
            opened.lease.release()
            await opened.upstream.close()
        self._log(entry, started, status=101, ending=ending, stats=stats)

    async def _open(self, request: Incoming, scope: Scope, entry: dict[str, Any], audit: Audit) -> _Open:
        pipeline = self.pipeline
        grant = await pipeline.authorize(request, _no_body, audit, stream=True)
        route, venue = grant.route, grant.venue
        login_class = LOGINS.get(venue.signer.scheme)
        if login_class is None or venue.ws_origin is None:  # settings refuse such a ws_upstream
            raise UnknownRoute(f"venue {route.venue} has no WebSocket upstream (ws_upstream)")
        entry.update(client=grant.client.name, venue=route.venue, account=route.account)
        entry.update(
            path=route.upstream_path, decision=grant.decision.reason, would_deny=grant.decision.would_deny
        )
        # The concurrency slot first (it costs nothing), then the rate limits as for REST.
        lease = self.limits.acquire(grant.client.name, grant.key)
        try:
            await pipeline.admit(grant, audit)
            opening = OutgoingRequest(STREAM_METHOD, route.target)
            charge = (await pipeline.charge_venue(venue, route.account, audit, opening, stream=True))[0]
            creds = await pipeline.credentials(venue, route.account)
            ctx = StreamContext(
                venue,
                route.account,
                creds,
                pipeline.clock,
                pipeline.login_sender(venue),
                self.reply_timeout_s,
                pipeline.transit_operator(venue, route.account, creds),
            )
            login = login_class(ctx)
            try:
                upstream = await self.connector.connect(
                    venue.ws_origin, route.target, scope.get("subprotocols") or ()
                )
            except HandshakeRefused as refused:
                # The venue's answer to the upgrade is feedback like a REST reply: a 429
                # (or the profile's statuses) pauses the key through the same cooldown.
                await pipeline.rate_gate.after_reply(charge, refused.reply)
                raise
        except BaseException:
            lease.release()
            raise
        return _Open(grant, lease, login, upstream)

    async def _stream(self, opened: _Open, client: ClientSide) -> tuple[Ending, RelayStats]:
        relay = Relay(
            client,
            opened.upstream,
            opened.login,
            self.settings.max_frame_bytes,
            self.settings.idle_timeout_s,
            self.pipeline.clock,
            RateSpec(self.settings.frames_per_second, self.settings.frame_burst),
        )
        try:
            backlog = await opened.login.login(opened.upstream)
        except LoginFailed as failed:
            closed = Closed(frames.LOGIN_FAILED, frames.fit_reason(f"login_failed: {failed.detail}"))
            ending = Ending("login_failed", closed, Closed(frames.NORMAL))
        except UpstreamGone:
            ending = Ending(
                "venue", Closed(frames.BAD_GATEWAY, "upstream_closed: the venue connection is gone"), None
            )
        except ProxyError as error:
            ending = Ending("error", frames.for_error(error), Closed(frames.NORMAL))
        except Exception as exc:  # class only: a library's message may quote key material
            log.error("stream login failed unexpectedly", extra={"error": type(exc).__name__})
            ending = Ending("error", Closed(frames.INTERNAL, "internal_error"), Closed(frames.NORMAL))
        else:
            return await relay.run(backlog), relay.stats
        await relay.finish(ending)
        return ending, relay.stats

    def _log(
        self,
        entry: dict[str, Any],
        started: float,
        status: int,
        error: str | None = None,
        ending: Ending | None = None,
        stats: RelayStats | None = None,
    ) -> None:
        entry.update(status=status, error=error)
        if ending is not None:
            to_client = ending.to_client
            entry.update(ended_by=ending.by, close_code=to_client.code if to_client else None)
        if stats is not None:
            entry.update(
                frames_to_venue=stats.to_venue, frames_to_client=stats.to_client, dropped=stats.dropped
            )
        entry["duration_ms"] = round((self.pipeline.clock.monotonic() - started) * 1000, 3)
        log.info("stream", extra=entry)


async def _no_body() -> bytes:
    return b""  # a stream open has no body: field rules see its query


def _incoming(scope: Scope) -> Incoming:
    headers = tuple((k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"])
    return Incoming(
        method=STREAM_METHOD,
        raw_path=scope.get("raw_path") or scope["path"].encode(),
        query=scope.get("query_string", b""),
        headers=headers,
        peer=(scope.get("client") or (None,))[0],
    )


async def _refuse(scope: Scope, send: Send, error: ProxyError, request_id: str) -> None:
    """The error contract before the upgrade; close 1008 + code where the server cannot say more."""
    if "websocket.http.response" not in (scope.get("extensions") or {}):
        await send({"type": "websocket.close", "code": 1008, "reason": error.code})
        return
    rendered = render_error(error, request_id)
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in rendered.headers]
    headers.append((b"content-length", str(len(rendered.body)).encode()))
    await send({"type": "websocket.http.response.start", "status": rendered.status, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": rendered.body})


async def _await_disconnect(receive: Receive) -> None:
    """Return only once the server has dropped the refused connection.

    uvicorn's websockets-sansio protocol reports a refusal sent as an HTTP response with a
    synthetic disconnect first and the real one when the socket is gone; an app that returns
    before the second logs "ASGI callable returned without completing handshake" at ERROR
    for every refusal. Bounded, so a server that sends a single disconnect costs 0.5 s.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(_DISCONNECT_WAIT_S):
            for _ in range(2):
                await receive()

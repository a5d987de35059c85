"""The data-plane ASGI app and the factory that wires a ``Pipeline`` from ``Settings``.

The data plane is a bare ASGI callable rather than a FastAPI route: PERFORMANCE.md
measured framework routing at ~170 us per request, and this app has exactly one route.
FastAPI serves the admin listener (``proxy.admin``), where its conveniences pay.

``ProxyApp`` does the HTTP edge only: request id, reading the body under the cap,
turning a ``ProxyError`` into the contract response, relaying the venue's answer, and
one log line per request. The lifespan owns the upstream client, the credential store
and the limiter.
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from proxy.clock import Clock, SystemClock
from proxy.config_errors import ConfigError
from proxy.credentials.base import CredentialStore
from proxy.credentials.transit import TransitKeys, VaultTransit
from proxy.credentials.vault import VaultStore, make_client
from proxy.credentials.vault_auth import (
    AppRoleLogin,
    ServiceAccountLogin,
    TokenKeeper,
    TokenLogin,
    VaultLogin,
)
from proxy.errors import BadRequest, BodyTooLarge, InternalError, ProxyError, render_error
from proxy.forward import Forwarder
from proxy.hygiene import HeaderPolicy, response_headers
from proxy.metrics import Metrics
from proxy.pipeline import Audit, Incoming, Pipeline, Venue
from proxy.policy import PolicySet
from proxy.policy_loader import load_policies
from proxy.ratelimit import LimiterCollector, build_limiter
from proxy.ratelimit_gate import RateGate, build_rate_limits
from proxy.server import REFUSED
from proxy.settings import Settings, validate_scheme_options
from proxy.signers import SIGNERS, owned_headers
from proxy.signers.base import SessionEvents
from proxy.signing_modes import transit_keys
from proxy.ws.gateway import StreamGateway
from proxy.ws.upstream import AiohttpConnector

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("signing_proxy.access")

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class ProxyApp:
    def __init__(
        self,
        pipeline: Pipeline,
        max_body_bytes: int,
        startup: Callable[[], Awaitable[None]] | None = None,
        shutdown: Callable[[], Awaitable[None]] | None = None,
        metrics: Metrics | None = None,
        streams: StreamGateway | None = None,
    ) -> None:
        self.pipeline = pipeline
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
        await self.streams.serve(scope, receive, send, _request_id(headers.get("x-request-id")))

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        headers = tuple((k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"])
        request = Incoming(
            method=scope["method"],
            raw_path=scope.get("raw_path") or scope["path"].encode(),
            query=scope.get("query_string", b""),
            headers=headers,
            peer=(scope.get("client") or (None,))[0],
        )
        request_id = _request_id(request.header("x-request-id"))
        audit = Audit()
        try:
            if scope.get(REFUSED):
                raise BadRequest(scope[REFUSED])
            reply = await self.pipeline.handle(request, lambda: self._read_body(request, receive), audit)
            status, out_headers, body = reply.status, response_headers(reply.headers), reply.body
            code = None
        except Exception as exc:
            error = exc if isinstance(exc, ProxyError) else _internal(exc, request_id)
            rendered = render_error(error, request_id)
            status, out_headers, body, code = rendered.status, rendered.headers, rendered.body, error.code
        out_headers = [(k, v) for k, v in out_headers if k != "x-request-id"]
        out_headers.append(("x-request-id", request_id))
        await _respond(send, status, out_headers, b"" if request.method == "HEAD" else body)
        total_s = time.perf_counter() - started
        _log_request(request, request_id, audit, status, code, total_s)
        _record(self.metrics, audit, code, total_s)

    async def _read_body(self, request: Incoming, receive: Receive) -> bytes:
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


def _request_id(supplied: str | None) -> str:
    # A client's id is echoed only when it is short and plain: it lands in our logs.
    if supplied and _REQUEST_ID.match(supplied):
        return supplied
    return uuid.uuid4().hex


async def _respond(send: Send, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _record(metrics: Metrics, audit: Audit, code: str | None, total_s: float) -> None:
    upstream_s = (audit.upstream_ms or 0) / 1000
    metrics.request(audit.venue, audit.account, code or "forwarded")
    metrics.added(audit.venue, total_s - upstream_s)
    if audit.decision is not None:
        metrics.decision(code != "policy_denied", audit.rule)
    if audit.would_deny is not None:
        metrics.reported(audit.rule)
    if audit.limit is not None and code == "rate_limited":
        metrics.limited(audit.limit)
    if audit.scheme is not None and audit.sign_ms is not None:
        metrics.signed(audit.scheme, audit.sign_ms / 1000)
    if audit.upstream_status is not None and audit.venue is not None:
        metrics.upstream(audit.venue, audit.upstream_status, upstream_s)


def _log_request(
    request: Incoming, request_id: str, audit: Audit, status: int, code: str | None, total_s: float
) -> None:
    log.info(
        "request",
        extra={
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
            "total_ms": round(total_s * 1000, 3),
        },
    )


def build_venues(settings: Settings, events: SessionEvents | None = None) -> dict[str, Venue]:
    """One signer per configured venue, built once from its validated scheme options."""
    venues = {}
    for name, config in settings.venues.items():
        signer_class = SIGNERS[config.scheme]
        options = validate_scheme_options(Path(settings.source), name, config)
        signer = signer_class(options)
        if events is not None:
            signer.events = events
        transit = transit_keys(settings.source, name, config.accounts)
        venues[name] = Venue(
            name, config.upstream, frozenset(config.account_names), signer, config.ws_upstream, transit
        )
    return venues


def build_transit(settings: Settings, store: CredentialStore) -> VaultTransit | None:
    """Vault Transit for ``signing: transit`` accounts, sharing the store's token when it can.

    Built whenever Vault is configured (it opens no connection until first used), so a
    reload that switches an account to Transit finds it ready.
    """
    vault = settings.vault
    if isinstance(store, VaultStore):
        keeper = store.keeper
    elif vault.url:
        keeper = TokenKeeper(
            make_client(vault.url, None, vault.timeout_s), build_login(settings), SystemClock()
        )
    else:
        return None
    url = vault.url or str(keeper.client.url)
    return VaultTransit(url, keeper, vault.transit_mount, vault.timeout_s, vault.transit_max_connections)


def build_store(settings: Settings, clock: Clock, metrics: Metrics | None = None) -> VaultStore:
    vault = settings.vault
    if not vault.url:
        raise ConfigError(settings.source, "vault.url", "no Vault address (set vault.url or VAULT_ADDR)")
    client = make_client(vault.url, None, vault.timeout_s)
    return VaultStore(
        client,
        clock,
        vault.kv_mount,
        vault.kv_prefix,
        vault.cache_ttl_s,
        vault.stale_grace_s,
        login=build_login(settings),
        metrics=metrics,
    )


def build_login(settings: Settings) -> VaultLogin:
    auth = settings.vault.auth
    if auth.method == "token":
        return TokenLogin(token_file=auth.token_file)
    if auth.method == "approle":
        role_id = auth.role_id or os.environ.get("VAULT_ROLE_ID")
        if not role_id:
            raise ConfigError(
                settings.source, "vault.auth.role_id", "approle needs role_id (or VAULT_ROLE_ID)"
            )
        return AppRoleLogin(role_id, auth.secret_id_file, mount=auth.mount or "approle")
    assert auth.role is not None  # validated in settings
    return ServiceAccountLogin(
        auth.role, auth.token_path, mount=auth.mount or auth.method, method=auth.method
    )


def create_app(
    settings: Settings,
    *,
    store: CredentialStore | None = None,
    clock: Clock | None = None,
    policies: PolicySet | None = None,
    metrics: Metrics | None = None,
    transit: TransitKeys | None = None,
) -> ProxyApp:
    """Wire the data plane from settings. Config and policy errors raise ``ConfigError`` here."""
    clock = clock or SystemClock()
    metrics = metrics or Metrics()
    venues = build_venues(settings, metrics.session)
    if policies is None:
        policies = load_policies(settings.policies, venues=venues)
    store = store if store is not None else build_store(settings, clock, metrics)
    up = settings.upstream
    forwarder = Forwarder(up.connect_timeout_s, up.timeout_s, up.max_connections, up.retry_idempotent)
    limiter = build_limiter(settings.rate_limits, clock)
    gate = RateGate(
        limiter,
        build_rate_limits(settings),
        settings.rate_limits.max_wait_ms,
        _client_waits(settings, policies),
    )
    metrics.registry.register(LimiterCollector(limiter))
    sessions = _share_sessions(settings, venues, store, clock)
    transit = transit if transit is not None else build_transit(settings, store)
    _transit_ready(settings, venues, transit)
    pipeline = Pipeline(
        policies,
        venues,
        store,
        limiter,
        forwarder,
        clock,
        HeaderPolicy(owned_headers()),
        rate_gate=gate,
        transit=transit,
    )
    ws = settings.websocket
    streams = StreamGateway(
        pipeline, ws, AiohttpConnector(up.connect_timeout_s, up.timeout_s, ws.max_frame_bytes), up.timeout_s
    )

    async def startup() -> None:
        await forwarder.start()
        await store.start()
        if transit is not None:
            await transit.start()
        await streams.start()

    async def shutdown() -> None:
        await streams.close()
        await forwarder.close()
        if transit is not None:
            await transit.close()
        await limiter.close()
        if sessions is not None:
            await sessions.aclose(close_connection_pool=True)
        await store.close()

    return ProxyApp(
        pipeline, up.max_body_bytes, startup=startup, shutdown=shutdown, metrics=metrics, streams=streams
    )


def _transit_ready(settings: Settings, venues: dict[str, Venue], transit: TransitKeys | None) -> None:
    if transit is not None:
        return
    for name, venue in venues.items():
        if venue.transit_keys:
            field = f"venues.{name}.accounts"
            raise ConfigError(
                settings.source, field, "signing: transit needs Vault (set vault.url or VAULT_ADDR)"
            )


def _client_waits(settings: Settings, policies: PolicySet) -> dict[str, int]:
    waits = settings.rate_limits.client_max_wait_ms
    for name in waits:
        if name not in policies.clients:
            field = f"rate_limits.client_max_wait_ms.{name}"
            raise ConfigError(settings.source, field, "no such client in the policies")
    return dict(waits)


def _share_sessions(
    settings: Settings, venues: dict[str, Venue], store: CredentialStore, clock: Clock
) -> Redis | None:
    """EVEDEX logins shared by the replicas (``proxy.sessions_redis``); the client to close."""
    config = settings.rate_limits
    enabled = config.backend == "redis" if config.shared_sessions is None else config.shared_sessions
    if not enabled or config.url is None:
        return None
    from proxy.ratelimit_redis import make_client  # redis is imported only when configured
    from proxy.sessions_redis import share_sessions

    url, timeout_s = config.url, config.timeout_s
    signers = (venue.signer for venue in venues.values())
    return share_sessions(signers, lambda: make_client(url, timeout_s), store, clock, config.key_prefix)

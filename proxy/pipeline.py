"""One request through the proxy, in contract order:

    identify -> route -> decide -> admit -> read body -> venue limits -> credentials -> sign -> forward

Each step is a small function of its own module; this file only sequences them and
records what happened (``Audit``) for the request log. Every refusal is a
``ProxyError`` raised by a step; ``proxy.edge`` renders it. Identity comes first so that
a stranger learns nothing about venues, accounts or policies (DESIGN.md). The body is
read only after the decision, so an unauthorised client cannot make us buffer 1 MiB;
when an allow rule constrains request fields (``docs/policies.md``) it is read right
after the path-level decision and before admission, so a denied order spends no tokens.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from proxy.bounded import BoundedCache
from proxy.clock import Clock
from proxy.credentials.base import CredentialStore
from proxy.credentials.transit import TransitKeys, pinned_version
from proxy.errors import (
    BadRequest,
    CredentialsUnavailable,
    PolicyDenied,
    ProxyError,
    RateLimited,
    SigningFailed,
    UnknownRoute,
)
from proxy.forward import Upstream
from proxy.hygiene import HeaderPolicy, refuse_method_override
from proxy.identity import identify
from proxy.messages import Credentials, Incoming, OutgoingRequest, UpstreamReply, require_fields
from proxy.policy.request_fields import joined_header
from proxy.policy.routing import Route, parse_route
from proxy.policy.rules import Client, Decision, PolicySet, decide, decide_request_fields
from proxy.ratelimit.gate import Charge, RateGate, RateLimits
from proxy.ratelimit.limiter import Limiter
from proxy.signers.base import Send, SignContext
from proxy.signers.keyops import KeyOperator
from proxy.venue import Venue

if TYPE_CHECKING:
    from proxy.settings import Settings

log = logging.getLogger("signing_proxy.pipeline")

ReadBody = Callable[[], Awaitable[bytes]]
DecisionKey = tuple[int, str, str, str, str]  # id(client), venue, account, method, upstream path


@dataclass(frozen=True, slots=True)
class Grant:
    """What ``Pipeline.authorize`` allowed: who, which venue account, under which policies."""

    client: Client
    route: Route
    venue: Venue
    decision: Decision
    policies: PolicySet  # the policies that decided: admission charges their buckets
    body: bytes | None = field(default=None, repr=False)  # read when field rules needed it

    @property
    def key(self) -> str:
        """The venue account the request uses: what per-key limits count."""
        return f"{self.route.venue}/{self.route.account}"


@dataclass(slots=True)
class Audit:
    """What the request log records. Never holds key material, signatures or tokens."""

    client: str | None = None
    venue: str | None = None
    account: str | None = None
    path: str | None = None
    decision: str | None = None
    rule: str | None = None  # the rule that decided (bounded: a metric label)
    would_deny: str | None = None  # report mode: let through, enforcing would deny for this reason
    scheme: str | None = None
    limit: str | None = None
    upstream_status: int | None = None
    upstream_ms: float | None = None
    sign_ms: float | None = None
    # True once the pipeline found ``venue`` / ``account`` configured: only then may they be
    # metric labels (issue 14: labels come from configured names, never the raw URL).
    venue_known: bool = False
    account_known: bool = False
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def rate_wait_ms(self) -> float:
        """How long the rate gate queued this request (0: not at all)."""
        return float(self.extra.get(RateGate.WAITED, 0.0))  # type: ignore[arg-type]


class Pipeline:
    def __init__(
        self,
        policies: PolicySet,
        venues: dict[str, Venue],
        store: CredentialStore,
        limiter: Limiter,
        forwarder: Upstream,
        clock: Clock,
        header_policy: HeaderPolicy,
        *,
        rate_gate: RateGate | None = None,
        transit: TransitKeys | None = None,
        build_venues: Callable[[Settings], dict[str, Venue]] | None = None,
    ) -> None:
        self.policies = policies  # replaced whole on reload: one reference swap is atomic
        self.venues = venues
        self.store = store
        self.limiter = limiter
        # Charges the limiter: client/policy buckets in admit, venue profile groups in
        # charge_venue, both before the signing time is taken.
        self.rate_gate = rate_gate or RateGate(limiter)
        self.forwarder = forwarder
        self.clock = clock
        self.header_policy = header_policy
        # What built ``venues`` (create_app's VenueBuilder): a reload builds through it, so its
        # signers get the same wiring (metrics, shared sessions). None: built by hand (tests).
        self.build_venues = build_venues
        self.transit = transit  # Vault Transit for ``signing: transit`` accounts (proxy.credentials.transit)
        # Path-only allow decisions of the policy set they were made under (``_decide``).
        self._decisions: tuple[PolicySet, BoundedCache[DecisionKey, Decision]] = (policies, BoundedCache())

    def swap(self, *, policies: PolicySet, venues: dict[str, Venue], limits: RateLimits) -> None:
        """Reload: the new configuration, one reference each. No await in between, so a
        request sees the old set or the new one; one in flight keeps what it started with."""
        self.venues = venues
        self.rate_gate.limits = limits
        self.policies = policies
        self._decisions = (policies, BoundedCache())  # never a decision of the old policies

    async def handle(self, request: Incoming, read_body: ReadBody, audit: Audit) -> UpstreamReply:
        grant = await self.authorize(request, read_body, audit)
        await self.admit(grant, audit)
        body = grant.body if grant.body is not None else await read_body()
        route, venue = grant.route, grant.venue
        outgoing = OutgoingRequest(
            request.method, route.target, self.header_policy.request_headers(request.headers), body
        )
        # Admit first, then take the time and sign (issue 14): the venue-profile charge may
        # queue up to max_wait_ms, which must not eat a CoinEx window or an Invex expire_at,
        # and a refused request reads no secret and spends no signature (none in Transit).
        prepaid = await self.charge_venue(venue, route.account, audit, outgoing)
        creds = await self.credentials(venue, route.account)
        ctx = SignContext(route.venue, route.account, int(self.clock.now() * 1000))
        reply = await self._sign_and_send(venue, outgoing, creds, ctx, audit, prepaid)
        audit.upstream_status = reply.status
        return reply

    async def authorize(
        self, request: Incoming, read_body: ReadBody, audit: Audit, *, stream: bool = False
    ) -> Grant:
        """identify -> route -> venue -> decide, for REST and stream opens alike.

        One snapshot of the policies for the whole decision. The path decides first; the
        body is read only when a path-matching allow rule constrains fields, i.e. only for
        an identified client the path already admits (a stream has no body: its fields are
        the query). ``stream``: the venue must have a WebSocket upstream (404 otherwise).
        """
        policies = self.policies
        client = identify(policies, request.header("proxy-authorization"), request.peer)
        audit.client = client.name
        route = parse_route(request.raw_path, request.query)
        refuse_method_override(request.headers, route.query)
        audit.venue, audit.account, audit.path = route.venue, route.account, route.upstream_path
        venue = self._venue(route, audit)
        if stream and venue.ws_origin is None:
            raise UnknownRoute(f"venue {route.venue} has no WebSocket upstream (ws_upstream)")
        audit.scheme = venue.signer.scheme  # from here on, refusals take this venue's error shape
        method, headers = request.method, request.headers
        decision = self._decide(policies, client, route.venue, route.account, method, route.upstream_path)
        body = None
        if decision.pending is not None:
            body = await read_body()
            typed, coded = joined_header(headers, "content-type"), joined_header(headers, "content-encoding")
            decision = decide_request_fields(decision, route.query, body, typed, coded, venue.signer.scheme)
        audit.decision, audit.rule = decision.reason, decision.rule
        if decision.bad_request:  # ambiguous: refused in every mode (docs/policies.md)
            raise BadRequest(decision.reason)
        # Report mode: the request goes on; the access log carries why it will be refused once
        # enforced. Metric hook: proxy.edge counts audit.would_deny per audit.rule.
        audit.would_deny = decision.would_deny
        if not decision.allowed:
            raise PolicyDenied(decision.reason)
        return Grant(client, route, venue, decision, policies, body)

    def _decide(
        self, policies: PolicySet, client: Client, venue: str, account: str, method: str, path: str
    ) -> Decision:
        """``decide``, memoised (issue 17). ``decide`` is a pure function of the client's rules
        and the four strings, so a hit is the answer it would give. Only settled allow
        decisions are kept (never a pending, denied or ambiguous one): the key is an
        identified client of this policy set, a venue account that exists (``_venue`` ran),
        and a method and path the client's allow rules admit, at most ``BoundedCache.size``
        of them. The cache belongs to one policy set: a reload (or any other set) starts empty.
        Routing, the method-override check and field rules still run for every request."""
        owner, plans = self._decisions
        if owner is not policies:
            plans = BoundedCache()
            self._decisions = (policies, plans)
        # id(): the client lives in ``policies``, which this cache keeps alive, so it is unique.
        key = (id(client), venue, account, method, path)
        decision = plans.get(key)
        if decision is None:
            decision = decide(client, venue, account, method, path)
            if decision.allowed and decision.pending is None and not decision.bad_request:
                plans.put(key, decision)
        return decision

    def _venue(self, route: Route, audit: Audit) -> Venue:
        venue = self.venues.get(route.venue)
        audit.venue_known = venue is not None
        if venue is None or route.account not in venue.accounts:
            raise UnknownRoute(f"unknown venue or account: {route.venue}/{route.account}")
        audit.account_known = True
        return venue

    async def admit(self, grant: Grant, audit: Audit) -> None:
        """The client's and the policy file's buckets (and the key's venue cooldown), in the
        policies that decided. Stream opens too (``proxy.ws.gateway``): a stream open is a request."""
        client, route = grant.client, grant.route
        try:
            gate = self.rate_gate
            await gate.admit_client(
                grant.policies, client.name, client.rate_limit, route.venue, route.account, audit.extra
            )
        except RateLimited as refused:
            audit.limit = refused.limit_name
            raise

    def accounts(self) -> list[tuple[Venue, str]]:
        """Every configured venue account, in a stable order (readiness checks each secret)."""
        return [(venue, account) for venue in self.venues.values() for account in sorted(venue.accounts)]

    def dependency_probes(self) -> dict[str, Awaitable[Any]]:
        """One probe per backend that has one: ``vault`` (the store's health, a state text)
        and ``redis`` (the limiter's ping, a bool)."""
        probes: dict[str, Awaitable[Any]] = {}
        store_health = getattr(self.store, "health", None)
        if store_health is not None:
            probes["vault"] = store_health()
        redis_ping = getattr(self.limiter, "ping", None)
        if redis_ping is not None:
            probes["redis"] = redis_ping()
        return probes

    async def credentials(self, venue: Venue, account: str) -> Credentials:
        """The account's credentials, with every field its signing mode needs (names only in errors)."""
        creds = await self.store.get(venue.name, account)
        require_fields(creds, venue.required_fields(account), venue.name, account)
        return creds

    async def charge_venue(
        self, venue: Venue, account: str, audit: Audit, request: OutgoingRequest, stream: bool = False
    ) -> list[Charge | None]:
        """The venue profile's groups for the request as the client sent it, waiting if
        queueing is allowed. Signing does not change what a group counts (method, path,
        orders in the body), so the unsigned request prices the signed one. Returns the
        charge for ``_send`` to settle (feedback) on the first send to the venue's origin.
        ``stream``: a stream open, charged to the profile's ``streams`` groups instead."""
        try:
            gate = self.rate_gate
            charge = await gate.before_send(venue.name, account, audit.client, request, audit.extra, stream)
        except RateLimited as refused:
            audit.limit = refused.limit_name
            raise
        return [charge]

    async def _sign_and_send(
        self,
        venue: Venue,
        outgoing: OutgoingRequest,
        creds: Credentials,
        ctx: SignContext,
        audit: Audit,
        prepaid: list[Charge | None],
    ) -> UpstreamReply:
        send = partial(self._send, venue, audit, prepaid)
        audit.scheme = venue.signer.scheme
        started = self.clock.monotonic()
        try:
            keys = self.transit_operator(venue, ctx.account, creds)
            if keys is None:
                return await venue.signer.flow(outgoing, creds, ctx, send)
            return await venue.signer.keyed_flow(outgoing, creds, ctx, send, keys)
        except ProxyError:
            raise
        except Exception as exc:
            # The library exception may quote key bytes: log its class only, render a fixed text.
            log.error("signer failed", extra={"scheme": venue.signer.scheme, "error": type(exc).__name__})
            raise SigningFailed(venue.signer.scheme) from None
        finally:
            # Signing time = the flow's time minus the venue round trips it made.
            flow_ms = (self.clock.monotonic() - started) * 1000
            audit.sign_ms = round(max(0.0, flow_ms - (audit.upstream_ms or 0)), 3)

    def login_sender(self, venue: Venue) -> Send:
        """Round trips for a stream login over HTTP (EVEDEX's auth API): to the venue's
        configured origins only, as in REST, uncharged like a REST flow's auth calls."""
        forwarder = self.forwarder

        async def send(request: OutgoingRequest) -> UpstreamReply:
            return await forwarder.send(request.origin or venue.origin, request)

        return send

    def transit_operator(self, venue: Venue, account: str, creds: Credentials) -> KeyOperator | None:
        """Vault Transit performs the key operation for a ``signing: transit`` account; ``None``: KV."""
        key = venue.transit_keys.get(account)
        if key is None:
            return None
        if self.transit is None:
            raise CredentialsUnavailable(
                venue.name, account, "signing: transit but no Vault Transit configured"
            )
        return self.transit.operator(venue.name, account, key, pinned_version(venue.name, account, creds))

    async def _send(
        self, venue: Venue, audit: Audit, prepaid: list[Charge | None], request: OutgoingRequest
    ) -> UpstreamReply:
        """One upstream round trip. The first request to the venue's own origin was charged
        before signing (``prepaid``); a later one in the same flow (EVEDEX's one replay after
        a 401, which carries no signed time) is charged here. The venue's answer may pause
        the key. A scheme's auth calls (``origin`` set) are not charged."""
        origin = request.origin or venue.origin
        charge = None
        if request.origin is None and prepaid:
            charge = prepaid.pop()
        elif request.origin is None and audit.account is not None:
            charge = (await self.charge_venue(venue, audit.account, audit, request))[0]
        started = self.clock.monotonic()
        try:
            reply = await self.forwarder.send(origin, request)
        finally:
            elapsed = (self.clock.monotonic() - started) * 1000
            audit.upstream_ms = round((audit.upstream_ms or 0) + elapsed, 3)
        await self.rate_gate.after_reply(charge, reply)
        return reply

"""Prometheus metrics, all in one place, on an injected registry.

Label values are bounded by construction: venue and account names come from the config,
client names and rule names from the policy files, limit names from both, error codes
from ``proxy.errors``, schemes from the signer registry, status as a class (``2xx``).
Nothing a client sends (paths, headers, ids) ever becomes a label: a venue or account
that is not configured is recorded as ``UNKNOWN`` (the edge decides, from what the
pipeline validated), and no request at all as ``-``. As defence in depth each metric
stops making new series at ``max_series``; later label sets share the ``OVERFLOW`` series
(and a warning is logged once), so a future label bug cannot grow memory without bound.

Components record through small methods (``Metrics.request(...)``); code that has no
metrics (tests, benchmarks) uses ``Metrics.disabled()``, whose methods do nothing.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# Proxy-added latency targets are sub-millisecond: resolve down to 100 us.
_FAST = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
_UPSTREAM = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# Queueing is bounded by rate_limits.max_wait_ms (at most 60 s).
_WAIT = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

CONTENT_TYPE = CONTENT_TYPE_LATEST
UNKNOWN = "_unknown"  # a venue or account named in a request but not configured
OVERFLOW = "_overflow"  # a metric over its series cap
# Why the server layer closed a connection before the app saw a request (proxy.server).
REFUSED_REASONS = ("header_timeout", "body_timeout", "no_request", "max_connections")
RefusedReason = Literal["header_timeout", "body_timeout", "no_request", "max_connections"]
MAX_SERIES = 10_000  # per metric: far above venues x accounts x outcomes of a real config

log = logging.getLogger("signing_proxy.metrics")


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None, max_series: int = MAX_SERIES) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self._series: dict[int, int] = {}  # id(metric) -> label sets made
        self.max_series = max_series
        r = self.registry
        self.requests = Counter(
            "signing_proxy_requests",
            "Requests by venue, account and outcome (forwarded or an error code).",
            ["venue", "account", "outcome"],
            registry=r,
        )
        self.upstream_status = Counter(
            "signing_proxy_upstream_responses",
            "Venue answers by status class.",
            ["venue", "status_class"],
            registry=r,
        )
        self.added_latency = Histogram(
            "signing_proxy_added_latency_seconds",
            "Time spent in the proxy, excluding the venue.",
            ["venue"],
            buckets=_FAST,
            registry=r,
        )
        self.upstream_latency = Histogram(
            "signing_proxy_upstream_latency_seconds",
            "Time waiting for the venue.",
            ["venue"],
            buckets=_UPSTREAM,
            registry=r,
        )
        self.signing = Histogram(
            "signing_proxy_signing_seconds",
            "Signing duration by scheme (excluding venue round trips).",
            ["scheme"],
            buckets=_FAST,
            registry=r,
        )
        self.rate_wait = Histogram(
            "signing_proxy_rate_wait_seconds",
            "Time a request queued for a rate limit before it was signed (queued requests only).",
            ["venue"],
            buckets=_WAIT,
            registry=r,
        )
        self.decisions = Counter(
            "signing_proxy_policy_decisions",
            "Policy decisions by result and rule.",
            ["result", "rule"],
            registry=r,
        )
        self.would_deny = Counter(
            "signing_proxy_policy_would_deny",
            "Requests a report-mode rule let through but would deny.",
            ["rule"],
            registry=r,
        )
        self.rate_limited = Counter(
            "signing_proxy_rate_limited",
            "Requests refused by a rate limit, by limit.",
            ["limit"],
            registry=r,
        )
        self.sessions = Counter(
            "signing_proxy_venue_sessions",
            "Venue session events (login, refresh, replay) by result.",
            ["venue", "event", "result"],
            registry=r,
        )
        self.vault = Counter(
            "signing_proxy_vault_lookups",
            "Credential lookups by result (hit, read, stale, error, missing, denied).",
            ["result"],
            registry=r,
        )
        self.session_lock_waits = Histogram(
            "signing_proxy_session_lock_wait_seconds",
            "Time a request waited for a venue-session lock (lock: local or shared; outcome: "
            "acquired, gave_up, unshared).",
            ["venue", "lock", "outcome"],
            buckets=_UPSTREAM,
            registry=r,
        )
        self.vault_denials = Counter(
            "signing_proxy_vault_denied",
            "Requests refused because the proxy's Vault policy denies a path (kind: kv or transit).",
            ["venue", "account", "kind"],
            registry=r,
        )

        self.connections_refused = Counter(
            "signing_proxy_connections_refused",
            "Client connections closed by the server layer before a request reached the proxy "
            "(reason: header_timeout, body_timeout, no_request, max_connections).",
            ["reason"],
            registry=r,
        )
        for reason in REFUSED_REASONS:  # a fixed set, all exported from the start (alerts see 0)
            self.connections_refused.labels(reason)

        # Degradation, set by proxy.readiness on every health pass (readiness never hides it).
        self.ready = Gauge("signing_proxy_ready", "1 when /readyz answers 200.", registry=r)
        self.dependency_up = Gauge(
            "signing_proxy_dependency_up",
            "Shared dependencies (vault, redis): 1 reachable and authenticated, 0 not.",
            ["dependency"],
            registry=r,
        )
        self.account_ok = Gauge(
            "signing_proxy_account_credentials_ok",
            "1 when the account's secret is readable (fresh or cached) and complete.",
            ["venue", "account"],
            registry=r,
        )

    def _child(self, metric: Counter | Histogram, *labels: str) -> Any:
        # prometheus_client's labels() takes a lock and validates on every call; the label
        # values are bounded (see the module docstring), so the children are kept here.
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            made = self._series.get(id(metric), 0)
            if made >= self.max_series:
                if made == self.max_series:
                    log.warning("metric series cap reached", extra={"metric": metric._name})
                    self._series[id(metric)] = made + 1
                labels = tuple(OVERFLOW for _ in labels)
                key = (id(metric), labels)
                child = self._children.get(key)
                if child is not None:
                    return child
            else:
                self._series[id(metric)] = made + 1
            child = self._children[key] = metric.labels(*labels)
        return child

    def request(self, venue: str | None, account: str | None, outcome: str) -> None:
        self._child(self.requests, venue or "-", account or "-", outcome).inc()

    def upstream(self, venue: str, status: int, upstream_s: float) -> None:
        self._child(self.upstream_status, venue, f"{status // 100}xx").inc()
        self._child(self.upstream_latency, venue).observe(upstream_s)

    def added(self, venue: str | None, seconds: float) -> None:
        self._child(self.added_latency, venue or "-").observe(max(seconds, 0.0))

    def rate_waited(self, venue: str | None, seconds: float) -> None:
        self._child(self.rate_wait, venue or "-").observe(max(seconds, 0.0))

    def signed(self, scheme: str, seconds: float) -> None:
        self._child(self.signing, scheme).observe(max(seconds, 0.0))

    def decision(self, allowed: bool, rule: str | None) -> None:
        self._child(self.decisions, "allow" if allowed else "deny", rule or "none").inc()

    def reported(self, rule: str | None) -> None:
        self._child(self.would_deny, rule or "none").inc()

    def limited(self, limit: str) -> None:
        self._child(self.rate_limited, limit).inc()

    def session(self, venue: str, event: str, result: str) -> None:
        self._child(self.sessions, venue, event, result).inc()

    def vault_lookup(self, result: str) -> None:
        self._child(self.vault, result).inc()

    def vault_denied(self, venue: str, account: str, kind: str) -> None:
        self._child(self.vault_denials, venue, account, kind).inc()

    def session_lock_wait(self, venue: str, lock: str, outcome: str, seconds: float) -> None:
        self._child(self.session_lock_waits, venue, lock, outcome).observe(max(seconds, 0.0))

    def connection_refused(self, reason: RefusedReason) -> None:
        self._child(self.connections_refused, reason).inc()

    def health(self, ready: bool, dependencies: dict[str, str], accounts: dict[str, str]) -> None:
        self.ready.set(1 if ready else 0)
        for name, state in dependencies.items():
            self.dependency_up.labels(name).set(1 if state == "ok" else 0)
        for key, state in accounts.items():
            venue, _, account = key.partition("/")
            self.account_ok.labels(venue, account).set(1 if state == "ok" else 0)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    @classmethod
    def disabled(cls) -> Metrics:
        return _Disabled()


class _Disabled(Metrics):
    def __init__(self) -> None:  # no registry, no collectors
        self.registry = CollectorRegistry()

    def request(self, venue: str | None, account: str | None, outcome: str) -> None: ...
    def upstream(self, venue: str, status: int, upstream_s: float) -> None: ...
    def added(self, venue: str | None, seconds: float) -> None: ...
    def rate_waited(self, venue: str | None, seconds: float) -> None: ...
    def signed(self, scheme: str, seconds: float) -> None: ...
    def decision(self, allowed: bool, rule: str | None) -> None: ...
    def reported(self, rule: str | None) -> None: ...
    def limited(self, limit: str) -> None: ...
    def session(self, venue: str, event: str, result: str) -> None: ...
    def vault_lookup(self, result: str) -> None: ...
    def vault_denied(self, venue: str, account: str, kind: str) -> None: ...
    def session_lock_wait(self, venue: str, lock: str, outcome: str, seconds: float) -> None: ...
    def connection_refused(self, reason: RefusedReason) -> None: ...
    def health(self, ready: bool, dependencies: dict[str, str], accounts: dict[str, str]) -> None: ...

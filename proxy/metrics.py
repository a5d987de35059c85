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
metrics (tests, benchmarks) uses ``Metrics.disabled()``, whose methods do nothing. Counters
and histograms are ``proxy.tallies``: plain numbers, no lock, for the event-loop thread that
records them (every recording method is called from it), rendered at scrape time with the
same text prometheus_client's own would give; the health gauges are prometheus_client's.
"""

from __future__ import annotations

from typing import Literal

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from proxy.tallies import Tallies

# Proxy-added latency targets are sub-millisecond: resolve down to 100 us.
_FAST = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
_UPSTREAM = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# Queueing is bounded by rate_limits.max_wait_ms (at most 60 s).
_WAIT = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

CONTENT_TYPE = CONTENT_TYPE_LATEST
UNKNOWN = "_unknown"  # a venue or account named in a request but not configured
# Why the server layer closed a connection before the app saw a request (proxy.server).
REFUSED_REASONS = ("header_timeout", "body_timeout", "no_request", "max_connections")
RefusedReason = Literal["header_timeout", "body_timeout", "no_request", "max_connections"]
MAX_SERIES = 10_000  # per metric: far above venues x accounts x outcomes of a real config


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None, max_series: int = MAX_SERIES) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.max_series = max_series
        # Counters and histograms: plain numbers, rendered at scrape time (proxy.tallies).
        t = self._tallies = Tallies(max_series)
        self.requests = t.counter(
            "signing_proxy_requests",
            "Requests by venue, account and outcome (forwarded or an error code).",
            ["venue", "account", "outcome"],
        )
        self.upstream_status = t.counter(
            "signing_proxy_upstream_responses",
            "Venue answers by status class.",
            ["venue", "status_class"],
        )
        self.added_latency = t.histogram(
            "signing_proxy_added_latency_seconds",
            "Time spent in the proxy, excluding the venue.",
            ["venue"],
            _FAST,
        )
        self.upstream_latency = t.histogram(
            "signing_proxy_upstream_latency_seconds",
            "Time waiting for the venue.",
            ["venue"],
            _UPSTREAM,
        )
        self.signing = t.histogram(
            "signing_proxy_signing_seconds",
            "Signing duration by scheme (excluding venue round trips).",
            ["scheme"],
            _FAST,
        )
        self.rate_wait = t.histogram(
            "signing_proxy_rate_wait_seconds",
            "Time a request queued for a rate limit before it was signed (queued requests only).",
            ["venue"],
            _WAIT,
        )
        self.decisions = t.counter(
            "signing_proxy_policy_decisions",
            "Policy decisions by result and rule.",
            ["result", "rule"],
        )
        self.would_deny = t.counter(
            "signing_proxy_policy_would_deny",
            "Requests a report-mode rule let through but would deny.",
            ["rule"],
        )
        self.rate_limited = t.counter(
            "signing_proxy_rate_limited",
            "Requests refused by a rate limit, by limit.",
            ["limit"],
        )
        self.sessions = t.counter(
            "signing_proxy_venue_sessions",
            "Venue session events (login, refresh, replay) by result.",
            ["venue", "event", "result"],
        )
        self.vault = t.counter(
            "signing_proxy_vault_lookups",
            "Credential lookups by result (hit, read, stale, error, missing, denied).",
            ["result"],
        )
        self.session_lock_waits = t.histogram(
            "signing_proxy_session_lock_wait_seconds",
            "Time a request waited for a venue-session lock (lock: local or shared; outcome: "
            "acquired, gave_up, unshared).",
            ["venue", "lock", "outcome"],
            _UPSTREAM,
        )
        self.vault_denials = t.counter(
            "signing_proxy_vault_denied",
            "Requests refused because the proxy's Vault policy denies a path (kind: kv or transit).",
            ["venue", "account", "kind"],
        )
        self.connections_refused = t.counter(
            "signing_proxy_connections_refused",
            "Client connections closed by the server layer before a request reached the proxy "
            "(reason: header_timeout, body_timeout, no_request, max_connections).",
            ["reason"],
        )
        for reason in REFUSED_REASONS:  # a fixed set, all exported from the start (alerts see 0)
            self.connections_refused.touch((reason,))
        self.registry.register(t)

        r = self.registry
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

    def series(self) -> int:
        """Label sets made by the counters and histograms (what the series cap bounds)."""
        return self._tallies.series()

    def request(self, venue: str | None, account: str | None, outcome: str) -> None:
        self.requests.inc((venue or "-", account or "-", outcome))

    def upstream(self, venue: str, status: int, upstream_s: float) -> None:
        self.upstream_status.inc((venue, f"{status // 100}xx"))
        self.upstream_latency.observe((venue,), upstream_s)

    def added(self, venue: str | None, seconds: float) -> None:
        self.added_latency.observe((venue or "-",), max(seconds, 0.0))

    def rate_waited(self, venue: str | None, seconds: float) -> None:
        self.rate_wait.observe((venue or "-",), max(seconds, 0.0))

    def signed(self, scheme: str, seconds: float) -> None:
        self.signing.observe((scheme,), max(seconds, 0.0))

    def decision(self, allowed: bool, rule: str | None) -> None:
        self.decisions.inc(("allow" if allowed else "deny", rule or "none"))

    def reported(self, rule: str | None) -> None:
        self.would_deny.inc((rule or "none",))

    def limited(self, limit: str) -> None:
        self.rate_limited.inc((limit,))

    def session(self, venue: str, event: str, result: str) -> None:
        self.sessions.inc((venue, event, result))

    def vault_lookup(self, result: str) -> None:
        self.vault.inc((result,))

    def vault_denied(self, venue: str, account: str, kind: str) -> None:
        self.vault_denials.inc((venue, account, kind))

    def session_lock_wait(self, venue: str, lock: str, outcome: str, seconds: float) -> None:
        self.session_lock_waits.observe((venue, lock, outcome), max(seconds, 0.0))

    def connection_refused(self, reason: RefusedReason) -> None:
        self.connections_refused.inc((reason,))

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

    def series(self) -> int:
        return 0

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

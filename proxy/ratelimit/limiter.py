"""Rate limits: token buckets and sliding windows, venue cooldowns, and the gate that
charges them.

A request passes several limits (``Bucket``): its client's bucket (fairness between
services), the account's policy-file bucket, and the venue profile's groups for the
account key and for the venue's IP-wide limits (``proxy.ratelimit.profiles``). It takes
from all of them or from none, so a refusal by one bucket does not cost the others.
Two kinds of limit:

* ``RateSpec(per_second, burst)``: a token bucket (clients, policy accounts, and venues
  that say they use token buckets, such as CoinEx);
* ``Window(limit, window_s)``: at most ``limit`` in *any* ``window_s`` (a sliding log), for
  venues that publish "N per minute" without saying how they count (Icrypex, EVEDEX). A
  token bucket with burst N and rate N/W could admit 2N in one such window.

A *cooldown* pauses a key after the venue said "slow down" (HTTP 429, CoinEx 4213):
every request for it is refused without reaching the venue until it ends.

``Limiter`` is the backend interface: ``MemoryLimiter`` (one process, below) and
``proxy.ratelimit.redis.RedisLimiter`` (shared by every replica, time from the Redis
server). What a request is charged, and the ``RateGate`` the pipeline charges it
through, are in ``proxy.ratelimit.gate``; the venue profiles in ``proxy.ratelimit.profiles``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from prometheus_client.core import CounterMetricFamily

from proxy.clock import Clock
from proxy.policy.rules import RateSpec

__all__ = ["Bucket", "Limiter", "LimiterStats", "MemoryLimiter", "RateSpec", "Refusal", "Window"]


@dataclass(frozen=True, slots=True)
class Window:
    """At most ``limit`` units in any ``window_s`` seconds."""

    limit: int
    window_s: float


@dataclass(frozen=True, slots=True)
class Bucket:
    """One limit to charge. ``name`` names it in a refusal and keys its state
    (``client tiny``, ``account coinex/main spot_place (30/1s)``); ``cost`` is what one
    request takes from it (a batch of 5 orders costs 5 where the venue counts so)."""

    name: str
    spec: RateSpec | Window
    cost: float = 1.0

    @property
    def capacity(self) -> float:
        return self.spec.burst if isinstance(self.spec, RateSpec) else self.spec.limit


@dataclass(frozen=True, slots=True)
class Refusal:
    """Which limit refused, and when it would admit. ``queueable`` is False when waiting
    cannot help (the shared backend is down). ``backend`` names the backend when no limit
    refused but the decision could not be made (503 ``rate_limit_unavailable``, not 429)."""

    limit: str
    retry_after_s: float
    queueable: bool = True
    backend: str | None = None


@dataclass(slots=True)
class LimiterStats:
    """Counters for the metrics module (suggested Prometheus names in comments)."""

    backend_errors: int = 0  # signing_proxy_ratelimit_backend_errors_total
    failed_closed: int = 0  # signing_proxy_ratelimit_backend_refusals_total
    script_errors: int = 0  # signing_proxy_ratelimit_script_errors_total (one decision failed closed)
    local_fallbacks: int = 0  # signing_proxy_ratelimit_local_fallback_total
    cooldowns: int = 0  # signing_proxy_ratelimit_venue_cooldowns_total
    slowdowns: int = 0  # signing_proxy_ratelimit_venue_slowdowns_total (remaining-quota header)


class Limiter(Protocol):
    """A rate-limit backend. Every method is atomic across whoever shares the backend."""

    stats: LimiterStats

    async def admit(
        self, buckets: Sequence[Bucket], cost: float = 1.0, cooldowns: Sequence[str] = ()
    ) -> Refusal | None:
        """Refuse if any key in ``cooldowns`` is cooling down or any bucket lacks
        ``bucket.cost * cost``; else take it from every bucket."""

    async def cool_down(self, key: str, seconds: float, reason: str) -> None:
        """Pause ``key`` for ``seconds`` (never shortens a running cooldown)."""

    async def clamp(self, bucket: Bucket, available: float) -> None:
        """Lower ``bucket`` to at most ``available`` units (the venue's remaining quota)."""

    async def close(self) -> None: ...


def cooldown_name(key: str, reason: str) -> str:
    return f"venue cooldown {key} ({reason})"


@dataclass(slots=True)
class _Tokens:
    tokens: float
    stamp: float


@dataclass(slots=True)
class _Log:
    entries: deque[tuple[float, float]] = field(default_factory=deque)  # (stamp, cost), oldest first
    used: float = 0.0


class MemoryLimiter:
    """In-process limits. ``admit_now`` never awaits, so check-then-take is atomic."""

    def __init__(self, clock: Clock, max_buckets: int = 100_000) -> None:
        self._clock = clock
        self._tokens: dict[tuple[str, RateSpec], _Tokens] = {}
        self._logs: dict[tuple[str, Window], _Log] = {}
        self._cooldowns: dict[str, tuple[float, str]] = {}
        self._max = max_buckets
        self.stats = LimiterStats()

    async def admit(
        self, buckets: Sequence[Bucket], cost: float = 1.0, cooldowns: Sequence[str] = ()
    ) -> Refusal | None:
        return self.admit_now(buckets, cost, cooldowns)

    def admit_now(
        self, buckets: Sequence[Bucket], cost: float = 1.0, cooldowns: Sequence[str] = ()
    ) -> Refusal | None:
        now = self._clock.monotonic()
        for key in cooldowns:
            refusal = self._cooling(key, now)
            if refusal is not None:
                return refusal
        charges = [min(bucket.cost * cost, bucket.capacity) for bucket in buckets]
        for bucket, charge in zip(buckets, charges, strict=True):
            wait = self._wait(bucket, charge, now)
            if wait > 0:
                return Refusal(bucket.name, wait)
        for bucket, charge in zip(buckets, charges, strict=True):
            self._take(bucket, charge, now)
        return None

    async def cool_down(self, key: str, seconds: float, reason: str) -> None:
        until = self._clock.monotonic() + seconds
        current = self._cooldowns.get(key)
        if current is None or current[0] < until:
            self._cooldowns[key] = (until, reason)
        self.stats.cooldowns += 1

    async def clamp(self, bucket: Bucket, available: float) -> None:
        now = self._clock.monotonic()
        if isinstance(bucket.spec, RateSpec):
            state = self._refill(bucket.name, bucket.spec, now)
            state.tokens = min(state.tokens, max(available, 0.0))
            return
        log = self._trim(bucket.name, bucket.spec, now)
        missing = bucket.spec.limit - max(available, 0.0) - log.used
        if missing > 0:
            log.entries.append((now, missing))
            log.used += missing

    async def close(self) -> None:
        return None

    def cooldown(self, key: str) -> tuple[float, str] | None:
        """``(seconds left, reason)`` while ``key`` cools down here, else ``None``."""
        refusal = self._cooling(key, self._clock.monotonic())
        return None if refusal is None else (refusal.retry_after_s, self._cooldowns[key][1])

    def _cooling(self, key: str, now: float) -> Refusal | None:
        found = self._cooldowns.get(key)
        if found is None:
            return None
        until, reason = found
        if until <= now:
            del self._cooldowns[key]
            return None
        return Refusal(cooldown_name(key, reason), until - now)

    def _wait(self, bucket: Bucket, charge: float, now: float) -> float:
        """Seconds until ``bucket`` holds ``charge``; 0 when it does now."""
        spec = bucket.spec
        if isinstance(spec, RateSpec):
            state = self._refill(bucket.name, spec, now)
            return 0.0 if state.tokens >= charge else (charge - state.tokens) / spec.per_second
        log = self._trim(bucket.name, spec, now)
        excess = log.used + charge - spec.limit
        if excess <= 0:
            return 0.0
        freed = 0.0
        for stamp, entry_cost in log.entries:  # the oldest entries leave the window first
            freed += entry_cost
            if freed >= excess:
                return stamp + spec.window_s - now
        return spec.window_s  # unreachable while charge <= limit

    def _take(self, bucket: Bucket, charge: float, now: float) -> None:
        if isinstance(bucket.spec, RateSpec):
            self._tokens[(bucket.name, bucket.spec)].tokens -= charge
        else:
            log = self._logs[(bucket.name, bucket.spec)]
            log.entries.append((now, charge))
            log.used += charge

    def _refill(self, name: str, spec: RateSpec, now: float) -> _Tokens:
        key = (name, spec)
        state = self._tokens.get(key)
        if state is None:
            self._make_room(now)
            state = self._tokens[key] = _Tokens(spec.burst, now)
            return state
        state.tokens = min(spec.burst, state.tokens + max(now - state.stamp, 0.0) * spec.per_second)
        state.stamp = now
        return state

    def _trim(self, name: str, spec: Window, now: float) -> _Log:
        key = (name, spec)
        log = self._logs.get(key)
        if log is None:
            self._make_room(now)
            log = self._logs[key] = _Log()
        horizon = now - spec.window_s
        while log.entries and log.entries[0][0] <= horizon:
            log.used -= log.entries.popleft()[1]
        if not log.entries:
            log.used = 0.0  # no float drift from long add/subtract runs
        return log

    def _make_room(self, now: float) -> None:
        if len(self._tokens) + len(self._logs) < self._max:
            return
        # Full buckets and empty windows carry no information: drop them.
        for (name, spec), state in list(self._tokens.items()):
            if state.tokens + (now - state.stamp) * spec.per_second >= spec.burst:
                del self._tokens[(name, spec)]
        for (name, window), log in list(self._logs.items()):
            if not log.entries or log.entries[-1][0] <= now - window.window_s:
                del self._logs[(name, window)]


class LimiterCollector:
    """Exports ``limiter.stats`` on a Prometheus registry, read at scrape time."""

    FAMILIES = (
        ("backend_errors", "signing_proxy_ratelimit_backend_errors", "Rate-limit backend (Redis) failures."),
        ("failed_closed", "signing_proxy_ratelimit_failed_closed", "Requests refused: backend unreachable."),
        (
            "script_errors",
            "signing_proxy_ratelimit_script_errors",
            "Decisions failed closed by a Redis script or data error (backend not marked down).",
        ),
        ("local_fallbacks", "signing_proxy_ratelimit_local_fallbacks", "Decisions by local buckets instead."),
        ("cooldowns", "signing_proxy_ratelimit_venue_cooldowns", "Venue 'slow down' answers (key paused)."),
        (
            "slowdowns",
            "signing_proxy_ratelimit_venue_slowdowns",
            "Buckets lowered to a venue's remaining quota.",
        ),
    )

    def __init__(self, limiter: Limiter) -> None:
        self._limiter = limiter

    def collect(self) -> Iterator[CounterMetricFamily]:
        stats = self._limiter.stats
        for attribute, name, documentation in self.FAMILIES:
            yield CounterMetricFamily(name, documentation, value=getattr(stats, attribute))

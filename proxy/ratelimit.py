"""Token buckets per venue account key and per client.

A request must pass every bucket that applies to it; it takes a token from all of them
or from none, so a refusal by the account bucket does not cost the client a token. The
limiter is an interface (``Limiter``): ``MemoryLimiter`` is the single-process backend;
a shared backend (Redis) implements the same ``admit``.

Refusals name the limit that was hit and carry how long until it would admit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from proxy.clock import Clock
from proxy.policy import RateSpec


@dataclass(frozen=True, slots=True)
class Bucket:
    """One bucket to charge: ``name`` is how a refusal names it (e.g. ``account coinex/main``)."""

    name: str
    spec: RateSpec


@dataclass(frozen=True, slots=True)
class Refusal:
    limit: str
    retry_after_s: float


class Limiter(Protocol):
    async def admit(self, buckets: list[Bucket], cost: float = 1.0) -> Refusal | None: ...

    async def close(self) -> None: ...


@dataclass(slots=True)
class _State:
    tokens: float
    stamp: float


class MemoryLimiter:
    """In-process buckets. ``admit`` never awaits, so check-then-take is atomic."""

    def __init__(self, clock: Clock, max_buckets: int = 100_000) -> None:
        self._clock = clock
        self._state: dict[tuple[str, RateSpec], _State] = {}
        self._max = max_buckets

    async def admit(self, buckets: list[Bucket], cost: float = 1.0) -> Refusal | None:
        return self.admit_now(buckets, cost)

    def admit_now(self, buckets: list[Bucket], cost: float = 1.0) -> Refusal | None:
        now = self._clock.monotonic()
        states = [self._refill(bucket, now) for bucket in buckets]
        for bucket, state in zip(buckets, states, strict=True):
            if state.tokens < cost:
                wait = (min(cost, bucket.spec.burst) - state.tokens) / bucket.spec.per_second
                return Refusal(bucket.name, wait)
        for state in states:
            state.tokens -= cost
        return None

    def _refill(self, bucket: Bucket, now: float) -> _State:
        key = (bucket.name, bucket.spec)
        state = self._state.get(key)
        if state is None:
            if len(self._state) >= self._max:
                self._evict_full(now)
            state = self._state[key] = _State(bucket.spec.burst, now)
            return state
        state.tokens = min(bucket.spec.burst, state.tokens + (now - state.stamp) * bucket.spec.per_second)
        state.stamp = now
        return state

    def _evict_full(self, now: float) -> None:
        # Buckets that have refilled completely carry no information: drop them.
        for key, state in list(self._state.items()):
            spec = key[1]
            if state.tokens + (now - state.stamp) * spec.per_second >= spec.burst:
                del self._state[key]

    async def close(self) -> None:
        return None

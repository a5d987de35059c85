from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.clock import FakeClock
from proxy.policy import RateSpec
from proxy.ratelimit import Bucket, MemoryLimiter

ACCOUNT = Bucket("account coinex/main", RateSpec(per_second=2, burst=3))
CLIENT = Bucket("client bot", RateSpec(per_second=10, burst=5))


def test_burst_then_refusal_with_retry_after() -> None:
    clock = FakeClock()
    limiter = MemoryLimiter(clock)
    assert [limiter.admit_now([ACCOUNT]) for _ in range(3)] == [None, None, None]
    refusal = limiter.admit_now([ACCOUNT])
    assert refusal is not None and refusal.limit == "account coinex/main"
    assert refusal.retry_after_s == pytest.approx(0.5)
    clock.advance(0.5)
    assert limiter.admit_now([ACCOUNT]) is None


def test_all_or_nothing_across_buckets() -> None:
    clock = FakeClock()
    limiter = MemoryLimiter(clock)
    for _ in range(3):
        assert limiter.admit_now([ACCOUNT, CLIENT]) is None
    refusal = limiter.admit_now([ACCOUNT, CLIENT])
    assert refusal is not None and refusal.limit == "account coinex/main"
    # The client bucket was not charged for the refused request: 2 tokens remain.
    assert limiter.admit_now([CLIENT]) is None
    assert limiter.admit_now([CLIENT]) is None
    refusal = limiter.admit_now([CLIENT])
    assert refusal is not None and refusal.limit == "client bot"


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(st.floats(min_value=0, max_value=2), min_size=1, max_size=80))
def test_never_admits_more_than_rate_allows(steps: list[float]) -> None:
    clock = FakeClock()
    limiter = MemoryLimiter(clock)
    admitted = 0
    for delta in steps:
        clock.advance(delta)
        if limiter.admit_now([ACCOUNT]) is None:
            admitted += 1
    elapsed = sum(steps)
    assert admitted <= ACCOUNT.spec.burst + elapsed * ACCOUNT.spec.per_second + 1e-9

"""``MemoryLimiter`` and ``RateGate``: token buckets, sliding windows, costs, cooldowns,
clamping, queueing; properties under random timing and under concurrency."""

from __future__ import annotations

import asyncio
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.clock import FakeClock
from proxy.errors import RateLimited
from proxy.policy.rules import PolicySet, RateSpec
from proxy.ratelimit.gate import RateGate
from proxy.ratelimit.limiter import Bucket, MemoryLimiter, Refusal, Window
from tests.factories import FakeSleep

ACCOUNT = Bucket("account coinex/main", RateSpec(per_second=2, burst=3))
CLIENT = Bucket("client bot", RateSpec(per_second=10, burst=5))
MINUTE = Bucket("account icrypex/main order_insert (4/60s)", Window(limit=4, window_s=60))


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


def test_window_admits_limit_then_waits_for_the_oldest_to_leave() -> None:
    clock = FakeClock()
    limiter = MemoryLimiter(clock)
    for _ in range(4):
        assert limiter.admit_now([MINUTE]) is None
        clock.advance(10)
    refusal = limiter.admit_now([MINUTE])  # t=40: the first entry (t=0) leaves at t=60
    assert refusal is not None and refusal.retry_after_s == pytest.approx(20)
    clock.advance(20)
    assert limiter.admit_now([MINUTE]) is None


def test_cost_is_charged_per_unit_and_capped_at_capacity() -> None:
    clock = FakeClock()
    limiter = MemoryLimiter(clock)
    batch = Bucket(MINUTE.name, MINUTE.spec, cost=3)
    assert limiter.admit_now([batch]) is None
    refusal = limiter.admit_now([batch])  # 3 used, 3 more would make 6 > 4
    assert refusal is not None and refusal.retry_after_s == pytest.approx(60)
    assert limiter.admit_now([MINUTE]) is None  # one unit still fits
    huge = Bucket("account coinex/main spot_place (3/1s)", RateSpec(3, 3), cost=50)
    assert limiter.admit_now([huge]) is None  # a request bigger than the bucket empties it
    assert limiter.admit_now([huge]) is not None


async def test_cooldown_refuses_until_it_ends_and_never_shortens() -> None:
    clock = FakeClock()
    limiter = MemoryLimiter(clock)
    await limiter.cool_down("coinex/main", 5, "venue answered code 4213")
    await limiter.cool_down("coinex/main", 1, "venue answered HTTP 429")  # shorter: ignored
    refusal = limiter.admit_now([ACCOUNT], cooldowns=["coinex/main", "coinex"])
    assert refusal == Refusal("venue cooldown coinex/main (venue answered code 4213)", 5)
    assert limiter.admit_now([ACCOUNT], cooldowns=["coinex/other", "coinex"]) is None  # other key
    clock.advance(5)
    assert limiter.admit_now([ACCOUNT], cooldowns=["coinex/main"]) is None
    assert limiter.stats.cooldowns == 2


async def test_clamp_lowers_to_the_venues_remaining_quota_only() -> None:
    clock = FakeClock()
    limiter = MemoryLimiter(clock)
    bucket = Bucket("account coinex/main spot_place (30/1s)", RateSpec(30, 30))
    await limiter.clamp(bucket, 1)
    assert limiter.admit_now([bucket]) is None
    assert limiter.admit_now([bucket]) is not None
    await limiter.clamp(bucket, 25)  # never raises a bucket
    assert limiter.admit_now([bucket]) is not None
    await limiter.clamp(MINUTE, 1)
    assert limiter.admit_now([MINUTE]) is None
    assert limiter.admit_now([MINUTE]) is not None


def test_full_buckets_are_evicted_when_the_table_is_full() -> None:
    clock = FakeClock()
    limiter = MemoryLimiter(clock, max_buckets=3)
    for index in range(10):
        assert limiter.admit_now([Bucket(f"client c{index}", RateSpec(1, 1))]) is None
        clock.advance(2)  # every earlier bucket is full again
    assert len(limiter._tokens) <= 3


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


@settings(max_examples=80, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.floats(min_value=0, max_value=30), st.integers(min_value=1, max_value=5)),
        min_size=1,
        max_size=60,
    )
)
def test_no_window_ever_holds_more_than_the_limit(steps: list[tuple[float, int]]) -> None:
    clock = FakeClock()
    limiter = MemoryLimiter(clock)
    admitted: list[tuple[float, int]] = []
    for delta, cost in steps:
        clock.advance(delta)
        if limiter.admit_now([Bucket(MINUTE.name, MINUTE.spec, cost)]) is None:
            admitted.append((clock.monotonic(), min(cost, 4)))
    for start, _ in admitted:  # every window [start, start + 60) holds at most 4 units
        inside = sum(units for stamp, units in admitted if start <= stamp < start + 60)
        assert inside <= 4


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32), tasks=st.integers(min_value=2, max_value=40))
def test_concurrent_admissions_never_exceed_the_limits(seed: int, tasks: int) -> None:
    """Many coroutines of many clients against one account key: the key's bucket and each
    client's bucket hold, and a refusal by one bucket never charges the other."""
    rng = random.Random(seed)
    clock = FakeClock()
    limiter = MemoryLimiter(clock)
    account = Bucket("account coinex/main spot_place (30/1s)", RateSpec(30, 30))
    clients = [Bucket(f"client c{i}", RateSpec(5, 5)) for i in range(4)]
    admitted = {bucket.name: 0 for bucket in clients}

    async def worker() -> None:
        for _ in range(20):
            client = rng.choice(clients)
            if await limiter.admit([account, client]) is None:
                admitted[client.name] += 1
            if rng.random() < 0.1:
                clock.advance(rng.random() * 0.05)
            await asyncio.sleep(0)

    async def main() -> None:
        await asyncio.gather(*(worker() for _ in range(tasks)))

    start = clock.monotonic()
    asyncio.run(main())
    elapsed = clock.monotonic() - start
    assert sum(admitted.values()) <= 30 + 30 * elapsed + 1e-9
    assert all(count <= 5 + 5 * elapsed + 1e-9 for count in admitted.values())


async def test_gate_queues_within_the_clients_budget() -> None:
    clock = FakeClock()
    sleep = FakeSleep(clock)
    gate = RateGate(MemoryLimiter(clock), max_wait_ms=0, client_max_wait_ms={"patient": 600}, sleep=sleep)
    bucket = Bucket("account coinex/main", RateSpec(per_second=2, burst=1))
    state: dict[str, object] = {}
    await gate.charge([bucket], (), "patient", state)
    await gate.charge([bucket], (), "patient", state)  # waits 0.5 s instead of a 429
    assert sleep.slept == [pytest.approx(0.5)] and state["rate_wait_ms"] == pytest.approx(500)
    with pytest.raises(RateLimited) as refused:  # 0.5 s more would pass the 600 ms budget
        await gate.charge([bucket], (), "patient", state)
    assert refused.value.limit_name == "account coinex/main"
    with pytest.raises(RateLimited):  # other clients: max_wait_ms 0, an immediate 429
        await gate.charge([bucket], (), "impatient", {})


async def test_gate_admit_client_charges_policy_buckets() -> None:
    clock = FakeClock()
    gate = RateGate(MemoryLimiter(clock))
    policies = PolicySet(account_limits={"coinex/main": RateSpec(1, 1)})
    await gate.admit_client(policies, "bot", RateSpec(10, 10), "coinex", "main", {})
    with pytest.raises(RateLimited) as refused:
        await gate.admit_client(policies, "bot", RateSpec(10, 10), "coinex", "main", {})
    assert refused.value.limit_name == "account coinex/main"
    assert refused.value.extra_headers() == [("retry-after", "1")]

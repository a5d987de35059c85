"""``RedisLimiter`` against a real ``redis-server``: atomic shared buckets, server time
(skewed replica clocks cannot over-admit), cooldowns, clamping, key expiry, and what
happens when Redis dies and comes back. Assertions are on counts, never durations."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from proxy.clock import FakeClock
from proxy.policy.rules import RateSpec
from proxy.ratelimit.limiter import Bucket, Window
from proxy.ratelimit.redis import RedisLimiter
from tests.integration.redis_server import RedisServer

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(loop_scope="session")
async def limiters(module_redis: RedisServer) -> AsyncIterator[list[RedisLimiter]]:
    """Two replicas' limiters (separate connection pools) on one Redis, fresh keys."""
    created = [
        RedisLimiter(module_redis.url, FakeClock(), key_prefix=f"t{time.monotonic_ns()}") for _ in range(2)
    ]
    created[1]._prefix = created[0]._prefix  # same key space, as replicas of one deployment
    yield created
    for limiter in created:
        await limiter.close()


async def test_concurrent_replicas_share_one_bucket_exactly(limiters: list[RedisLimiter]) -> None:
    # 50 per hour: nothing refills while the test runs.
    bucket = Bucket("account coinex/main spot_place (50/3600s)", RateSpec(50 / 3600, 50))
    results = await asyncio.gather(*(limiters[i % 2].admit([bucket]) for i in range(200)))
    assert sum(result is None for result in results) == 50


async def test_skewed_replica_clocks_do_not_over_admit(limiters: list[RedisLimiter]) -> None:
    """One replica's clock is an hour ahead and races; the other's is an hour behind.
    Redis's TIME decides, so together they admit at most burst + rate x measured window."""
    ahead, behind = limiters
    ahead._clock = FakeClock(start=1_700_003_600.0)
    behind._clock = FakeClock(start=1_699_996_400.0)
    bucket = Bucket("account coinex/main order_query (20/1s)", RateSpec(20, 20))
    admitted = 0
    started = time.monotonic()
    while time.monotonic() - started < 1.0:
        for limiter in (ahead, behind):
            if await limiter.admit([bucket]) is None:
                admitted += 1
        ahead._clock.advance(5.0)  # type: ignore[attr-defined]
    elapsed = time.monotonic() - started
    assert 20 <= admitted <= 20 + 20 * elapsed + 1


async def test_window_with_costs_and_server_time_retry_after(limiters: list[RedisLimiter]) -> None:
    a, b = limiters
    window = Window(limit=5, window_s=60)
    batch = Bucket("account icrypex/main order_insert (5/60s)", window, cost=3)
    assert await a.admit([batch]) is None
    refusal = await b.admit([batch])
    assert refusal is not None and refusal.limit == batch.name
    assert 55 < refusal.retry_after_s <= 60
    assert await b.admit([Bucket(batch.name, window, cost=2)]) is None
    assert await a.admit([Bucket(batch.name, window)]) is not None


async def test_all_or_nothing_across_buckets(limiters: list[RedisLimiter]) -> None:
    a, b = limiters
    account = Bucket("account coinex/main", RateSpec(0.001, 2))
    client = Bucket("client bot", RateSpec(0.001, 5))
    assert await a.admit([account, client]) is None
    assert await b.admit([account, client]) is None
    refusal = await a.admit([account, client])
    assert refusal is not None and refusal.limit == "account coinex/main"
    assert [await b.admit([client]) for _ in range(4)][:3] == [None, None, None]


async def test_cooldown_is_shared_and_never_shortened(limiters: list[RedisLimiter]) -> None:
    a, b = limiters
    await a.cool_down("coinex/main", 30, "venue answered code 4213")
    await b.cool_down("coinex/main", 2, "venue answered HTTP 429")
    refusal = await b.admit([], cooldowns=["coinex/main", "coinex"])
    assert refusal is not None
    assert refusal.limit == "venue cooldown coinex/main (venue answered code 4213)"
    assert 25 < refusal.retry_after_s <= 30
    assert await b.admit([], cooldowns=["coinex/other", "coinex"]) is None


async def test_clamp_to_the_venues_remaining_quota(limiters: list[RedisLimiter]) -> None:
    a, b = limiters
    tokens = Bucket("account coinex/main spot_place (30/1s)", RateSpec(30, 30))
    await a.clamp(tokens, 1)
    assert await b.admit([tokens]) is None
    assert await b.admit([tokens]) is not None
    window = Bucket("account icrypex/main wallet (120/60s)", Window(120, 60))
    await a.clamp(window, 2)
    assert [await b.admit([window]) for _ in range(3)][2] is not None


async def test_keys_expire_once_they_carry_no_information(
    module_redis: RedisServer, limiters: list[RedisLimiter]
) -> None:
    a = limiters[0]
    await a.admit([Bucket("client bot", RateSpec(10, 10)), Bucket("account x/y g (3/60s)", Window(3, 60))])
    await a.cool_down("x/y", 5, "test")
    client = aioredis.Redis.from_url(module_redis.url)
    try:
        keys = await client.keys(a._prefix + "*")
        assert len(keys) == 3
        ttls = [await client.pttl(key) for key in keys]
        assert all(0 < ttl <= 61_000 for ttl in ttls)
    finally:
        await client.aclose()


async def test_redis_down_fail_closed_then_recovers(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    limiter = RedisLimiter(redis_server.url, clock, retry_interval_s=1.0)
    bucket = Bucket("client bot", RateSpec(100, 100))
    try:
        assert await limiter.admit([bucket]) is None
        redis_server.kill()
        with caplog.at_level(logging.WARNING, logger="signing_proxy.ratelimit"):
            refusals = [await limiter.admit([bucket]) for _ in range(3)]
            assert all(r is not None and not r.queueable for r in refusals)
            assert refusals[0].limit == "rate-limit backend (redis) unreachable: failing closed"  # type: ignore[union-attr]
            assert limiter.stats.backend_errors == 1  # Redis is left alone until retry_interval_s
            assert limiter.stats.failed_closed == 3
            await limiter.cool_down("coinex/main", 10, "venue answered HTTP 429")  # kept locally meanwhile
            redis_server.start()
            clock.advance(1.0)
            assert await limiter.admit([bucket]) is None
        messages = [record.getMessage() for record in caplog.records]
        assert messages == [
            "rate-limit backend redis unreachable: failing closed",
            "rate-limit backend redis reachable again",
        ]
    finally:
        await limiter.close()


async def test_redis_down_local_fallback_enforces_the_same_limits(redis_server: RedisServer) -> None:
    limiter = RedisLimiter(redis_server.url, FakeClock(), on_error="local")
    bucket = Bucket("account coinex/main order_query (3/60s)", Window(3, 60))
    try:
        redis_server.kill()
        results = [await limiter.admit([bucket]) for _ in range(4)]
        assert results[:3] == [None, None, None] and results[3] is not None
        assert results[3].limit == bucket.name and results[3].queueable
        await limiter.cool_down("coinex/main", 10, "venue answered code 4213")
        refusal = await limiter.admit([], cooldowns=["coinex/main"])
        assert refusal is not None and "cooldown" in refusal.limit
        assert limiter.stats.local_fallbacks == 5 and limiter.stats.backend_errors == 1
    finally:
        await limiter.close()

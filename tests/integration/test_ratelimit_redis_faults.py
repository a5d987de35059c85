"""Redis faults that are not an outage (issue 19, item 2), against a real ``redis-server``.

A corrupt key, a huge window charge or a refused write is one bad decision, not a dead
backend: it must not refuse every other client for ``retry_interval_s``. And a cooldown
recorded while Redis was down must still hold once Redis is back.
"""

from __future__ import annotations

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

TOKENS = Bucket("account coinex/main spot_place (10/1s)", RateSpec(10, 10))
WINDOW = Bucket("account icrypex/main wallet (5/60s)", Window(5, 60))
OTHER = Bucket("client bot", RateSpec(100, 100))


@pytest_asyncio.fixture(loop_scope="session")
async def limiter(module_redis: RedisServer) -> AsyncIterator[RedisLimiter]:
    created = RedisLimiter(module_redis.url, FakeClock(), key_prefix=f"f{time.monotonic_ns()}")
    yield created
    await created.close()


def _key(limiter: RedisLimiter, bucket: Bucket) -> str:
    return limiter._key(bucket)


async def _corrupt_string(redis_client: aioredis.Redis, key: str) -> None:
    await redis_client.delete(key)
    await redis_client.set(key, "not a bucket")


async def _corrupt_field(redis_client: aioredis.Redis, key: str) -> None:
    await redis_client.delete(key)
    await redis_client.hset(key, mapping={"t": "lots", "s": "yesterday"})


async def _corrupt_nan(redis_client: aioredis.Redis, key: str) -> None:
    await redis_client.delete(key)
    await redis_client.hset(key, mapping={"t": "nan", "s": "inf"})


async def _corrupt_list(redis_client: aioredis.Redis, key: str) -> None:
    await redis_client.delete(key)
    await redis_client.rpush(key, "a", "b")


@pytest.mark.parametrize(
    "bucket,corrupt",
    [
        (TOKENS, _corrupt_string),
        (TOKENS, _corrupt_field),
        (TOKENS, _corrupt_nan),
        (WINDOW, _corrupt_string),
        (WINDOW, _corrupt_list),
    ],
)
async def test_a_corrupt_bucket_key_is_repaired_and_fails_no_other_client(
    limiter: RedisLimiter,
    redis_client: aioredis.Redis,
    bucket: Bucket,
    corrupt,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await corrupt(redis_client, _key(limiter, bucket))
    with caplog.at_level(logging.ERROR, logger="signing_proxy.ratelimit"):
        assert await limiter.admit([bucket]) is None  # a key that does not parse counts as absent
        assert await limiter.admit([OTHER]) is None  # the backend is not taken for down
    assert limiter.stats.backend_errors == 0
    assert not any("unreachable" in record.getMessage() for record in caplog.records)
    # Repaired at the source: the bucket counts again from here.
    capacity = int(bucket.capacity)
    results = [await limiter.admit([bucket]) for _ in range(capacity)]
    assert results[: capacity - 1] == [None] * (capacity - 1)
    assert results[-1] is not None and results[-1].limit == bucket.name


async def test_a_corrupt_cooldown_key_still_pauses_and_fails_no_other_client(
    limiter: RedisLimiter, redis_client: aioredis.Redis
) -> None:
    key = limiter._prefix + "c:coinex/main"
    await redis_client.rpush(key, "x")
    await redis_client.pexpire(key, 30_000)
    refusal = await limiter.admit([], cooldowns=["coinex/main"])
    assert refusal is not None and refusal.limit.startswith("venue cooldown coinex/main")
    assert refusal.backend is None  # an ordinary cooldown refusal (429), not a backend fault
    assert await limiter.admit([OTHER]) is None
    assert limiter.stats.backend_errors == 0


async def test_a_large_window_charge_is_taken_without_unpack_limits(
    limiter: RedisLimiter, redis_client: aioredis.Redis
) -> None:
    big = Bucket("account evedex/main batch (20000/60s)", Window(20_000, 60))
    assert await limiter.admit([big], cost=20_000) is None
    assert await redis_client.zcard(_key(limiter, big)) == 20_000
    refusal = await limiter.admit([big])
    assert refusal is not None and refusal.limit == big.name
    clamped = Bucket("account evedex/main clamp (30000/60s)", Window(30_000, 60))
    await limiter.clamp(clamped, 0)  # the venue says nothing is left: 30000 units marked used
    assert await redis_client.zcard(_key(limiter, clamped)) == 30_000
    assert await limiter.admit([OTHER]) is None
    assert limiter.stats.backend_errors == 0


async def test_a_refused_script_fails_that_decision_closed_only(
    limiter: RedisLimiter, redis_client: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    await redis_client.config_set("maxmemory", "1")  # Redis refuses every script that may write: OOM
    try:
        with caplog.at_level(logging.ERROR, logger="signing_proxy.ratelimit"):
            refusal = await limiter.admit([TOKENS])
        assert refusal is not None and refusal.backend == "redis" and not refusal.queueable
        assert "OutOfMemoryError" in refusal.limit
        assert any(getattr(record, "error", None) == "OutOfMemoryError" for record in caplog.records)
    finally:
        await redis_client.config_set("maxmemory", "0")
    # Not an outage: the very next decision (same replica clock, no retry interval) runs.
    assert await limiter.admit([TOKENS]) is None
    assert limiter.stats.backend_errors == 0 and limiter.stats.script_errors == 1


async def test_a_cooldown_recorded_while_redis_was_down_holds_when_it_returns(
    redis_server: RedisServer,
) -> None:
    clock = FakeClock()
    a = RedisLimiter(redis_server.url, clock, retry_interval_s=1.0)
    b = RedisLimiter(redis_server.url, FakeClock())  # another replica, same Redis
    try:
        assert await a.admit([OTHER]) is None
        redis_server.kill()
        await a.cool_down("coinex/main", 30, "venue answered HTTP 429")
        redis_server.start()  # empty: no persistence
        clock.advance(1.0)  # a tries Redis again
        refusal = await a.admit([OTHER], cooldowns=["coinex/main"])
        assert refusal is not None and refusal.limit == "venue cooldown coinex/main (venue answered HTTP 429)"
        assert refusal.backend is None
        refusal = await b.admit([OTHER], cooldowns=["coinex/main"])  # pushed to Redis on recovery
        assert refusal is not None and refusal.limit.startswith("venue cooldown coinex/main")
        assert await a.admit([OTHER], cooldowns=["coinex/other"]) is None
    finally:
        await a.close()
        await b.close()


async def test_redis_down_fail_closed_names_the_backend_not_a_limit(redis_server: RedisServer) -> None:
    limiter = RedisLimiter(redis_server.url, FakeClock())
    try:
        redis_server.kill()
        refusal = await limiter.admit([OTHER])
        assert refusal is not None and refusal.backend == "redis" and not refusal.queueable
        assert "redis" in refusal.limit and "unreachable" in refusal.limit
    finally:
        await limiter.close()

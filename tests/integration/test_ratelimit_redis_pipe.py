"""The limiter's one pipelined Redis connection (``proxy.ratelimit.redis_pipe``), against a
real ``redis-server``, some through a relay that holds or drops Redis's replies.

What must hold: every reply reaches the command that asked for it (also when a caller
gave up), a command is never sent twice (a dropped reply after Redis ran an admit charges
once, and the limiter fails that decision), and a timeout leaves no late reply behind.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from proxy.clock import FakeClock
from proxy.policy.rules import RateSpec
from proxy.ratelimit.limiter import Bucket
from proxy.ratelimit.redis import RedisLimiter
from proxy.ratelimit.redis_pipe import RedisPipe, Script
from tests.integration.redis_server import RedisRelay, RedisServer

pytestmark = pytest.mark.asyncio(loop_scope="session")

# Two tokens, refilling one per hour: nothing refills while a test runs.
TWO = Bucket("client bot", RateSpec(1 / 3600, 2))


@pytest_asyncio.fixture(loop_scope="session")
async def relay(module_redis: RedisServer) -> AsyncIterator[RedisRelay]:
    running = await RedisRelay(module_redis.port).start()
    yield running
    await running.stop()


async def test_every_reply_reaches_the_command_that_asked(module_redis: RedisServer) -> None:
    pipe = RedisPipe(module_redis.url, timeout_s=5)
    try:
        calls = [pipe.call("ECHO", f"reply {i}") for i in range(300)]
        calls.insert(150, pipe.call("NO-SUCH-COMMAND"))
        results = await asyncio.gather(*calls, return_exceptions=True)
        refused = results.pop(150)
        assert isinstance(refused, ResponseError) and "unknown command" in str(refused)
        assert results == [f"reply {i}".encode() for i in range(300)]
    finally:
        await pipe.aclose()


async def test_a_caller_that_gave_up_keeps_its_place(relay: RedisRelay) -> None:
    pipe = RedisPipe(relay.url, timeout_s=5)
    try:
        assert await pipe.call("PING") == b"PONG"  # connected, the handshake answered
        relay.mode = "hold"
        abandoned = asyncio.ensure_future(pipe.call("ECHO", "first"))
        kept = asyncio.ensure_future(pipe.call("ECHO", "second"))
        while relay.commands(b"ECHO") < 2:  # both on the wire, no reply yet
            await asyncio.sleep(0.01)
        abandoned.cancel()
        relay.mode = "pass"
        relay.release()
        assert await kept == b"second"
        assert abandoned.cancelled()
        assert await pipe.call("ECHO", "third") == b"third"
        assert relay.connections == 1
    finally:
        await pipe.aclose()


async def test_a_timeout_closes_the_connection_and_fails_what_was_in_flight(relay: RedisRelay) -> None:
    pipe = RedisPipe(relay.url, timeout_s=0.3)
    try:
        assert await pipe.call("PING") == b"PONG"
        relay.mode = "hold"
        slow = asyncio.ensure_future(pipe.call("ECHO", "late"))
        while relay.commands(b"ECHO") < 1:
            await asyncio.sleep(0.01)
        behind = asyncio.ensure_future(pipe.call("ECHO", "behind"))
        with pytest.raises(TimeoutError):
            await slow
        with pytest.raises((RedisConnectionError, TimeoutError)):
            await behind
        relay.mode = "pass"
        relay.release()
        assert await pipe.call("ECHO", "fresh") == b"fresh"  # a new connection, no late reply on it
        assert relay.connections == 2
    finally:
        await pipe.aclose()


async def test_a_reply_lost_after_redis_ran_the_admit_is_never_resent(
    relay: RedisRelay, redis_client: aioredis.Redis
) -> None:
    """Redis took the token, the connection dropped before its answer: the decision fails
    closed, the script was sent once, and exactly one token is gone (a resend takes two)."""
    limiter = RedisLimiter(relay.url, FakeClock(), key_prefix=f"p{time.monotonic_ns()}")
    try:
        assert await limiter.admit([Bucket("client other", TWO.spec)]) is None  # connected
        sent_before = relay.commands(b"EVALSHA") + relay.commands(b"EVAL")
        relay.mode = "drop"
        refusal = await limiter.admit([TWO])
        assert refusal is not None and refusal.backend == "redis"
        assert relay.commands(b"EVALSHA") + relay.commands(b"EVAL") == sent_before + 1
        assert limiter.stats.backend_errors == 1
        tokens = float(await redis_client.hget(limiter._key(TWO), "t"))
        assert 0.99 < tokens < 1.01  # 2 - 1: charged once
    finally:
        relay.mode = "pass"
        await limiter.close()


async def test_a_script_redis_forgot_is_sent_whole_once(
    module_redis: RedisServer, redis_client: aioredis.Redis
) -> None:
    pipe = RedisPipe(module_redis.url, timeout_s=5)
    script = Script("return redis.call('INCR', KEYS[1])")
    key = f"pipe-incr-{time.monotonic_ns()}"
    try:
        assert await pipe.script(script, [key], []) == 1
        await redis_client.script_flush()  # as after a Redis restart
        assert await pipe.script(script, [key], []) == 2  # NOSCRIPT ran nothing; EVAL ran it once
        assert await pipe.script(script, [key], []) == 3
    finally:
        await pipe.aclose()

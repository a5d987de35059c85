"""Integration fixtures: one real OpenBao dev server, real simulated venues on loopback
sockets and the proxy started from a real config file (``proxy.dev.stack.LocalStack``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from redis import asyncio as aioredis

from proxy.dev.devvault import free_port
from proxy.dev.stack import LocalStack
from tests.integration.faultserver import FaultServer, self_signed_context
from tests.integration.redis_server import RedisServer


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A private ``redis-server`` on a free port (no persistence), stopped after the test."""
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="module")
def module_redis() -> Iterator[RedisServer]:
    """One private ``redis-server`` for all the tests of a module (each module its own)."""
    with RedisServer() as server:
        yield server


@pytest_asyncio.fixture(loop_scope="session")
async def redis_client(module_redis: RedisServer) -> AsyncIterator[aioredis.Redis]:
    """A plain redis-py client of ``module_redis``: what a test reads or breaks Redis with."""
    client = aioredis.Redis.from_url(module_redis.url)
    yield client
    await client.aclose()


@pytest_asyncio.fixture(loop_scope="session", scope="session")
async def faulty():
    server = await FaultServer().start()
    yield server
    await server.stop()


@pytest_asyncio.fixture(loop_scope="session", scope="session")
async def untrusted_tls():
    server = await FaultServer(self_signed_context()).start()
    yield server
    await server.stop()


@pytest_asyncio.fixture(loop_scope="session", scope="session")
async def stack(faulty: FaultServer, untrusted_tls: FaultServer):
    dead = free_port()  # nothing listens here: an unreachable venue
    async with LocalStack(
        unseeded_accounts=("incomplete", "absent"),
        extra_venues={
            "coinex-dead": ("coinex", f"http://127.0.0.1:{dead}"),
            "coinex-faulty": ("coinex", faulty.url),
            "evedex-faulty": ("evedex", faulty.url),  # trading API faulty, login at the simulated venue
            "coinex-tls": ("coinex", untrusted_tls.url),  # a certificate nobody trusts
        },
        extra_config={
            "upstream": {"timeout_s": 2, "connect_timeout_s": 1},
            # Tests here hammer the simulated venues; venue profiles are tested on their own
            # stacks (test_ratelimit_*.py), client and policy-file buckets stay on.
            "rate_limits": {"venue_profiles": False},
            # Stream tests send 200-frame bursts; the per-stream frame rate has its own tests.
            "websocket": {"frame_burst": 1000},
        },
    ) as running:
        yield running

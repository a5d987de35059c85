"""``serve --workers N`` (issue 17, item 2): N processes on one port, limits never multiplied.

A real ``signing-proxy serve`` with two workers and a real redis-server answers requests,
both workers' admin listeners answer (worker ``i`` on ``admin.port + i``), and a client's
burst of 3 admits exactly 3 of 8 requests sent on fresh connections (spread by the kernel
over both workers): the bucket lives in Redis, not in each worker. With the memory backend,
two workers are refused at startup, naming the field.
"""

from __future__ import annotations

import asyncio
import sys

import httpx
import pytest

from proxy.dev.stack import LocalStack
from tests.integration.redis_server import RedisServer
from tests.integration.served import served_copy

pytestmark = pytest.mark.asyncio(loop_scope="session")

SIDECAR = {
    "limited": {
        "loopback": True,
        "rate_limit": {"per_second": 0.001, "burst": 3},
        "allow": [{"venue": "coinex", "methods": ["GET"], "paths": ["/**"]}],
    }
}


async def test_two_workers_share_one_redis_bucket(
    stack: LocalStack, tmp_path, redis_server: RedisServer
) -> None:
    proxy = served_copy(
        stack,
        tmp_path,
        clients=SIDECAR,
        config={"rate_limits": {"backend": "redis", "url": redis_server.url}},
        env={"SIGNING_PROXY_LISTEN__WORKERS": "2"},
    )
    await proxy.start()
    url = f"{proxy.url}/coinex/main/v2/assets/spot/balance"
    try:
        statuses = []
        for _ in range(8):
            async with httpx.AsyncClient(timeout=20) as http:  # a new connection each time
                statuses.append((await http.get(url)).status_code)
        async with httpx.AsyncClient(timeout=5) as http:
            second_admin = f"http://127.0.0.1:{proxy.admin_port + 1}/healthz"
            assert (await http.get(second_admin)).status_code == 200  # worker 1 is up too
    finally:
        assert await proxy.stop() == 0  # SIGTERM to the parent drains both workers
    assert statuses.count(200) == 3, statuses  # one bucket of 3, not one per worker
    assert statuses.count(429) == 5, statuses


async def test_memory_backend_with_two_workers_is_refused(stack: LocalStack, tmp_path) -> None:
    proxy = served_copy(stack, tmp_path, config={"rate_limits": {"backend": "memory"}})
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "proxy",
        "serve",
        "--config",
        str(proxy.config),
        "--workers",
        "2",
        env=proxy.env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 2
    text = err.decode()
    assert "configuration error" in text
    assert "rate_limits.backend" in text
    assert "multiplied by 2" in text

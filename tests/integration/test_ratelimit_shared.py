"""Two proxy replicas on one venue key, sharing their limits through a real Redis.

Each test uses its own account key (``coinex/a1`` …) so that buckets and cooldowns of one
test never reach another. The replicas are real servers built by ``create_app`` from one
config (``backend: redis``), in front of the simulated venues of a ``LocalStack``.
Assertions are on counts (what was admitted, what reached the venue), never on durations.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import yaml

from proxy.app import create_app
from proxy.dev.devvault import free_port
from proxy.dev.stack import LocalStack
from proxy.edge import ProxyApp
from proxy.identity import token_sha256
from proxy.serve import data_plane_config
from proxy.server import BackgroundServer
from proxy.settings import Settings
from proxy.sim.base import SimResponse, json_response
from tests.integration.redis_server import RedisServer

pytestmark = pytest.mark.asyncio(loop_scope="session")

TOKEN = "bot-token-for-shared-limits"
HEADERS = {"Proxy-Authorization": f"Bearer {TOKEN}"}
ACCOUNTS = ("a1", "a2", "a3", "a4", "a5", "a6")
ORDER = {"market": "BTCUSDT", "market_type": "SPOT", "side": "buy", "type": "limit", "amount": "0.001"}
ICX_ORDER = {"symbol": "BTCTRY", "side": "BUY", "type": "LIMIT", "price": "2000000", "quantity": "0.001"}
RATE_LIMITS: dict[str, Any] = {
    "backend": "redis",
    "venues": {"coinex": {"cooldown_s": 30}},
    "overrides": {
        "coinex/a1": {"order_query": {"limit": 10, "window_s": 1}},
        "icrypex/a2": {"order_insert": {"limit": 7, "window_s": 60}},
        "coinex/a3": {"spot_place": {"limit": 12, "window_s": 60}},
        "coinex/a6": {"order_query": {"limit": 3, "window_s": 60}},
    },
}


@dataclass
class Replica:
    app: ProxyApp
    url: str

    def at(self, venue: str, account: str, path: str) -> str:
        return f"{self.url}/{venue}/{account}{path}"


@asynccontextmanager
async def replicas(stack: LocalStack, **rate_limits: Any) -> AsyncIterator[list[Replica]]:
    """One replica per ``on_redis_error`` value given, all from one config."""
    policies = stack.dir / "shared-policies"
    if not policies.exists():
        policies.mkdir()
        allow = [{"venue": v, "paths": ["/**"]} for v in ("coinex", "icrypex")]
        policy = {"version": 1, "clients": {"bot": {"token_sha256": token_sha256(TOKEN), "allow": allow}}}
        (policies / "bot.yaml").write_text(yaml.safe_dump(policy))
    modes = rate_limits.pop("modes", ("fail_closed", "fail_closed"))
    servers, result = [], []
    try:
        for mode in modes:
            settings = _settings(
                stack.settings, policies, {**RATE_LIMITS, **rate_limits, "on_redis_error": mode}
            )
            app = create_app(settings)
            server = await BackgroundServer(data_plane_config(app, "127.0.0.1", free_port())).start()
            servers.append(server)
            result.append(Replica(app, server.url))
        yield result
    finally:
        for server in servers:
            await server.stop()


def _settings(base: Settings, policies: Path, rate_limits: dict[str, Any]) -> Settings:
    raw = base.model_dump(exclude={"source"}, exclude_none=True)
    raw.update(policies=str(policies), rate_limits=rate_limits)
    path = Path(base.source).with_name("replica.yaml")
    path.write_text(yaml.safe_dump(raw))
    from proxy.settings import load_settings

    return load_settings(path, environ={})


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def stack() -> AsyncIterator[LocalStack]:
    async with LocalStack(
        schemes=("coinex", "icrypex"),
        unseeded_accounts=ACCOUNTS,
        extra_config={"rate_limits": {"venue_profiles": False}},  # its own proxy is not used here
    ) as running:
        for scheme in running.schemes:
            for account in ACCOUNTS:
                running.vault.put_secret(f"signing-proxy/{scheme}/{account}", running.credentials[scheme])
        yield running


@pytest.fixture(scope="module")
def shared_redis() -> AsyncIterator[RedisServer]:
    with RedisServer() as server:
        yield server  # type: ignore[misc]


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def pair(stack: LocalStack, shared_redis: RedisServer) -> AsyncIterator[list[Replica]]:
    async with replicas(stack, url=shared_redis.url) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="session")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=20) as client:
        yield client


def _sent(stack: LocalStack, scheme: str, path: str) -> int:
    return stack.sims[scheme].recorder.count(path=path)


def _refused(response: httpx.Response, limit: str) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["x-signing-proxy-error"] == "rate_limited"
    assert limit in response.json()["error"]["message"], response.text
    assert int(response.headers["retry-after"]) >= 1


async def test_two_replicas_admit_together_at_most_the_limit_plus_one_burst(
    stack: LocalStack, pair: list[Replica], http: httpx.AsyncClient
) -> None:
    # order_query for coinex/a1 is overridden to a token bucket of 10/s, burst 10.
    path = "/v2/spot/pending-order"
    before = _sent(stack, "coinex", path)
    outcomes: dict[str, list[int]] = {replica.url: [] for replica in pair}

    def done() -> bool:  # at least 1 s of traffic, and each replica has met the shared limit
        met = all(429 in statuses for statuses in outcomes.values())
        return (met and time.monotonic() - started >= 1.0) or time.monotonic() - started > 30

    async def hammer(replica: Replica) -> None:
        while not done():
            response = await http.get(replica.at("coinex", "a1", path), headers=HEADERS)
            outcomes[replica.url].append(response.status_code)

    started = time.monotonic()
    await asyncio.gather(*(hammer(r) for r in pair for _ in range(3)))
    elapsed = time.monotonic() - started
    admitted = sum(statuses.count(200) for statuses in outcomes.values())
    assert admitted <= 10 + 10 * elapsed + 1  # burst + rate x measured window (+1: float rounding)
    assert admitted >= 10  # the burst itself was available
    assert all(429 in statuses for statuses in outcomes.values()), outcomes  # each met the shared limit
    assert all(set(statuses) <= {200, 429} for statuses in outcomes.values())
    assert _sent(stack, "coinex", path) - before == admitted  # a refusal never reached the venue


async def test_sliding_window_is_exact_across_replicas(
    stack: LocalStack, pair: list[Replica], http: httpx.AsyncClient
) -> None:
    # icrypex order_insert for icrypex/a2: 7 per 60 s; 24 concurrent orders through two replicas.
    before = _sent(stack, "icrypex", "/sapi/v1/orders")

    async def order(replica: Replica) -> int:
        response = await http.post(
            replica.at("icrypex", "a2", "/sapi/v1/orders"), json=ICX_ORDER, headers=HEADERS
        )
        return response.status_code

    statuses = await asyncio.gather(*(order(pair[i % 2]) for i in range(24)))
    assert statuses.count(200) == 7 and statuses.count(429) == 17
    assert _sent(stack, "icrypex", "/sapi/v1/orders") - before == 7


async def test_batch_cost_is_shared_across_replicas(
    stack: LocalStack, pair: list[Replica], http: httpx.AsyncClient
) -> None:
    # spot_place for coinex/a3: 12 per 60 s; a batch of 5 costs 5.
    a, b = pair
    batch = {"orders": [ORDER] * 5}
    url = "/v2/spot/batch-order"
    first = await http.post(a.at("coinex", "a3", url), json=batch, headers=HEADERS)
    second = await http.post(b.at("coinex", "a3", url), json=batch, headers=HEADERS)
    third = await http.post(a.at("coinex", "a3", url), json=batch, headers=HEADERS)
    single = await http.post(b.at("coinex", "a3", "/v2/spot/order"), json=ORDER, headers=HEADERS)
    assert (first.status_code, second.status_code, single.status_code) == (200, 200, 200)
    _refused(third, "account coinex/a3 spot_place (12/60s)")


async def test_venue_slow_down_seen_by_one_replica_pauses_the_key_for_both(
    stack: LocalStack, pair: list[Replica], http: httpx.AsyncClient
) -> None:
    a, b = pair
    sim = stack.sims["coinex"]
    sim.scripted.append(json_response(200, {"code": 4213, "data": {}, "message": "rate limit exceeded"}))
    before = len(sim.recorder.requests)
    answered = await http.get(a.at("coinex", "a4", "/v2/spot/pending-order"), headers=HEADERS)
    assert answered.status_code == 200 and answered.json()["code"] == 4213  # passed through as is
    paused = await http.post(b.at("coinex", "a4", "/v2/spot/order"), json=ORDER, headers=HEADERS)
    _refused(paused, "venue cooldown coinex/a4 (venue answered code 4213)")
    assert int(paused.headers["retry-after"]) <= 30
    other_key = await http.get(b.at("coinex", "a5", "/v2/spot/pending-order"), headers=HEADERS)
    assert other_key.status_code == 200
    assert len(sim.recorder.requests) - before == 2  # the 4213 and the other key's request


async def test_icrypex_429_pauses_the_key_for_the_venues_60_seconds(
    stack: LocalStack, pair: list[Replica], http: httpx.AsyncClient
) -> None:
    a, b = pair
    sim = stack.sims["icrypex"]
    sim.scripted.append(SimResponse(429, b"", ()))
    before = len(sim.recorder.requests)
    answered = await http.get(a.at("icrypex", "a4", "/sapi/v1/wallet"), headers=HEADERS)
    assert answered.status_code == 429 and "x-signing-proxy-error" not in answered.headers
    paused = await http.get(b.at("icrypex", "a4", "/sapi/v1/wallet"), headers=HEADERS)
    _refused(paused, "venue cooldown icrypex/a4 (venue answered HTTP 429)")
    assert int(paused.headers["retry-after"]) > 30  # "Rejected (sec): 60"
    assert len(sim.recorder.requests) - before == 1


async def test_redis_killed_mid_test_fails_closed_or_falls_back_as_configured(
    stack: LocalStack, redis_server: RedisServer, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    path = "/v2/spot/pending-order"
    async with replicas(stack, url=redis_server.url, modes=("fail_closed", "local")) as (closed, local):
        for replica in (closed, local):
            assert (await http.get(replica.at("coinex", "a6", path), headers=HEADERS)).status_code == 200
        redis_server.kill()
        before = _sent(stack, "coinex", path)
        with caplog.at_level(logging.ERROR, logger="signing_proxy.ratelimit"):
            refused = await http.get(closed.at("coinex", "a6", path), headers=HEADERS)
            # Not 429: the client is not over a limit; the backend could not decide.
            assert refused.status_code == 503, refused.text
            assert refused.headers["x-signing-proxy-error"] == "rate_limit_unavailable"
            assert "rate-limit backend redis unavailable" in refused.json()["error"]["message"]
            assert "unreachable: failing closed" in refused.json()["error"]["message"]
            assert int(refused.headers["retry-after"]) >= 1
            # Local fallback: each replica alone enforces the same limits (3 per 60 s here).
            statuses = [
                (await http.get(local.at("coinex", "a6", path), headers=HEADERS)).status_code
                for _ in range(4)
            ]
        assert statuses == [200, 200, 200, 429]
        assert _sent(stack, "coinex", path) - before == 3
        messages = [record.getMessage() for record in caplog.records]
        assert "rate-limit backend redis unreachable: failing closed" in messages
        assert "rate-limit backend redis unreachable: using local buckets" in messages
        assert b"signing_proxy_ratelimit_backend_errors_total 1.0" in closed.app.metrics.render()
        assert b"signing_proxy_ratelimit_failed_closed_total 1.0" in closed.app.metrics.render()
        assert b"signing_proxy_ratelimit_local_fallbacks_total 4.0" in local.app.metrics.render()

        redis_server.start()  # back on the same port: the closed replica admits again
        for _ in range(100):
            response = await http.get(closed.at("coinex", "a5", path), headers=HEADERS)
            if response.status_code == 200:
                break
            await asyncio.sleep(0.1)
        assert response.status_code == 200

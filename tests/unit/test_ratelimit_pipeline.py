"""Venue profiles through the pipeline, in-process: cost-weighted batches, a venue's
"slow down" pausing the key, its remaining-quota header, and client queueing.
The simulated CoinEx verifies every signature; nothing here opens a socket."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from proxy.app import build_rate_limits
from proxy.clock import FakeClock
from proxy.credentials.memory import MemoryStore
from proxy.edge import ProxyApp
from proxy.identity import token_sha256
from proxy.ratelimit.gate import RateGate
from proxy.ratelimit.limiter import MemoryLimiter
from proxy.settings import build_settings
from proxy.sim import SIMULATORS
from proxy.sim.base import SimResponse, json_response
from proxy.sim.credentials import demo_credentials, sim_keys
from tests.factories import FakeSleep, build_pipeline, venue
from tests.unit.inprocess import InProcessUpstream, proxy_client

ORIGIN = "http://coinex.sim"
HEADERS = {"Proxy-Authorization": "Bearer bot-token"}
ORDER = {"market": "BTCUSDT", "market_type": "SPOT", "side": "buy", "type": "limit", "amount": "1"}
SLOW_DOWN = json_response(200, {"code": 4213, "data": {}, "message": "rate limit exceeded"})


def _world(tmp_path: Path, rate_limits: dict[str, Any]) -> dict[str, Any]:
    clock = FakeClock()
    (tmp_path / "policies").mkdir()
    allow = [{"venue": "coinex", "paths": ["/v2/**"]}]
    policy = {"version": 1, "clients": {"bot": {"token_sha256": token_sha256("bot-token"), "allow": allow}}}
    (tmp_path / "policies" / "bot.yaml").write_text(yaml.safe_dump(policy))
    venues_config = {"coinex": {"scheme": "coinex", "upstream": ORIGIN, "accounts": ["main"]}}
    raw = {"venues": venues_config, "policies": "policies", "rate_limits": rate_limits}
    settings = build_settings(raw, tmp_path / "proxy.yaml", {})
    creds = demo_credentials("coinex")
    sim = SIMULATORS["coinex"](sim_keys(creds), clock)
    upstream = InProcessUpstream(sim)
    limiter = MemoryLimiter(clock)
    sleep = FakeSleep(clock)
    config = settings.rate_limits
    gate = RateGate(
        limiter, build_rate_limits(settings), config.max_wait_ms, config.client_max_wait_ms, sleep
    )
    pipeline = build_pipeline(
        settings.policies,
        [venue("coinex", url=ORIGIN)],
        MemoryStore({("coinex", "main"): creds}),
        upstream,
        clock=clock,
        limiter=limiter,
        rate_gate=gate,
    )
    app = ProxyApp(pipeline, max_body_bytes=1 << 20)
    return {"app": app, "sim": sim, "upstream": upstream, "clock": clock, "sleep": sleep, "limiter": limiter}


def _client(world: dict[str, Any]) -> httpx.AsyncClient:
    return proxy_client(world["app"], "10.0.0.1")


def _refused(response: httpx.Response, limit: str) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["x-signing-proxy-error"] == "rate_limited"
    assert limit in response.json()["error"]["message"]


async def test_batch_costs_one_unit_per_order(tmp_path: Path) -> None:
    world = _world(tmp_path, {"overrides": {"coinex/main": {"spot_place": {"limit": 12, "window_s": 60}}}})
    batch = {"orders": [ORDER] * 5}
    async with _client(world) as client:
        first = await client.post("/coinex/main/v2/spot/batch-order", json=batch, headers=HEADERS)
        second = await client.post("/coinex/main/v2/spot/batch-order", json=batch, headers=HEADERS)
        third = await client.post("/coinex/main/v2/spot/batch-order", json=batch, headers=HEADERS)
        single = await client.post("/coinex/main/v2/spot/order", json=ORDER, headers=HEADERS)
    assert (first.status_code, second.status_code, single.status_code) == (200, 200, 200)
    _refused(third, "account coinex/main spot_place (12/60s)")
    assert third.headers["retry-after"] == "15"  # 3 more units at 12/60 s
    assert [r.path for r in world["upstream"].sent] == ["/v2/spot/batch-order"] * 2 + ["/v2/spot/order"]


async def test_venue_slow_down_pauses_the_key(tmp_path: Path) -> None:
    world = _world(tmp_path, {"venues": {"coinex": {"cooldown_s": 3}}})
    world["sim"].scripted.append(SLOW_DOWN)
    async with _client(world) as client:
        answered = await client.get("/coinex/main/v2/spot/pending-order", headers=HEADERS)
        paused = await client.get("/coinex/main/v2/assets/spot/balance", headers=HEADERS)
        world["clock"].advance(3)
        again = await client.get("/coinex/main/v2/assets/spot/balance", headers=HEADERS)
    assert answered.status_code == 200 and answered.json()["code"] == 4213  # the venue's answer, as is
    _refused(paused, "venue cooldown coinex/main (venue answered code 4213)")
    assert paused.headers["retry-after"] == "3"
    assert again.status_code == 200 and again.json()["code"] == 0
    assert len(world["upstream"].sent) == 2
    assert world["limiter"].stats.cooldowns == 1


async def test_http_429_from_the_venue_pauses_the_key(tmp_path: Path) -> None:
    world = _world(tmp_path, {})
    world["sim"].scripted.append(SimResponse(429, b"", (("retry-after", "4"),)))
    async with _client(world) as client:
        answered = await client.get("/coinex/main/v2/spot/pending-order", headers=HEADERS)
        paused = await client.post("/coinex/main/v2/spot/order", json=ORDER, headers=HEADERS)
    assert answered.status_code == 429 and "x-signing-proxy-error" not in answered.headers
    _refused(paused, "venue cooldown coinex/main (venue answered HTTP 429)")
    assert paused.headers["retry-after"] == "4"
    assert len(world["upstream"].sent) == 1


async def test_remaining_quota_header_slows_down_before_the_ban(tmp_path: Path) -> None:
    world = _world(tmp_path, {})
    reply = json_response(200, {"code": 0, "data": {}, "message": "OK"}, {"X-RateLimit-Remaining": "0"})
    world["sim"].scripted.append(reply)
    async with _client(world) as client:
        placed = await client.post("/coinex/main/v2/spot/order", json=ORDER, headers=HEADERS)
        slowed = await client.post("/coinex/main/v2/spot/order", json=ORDER, headers=HEADERS)
        other_group = await client.get("/coinex/main/v2/spot/pending-order", headers=HEADERS)
    assert placed.status_code == 200
    _refused(slowed, "account coinex/main spot_place (30/1s)")
    assert other_group.status_code == 200
    assert world["limiter"].stats.slowdowns == 1


@pytest.mark.parametrize(("max_wait_ms", "expected"), [(0, 429), (1500, 200)])
async def test_short_queueing_instead_of_a_429(tmp_path: Path, max_wait_ms: int, expected: int) -> None:
    overrides = {"coinex/main": {"spot_place": {"limit": 1, "window_s": 1}}}
    world = _world(tmp_path, {"overrides": overrides, "client_max_wait_ms": {"bot": max_wait_ms}})
    async with _client(world) as client:
        first = await client.post("/coinex/main/v2/spot/order", json=ORDER, headers=HEADERS)
        second = await client.post("/coinex/main/v2/spot/order", json=ORDER, headers=HEADERS)
    assert (first.status_code, second.status_code) == (200, expected)
    assert len(world["upstream"].sent) == (2 if expected == 200 else 1)
    assert world["sleep"].slept == ([pytest.approx(1.0)] if expected == 200 else [])
    if expected == 200:
        assert json.loads(second.content)["code"] == 0


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_create_app_wires_the_backend_and_shared_sessions(tmp_path: Path, backend: str) -> None:
    from proxy.app import create_app
    from proxy.credentials.sessions_redis import RedisSessions
    from proxy.policy.rules import PolicySet
    from proxy.ratelimit.redis import RedisLimiter
    from proxy.signers.evedex.signer import LocalSessions

    venues = {
        "coinex": {"scheme": "coinex", "upstream": ORIGIN, "accounts": ["main"]},
        "evedex": {"scheme": "evedex", "upstream": ORIGIN, "auth_upstream": ORIGIN, "accounts": ["main"]},
    }
    rate_limits = {"backend": backend, "url": "redis://127.0.0.1:1/0"} if backend == "redis" else {}
    settings = build_settings({"venues": venues, "rate_limits": rate_limits}, tmp_path / "proxy.yaml", {})
    app = create_app(settings, store=MemoryStore(), policies=PolicySet())  # nothing connects yet
    limiter, signer = app.pipeline.limiter, app.pipeline.venues["evedex"].signer
    if backend == "redis":
        assert isinstance(limiter, RedisLimiter) and isinstance(signer.sessions, RedisSessions)  # type: ignore[attr-defined]
    else:
        assert isinstance(limiter, MemoryLimiter) and isinstance(signer.sessions, LocalSessions)  # type: ignore[attr-defined]
    assert app.pipeline.rate_gate.limits is not None and set(app.pipeline.rate_gate.limits.venues) == {
        "coinex",
        "evedex",
    }
    assert b"signing_proxy_ratelimit_backend_errors_total 0.0" in app.metrics.render()
    await limiter.close()

"""Issue 17's hot-path caches: the policy decision per (client, venue, account, method,
path) and the venue rate-limit groups per (account, method, path). Each holds a pure
function's answer, is bounded, and starts empty with a new configuration; what is not a
settled allow (denials, field rules) is decided again on every request."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from proxy import pipeline as pipeline_module
from proxy.app import build_rate_limits
from proxy.bounded import DEFAULT_SIZE, BoundedCache
from proxy.edge import ProxyApp
from proxy.messages import OutgoingRequest
from proxy.policy.loader import load_policies
from proxy.ratelimit.profiles import Group
from proxy.settings import build_settings
from tests.factories import build_pipeline, simulated
from tests.unit.inprocess import proxy_client

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "policies"
MM = {"Proxy-Authorization": "Bearer mm-token"}


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    sims = simulated(("coinex", "icrypex", "haqqex"))
    pipeline = build_pipeline(FIXTURES / "basic", sims.venues, sims.store, sims.upstream)
    calls: list[tuple[str, str]] = []
    real = pipeline_module.decide

    def counting(client: Any, venue: str, account: str, method: str, path: str) -> Any:
        calls.append((method, path))
        return real(client, venue, account, method, path)

    monkeypatch.setattr(pipeline_module, "decide", counting)
    return {
        "app": ProxyApp(pipeline, max_body_bytes=1024),
        "pipeline": pipeline,
        "decided": calls,
        "sims": sims,
    }


def test_bounded_cache_drops_the_oldest_entry_when_full() -> None:
    cache: BoundedCache[str, int] = BoundedCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("a", 10)  # an existing key is replaced, nothing evicted
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c"), len(cache)) == (None, 2, 3, 2)
    with pytest.raises(ValueError):
        BoundedCache(0)


async def test_a_repeated_allowed_request_is_decided_once(world: dict[str, Any]) -> None:
    async with proxy_client(world["app"]) as client:
        statuses = [
            (await client.get("/coinex/main/v2/spot/pending-order?market=BTCUSDT", headers=MM)).status_code
            for _ in range(3)
        ]
    assert statuses == [200, 200, 200]
    assert world["decided"] == [("GET", "/v2/spot/pending-order")]
    assert len(world["sims"].upstream.sent) == 3  # each one still signed and sent


async def test_denials_are_decided_on_every_request(world: dict[str, Any]) -> None:
    async with proxy_client(world["app"]) as client:
        statuses = [
            (await client.get("/coinex/main/v2/spot/withdraw", headers=MM)).status_code for _ in range(3)
        ]
        other = await client.get("/coinex/main/v1/unlisted", headers=MM)
        again = await client.get("/coinex/main/v1/unlisted", headers=MM)
    assert statuses == [403, 403, 403] and other.status_code == again.status_code == 403
    assert len(world["decided"]) == 5


async def test_route_checks_still_run_for_a_cached_path(world: dict[str, Any]) -> None:
    async with proxy_client(world["app"]) as client:
        ok = await client.get("/coinex/main/v2/spot/pending-order", headers=MM)
        dotted = await client.get("/coinex/main/v2/spot/%2e%2e/pending-order", headers=MM)
        override = await client.get(
            "/coinex/main/v2/spot/pending-order", headers={**MM, "X-HTTP-Method-Override": "DELETE"}
        )
        stranger = await client.get("/coinex/main/v2/spot/pending-order")
    assert ok.status_code == 200
    assert dotted.status_code == 400 and override.status_code == 400
    assert stranger.status_code == 401


async def test_a_reload_drops_the_cached_decisions(world: dict[str, Any], tmp_path: Path) -> None:
    pipeline = world["pipeline"]
    text = (FIXTURES / "basic" / "desk.yaml").read_text()
    (tmp_path / "desk.yaml").write_text(text.replace('"/v2/spot/**", ', ""))
    async with proxy_client(world["app"]) as client:
        before = await client.get("/coinex/main/v2/spot/pending-order", headers=MM)
        pipeline.swap(
            policies=load_policies(tmp_path), venues=pipeline.venues, limits=pipeline.rate_gate.limits
        )
        after = await client.get("/coinex/main/v2/spot/pending-order", headers=MM)
    assert before.status_code == 200
    assert after.status_code == 403 and after.headers["x-signing-proxy-error"] == "policy_denied"


def test_the_decision_cache_is_bounded(world: dict[str, Any]) -> None:
    pipeline = world["pipeline"]
    policies = pipeline.policies
    client = policies.by_token[next(iter(policies.by_token))]
    for i in range(DEFAULT_SIZE + 100):
        assert pipeline._decide(policies, client, "coinex", "main", "GET", f"/v2/spot/x{i}").allowed
    assert len(pipeline._decisions[1]) == DEFAULT_SIZE


# --- venue rate-limit groups --------------------------------------------------------------


def _limits(tmp_path: Path) -> Any:
    venues = {"coinex": {"scheme": "coinex", "upstream": "https://coinex.test", "accounts": ["main"]}}
    raw = {"venues": venues, "policies": str(tmp_path / "policies")}
    return build_rate_limits(build_settings(raw, tmp_path / "proxy.yaml", {}))


def _order(count: int) -> OutgoingRequest:
    body = json.dumps({"orders": [{}] * count}).encode()
    return OutgoingRequest("POST", "/v2/spot/batch-order", (), body)


def test_matched_groups_are_worked_out_once_per_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    limits = _limits(tmp_path)
    looked: list[str] = []
    real = Group.rule_for

    def counting(self: Group, method: str, canonical: str) -> Any:
        looked.append(self.name)
        return real(self, method, canonical)

    monkeypatch.setattr(Group, "rule_for", counting)
    first = limits.charge("coinex", "main", _order(5))
    lookups = len(looked)
    second = limits.charge("coinex", "main", _order(3))
    assert lookups > 0 and len(looked) == lookups  # the second charge matched no group again
    # ...but each request is still priced by its own body (a batch costs per order).
    assert [(b.name, b.cost) for b in first.buckets] == [
        ("account coinex/main spot_place (30/1s)", 5.0),
        ("venue coinex ip (400/1s)", 1.0),
    ]
    assert [b.cost for b in second.buckets] == [3.0, 1.0]


def test_a_reload_builds_limits_with_no_cached_groups(tmp_path: Path) -> None:
    old = _limits(tmp_path)
    old.charge("coinex", "main", _order(1))
    new = _limits(tmp_path)  # what a reload builds and Pipeline.swap installs
    assert len(old.venues["coinex"]._plans) == 1 and len(new.venues["coinex"]._plans) == 0


def test_the_group_cache_is_bounded(tmp_path: Path) -> None:
    limits = _limits(tmp_path)
    for i in range(DEFAULT_SIZE + 10):
        limits.charge("coinex", "main", OutgoingRequest("GET", f"/v2/spot/x{i}", (), b""))
    assert len(limits.venues["coinex"]._plans) == DEFAULT_SIZE

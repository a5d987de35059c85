"""Issue 14 item 3: what a client sends never grows the metrics or an in-memory table.

Metric labels come only from configured names (venue, account, client, rule, limit,
scheme, status class, outcome); a venue or account that is not configured is the one value
``_unknown``. Rate-limit buckets, cooldowns, sessions and metric children are keyed by
configured names only, so 2 000 requests to random venues, accounts and methods leave
``/metrics`` and every table exactly as big as they were. Sizes are asserted, not memory.
"""

from __future__ import annotations

import random
import string
from pathlib import Path
from typing import Any

import pytest
import yaml

from proxy.app import create_app
from proxy.clock import FakeClock
from proxy.credentials.memory import MemoryStore
from proxy.identity import token_sha256
from proxy.metrics import UNKNOWN, Metrics
from proxy.ratelimit.limiter import MemoryLimiter
from proxy.settings import build_settings
from proxy.sim import SIMULATORS
from proxy.sim.credentials import demo_credentials, sim_keys
from tests.unit.inprocess import InProcessUpstream, proxy_client
from tests.unit.ws.harness import AsgiClient

BOT = {"Proxy-Authorization": "Bearer bot-token"}
ORIGIN = "http://coinex.sim"


def _name(rng: random.Random, size: int = 8) -> str:
    return "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(size))


class RecordingStore(MemoryStore):
    """A credential store that remembers every key it was asked for (what a cache would hold)."""

    def __init__(self, secrets: dict[tuple[str, str], dict[str, str]]) -> None:
        super().__init__(secrets)
        self.asked: set[tuple[str, str]] = set()

    async def get(self, venue: str, account: str) -> Any:
        self.asked.add((venue, account))
        return await super().get(venue, account)


def _app(tmp_path: Path) -> Any:
    (tmp_path / "policies").mkdir()
    policy = {
        "version": 1,
        "clients": {
            "bot": {
                "token_sha256": token_sha256("bot-token"),
                "rate_limit": {"per_second": 1000, "burst": 1000},
                "allow": [{"venue": "coinex", "methods": ["GET"], "paths": ["/v2/**"]}],
            }
        },
        "accounts": {"coinex/main": {"rate_limit": {"per_second": 1000, "burst": 1000}}},
    }
    (tmp_path / "policies" / "bot.yaml").write_text(yaml.safe_dump(policy))
    venues = {"coinex": {"scheme": "coinex", "upstream": ORIGIN, "accounts": ["main"]}}
    settings = build_settings({"venues": venues, "policies": "policies"}, tmp_path / "proxy.yaml", {})
    creds = demo_credentials("coinex")
    clock = FakeClock()
    app = create_app(
        settings, store=RecordingStore({("coinex", "main"): creds}), clock=clock, metrics=Metrics()
    )
    app.pipeline.forwarder = InProcessUpstream(SIMULATORS["coinex"](sim_keys(creds), clock))
    return app


def _sizes(app: Any) -> dict[str, int]:
    limiter = app.pipeline.limiter
    assert isinstance(limiter, MemoryLimiter)
    return {
        "metrics lines": len(app.metrics.render().splitlines()),
        "metric series": app.metrics.series(),
        "buckets": len(limiter._tokens) + len(limiter._logs),
        "cooldowns": len(limiter._cooldowns),
        "stream slots": len(app.streams.limits._clients) + len(app.streams.limits._keys),
        "credential keys": len(app.pipeline.store.asked),
    }


async def _random_requests(client: Any, rng: random.Random, count: int) -> set[int]:
    statuses = set()
    for number in range(count):
        kind = number % 5
        venue = "coinex" if kind in (1, 2) else _name(rng)
        account = "main" if kind == 2 else _name(rng)
        method = "".join(rng.choice(string.ascii_uppercase) for _ in range(6)) if kind == 2 else "GET"
        headers = {} if kind == 4 else BOT  # strangers too
        path = f"/{venue}/{account}/v2/{_name(rng)}"
        response = await client.request(method, path, headers=headers)
        statuses.add(response.status_code)
    return statuses


async def test_random_names_grow_neither_metrics_nor_tables(tmp_path: Path) -> None:
    app = _app(tmp_path)
    rng = random.Random(14)
    async with proxy_client(app) as client:
        ok = await client.get("/coinex/main/v2/assets/spot/balance", headers=BOT)
        assert ok.status_code == 200, ok.text
        await _random_requests(client, rng, 25)  # every outcome once: its series exists now
        before = _sizes(app)
        statuses = await _random_requests(client, rng, 2000)
        for number in range(100):  # stream opens too: refused before any slot or bucket
            account = "main" if number % 2 else _name(rng)
            stream = AsgiClient(
                app, f"/{_name(rng)}/{account}/v2/spot", [("proxy-authorization", BOT["Proxy-Authorization"])]
            )
            statuses.add((await stream.handshake())["status"])
            await stream.finished()
    assert statuses == {401, 403, 404}  # the refusals that come before any table is touched
    assert _sizes(app) == before
    assert app.pipeline.store.asked == {("coinex", "main")}
    text = app.metrics.render().decode()
    assert (
        f'signing_proxy_requests_total{{account="{UNKNOWN}",outcome="unknown_route",venue="{UNKNOWN}"}}'
        in text
    )
    assert 'account="main",outcome="forwarded",venue="coinex"' in text


async def test_a_configured_venue_with_an_unknown_account_keeps_only_the_venue_label(tmp_path: Path) -> None:
    app = _app(tmp_path)
    async with proxy_client(app) as client:
        response = await client.get("/coinex/nobody/v2/assets/spot/balance", headers=BOT)
    assert response.status_code == 404
    text = app.metrics.render().decode()
    assert (
        f'signing_proxy_requests_total{{account="{UNKNOWN}",outcome="unknown_route",venue="coinex"}} 1.0'
        in text
    )
    assert "nobody" not in text


@pytest.mark.parametrize("count", [3])
def test_a_metric_stops_making_series_at_its_cap(count: int) -> None:
    """Defence in depth: should a label ever carry an unbounded value, the series count stops."""
    metrics = Metrics(max_series=count)
    for number in range(50):
        metrics.limited(f"limit {number}")
    text = metrics.render().decode()
    series = [line for line in text.splitlines() if line.startswith("signing_proxy_rate_limited_total{")]
    assert len(series) == count + 1  # the cap, plus the one overflow series
    assert 'signing_proxy_rate_limited_total{limit="_overflow"} 47.0' in text

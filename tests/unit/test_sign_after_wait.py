"""Issue 14 item 8 (and issue 19 item 2, last bullet): admit first, then take the time and sign.

Every charge, the venue profile's group included, and its queueing wait happen before
``SignContext.now_ms`` is taken, so a CoinEx window or an Invex ``expire_at`` cannot lapse
in the queue; a refused request spends no signature, in Vault Transit or locally.
The simulated venues verify every signature; the clock and the sleep are fakes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from proxy.app import build_rate_limits
from proxy.clock import FakeClock
from proxy.credentials.memory import MemoryStore
from proxy.edge import ProxyApp
from proxy.identity import token_sha256
from proxy.metrics import Metrics
from proxy.ratelimit.gate import RateGate
from proxy.ratelimit.limiter import MemoryLimiter
from proxy.settings import build_settings
from proxy.signers import SIGNERS
from proxy.signers.keyops import Hmac, KeyOp, KeyOperator
from proxy.sim import SIMULATORS
from proxy.sim.credentials import demo_credentials, sim_keys
from tests.factories import FakeSleep, build_pipeline, venue
from tests.unit.inprocess import InProcessUpstream, proxy_client

HEADERS = {"Proxy-Authorization": "Bearer bot-token"}
COINEX_ORDER = {"market": "BTCUSDT", "market_type": "SPOT", "side": "buy", "type": "limit", "amount": "1"}


class CountingTransit:
    """Transit that holds the HMAC key and counts every signature it is asked for."""

    def __init__(self, key: bytes) -> None:
        self.key, self.calls = key, 0

    def operator(self, venue: str, account: str, key: str, version: int | None) -> KeyOperator:
        async def perform(op: KeyOp) -> bytes:
            self.calls += 1
            assert isinstance(op, Hmac)
            return hmac.new(self.key, op.message, hashlib.sha256).digest()

        return perform

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None


class RecordingGate(RateGate):
    """The real gate, remembering each venue-profile charge."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.charged: list[tuple[str, str, str | None]] = []

    async def before_send(self, venue, account, client, request, state, stream=False):  # type: ignore[no-untyped-def]
        self.charged.append((request.method, request.path, request.origin))
        return await super().before_send(venue, account, client, request, state, stream)


class CountingStore(MemoryStore):
    """Counts secret reads: a refused request should cause none."""

    reads = 0

    async def get(self, venue: str, account: str) -> Any:
        self.reads += 1
        return await super().get(venue, account)


def _world(tmp_path: Path, scheme: str, rate_limits: dict[str, Any], transit: bool = False) -> dict[str, Any]:
    clock = FakeClock()
    (tmp_path / "policies").mkdir()
    allow = [{"venue": scheme, "paths": ["/**"]}]
    policy = {"version": 1, "clients": {"bot": {"token_sha256": token_sha256("bot-token"), "allow": allow}}}
    (tmp_path / "policies" / "bot.yaml").write_text(yaml.safe_dump(policy))
    origin = f"http://{scheme}.sim"
    options = {"auth_upstream": origin} if scheme == "evedex" else {}
    venues_config = {scheme: {"scheme": scheme, "upstream": origin, "accounts": ["main"], **options}}
    raw = {"venues": venues_config, "policies": "policies", "rate_limits": rate_limits}
    settings = build_settings(raw, tmp_path / "proxy.yaml", {})
    creds = demo_credentials(scheme)
    sim = SIMULATORS[scheme](sim_keys(creds), clock)
    upstream = InProcessUpstream(sim)
    limiter = MemoryLimiter(clock)
    sleep = FakeSleep(clock)
    config = settings.rate_limits
    gate = RecordingGate(
        limiter, build_rate_limits(settings), config.max_wait_ms, config.client_max_wait_ms, sleep
    )
    signer = SIGNERS[scheme](options)
    fake_transit = None
    stored = creds
    transit_keys: dict[str, str] = {}
    if transit:
        fake_transit = CountingTransit(signer.hmac_key(creds))  # type: ignore[attr-defined]
        stored = {"api_key": creds["api_key"], "transit_key_version": "1"}
        transit_keys = {"main": f"signing-proxy-{scheme}-main"}
    metrics = Metrics()
    store = CountingStore({(scheme, "main"): stored})
    pipeline = build_pipeline(
        settings.policies,
        [venue(scheme, url=origin, signer=signer, transit_keys=transit_keys)],
        store,
        upstream,
        clock=clock,
        limiter=limiter,
        rate_gate=gate,
        transit=fake_transit,
    )
    app = ProxyApp(pipeline, max_body_bytes=1 << 20, metrics=metrics)
    return {
        "app": app,
        "upstream": upstream,
        "clock": clock,
        "sleep": sleep,
        "transit": fake_transit,
        "metrics": metrics,
        "store": store,
        "gate": gate,
        "sim": sim,
    }


async def test_the_signed_timestamp_is_taken_after_the_venue_profile_wait(tmp_path: Path) -> None:
    overrides = {"coinex/main": {"spot_place": {"limit": 1, "window_s": 4}}}
    world = _world(tmp_path, "coinex", {"overrides": overrides, "client_max_wait_ms": {"bot": 5000}})
    async with proxy_client(world["app"], "10.0.0.1") as client:
        first = await client.post("/coinex/main/v2/spot/order", json=COINEX_ORDER, headers=HEADERS)
        queued_at_ms = world["clock"].now() * 1000
        second = await client.post("/coinex/main/v2/spot/order", json=COINEX_ORDER, headers=HEADERS)
    assert (first.status_code, second.status_code) == (200, 200), second.text
    assert world["sleep"].slept == [pytest.approx(4.0)]
    signed_ms = int(world["upstream"].sent[1].header("x-coinex-timestamp"))
    assert signed_ms >= queued_at_ms + 4000  # signed after the 4 s wait, not before it
    assert json.loads(second.content)["code"] == 0  # and the venue accepted it


async def test_an_invex_expire_at_counts_from_after_the_wait(tmp_path: Path) -> None:
    # Invex signs expire_at = now + expire_after_s (60 s): a 50 s queue must not eat it.
    overrides = {"invex/main": {"orders": {"limit": 1, "window_s": 50}}}
    world = _world(tmp_path, "invex", {"overrides": overrides, "client_max_wait_ms": {"bot": 60000}})
    order = {"symbol": "BTC_IRT", "side": "buy", "type": "limit", "price": "1", "amount": "1"}
    async with proxy_client(world["app"], "10.0.0.1") as client:
        first = await client.post("/invex/main/trading/v1/orders", json=order, headers=HEADERS)
        before = world["clock"].now()
        second = await client.post("/invex/main/trading/v1/orders", json=order, headers=HEADERS)
    assert first.status_code == 200 and second.status_code == 200, second.text
    assert world["sleep"].slept == [pytest.approx(50.0)]
    expected = datetime.fromtimestamp(int(before) + 50 + 60, ZoneInfo("Asia/Tehran")).strftime(
        "%Y-%m-%d %H:%M:%S"
    )
    assert json.loads(world["upstream"].sent[1].body)["expire_at"] == expected


async def test_a_rate_limited_transit_account_spends_no_transit_signature(tmp_path: Path) -> None:
    overrides = {"coinex/main": {"spot_place": {"limit": 1, "window_s": 60}}}
    world = _world(tmp_path, "coinex", {"overrides": overrides}, transit=True)
    async with proxy_client(world["app"], "10.0.0.1") as client:
        first = await client.post("/coinex/main/v2/spot/order", json=COINEX_ORDER, headers=HEADERS)
        refused = [
            await client.post("/coinex/main/v2/spot/order", json=COINEX_ORDER, headers=HEADERS)
            for _ in range(5)
        ]
    assert first.status_code == 200, first.text
    assert {r.status_code for r in refused} == {429}
    assert world["transit"].calls == 1  # only the admitted request was signed
    assert world["store"].reads == 1  # and only it read the account's secret
    assert len(world["upstream"].sent) == 1


async def test_the_wait_is_logged_and_exported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    overrides = {"coinex/main": {"spot_place": {"limit": 1, "window_s": 2}}}
    world = _world(tmp_path, "coinex", {"overrides": overrides, "client_max_wait_ms": {"bot": 5000}})
    caplog.set_level(logging.INFO, logger="signing_proxy.access")
    async with proxy_client(world["app"], "10.0.0.1") as client:
        await client.post("/coinex/main/v2/spot/order", json=COINEX_ORDER, headers=HEADERS)
        await client.post("/coinex/main/v2/spot/order", json=COINEX_ORDER, headers=HEADERS)
    waits = [getattr(r, "rate_wait_ms", "absent") for r in caplog.records if r.getMessage() == "request"]
    assert waits == [0, 2000.0]
    text = world["metrics"].render().decode()
    assert 'signing_proxy_rate_wait_seconds_count{venue="coinex"} 1.0' in text
    assert 'signing_proxy_rate_wait_seconds_sum{venue="coinex"} 2.0' in text


async def test_evedex_is_charged_once_before_signing_and_its_auth_calls_are_not(tmp_path: Path) -> None:
    world = _world(tmp_path, "evedex", {})
    async with proxy_client(world["app"], "10.0.0.1") as client:
        response = await client.get("/evedex/main/api/order/opened", headers=HEADERS)
    assert response.status_code == 200, response.text
    sent = [(r.method, r.path) for r in world["sim"].recorder.requests]
    assert ("GET", "/auth/nonce") in sent and sent[-1] == ("GET", "/api/order/opened")  # it logged in
    assert world["gate"].charged == [("GET", "/api/order/opened", None)]  # the request only, once

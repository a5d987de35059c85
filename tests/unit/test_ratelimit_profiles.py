"""Venue rate-limit profiles: the shipped data, request -> groups and costs, venue
feedback, operator overrides, and config errors that name the file and the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from proxy.app import build_rate_limits
from proxy.config_errors import ConfigError
from proxy.messages import OutgoingRequest, UpstreamReply
from proxy.policy.loader import load_policies
from proxy.policy.rules import RateSpec
from proxy.ratelimit.limiter import Window
from proxy.ratelimit.profiles import SHIPPED_PROFILES, load_profile, load_profiles
from proxy.settings import Settings, build_settings
from proxy.signers import SIGNERS

REPO = Path(__file__).resolve().parents[2]
VENUES = {
    scheme: {"scheme": scheme, "upstream": f"https://{scheme}.test", "accounts": ["main", "alt"]}
    for scheme in SIGNERS
}
VENUES["evedex"]["auth_upstream"] = "https://auth.evedex.test"


def _settings(tmp_path: Path, rate_limits: dict[str, Any] | None = None) -> Settings:
    raw: dict[str, Any] = {"venues": VENUES, "policies": str(tmp_path / "policies")}
    if rate_limits is not None:
        raw["rate_limits"] = rate_limits
    return build_settings(raw, tmp_path / "proxy.yaml", {})


def _charged(settings: Settings, venue: str, method: str, path: str, body: Any = None) -> list[str]:
    raw = b"" if body is None else json.dumps(body).encode()
    charge = build_rate_limits(settings).charge(venue, "main", OutgoingRequest(method, path, (), raw))
    return [f"{b.name} x{b.cost:g}" for b in charge.buckets]


def test_every_scheme_ships_a_profile() -> None:
    assert set(load_profiles(SHIPPED_PROFILES)) == set(SIGNERS)


def test_policy_loader_ignores_the_profile_subdirectory() -> None:
    # policies/ holds example.yaml and ratelimits/*.yaml: only the former is a policy file.
    policies = load_policies(REPO / "policies", allow_example_tokens=True)
    assert [Path(source).name for source in policies.sources] == ["example.yaml"]


# The numbers of ../shared/venues.md, group by group.
@pytest.mark.parametrize(
    ("scheme", "group", "limit", "window_s", "scope", "spec"),
    [
        ("coinex", "ip", 400, 1, "ip", RateSpec),
        ("coinex", "spot_place", 30, 1, "account", RateSpec),
        ("coinex", "spot_cancel", 60, 1, "account", RateSpec),
        ("coinex", "spot_batch_cancel", 40, 1, "account", RateSpec),
        ("coinex", "order_query", 50, 1, "account", RateSpec),
        ("coinex", "order_history", 10, 1, "account", RateSpec),
        ("coinex", "account", 10, 1, "account", RateSpec),
        ("coinex", "futures_place", 20, 1, "account", RateSpec),
        ("coinex", "futures_cancel", 40, 1, "account", RateSpec),
        ("coinex", "futures_batch_cancel", 20, 1, "account", RateSpec),
        ("icrypex", "order_insert", 300, 60, "account", Window),
        ("icrypex", "order_cancel", 300, 60, "account", Window),
        ("icrypex", "open_orders", 300, 60, "account", Window),
        ("icrypex", "account_trades", 180, 60, "account", Window),
        ("icrypex", "wallet", 120, 60, "account", Window),
        ("icrypex", "orderbook", 240, 60, "ip", Window),
        ("icrypex", "klines", 120, 60, "ip", Window),
        ("evedex", "heavy", 30, 60, "account", Window),
        ("invex", "all", 10, 1, "account", RateSpec),
        ("haqqex", "orders", 5, 1, "account", RateSpec),
    ],
)
def test_shipped_numbers(
    scheme: str, group: str, limit: int, window_s: float, scope: str, spec: type
) -> None:
    found = {g.name: g for g in load_profile(SHIPPED_PROFILES / f"{scheme}.yaml").groups}[group]
    assert (found.limit, found.window_s, found.scope) == (limit, window_s, scope)
    assert isinstance(found.spec, spec)


@pytest.mark.parametrize(
    ("venue", "method", "path", "body", "charged"),
    [
        ("coinex", "POST", "/v2/spot/order", {"market": "BTCUSDT"},
         ["account coinex/main spot_place (30/1s) x1", "venue coinex ip (400/1s) x1"]),
        ("coinex", "POST", "/v2/spot/batch-order", {"orders": [{}, {}, {}, {}, {}]},
         ["account coinex/main spot_place (30/1s) x5", "venue coinex ip (400/1s) x1"]),
        ("coinex", "POST", "/v2/spot/cancel-batch-order", {"market": "X", "order_ids": [1, 2, 3]},
         ["account coinex/main spot_batch_cancel (40/1s) x3", "venue coinex ip (400/1s) x1"]),
        ("coinex", "POST", "/v2/spot/batch-order", "not an object",
         ["account coinex/main spot_place (30/1s) x1", "venue coinex ip (400/1s) x1"]),
        ("coinex", "GET", "/v2/spot/pending-order", None,
         ["account coinex/main order_query (50/1s) x1", "venue coinex ip (400/1s) x1"]),
        ("coinex", "GET", "/v2/futures/position-funding-history", None,
         ["account coinex/main order_history (10/1s) x1", "venue coinex ip (400/1s) x1"]),
        ("coinex", "GET", "/v2/assets/spot/balance", None,
         ["account coinex/main account (10/1s) x1", "venue coinex ip (400/1s) x1"]),
        ("coinex", "GET", "/v2/spot/market", None, ["venue coinex ip (400/1s) x1"]),
        ("icrypex", "POST", "/sapi/v1/orders", {}, ["account icrypex/main order_insert (300/60s) x1"]),
        ("icrypex", "DELETE", "/sapi/v1/orders?orderId=1", None,
         ["account icrypex/main order_cancel (300/60s) x1"]),
        ("icrypex", "GET", "/sapi/v1/orders/history", None,
         ["account icrypex/main order_history (300/60s) x1"]),
        ("icrypex", "GET", "/sapi/v1/orders/BTCTRY", None, ["account icrypex/main open_orders (300/60s) x1"]),
        ("icrypex", "GET", "/sapi/v1/orderbook", None, ["venue icrypex orderbook (240/60s) x1"]),
        ("evedex", "POST", "/api/v2/order/limit", {}, ["account evedex/main heavy (30/60s) x1"]),
        ("evedex", "DELETE", "/api/order/00001:abc", None, ["account evedex/main heavy (30/60s) x1"]),
        ("evedex", "PUT", "/api/order/00001:abc/limit", {}, ["account evedex/main heavy (30/60s) x1"]),
        ("evedex", "GET", "/api/user/me", None, []),
        ("invex", "POST", "/trading/v1/orders", {},
         ["account invex/main all (10/1s) x1", "account invex/main orders (5/1s) x1"]),
        ("haqqex", "GET", "/api/v1/balances", None, ["account haqqex/main all (10/1s) x1"]),
    ],
)  # fmt: skip
def test_request_to_groups_and_cost(
    tmp_path: Path, venue: str, method: str, path: str, body: Any, charged: list[str]
) -> None:
    assert _charged(_settings(tmp_path), venue, method, path, body) == charged


def test_ip_only_limits_cool_down_the_whole_venue(tmp_path: Path) -> None:
    limits = build_rate_limits(_settings(tmp_path))
    orderbook = limits.charge("icrypex", "main", OutgoingRequest("GET", "/sapi/v1/orderbook"))
    wallet = limits.charge("icrypex", "main", OutgoingRequest("GET", "/sapi/v1/wallet"))
    assert (orderbook.cooldown_key, wallet.cooldown_key) == ("icrypex", "icrypex/main")


@pytest.mark.parametrize(
    ("venue", "status", "headers", "body", "expected"),
    [
        ("coinex", 200, (), b'{"code": 4213, "data": {}, "message": "rate limit"}',
         (1.0, "venue answered code 4213")),
        ("coinex", 200, (("retry-after", "7"),), b'{"code":4213}', (7.0, "venue answered code 4213")),
        ("coinex", 200, (), b'{"code": 0, "data": {"id": 4213}}', None),
        ("coinex", 429, (), b"<html>slow down</html>", (1.0, "venue answered HTTP 429")),
        ("icrypex", 429, (), b"", (60.0, "venue answered HTTP 429")),
        ("icrypex", 429, (("Retry-After", "5"),), b"", (60.0, "venue answered HTTP 429")),
        ("evedex", 429, (), b"{}", (10.0, "venue answered HTTP 429")),
        ("invex", 500, (), b"", None),
    ],
)  # fmt: skip
def test_venue_feedback(
    tmp_path: Path, venue: str, status: int, headers: tuple[tuple[str, str], ...], body: bytes, expected: Any
) -> None:
    charge = build_rate_limits(_settings(tmp_path)).charge(venue, "main", OutgoingRequest("GET", "/x"))
    assert charge.feedback.slow_down(UpstreamReply(status, headers, body)) == expected


def test_remaining_quota_header(tmp_path: Path) -> None:
    feedback = build_rate_limits(_settings(tmp_path)).venues["coinex"].feedback
    assert feedback.remaining(UpstreamReply(200, (("X-RateLimit-Remaining", "3"),))) == 3
    assert feedback.remaining(UpstreamReply(200, (("x-ratelimit-remaining", "n/a"),))) is None
    assert feedback.remaining(UpstreamReply(200, ())) is None


def test_overrides_per_account_and_per_venue(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path,
        {
            "overrides": {"coinex/main": {"spot_place": {"limit": 20}}, "coinex": {"ip": {"limit": 300}}},
            "venues": {"icrypex": {"cooldown_s": 90}, "evedex": {"profile": "none"}},
        },
    )
    limits = build_rate_limits(settings)
    assert _charged(settings, "coinex", "POST", "/v2/spot/order", {}) == [
        "account coinex/main spot_place (20/1s) x1",
        "venue coinex ip (300/1s) x1",
    ]
    alt = limits.charge("coinex", "alt", OutgoingRequest("POST", "/v2/spot/order"))
    assert alt.buckets[0].name == "account coinex/alt spot_place (30/1s)"
    later = limits.charge("coinex", "added-by-reload", OutgoingRequest("POST", "/v2/spot/order"))
    assert later.buckets[0].name == "account coinex/added-by-reload spot_place (30/1s)"
    assert limits.venues["icrypex"].feedback.cooldown_s == 90
    assert "evedex" not in limits.venues
    assert build_rate_limits(_settings(tmp_path, {"venue_profiles": False})).venues == {}


def test_profiles_beside_the_policies_win(tmp_path: Path) -> None:
    mine = tmp_path / "policies" / "ratelimits"
    mine.mkdir(parents=True)
    for scheme in SIGNERS:
        (mine / f"{scheme}.yaml").write_text((SHIPPED_PROFILES / f"{scheme}.yaml").read_text())
    text = (mine / "coinex.yaml").read_text().replace("limit: 30\n", "limit: 3\n", 1)
    (mine / "coinex.yaml").write_text(text)
    charged = _charged(_settings(tmp_path), "coinex", "POST", "/v2/spot/order", {})
    assert charged[0] == "account coinex/main spot_place (3/1s) x1"


@pytest.mark.parametrize(
    ("rate_limits", "field"),
    [
        ({"overrides": {"coinex/main": {"spot_plase": {"limit": 1}}}},
         "rate_limits.overrides.coinex/main.spot_plase"),
        ({"overrides": {"coinex/nope": {"spot_place": {"limit": 1}}}}, "rate_limits.overrides.coinex/nope"),
        ({"overrides": {"binance": {"ip": {"limit": 1}}}}, "rate_limits.overrides.binance"),
        ({"overrides": {"coinex/main": {"ip": {"limit": 1}}}}, "rate_limits.overrides.coinex/main.ip"),
        ({"overrides": {"evedex/main": {"heavy": {"limit": 1}}}, "venues": {"evedex": {"profile": "none"}}},
         "rate_limits.overrides.evedex/main"),
        ({"venues": {"coinex": {"profile": "kraken"}}}, "rate_limits.venues.coinex.profile"),
        ({"venues": {"kraken": {}}}, "rate_limits.venues.kraken"),
    ],
)  # fmt: skip
def test_bad_overrides_name_the_field(tmp_path: Path, rate_limits: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as error:
        build_rate_limits(_settings(tmp_path, rate_limits))
    assert error.value.field == field
    assert error.value.file == str(tmp_path / "proxy.yaml")


@pytest.mark.parametrize(
    ("rate_limits", "field"),
    [
        ({"backend": "redis"}, "rate_limits"),
        ({"backend": "redis", "url": "http://127.0.0.1:6379"}, "rate_limits.url"),
        ({"backend": "memcached"}, "rate_limits.backend"),
        ({"on_redis_error": "fail_open"}, "rate_limits.on_redis_error"),
        ({"overrides": {"coinex/main": {"spot_place": {"limit": 0}}}},
         "rate_limits.overrides.coinex/main.spot_place.limit"),
        ({"overrides": {"coinex/main": {"spot_place": {"burst": 3}}}},
         "rate_limits.overrides.coinex/main.spot_place.burst"),
        ({"max_wait_ms": -1}, "rate_limits.max_wait_ms"),
        ({"client_max_wait_ms": {"bot": 120_000}}, "rate_limits.client_max_wait_ms.bot"),
        ({"shared_sessions": True}, "rate_limits"),
        ({"bakend": "redis"}, "rate_limits.bakend"),
    ],
)  # fmt: skip
def test_bad_settings_name_the_field(tmp_path: Path, rate_limits: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as error:
        _settings(tmp_path, rate_limits)
    assert error.value.field == field


def test_bad_profile_names_file_and_field(tmp_path: Path) -> None:
    profile = yaml.safe_load((SHIPPED_PROFILES / "coinex.yaml").read_text())
    profile["groups"]["spot_place"]["windw_s"] = 1
    path = tmp_path / "coinex.yaml"
    path.write_text(yaml.safe_dump(profile))
    with pytest.raises(ConfigError) as error:
        load_profile(path)
    assert (error.value.file, error.value.field) == (str(path), "groups.spot_place.windw_s")

"""Issue 19 item 7: names derived from config never collide.

A Transit key name is derived as ``signing-proxy-<venue>-<account>``: ``coinex/eu-main`` and
``coinex-eu/main`` would sign with one key. Venue and account names that routing can never
reach (``/``, ``.``) would make KV paths collide. Two deployments sharing one Redis must
not share buckets unless they sign with the same keys.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from proxy.cli import main
from proxy.config_errors import ConfigError
from proxy.settings import build_settings


def _settings(venues: dict, **extra):
    raw = {"vault": {"url": "http://127.0.0.1:8200"}, "venues": venues, **extra}
    return build_settings(raw, Path("/etc/sp/proxy.yaml"), environ={})


def _venue(*accounts, scheme: str = "coinex", upstream: str = "https://api.coinex.com") -> dict:
    return {"scheme": scheme, "upstream": upstream, "accounts": list(accounts)}


def test_derived_transit_keys_collide_across_venues() -> None:
    venues = {
        "coinex": _venue({"name": "eu-main", "signing": "transit"}),
        "coinex-eu": _venue({"name": "main", "signing": "transit"}),
    }
    with pytest.raises(ConfigError) as info:
        _settings(venues)
    message = str(info.value)
    assert "signing-proxy-coinex-eu-main" in message
    assert "coinex/eu-main" in message and "coinex-eu/main" in message


@pytest.mark.parametrize(
    "venues",
    [
        # an explicit key equal to another account's derived one
        {
            "coinex": _venue({"name": "main", "signing": "transit"}),
            "icrypex": _venue(
                {"name": "main", "signing": "transit", "transit_key": "signing-proxy-coinex-main"},
                scheme="icrypex",
                upstream="https://api.icrypex.com",
            ),
        },
        # two explicit keys, one venue
        {
            "coinex": _venue(
                {"name": "a", "signing": "transit", "transit_key": "desk"},
                {"name": "b", "signing": "transit", "transit_key": "desk"},
            )
        },
    ],
)
def test_any_two_accounts_on_one_transit_key_are_refused(venues: dict) -> None:
    with pytest.raises(ConfigError, match="Transit key"):
        _settings(venues)


def test_distinct_transit_keys_pass() -> None:
    venues = {
        "coinex": _venue({"name": "eu-main", "signing": "transit"}),
        "coinex-eu": _venue({"name": "main", "signing": "transit", "transit_key": "coinex-eu-main-b"}),
    }
    assert set(_settings(venues).venues) == {"coinex", "coinex-eu"}


@pytest.mark.parametrize(
    ("venues", "field"),
    [
        ({"coinex/eu": _venue("main")}, "venues.coinex/eu"),
        ({"coinex": _venue("eu/main")}, "venues.coinex.accounts"),
        ({"coinex": _venue("..")}, "venues.coinex.accounts"),
        ({"coin.ex": _venue("main")}, "venues.coin.ex"),
    ],
)
def test_names_routing_cannot_reach_are_refused(venues: dict, field: str) -> None:
    # coinex/eu + main and coinex + eu/main would read one KV path: coinex/eu/main.
    with pytest.raises(ConfigError) as info:
        _settings(venues)
    assert info.value.field.startswith(field)


def test_default_redis_prefix_carries_the_deployment_identity() -> None:
    redis = {"backend": "redis", "url": "redis://127.0.0.1:6379/0"}
    a = _settings({"coinex": _venue("main")}, rate_limits=redis)
    same = _settings({"coinex": _venue("main", "desk2")}, rate_limits=redis)  # same keys' home
    other_vault_path = _settings(
        {"coinex": _venue("main")},
        rate_limits=redis,
        vault={"url": "http://127.0.0.1:8200", "kv_prefix": "desk-b"},
    )
    assert a.rate_limits.key_prefix.startswith("signing-proxy:")
    assert a.rate_limits.key_prefix != "signing-proxy"
    # Deployments that read their keys from the same place sign as the same venue accounts:
    # they share buckets, as the venue does. Any other deployment gets its own.
    assert same.rate_limits.key_prefix == a.rate_limits.key_prefix
    assert other_vault_path.rate_limits.key_prefix != a.rate_limits.key_prefix
    other_vault = _settings(
        {"coinex": _venue("main")}, rate_limits=redis, vault={"url": "https://vault-b:8200"}
    )
    assert other_vault.rate_limits.key_prefix != a.rate_limits.key_prefix
    explicit = _settings({"coinex": _venue("main")}, rate_limits={**redis, "key_prefix": "desk-a"})
    assert explicit.rate_limits.key_prefix == "desk-a"


def test_check_prints_the_redis_prefix(tmp_path: Path, capsys) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "p.yaml").write_text("version: 1\nclients:\n  r: {loopback: true}\n")
    config = {
        "vault": {"url": "http://127.0.0.1:8200"},
        "policies": str(policies),
        "rate_limits": {"backend": "redis", "url": "redis://127.0.0.1:6379/0"},
        "venues": {"coinex": _venue("main")},
    }
    (tmp_path / "proxy.yaml").write_text(yaml.safe_dump(config))
    assert main(["check", "--config", str(tmp_path / "proxy.yaml")]) == 0
    out = capsys.readouterr().out
    assert "redis key prefix signing-proxy:" in out

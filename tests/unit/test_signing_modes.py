"""Per-account signing mode in the config: ``kv`` (default) or ``transit``, validated strictly."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.app import build_venues, create_app
from proxy.cli import main
from proxy.config_errors import ConfigError
from proxy.credentials.memory import MemoryStore
from proxy.settings import load_settings

CONFIG = """
vault: {url: http://127.0.0.1:8200}
policies: ./policies
venues:
  coinex:
    scheme: coinex
    upstream: "https://api.coinex.com"
    accounts: [main, {name: desk, signing: transit}, {name: arb, signing: transit, transit_key: cx-arb}]
  invex: {scheme: invex, upstream: "https://invex.ir", accounts: [{name: main, signing: transit}]}
  evedex:
    {scheme: evedex, upstream: "https://x.evedex.com", auth_upstream: "https://a.evedex.com", accounts: [m]}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "proxy.yaml"
    path.write_text(text)
    (tmp_path / "policies").mkdir(exist_ok=True)
    (tmp_path / "policies" / "p.yaml").write_text(
        "version: 1\nclients:\n  bot: {loopback: true, allow: [{venue: coinex, paths: ['/**']}]}\n"
    )
    return path


def test_accounts_mix_names_and_mappings(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, CONFIG), environ={})
    venues = build_venues(settings)
    coinex = venues["coinex"]
    assert coinex.accounts == frozenset({"main", "desk", "arb"})
    assert dict(coinex.transit_keys) == {"desk": "signing-proxy-coinex-desk", "arb": "cx-arb"}
    assert coinex.required_fields("main") == ("api_key", "secret_key")
    assert coinex.required_fields("desk") == ("api_key",)
    assert venues["invex"].required_fields("main") == ("api_key",)
    assert not venues["evedex"].transit_keys
    assert settings.vault.transit_mount == "transit"


def test_evedex_with_transit_is_refused_with_the_reason(tmp_path: Path) -> None:
    text = CONFIG.replace("accounts: [m]}", "accounts: [{name: m, signing: transit}]}")
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert info.value.file == str(path)
    assert info.value.field == "venues.evedex.accounts"
    assert "secp256k1" in info.value.message and "signing: kv" in info.value.message


def test_check_command_refuses_evedex_transit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = CONFIG.replace("accounts: [m]}", "accounts: [{name: m, signing: transit}]}")
    assert main(["check", "--config", str(_write(tmp_path, text))]) == 2
    err = capsys.readouterr().err
    assert "venues.evedex.accounts" in err and "Transit does not offer" in err


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (
            ("signing: transit}, {name: arb", "signing: hsm}, {name: arb"),
            "venues.coinex.accounts.1.signing",
            "kv",
        ),
        (
            ("{name: desk, signing: transit}", "{name: desk, transit_key: x}"),
            "venues.coinex.accounts.1",
            "only",
        ),
        (
            ("{name: desk, signing: transit}", "{name: desk, signin: transit}"),
            "venues.coinex.accounts.1.signin",
            "",
        ),
        (("transit_key: cx-arb", "transit_key: cx/arb"), "venues.coinex.accounts.2.transit_key", "pattern"),
        (
            ("{name: desk, signing: transit}", "{name: main, signing: transit}"),
            "venues.coinex.accounts",
            "twice",
        ),
    ],
)
def test_bad_account_entries_name_the_field(
    tmp_path: Path, change: tuple[str, str], field: str, words: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(_write(tmp_path, CONFIG.replace(*change)), environ={})
    assert info.value.field == field
    assert words in info.value.message or (words == "twice" and "more than once" in info.value.message)


def test_a_default_key_name_that_cannot_be_a_path_segment_needs_transit_key(tmp_path: Path) -> None:
    # An account name that is not one path segment is refused first (issue 19: routing could
    # never reach it); a name at the length limit still derives a key over 128 characters.
    text = CONFIG.replace("{name: desk, signing: transit}", "{name: 'desk 2', signing: transit}")
    with pytest.raises(ConfigError) as info:
        load_settings(_write(tmp_path, text), environ={})
    assert info.value.field == "venues.coinex.accounts.1.name"
    long_venue = "c" * 64
    text = CONFIG.replace("{name: desk, signing: transit}", "{name: " + "d" * 64 + ", signing: transit}")
    text = text.replace("  coinex:", f"  {long_venue}:")
    with pytest.raises(ConfigError) as info:
        load_settings(_write(tmp_path, text), environ={})
    assert info.value.field == f"venues.{long_venue}.accounts.1.transit_key"


def test_transit_accounts_need_vault(tmp_path: Path) -> None:
    settings = load_settings(
        _write(tmp_path, CONFIG.replace("vault: {url: http://127.0.0.1:8200}", "")), environ={}
    )
    with pytest.raises(ConfigError) as info:
        create_app(settings, store=MemoryStore())
    assert info.value.field == "venues.coinex.accounts"

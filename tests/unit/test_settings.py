from __future__ import annotations

from pathlib import Path

import pytest

from proxy.cli import main
from proxy.config_errors import ConfigError
from proxy.settings import load_settings

GOOD = """
vault: {url: http://127.0.0.1:8200}
policies: ./policies
venues:
  coinex: {scheme: coinex, upstream: "https://api.coinex.com", accounts: [main], window_ms: 3000}
  icrypex: {scheme: icrypex, upstream: "https://api.icrypex.com/", accounts: [main]}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "proxy.yaml"
    path.write_text(text)
    return path


def test_loads_and_resolves_policies_relative_to_file(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, GOOD), environ={})
    assert settings.policies == tmp_path / "policies"
    assert settings.venues["icrypex"].upstream == "https://api.icrypex.com"
    assert settings.venues["coinex"].options == {"window_ms": 3000}
    assert settings.upstream.max_body_bytes == 1_048_576


def test_env_overrides(tmp_path: Path) -> None:
    env = {"SIGNING_PROXY_LISTEN__PORT": "9090", "SIGNING_PROXY_UPSTREAM__TIMEOUT_S": "2.5"}
    settings = load_settings(_write(tmp_path, GOOD), environ=env)
    assert settings.listen.port == 9090
    assert settings.upstream.timeout_s == 2.5


def test_vault_addr_honoured(tmp_path: Path) -> None:
    text = GOOD.replace("vault: {url: http://127.0.0.1:8200}", "")
    settings = load_settings(_write(tmp_path, text), environ={"VAULT_ADDR": "http://vault:8200"})
    assert settings.vault.url == "http://vault:8200"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (("window_ms: 3000", "window_ms: 3000, windw: 1"), "venues.coinex.windw"),
        (("window_ms: 3000", "window_ms: 999999"), "venues.coinex.window_ms"),
        (("scheme: icrypex", "scheme: binance"), "venues.icrypex.scheme"),
        (('"https://api.coinex.com"', '"https://api.coinex.com/v2"'), "venues.coinex.upstream"),
        (("accounts: [main], window_ms", "accounts: [], window_ms"), "venues.coinex.accounts"),
        (("policies: ./policies", "policies: ./policies\nlisten: {port: 99999}"), "listen.port"),
        (("policies: ./policies", "policies: ./policies\nbogus: 1"), "bogus"),
    ],
)
def test_bad_config_names_file_and_field(tmp_path: Path, change: tuple[str, str], field: str) -> None:
    path = _write(tmp_path, GOOD.replace(*change))
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert info.value.file == str(path)
    assert info.value.field == field


def test_check_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, GOOD)
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "p.yaml").write_text(
        "version: 1\nclients:\n  bot: {loopback: true, allow: [{venue: coinex, paths: ['/**']}]}\n"
    )
    assert main(["check", "--config", str(path)]) == 0
    assert "1 clients" in capsys.readouterr().out
    (tmp_path / "policies" / "p.yaml").write_text("version: 1\nclients:\n  bot: {loopback: yes, allw: []}\n")
    assert main(["check", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "p.yaml: clients.bot.allw" in err


def test_shipped_example_config_and_policies_pass_check(capsys: pytest.CaptureFixture[str]) -> None:
    # The config is valid; the example policy's published tokens are what check refuses
    # (issue 19: an example copied as is must not serve). test_policy_cases checks an
    # operator's copy with its own tokens passes.
    example = Path(__file__).resolve().parents[2] / "proxy.example.yaml"
    assert len(load_settings(example).venues) == 5
    assert main(["check", "--config", str(example)]) == 2
    err = capsys.readouterr().err
    assert "example.yaml: clients.market-maker.token_sha256: uses a published example token" in err


def test_edge_limits_defaults_and_env(tmp_path: Path) -> None:
    """Issue 14: read deadlines, the client connection cap and the venue answer cap."""
    settings = load_settings(_write(tmp_path, GOOD), environ={})
    assert (settings.listen.header_timeout_s, settings.listen.body_timeout_s) == (10, 30)
    assert settings.listen.max_connections == 1024
    assert settings.upstream.max_response_bytes == 16 * 1024 * 1024
    env = {
        "SIGNING_PROXY_LISTEN__HEADER_TIMEOUT_S": "2",
        "SIGNING_PROXY_UPSTREAM__MAX_RESPONSE_BYTES": "65536",
    }
    settings = load_settings(_write(tmp_path, GOOD), environ=env)
    assert settings.listen.header_timeout_s == 2 and settings.upstream.max_response_bytes == 65536


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ("listen: {header_timeout_s: 0}", "listen.header_timeout_s"),
        ("listen: {body_timeout_s: -1}", "listen.body_timeout_s"),
        ("listen: {max_connections: 0}", "listen.max_connections"),
        ("upstream: {max_response_bytes: 10}", "upstream.max_response_bytes"),
    ],
)
def test_edge_limits_refuse_nonsense(tmp_path: Path, extra: str, field: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(_write(tmp_path, GOOD + extra + "\n"), environ={})
    assert field in str(refused.value)

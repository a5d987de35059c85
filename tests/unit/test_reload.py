from __future__ import annotations

import logging
from pathlib import Path

import pytest

from proxy.app import create_app
from proxy.credentials.memory import MemoryStore
from proxy.reload import Reloader
from proxy.settings import load_settings

CONFIG = """
vault: {url: "http://127.0.0.1:1"}
policies: ./policies
venues:
  coinex: {scheme: coinex, upstream: "http://127.0.0.1:9", accounts: [main]}
  icrypex: {scheme: icrypex, upstream: "http://127.0.0.1:9", accounts: [main]}
"""
POLICY = """
version: 1
clients:
  bot: {loopback: true, allow: [{venue: coinex, paths: ["/v2/**"]}]}
"""


@pytest.fixture
def setup(tmp_path: Path):
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "p.yaml").write_text(POLICY)
    (tmp_path / "proxy.yaml").write_text(CONFIG)
    settings = load_settings(tmp_path / "proxy.yaml", environ={})
    app = create_app(settings, store=MemoryStore())
    return tmp_path, app.pipeline, Reloader(app.pipeline, settings)


def test_valid_change_swaps_policies_and_keeps_unchanged_signers(setup) -> None:
    tmp_path, pipeline, reloader = setup
    coinex_signer = pipeline.venues["coinex"].signer
    (tmp_path / "policies" / "p.yaml").write_text(POLICY.replace("/v2/**", "/v2/spot/**"))
    (tmp_path / "proxy.yaml").write_text(
        CONFIG.replace("icrypex, upstream", "icrypex, tolerance_ms: 5000, upstream")
    )
    assert reloader.changed()
    assert reloader.reload() is True
    rule = pipeline.policies.clients["bot"].allow[0]
    assert rule.paths[0].match("/v2/spot/order") and not rule.paths[0].match("/v2/assets/x")
    assert pipeline.venues["coinex"].signer is coinex_signer  # unchanged venue: same signer, sessions kept
    assert pipeline.venues["icrypex"].signer.options.tolerance_ms == 5000
    assert not reloader.changed()


@pytest.mark.parametrize(
    ("file", "text", "field"),
    [
        ("policies/p.yaml", POLICY.replace("loopback: true", "loopback: true, alow: []"), "clients.bot.alow"),
        (
            "proxy.yaml",
            CONFIG.replace("accounts: [main]}\n  icrypex", "accounts: [main], windw: 1}\n  icrypex"),
            "venues.coinex.windw",
        ),
    ],
)
def test_invalid_change_is_refused_and_old_config_stays(
    setup, caplog, file: str, text: str, field: str
) -> None:
    tmp_path, pipeline, reloader = setup
    before = pipeline.policies, pipeline.venues
    (tmp_path / file).write_text(text)
    with caplog.at_level(logging.ERROR, logger="signing_proxy.reload"):
        assert reloader.reload() is False
    assert (pipeline.policies, pipeline.venues) == before
    record = next(r for r in caplog.records if r.name == "signing_proxy.reload")
    assert record.file.endswith(file.split("/")[-1]) and record.field == field

"""A reload builds venues and signers through the same builder as startup (``create_app``).

An EVEDEX venue changed by a reload gets a new signer; it must be wired as the startup one
was: the replicas' shared Redis sessions (the same store, the same Redis client) and the
session lock-wait and session event metrics.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.app import create_app
from proxy.credentials.memory import MemoryStore
from proxy.credentials.sessions_redis import RedisSessions
from proxy.reload import Reloader
from proxy.settings import load_settings
from proxy.signers.evedex.signer import LocalSessions

# Nothing listens on the Redis URL: the client connects lazily, and this test sends nothing.
CONFIG = """
vault: {url: "http://127.0.0.1:1"}
policies: ./policies
rate_limits: {backend: redis, url: "redis://127.0.0.1:1/0"}
venues:
  evedex: {scheme: evedex, upstream: "http://127.0.0.1:9", auth_upstream: "http://127.0.0.1:9",
           accounts: [main]}
  coinex: {scheme: coinex, upstream: "http://127.0.0.1:9", accounts: [main]}
"""
POLICY = """
version: 1
clients:
  bot: {loopback: true, allow: [{venue: evedex, paths: ["/api/**"]}]}
"""


@pytest.fixture
def started(tmp_path: Path):
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "p.yaml").write_text(POLICY)
    (tmp_path / "proxy.yaml").write_text(CONFIG)
    settings = load_settings(tmp_path / "proxy.yaml", environ={})
    app = create_app(settings, store=MemoryStore())
    return tmp_path, app


def _reload_with_changed_evedex(tmp_path: Path, reloader: Reloader) -> None:
    text = CONFIG.replace("evedex: {scheme: evedex,", "evedex: {scheme: evedex, chain_id: 16182,")
    (tmp_path / "proxy.yaml").write_text(text)
    assert reloader.reload() is True


def test_reloaded_evedex_signer_keeps_the_shared_sessions(started) -> None:
    tmp_path, app = started
    before = app.pipeline.venues["evedex"].signer
    assert isinstance(before.sessions, RedisSessions)  # startup shares them
    _reload_with_changed_evedex(tmp_path, Reloader(app.pipeline, load_settings(tmp_path / "proxy.yaml")))
    after = app.pipeline.venues["evedex"].signer
    assert after is not before and after.options.chain_id == 16182
    assert not isinstance(after.sessions, LocalSessions)
    assert after.sessions is before.sessions  # one store, one Redis client for the process


def test_reloaded_evedex_signer_reports_lock_waits_and_session_events(started) -> None:
    tmp_path, app = started
    _reload_with_changed_evedex(tmp_path, Reloader(app.pipeline, load_settings(tmp_path / "proxy.yaml")))
    signer = app.pipeline.venues["evedex"].signer
    signer.lock_waits("evedex", "local", "gave_up", 2.5)
    signer.events("evedex", "login", "failed")
    text = app.metrics.render().decode()
    assert (
        'signing_proxy_session_lock_wait_seconds_count{lock="local",outcome="gave_up",venue="evedex"} 1.0'
        in text
    )
    assert 'signing_proxy_venue_sessions_total{event="login",result="failed",venue="evedex"} 1.0' in text

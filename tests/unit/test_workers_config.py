"""Which configurations ``serve --workers N`` accepts (issue 17, item 2)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from proxy.config_errors import ConfigError
from proxy.settings import build_settings
from proxy.workers import check_shared_state, resolve_workers

VENUES = {"coinex": {"scheme": "coinex", "upstream": "https://api.coinex.com", "accounts": ["main"]}}
REDIS = {"backend": "redis", "url": "redis://127.0.0.1:6379/0"}


def _settings(rate_limits: dict, workers: object = 1):
    raw = {"venues": VENUES, "rate_limits": rate_limits, "listen": {"workers": workers}}
    return build_settings(raw, Path("proxy.yaml"), environ={})


def test_one_worker_keeps_the_memory_backend() -> None:
    check_shared_state(_settings({"backend": "memory"}), 1)


def test_memory_backend_is_refused_with_two_workers_naming_the_field() -> None:
    with pytest.raises(ConfigError) as caught:
        check_shared_state(_settings({"backend": "memory"}), 2)
    assert caught.value.field == "rate_limits.backend"
    assert "multiplied by 2" in caught.value.message


def test_per_worker_evedex_sessions_are_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        check_shared_state(_settings({**REDIS, "shared_sessions": False}), 3)
    assert caught.value.field == "rate_limits.shared_sessions"


def test_redis_backend_is_accepted_with_many_workers() -> None:
    check_shared_state(_settings(REDIS), 8)


def test_auto_is_the_usable_core_count() -> None:
    assert resolve_workers("auto") == len(os.sched_getaffinity(0))
    assert resolve_workers(3) == 3


@pytest.mark.parametrize("bad", [0, -1, 257, "all", 1.5])
def test_bad_worker_counts_are_refused(bad: object) -> None:
    with pytest.raises(ConfigError) as caught:
        _settings({"backend": "memory"}, bad)
    assert caught.value.field.startswith("listen.workers")


def test_check_refuses_what_serve_would_refuse(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    from proxy.cli import main

    (tmp_path / "policies").mkdir()
    config = {"venues": VENUES, "policies": "policies", "listen": {"workers": 2}}
    (tmp_path / "proxy.yaml").write_text(yaml.safe_dump(config))
    assert main(["check", "--config", str(tmp_path / "proxy.yaml")]) == 2
    err = capsys.readouterr().err
    assert "rate_limits.backend" in err
    assert "2 workers need backend: redis" in err

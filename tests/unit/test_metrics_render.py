"""``/metrics`` keeps its exact text: names, help, labels, buckets, ``_created``, the cap.

The expected exposition, ``tests/fixtures/metrics/exposition.txt``, is literal (``_created``
timestamps aside: they are checked to lie within the test's run), so a change in how
``Metrics`` records cannot change what Prometheus, the chart's alerts or the dashboard read.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import pytest

from proxy.metrics import Metrics

CREATED = re.compile(r"^(\S+_created(?:\{[^}]*\})?) (\S+)$", re.MULTILINE)

EXPECTED = Path(__file__).parents[1] / "fixtures" / "metrics" / "exposition.txt"


def _record(metrics: Metrics) -> None:
    """Every recording method once or more, a cap of 2 reached by a counter and a histogram."""
    metrics.request("coinex", "main", "forwarded")
    metrics.request("coinex", "main", "forwarded")
    metrics.request(None, None, "unauthorized")
    metrics.request("stranger", "nobody", "unknown_route")  # over the cap: _overflow
    metrics.request("stranger2", "nobody", "unknown_route")  # the same _overflow series
    metrics.added("coinex", 0.0001)  # on a bucket's bound: counted in that bucket
    metrics.added(None, -0.5)  # clock noise: counted as 0
    metrics.added("coinex", 2.0)  # above the last bound: +Inf only
    metrics.added("elsewhere", 0.003)  # over the cap: _overflow
    metrics.upstream("coinex", 200, 0.004)
    metrics.upstream("coinex", 503, 0.3)
    metrics.rate_waited("coinex", 0.02)
    metrics.signed("coinex", 0.00003)
    metrics.decision(True, None)
    metrics.decision(False, "no-withdraw")
    metrics.reported("report-rule")
    metrics.limited("coinex/main")
    metrics.session("evedex", "login", "ok")
    metrics.vault_lookup("hit")
    metrics.vault_denied("coinex", "main", "kv")
    metrics.session_lock_wait("evedex", "local", "acquired", 0.002)
    metrics.connection_refused("header_timeout")
    metrics.health(True, {"vault": "ok", "redis": "down"}, {"coinex/main": "ok"})


def test_the_exposition_is_unchanged_line_for_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="signing_proxy.metrics")
    before = time.time()
    metrics = Metrics(max_series=2)
    _record(metrics)
    after = time.time()
    text = metrics.render().decode()
    stamps = [float(value) for _, value in CREATED.findall(text)]
    assert len(stamps) == 23
    assert all(before <= stamp <= after for stamp in stamps)
    assert CREATED.sub(r"\1 T", text).splitlines() == EXPECTED.read_text().splitlines()
    capped = [r for r in caplog.records if r.getMessage() == "metric series cap reached"]
    assert [getattr(r, "metric", None) for r in capped] == [
        "signing_proxy_requests",
        "signing_proxy_added_latency_seconds",
    ]

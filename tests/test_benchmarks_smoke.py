"""The benchmark must not rot: one quick run end to end, and the report's arithmetic.

No timing is asserted anywhere (DESIGN.md: every claim of speed is a benchmark, not a
timed test). The smoke run uses the Python venue stand-in and load generator, so it needs
neither nginx nor wrk; it checks that the run produced a JSON result with positive req/s
and no failed requests for each configuration it ran, and that every micro-benchmark ran
(a product API that moved shows up here as an ``error:`` note).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import report

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.integration  # starts real servers on loopback


def test_quick_run_produces_a_json_result(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "benchmarks.run",
        "--quick",
        "--upstream",
        "python",
        "--loadgen",
        "python",
        "--out",
        str(tmp_path),
        "--no-chart",
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (path,) = tmp_path.glob("*.json")
    result = json.loads(path.read_text())
    assert set(result["summary"]) == {"direct", "coinex"}
    for name, row in result["summary"].items():
        assert row["rps"] > 0, name
        assert row["errors"] == 0, (name, result["runs"])
    broken = [m for m in result["micro"] if m["note"].startswith("error")]
    assert not broken
    assert any(m["name"] == "sign coinex" and m["us"] > 0 for m in result["micro"])
    assert result["sign_us"]["coinex"] > 0  # the signing floor was measured
    assert result["summary"]["coinex"]["sign_us"] == round(result["sign_us"]["coinex"], 2)
    assert "coinex" in done.stdout  # the table was printed


def _run(
    repeat: int, config: str, rps: float, p50: float, p99: float, cpu_us: float | None = None
) -> report.Run:
    result: dict[str, float] = {"rps": rps, "p50_ms": p50, "p99_ms": p99, "errors": 0}
    if cpu_us is not None:
        result["cpu_us_per_req"] = cpu_us
    return {"repeat": repeat, "config": config, "closed": result, "fixed_rate": result}


def test_ratios_and_added_latency_are_paired_per_repeat_then_medians() -> None:
    runs = [
        _run(0, "direct", 1000, 0.1, 0.2),
        _run(0, "passthrough", 100, 0.5, 1.0),
        _run(0, "coinex", 90, 0.6, 1.2),
        _run(1, "direct", 2000, 0.2, 0.4),
        _run(1, "passthrough", 200, 0.6, 1.0),
        _run(1, "coinex", 100, 0.9, 1.4),
        _run(2, "direct", 1000, 0.1, 0.2),
        _run(2, "passthrough", 100, 0.5, 1.0),
        _run(2, "coinex", 95, 0.7, 1.1),
    ]
    summary = report.summarise(runs, ["direct", "passthrough", "coinex"])
    coinex = summary["coinex"]
    assert coinex["rps"] == 95
    assert coinex["vs_passthrough"] == 0.9  # medians of 0.9, 0.5, 0.95
    assert coinex["vs_direct"] == 0.09
    assert coinex["added_p50_ms"] == 0.6  # medians of 0.5, 0.7, 0.6
    assert coinex["vs_nginx"] is None  # not measured: no ratio, no verdict
    verdicts = {v["metric"]: v["verdict"] for v in report.judge(summary)}
    assert verdicts["vs_passthrough"] == "PASS"
    assert verdicts["vs_nginx"] == "n/a"
    assert verdicts["added_p50_ms"] == "PASS"


def test_profile_summary_attributes_each_sample_to_the_innermost_known_component(tmp_path: Path) -> None:
    from benchmarks import profile

    raw = tmp_path / "p.raw"
    raw.write_text(
        "run (asyncio/runners.py:1);ProxyApp._http (proxy/edge.py:9);_log_request (proxy/edge.py:244);"
        "JSONEncoder.encode (json/encoder.py:1) 3\n"
        "Pipeline.handle (proxy/pipeline.py:1);CoinExSigner.sign (proxy/signers/coinex.py:1);"
        "new (hmac.py:1) 2\n"
        "Runner.run (asyncio/runners.py:118) 5\n"
        "mystery (elsewhere.py:1) 1\n"
    )
    counts, total = profile.summarise(raw)
    assert total == 11
    assert counts == {"access log": 3, "signing": 2, "event loop, socket I/O": 5, "other": 1}
    text = profile.table(counts, total, 110.0)
    assert "access log" in text and "30" in text  # 3/11 of 110 µs


def test_two_workers_are_judged_against_one_worker_in_the_same_repeat() -> None:
    runs = [
        _run(0, "coinex-1w", 1000, 1, 2),
        _run(0, "coinex-2w", 1800, 1, 2),
        _run(1, "coinex-1w", 2000, 1, 2),
        _run(1, "coinex-2w", 3000, 1, 2),
    ]
    summary = report.summarise(runs, ["coinex-1w", "coinex-2w"])
    assert summary["coinex-2w"]["vs_1w"] == 1.65  # median of 1.8 and 1.5, paired per repeat
    verdicts = {v["metric"]: v["verdict"] for v in report.judge(summary)}
    assert verdicts["vs_1w"] == "MISS"


def test_signing_floor_is_pass_through_cpu_plus_one_sign_over_the_signed_cpu() -> None:
    runs = [
        _run(0, "passthrough", 1e4, 1, 2, cpu_us=100),
        _run(0, "invex", 2000, 1, 2, cpu_us=500),  # (100 + 300) / 500 = 0.8
        _run(1, "passthrough", 1e6 / 120, 1, 2, cpu_us=120),
        _run(1, "invex", 1e6 / 480, 1, 2, cpu_us=480),  # (120 + 300) / 480 = 0.875
        _run(0, "coinex", 1e6 / 150, 1, 2, cpu_us=150),  # no sign cost given for coinex: no floor
    ]
    summary = report.summarise(runs, ["passthrough", "invex", "coinex"], {"invex": 300.0})
    assert summary["invex"]["cpu_vs_floor"] == 0.838  # median of 0.8 and 0.875
    assert summary["invex"]["sign_us"] == 300.0
    assert "cpu_vs_floor" not in summary["coinex"]
    verdicts = {(v["config"], v["metric"]): v["verdict"] for v in report.judge(summary)}
    assert verdicts[("invex", "cpu_vs_floor")] == "MISS"
    assert verdicts[("evedex", "cpu_vs_floor")] == "n/a"


def test_a_child_placed_on_no_core_gets_every_core_back_not_the_orchestrators_one() -> None:
    # ``serve --workers 2`` (coinex-2w) is started on no core; the orchestrator has pinned
    # itself to the load core by then, and a child inheriting that ran both workers on it.
    script = (
        "import os, sys\n"
        "from benchmarks import procs\n"
        "procs.pin_self(procs.MACHINE_CORES[-1])\n"
        "child = [sys.executable, '-c', 'import os; print(\"CORES\", sorted(os.sched_getaffinity(0)))']\n"
        "print(procs.run_json_line(child, None, 'CORES', timeout_s=30))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout.strip()) == sorted(os.sched_getaffinity(0))

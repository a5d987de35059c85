"""From raw measurements to what people read: medians, ratios, targets, table, JSON, PNG.

Ratios and added latencies are *paired*: computed within each repetition (the two
configurations measured minutes apart on the same machine state), then the median over
repetitions is taken. Absolute numbers drift between runs on shared machines; ratios from
one run are what the targets are judged on (PERFORMANCE.md).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"  # where runs and profiles go (git-ignored)

Run = dict[str, Any]  # {"repeat", "config", "closed": loadgen result, "fixed_rate": loadgen result}
Summary = dict[str, dict[str, Any]]

RATIO_BASES = {
    "vs_direct": "direct",
    "vs_passthrough": "passthrough",
    "vs_nginx": "nginx",
    "vs_fastapi": "fastapi-httpx",
    "vs_1w": "coinex-1w",  # coinex-2w against one worker (both on the Redis limiter)
}


@dataclass(frozen=True, slots=True)
class Target:
    """One line of the issue's targets, judged on the summary of one configuration."""

    label: str
    config: str
    metric: str
    op: str  # ">=" or "<="
    bound: float

    def judge(self, summary: Summary) -> dict[str, Any]:
        row = summary.get(self.config, {})
        value = row.get(self.metric)
        verdict = "n/a" if value is None else "PASS" if self._holds(value) else "MISS"
        return {
            "target": self.label,
            "config": self.config,
            "metric": self.metric,
            "bound": f"{self.op} {self.bound:g}",
            "value": value,
            "verdict": verdict,
            "by_cpu": row.get(f"cpu_{self.metric}"),
        }

    def _holds(self, value: float) -> bool:
        return value >= self.bound if self.op == ">=" else value <= self.bound


TARGETS = (  # issue 17's, plus the earlier latency, RSA-PSS and FastAPI ones
    Target("HMAC-signed throughput / plain pass-through", "coinex", "vs_passthrough", ">=", 0.85),
    Target("HMAC-signed throughput / nginx proxy_pass", "coinex", "vs_nginx", ">=", 0.09),
    Target("HMAC-signed p99 at 16 connections (ms)", "coinex", "p99_ms", "<=", 5.0),
    Target("2 workers / 1 worker, signed CoinEx on the Redis limiter", "coinex-2w", "vs_1w", ">=", 1.7),
    Target("HMAC proxy-added latency p50 at fixed rate (ms)", "coinex", "added_p50_ms", "<=", 1.0),
    Target("HMAC proxy-added latency p99 at fixed rate (ms)", "coinex", "added_p99_ms", "<=", 5.0),
    Target("HMAC-signed CPU / signing floor (pass-through + sign)", "coinex", "cpu_vs_floor", ">=", 0.85),
    Target("RSA-PSS (Invex) CPU / signing floor (pass-through + sign)", "invex", "cpu_vs_floor", ">=", 0.85),
    Target(
        "EIP-712 (EVEDEX) CPU / signing floor (pass-through + sign)", "evedex", "cpu_vs_floor", ">=", 0.85
    ),
    Target("RSA-PSS (Invex) signed req/s", "invex", "rps", ">=", 600),
    Target("HMAC-signed throughput / FastAPI + httpx pass-through", "coinex", "vs_fastapi", ">=", 5.0),
)


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def _by_repeat(runs: list[Run]) -> dict[int, dict[str, Run]]:
    table: dict[int, dict[str, Run]] = {}
    for run in runs:
        table.setdefault(run["repeat"], {})[run["config"]] = run
    return table


def _paired(
    reps: dict[int, dict[str, Run]], config: str, value: Callable[[Run, Run], float], base: str
) -> list[float]:
    """``value(config's run, base's run)`` for every repeat that has both (and the fields)."""
    values = []
    for rep in reps.values():
        if config in rep and base in rep:
            try:
                values.append(value(rep[config], rep[base]))
            except (KeyError, TypeError, ZeroDivisionError):
                continue  # e.g. no fixed-rate part, no CPU figure on this platform
    return values


def _added(field: str, run: Run, base: Run) -> float:
    return float(run["fixed_rate"][field] - base["fixed_rate"][field])


def _cpu_ratio(run: Run, base: Run) -> float:
    return float(base["closed"]["cpu_us_per_req"] / run["closed"]["cpu_us_per_req"])


def _floor_ratio(sign_us: float, run: Run, base: Run) -> float:
    """The signing floor (the pass-through's CPU per request plus one ``sign``) over the
    signed configuration's CPU per request: 1.0 would be a proxy whose only extra work is
    the signature."""
    return float((base["closed"]["cpu_us_per_req"] + sign_us) / run["closed"]["cpu_us_per_req"])


def summarise(runs: list[Run], configs: list[str], sign_us: dict[str, float] | None = None) -> Summary:
    """Medians per configuration. ``sign_us``: CPU µs of one ``sign`` per venue scheme
    (``micro.sign_costs``); the configuration of that name gets ``cpu_vs_floor``."""
    reps = _by_repeat(runs)
    summary: Summary = {}
    for name in configs:
        mine = [rep[name] for rep in reps.values() if name in rep]
        closed = [run["closed"] for run in mine]
        rate = [run["fixed_rate"] for run in mine if run.get("fixed_rate")]
        row: dict[str, Any] = {
            "rps": _median([c["rps"] for c in closed]),
            "p50_ms": _median([c["p50_ms"] for c in closed]),
            "p99_ms": _median([c["p99_ms"] for c in closed]),
            "cpu_us": _median([c["cpu_us_per_req"] for c in closed if "cpu_us_per_req" in c]),
            "core_share": _median([c["core_share"] for c in closed if "core_share" in c]),
            "rate_p50_ms": _median([r["p50_ms"] for r in rate]),
            "rate_p99_ms": _median([r["p99_ms"] for r in rate]),
            "errors": sum(c["errors"] for c in closed) + sum(r["errors"] for r in rate),
            "repeats": len(mine),
        }
        for key, base in RATIO_BASES.items():
            row[key] = _median(
                _paired(reps, name, lambda a, b: a["closed"]["rps"] / b["closed"]["rps"], base)
            )
            # The same ratio from CPU per request: what req/s would say on a quiet machine.
            row[f"cpu_{key}"] = _median(_paired(reps, name, _cpu_ratio, base))
        if sign_us and name in sign_us:
            row["sign_us"] = round(sign_us[name], 2)
            row["cpu_vs_floor"] = _median(
                _paired(reps, name, partial(_floor_ratio, sign_us[name]), "passthrough")
            )
        for pct in ("p50", "p99"):
            row[f"added_{pct}_ms"] = _median(_paired(reps, name, partial(_added, f"{pct}_ms"), "direct"))
        summary[name] = row
    return summary


def judge(summary: Summary) -> list[dict[str, Any]]:
    return [target.judge(summary) for target in TARGETS]


# --- text -------------------------------------------------------------------------------

_COLUMNS = (  # header, key, width, format
    ("config", "name", 18, "{}"),
    ("req/s", "rps", 8, "{:.0f}"),
    ("p50", "p50_ms", 6, "{:.2f}"),
    ("p99", "p99_ms", 6, "{:.2f}"),
    ("CPU µs", "cpu_us", 7, "{:.0f}"),
    ("share", "core_share", 5, "{:.2f}"),
    ("@rate p50", "rate_p50_ms", 9, "{:.2f}"),
    ("p99", "rate_p99_ms", 6, "{:.2f}"),
    ("+p50", "added_p50_ms", 6, "{:+.2f}"),
    ("+p99", "added_p99_ms", 6, "{:+.2f}"),
    ("/direct", "vs_direct", 7, "{:.3f}"),
    ("/pass", "vs_passthrough", 6, "{:.3f}"),
    ("/nginx", "vs_nginx", 6, "{:.3f}"),
    ("/floor", "cpu_vs_floor", 6, "{:.3f}"),
    ("errors", "errors", 6, "{}"),
)


def _cell(value: Any, fmt: str, width: int) -> str:
    text = "-" if value is None else fmt.format(value)
    return text.ljust(width) if fmt == "{}" and not isinstance(value, int) else text.rjust(width)


def table(summary: Summary, meta: dict[str, Any]) -> str:
    """The results table: latencies in ms, ratios are req/s over the base's req/s."""
    header = "  ".join(h.rjust(w) if i else h.ljust(w) for i, (h, _k, w, _f) in enumerate(_COLUMNS))
    lines = [header, "-" * len(header)]
    for name, row in summary.items():
        cells = [
            _cell(name if key == "name" else row.get(key), fmt, width) for _h, key, width, fmt in _COLUMNS
        ]
        lines.append("  ".join(cells))
    lines.append(
        f"req/s, p50, p99: {meta['connections']} connections ({meta['closed_tool']}); @rate: "
        f"{meta['rate']:g} req/s open loop (python); +p50/+p99: added over direct at that rate; "
        f"CPU µs: the server's CPU per request, share: of its core it got (< 0.95: contended); "
        f"/floor: (passthrough CPU µs + one sign) / CPU µs; "
        f"medians of {meta['repeats']} interleaved repeats; latencies in ms"
    )
    return "\n".join(lines)


def targets_text(verdicts: list[dict[str, Any]]) -> str:
    lines = ["targets:"]
    for v in verdicts:
        value = "-" if v["value"] is None else f"{v['value']:g}"
        by_cpu = f"; from CPU µs/request: {v['by_cpu']:g}" if v.get("by_cpu") is not None else ""
        lines.append(f"  [{v['verdict']:4}] {v['target']}: {value} (want {v['bound']}{by_cpu})")
    return "\n".join(lines)


def transport_text(summary: Summary, transports: dict[str, str]) -> str:
    rows = [(name, transports[name], summary[name]) for name in transports if name in summary]
    if len(rows) < 2:
        return ""
    lines = ["transport (pass-through, same edge):"]
    for name, transport, row in rows:
        lines.append(
            f"  {transport:26} {row['rps'] or 0:8.0f} req/s  p99 {row['p99_ms'] or 0:6.2f} ms  "
            f"@rate p50 {row['rate_p50_ms'] or 0:.2f} p99 {row['rate_p99_ms'] or 0:.2f} ms  ({name})"
        )
    return "\n".join(lines)


# --- files ------------------------------------------------------------------------------


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")


def write_chart(path: Path, summary: Summary, title: str) -> str:
    """Throughput, the server's CPU per request and fixed-rate latency per configuration.
    Returns a note for the console."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "chart skipped: matplotlib is not installed (pip install matplotlib)"
    names = [n for n, row in summary.items() if row["rps"]]
    y = list(range(len(names)))[::-1]
    fig, axes = plt.subplots(1, 3, figsize=(16, 0.5 * len(names) + 2.2), sharey=True)
    _bars(
        axes[0],
        y,
        [summary[n]["rps"] for n in names],
        "req/s at fixed concurrency (log)",
        "#4C72B0",
        "{:,.0f}",
    )
    axes[0].set_xscale("log")
    cpu = [summary[n].get("cpu_us") or 0 for n in names]
    _bars(axes[1], y, cpu, "server CPU µs per request (log; lower is better)", "#8172B2", "{:,.0f}")
    if any(cpu):
        axes[1].set_xscale("log")
    p50 = [summary[n]["rate_p50_ms"] or 0 for n in names]
    p99 = [summary[n]["rate_p99_ms"] or 0 for n in names]
    axes[2].barh([v + 0.2 for v in y], p50, height=0.4, label="p50", color="#55A868")
    axes[2].barh([v - 0.2 for v in y], p99, height=0.4, label="p99", color="#C44E52")
    axes[2].set_xlabel("latency at fixed rate (ms)")
    axes[2].legend(loc="best")
    axes[0].set_yticks(y, names)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"chart: {path}"


def _bars(axis: Any, y: list[int], values: list[float], label: str, color: str, fmt: str) -> None:
    axis.barh(y, values, color=color)
    axis.set_xlabel(label)
    for row, value in zip(y, values, strict=True):
        if value:
            axis.text(value, row, " " + fmt.format(value), va="center", fontsize=8)

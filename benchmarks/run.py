"""The benchmark entry point: ``python -m benchmarks.run`` (``--help`` for the knobs).

One run starts the venue stand-in, every server under test and (per measurement) a load
generator, then measures each configuration, interleaved and repeated: per repetition every
configuration gets a short warm-up, ``--duration`` seconds at ``--connections`` (wrk, or the
Python generator without wrk) and ``--rate-duration`` seconds at ``--rate`` req/s (Python
open loop). The configuration order rotates between repetitions. Afterwards the
micro-benchmarks run on the then quiet machine. Output: the table on stdout,
``<out>/<timestamp>.json`` and ``<out>/<timestamp>.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks import configs, loadgen, micro, nginx, procs, report, wrk
from benchmarks.configs import Config, RequestSpec
from benchmarks.procs import Cores
from benchmarks.servers import Servers


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", help=f"comma-separated subset of: {', '.join(configs.BY_NAME)}")
    p.add_argument("--duration", type=float, default=4.0, help="seconds at fixed concurrency (default 4)")
    p.add_argument("--rate-duration", type=float, default=4.0, help="seconds at fixed rate (default 4)")
    p.add_argument("--rate", type=float, default=300.0, help="fixed rate in req/s (default 300)")
    p.add_argument("--connections", type=int, default=16, help="fixed concurrency (default 16)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved repetitions (default 3)")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds of warm-up per measurement")
    p.add_argument(
        "--loadgen",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="fixed-concurrency generator: wrk when installed (auto), or the Python one",
    )
    p.add_argument(
        "--upstream",
        choices=("auto", "nginx", "python"),
        default="auto",
        help="venue stand-in: nginx when installed (auto), or the raw asyncio server",
    )
    p.add_argument("--micro", choices=("full", "quick", "off"), default="full", help="micro-benchmarks")
    p.add_argument("--out", type=Path, default=report.RESULTS, help="where the JSON and PNG go")
    p.add_argument("--no-chart", action="store_true")
    p.add_argument(
        "--no-gc-freeze",
        action="store_true",
        help="what-if: Python servers skip the gc.freeze() that `signing-proxy serve` does once built",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: direct + coinex, 1 s each, one repeat, quick micro-benchmarks",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.configs = args.configs or ",".join(configs.QUICK)
        args.duration, args.rate_duration, args.repeats, args.warmup = 1.0, 0.5, 1, 0.2
        args.micro = "quick" if args.micro == "full" else args.micro
    return args


class Bench:
    """Measures one configuration at a time against the running servers."""

    def __init__(self, args: argparse.Namespace, servers: Servers, cores: Cores, workdir: Path) -> None:
        self.args = args
        self.servers = servers
        self.cores = cores
        self.workdir = workdir
        self.wrk = wrk.find_wrk() if args.loadgen in ("auto", "wrk") else None
        if args.loadgen == "wrk" and self.wrk is None:
            raise SystemExit("--loadgen wrk: wrk is not installed (apt-get install wrk)")

    @property
    def closed_tool(self) -> str:
        return "wrk -t1" if self.wrk else "python"

    def closed(self, config: Config, duration_s: float) -> dict[str, Any]:
        port = self.servers.ports[config.server]
        if self.wrk:
            return wrk.run(
                self.wrk,
                port,
                config.request,
                self.args.connections,
                duration_s,
                self.cores.load,
                self.workdir,
            )
        return self._python(port, config.request, duration_s)

    def fixed_rate(self, config: Config) -> dict[str, Any]:
        port = self.servers.ports[config.server]
        return self._python(port, config.request, self.args.rate_duration, rate=self.args.rate)

    def _python(
        self, port: int, spec: RequestSpec, duration_s: float, rate: float | None = None
    ) -> dict[str, Any]:
        argv = procs.python(
            "benchmarks.loadgen",
            "--port",
            str(port),
            "--request",
            json.dumps(spec.to_json()),
            "--duration",
            str(duration_s),
            "--connections",
            str(self.args.connections),
            *(("--rate", str(rate)) if rate else ()),
        )
        line = procs.run_json_line(argv, self.cores.load, loadgen.MARKER, timeout_s=duration_s + 60)
        result: dict[str, Any] = json.loads(line)
        return result

    def measure(self, config: Config, repeat: int) -> dict[str, Any]:
        if self.args.warmup > 0:
            self.closed(config, self.args.warmup)
        cpu_before = self.servers.cpu_seconds(config.server)
        closed = self.closed(config, self.args.duration)
        cpu_after = self.servers.cpu_seconds(config.server)
        if cpu_before is not None and cpu_after is not None and closed["requests"]:
            used = cpu_after - cpu_before
            closed["cpu_us_per_req"] = round(used / closed["requests"] * 1e6, 1)
            closed["core_share"] = round(used / closed["duration_s"], 3)  # < ~0.95: someone else ran
        fixed = self.fixed_rate(config) if self.args.rate_duration > 0 else None
        return {"repeat": repeat, "config": config.name, "closed": closed, "fixed_rate": fixed}

    def self_check(self) -> dict[str, Any]:
        """The Python generator's ceiling against the venue stand-in (it must be far above --rate)."""
        direct = configs.BY_NAME["direct"]
        return self._python(self.servers.ports["upstream"], direct.request, min(2.0, self.args.duration))


def choose_upstream(args: argparse.Namespace) -> tuple[str, str | None]:
    found = nginx.find_nginx()
    if args.upstream == "nginx" and found is None:
        raise SystemExit("--upstream nginx: nginx is not installed (apt-get install nginx)")
    return ("nginx" if found and args.upstream != "python" else "python"), found


def versions() -> dict[str, str]:
    names = (
        "uvicorn",
        "uvloop",
        "httptools",
        "aiohttp",
        "httpx",
        "httpx-aiohttp",
        "pyreqwest",
        "fastapi",
        "cryptography",
        "coincurve",
        "eth-account",
    )
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "missing"
    return found


def measure_all(bench: Bench, selected: tuple[Config, ...], repeats: int) -> list[dict[str, Any]]:
    runs = []
    for repeat in range(repeats):
        shift = repeat % len(selected)
        for config in selected[shift:] + selected[:shift]:
            print(f"  repeat {repeat + 1}/{repeats}: {config.name} ...", end="", flush=True, file=sys.stderr)
            run = bench.measure(config, repeat)
            print(f" {run['closed']['rps']:.0f} req/s", file=sys.stderr)
            runs.append(run)
    return runs


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    upstream_kind, nginx_path = choose_upstream(args)
    selected = configs.select(args.configs.split(",") if args.configs else None)
    if nginx_path is None or upstream_kind != "nginx":
        skipped = [c.name for c in selected if c.server == "nginx"]
        selected = tuple(c for c in selected if c.server != "nginx")
        if skipped:
            print("nginx proxy_pass skipped: nginx not used on this run", file=sys.stderr)
    cores = Cores.plan()
    busy = procs.machine_busy()
    if busy > 0.1:
        print(
            f"warning: the machine is already {busy:.0%} busy: req/s will be noisy (CPU µs/request is not)",
            file=sys.stderr,
        )
    procs.pin_self(cores.load)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    with tempfile.TemporaryDirectory(prefix="signing-proxy-bench-") as tmp:
        workdir = Path(tmp)
        servers = Servers(
            workdir, cores, upstream_kind, nginx_path, ("--no-gc-freeze",) if args.no_gc_freeze else ()
        )
        try:
            servers.start({c.server for c in selected})
            bench = Bench(args, servers, cores, workdir)
            print(
                f"servers up ({cores.describe()}); measuring {len(selected)} configurations", file=sys.stderr
            )
            check = bench.self_check()
            runs = measure_all(bench, selected, args.repeats)
        finally:
            servers.stop()
    procs.pin_self(cores.proxy)  # micro-benchmarks on the now quiet core
    micro_results = micro.run_all(quick=args.micro == "quick") if args.micro != "off" else []
    meta = {
        "timestamp": stamp,
        "machine": f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} cores".strip(),
        "python": platform.python_version(),
        "pinning": cores.describe(),
        "machine_busy_before": round(busy, 3),
        "upstream": f"{upstream_kind} (venue stand-in)",
        "closed_tool": bench.closed_tool,
        "connections": args.connections,
        "rate": args.rate,
        "repeats": args.repeats,
        "duration_s": args.duration,
        "rate_duration_s": args.rate_duration,
        "loadgen_self_check": check,
        "versions": versions(),
        "what_if": ["no-gc-freeze"] if args.no_gc_freeze else [],
    }
    sign_us = micro.sign_costs()  # the signing floor of each signed venue (a second or two)
    summary = report.summarise(runs, [c.name for c in selected], sign_us)
    verdicts = report.judge(summary)
    document = {
        "meta": meta,
        "configs": {c.name: c.description for c in selected},
        "summary": summary,
        "targets": verdicts,
        "runs": runs,
        "micro": micro_results,
        "sign_us": sign_us,
    }
    print()
    print(report.table(summary, meta))
    print()
    print(report.targets_text(verdicts))
    transports = {c.name: c.transport for c in selected if "transport" in c.tags}
    if text := report.transport_text(summary, transports):
        print()
        print(text)
    print(f"\npython load generator ceiling (16 connections vs venue stand-in): {check['rps']:.0f} req/s")
    if micro_results:
        print()
        print(micro.table(micro_results))
    json_path = args.out / f"{stamp}.json"
    report.write_json(json_path, document)
    print(f"\nresults: {json_path}")
    if not args.no_chart:
        title = f"signing-proxy benchmark {stamp} ({meta['pinning']}; {meta['upstream']})"
        print(report.write_chart(args.out / f"{stamp}.png", summary, title))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

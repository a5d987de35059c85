"""Where a signed request's CPU goes: ``python -m benchmarks.profile [--config coinex]``.

Starts the venue stand-in and the ``signing`` server (pinned as in ``benchmarks.run``),
drives the configuration's request with wrk at 16 connections, samples the server with
``py-spy record --format raw`` (the ``bench`` extra) and prints the samples by component:
each sample goes to the first frame, from the leaf up, that belongs to a known component
(so ``json`` under the access log counts as the access log, ``hmac`` under a signer as
signing). µs per request = share x the server's measured CPU µs per request.
``--summarise FILE --cpu-us N`` summarises an existing raw file instead.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from benchmarks.report import RESULTS

# (component, substrings of a frame "function (file:line)"), most specific first.
COMPONENTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("access log", ("_log_request", "proxy/logs.py", "logging/")),
    ("metrics", ("proxy/metrics.py", "prometheus_client/")),
    ("audit", ("Audit.",)),
    ("header hygiene", ("proxy/hygiene.py",)),
    ("route parsing", ("proxy/policy/routing.py", "proxy/policy/path_spelling.py")),
    ("rate limits", ("proxy/ratelimit",)),
    ("policy decision", ("proxy/policy", "proxy/order_fields.py", "proxy/request_fields.py")),
    ("identity", ("proxy/identity.py",)),
    ("signing", ("proxy/signers/",)),
    ("credentials", ("proxy/credentials/",)),
    ("upstream client", ("proxy/http1/", "proxy/forward.py", "aiohttp/", "yarl/", "multidict/")),
    ("HTTP server (uvicorn)", ("uvicorn/", "proxy/server.py")),
    ("edge (ProxyApp, errors)", ("proxy/edge.py", "proxy/errors.py")),
    ("pipeline glue", ("proxy/pipeline.py", "dataclasses", "functools")),
    ("event loop, socket I/O", ("asyncio/", "uvloop", "Runner.run", "asyncio_run")),
)


def component(stack: list[str]) -> str:
    for frame in reversed(stack):
        for name, needles in COMPONENTS:
            if any(needle in frame for needle in needles):
                return name
    return "other"


def summarise(raw: Path) -> tuple[Counter[str], int]:
    counts: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack_text, _, count = line.rpartition(" ")
        if stack_text and count.isdigit():
            counts[component(stack_text.split(";"))] += int(count)
    return counts, sum(counts.values())


def table(counts: Counter[str], total: int, cpu_us: float | None) -> str:
    lines = [f"{'component':28} {'share':>6} {'µs/req':>7}", "-" * 43]
    for name, count in counts.most_common():
        share = count / total
        us = f"{share * cpu_us:7.0f}" if cpu_us else "      -"
        lines.append(f"{name:28} {share:6.1%} {us}")
    lines.append(f"{total} samples" + (f"; {cpu_us:.0f} µs CPU per request" if cpu_us else ""))
    return "\n".join(lines)


def record(config_name: str, out: Path, seconds: int) -> float | None:
    """Run the server under load, sample it; the server's CPU µs per request."""
    from benchmarks import configs, nginx, procs, wrk
    from benchmarks.servers import Servers

    found = wrk.find_wrk()
    if found is None:
        raise SystemExit("wrk is required (apt-get install wrk)")
    cores = procs.Cores.plan()
    procs.pin_self(cores.load)
    nginx_path = nginx.find_nginx()
    spec = configs.BY_NAME[config_name].request
    server = configs.BY_NAME[config_name].server
    with tempfile.TemporaryDirectory(prefix="signing-proxy-profile-") as tmp:
        servers = Servers(Path(tmp), cores, "nginx" if nginx_path else "python", nginx_path)
        try:
            servers.start({server})
            pid = servers._by_name[server].pid
            port = servers.ports[server]
            wrk.run(found, port, spec, 16, 2, cores.load, Path(tmp))  # warm pools and caches
            spy_argv = [str(Path(sys.executable).parent / "py-spy"), "record", "-p", str(pid)]
            spy_argv += ["-d", str(seconds), "-r", "500", "--format", "raw", "--nonblocking", "-o", str(out)]
            spy = subprocess.Popen(spy_argv)
            before = servers.cpu_seconds(server)
            result = wrk.run(found, port, spec, 16, seconds + 2, cores.load, Path(tmp))
            after = servers.cpu_seconds(server)
            spy.wait()
        finally:
            servers.stop()
    if before is None or after is None or not result["requests"]:
        return None
    return float((after - before) / result["requests"] * 1e6)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="coinex", help="a signing configuration of benchmarks.configs")
    p.add_argument("--seconds", type=int, default=12)
    p.add_argument("--out", type=Path, default=RESULTS / "profile.raw", help="the raw py-spy samples")
    p.add_argument("--summarise", type=Path, help="summarise this py-spy raw file only")
    p.add_argument("--cpu-us", type=float, help="with --summarise: the server's CPU µs per request")
    args = p.parse_args(argv)
    if args.summarise:
        cpu_us = args.cpu_us
        raw = args.summarise
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        cpu_us = record(args.config, args.out, args.seconds)
        raw = args.out
    counts, total = summarise(raw)
    print(table(counts, total, cpu_us))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Soak: mixed traffic at a fixed rate through a real ``signing-proxy serve`` process;
reports its resident memory and open file descriptors before and after. They must stay
flat: a leak per request (a socket, a session, a cache entry) shows up here.

    python -m benchmarks.soak --duration 180 --rate 150

The stack is ``proxy.dev.stack.LocalStack`` (OpenBao dev server + strict simulated venues);
the proxy under test is a separate process started from the stack's config, so what is
measured is the proxy alone. Traffic: signed GETs and orders on every venue, denials
(withdrawals), unauthenticated requests, refused paths and rate-limited bursts.
Exit code 1 when descriptors grew or memory grew more than ``--max-rss-growth-mb``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx

from proxy.dev.serve_process import ServeProcess
from proxy.dev.stack import LocalStack
from proxy.sim.samples import ORDERS, READS


@dataclass
class Sample:
    rss_kb: int
    fds: int


def sample(pid: int) -> Sample:
    status = Path(f"/proc/{pid}/status").read_text()
    rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    return Sample(rss, len(os.listdir(f"/proc/{pid}/fd")))


def _traffic(base: str, stack: LocalStack) -> itertools.cycle[tuple[str, str, dict[str, str], object]]:
    trader, tiny = stack.headers("trader"), stack.headers("tiny")
    mix: list[tuple[str, str, dict[str, str], object]] = []
    for venue, path in READS.items():
        mix.append(("GET", f"{base}/{venue}/main{path}", trader, None))
    for venue, (path, order) in ORDERS.items():
        if venue != "evedex":  # its order ids must be unique: reads cover it
            mix.append(("POST", f"{base}/{venue}/main{path}", trader, order))
    mix += [
        ("POST", f"{base}/coinex/main/v2/assets/withdraw", trader, {"amount": "1"}),  # 403
        ("GET", f"{base}/coinex/main/v2/assets/spot/balance", {}, None),  # 401
        ("GET", f"{base}/coinex/main/v2//x", trader, None),  # 400
        ("GET", f"{base}/icrypex/main/sapi/v1/wallet", tiny, None),  # 429 mostly
    ]
    return itertools.cycle(mix)


async def drive(base: str, stack: LocalStack, rate: float, duration: float) -> Counter[int]:
    """Open loop: one request every 1/rate seconds, whatever the answers take."""
    statuses: Counter[int] = Counter()
    traffic = _traffic(base, stack)
    async with httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_connections=32)) as http:

        async def one(method: str, url: str, headers: dict[str, str], body: object) -> None:
            try:
                response = await http.request(method, url, headers=headers, json=body)
                statuses[response.status_code] += 1
            except httpx.HTTPError:
                statuses[0] += 1

        tasks = []
        loop = asyncio.get_running_loop()
        start = loop.time()
        for n in itertools.count():
            due = start + n / rate
            if due - start >= duration:
                break
            await asyncio.sleep(max(0.0, due - loop.time()))
            tasks.append(asyncio.create_task(one(*next(traffic))))
        await asyncio.gather(*tasks)
    return statuses


async def soak(duration: float, rate: float, warmup: float) -> dict[str, object]:
    async with (
        LocalStack(extra_config={"rate_limits": {"venue_profiles": False}}) as stack,
        ServeProcess(stack.dir / "proxy.yaml", env={"SIGNING_PROXY_LOG_LEVEL": "WARNING"}) as proxy,
    ):
        assert proxy.process is not None
        await drive(proxy.url, stack, rate, warmup)
        before = sample(proxy.process.pid)
        statuses = await drive(proxy.url, stack, rate, duration)
        await asyncio.sleep(0.5)  # let closed connections be reaped
        after = sample(proxy.process.pid)
    return {
        "duration_s": duration,
        "rate_per_s": rate,
        "requests": sum(statuses.values()),
        "statuses": dict(sorted(statuses.items())),
        "rss_kb_before": before.rss_kb,
        "rss_kb_after": after.rss_kb,
        "rss_growth_kb": after.rss_kb - before.rss_kb,
        "fds_before": before.fds,
        "fds_after": after.fds,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=180, help="seconds of measured traffic")
    parser.add_argument("--rate", type=float, default=150, help="requests per second (open loop)")
    parser.add_argument("--warmup", type=float, default=10, help="seconds of traffic before the first sample")
    parser.add_argument("--max-rss-growth-mb", type=float, default=20)
    args = parser.parse_args(argv)
    result = asyncio.run(soak(args.duration, args.rate, args.warmup))
    print(json.dumps(result, indent=2))
    leaked_fds = result["fds_after"] > result["fds_before"]  # type: ignore[operator,unused-ignore]
    grew = result["rss_growth_kb"] > args.max_rss_growth_mb * 1024  # type: ignore[operator,unused-ignore]
    if leaked_fds or grew:
        print("soak: FAILED (descriptors grew)" if leaked_fds else "soak: FAILED (memory grew)")
        return 1
    print("soak: flat")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

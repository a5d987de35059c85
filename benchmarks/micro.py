"""Micro-benchmarks of the hot-path pieces, in CPU µs per call (median of repeats, timeit-style).

``python -m benchmarks.micro [--quick]`` runs them alone; ``benchmarks.run`` runs them after
the load tests. Every case uses the product's own objects, built the way ``create_app``
builds them, and the same requests as the load test (``benchmarks.configs``):

* each signer's per-request work (``sign``; EVEDEX: the EIP-712 order + credential header);
* what a credential version costs once (Invex key parse, EVEDEX wallet load, SIWE login
  signature), to show why those are cached;
* identity, routing, the policy decision, the limiter, header hygiene;
* a credential cache hit: ``VaultStore`` behind a stub hvac client (the first read fills
  the cache, every timed call is a hit) and ``MemoryStore``;
* ``Pipeline.handle`` and the whole ``ProxyApp`` ASGI call per venue with an upstream that
  answers instantly: the proxy's CPU per request without any socket;
* the Redis limiter: a hook (``redis_limiter``) that runs once ``proxy.ratelimit.limiter`` has one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import tempfile
import time
import timeit
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import uvloop
import yaml

from benchmarks import configs, targets, upstream
from proxy import logs
from proxy.clock import SystemClock
from proxy.credentials import vault
from proxy.credentials.memory import MemoryStore
from proxy.credentials.vault import VaultStore, make_client
from proxy.edge import ProxyApp
from proxy.hygiene import HeaderPolicy, response_headers
from proxy.identity import identify
from proxy.messages import Credentials, Incoming, OutgoingRequest, UpstreamReply
from proxy.pipeline import Audit
from proxy.policy.loader import load_policies
from proxy.policy.routing import parse_route
from proxy.policy.rules import RateSpec, decide
from proxy.ratelimit.limiter import Bucket, Limiter, MemoryLimiter
from proxy.signers import SIGNERS, invex, owned_headers
from proxy.signers.base import SignContext
from proxy.signers.evedex import session as siwe
from proxy.sim.credentials import demo_credentials

Result = dict[str, Any]
HEADERS = (
    ("host", "127.0.0.1:8080"),
    ("content-type", "application/json"),
    ("proxy-authorization", f"Bearer {configs.BENCH_TOKEN}"),
    ("user-agent", "bench-trader/1.0"),
    ("content-length", "142"),
    ("accept", "*/*"),
)
UPSTREAM_HEADERS = (
    ("server", "nginx"),
    ("date", "Thu, 01 Jan 2026 00:00:00 GMT"),
    ("content-type", "application/json"),
    ("content-length", "160"),
    ("connection", "keep-alive"),
)


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    group: str
    fn: Callable[[], object] | None = None
    afn: Callable[[], Awaitable[object]] | None = None
    note: str = ""


# --- timing -------------------------------------------------------------------------------


# CPU time of this thread, not wall time: on a shared machine another process taking the
# core pauses the clock instead of inflating the result.
CLOCK = time.thread_time


def time_sync(fn: Callable[[], object], quick: bool) -> float:
    timer = timeit.Timer(fn, timer=CLOCK)
    if quick:
        return timer.timeit(20) / 20 * 1e6
    number, _ = timer.autorange()
    return statistics.median(t / number for t in timer.repeat(5, number)) * 1e6


async def time_async(afn: Callable[[], Awaitable[object]], quick: bool) -> float:
    async def loop(n: int) -> float:
        started = CLOCK()
        for _ in range(n):
            await afn()
        return CLOCK() - started

    if quick:
        return await loop(20) / 20 * 1e6
    n = 10
    while (elapsed := await loop(n)) < 0.2:
        n *= 2 if elapsed > 0.02 else 10
    return statistics.median([await loop(n) / n for _ in range(5)]) * 1e6


# --- fixtures -----------------------------------------------------------------------------


class InstantUpstream:
    """Answers like the venue stand-in, without a socket."""

    async def send(self, origin: str, request: OutgoingRequest) -> UpstreamReply:
        return UpstreamReply(200, UPSTREAM_HEADERS, upstream.answer_for(request.path))


def vault_cache_hit_store(fields: dict[str, str]) -> VaultStore:
    """A ``VaultStore`` whose cache already holds the secret: every ``get`` is a hit. The
    hvac client is never contacted (its address is a closed port)."""
    store = VaultStore(make_client("http://127.0.0.1:9", "bench", 1), SystemClock())
    store._cache[("coinex", "main")] = vault._Entry(Credentials(fields, 1), SystemClock().monotonic())
    return store


def redis_limiter() -> Limiter | None:
    """The Redis backend against ``$BENCH_REDIS_URL`` (default ``redis://127.0.0.1:6379/15``)
    when a Redis answers there; ``None`` otherwise (the case is then reported as skipped)."""
    url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
    host, _, port = urlsplit(url).netloc.rpartition("@")[2].partition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port or 6379)), timeout=0.2).close()
    except OSError:
        return None
    from proxy.ratelimit.redis import RedisLimiter  # redis is imported only when used

    return RedisLimiter(url, SystemClock(), key_prefix="signing-proxy-bench")


def _request(config: str) -> OutgoingRequest:
    spec = configs.BY_NAME[config].request
    route = parse_route(spec.path.encode(), b"")
    headers = HeaderPolicy(owned_headers()).request_headers(HEADERS)
    return OutgoingRequest(spec.method, route.target, headers, spec.body)


def _asgi_call(app: ProxyApp, config: str) -> Callable[[], Awaitable[object]]:
    spec = configs.BY_NAME[config].request
    raw_headers = [(k.encode(), v.encode()) for k, v in HEADERS]
    scope = {
        "type": "http",
        "method": spec.method,
        "path": spec.path,
        "raw_path": spec.path.encode(),
        "query_string": b"",
        "headers": raw_headers,
        "client": ("127.0.0.1", 50000),
    }
    message = {"type": "http.request", "body": spec.body, "more_body": False}

    async def receive() -> dict[str, Any]:
        return message

    async def send(_message: dict[str, Any]) -> None:
        return None

    return lambda: app(scope, receive, send)


# --- the cases ----------------------------------------------------------------------------


def signer_cases() -> list[Case]:
    now = int(time.time() * 1000)
    cases = []
    bodies = {"coinex": "coinex", "invex": "invex", "evedex": "evedex"}
    for scheme in ("coinex", "icrypex", "haqqex", "invex", "evedex"):
        creds = Credentials(demo_credentials(scheme), 1)
        options = {"mode": "api_key"} if scheme == "evedex" else {}
        signer = SIGNERS[scheme](options)
        request = _request(bodies.get(scheme, "coinex"))
        ctx = SignContext(scheme, "main", now)
        signer.sign(request, creds, ctx)  # warm the per-credential caches
        cases.append(Case(f"sign {scheme}", "signer", partial(signer.sign, request, creds, ctx)))
    invex_key = demo_credentials("invex")["private_key"]
    wallet_key = demo_credentials("evedex")["wallet_private_key"]
    wallet = siwe.load_wallet(wallet_key)
    cases += [
        Case(
            "invex key parse (uncached)",
            "per credential version",
            lambda: invex.load_private_key.__wrapped__(invex_key),
            note="paid once per key version",
        ),
        Case(
            "evedex wallet load (uncached)",
            "per credential version",
            lambda: siwe.load_wallet.__wrapped__(wallet_key),
            note="paid once per key version",
        ),
        Case(
            "evedex SIWE login signature",
            "per credential version",
            lambda: siwe.personal_sign(wallet.account, "bench login message"),
            note="once per session",
        ),
    ]
    return cases


def edge_cases(workdir: Path) -> list[Case]:
    policy_dir = workdir / "policies"
    policy_dir.mkdir(exist_ok=True)
    (policy_dir / "bench.yaml").write_text(yaml.safe_dump(configs.policy()))
    policies = load_policies(policy_dir)
    client = policies.clients["bench"]
    auth = f"Bearer {configs.BENCH_TOKEN}"
    raw_path = configs.BY_NAME["evedex"].request.path.encode()
    header_policy = HeaderPolicy(owned_headers())
    limiter = MemoryLimiter(SystemClock())
    spec = configs.HUGE_RATE
    buckets = [
        Bucket("account coinex/main", RateSpec(**spec)),
        Bucket("client bench", RateSpec(**spec)),
    ]
    return [
        Case("identify (token sha256)", "edge", lambda: identify(policies, auth, "127.0.0.1")),
        Case("parse_route", "edge", lambda: parse_route(raw_path, b"")),
        Case(
            "decide (1st rule)", "policy", lambda: decide(client, "coinex", "main", "POST", "/v2/spot/order")
        ),
        Case(
            "decide (4th rule)",
            "policy",
            lambda: decide(client, "evedex", "main", "POST", "/api/v2/order/limit"),
        ),
        Case("MemoryLimiter.admit_now (2 buckets)", "limiter", lambda: limiter.admit_now(buckets)),
        Case("HeaderPolicy.request_headers", "hygiene", lambda: header_policy.request_headers(HEADERS)),
        Case("response_headers", "hygiene", lambda: response_headers(UPSTREAM_HEADERS)),
    ]


def store_cases() -> list[Case]:
    fields = demo_credentials("coinex")
    store = vault_cache_hit_store(fields)
    memory = MemoryStore({("coinex", "main"): fields})
    cases = [
        Case("VaultStore.get (cache hit)", "credentials", afn=lambda: store.get("coinex", "main")),
        Case("MemoryStore.get", "credentials", afn=lambda: memory.get("coinex", "main")),
    ]
    limiter = redis_limiter()
    spec = RateSpec(**configs.HUGE_RATE)
    buckets = [Bucket("account coinex/main", spec), Bucket("client bench", spec)]
    if limiter is not None:
        cases.append(
            Case(
                "RedisLimiter.admit (2 buckets)",
                "limiter",
                afn=lambda: limiter.admit(buckets),
                note="one Lua script round trip to Redis on loopback",
            )
        )
    else:
        cases.append(
            Case("RedisLimiter.admit (2 buckets)", "limiter", note="skipped: no Redis at $BENCH_REDIS_URL")
        )
    return cases


def pipeline_cases(workdir: Path) -> list[Case]:
    app = targets.signing_app("http://venue.invalid", workdir / "app")
    app.pipeline.forwarder = InstantUpstream()
    cases = []
    for name in ("coinex", "invex", "evedex"):
        spec = configs.BY_NAME[name].request
        request = Incoming(spec.method, spec.path.encode(), b"", HEADERS, "127.0.0.1")

        async def handle(r: Incoming = request, b: bytes = spec.body) -> object:
            async def read() -> bytes:
                return b

            return await app.pipeline.handle(r, read, Audit())

        cases.append(Case(f"Pipeline.handle {name}", "whole request (no sockets)", afn=handle))
        cases.append(
            Case(f"ProxyApp ASGI call {name}", "whole request (no sockets)", afn=_asgi_call(app, name))
        )
    return cases


# --- running ------------------------------------------------------------------------------


async def _run(cases: list[Case], quick: bool) -> list[Result]:
    results = []
    for case in cases:
        us: float | None = None
        note = case.note
        try:
            if case.fn is not None:
                us = time_sync(case.fn, quick)
            elif case.afn is not None:
                await case.afn()  # first call fills caches / logs in
                us = await time_async(case.afn, quick)
        except Exception as exc:  # one broken case (an API that moved) must not sink the run
            note = f"error: {type(exc).__name__}: {exc}"[:200]
        results.append(
            {"name": case.name, "group": case.group, "us": None if us is None else round(us, 2), "note": note}
        )
    return results


def run_all(quick: bool = False) -> list[Result]:
    logs.configure("INFO", stream=open(os.devnull, "w"))  # noqa: SIM115 (the request log, as in production)
    with tempfile.TemporaryDirectory(prefix="signing-proxy-micro-") as tmp:
        workdir = Path(tmp)
        cases = signer_cases() + edge_cases(workdir) + store_cases() + pipeline_cases(workdir)
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(_run(cases, quick))


def sign_costs() -> dict[str, float]:
    """CPU µs of one ``sign`` per signed venue (``configs.SIGNED_SCHEMES``): what the
    signing floor adds to a pass-through (``report.FLOOR_RATIOS``). EVEDEX: ``api_key``
    mode's ``sign`` (the EIP-712 order and the credential header); ``jwt`` mode adds a cached
    bearer token to the same order signature."""
    wanted = {f"sign {scheme}": scheme for scheme in configs.SIGNED_SCHEMES}
    return {
        wanted[case.name]: time_sync(case.fn, quick=False)
        for case in signer_cases()
        if case.name in wanted and case.fn is not None
    }


def table(results: list[Result]) -> str:
    lines = [f"{'micro-benchmark':40} {'CPU µs':>9}  {'calls/s':>10}  group", "-" * 84]
    for r in results:
        us = r["us"]
        timing = f"{us:9.2f}  {1e6 / us:10,.0f}" if us else f"{'-':>9}  {'-':>10}"
        note = f" ({r['note']})" if r["note"] else ""
        lines.append(f"{r['name']:40} {timing}  {r['group']}{note}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description="micro-benchmarks of the hot-path pieces")
    parser.add_argument("--quick", action="store_true", help="a few iterations each (smoke)")
    args = parser.parse_args()
    print(table(run_all(args.quick)))


if __name__ == "__main__":
    main()

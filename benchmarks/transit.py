"""Signing cost of ``signing: transit`` against ``signing: kv``, in one run.

``python -m benchmarks.transit [--quick] [--concurrency N] [--seconds S] [--json PATH]``

Starts an OpenBao dev server (``proxy.dev.devvault``), imports fresh CoinEx (HMAC) and Invex
(RSA-2048) keys into Transit through ``proxy.keys.provisioning.put_transit`` (what ``signing-proxy
keys put --transit`` does), and measures the signing step exactly as the pipeline runs it:

* ``kv``: ``Signer.sign`` with the secret in memory (the KV cache hit path);
* ``transit``: ``sign_steps`` driven by ``VaultTransit`` (aiohttp, one keep-alive pool,
  token shared with the KV store) -- the proxy's Transit hot path;
* ``transit-hvac``: the same Transit call made with hvac in a worker thread (how the KV
  store reads), measured to show why the hot path does not use it.

Latency: one request at a time, wall-clock median and p99 in µs. Throughput: N coroutines
signing back to back for S seconds on one event loop (the proxy's shape), signs/s. The
dev server runs on this machine, so Transit numbers are a floor: a network hop to a real
Vault adds its round trip.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import hvac

from proxy.clock import SystemClock
from proxy.credentials.transit import VaultTransit, parse_output, request_for
from proxy.credentials.vault_auth import TokenKeeper, TokenLogin
from proxy.dev.devvault import DevVault
from proxy.keys.provisioning import Account, KeyVault, put_transit
from proxy.messages import Credentials, OutgoingRequest
from proxy.signers import SIGNERS
from proxy.signers.base import SignContext
from proxy.signers.keyops import KeyOp, KeyOperator, drive
from proxy.signing_modes import default_transit_key
from proxy.sim.credentials import demo_credentials
from proxy.sim.samples import ORDERS

SCHEMES = ("coinex", "invex")
Sign = Callable[[], Awaitable[object]]


def _request(scheme: str) -> OutgoingRequest:
    path, body = ORDERS[scheme]
    return OutgoingRequest("POST", path, (("content-type", "application/json"),), json.dumps(body).encode())


def _hvac_operator(client: hvac.Client, key: str) -> KeyOperator:
    """Transit through hvac (requests) in a worker thread: the alternative the proxy rejected."""

    def call(op: KeyOp) -> bytes:
        endpoint, body = request_for(op, None)
        answer = client.adapter.post(f"/v1/transit/{endpoint}/{key}/sha2-256", json=body)
        return parse_output(answer["data"]["hmac" if endpoint == "hmac" else "signature"])

    async def perform(op: KeyOp) -> bytes:
        return await asyncio.to_thread(call, op)

    return perform


def _signers(vault: DevVault, transit: VaultTransit) -> dict[tuple[str, str], Sign]:
    cases: dict[tuple[str, str], Sign] = {}
    admin = KeyVault(vault.client(), "secret", "signing-proxy", "transit")
    hvac_client = vault.client()  # one long-lived session, as the KV store keeps
    for scheme in SCHEMES:
        fields = demo_credentials(scheme)
        key = default_transit_key(scheme, "bench")
        put_transit(admin, Account(scheme, "bench", SIGNERS[scheme](), key), fields, key)
        operators = {"transit": transit.operator(scheme, "bench", key, None)}
        operators["transit-hvac"] = _hvac_operator(hvac_client, key)
        cases.update({(scheme, mode): sign for mode, sign in _cases(scheme, fields, operators).items()})
    return cases


def _cases(scheme: str, fields: dict[str, str], operators: dict[str, KeyOperator]) -> dict[str, Sign]:
    signer = SIGNERS[scheme]()
    secret, public = Credentials(fields), Credentials({"api_key": fields["api_key"]})
    request, ctx = _request(scheme), SignContext(scheme, "bench", int(time.time() * 1000))
    signer.sign(request, secret, ctx)  # warm the per-credential caches (Invex key parse)

    async def kv() -> object:
        return signer.sign(request, secret, ctx)

    def remote(operator: KeyOperator) -> Sign:
        return lambda: drive(signer.sign_steps(request, public, ctx), operator)

    return {"kv": kv, **{mode: remote(operator) for mode, operator in operators.items()}}


async def latency(sign: Sign, count: int) -> tuple[float, float]:
    """(median, p99) wall-clock µs of ``count`` sequential signs, after a short warm-up."""
    for _ in range(min(50, count)):
        await sign()
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        await sign()
        samples.append((time.perf_counter() - started) * 1e6)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


async def throughput(sign: Sign, concurrency: int, seconds: float) -> float:
    """Signs per second with ``concurrency`` coroutines signing back to back."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await sign()
            done += 1
            await asyncio.sleep(0)  # a kv sign never yields: let every worker take turns

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done / (time.perf_counter() - started)


async def measure(quick: bool, concurrency: int, seconds: float) -> list[dict[str, Any]]:
    count = 200 if quick else 2000
    with DevVault() as vault:
        vault.enable_transit()
        keeper = TokenKeeper(vault.client(), TokenLogin(vault.root_token), SystemClock())
        transit = VaultTransit(vault.url, keeper, max_connections=max(32, concurrency))
        try:
            cases = await asyncio.to_thread(_signers, vault, transit)
            rows = []
            for (scheme, mode), sign in cases.items():
                median_us, p99_us = await latency(sign, count)
                one = await throughput(sign, 1, seconds)
                many = await throughput(sign, concurrency, seconds)
                rows.append(
                    {
                        "scheme": scheme,
                        "mode": mode,
                        "median_us": round(median_us, 1),
                        "p99_us": round(p99_us, 1),
                        "signs_per_s_c1": round(one),
                        f"signs_per_s_c{concurrency}": round(many),
                    }
                )
            return rows
        finally:
            await transit.close()


def print_table(rows: list[dict[str, Any]], concurrency: int) -> None:
    wide = f"signs/s c={concurrency}"
    print(f"\n{'scheme':<8}{'mode':<14}{'median µs':>11}{'p99 µs':>10}{'signs/s c=1':>13}{wide:>16}")
    for row in rows:
        print(
            f"{row['scheme']:<8}{row['mode']:<14}{row['median_us']:>11.1f}{row['p99_us']:>10.1f}"
            f"{row['signs_per_s_c1']:>13}{row[f'signs_per_s_c{concurrency}']:>16}"
        )
    by = {(r["scheme"], r["mode"]): r for r in rows}
    for scheme in SCHEMES:
        kv, transit = by[(scheme, "kv")], by[(scheme, "transit")]
        added = transit["median_us"] - kv["median_us"]
        print(f"{scheme}: Transit adds {added:.0f} µs per signature (median) on a local OpenBao")


def main() -> None:
    parser = argparse.ArgumentParser(description="transit-mode vs kv-mode signing latency and throughput")
    parser.add_argument("--quick", action="store_true", help="few samples: a smoke run")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--seconds", type=float, default=None, help="per throughput run (default 3, quick 0.5)"
    )
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    seconds = args.seconds or (0.5 if args.quick else 3.0)
    try:
        import uvloop  # the proxy's event loop under uvicorn[standard]

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner:
        rows = runner.run(measure(args.quick, args.concurrency, seconds))
    print_table(rows, args.concurrency)
    if args.json:
        args.json.write_text(json.dumps({"concurrency": args.concurrency, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()

"""``signing-proxy demo``: the whole stack locally, and a scripted tour of it.

Starts an OpenBao dev server, one simulated venue per scheme (each verifies signatures
as the venue does), seeds fresh demo credentials into Vault, starts the proxy from a
real config and policy directory, then sends plain unsigned requests through it and
prints what happened. Exit code 0 only when every step behaved as expected.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from proxy import logs
from proxy.dev.ccxt_snippet import ccxt_snippet
from proxy.dev.demo_streams import stream_rows
from proxy.dev.demo_transit import transit_rows
from proxy.dev.stack import LocalStack
from proxy.signers import SIGNERS
from proxy.sim import DEMOS
from proxy.sim.samples import ORDERS, READS


@dataclass(frozen=True)
class Step:
    title: str
    scheme: str
    method: str
    path: str
    expect: int
    body: Any = None
    client: str | None = "trader"
    headers: dict[str, str] = field(default_factory=dict)
    check: Callable[[LocalStack, httpx.Response], str | None] | None = None


def _venue_ok(stack: LocalStack, response: httpx.Response) -> str | None:
    payload = _json(response)
    if isinstance(payload, dict) and payload.get("code") not in (None, 0):
        return f"venue code {payload.get('code')}"
    return None


def _forged_headers_dropped(stack: LocalStack, response: httpx.Response) -> str | None:
    seen = stack.sims["coinex"].recorder.requests[-1]
    if "forged" in (seen.header("x-coinex-key") or "") or "forged" in (seen.header("x-coinex-sign") or ""):
        return "the venue saw the client's forged header"
    return _venue_ok(stack, response)


def _error_code(code: str) -> Callable[[LocalStack, httpx.Response], str | None]:
    def check(stack: LocalStack, response: httpx.Response) -> str | None:
        got = response.headers.get("x-signing-proxy-error")
        return None if got == code else f"expected proxy error {code}, got {got}"

    return check


# (scheme, name, what its read shows, what its order is): from each simulator's DEMO, as are
# the requests (proxy.sim.samples).
VENUE_STEPS = [(scheme, demo.label, demo.read_shows, demo.order_is) for scheme, demo in DEMOS.items()]


def _venue_steps() -> list[Step]:
    steps = []
    for scheme, name, read, order in VENUE_STEPS:
        check = _venue_ok if scheme == "coinex" else None  # CoinEx refuses with HTTP 200 + a code
        path, body = ORDERS[scheme]
        steps.append(Step(f"{name} signed GET ({read})", scheme, "GET", READS[scheme], 200, check=check))
        steps.append(Step(f"{name} signed POST ({order})", scheme, "POST", path, 200, body=body, check=check))
    return steps


TOUR: list[Step] = [
    *_venue_steps(),
    Step(
        "Withdrawal is denied by policy",
        "coinex",
        "POST",
        "/v2/assets/withdraw",
        403,
        body={"ccy": "USDT", "amount": "1000"},
        check=_error_code("policy_denied"),
    ),
    Step(
        "No client token",
        "coinex",
        "GET",
        "/v2/assets/spot/balance",
        401,
        client=None,
        check=_error_code("unauthenticated"),
    ),
    Step(
        "Forged X-COINEX-* headers are replaced",
        "coinex",
        "GET",
        "/v2/assets/spot/balance",
        200,
        headers={"X-COINEX-KEY": "forged-key", "X-COINEX-SIGN": "forged-signature"},
        check=_forged_headers_dropped,
    ),
]
# The schemes whose key Vault Transit can hold (EVEDEX's secp256k1 cannot).
TRANSIT_VENUES = tuple(scheme for scheme, signer in SIGNERS.items() if signer.supports_transit)
BUCKET_STEPS = 3  # the 'tiny' client has burst 2: the third request in a row is refused


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


async def _run_step(stack: LocalStack, http: httpx.AsyncClient, step: Step) -> tuple[bool, str, int]:
    headers = dict(step.headers)
    if step.client:
        headers.update(stack.headers(step.client))
    response = await http.request(
        step.method, stack.url(step.scheme, step.path), json=step.body, headers=headers
    )
    problem = None if response.status_code == step.expect else f"expected {step.expect}"
    if problem is None and step.check is not None:
        problem = step.check(stack, response)
    return problem is None, problem or _summary(response), response.status_code


def _summary(response: httpx.Response) -> str:
    error = response.headers.get("x-signing-proxy-error")
    if error:
        return f"proxy: {error}"
    text = response.text.replace("\n", " ")
    return "venue: " + (text[:60] + "…" if len(text) > 60 else text)


async def _bucket_step(stack: LocalStack, http: httpx.AsyncClient) -> tuple[bool, str, int]:
    statuses = []
    last = None
    for _ in range(BUCKET_STEPS):
        last = await http.get(stack.url("coinex", "/v2/assets/spot/balance"), headers=stack.headers("tiny"))
        statuses.append(last.status_code)
    assert last is not None
    ok = statuses == [200, 200, 429] and last.headers.get("retry-after") is not None
    detail = f"statuses {statuses}, Retry-After {last.headers.get('retry-after')}"
    return ok, detail, last.status_code


async def tour(stack: LocalStack, out: Any = sys.stdout) -> bool:
    rows = []
    async with httpx.AsyncClient(timeout=20) as http:
        for step in TOUR:
            if step.scheme in stack.sims:
                signs = step.scheme in stack.transit and step.expect == 200
                in_transit = " [key in Vault Transit]" if signs else ""
                rows.append(
                    (
                        step.title + in_transit,
                        f"{step.method} /{step.scheme}/{stack.account}{step.path}",
                        *await _run_step(stack, http, step),
                    )
                )
        rows.extend(await stream_rows(stack))  # one private stream per venue with streams
        rows.extend(await transit_rows(stack))  # --transit: the key is in Vault Transit only
        rows.append(("Exhausted client bucket", "GET x3 as client 'tiny'", *await _bucket_step(stack, http)))
    _print_table(rows, out)
    return all(ok for _, _, ok, _, _ in rows)


def _print_table(rows: list[tuple[str, str, bool, str, int]], out: Any) -> None:
    widths = [max(len(r[0]) for r in rows), max(len(r[1]) for r in rows)]
    print(f"\n{'step':<{widths[0]}}  {'request':<{widths[1]}}  status  result", file=out)
    print("-" * (widths[0] + widths[1] + 30), file=out)
    for title, request, ok, detail, status in rows:
        mark = "OK  " if ok else "FAIL"
        print(f"{title:<{widths[0]}}  {request:<{widths[1]}}  {status:<6}  {mark} {detail}", file=out)
    passed = sum(1 for r in rows if r[2])
    print(f"\n{passed}/{len(rows)} steps OK", file=out)


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


async def _demo(keep_running: bool, transit: str | None = None) -> int:
    if transit is not None and transit not in TRANSIT_VENUES:
        why = "EVEDEX signs with secp256k1, which Vault Transit does not offer"
        print(
            f"signing-proxy demo: --transit takes one of {', '.join(TRANSIT_VENUES)} ({why})", file=sys.stderr
        )
        return 2
    # SIGTERM, SIGINT and SIGHUP cancel the demo, so that LocalStack.stop runs: bao stops
    # and the directory with the root-token file is removed (bao also dies with us on
    # SIGKILL: proxy.children.die_with_parent). Installed before anything is started.
    main = asyncio.current_task()
    assert main is not None
    loop = asyncio.get_running_loop()
    received: list[int] = []

    def stop(signum: int) -> None:
        if not received:  # a second signal must not interrupt the cleanup itself
            received.append(signum)
            main.cancel()

    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop, signum)
    try:
        return await _run(keep_running, transit)
    except asyncio.CancelledError:
        if not received:
            raise
        return 0 if keep_running else 128 + received[0]  # --keep-running: a signal is the way out
    finally:
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)


async def _run(keep_running: bool, transit: str | None) -> int:
    print("starting OpenBao dev server, simulated venues and the proxy …", flush=True)
    if transit:
        print(f"{transit}: its key is imported into Vault Transit and signs there", flush=True)
    stack = LocalStack(transit=(transit,) if transit else ())
    print(f"stack files: {stack.dir} (removed when the demo stops)", flush=True)
    log = open(stack.dir / "proxy.log", "a", encoding="utf-8")  # noqa: SIM115 - closed below
    try:
        logs.configure("INFO", log)
        async with stack:
            print(f"proxy on {stack.proxy_url}; Vault (OpenBao dev) on {stack.vault.url}", flush=True)
            ok = await tour(stack)
            if keep_running:
                _print_keep_running(stack)
                await asyncio.Event().wait()
    finally:
        log.close()
    return 0 if ok else 1


def _print_keep_running(stack: LocalStack) -> None:
    token = stack.clients["trader"].token
    print("\nThe stack stays up (Ctrl-C or SIGTERM stops it and removes its files).")
    print(f"  proxy:               {stack.proxy_url}")
    print(f"  admin:               {stack.admin_url}  (/readyz, /metrics)")
    print(f"  client token:        {token}")
    print(f"  config:              {stack.dir / 'proxy.yaml'}")
    print(f"  Vault (OpenBao dev): {stack.vault.url}")
    print(f"  Vault token file:    {stack.token_file}")
    print(f"  logs:                {stack.dir / 'proxy.log'} (proxy, JSON), {stack.vault.log_path} (OpenBao)")
    print(f"  stack files:         {stack.dir}")
    print(
        f"  try:                 curl -s -H 'Proxy-Authorization: Bearer {token}' "
        f"{stack.url('coinex', '/v2/assets/spot/balance')}"
    )
    print(
        f"                       VAULT_ADDR={stack.vault.url} VAULT_TOKEN=$(cat {stack.token_file}) "
        "bao kv get secret/signing-proxy/coinex/main",
        flush=True,
    )
    snippet = ccxt_snippet(stack.proxy_url, "coinex", stack.account, token)
    print(f"  ccxt (paste into python):\n{snippet}", flush=True)


def run_demo(keep_running: bool = False, transit: str | None = None) -> int:
    try:
        return asyncio.run(_demo(keep_running, transit))
    except KeyboardInterrupt:
        return 0

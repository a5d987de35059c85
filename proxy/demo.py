"""``signing-proxy demo``: the whole stack locally, and a scripted tour of it.

Starts an OpenBao dev server, one simulated venue per scheme (each verifies signatures
as the venue does), seeds fresh demo credentials into Vault, starts the proxy from a
real config and policy directory, then sends plain unsigned requests through it and
prints what happened. Exit code 0 only when every step behaved as expected.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from proxy.demo_streams import stream_rows
from proxy.stack import LocalStack


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


TOUR: list[Step] = [
    Step("CoinEx signed GET (balance)", "coinex", "GET", "/v2/assets/spot/balance", 200, check=_venue_ok),
    Step(
        "CoinEx signed POST (limit order)",
        "coinex",
        "POST",
        "/v2/spot/order",
        200,
        body={
            "market": "BTCUSDT",
            "market_type": "SPOT",
            "side": "buy",
            "type": "limit",
            "amount": "0.001",
            "price": "30000",
        },
        check=_venue_ok,
    ),
    Step("Icrypex signed GET (wallet)", "icrypex", "GET", "/sapi/v1/wallet", 200),
    Step(
        "Icrypex signed POST (order)",
        "icrypex",
        "POST",
        "/sapi/v1/orders",
        200,
        body={"symbol": "BTCTRY", "side": "BUY", "type": "LIMIT", "price": "2000000", "quantity": "0.001"},
    ),
    Step("Haqqex signed GET (balances)", "haqqex", "GET", "/api/v1/balances", 200),
    Step(
        "Haqqex signed POST (order)",
        "haqqex",
        "POST",
        "/api/v1/orders",
        200,
        body={"pair": "BTC_USDT", "side": "buy", "type": "limit", "price": "65000.5", "amount": "0.001"},
    ),
    Step("Invex signed GET (accounts, RSA-PSS)", "invex", "GET", "/trading/v1/accounts?currency=USDT", 200),
    Step(
        "Invex signed POST (order, RSA-PSS)",
        "invex",
        "POST",
        "/trading/v1/orders",
        200,
        body={"symbol": "TRX_USDT", "side": "BUYER", "type": "LIMIT", "quantity": "10", "price": "0.1"},
    ),
    Step("EVEDEX GET after SIWE login (JWT)", "evedex", "GET", "/api/user/me", 200),
    Step(
        "EVEDEX limit order (EIP-712 signed)",
        "evedex",
        "POST",
        "/api/v2/order/limit",
        200,
        body={
            "id": "00123:0123456789abcdef0123456789",  # SDK format: days since 2025-07-24 : 26 hex
            "instrument": "BTCUSDT",
            "side": "BUY",
            "leverage": 5,
            "quantity": "0.001",
            "limitPrice": "65000.5",
        },
    ),
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
                rows.append(
                    (
                        step.title,
                        f"{step.method} /{step.scheme}/{stack.account}{step.path}",
                        *await _run_step(stack, http, step),
                    )
                )
        rows.extend(await stream_rows(stack))  # one private stream per venue with streams
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


async def _demo(keep_running: bool) -> int:
    print("starting OpenBao dev server, simulated venues and the proxy …", flush=True)
    async with LocalStack() as stack:
        print(f"proxy on {stack.proxy_url}; Vault (OpenBao dev) on {stack.vault.url}", flush=True)
        ok = await tour(stack)
        if keep_running:
            _print_keep_running(stack)
            await asyncio.Event().wait()
    return 0 if ok else 1


def _print_keep_running(stack: LocalStack) -> None:
    token = stack.clients["trader"].token
    print("\nThe stack stays up (Ctrl-C to stop).")
    print(f"  proxy:        {stack.proxy_url}")
    print(f"  client token: {token}")
    print(f"  config:       {stack.dir / 'proxy.yaml'}")
    print(
        f"  try:          curl -s -H 'Proxy-Authorization: Bearer {token}' "
        f"{stack.url('coinex', '/v2/assets/spot/balance')}",
        flush=True,
    )


def run_demo(keep_running: bool = False) -> int:
    try:
        return asyncio.run(_demo(keep_running))
    except KeyboardInterrupt:
        return 0

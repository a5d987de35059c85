"""A real trading SDK through the proxy: ccxt 4.5.85's CoinEx client, unchanged.

ccxt is pointed at the proxy the way README "Using it from CCXT" says: ``urls['api']``
overridden to ``http://<proxy>/coinex/<account>``, placeholder keys (the proxy strips
ccxt's own ``X-COINEX-*`` headers and signs with the account's key from OpenBao), the
client token in ``Proxy-Authorization``. The simulated CoinEx verifies every signature.
Each refusal must raise the exception ccxt documents for it, with the proxy's reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import ccxt.async_support as ccxt
import pytest
import pytest_asyncio

from proxy.dev.ccxt_snippet import ccxt_snippet
from proxy.dev.stack import LocalStack
from proxy.policy.cases import evaluate, load_world

pytestmark = pytest.mark.asyncio(loop_scope="session")
SHIPPED_POLICIES = Path(__file__).resolve().parents[2] / "policies"


def coinex_client(base_url: str, token: str) -> ccxt.coinex:
    """Exactly the README snippet (async flavour)."""
    exchange = ccxt.coinex(
        {
            "apiKey": "placeholder",  # ccxt insists on keys; the proxy strips and re-signs
            "secret": "placeholder",
            "headers": {"Proxy-Authorization": f"Bearer {token}"},
        }
    )
    exchange.urls["api"] = {"public": base_url, "private": base_url}
    return exchange


@pytest_asyncio.fixture(loop_scope="session")
async def clients(stack: LocalStack) -> AsyncIterator[dict[str, Any]]:
    base = f"{stack.proxy_url}/coinex/{stack.account}"
    made = {
        "trader": coinex_client(base, stack.clients["trader"].token),
        "tiny": coinex_client(base, stack.clients["tiny"].token),
        "stranger": coinex_client(base, "not-a-client-token"),
    }
    yield made
    for exchange in made.values():
        await exchange.close()


async def test_ccxt_flow_load_markets_order_list_cancel_balance(
    stack: LocalStack, clients: dict[str, Any]
) -> None:
    exchange = clients["trader"]
    sim = stack.sims["coinex"]
    before = len(sim.recorder.requests)

    markets = await exchange.load_markets()
    print(f"\nload_markets: {len(markets)} markets: {', '.join(sorted(markets))}")
    assert {"BTC/USDT", "ETH/USDT", "BTC/USDT:USDT"} <= set(markets)
    assert markets["BTC/USDT"]["limits"]["amount"]["min"] == 0.0001
    assert "USDT" in exchange.currencies

    ticker = await exchange.fetch_ticker("BTC/USDT")
    print(f"fetch_ticker: BTC/USDT last={ticker['last']}")
    assert ticker["last"] == 64210.55 and ticker["high"] == 64890.0

    order = await exchange.create_order("BTC/USDT", "limit", "buy", 0.001, 30000)
    print(f"create_order: id={order['id']} {order['side']} {order['amount']} {order['symbol']}", end="")
    print(f" @ {order['price']}")
    assert order["id"] and order["symbol"] == "BTC/USDT"

    open_orders = await exchange.fetch_open_orders("BTC/USDT")
    print(f"fetch_open_orders: {[o['id'] for o in open_orders]}")
    assert order["id"] in [o["id"] for o in open_orders]

    cancelled = await exchange.cancel_order(order["id"], "BTC/USDT")
    print(f"cancel_order: id={cancelled['id']}")
    assert cancelled["id"] == order["id"]
    assert order["id"] not in [o["id"] for o in await exchange.fetch_open_orders("BTC/USDT")]

    balance = await exchange.fetch_balance()
    print(f"fetch_balance: BTC free={balance['BTC']['free']} USDT free={balance['USDT']['free']}")
    assert balance["USDT"]["free"] == 25000 and balance["BTC"]["free"] == 1.25

    seen = sim.recorder.requests[before:]
    targets = [f"{r.method} {r.path}" for r in seen]
    for expected in (
        "GET /v2/assets/all-deposit-withdraw-config",
        "GET /v2/spot/market",
        "GET /v2/futures/market",
        "GET /v2/spot/ticker",
        "POST /v2/spot/order",
        "GET /v2/spot/pending-order",
        "POST /v2/spot/cancel-order",
        "GET /v2/assets/spot/balance",
    ):
        assert expected in targets
    # Every request reached the venue signed by the proxy, never with ccxt's placeholder key.
    assert all(r.header("x-coinex-key") == stack.credentials["coinex"]["api_key"] for r in seen)
    # The shipped example policy lets its market-maker make every one of these calls.
    world = load_world(SHIPPED_POLICIES)
    market_maker = world.policies.clients["market-maker"]
    for r in seen:
        decision = evaluate(world, market_maker, "coinex", "main", r.method, r.target, r.body)
        refused = f"policies/example.yaml refuses ccxt's {r.method} {r.target}: {decision.reason}"
        assert decision.allowed, refused


async def _refusal(call: Any, expected: type[Exception]) -> str:
    with pytest.raises(expected) as caught:
        await call()
    reason = str(caught.value)
    print(f"{expected.__name__}: {reason}")
    return reason


async def test_ccxt_unknown_client_token_is_authentication_error(clients: dict[str, Any]) -> None:
    reason = await _refusal(clients["stranger"].fetch_balance, ccxt.AuthenticationError)
    assert reason == "coinex signing-proxy unauthenticated: missing or unknown client token"


async def test_ccxt_policy_denial_is_permission_denied_with_the_reason(
    stack: LocalStack, clients: dict[str, Any]
) -> None:
    exchange = clients["trader"]
    await exchange.load_markets()
    sim = stack.sims["coinex"]
    before = len(sim.recorder.requests)
    address = "TXLAQ63Xg1NAzckPwKHvzw7CSEmLMEqcdj"
    reason = await _refusal(lambda: exchange.withdraw("USDT", 10, address), ccxt.PermissionDenied)
    assert reason.startswith("coinex signing-proxy policy_denied: denied by policy: deny rule trader.deny[0]")
    assert len(sim.recorder.requests) == before  # nothing reached the venue


async def test_ccxt_rate_limit_is_rate_limit_exceeded(clients: dict[str, Any]) -> None:
    exchange = clients["tiny"]  # 0.2 requests/s, burst 2

    async def drain() -> None:
        for _ in range(6):
            await exchange.fetch_balance()

    reason = await _refusal(drain, ccxt.RateLimitExceeded)
    assert reason.startswith("coinex signing-proxy rate_limited: rate limit exhausted: ")


async def test_the_printed_snippet_runs_as_is(stack: LocalStack) -> None:
    """The demo banner's and README's snippet, pasted into a Python shell (sync ccxt)."""
    snippet = ccxt_snippet(stack.proxy_url, "coinex", stack.account, stack.clients["trader"].token)
    printed: list[Any] = []
    namespace: dict[str, Any] = {"print": printed.append}

    def paste() -> None:
        try:
            exec(snippet, namespace)
        finally:
            if "exchange" in namespace:
                namespace["exchange"].session.close()

    await asyncio.to_thread(paste)  # sync ccxt blocks: off the loop that serves the proxy
    print(f"snippet printed: {printed}")
    assert printed and printed[0]["USDT"] == 25000 and printed[0]["BTC"] == 1.25

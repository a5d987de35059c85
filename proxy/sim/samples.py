"""One plain request per scheme that its simulated venue accepts: a read and an order.

Shared by the demo tour, the soak script and the tests, so "what a trading bot sends" is
written once. Bodies are what a client sends: no credentials, no signature.
"""

from __future__ import annotations

from typing import Any

READS: dict[str, str] = {
    "coinex": "/v2/assets/spot/balance",
    "icrypex": "/sapi/v1/wallet",
    "haqqex": "/api/v1/balances",
    "invex": "/trading/v1/accounts?currency=USDT",
    "evedex": "/api/user/me",
}

ORDERS: dict[str, tuple[str, dict[str, Any]]] = {
    "coinex": (
        "/v2/spot/order",
        {
            "market": "BTCUSDT",
            "market_type": "SPOT",
            "side": "buy",
            "type": "limit",
            "amount": "0.001",
            "price": "30000",
        },
    ),
    "icrypex": (
        "/sapi/v1/orders",
        {"symbol": "BTCTRY", "side": "BUY", "type": "LIMIT", "price": "2000000", "quantity": "0.001"},
    ),
    "haqqex": (
        "/api/v1/orders",
        {"pair": "BTC_USDT", "side": "buy", "type": "limit", "price": "65000.5", "amount": "0.001"},
    ),
    "invex": (
        "/trading/v1/orders",
        {"symbol": "TRX_USDT", "side": "BUYER", "type": "LIMIT", "quantity": "10", "price": "0.1"},
    ),
    # EVEDEX order ids are unique per order (SDK format: days since 2025-07-24 ':' 26 hex):
    # use evedex_order() for a fresh one.
    "evedex": (
        "/api/v2/order/limit",
        {
            "id": "00123:0123456789abcdef0123456789",
            "instrument": "BTCUSDT",
            "side": "BUY",
            "leverage": 5,
            "quantity": "0.001",
            "limitPrice": "65000.5",
        },
    ),
}


def evedex_order(sequence: int) -> dict[str, Any]:
    """The EVEDEX sample order with a fresh, well-formed id."""
    return {**ORDERS["evedex"][1], "id": f"00123:{sequence:026x}"}

"""The simulated EVEDEX's public market data (``evedex-official/exchange-api`` 1.0.66).

What the SDK's ``ExchangeRestGateway`` reads without a session: ``GET /api/market``
(``MarketInfo``), ``GET /api/coin`` (``CoinList``), ``GET /api/market/instrument``
(``InstrumentList``; with ``?fields=metrics`` each entry also carries the
``InstrumentMetrics`` fields) and ``GET /api/market/{instrument}/deep`` (``MarketDepth``).
Field names and types follow ``src/utils/types.ts``: numbers as JSON numbers, dates as ISO
strings. Perpetuals on USDT; prices are fixed, made-up numbers.
"""

from __future__ import annotations

from typing import Any

_UPDATED = "2026-01-01T00:00:00.000Z"


def _coin(symbol: str, name: str, precision: int) -> dict[str, Any]:
    return {"id": symbol, "name": name, "symbol": symbol, "image": "", "precision": precision,
            "showPrecision": min(precision, 6)}  # fmt: skip


COINS = {
    "BTC": _coin("BTC", "Bitcoin", 8),
    "ETH": _coin("ETH", "Ethereum", 8),
    "USDT": _coin("USDT", "Tether", 6),
}
_PRICES = {"BTCUSDT": 64210.5, "ETHUSDT": 3120.4, "BTCUSD": 64200.0}


def _instrument(name: str, base: str, quote: str, lot: float) -> dict[str, Any]:
    return {
        "id": name,
        "name": name,
        "from": COINS[base],
        "to": COINS[quote],
        "maxLeverage": 100,
        "leverageLimit": {"100": 100000, "50": 500000, "20": 2000000},
        "maintenanceMargin": {"0": {"percent": 0.5, "deviance": 0}},
        "lotSize": lot,
        "quantityIncrement": lot,
        "multiplier": 1,
        "visibility": "all",
        "trading": "all",
        "updatedAt": _UPDATED,
    }


INSTRUMENTS = [
    _instrument("BTCUSDT", "BTC", "USDT", 0.001),
    _instrument("ETHUSDT", "ETH", "USDT", 0.01),
    _instrument("BTCUSD", "BTC", "USDT", 0.001),
]
MARKET_INFO = {"state": "OPEN", "fees": {"maker": 0.0002, "taker": 0.0005}, "updatedAt": _UPDATED}


def instruments(metrics: bool) -> list[dict[str, Any]]:
    if not metrics:
        return INSTRUMENTS
    return [{**entry, **_metrics(_PRICES[entry["name"]], entry["lotSize"])} for entry in INSTRUMENTS]


def _metrics(price: float, lot: float) -> dict[str, Any]:
    return {
        "isPopular": True, "minPrice": round(price * 0.5, 1), "maxPrice": round(price * 2, 1),
        "minQuantity": lot, "maxQuantity": lot * 100000, "maxSlippage": 0.05, "fundingRate": 0.0001,
        "fundingRateCreatedAt": _UPDATED, "slippageLimit": 0.05, "fatFingerPriceProtection": 0.1,
        "lastPrice": price, "markPrice": price, "openInterest": 1234.5, "low": round(price * 0.98, 1),
        "high": round(price * 1.02, 1), "closePrice": price, "volume": 1000.0 * price, "volumeBase": 1000.0,
    }  # fmt: skip


def depth(instrument: str, now_ms: int) -> dict[str, Any] | None:
    price = _PRICES.get(instrument)
    if price is None:
        return None
    asks = [
        {"price": round(price * 1.0001, 1), "quantity": 0.5},
        {"price": round(price * 1.001, 1), "quantity": 2},
    ]
    bids = [
        {"price": round(price * 0.9999, 1), "quantity": 0.4},
        {"price": round(price * 0.999, 1), "quantity": 3},
    ]
    return {"t": now_ms, "asks": asks, "bids": bids}

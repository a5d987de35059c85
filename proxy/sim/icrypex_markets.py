"""The simulated ICRYPEX's public market data (``icrypex-com/apidoc`` ``trading-public.md``).

``GET /v1/exchange/info`` (``{"assets": [...], "pairs": [...]}``), ``GET /v1/tickers`` (a
list) and ``GET /v1/orderbook?symbol=`` with the field names and types the docs list:
decimals as strings, precisions as integers, dates as epoch ms. A small market set in TRY
and USDT; prices are fixed, made-up numbers.
"""

from __future__ import annotations

from typing import Any

_CREATED_MS = 1_640_995_200_000  # 2022-01-01: a fixed date keeps the sim deterministic


def _asset(symbol: str, name: str, kind: str, precision: int, min_withdrawal: str) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "name": name,
        "description": name,
        "categories": [] if kind == "FIAT" else ["Layer 1"],
        "type": kind,
        "isEnabled": True,
        "isNew": False,
        "isWithdrawalEnabled": True,
        "isDepositEnabled": True,
        "precision": precision,
        "displayPrecision": min(precision, 8),
        "minDeposit": min_withdrawal,
        "minWithdrawal": min_withdrawal,
        "limitWithdrawal24h": "1000000",
        "limitWithdrawal30d": "10000000",
        "limitDeposit24h": "1000000",
        "limitDeposit30d": "10000000",
        "updatedDate": _CREATED_MS,
        "createdDate": _CREATED_MS,
    }


def _pair(base: str, quote: str, min_value: str, price_precision: int, tick: str) -> dict[str, Any]:
    return {
        "symbol": base + quote,
        "base": base,
        "quote": quote,
        "minExchangeValue": min_value,
        "minPrice": tick,
        "maxPrice": "100000000",
        "quantityPrecision": 8,
        "pricePrecision": price_precision,
        "totalPrecision": price_precision,
        "commissionPrecision": 8,
        "isEnabled": True,
        "displayOrder": 1,
        "status": "TRADING",
        "marketTypes": ["SPOT"],
        "orderTypes": ["MARKET", "LIMIT"],
        "tickSize": tick,
    }


ASSETS = [
    _asset("BTC", "Bitcoin", "CRYPTO", 8, "0.0005"),
    _asset("ETH", "Ethereum", "CRYPTO", 8, "0.005"),
    _asset("USDT", "Tether", "CRYPTO", 6, "10"),
    _asset("TRY", "Turkish Lira", "FIAT", 2, "100"),
]
PAIRS = [
    _pair("BTC", "TRY", "100", 0, "1"),
    _pair("ETH", "TRY", "100", 0, "1"),
    _pair("BTC", "USDT", "5", 2, "0.01"),
    _pair("ETH", "USDT", "5", 2, "0.01"),
]

# symbol -> (last, bid, ask, low, high, volume)
_PRICES = {
    "BTCTRY": ("2105400", "2105000", "2105400", "2070000", "2120000", "41.2031"),
    "ETHTRY": ("102400", "102350", "102400", "100100", "103900", "522.77"),
    "BTCUSDT": ("64210.55", "64205.10", "64210.55", "63001.23", "64890.00", "310.55"),
    "ETHUSDT": ("3120.42", "3119.80", "3120.42", "3050.17", "3161.00", "2044.871"),
}


def tickers() -> list[dict[str, Any]]:
    out = []
    for symbol, (last, bid, ask, low, high, volume) in _PRICES.items():
        avg = f"{(float(low) + float(high)) / 2:g}"
        out.append(
            {"symbol": symbol, "last": last, "ask": ask, "bid": bid, "high": high, "low": low,
             "avg": avg, "change": "1.05", "qty": f"{float(last) * 0.0105:.2f}", "volume": volume}
        )  # fmt: skip
    return out


def orderbook(symbol: str) -> dict[str, Any] | None:
    prices = _PRICES.get(symbol)
    if prices is None:
        return None
    _, bid, ask, *_ = prices
    return {
        "pairSymbol": symbol,
        "asks": [{"p": ask, "q": "0.18574314"}, {"p": str(float(ask) * 1.001), "q": "0.64521519"}],
        "bids": [{"p": bid, "q": "1.02465343"}, {"p": str(float(bid) * 0.999), "q": "0.1"}],
    }

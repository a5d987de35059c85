"""The simulated CoinEx's public market data: a small, realistic market set.

What a real SDK reads before it trades: ccxt 4.5.85's ``coinex.load_markets`` calls
``GET /v2/assets/all-deposit-withdraw-config`` (``fetch_currencies``), then
``GET /v2/spot/market`` and ``GET /v2/futures/market`` (``fetch_markets``); ``fetch_ticker(s)``
calls ``GET /v2/spot/ticker`` / ``GET /v2/futures/ticker``. Field names and types follow the
response samples in the CoinEx v2 docs that ccxt quotes and parses (strings for decimals,
integers for precisions). Prices are fixed, made-up numbers.
"""

from __future__ import annotations

from typing import Any

_SPOT_FLAGS = {
    "is_amm_available": True,
    "is_margin_available": True,
    "is_pre_trading_available": False,
    "is_api_trading_available": True,
}

SPOT_MARKETS: list[dict[str, Any]] = [
    {
        "market": "BTCUSDT",
        "taker_fee_rate": "0.002",
        "maker_fee_rate": "0.002",
        "min_amount": "0.0001",
        "base_ccy": "BTC",
        "quote_ccy": "USDT",
        "base_ccy_precision": 8,
        "quote_ccy_precision": 2,
        **_SPOT_FLAGS,
    },
    {
        "market": "ETHUSDT",
        "taker_fee_rate": "0.002",
        "maker_fee_rate": "0.002",
        "min_amount": "0.005",
        "base_ccy": "ETH",
        "quote_ccy": "USDT",
        "base_ccy_precision": 8,
        "quote_ccy_precision": 2,
        **_SPOT_FLAGS,
    },
    {
        "market": "ETHBTC",
        "taker_fee_rate": "0.002",
        "maker_fee_rate": "0.002",
        "min_amount": "0.005",
        "base_ccy": "ETH",
        "quote_ccy": "BTC",
        "base_ccy_precision": 8,
        "quote_ccy_precision": 6,
        **_SPOT_FLAGS,
    },
]

_LEVERAGE = ["1", "2", "3", "5", "8", "10", "15", "20", "30", "50", "100"]

FUTURES_MARKETS: list[dict[str, Any]] = [
    {
        "market": "BTCUSDT",
        "contract_type": "linear",
        "base_ccy": "BTC",
        "quote_ccy": "USDT",
        "base_ccy_precision": 8,
        "quote_ccy_precision": 2,
        "leverage": _LEVERAGE,
        "maker_fee_rate": "0.0003",
        "taker_fee_rate": "0.0005",
        "min_amount": "0.0001",
        "open_interest_volume": "2566.879",
    },
    {
        "market": "ETHUSDT",
        "contract_type": "linear",
        "base_ccy": "ETH",
        "quote_ccy": "USDT",
        "base_ccy_precision": 8,
        "quote_ccy_precision": 2,
        "leverage": _LEVERAGE,
        "maker_fee_rate": "0.0003",
        "taker_fee_rate": "0.0005",
        "min_amount": "0.005",
        "open_interest_volume": "31502.4",
    },
]

# market -> (last, open, high, low, volume): one fixed day.
_PRICES = {
    "BTCUSDT": ("64210.55", "63544.10", "64890.00", "63001.23", "1520.4021"),
    "ETHUSDT": ("3120.42", "3088.91", "3161.00", "3050.17", "20344.871"),
    "ETHBTC": ("0.048597", "0.048610", "0.048990", "0.048200", "310.55"),
}


def ticker(market: str, futures: bool) -> dict[str, Any]:
    last, open_, high, low, volume = _PRICES[market]
    entry = {
        "market": market,
        "last": last,
        "open": open_,
        "close": last,
        "high": high,
        "low": low,
        "volume": volume,
        "value": f"{float(volume) * float(last):.2f}",
        "volume_sell": f"{float(volume) / 2:.4f}",
        "volume_buy": f"{float(volume) / 2:.4f}",
        "period": 86400,
    }
    if futures:
        entry |= {"index_price": last, "mark_price": last, "open_interest_volume": "1000"}
    return entry


def _chain(chain: str, fee: str, min_withdraw: str, precision: int) -> dict[str, Any]:
    return {
        "chain": chain,
        "min_deposit_amount": min_withdraw,
        "min_withdraw_amount": min_withdraw,
        "deposit_enabled": True,
        "withdraw_enabled": True,
        "deposit_delay_minutes": 0,
        "safe_confirmations": 6,
        "irreversible_confirmations": 12,
        "deflation_rate": "0",
        "withdrawal_fee": fee,
        "withdrawal_precision": precision,
        "memo": "",
        "is_memo_required_for_deposit": False,
        "explorer_asset_url": "",
    }


def _asset(ccy: str, *chains: dict[str, Any]) -> dict[str, Any]:
    flags = {"deposit_enabled": True, "withdraw_enabled": True, "inter_transfer_enabled": True}
    return {"asset": {"ccy": ccy, **flags, "is_st": False}, "chains": list(chains)}


ASSETS: list[dict[str, Any]] = [
    _asset("BTC", _chain("BTC", "0.0002", "0.001", 8)),
    _asset("ETH", _chain("ERC20", "0.002", "0.01", 8)),
    _asset("USDT", _chain("TRC20", "1", "10", 6), _chain("ERC20", "5", "20", 6)),
]


def select(entries: list[dict[str, Any]], wanted: str | None) -> list[dict[str, Any]]:
    """Entries whose ``market`` is in the comma-separated ``wanted`` (all when ``None``)."""
    if wanted is None:
        return entries
    names = set(wanted.split(","))
    return [entry for entry in entries if entry["market"] in names]


def spot_market(name: str) -> dict[str, Any] | None:
    return next((entry for entry in SPOT_MARKETS if entry["market"] == name), None)

"""Simulated CoinEx API v2: verifies ``X-COINEX-*`` HMAC authentication as the venue does.

Verification is reimplemented here, independent of ``proxy.signers.coinex`` (the sim stands
in for the venue): HMAC-SHA256 keyed with the secret over the *raw bytes* of
``METHOD + raw path?raw query + raw body + X-COINEX-TIMESTAMP header``, compared with
``X-COINEX-SIGN``. Answers follow ``../shared/venues.md`` section 5: HTTP 200 with
``{"code": 0, "data": ..., "message": "OK"}``, errors as HTTP 200 with a non-zero ``code``;
unknown paths get a gateway-style HTTP 404 whose body is not JSON.

Checks, in order (the order and the 4004 are this sim's choice; the codes are CoinEx's):

* ``X-COINEX-KEY`` missing or unknown -> 4005 (abnormal access_id);
* ``X-COINEX-SIGN`` missing or not 64 hex digits -> 4008 (abnormal X-COINEX-SIGN);
* ``X-COINEX-TIMESTAMP`` missing / not an integer, or ``X-COINEX-WINDOWTIME`` not a positive
  integer -> 4004 (parameter error);
* ``|now - timestamp| > window`` (window = ``X-COINEX-WINDOWTIME``, default 5000 ms) -> 4010
  (expired); timestamps too far in the *future* are refused the same way;
* signature mismatch -> 4006 (signature verification failed).

Endpoints: every path under ``/v2/`` requires authentication, except ``GET /v2/ping`` and
the public market data a real SDK loads first (``proxy.sim.coinex_markets``: spot and
futures market lists, tickers, the deposit/withdraw asset config), which answer without
credentials and, when ``X-COINEX-KEY`` is sent anyway, verify it (stricter than the venue
may be, so a signer bug on them still fails a test). ``POST /v2/spot/order`` checks the
order (an unknown side, type or market_type, or a malformed amount or price -> 4004; an
amount below a listed market's ``min_amount`` -> 3127; a missing price or an unlisted
market is this sim's leniency, so tests can sign orders on any market), stores it and
echoes it with an ``order_id``; ``GET /v2/spot/pending-order`` lists the key's open
orders (``market`` filter); ``POST /v2/spot/cancel-order`` removes one (unknown -> 3600,
order not found) and echoes it; ``GET /v2/assets/spot/balance`` returns fixed balances;
any other ``/v2/`` path answers ``data: {}``.
``POST /v2/assets/withdraw`` records a withdrawal (``CoinexSim.withdrawals``: tests see whether
one got through). Routing is a standard web server's (``proxy.sim.base.server_path``):
percent-decoded, case-insensitive, ``/x/`` is ``/x`` (CoinEx's server is not documented; this
is the broadest common reading, so a spelling the proxy lets past a deny rule shows up here).
The signature covers the raw bytes.

WebSocket (``/v2/spot`` and ``/v2/futures``; venues.md section 5): requests are JSON
``{"method", "params", "id"}``; every server frame is a **gzip-compressed binary** frame
(the official demo ``gzip.decompress``-es each one). ``server.sign`` is verified like the
REST signature, over ``str(timestamp)`` alone: unknown ``access_id``, a ``signed_str`` that is
not 64 hex digits or does not match, or a ``timestamp`` outside the 5000 ms window all
answer ``code`` 21002. ``server.ping`` answers ``pong``. ``order.subscribe`` and
``balance.subscribe`` need a signed connection (else 21001) and then push two
``order.update`` events (the key's stored orders, else two made-up ones) or one
``balance.update``. Other methods answer 20002. The codes and messages are this sim's
choice after ccxt's CoinEx table; the docs give only ``{"code":21002}`` as an example.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import itertools
import json
import re
import secrets
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qs

from proxy.clock import Clock, SystemClock
from proxy.sim import coinex_markets as markets
from proxy.sim.base import Demo, ReceivedRequest, SimResponse, SimSocket, SimVenue, json_response, server_path

DEFAULT_WINDOW_MS = 5000  # guide: "5000 milliseconds (default)"
_HEX_SIGN = re.compile(r"[0-9a-fA-F]{64}")
_DIGITS = re.compile(r"[0-9]{1,19}")
_MESSAGES = {
    3127: "The order quantity is below the minimum requirement. Please adjust the order quantity.",
    3600: "Order not found",
    4004: "Parameter error",
    4005: "Abnormal access_id",
    4006: "Signature verification failed",
    4008: "Abnormal X-COINEX-SIGN value",
    4010: "Expired request",
    20001: "Invalid argument",
    20002: "Method not found",
    21001: "Require auth",
    21002: "Authentication failed",
}
WS_PATHS = ("/v2/spot", "/v2/futures")
NOT_FOUND = SimResponse(
    404, b"<html><body><h1>404 Not Found</h1></body></html>", (("content-type", "text/html"),)
)
_BALANCES = [
    {"ccy": "BTC", "available": "1.25", "frozen": "0"},
    {"ccy": "USDT", "available": "25000", "frozen": "0"},
]
_ORDER_FIELDS = ("market", "side", "type", "amount")
# Public market data: GET, no credentials needed (docs: "market" endpoints are not signed).
PUBLIC: dict[str, Any] = {
    "/v2/spot/market": lambda market: markets.select(markets.SPOT_MARKETS, market),
    "/v2/futures/market": lambda market: markets.select(markets.FUTURES_MARKETS, market),
    "/v2/spot/ticker": lambda market: [
        markets.ticker(m["market"], futures=False) for m in markets.select(markets.SPOT_MARKETS, market)
    ],
    "/v2/futures/ticker": lambda market: [
        markets.ticker(m["market"], futures=True) for m in markets.select(markets.FUTURES_MARKETS, market)
    ],
    "/v2/assets/all-deposit-withdraw-config": lambda _market: markets.ASSETS,
}


def ok(data: Any, **extra: Any) -> SimResponse:
    return json_response(200, {"code": 0, "data": data, "message": "OK", **extra})


def fail(code: int) -> SimResponse:
    return json_response(200, {"code": code, "data": {}, "message": _MESSAGES[code]})


def expected_sign(secret: str, request: ReceivedRequest, timestamp: str) -> str:
    # The sim's target string holds the raw bytes decoded as latin-1: re-encode to get them back.
    message = request.method.encode() + request.target.encode("latin-1") + request.body + timestamp.encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


class CoinexSim:
    def __init__(self, keys: Mapping[str, Mapping[str, str]], clock: Clock) -> None:
        self.keys = keys
        self.clock = clock
        self.orders: dict[str, list[dict[str, Any]]] = {}
        self.withdrawals: list[dict[str, Any]] = []
        self._ids = itertools.count(136_000_000_001)

    def handle(self, request: ReceivedRequest) -> SimResponse:
        path = server_path(request.path)
        if request.method == "GET" and path == "/v2/ping":
            return ok({"result": "pong"})
        if not path.startswith("/v2/"):
            return NOT_FOUND
        public = PUBLIC.get(path) if request.method == "GET" else None
        if public is None or request.header("x-coinex-key") is not None:
            code = self.authenticate(request)
            if code:
                return fail(code)
        if public is not None:
            return ok(public(_first(parse_qs(request.query), "market")))
        return self.route(request, path)

    def authenticate(self, request: ReceivedRequest) -> int:
        """0 when authentic, else the CoinEx error code."""
        account = self.keys.get(request.header("x-coinex-key") or "")
        if account is None:
            return 4005
        sign = request.header("x-coinex-sign") or ""
        if not _HEX_SIGN.fullmatch(sign):
            return 4008
        timestamp = request.header("x-coinex-timestamp") or ""
        window = request.header("x-coinex-windowtime") or str(DEFAULT_WINDOW_MS)
        if not (_DIGITS.fullmatch(timestamp) and _DIGITS.fullmatch(window) and int(window) > 0):
            return 4004
        if abs(round(self.clock.now() * 1000) - int(timestamp)) > int(window):
            return 4010
        expected = expected_sign(account["secret_key"], request, timestamp)
        return 0 if hmac.compare_digest(expected.encode(), sign.encode()) else 4006

    def route(self, request: ReceivedRequest, path: str) -> SimResponse:
        """``path``: what the server routes on (``server_path``), not the signed bytes."""
        access_id = request.header("x-coinex-key") or ""
        if (request.method, path) == ("POST", "/v2/spot/order"):
            return self.place_order(access_id, request.body)
        if (request.method, path) == ("GET", "/v2/spot/pending-order"):
            return self.pending_orders(access_id, parse_qs(request.query))
        if (request.method, path) == ("POST", "/v2/spot/cancel-order"):
            return self.cancel_order(access_id, request.body)
        if (request.method, path) == ("GET", "/v2/assets/spot/balance"):
            return ok(_BALANCES)
        if (request.method, path) == ("POST", "/v2/assets/withdraw"):
            return self.withdraw(access_id, request.body)
        return ok({})

    def withdraw(self, access_id: str, body: bytes) -> SimResponse:
        try:
            params = json.loads(body)
        except ValueError:
            return fail(4004)
        if not isinstance(params, dict):
            return fail(4004)
        withdrawal = {"withdraw_id": next(self._ids), "access_id": access_id, **params}
        self.withdrawals.append(withdrawal)
        return ok(withdrawal)

    def place_order(self, access_id: str, body: bytes) -> SimResponse:
        try:
            params = json.loads(body)
        except ValueError:
            return fail(4004)
        if not isinstance(params, dict) or any(field not in params for field in _ORDER_FIELDS):
            return fail(4004)
        code = _order_error(params)
        if code:
            return fail(code)
        order = self.new_order(params)
        self.orders.setdefault(access_id, []).append(order)
        return ok(order)

    def cancel_order(self, access_id: str, body: bytes) -> SimResponse:
        try:
            params = json.loads(body)
        except ValueError:
            return fail(4004)
        if not isinstance(params, dict) or "market" not in params or "order_id" not in params:
            return fail(4004)
        open_orders = self.orders.get(access_id, [])
        for order in open_orders:
            if str(order["order_id"]) == str(params["order_id"]) and order["market"] == params["market"]:
                open_orders.remove(order)
                return ok(order)
        return fail(3600)

    def new_order(self, params: dict[str, Any]) -> dict[str, Any]:
        now_ms = round(self.clock.now() * 1000)
        amount = str(params["amount"])
        return {
            "order_id": next(self._ids),
            "market": params["market"],
            "market_type": params.get("market_type", "SPOT"),
            "side": params["side"],
            "type": params["type"],
            "amount": amount,
            "price": str(params.get("price", "0")),
            "client_id": params.get("client_id", ""),
            "unfilled_amount": amount,
            "filled_amount": "0",
            "filled_value": "0",
            "created_at": now_ms,
            "updated_at": now_ms,
        }

    def pending_orders(self, access_id: str, query: dict[str, list[str]]) -> SimResponse:
        orders = self.orders.get(access_id, [])
        if "market" in query:
            orders = [order for order in orders if order["market"] in query["market"]]
        return ok(orders, pagination={"total": len(orders), "has_next": False})

    # --- WebSocket ------------------------------------------------------------------------

    async def handle_ws(self, socket: SimSocket) -> None:
        if socket.path not in WS_PATHS:
            await socket.reject()
            return
        await socket.accept()
        signed_as: str | None = None  # the access_id this connection signed in as
        while (data := await socket.receive()) is not None:
            request = _ws_request(data)
            if request is None:
                await socket.send(pack(_ws_reply(None, 20001)))
                continue
            method, request_id, params = request
            if method == "server.sign":
                code, access_id = self.ws_authenticate(params)
                signed_as = access_id if code == 0 else signed_as
                await socket.send(pack(_ws_reply(request_id, code)))
            elif method == "server.ping":
                await socket.send(pack({**_ws_reply(request_id, 0), "data": {"result": "pong"}}))
            elif method in ("order.subscribe", "balance.subscribe"):
                await socket.send(pack(_ws_reply(request_id, 0 if signed_as else 21001)))
                for event in self.ws_events(method, signed_as) if signed_as else []:
                    await socket.send(pack(event))
            else:
                await socket.send(pack(_ws_reply(request_id, 20002)))

    def ws_authenticate(self, params: Any) -> tuple[int, str | None]:
        """``(0, access_id)`` when ``server.sign`` params are authentic, else ``(21002, None)``."""
        params = params if isinstance(params, dict) else {}
        access_id, signed_str, timestamp = (params.get(k) for k in ("access_id", "signed_str", "timestamp"))
        account = self.keys.get(access_id) if isinstance(access_id, str) else None
        if account is None or not isinstance(signed_str, str) or not _HEX_SIGN.fullmatch(signed_str):
            return 21002, None
        if isinstance(timestamp, bool) or not isinstance(timestamp, int):
            return 21002, None
        if abs(round(self.clock.now() * 1000) - timestamp) > DEFAULT_WINDOW_MS:
            return 21002, None
        expected = hmac.new(
            account["secret_key"].encode(), str(timestamp).encode(), hashlib.sha256
        ).hexdigest()
        return (0, access_id) if hmac.compare_digest(expected, signed_str) else (21002, None)

    def ws_events(self, method: str, access_id: str) -> list[dict[str, Any]]:
        if method == "balance.subscribe":
            return [{"method": "balance.update", "data": {"balance_list": _BALANCES}, "id": None}]
        orders = self.orders.get(access_id, [])[-2:] or [
            self.new_order(
                {"market": "BTCUSDT", "side": "buy", "type": "limit", "amount": "0.001", "price": "30000"}
            )
            for _ in range(2)
        ]
        return [
            {"method": "order.update", "data": {"event": "put", "order": order}, "id": None}
            for order in orders
        ]


def pack(message: dict[str, Any]) -> bytes:
    """A CoinEx server frame: gzip-compressed JSON."""
    return gzip.compress(json.dumps(message).encode())


def _first(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def _order_error(params: dict[str, Any]) -> int:
    """0 when a spot order fits the market set, else the CoinEx code the venue answers."""
    if not isinstance(params["market"], str) or params["side"] not in ("buy", "sell"):
        return 4004
    if params["type"] not in ("limit", "market"):
        return 4004
    if params.get("market_type", "SPOT") != "SPOT":
        return 4004
    amount = _positive(params["amount"])
    # A missing limit price is let through (older tests and tools omit it); a bad one is not.
    price = _positive(params["price"]) if "price" in params else Decimal(1)
    if amount is None or price is None:
        return 4004
    # A market outside the set is let through: tests sign orders on any market name (e.g.
    # one a report-mode policy would deny); the set is what SDKs load, with its minimums.
    market = markets.spot_market(params["market"])
    return 3127 if market is not None and amount < Decimal(market["min_amount"]) else 0


def _positive(value: Any) -> Decimal | None:
    # CoinEx takes decimals as strings; a float or a non-finite value is a parameter error.
    if not isinstance(value, str):
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        return None
    return number if number.is_finite() and number > 0 else None


def _ws_reply(request_id: Any, code: int) -> dict[str, Any]:
    return {"id": request_id, "code": code, "message": _MESSAGES.get(code, "OK")}


def _ws_request(data: str | bytes) -> tuple[str, Any, Any] | None:
    try:
        request = json.loads(data)
    except ValueError:
        return None
    if not isinstance(request, dict) or not isinstance(request.get("method"), str):
        return None
    return request["method"], request.get("id"), request.get("params")


def create_app(keys: Mapping[str, Mapping[str, str]], clock: Clock | None = None) -> SimVenue:
    clock = clock or SystemClock()
    sim = CoinexSim(keys, clock)
    return SimVenue("coinex", sim.handle, clock, ws_handler=sim.handle_ws)


def _credentials() -> dict[str, str]:
    return {"api_key": secrets.token_hex(16).upper(), "secret_key": secrets.token_hex(32).upper()}


DEMO = Demo(
    "coinex",
    "CoinEx",
    "/v2/assets/spot/balance",
    "balance",
    (
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
    "limit order",
    ("/v2/spot/order", "/v2/spot/cancel-order"),
    _credentials,
)

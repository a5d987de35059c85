"""Simulated ICRYPEX REST API: verifies the ``ICX-*`` headers as the venue does.

Verification is reimplemented here, independent of ``proxy.signers.icrypex`` (the sim stands
in for the venue): ``ICX-SIGN`` must equal ``base64(HMAC_SHA256(base64decode(secret),
ICX-API-KEY + ICX-TS))`` over the header strings as received (``../shared/venues.md``
section 3; ``icrypex-com/apidoc`` ``architecture.md``).

Any authentication failure is **401 with an empty body**: the docs say 4xx responses other
than 400/422 carry no JSON body. A request fails when a header is missing, the key is
unknown, ``ICX-TS`` or ``ICX-NONCE`` is not a decimal integer, ``ICX-NONCE`` is outside
1..60000 (so the third-party SDK's ``ICX-NONCE: Date.now()`` fails), ``|now - ICX-TS|``
exceeds ``ICX-NONCE`` (this sim rejects early timestamps as well as late ones: the docs
describe the tolerance as absorbing clock differences either way), or the signature differs.

Unknown paths/methods are 404 with an empty body, checked *before* authentication (the
order is this sim's choice). Routing is ASP.NET Core's default (``proxy.sim.base.server_path``):
percent-decoded, case-insensitive, a trailing slash ignored. Endpoints
(``trading-authenticated.md``, ``funding.md``):
``POST /sapi/v1/orders`` (JSON body; 400 ``{"code", "message"}`` when invalid),
``GET /sapi/v1/orders`` (open orders, pagination model), ``DELETE /sapi/v1/orders?orderId=``
(422 when unknown), ``GET /sapi/v1/orders/history``, ``GET /sapi/v1/trades`` and
``GET /sapi/v1/wallet``. Orders on symbols outside the market set are accepted (this sim's
leniency: tests sign orders on any symbol). Public market data (``trading-public.md``;
``proxy.sim.icrypex_markets``): ``GET /v1/exchange/info``, ``GET /v1/tickers`` and
``GET /v1/orderbook?symbol=`` answer without credentials; when ``ICX-API-KEY`` is sent
anyway it is verified (stricter than the venue may be, so a signer bug on them still fails
a test). An unknown orderbook symbol is 400 ``INVALID_REQUEST`` (this sim's choice).

WebSocket (``wss://istream.icrypex.com``, path ``/``; ``websockets.md``): text frames
``type|json``. ``api-login|{"pk","s","ts","n"}`` is verified exactly like the REST headers
(``pk`` = ``ICX-API-KEY``, ``s`` = ``ICX-SIGN``, ``ts``, ``n`` = ``ICX-NONCE``, both JSON
integers) and answered ``api-auth|{"v":true}`` or ``{"v":false}``. ``subscribe|{"c","s"}``
is answered ``subscribe-response|{"c","s"}``. The docs list order and balance events for
authenticated connections but mark them "not enabled yet", so their names are this sim's
choice: channels ``order`` and ``balance``; subscribing to them unauthenticated answers
``"s": false``; after a good login they push two ``order|{...}`` (the stored open orders,
else made-up ones) or one ``balance|{"b":[...]}`` event. Other types answer
``error|{"m": "..."}``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
import secrets
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs

from proxy.clock import Clock, SystemClock
from proxy.sim import icrypex_markets as markets
from proxy.sim.base import Demo, ReceivedRequest, SimResponse, SimSocket, SimVenue, json_response, server_path

MAX_TOLERANCE_MS = 60_000
UNAUTHORIZED = SimResponse(401, b"", ())
NOT_FOUND = SimResponse(404, b"", ())
_DIGITS = re.compile(r"[0-9]{1,19}")
_WALLET = [
    {"asset": "BTC", "order": "0", "request": "0", "blocked": "0", "total": "1.5", "available": "1.5"},
    {"asset": "TRY", "order": "0", "request": "0", "blocked": "0", "total": "50000", "available": "50000"},
]
_ORDER_FIELDS = ("symbol", "type", "side")
PRIVATE_CHANNELS = ("order", "balance")

Route = Callable[[ReceivedRequest], SimResponse]


def expected_sign(secret_b64: str, api_key: str, ts: str) -> str:
    digest = hmac.new(base64.b64decode(secret_b64), (api_key + ts).encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def page(items: list[dict[str, Any]]) -> dict[str, Any]:
    """The docs' pagination model, everything on page 1."""
    return {
        "pageIndex": 1,
        "pageSize": 25,
        "totalCount": len(items),
        "totalPages": 1,
        "indexFrom": 1,
        "hasPreviousPage": False,
        "hasNextPage": False,
        "items": items,
    }


def error(status: int, code: str, message: str) -> SimResponse:
    return json_response(status, {"code": code, "message": message})


def _orderbook(request: ReceivedRequest) -> SimResponse:
    symbol = parse_qs(request.query).get("symbol", [""])[0]
    book = markets.orderbook(symbol)
    return json_response(200, book) if book else error(400, "INVALID_REQUEST", "Unknown symbol")


class IcrypexSim:
    def __init__(self, keys: Mapping[str, Mapping[str, str]], clock: Clock) -> None:
        self.keys = keys
        self.clock = clock
        self.orders: dict[int, dict[str, Any]] = {}
        self._ids = itertools.count(1_551_482)
        self.routes: dict[tuple[str, str], Route] = {
            ("POST", "/sapi/v1/orders"): self.place_order,
            ("GET", "/sapi/v1/orders"): lambda _r: self.list_orders(open_only=True),
            ("DELETE", "/sapi/v1/orders"): self.cancel_order,
            ("GET", "/sapi/v1/orders/history"): lambda _r: self.list_orders(open_only=False),
            ("GET", "/sapi/v1/trades"): lambda _r: json_response(200, page([])),
            ("GET", "/sapi/v1/wallet"): lambda _r: json_response(200, _WALLET),
        }
        self.public: dict[tuple[str, str], Route] = {
            ("GET", "/v1/exchange/info"): lambda _r: json_response(
                200, {"assets": markets.ASSETS, "pairs": markets.PAIRS}
            ),
            ("GET", "/v1/tickers"): lambda _r: json_response(200, markets.tickers()),
            ("GET", "/v1/orderbook"): _orderbook,
        }

    def handle(self, request: ReceivedRequest) -> SimResponse:
        path = server_path(request.path)
        public = self.public.get((request.method, path))
        if public is not None:
            sent_key = request.header("icx-api-key") is not None
            return UNAUTHORIZED if sent_key and not self.authentic(request) else public(request)
        route = self.routes.get((request.method, path))
        if route is None:
            return NOT_FOUND
        return route(request) if self.authentic(request) else UNAUTHORIZED

    def authentic(self, request: ReceivedRequest) -> bool:
        api_key, sign = request.header("icx-api-key"), request.header("icx-sign")
        ts, nonce = request.header("icx-ts") or "", request.header("icx-nonce") or ""
        account = self.keys.get(api_key or "")
        if account is None or sign is None:
            return False
        if not (_DIGITS.fullmatch(ts) and _DIGITS.fullmatch(nonce)):
            return False
        tolerance = int(nonce)
        if not 1 <= tolerance <= MAX_TOLERANCE_MS:
            return False
        if abs(round(self.clock.now() * 1000) - int(ts)) > tolerance:
            return False
        expected = expected_sign(account["secret_key"], api_key or "", ts)
        return hmac.compare_digest(expected.encode(), sign.encode("latin-1"))

    def place_order(self, request: ReceivedRequest) -> SimResponse:
        try:
            params = json.loads(request.body)
        except ValueError:
            return error(400, "INVALID_REQUEST", "Request body must be JSON")
        if not isinstance(params, dict) or any(field not in params for field in _ORDER_FIELDS):
            return error(400, "INVALID_REQUEST", "symbol, type and side are required")
        if not isinstance(params["symbol"], str):
            return error(400, "INVALID_REQUEST", "symbol must be a string")
        order = self.new_order(params)
        self.orders[order["id"]] = order
        return json_response(200, self.placement_reply(order))

    def new_order(self, params: dict[str, Any]) -> dict[str, Any]:
        now_ms = round(self.clock.now() * 1000)
        quantity = str(params.get("quantity", "0"))
        return {
            "id": next(self._ids),
            "symbol": params["symbol"],
            "createdDate": now_ms,
            "updatedDate": now_ms,
            "price": str(params.get("price", "0")),
            "quantity": quantity,
            "leftQuantity": quantity,
            "triggerPrice": str(params.get("triggerPrice", "0")),
            "side": str(params["side"]).upper(),
            "status": "OPEN",
            "type": str(params["type"]).upper(),
            "clientId": params.get("clientId", ""),
        }

    @staticmethod
    def placement_reply(order: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": str(order["id"]),
            "ok": True,
            "quantity": order["quantity"],
            "leftQuantity": order["leftQuantity"],
            "matchedTotal": "0",
            "total": "0",
            "status": "Open",
            "pairSymbol": order["symbol"],
            "lastTrades": [],
        }

    def list_orders(self, open_only: bool) -> SimResponse:
        orders = [o for o in self.orders.values() if o["status"] == "OPEN" or not open_only]
        return json_response(200, page(orders))

    def cancel_order(self, request: ReceivedRequest) -> SimResponse:
        order_id = parse_qs(request.query).get("orderId", [""])[0]
        if not _DIGITS.fullmatch(order_id):
            return error(400, "INVALID_REQUEST", "orderId is required")
        order = self.orders.get(int(order_id))
        if order is None or order["status"] != "OPEN":
            return error(422, "ORDER_NOT_FOUND", f"Order {order_id} not found")
        order["status"] = "CANCEL"
        return json_response(200, {"ok": True, "id": order["id"], "code": "SUCCESS"})

    # --- WebSocket ------------------------------------------------------------------------

    async def handle_ws(self, socket: SimSocket) -> None:
        if socket.path != "/":
            await socket.reject()
            return
        await socket.accept()
        authenticated = False
        while (data := await socket.receive()) is not None:
            kind, body = _ws_message(data)
            if kind == "api-login":
                authenticated = authenticated or self.ws_authentic(body)
                await socket.send("api-auth|" + _compact({"v": authenticated}))
            elif kind == "subscribe" and isinstance(body, dict) and isinstance(body.get("c"), str):
                channel, on = body["c"], body.get("s") is True
                allowed = authenticated or channel not in PRIVATE_CHANNELS
                await socket.send("subscribe-response|" + _compact({"c": channel, "s": on and allowed}))
                for event in self.ws_events(channel) if on and allowed else []:
                    await socket.send(event)
            else:
                await socket.send("error|" + _compact({"m": "unknown message"}))

    def ws_authentic(self, body: Any) -> bool:
        """``api-login`` fields checked as the REST headers are (``authentic``)."""
        fields = body if isinstance(body, dict) else {}
        pk, sign, ts, nonce = (fields.get(k) for k in ("pk", "s", "ts", "n"))
        if not (isinstance(pk, str) and isinstance(sign, str) and pk.isascii() and sign.isascii()):
            return False
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (ts, nonce)):
            return False
        headers = (("icx-api-key", pk), ("icx-sign", sign), ("icx-ts", str(ts)), ("icx-nonce", str(nonce)))
        return self.authentic(ReceivedRequest("GET", "/", headers, b""))

    def ws_events(self, channel: str) -> list[str]:
        if channel == "balance":
            return ["balance|" + _compact({"b": _WALLET})]
        if channel != "order":
            return []
        orders = [o for o in self.orders.values() if o["status"] == "OPEN"][-2:]
        if not orders:
            made_up = {
                "symbol": "BTCTRY",
                "type": "LIMIT",
                "side": "BUY",
                "price": "2000000",
                "quantity": "0.001",
            }
            orders = [self.new_order(made_up) for _ in range(2)]
        return ["order|" + _compact(order) for order in orders]


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _ws_message(data: str | bytes) -> tuple[str, Any]:
    text = data if isinstance(data, str) else data.decode("utf-8", "replace")
    kind, _, raw = text.partition("|")
    try:
        return kind, json.loads(raw)
    except ValueError:
        return kind, None


def create_app(keys: Mapping[str, Mapping[str, str]], clock: Clock | None = None) -> SimVenue:
    clock = clock or SystemClock()
    sim = IcrypexSim(keys, clock)
    return SimVenue("icrypex", sim.handle, clock, ws_handler=sim.handle_ws)


def _credentials() -> dict[str, str]:
    return {
        "api_key": secrets.token_urlsafe(22),
        "secret_key": base64.b64encode(secrets.token_bytes(32)).decode(),
    }


DEMO = Demo(
    "icrypex",
    "Icrypex",
    "/sapi/v1/wallet",
    "wallet",
    (
        "/sapi/v1/orders",
        {"symbol": "BTCTRY", "side": "BUY", "type": "LIMIT", "price": "2000000", "quantity": "0.001"},
    ),
    "order",
    ("/sapi/v1/orders",),
    _credentials,
)

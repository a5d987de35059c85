"""Simulated EVEDEX: SIWE login, JWT sessions and EIP-712 order signatures, verified strictly.

One ASGI app serves the auth API (``/auth/...``) and the trading API (``/api/...``), so one
server stands in for both origins (``auth-api.`` and ``trading-api.evedex.com``); it also
serves the Centrifugo stream endpoint (``proxy.sim.evedex_ws``). It does not
import ``proxy.signers``: it rebuilds each typed data with eth-account's
``encode_typed_data`` from the SDK's schemas (``exchange-crypto`` 1.0.24, domain version 2)
and recovers the signer with ``Account.recover_message``, so a signer mistake fails a test.

What it checks: a nonce it issued, used once within ``NONCE_TTL_S``; the SIWE message's
scheme, domain, uri, version, chain id and nonce, ``Issued At`` neither in the future nor
older than the nonce TTL, an unexpired ``Expiration Time`` if present, and that the signer
recovered from the message is the (EIP-55) wallet that asks and a known one. Access and
refresh tokens are HS256 JWTs (``exp``, ``typ``, ``jti``); refresh tokens rotate and are
single-use. Trading requests need an unexpired access token or a known ``x-api-key``; order
bodies need the body's ``chainId`` (where the type carries it), amounts with at most 8
decimals, and a signature by that same wallet.

Choices where the venue is undocumented (``../shared/venues.md`` section 2, open questions):
routing as NestJS on Express does by default (``proxy.sim.base.server_path``): on the
decoded path, case-insensitive, a trailing slash ignored, path values keeping their case;
401 ``{"message": "Unauthorized"}`` for any missing/expired/unknown credential on the
trading API and for a refused nonce, SIWE signature or refresh token; 400 ``{"message"}``
for malformed payloads and bad order signatures (OpenAPI ``ErrorResponse``); 404 for
unknown paths and orders; 409 for a duplicate order id.

Public market data (``proxy.sim.evedex_markets``): ``GET /api/market``, ``/api/coin``,
``/api/market/instrument[?fields=metrics]`` and ``/api/market/{instrument}/deep`` answer
without a session; a key or token sent anyway is verified.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Mapping
from datetime import datetime
from decimal import Context, Decimal
from typing import Any
from urllib.parse import parse_qs, unquote

from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data

from proxy.clock import Clock
from proxy.sim import evedex_markets as markets
from proxy.sim.base import Demo, ReceivedRequest, SimResponse, SimVenue, json_response, server_path
from proxy.sim.evedex_ws import EvedexStreams

NONCE_TTL_S = 300
CLOCK_SKEW_S = 60
SIWE_SCHEME, SIWE_DOMAIN, SIWE_URI = "https", "evedex.com", "https://evedex.com"
_SALT = "0x5792f7333c35db190e30acc144f049fd15b24f552c0010b8b3e06f9105c37c5a"
DOMAIN = {"name": "EVEDEX", "version": "2", "salt": _SALT}
DOMAIN_TYPES = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "salt", "type": "bytes32"},
]
SCHEMAS = {  # exchange-crypto EIP721Schemas, written as EIP-712 encodeType strings
    "limit": "New limit order(string id,string instrument,string side,uint8 leverage,uint96 quantity,"
    "uint80 limitPrice,uint256 chainId)",
    "market": "New market order(string id,string instrument,string side,string timeInForce,"
    "uint8 leverage,uint96 cashQuantity,uint256 chainId)",
    "stop-limit": "New stop-limit order(string id,string instrument,string side,uint8 leverage,"
    "uint96 quantity,uint80 limitPrice,uint80 stopPrice,uint256 chainId)",
    "close": "Position close order(string id,string instrument,uint8 leverage,uint96 quantity,"
    "uint256 chainId)",
    "tpsl": "New take-profit/stop-loss(string instrument,string type,string side,uint96 quantity,"
    "uint80 price)",
    "replace-limit": "Replace limit order(string orderId,uint96 quantity,uint80 limitPrice)",
    "replace-stop-limit": "Replace stop-limit order(string orderId,uint96 quantity,uint80 limitPrice,"
    "uint80 stopPrice)",
    "withdraw": "Withdraw(address recipient,uint256 amount)",
}
ORDER_ROUTES = [  # (method, path, schema); "mass-limit" signs each element as "limit"
    ("POST", r"/api/v2/order/(?P<kind>limit|market|stop-limit)", ""),
    ("POST", r"/api/v2/order/mass-limit/(?P<instrument>[^/]+)", "mass-limit"),
    ("POST", r"/api/v2/position/(?P<instrument>[^/]+)/close", "close"),
    ("POST", r"/api/tpsl/(?P<instrument>[^/]+)", "tpsl"),
    ("PUT", r"/api/order/(?P<orderId>[^/]+)/(?P<kind>limit|stop-limit)", "replace-"),
    ("POST", r"/api/transfer/pf/withdraw", "withdraw"),
]
_SIWE = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]*)://(?P<domain>[^\s/]+) wants you to sign in with your Ethereum account:\n"
    r"(?P<address>0x[0-9a-fA-F]{40})\n\n(?:[^\n]+\n\n)?URI: (?P<uri>[^\n]+)\nVersion: (?P<version>[^\n]+)\n"
    r"Chain ID: (?P<chain_id>[0-9]+)\nNonce: (?P<nonce>[A-Za-z0-9]{8,})\nIssued At: (?P<issued_at>[^\n]+)"
    r"(?:\nExpiration Time: (?P<expires>[^\n]+))?"
)
_AMOUNT = re.compile(r"[0-9]+(\.[0-9]{1,8})?")  # JavaScript \d is ASCII; Python's is not
_EXACT = Context(prec=100)
_POST_ONLY = frozenset({"limit", "replace-limit"})


class _Rejected(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.response = json_response(status, {"message": message})


def _unauthorized() -> _Rejected:
    return _Rejected(401, "Unauthorized")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _json(body: bytes) -> Any:
    # eth-account (py_ecc) lifts the recursion limit to 100000: deep nesting would crash the
    # C JSON scanner instead of raising, so bound it first.
    if body.count(b"[") + body.count(b"{") > 512:
        raise _Rejected(400, "Invalid JSON")
    try:
        return json.loads(body, parse_float=Decimal)
    except ValueError:
        raise _Rejected(400, "Invalid JSON") from None


def _timestamp(text: str) -> float:
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise _Rejected(401, "Invalid SIWE message") from None


class EvedexSim(SimVenue):
    """The app; ``logins``/``refreshes`` count successful sign-ups and token refreshes."""

    def __init__(
        self,
        keys: Mapping[str, Mapping[str, str]],
        clock: Clock | None,
        access_ttl_s: int,
        refresh_ttl_s: int,
        chain_id: int,
    ) -> None:
        super().__init__("evedex", self._handle, clock)
        self.ws_handler = EvedexStreams(self).handle  # Centrifugo streams: proxy.sim.evedex_ws
        self.chain_id, self.access_ttl_s, self.refresh_ttl_s = chain_id, access_ttl_s, refresh_ttl_s
        self.logins = self.refreshes = 0
        self.orders: dict[str, dict[str, Any]] = {}
        self._wallets: set[str] = set()
        self._api_keys: dict[str, str] = {}  # api key -> wallet address
        self._nonces: dict[str, float] = {}  # nonce -> issued at
        self._live_refresh: set[str] = set()  # jti of refresh tokens not yet used
        self._secret = secrets.token_bytes(32)
        for name, fields in keys.items():
            address = Account.from_key(fields["wallet_private_key"]).address
            self._wallets.add(address)
            for api_key in {fields.get("api_key"), None if name.startswith("0x") else name} - {None}:
                self._api_keys[str(api_key)] = address

    def _handle(self, request: ReceivedRequest) -> SimResponse:
        try:
            path = server_path(request.path, fold_case=False)  # path values keep their case
            if path.lower().startswith("/auth/"):
                return self._auth_api(request, path.lower())
            public = self._public(request, path) if request.method == "GET" else None
            if public is not None:
                # No session needed; one that is sent anyway is verified (stricter than the venue may be).
                if request.header("x-api-key") is not None or request.header("authorization") is not None:
                    self._authenticate(request)
                return public
            return self._trading_api(request, path, self._authenticate(request))
        except _Rejected as rejected:
            return rejected.response

    def _public(self, request: ReceivedRequest, path: str) -> SimResponse | None:
        """Public market data (``proxy.sim.evedex_markets``), or ``None`` for any other path."""
        if path == "/api/market":
            return json_response(200, markets.MARKET_INFO)
        if path == "/api/coin":
            return json_response(200, {"list": list(markets.COINS.values())})
        if path == "/api/market/instrument":
            metrics = parse_qs(request.query).get("fields") == ["metrics"]
            return json_response(200, markets.instruments(metrics))
        if found := re.fullmatch(r"/api/market/([^/]+)/deep", path):
            book = markets.depth(unquote(found[1]), round(self.clock.now() * 1000))
            missing = json_response(404, {"message": "Instrument not found"})
            return json_response(200, book) if book else missing
        return None

    # --- auth API --------------------------------------------------------------------------

    def _auth_api(self, request: ReceivedRequest, path: str) -> SimResponse:
        route = (request.method, path)
        if route == ("GET", "/auth/nonce"):
            nonce = secrets.token_hex(8)
            self._nonces[nonce] = self.clock.now()
            return json_response(200, {"nonce": nonce})
        if route == ("POST", "/auth/user/sign-up"):
            address = self._verify_sign_up(_json(request.body))
            self.logins += 1
            return json_response(200, {"user": {"wallet": address}, "token": self._issue(address)})
        if route == ("POST", "/auth/refresh"):
            claims = self._claims(request.header("authorization"), "refresh")
            if claims is None or claims["jti"] not in self._live_refresh:
                raise _unauthorized()
            self._live_refresh.discard(claims["jti"])  # rotation: each refresh token works once
            self.refreshes += 1
            return json_response(
                200, {"user": {"wallet": claims["sub"]}, "token": self._issue(claims["sub"])}
            )
        raise _Rejected(404, "Not Found")

    def _verify_sign_up(self, body: Any) -> str:
        fields = body if isinstance(body, dict) else {}
        values = [fields.get(k) for k in ("wallet", "message", "nonce", "signature")]
        if not all(isinstance(v, str) for v in values):
            raise _Rejected(400, "wallet, message, nonce and signature are required")
        wallet, message, nonce, signature = (str(v) for v in values)
        issued = self._nonces.pop(nonce, None)  # single use, whatever happens next
        if issued is None or self.clock.now() - issued > NONCE_TTL_S:
            raise _Rejected(401, "Invalid nonce")
        self._check_siwe(message, wallet, nonce)
        try:
            signer = Account.recover_message(encode_defunct(text=message), signature=signature)
        except Exception:  # eth-account raises several types for malformed signatures
            raise _Rejected(401, "Invalid signature") from None
        if signer != wallet or wallet not in self._wallets:
            raise _Rejected(401, "Invalid signature")
        return wallet

    def _check_siwe(self, message: str, wallet: str, nonce: str) -> None:
        parsed = _SIWE.fullmatch(message)
        now = self.clock.now()
        expected = (SIWE_SCHEME, SIWE_DOMAIN, wallet, SIWE_URI, "1", str(self.chain_id), nonce)
        fields = ("scheme", "domain", "address", "uri", "version", "chain_id", "nonce")
        if parsed is None or tuple(parsed[f] for f in fields) != expected:
            raise _Rejected(401, "Invalid SIWE message")
        issued_at = _timestamp(parsed["issued_at"])
        expired = parsed["expires"] is not None and _timestamp(parsed["expires"]) <= now
        if issued_at > now + CLOCK_SKEW_S or issued_at < now - NONCE_TTL_S or expired:
            raise _Rejected(401, "Invalid SIWE message")

    def _issue(self, address: str) -> dict[str, str]:
        refresh = self._jwt(address, "refresh", self.refresh_ttl_s)
        return {"accessToken": self._jwt(address, "access", self.access_ttl_s), "refreshToken": refresh}

    def _jwt(self, subject: str, kind: str, ttl_s: int) -> str:
        now, jti = int(self.clock.now()), secrets.token_hex(8)
        if kind == "refresh":
            self._live_refresh.add(jti)
        claims = {"sub": subject, "typ": kind, "iat": now, "exp": now + ttl_s, "jti": jti}
        signing_input = _b64(b'{"alg":"HS256","typ":"JWT"}') + "." + _b64(json.dumps(claims).encode())
        return (
            signing_input
            + "."
            + _b64(hmac.new(self._secret, signing_input.encode(), hashlib.sha256).digest())
        )

    def access_token_wallet(self, token: str) -> str | None:
        """The wallet of an unexpired access token this sim issued (stream subscriptions)."""
        if not token.isascii():
            return None
        claims = self._claims(f"Bearer {token}", "access")
        return None if claims is None else str(claims["sub"])

    def _claims(self, authorization: str | None, kind: str) -> dict[str, Any] | None:
        """Verified, unexpired claims of ``Bearer <jwt>`` of ``kind``, else ``None``."""
        scheme, _, token = (authorization or "").partition(" ")
        head, _, signature = token.rpartition(".")
        expected = _b64(hmac.new(self._secret, head.encode(), hashlib.sha256).digest())
        if scheme != "Bearer" or not head or not hmac.compare_digest(signature, expected):
            return None
        payload = head.partition(".")[2]
        claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return claims if claims["typ"] == kind and claims["exp"] > self.clock.now() else None

    # --- trading API -----------------------------------------------------------------------

    def _authenticate(self, request: ReceivedRequest) -> str:
        api_key = request.header("x-api-key")
        if api_key is not None:
            if api_key not in self._api_keys:
                raise _unauthorized()
            return self._api_keys[api_key]
        claims = self._claims(request.header("authorization"), "access")
        if claims is None:
            raise _unauthorized()
        return str(claims["sub"])

    def _trading_api(self, request: ReceivedRequest, path: str, wallet: str) -> SimResponse:
        method = request.method
        if (method, path.lower()) == ("GET", "/api/user/me"):
            return json_response(200, {"wallet": wallet})
        if (method, path.lower()) == ("GET", "/api/order/opened"):
            mine = [o for o in self.orders.values() if o["wallet"] == wallet and o["status"] == "NEW"]
            return json_response(200, {"list": mine, "count": len(mine)})
        if method == "DELETE" and (found := re.fullmatch(r"/api/order/([^/]+)", path, re.IGNORECASE)):
            self._own_order(found[1], wallet)["status"] = "CANCELLED"
            return json_response(200, {})
        for route_method, pattern, schema in ORDER_ROUTES:
            if method == route_method and (found := re.fullmatch(pattern, path, re.IGNORECASE)):
                values = {k: v for k, v in found.groupdict().items() if k != "kind"}
                return self._order_request(
                    schema + (found.groupdict().get("kind") or "").lower(), values, request, wallet
                )
        raise _Rejected(404, "Not Found")

    def _order_request(
        self, schema: str, path: dict[str, str], request: ReceivedRequest, wallet: str
    ) -> SimResponse:
        body = _json(request.body)
        if schema == "mass-limit":
            if not isinstance(body, list) or not 1 <= len(body) <= 20:
                raise _Rejected(400, "Expected 1 to 20 orders")
            verified = [self._verify("limit", order, path, wallet) for order in body]  # all or nothing
            return json_response(200, [self._create("limit", order) for order in verified])
        item = self._verify(schema, body, path, wallet)
        if schema.startswith("replace-"):
            self._own_order(path["orderId"], wallet).update({k: item[k] for k in item if k != "signature"})
            return json_response(200, {})
        if schema == "withdraw":
            return json_response(
                200, {"id": secrets.token_hex(8), "amount": item["amount"], "status": "PENDING"}
            )
        if schema == "tpsl":
            return json_response(200, {"id": secrets.token_hex(8), "type": item["type"], "status": "ACTIVE"})
        return json_response(200, self._create(schema, item))

    def _create(self, schema: str, item: dict[str, Any]) -> dict[str, Any]:
        if item["id"] in self.orders:
            raise _Rejected(409, "Order already exists")
        order = {k: v for k, v in item.items() if k != "signature"} | {"type": schema, "status": "NEW"}
        self.orders[item["id"]] = order
        return order

    def _own_order(self, order_id: str, wallet: str) -> dict[str, Any]:
        order = self.orders.get(order_id)
        if order is None or order["wallet"] != wallet or order["status"] != "NEW":
            raise _Rejected(404, "Order not found")
        return order

    def _verify(self, schema: str, item: Any, path: dict[str, str], wallet: str) -> dict[str, Any]:
        """Rebuild the typed data from ``item`` (+ path values) and check who signed it."""
        primary, _, rest = SCHEMAS[schema].partition("(")
        members = [member.split(" ") for member in rest.rstrip(")").split(",")]
        if not isinstance(item, dict) or not isinstance(item.get("signature"), str):
            raise _Rejected(400, "signature is required")
        if schema in _POST_ONLY and item.get("postOnly", "yes") != "yes":
            raise _Rejected(400, "Invalid postOnly")
        message = {name: self._typed(item, path, typ, name) for typ, name in members}
        full = {
            "types": {
                "EIP712Domain": DOMAIN_TYPES,
                primary: [{"name": name, "type": typ} for typ, name in members],
            },
            "primaryType": primary,
            "domain": DOMAIN | {"chainId": self.chain_id},
            "message": message,
        }
        try:
            signer = Account.recover_message(
                encode_typed_data(full_message=full), signature=item["signature"]
            )
        except Exception:  # malformed signature bytes
            raise _Rejected(400, "Invalid signature") from None
        if signer != wallet:
            raise _Rejected(400, "Invalid signature")
        return item | path | {"wallet": wallet}

    def _typed(self, item: dict[str, Any], path: dict[str, str], typ: str, name: str) -> Any:
        value = path.get(name, item.get(name))
        if name in path and name in item and item[name] != path[name]:
            raise _Rejected(400, f"{name} does not match the path")
        if name == "chainId":
            if value != str(self.chain_id):
                raise _Rejected(400, "Invalid chainId")
            return self.chain_id
        if typ in ("string", "address"):
            if not isinstance(value, str) or not value:
                raise _Rejected(400, f"{name} must be a non-empty string")
            return value
        if typ == "uint8":
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 256:
                raise _Rejected(400, f"{name} must be an integer")
            return value
        if not isinstance(value, str) or not _AMOUNT.fullmatch(value):  # the SDK sends 8-dp strings
            raise _Rejected(400, f"{name} must be a decimal string with at most 8 decimals")
        return int(Decimal(value).scaleb(8, context=_EXACT))  # out-of-range fails the encoding


def create_app(
    keys: Mapping[str, Mapping[str, str]],
    clock: Clock | None = None,
    access_ttl_s: int = 300,
    refresh_ttl_s: int = 3600,
    *,
    chain_id: int = 161803,
) -> EvedexSim:
    """``keys`` maps an api key or wallet address to fields with ``wallet_private_key``."""
    return EvedexSim(keys, clock, access_ttl_s, refresh_ttl_s, chain_id)


def _credentials() -> dict[str, str]:
    return {"wallet_private_key": "0x" + secrets.token_hex(32), "api_key": "evedex-" + secrets.token_hex(12)}


# EVEDEX order ids are unique per order (SDK format: days since 2025-07-24 ':' 26 hex):
# ``proxy.sim.samples.evedex_order`` makes a fresh one.
DEMO = Demo(
    "evedex",
    "EVEDEX",
    "/api/user/me",
    "after SIWE login, JWT",
    (
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
    "limit order, EIP-712 signed",
    (
        "/api/v2/order/*",
        "/api/v2/order/mass-limit/*",
        "/api/order/*",
        "/api/order/*/*",
        "/api/v2/position/*/close",
        "/api/tpsl/*",
    ),
    _credentials,
)

"""Simulated INVEX: verifies ``expire_at`` + RSA-PSS ``signature`` the way the venue does.

The venue is a FastAPI app (``swagger/swagger.yaml`` in ``Invex-API-docs@6597c42``), so the
sim rebuilds ``params`` as a Python server would -- ``dict(parse_qsl(query))`` for
GET/DELETE, the decoded JSON object for POST -- pops ``signature`` and verifies RSA-PSS
(MGF1-SHA256, any salt length, i.e. ``PSS.AUTO``) over ``json.dumps(params)``. It does not
import ``proxy.signers``: it stands in for the venue and must catch the signer's mistakes.

Choices where the venue is undocumented (``../shared/venues.md`` section 1, open questions):

* Auth failures answer 401 ``{"detail": "..."}`` (FastAPI's ``HTTPException`` shape):
  missing or unknown ``X-API-Key-Invex``, bad signature, ``expire_at`` in the past or more
  than ``max_ahead_s`` ahead. Missing ``expire_at``/``signature`` or unparsable values
  answer 422 in FastAPI's ``HTTPValidationError`` shape.
* A naive ``expire_at`` is read in ``expire_at_timezone`` (default ``Asia/Tehran``, the
  signer's default; see ``proxy.signers.invex`` for why).
* Routing is Starlette's: on the percent-decoded path (``scope["path"]``), case-sensitive;
  a path that only differs from a route by its trailing slash answers 307 to that route
  (``redirect_slashes``), which executes nothing.
* Public endpoints (``/markets``, ``/market-depth``; no security in the swagger) answer
  without credentials but, when an API key header is present, verify it anyway: stricter
  than the venue may be, so a signer bug on them still fails a test.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_der_private_key

from proxy.clock import Clock
from proxy.sim.base import Demo, ReceivedRequest, SimResponse, SimVenue, json_response, server_path

Params = dict[str, Any]
Endpoint = Callable[[Params], Any]

API_KEY_HEADER = "x-api-key-invex"
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
_ORDER_ID = "0b7c1c52-8a1e-4c1e-9a55-2f1d3c4b5a69"


class _Rejected(Exception):
    def __init__(self, response: SimResponse) -> None:
        self.response = response


def _unauthorized(detail: str) -> _Rejected:
    return _Rejected(json_response(401, {"detail": detail}))


def _invalid(loc: list[str | int], msg: str, type_: str) -> _Rejected:
    return _Rejected(json_response(422, {"detail": [{"loc": loc, "msg": msg, "type": type_}]}))


# --- success payloads (shapes from the swagger's *OutputDTOV1 schemas) ---------------------


def _order(params: Params) -> dict[str, Any]:
    return {
        "order_id": params.get("order_id") or _ORDER_ID,
        "symbol": "TRX_USDT",
        "status": "NOT_FILLED",
        "type": "LIMIT",
        "side": "BUYER",
        "price": "0.1",
        "quantity": "10",
        "deal_quantity": "0",
        "time_in_force": "GTC",
        "client_order_id": params.get("client_order_id"),
        "cancel_order_id": None,
        "created_at": "2024-06-18T11:58:00",
        "updated_at": "2024-06-18T11:58:00",
    }


def _derived_id(params: Params) -> str:
    # Deterministic per request, so tests can compare answers without a random source.
    return str(uuid.uuid5(uuid.NAMESPACE_URL, str(params.get("signature", ""))))


def _markets(params: Params) -> dict[str, Any]:
    rule = {"tick_size": "0.0001", "amount_step_size": "1", "minimum_limit_order_value": "5"}
    return {
        "rules": [{"symbol": s, **rule, "maximum_limit_order_value": None} for s in ("TRX_USDT", "BTC_USDT")]
    }


def _depth(params: Params) -> dict[str, Any]:
    return {
        "ask_orders": [{"depth": 1, "price": "0.1001", "quantity": "500"}],
        "bid_orders": [{"depth": 1, "price": "0.0999", "quantity": "700"}],
    }


def _account(params: Params) -> dict[str, Any]:
    return {"currency": params["currency"], "available": "1000", "blocked": "0", "total": "1000"}


@dataclass(frozen=True)
class _Route:
    endpoint: Endpoint
    public: bool = False
    required: tuple[str, ...] = ()


ROUTES: dict[tuple[str, str], _Route] = {
    ("GET", "/trading/v1/orders"): _Route(lambda p: {"orders": [_order(p)], "total_count": 1}),
    ("POST", "/trading/v1/orders"): _Route(lambda p: {"order_id": _derived_id(p)}),
    ("DELETE", "/trading/v1/orders"): _Route(lambda p: {"cancel_order_id": _derived_id(p)}),
    ("GET", "/trading/v1/order"): _Route(_order),
    ("GET", "/trading/v1/accounts"): _Route(_account, required=("currency",)),
    ("POST", "/trading/v1/crypto-withdrawals"): _Route(lambda p: {"crypto_withdraw_uuid": _derived_id(p)}),
    ("GET", "/trading/v1/markets"): _Route(_markets, public=True),
    ("GET", "/trading/v1/market-depth"): _Route(_depth, public=True, required=("symbol", "depth")),
}
_PATHS = frozenset(path for _, path in ROUTES)


# --- request reading and verification ------------------------------------------------------


def _read_params(request: ReceivedRequest) -> tuple[str, Params]:
    """``(location, params)`` as the venue rebuilds them; 422 on a body that is no object."""
    if request.method != "POST":
        return "query", dict(parse_qsl(request.query, keep_blank_values=True))
    try:
        obj = json.loads(request.body)
    except ValueError:
        raise _invalid(["body", 0], "JSON decode error", "json_invalid") from None
    if not isinstance(obj, dict):
        msg = "Input should be a valid dictionary or object to extract fields from"
        raise _invalid(["body"], msg, "model_attributes_type")
    return "body", obj


def _require(where: str, params: Params, names: tuple[str, ...]) -> None:
    for name in names:
        if params.get(name) is None:
            raise _invalid([where, name], "Field required", "missing")


def verify_signature(public_key: RSAPublicKey, params: Params, signature_hex: str) -> bool:
    """The venue's check: PSS over ``json.dumps`` of every param except ``signature``."""
    message = json.dumps({k: v for k, v in params.items() if k != "signature"})
    try:
        public_key.verify(bytes.fromhex(signature_hex), message.encode(), _PSS, hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True)
class _Verifier:
    public_keys: Mapping[str, RSAPublicKey]
    tz: tzinfo
    max_ahead: timedelta

    def check(self, request: ReceivedRequest, where: str, params: Params, now: datetime) -> None:
        api_key = request.header(API_KEY_HEADER)
        if not api_key:
            raise _unauthorized("Not authenticated")
        _require(where, params, ("expire_at", "signature"))
        public_key = self.public_keys.get(api_key)
        if public_key is None:
            raise _unauthorized("Invalid API key")
        expire_at = self._expire_at(where, params["expire_at"])
        if not isinstance(params["signature"], str) or not verify_signature(
            public_key, params, params["signature"]
        ):
            raise _unauthorized("Invalid signature")
        if expire_at < now:
            raise _unauthorized("Request expired")
        if expire_at > now + self.max_ahead:
            raise _unauthorized("expire_at is too far in the future")

    def _expire_at(self, where: str, value: Any) -> datetime:
        try:
            moment = datetime.fromisoformat(value)
        except (TypeError, ValueError):
            raise _invalid(
                [where, "expire_at"], "Input should be a valid datetime", "datetime_parsing"
            ) from None
        # The docs' clients send naive local time; read it in the configured zone.
        return moment if moment.tzinfo else moment.replace(tzinfo=self.tz)


def _dispatch(verifier: _Verifier, clock: Clock, request: ReceivedRequest) -> SimResponse:
    path = server_path(request.path, fold_case=False, trailing_slash=False)
    route = ROUTES.get((request.method, path))
    if route is None:
        if path in _PATHS:
            return json_response(405, {"detail": "Method Not Allowed"})
        other = path[:-1] if path.endswith("/") else path + "/"
        if other in _PATHS:  # Starlette's redirect_slashes
            location = other + ("?" + request.query if request.query else "")
            return SimResponse(307, b"", (("location", location),))
        return json_response(404, {"detail": "Not Found"})
    try:
        where, params = _read_params(request)
        if not route.public or request.header(API_KEY_HEADER) is not None:
            verifier.check(request, where, params, datetime.fromtimestamp(clock.now(), verifier.tz))
        _require(where, params, route.required)
    except _Rejected as rejected:
        return rejected.response
    return json_response(200, route.endpoint(params))


def _public_key(private_key_hex: str) -> RSAPublicKey:
    key = load_der_private_key(bytes.fromhex(private_key_hex), password=None)
    if not isinstance(key, RSAPrivateKey):
        raise ValueError("invex sim: private_key is not an RSA key")
    return key.public_key()


def create_app(
    keys: Mapping[str, Mapping[str, str]],
    clock: Clock | None = None,
    *,
    expire_at_timezone: str = "Asia/Tehran",
    max_ahead_s: int = 3600,
) -> SimVenue:
    """``keys``: api_key -> {"api_key", "private_key"}; the public key is derived here."""
    verifier = _Verifier(
        public_keys={api_key: _public_key(fields["private_key"]) for api_key, fields in keys.items()},
        tz=ZoneInfo(expire_at_timezone),
        max_ahead=timedelta(seconds=max_ahead_s),
    )
    venue = SimVenue("invex", lambda request: _dispatch(verifier, venue.clock, request), clock)
    return venue


def _credentials() -> dict[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return {"api_key": "invex-" + secrets.token_hex(12), "private_key": der.hex()}


DEMO = Demo(
    "invex",
    "Invex",
    "/trading/v1/accounts?currency=USDT",
    "accounts, RSA-PSS",
    (
        "/trading/v1/orders",
        {"symbol": "TRX_USDT", "side": "BUYER", "type": "LIMIT", "quantity": "10", "price": "0.1"},
    ),
    "order, RSA-PSS",
    ("/trading/v1/orders",),
    _credentials,
)

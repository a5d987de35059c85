"""Simulated HAQQEX backend: verifies ``x-api-sign`` the way a Node server would.

Verification is reimplemented here, independent of ``proxy.signers.haqqex`` and
``proxy.jsonjs`` (the sim stands in for the venue): the server parses the body
(``JSON.parse``; an empty body is ``{}``), re-serialises it with ``JSON.stringify`` and
checks ``x-api-sign == hex(HMAC_SHA256(secret, x-api-timestamp + "." + that string))``
(``../shared/venues.md`` section 4). The JS emulation below deliberately uses a different
algorithm from ``proxy.jsonjs`` (a ``Decimal`` search over both rounding neighbours instead
of ``repr``), so a bug in one shows up as a signature mismatch against the other.

Everything else about the venue is undocumented; this sim's choices:

* **Clock window**: ``|now - x-api-timestamp| <= 30000`` ms (30 s), early or late.
* **Error envelope**: NestJS style (the docs' samples are TypeScript/Node):
  401 ``{"statusCode": 401, "message": "<reason>", "error": "Unauthorized"}`` for a
  missing/unknown key, a bad or stale timestamp, or a wrong signature ("Invalid signature");
  400 ``{"statusCode": 400, "message": ..., "error": "Bad Request"}`` when the body is not a
  JSON object/array (Express's strict JSON parser runs before any guard, so 400 wins).
* **Endpoints**: none are documented; every authenticated path answers 200
  ``{"data": {"method": ..., "path": ..., "params": <parsed body>}}``.
* **Query strings** are not part of the signed string (the docs only sign ``data``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import secrets
import uuid
from collections.abc import Mapping
from decimal import ROUND_CEILING, ROUND_FLOOR, Context, Decimal
from fractions import Fraction
from typing import Any

from proxy.clock import Clock, SystemClock
from proxy.sim.base import Demo, ReceivedRequest, SimResponse, SimVenue, json_response

WINDOW_MS = 30_000
_DIGITS = re.compile(r"[0-9]{1,19}")
_INDEX_KEY = re.compile(r"0|[1-9][0-9]*")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


class _NotJSON(ValueError):
    pass


def _reject(name: str) -> Any:
    raise _NotJSON(name)


def js_parse(body: bytes) -> Any:
    """``JSON.parse``: every number becomes a double, like JS."""
    if not body:
        return {}
    return json.loads(body.decode("utf-8"), parse_int=float, parse_float=float, parse_constant=_reject)


def js_stringify(value: Any) -> str:
    if isinstance(value, dict):
        keys = sorted((k for k in value if _is_index(k)), key=int) + [k for k in value if not _is_index(k)]
        return "{" + ",".join(f"{_js_string(k)}:{js_stringify(value[k])}" for k in keys) + "}"
    if isinstance(value, list):
        return "[" + ",".join(js_stringify(item) for item in value) + "]"
    if isinstance(value, float):
        return _js_number(value)
    if isinstance(value, str):
        return _js_string(value)
    return json.dumps(value)  # true / false / null


def _is_index(key: str) -> bool:
    return bool(_INDEX_KEY.fullmatch(key)) and int(key) < 2**32 - 1


def _js_string(text: str) -> str:
    # json.dumps escapes what JS escapes, except lone surrogates, which JS writes as \udxxx.
    dumped = json.dumps(text, ensure_ascii=False)
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", dumped)


def _js_number(x: float) -> str:
    if x == 0 or not math.isfinite(x):
        return "0" if x == 0 else "null"
    shortest = _shortest_decimal(abs(x))
    sign = "-" if x < 0 else ""
    if 1e-6 <= abs(x) < 1e21:  # Number::toString prints these without an exponent
        return sign + format(shortest, "f")
    digits = "".join(map(str, shortest.as_tuple().digits))
    exponent = shortest.adjusted()
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{sign}{mantissa}e{'+' if exponent >= 0 else '-'}{abs(exponent)}"


def _shortest_decimal(x: float) -> Decimal:
    """Fewest significant digits that read back as x; the closest such (even on a tie)."""
    exact = Decimal(x)
    for precision in range(1, 18):
        # Both neighbours: at a power-of-two boundary only the one away from the tie reads back.
        around = (Context(prec=precision, rounding=mode).plus(exact) for mode in (ROUND_FLOOR, ROUND_CEILING))
        hits = [candidate for candidate in around if float(candidate) == x]
        if hits:
            best = min(hits, key=lambda c: (abs(Fraction(c) - Fraction(x)), c.as_tuple().digits[-1] % 2))
            return best.normalize()
    raise AssertionError("17 significant digits always read back")


def expected_sign(secret: str, timestamp: str, params: str) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.{params}".encode(), hashlib.sha256).hexdigest()


def unauthorized(message: str) -> SimResponse:
    return json_response(401, {"statusCode": 401, "message": message, "error": "Unauthorized"})


def bad_request(message: str) -> SimResponse:
    return json_response(400, {"statusCode": 400, "message": message, "error": "Bad Request"})


class HaqqexSim:
    def __init__(self, keys: Mapping[str, Mapping[str, str]], clock: Clock) -> None:
        self.keys = keys
        self.clock = clock

    def handle(self, request: ReceivedRequest) -> SimResponse:
        try:
            data = js_parse(request.body)
        except (ValueError, RecursionError):  # ValueError covers UnicodeDecodeError and _NotJSON
            return bad_request("Unexpected token in JSON")
        if not isinstance(data, dict | list):
            return bad_request("JSON body must be an object or an array")
        reason = self.auth_failure(request, js_stringify(data))
        if reason:
            return unauthorized(reason)
        return json_response(200, {"data": {"method": request.method, "path": request.path, "params": data}})

    def auth_failure(self, request: ReceivedRequest, params: str) -> str:
        """'' when authentic, else the 401 message."""
        account = self.keys.get(request.header("x-api-key") or "")
        if account is None:
            return "Invalid api key"
        timestamp = request.header("x-api-timestamp") or ""
        if not _DIGITS.fullmatch(timestamp):
            return "Invalid timestamp"
        if abs(round(self.clock.now() * 1000) - int(timestamp)) > WINDOW_MS:
            return "Request expired"
        expected = expected_sign(account["secret_key"], timestamp, params)
        sign = (request.header("x-api-sign") or "").encode("latin-1")
        return "" if hmac.compare_digest(expected.encode(), sign) else "Invalid signature"


def create_app(keys: Mapping[str, Mapping[str, str]], clock: Clock | None = None) -> SimVenue:
    clock = clock or SystemClock()
    return SimVenue("haqqex", HaqqexSim(keys, clock).handle, clock)


def _credentials() -> dict[str, str]:
    return {"api_key": str(uuid.uuid4()), "secret_key": secrets.token_urlsafe(24)[:32]}


DEMO = Demo(
    "haqqex",
    "Haqqex",
    "/api/v1/balances",
    "balances",
    (
        "/api/v1/orders",
        {"pair": "BTC_USDT", "side": "buy", "type": "limit", "price": "65000.5", "amount": "0.001"},
    ),
    "order",
    ("/api/v1/orders", "/api/v1/order"),
    _credentials,
)

"""EVEDEX order signatures: the pure EIP-712 half of the ``evedex`` scheme.

Mirrors ``@evedex/exchange-crypto`` 1.0.24 (``src/index.ts``, ``src/utils/crypto.ts``,
``src/utils/numeric.ts``): each signed endpoint has a primary type whose fields are built
from the JSON body, amounts are normalised the SDK's way, and the body that is forwarded is
the SDK's: normalised fields, ``chainId`` (string, for the types that carry it),
``postOnly: "yes"`` (limit orders, when set) and the 65-byte ``signature`` last.
Pinned byte for byte to ``../shared/vectors/evedex.json`` (ethers 6 + eth-account oracles).

Why EIP-712 is hashed here rather than with ``eth_account.encode_typed_data``: the types
are flat (string, uintN, address), so ``hashStruct`` is a few lines over precomputed type
hashes, and signing the digest with ``coincurve`` directly makes an order ~60 µs instead of
~300 µs through eth-account (PERFORMANCE.md: signing is this venue's per-request cost). The
vectors and the simulated venue (which uses eth-account) keep this honest.

Choices where the sources are silent:

* **Numbers** are read from JSON strings or JSON numbers (parsed as ``Decimal``, never float)
  in Big.js syntax; negative, non-finite or over-wide values are refused with ``BadRequest``
  naming the field. The body carries the rounded value as a plain decimal string: Big.js
  would write values below 1e-6 in exponent form (``"1e-7"``); we never emit exponents.
* **Withdraw amounts round down**: ``signTradingBalanceWithdraw`` uses ``Big.roundDown`` in
  ``exchange-crypto@0cab4cd`` and ``toMatcherNumber`` (half-up) in older versions; the
  vector (``12.3456789012``) cannot tell them apart. Down never withdraws more than asked.
* **leverage** must be a JSON integer 0..255 (the SDK types it ``number``; uint8).
* **Values taken from the path** (``{orderId}``, ``{instrument}``) are signed; a body field
  of the same name must agree with the path, and appears in the forwarded body only if the
  client sent it (exchange-api's ``replaceLimitOrder`` sends ``quantity``, ``limitPrice``
  and ``signature`` only; the vector's SDK payload also has ``orderId`` and ``postOnly``).
* **Other client fields** (``tpsl``, ``order``, ``timeInForce`` on a limit order...) are
  unsigned in the SDK too and pass through in the client's order, before ``chainId``.
  A client's ``signature`` and ``chainId`` are always replaced.
* **postOnly** (limit and replace-limit): ``true``/``"yes"`` becomes ``"yes"``; ``false``,
  ``null`` or absent drop it (SDK: ``...(order.postOnly && {postOnly: "yes"})``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Context, Decimal
from functools import lru_cache
from typing import Any

import coincurve
from eth_hash.auto import keccak
from eth_utils.address import is_checksum_address

from proxy.errors import BadRequest

DOMAIN_NAME, DOMAIN_VERSION = "EVEDEX", "2"
DOMAIN_SALT = bytes.fromhex("5792f7333c35db190e30acc144f049fd15b24f552c0010b8b3e06f9105c37c5a")
MATCHER_PRECISION = 8  # exchange-crypto src/utils/constants.ts
MASS_LIMIT_MAX = 20  # venues.md section 2: mass-limit takes an array, max 20
MAX_CONTAINERS = 512  # far above any order body (20 orders with TP/SL lists), far below a crash
_DOMAIN_TYPE_HASH = keccak(b"EIP712Domain(string name,string version,uint256 chainId,bytes32 salt)")
# big.js NUMERIC, ASCII digits only: Python's \d (and Decimal) also take "\u0661" and "\uff11\uff10\uff10"
_BIG_JS_NUMBER = re.compile(r"-?([0-9]+(\.[0-9]*)?|\.[0-9]+)(e[+-]?[0-9]+)?", re.IGNORECASE)
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_PROXY_OWNED = frozenset({"signature", "chainId"})
_EXACT = Context(prec=100)  # > 81 integer digits + 8 dp: scaling and rounding never lose digits

# Field kinds: what the body holds and how it becomes a typed-data value.
STRING, ADDRESS, INTEGER, AMOUNT, CHAIN = "string", "address", "integer", "amount", "chain"


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    sol_type: str  # the EIP-712 type, e.g. "uint96"
    kind: str


@dataclass(frozen=True, slots=True)
class OrderType:
    """One signed payload type (exchange-crypto ``EIP721Schemas``), from its EIP-712 type string."""

    encoded_type: str  # EIP-712 ``encodeType``: "Name(type1 name1,type2 name2,...)"
    fields: tuple[Field, ...]
    type_hash: bytes
    chain_in_body: bool = False  # the SDK adds ``chainId`` (string) to the body
    post_only: bool = False  # the SDK turns ``postOnly: true`` into ``"yes"``
    rounding: str = ROUND_HALF_UP

    @classmethod
    def parse(
        cls,
        encoded_type: str,
        *,
        chain_in_body: bool = False,
        post_only: bool = False,
        rounding: str = ROUND_HALF_UP,
    ) -> OrderType:
        members = encoded_type[encoded_type.index("(") + 1 : -1].split(",")
        fields = tuple(_field(*member.split(" ")[::-1]) for member in members)
        type_hash = keccak(encoded_type.encode())
        return cls(encoded_type, fields, type_hash, chain_in_body, post_only, rounding)

    @property
    def primary_type(self) -> str:
        return self.encoded_type.partition("(")[0]


def _field(name: str, sol_type: str) -> Field:
    kind = {"string": STRING, "address": ADDRESS, "uint8": INTEGER}.get(sol_type, AMOUNT)
    return Field(name, sol_type, CHAIN if name == "chainId" else kind)


LIMIT = OrderType.parse(
    "New limit order(string id,string instrument,string side,uint8 leverage,uint96 quantity,"
    "uint80 limitPrice,uint256 chainId)",
    chain_in_body=True,
    post_only=True,
)
MARKET = OrderType.parse(
    "New market order(string id,string instrument,string side,string timeInForce,uint8 leverage,"
    "uint96 cashQuantity,uint256 chainId)",
    chain_in_body=True,
)
STOP_LIMIT = OrderType.parse(
    "New stop-limit order(string id,string instrument,string side,uint8 leverage,uint96 quantity,"
    "uint80 limitPrice,uint80 stopPrice,uint256 chainId)",
    chain_in_body=True,
)
POSITION_CLOSE = OrderType.parse(
    "Position close order(string id,string instrument,uint8 leverage,uint96 quantity,uint256 chainId)",
    chain_in_body=True,
)
TPSL = OrderType.parse(
    "New take-profit/stop-loss(string instrument,string type,string side,uint96 quantity,uint80 price)"
)
REPLACE_LIMIT = OrderType.parse(
    "Replace limit order(string orderId,uint96 quantity,uint80 limitPrice)", post_only=True
)
REPLACE_STOP_LIMIT = OrderType.parse(
    "Replace stop-limit order(string orderId,uint96 quantity,uint80 limitPrice,uint80 stopPrice)"
)
WITHDRAW = OrderType.parse("Withdraw(address recipient,uint256 amount)", rounding=ROUND_DOWN)


@lru_cache(maxsize=8)
def domain_separator(chain_id: int) -> bytes:
    name, version = keccak(DOMAIN_NAME.encode()), keccak(DOMAIN_VERSION.encode())
    return keccak(_DOMAIN_TYPE_HASH + name + version + chain_id.to_bytes(32, "big") + DOMAIN_SALT)


# -- numbers ---------------------------------------------------------------------------


def to_matcher_number(value: Any, field: str = "value", rounding: str = ROUND_HALF_UP) -> str:
    """exchange-crypto ``toMatcherNumber``: 8 dp half-up, as a plain decimal string."""
    return _units_to_text(to_eth_number(value, field, 256, rounding))


def to_eth_number(value: Any, field: str = "value", bits: int = 256, rounding: str = ROUND_HALF_UP) -> int:
    """exchange-crypto ``toEthNumber(toMatcherNumber(x))``: the rounded value x 1e8, an int."""
    number = _decimal(value, field)
    if number.adjusted() > 80:  # far beyond uint256 / 1e8: refuse before quantize does the work
        raise BadRequest(f"evedex: field {field!r} is too large for uint{bits}")
    scaled = number.scaleb(MATCHER_PRECISION, context=_EXACT)
    units = int(scaled.quantize(Decimal(1), rounding=rounding, context=_EXACT))
    if units >= 1 << bits:
        raise BadRequest(f"evedex: field {field!r} is too large for uint{bits}")
    return units


def _decimal(value: Any, field: str) -> Decimal:
    if not _is_number(value):
        raise BadRequest(f"evedex: field {field!r} must be a decimal number")
    number = Decimal(value)
    if number.is_signed():
        raise BadRequest(f"evedex: field {field!r} must not be negative")
    return number


def _is_number(value: Any) -> bool:
    # A JSON number (int or Decimal, never bool) or a string in big.js syntax.
    if isinstance(value, str):
        return _BIG_JS_NUMBER.fullmatch(value) is not None
    return isinstance(value, Decimal | int) and not isinstance(value, bool)


def _units_to_text(units: int) -> str:
    whole, fraction = divmod(units, 10**MATCHER_PRECISION)
    if not fraction:
        return str(whole)
    return f"{whole}.{fraction:0{MATCHER_PRECISION}d}".rstrip("0")


# -- building and signing one payload ----------------------------------------------------


def build_payload(
    order_type: OrderType, payload: Any, path_values: dict[str, str], chain_id: int, where: str = ""
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return ``(typed-data message, body without signature)`` for one payload.

    ``where`` prefixes field names in error messages (``orders[3].``).
    """
    if not isinstance(payload, dict):
        raise BadRequest(f"evedex: {where.rstrip('.') or 'body'} must be a JSON object")
    message: dict[str, Any] = {}
    body: dict[str, Any] = {}
    for field in order_type.fields:
        if field.kind == CHAIN:
            message[field.name] = chain_id
            continue
        raw = _field_value(field.name, payload, path_values, where)
        message[field.name], shown = _normalise(field, raw, order_type.rounding, where)
        if field.name in payload:
            body[field.name] = shown
    signed = {field.name for field in order_type.fields}
    for key, value in payload.items():
        if key not in signed and key not in _PROXY_OWNED and not (order_type.post_only and key == "postOnly"):
            body[key] = value
    if order_type.chain_in_body:
        body["chainId"] = str(chain_id)
    if order_type.post_only and _post_only(payload.get("postOnly"), where):
        body["postOnly"] = "yes"
    return message, body


def _field_value(name: str, payload: dict[str, Any], path_values: dict[str, str], where: str) -> Any:
    if name in path_values:
        if name in payload and payload[name] != path_values[name]:
            raise BadRequest(f"evedex: field {where + name!r} does not match the request path")
        return path_values[name]
    if payload.get(name) is None:
        raise BadRequest(f"evedex: field {where + name!r} is missing")
    return payload[name]


def _normalise(field: Field, raw: Any, rounding: str, where: str) -> tuple[Any, Any]:
    label = f"{where}{field.name}"
    if field.kind == AMOUNT:
        units = to_eth_number(raw, label, int(field.sol_type[4:]), rounding)
        return units, _units_to_text(units)
    if field.kind == INTEGER:
        if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw < 256:
            raise BadRequest(f"evedex: field {label!r} must be an integer from 0 to 255")
        return raw, raw
    if not isinstance(raw, str) or not raw:
        raise BadRequest(f"evedex: field {label!r} must be a non-empty string")
    if field.kind == ADDRESS and not _is_address(raw):
        raise BadRequest(f"evedex: field {label!r} must be a 0x-prefixed (checksummed) address")
    return raw, raw


def _is_address(value: str) -> bool:
    # ethers.isAddress: 40 hex digits; mixed case only with a valid EIP-55 checksum.
    if not _ADDRESS.fullmatch(value):
        return False
    digits = value[2:]
    return digits in (digits.lower(), digits.upper()) or is_checksum_address(value)


def _post_only(value: Any, where: str) -> bool:
    if value is True or value == "yes":
        return True
    if value is False or value is None:
        return False
    raise BadRequest(f"evedex: field {where + 'postOnly'!r} must be a boolean")


def typed_data_digest(order_type: OrderType, message: dict[str, Any], chain_id: int) -> bytes:
    """EIP-712 ``keccak256(0x1901 || domainSeparator || hashStruct(message))``."""
    encoded = [order_type.type_hash]
    for field in order_type.fields:
        value = message[field.name]
        if field.sol_type == "string":
            encoded.append(keccak(value.encode()))
        elif field.sol_type == "address":
            encoded.append(bytes(12) + bytes.fromhex(value[2:]))
        else:
            encoded.append(value.to_bytes(32, "big"))
    return keccak(b"\x19\x01" + domain_separator(chain_id) + keccak(b"".join(encoded)))


def sign_digest(key: coincurve.PrivateKey, digest: bytes) -> str:
    """65-byte r||s||v with v = 27/28, 0x-prefixed lowercase hex (what ethers returns)."""
    raw = key.sign_recoverable(digest, hasher=None)
    return "0x" + raw[:64].hex() + format(raw[64] + 27, "02x")


def sign_payload(
    order_type: OrderType,
    payload: Any,
    path_values: dict[str, str],
    chain_id: int,
    key: coincurve.PrivateKey,
    where: str = "",
) -> dict[str, Any]:
    """The body the SDK would send for ``payload``: normalised fields + ``signature``."""
    message, body = build_payload(order_type, payload, path_values, chain_id, where)
    body["signature"] = sign_digest(key, typed_data_digest(order_type, message, chain_id))
    return body


# -- JSON in and out ---------------------------------------------------------------------


def parse_json(body: bytes) -> Any:
    """JSON with numbers as ``Decimal``/``int`` (never float); NaN/Infinity refused.

    Nesting is bounded *before* parsing: py_ecc (imported by eth-account) raises the
    interpreter's recursion limit to 100000, and with that the C JSON scanner overflows the
    C stack on ``[[[[...`` instead of raising ``RecursionError`` -- a crash, not a 400.
    """
    if body.count(b"[") + body.count(b"{") > MAX_CONTAINERS:
        raise BadRequest(f"evedex: body has more than {MAX_CONTAINERS} JSON objects and arrays")
    try:
        return json.loads(body, parse_float=Decimal, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise BadRequest("evedex: body is not valid JSON") from None


def _no_constant(name: str) -> Any:
    raise ValueError(name)


def dump_json(value: Any) -> bytes:
    """Compact JSON like ``JSON.stringify``; client numbers keep their decimal digits."""
    return _dump(value).encode()


def _dump(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ",".join(f"{_dump(str(k))}:{_dump(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_dump(item) for item in value) + "]"
    if isinstance(value, Decimal):
        return str(value)  # came from a JSON number, so it is finite JSON number text
    return json.dumps(value, ensure_ascii=False)

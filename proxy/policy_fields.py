"""Field constraints of allow rules: allowed values, numeric bounds and a notional cap.

Pure and exact: numbers are ``Decimal`` from the request's own text (JSON numbers via
``parse_float``/``parse_int``, venue-style decimal strings such as ``"0.001"``), never
floats, and the notional product is computed in a context that refuses to round. A
value that cannot be checked -- missing, not a number, ambiguous, an unparseable body --
is a refusal with a reason (``FieldProblem``), never an exception that escapes.

Where a field is looked up: the JSON body (an object, or each object of a non-empty array:
batch order endpoints), otherwise the query string. A field given in both, or twice in the
query, is ambiguous (which one the venue reads is its business) and refused; so is a JSON
object with a duplicate key. Only top-level fields are checked.

The notional cap needs the venue's names for quantity and price on the endpoint. They are
data (``proxy/order_fields.yaml``, loaded by ``proxy.policy_loader``), looked up by the
venue's *scheme*, so a rule says ``notional: {max: "50000"}`` without knowing them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import (
    Context,
    Decimal,
    Inexact,
    InvalidOperation,
    Overflow,
    Rounded,
    Underflow,
)
from typing import Any
from urllib.parse import parse_qsl

from proxy import jsonjs

# Venues send amounts as strings ("0.001"); accept exactly the plain decimal form. Signs,
# exponents, spaces, "1." and ".5" are refused: a venue may read them differently.
_DECIMAL_TEXT = re.compile(r"-?\d{1,40}(?:\.\d{1,40})?\Z")
# JSON number literals can be huge ("1e999999999"): bound coefficient and exponent so that
# the product below is exact in _EXACT (two 80-digit coefficients need 160 digits, exponents
# stay within -320..160) and cheap to compute. Real order amounts are nowhere near.
MAX_DIGITS = 80
EXPONENTS = range(-160, 81)
_EXACT = Context(
    prec=400, Emax=9999, Emin=-9999, traps=[Inexact, Rounded, Overflow, Underflow, InvalidOperation]
)
_ECHO = 40  # how much of a client's value a reason may quote (reasons reach logs and 403s)


class FieldProblem(Exception):
    """A request does not satisfy a constraint, or cannot be checked; the text is the reason."""


# --------------------------------------------------------------------------- request fields


@dataclass(frozen=True, slots=True)
class RequestFields:
    """The request's fields as a policy sees them: one mapping per order, plus the query."""

    items: tuple[dict[str, Any], ...]
    query: dict[str, list[str]]
    problem: str | None = None  # the body could not be read as fields: every constraint fails
    batch: bool = False  # the body was an array: reasons name the order's index

    def value(self, item: Mapping[str, Any], name: str) -> Any:
        values = self.query.get(name)
        if name in item:
            if values is not None:
                raise FieldProblem(f"{name} is in both the query and the body")
            return item[name]
        if values is None:
            raise FieldProblem(f"{name} is missing")
        if len(values) > 1:
            raise FieldProblem(f"{name} appears {len(values)} times in the query")
        return values[0]


def parse_request_fields(query: str, body: bytes) -> RequestFields:
    """Fields of a query string and a body. Never raises: an unusable body sets ``problem``."""
    params: dict[str, list[str]] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        params.setdefault(key, []).append(value)
    if not body.strip():
        return RequestFields(({},), params)
    try:
        data = _parse_json(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONJSError too
        return RequestFields((), params, problem=f"the body is not usable JSON ({_brief(exc)})")
    if isinstance(data, dict):
        return RequestFields((data,), params)
    if isinstance(data, list) and data and all(isinstance(item, dict) for item in data):
        return RequestFields(tuple(data), params, batch=True)
    return RequestFields((), params, problem="the body is not a JSON object or a non-empty array of objects")


def _parse_json(body: bytes) -> Any:
    text = body.decode("utf-8")
    jsonjs.check_depth(text)  # before json.loads: deep nesting can crash the process
    return json.loads(
        text,
        parse_float=Decimal,
        parse_int=Decimal,
        parse_constant=_reject_constant,
        object_pairs_hook=_unique_keys,
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        # Parsers disagree on which duplicate wins: the policy could check one, the venue use the other.
        raise ValueError("duplicate object key")
    return obj


def _brief(exc: BaseException) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    return str(exc)[:80]


def show(value: Any) -> str:
    """A client value as a reason may quote it: short, and never more than ``_ECHO`` chars."""
    if isinstance(value, str):
        return repr(value[:_ECHO] + ("..." if len(value) > _ECHO else ""))
    if isinstance(value, Decimal):
        text = str(value)
        return text if len(text) <= _ECHO else text[:_ECHO] + "..."
    names = {dict: "an object", list: "an array", bool: "a boolean", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def plain(number: Decimal) -> str:
    """``2500000.0`` as ``2500000``, ``1E+2`` as ``100``: the value, without its spelling."""
    return f"{number.normalize(_EXACT):f}"


def as_decimal(name: str, value: Any) -> Decimal:
    """A JSON number or a plain decimal string as an exact ``Decimal``, else ``FieldProblem``."""
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, str) and _DECIMAL_TEXT.match(value):
        number = Decimal(value)
    else:
        raise FieldProblem(f"{name} {show(value)} is not a decimal number")
    _sign, digits, exponent = number.as_tuple()
    if not isinstance(exponent, int) or len(digits) > MAX_DIGITS or exponent not in EXPONENTS:
        raise FieldProblem(f"{name} {show(value)} is out of range")  # exponent 'n'/'F': NaN, Infinity
    return number


# --------------------------------------------------------------------------- constraints


@dataclass(frozen=True, slots=True)
class Bounds:
    """Inclusive bounds; either may be absent."""

    low: Decimal | None = None
    high: Decimal | None = None

    def check(self, label: str, value: Decimal, detail: str = "") -> None:
        if self.low is not None and value < self.low:
            raise FieldProblem(f"{label} {plain(value)}{detail} is below min {self.low}")
        if self.high is not None and value > self.high:
            raise FieldProblem(f"{label} {plain(value)}{detail} is above max {self.high}")

    def describe(self, label: str) -> str:
        low = "" if self.low is None else f"{self.low} <= "
        high = "" if self.high is None else f" <= {self.high}"
        return f"{low}{label}{high}"


@dataclass(frozen=True, slots=True)
class OneOf:
    """``field: {in: [...]}``: the value is a string and one of the listed ones (case-sensitive)."""

    field: str
    values: frozenset[str]
    listing: str  # the values in the order the policy wrote them, for reasons

    def check(self, request: RequestFields, item: Mapping[str, Any]) -> None:
        value = request.value(item, self.field)
        if not isinstance(value, str):
            raise FieldProblem(f"{self.field} {show(value)} is not a string")
        if value not in self.values:
            raise FieldProblem(f"{self.field} {show(value)} is not one of [{self.listing}]")

    def describe(self) -> str:
        return f"{self.field} in [{self.listing}]"


@dataclass(frozen=True, slots=True)
class FieldRange:
    """``field: {min: .., max: ..}``: the value is a decimal number within the bounds."""

    field: str
    bounds: Bounds

    def check(self, request: RequestFields, item: Mapping[str, Any]) -> None:
        self.bounds.check(self.field, as_decimal(self.field, request.value(item, self.field)))

    def describe(self) -> str:
        return self.bounds.describe(self.field)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One order endpoint of a scheme and what its fields are called (``order_fields.yaml``)."""

    method: str
    pattern: str
    path: re.Pattern[str]
    quantity: str | None = None
    price: str | None = None
    notional: str | None = None  # a field that *is* the notional (EVEDEX market orders)
    market: str | None = None
    side: str | None = None

    def describe(self) -> str:
        roles = ("market", "side", "quantity", "price", "notional")
        named = " ".join(f"{role}={getattr(self, role)}" for role in roles if getattr(self, role))
        return f"{self.method} {self.pattern}: {named}"


@dataclass(frozen=True, slots=True)
class OrderFields:
    source: str
    schemes: Mapping[str, tuple[Endpoint, ...]]

    def find(self, scheme: str, method: str, path: str) -> Endpoint | None:
        for endpoint in self.schemes.get(scheme, ()):
            if endpoint.method == method and endpoint.path.match(path):
                return endpoint
        return None


@dataclass(frozen=True, slots=True)
class Notional:
    """``notional: {max: ..}``: quantity x price (or the venue's notional field) within bounds.

    Negative quantities or prices are refused: no venue accepts them, and allowing them would
    let a negative product slip under any cap.
    """

    bounds: Bounds
    table: OrderFields

    def check(self, request: RequestFields, item: Mapping[str, Any], endpoint: Endpoint | None) -> None:
        if endpoint is None:
            raise FieldProblem("notional: no order field names are known for this endpoint")
        if endpoint.notional is not None:
            value = _non_negative(endpoint.notional, request.value(item, endpoint.notional))
            self.bounds.check("notional", value, f" ({endpoint.notional})")
            return
        if endpoint.quantity is None or endpoint.price is None:  # the loader forbids this
            raise FieldProblem("notional: this endpoint has no quantity and price fields")
        quantity = _non_negative(endpoint.quantity, request.value(item, endpoint.quantity))
        price = _non_negative(endpoint.price, request.value(item, endpoint.price))
        try:
            product = _EXACT.multiply(quantity, price)
        except ArithmeticError:  # as_decimal's bounds make this exact; never let a trap escape
            raise FieldProblem("notional is out of range") from None
        detail = f" ({endpoint.quantity} {quantity} * {endpoint.price} {price})"
        self.bounds.check("notional", product, detail)


def _non_negative(name: str, value: Any) -> Decimal:
    number = as_decimal(name, value)
    if number < 0:
        raise FieldProblem(f"{name} {number} is negative")
    return number


@dataclass(frozen=True, slots=True)
class Constraints:
    """Everything an allow rule demands of the request's fields, checked in the order written."""

    fields: tuple[OneOf | FieldRange, ...] = ()
    notional: Notional | None = None

    def check(self, request: RequestFields, scheme: str, method: str, path: str) -> str | None:
        """``None`` when every order satisfies every constraint, else the first failure."""
        if request.problem is not None:
            return request.problem
        endpoint = None if self.notional is None else self.notional.table.find(scheme, method, path)
        for index, item in enumerate(request.items):
            try:
                for constraint in self.fields:
                    constraint.check(request, item)
                if self.notional is not None:
                    self.notional.check(request, item, endpoint)
            except FieldProblem as problem:
                return f"order [{index}]: {problem}" if request.batch else str(problem)
        return None

    def describe(self) -> str:
        parts = [constraint.describe() for constraint in self.fields]
        if self.notional is not None:
            parts.append(self.notional.bounds.describe("notional"))
        return ", ".join(parts)

"""Field constraints of allow rules: allowed values, numeric bounds and a notional cap.

Pure and exact: numbers are ``Decimal`` from the request's own text (JSON numbers via
``parse_float``/``parse_int``, venue-style decimal strings such as ``"0.001"``), never
floats, and the notional product is computed in a context that refuses to round. A
value that cannot be checked -- missing, not a number, ambiguous, an unparseable body --
is a refusal with a reason (``FieldProblem``), never an exception that escapes; a request
two parsers could read differently raises ``Ambiguous`` (a 400 in every mode).

Where a field is looked up is where the venue reads it (``proxy.policy.request_fields``): per
scheme and method the JSON body or the query (``placement`` in ``order_fields.yaml``), each
order of a declared batch, and path segments the venue reads as fields (EVEDEX
``{instrument}``). Amounts the venue rounds before signing are checked rounded.

The notional cap needs the venue's names for quantity and price on the endpoint. They are
data (``proxy/policy/order_fields.yaml``, loaded by ``proxy.policy.loader``), looked up by the
venue's *scheme*, so a rule says ``notional: {max: "50000"}`` without knowing them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
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

from proxy.policy.request_fields import (
    Ambiguous,
    FieldProblem,
    Placement,
    RequestFields,
    parse_request_fields,
    show,
)

__all__ = ["Ambiguous", "FieldProblem", "RequestFields", "parse_request_fields", "show"]

# Venues send amounts as strings ("0.001"); accept exactly the plain decimal form. Signs,
# exponents, spaces, "1." and ".5" are refused: a venue may read them differently. ASCII
# digits only: Python's \d (and Decimal) take "\u0661" and "\uff11\uff10\uff10", a JavaScript venue does not.
_DECIMAL_TEXT = re.compile(r"-?[0-9]{1,40}(?:\.[0-9]{1,40})?\Z")
# JSON number literals can be huge ("1e999999999"): bound coefficient and exponent so that
# the product below is exact in _EXACT (two 80-digit coefficients need 160 digits, exponents
# stay within -320..160) and cheap to compute. Real order amounts are nowhere near.
MAX_DIGITS = 80
EXPONENTS = range(-160, 81)
_EXACT = Context(
    prec=400, Emax=9999, Emin=-9999, traps=[Inexact, Rounded, Overflow, Underflow, InvalidOperation]
)
_ROUNDING = Context(prec=200)  # as_decimal's bounds keep every rounded amount exact in this


# --------------------------------------------------------------------------- one order


@dataclass(frozen=True, slots=True)
class Rounding:
    """How a venue rounds amounts before signing (EVEDEX: 8 decimals, half-up)."""

    decimals: int
    mode: str  # a ``decimal`` rounding constant, e.g. ROUND_HALF_UP

    def apply(self, number: Decimal) -> Decimal:
        rounded = number.quantize(Decimal(1).scaleb(-self.decimals), rounding=self.mode, context=_ROUNDING)
        return number if rounded == number else Decimal(plain(rounded))  # reasons show what is signed


@dataclass(frozen=True, slots=True)
class Order:
    """One order's fields as the venue reads them (``RequestFields.orders``).

    ``amounts`` are the fields the venue rounds (``rounding``) before it signs: bounds and
    the notional are checked on the rounded value, the one that is signed and executed.
    """

    values: Mapping[str, Any]
    amounts: frozenset[str] = frozenset()
    rounding: Rounding | None = None

    def value(self, name: str) -> Any:
        if name not in self.values:
            raise FieldProblem(f"{name} is missing")
        return self.values[name]

    def number(self, name: str) -> Decimal:
        number = as_decimal(name, self.value(name))
        if self.rounding is not None and name in self.amounts:
            number = self.rounding.apply(number)
        return number


def plain(number: Decimal) -> str:
    """``2500000.0`` as ``2500000``, ``1E+2`` as ``100``: the value, without its spelling."""
    return f"{number.normalize(_EXACT):f}"


def as_decimal(name: str, value: Any) -> Decimal:
    """A JSON number or a plain decimal string as an exact ``Decimal``, else ``FieldProblem``."""
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, str) and _DECIMAL_TEXT.match(value):
        number = Decimal(value)
    elif isinstance(value, str) and not value.isascii() and any(char.isdigit() for char in value):
        raise Ambiguous(f"{name} {show(value)} has non-ASCII digits: Python reads them, JSON venues do not")
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

    def check(self, order: Order) -> None:
        value = order.value(self.field)
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

    def check(self, order: Order) -> None:
        self.bounds.check(self.field, order.number(self.field))

    def describe(self) -> str:
        return self.bounds.describe(self.field)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One order endpoint of a scheme and what its fields are called (``order_fields.yaml``)."""

    method: str
    pattern: str
    path: re.Pattern[str]  # named groups: path segments the venue reads as fields
    quantity: str | None = None
    price: str | None = None
    notional: str | None = None  # a field that *is* the notional (EVEDEX market orders)
    market: str | None = None
    side: str | None = None
    batch: str | None = None  # body key of the list of orders; "$": the body is the list
    attached: tuple[str, ...] = ()  # body keys of attached orders no rule can read (EVEDEX tpsl)

    @property
    def amounts(self) -> frozenset[str]:
        """The fields the notional is computed from (the venue may round them)."""
        return frozenset(name for name in (self.quantity, self.price, self.notional) if name)

    def path_values(self, path: str) -> dict[str, str]:
        found = self.path.match(path)
        return {} if found is None else found.groupdict()

    def describe(self) -> str:
        roles = ("market", "side", "quantity", "price", "notional", "batch")
        named = " ".join(f"{role}={getattr(self, role)}" for role in roles if getattr(self, role))
        if self.attached:
            named += f" attached={','.join(self.attached)} (refused)"
        return f"{self.method} {self.pattern}: {named}"


@dataclass(frozen=True, slots=True)
class OrderFields:
    source: str
    schemes: Mapping[str, tuple[Endpoint, ...]]
    placement: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # scheme -> method -> where
    rounding: Mapping[str, Rounding] = field(default_factory=dict)  # scheme -> how amounts are rounded

    def find(self, scheme: str, method: str, path: str) -> Endpoint | None:
        for endpoint in self.schemes.get(scheme, ()):
            if endpoint.method == method and endpoint.path.match(path):
                return endpoint
        return None

    def where(self, scheme: str, method: str) -> Placement:
        return Placement(scheme, method, self.placement.get(scheme, {}).get(method))


@dataclass(frozen=True, slots=True)
class Notional:
    """``notional: {max: ..}``: quantity x price (or the venue's notional field) within bounds.

    Negative quantities or prices are refused: no venue accepts them, and allowing them would
    let a negative product slip under any cap. In a batch each order is checked, and so is
    the sum over the batch against ``max``: one request never commits more than the cap.
    """

    bounds: Bounds
    table: OrderFields

    def check(self, order: Order, endpoint: Endpoint | None) -> Decimal:
        """The order's notional, once it is within bounds."""
        if endpoint is None:
            raise FieldProblem("notional: no order field names are known for this endpoint")
        if endpoint.notional is not None:
            value = _non_negative(endpoint.notional, order.number(endpoint.notional))
            self.bounds.check("notional", value, f" ({endpoint.notional})")
            return value
        if endpoint.quantity is None or endpoint.price is None:
            raise FieldProblem(f"notional: {endpoint.pattern} has no price (priced at execution)")
        quantity = _non_negative(endpoint.quantity, order.number(endpoint.quantity))
        price = _non_negative(endpoint.price, order.number(endpoint.price))
        try:
            product = _EXACT.multiply(quantity, price)
        except ArithmeticError:  # as_decimal's bounds make this exact; never let a trap escape
            raise FieldProblem("notional is out of range") from None
        detail = f" ({endpoint.quantity} {quantity} * {endpoint.price} {price})"
        self.bounds.check("notional", product, detail)
        return product

    def check_batch(self, total: Decimal, count: int) -> None:
        Bounds(high=self.bounds.high).check("batch notional", total, f" ({count} orders)")


def _non_negative(name: str, number: Decimal) -> Decimal:
    if number < 0:
        raise FieldProblem(f"{name} {number} is negative")
    return number


@dataclass(frozen=True, slots=True)
class Constraints:
    """Everything an allow rule demands of the request's fields, checked in the order written."""

    fields: tuple[OneOf | FieldRange, ...] = ()
    notional: Notional | None = None
    table: OrderFields | None = None  # None: the notional's (the loader passes the shipped one)

    def __post_init__(self) -> None:
        if self.table is None and self.notional is None:  # where would fields be looked up?
            raise ValueError("Constraints need an order-field table (proxy.policy.order_fields)")

    def check(self, request: RequestFields, scheme: str, method: str, path: str) -> str | None:
        """``None`` when every order satisfies every constraint, else the first failure.

        Raises ``Ambiguous`` when the venue's reading of the request cannot be known.
        """
        table = self._table()
        endpoint = table.find(scheme, method, path)
        names = {constraint.field for constraint in self.fields}
        amounts: frozenset[str] = frozenset()
        batch, path_values = None, {}
        if endpoint is not None:
            amounts, batch, path_values = endpoint.amounts, endpoint.batch, endpoint.path_values(path)
        try:
            orders = request.orders(table.where(scheme, method), names | amounts, batch, path_values)
            if endpoint is not None and endpoint.attached:
                request.refuse_attached(endpoint.attached)
        except Ambiguous:
            raise
        except FieldProblem as problem:
            return str(problem)
        rounding = table.rounding.get(scheme)
        total = Decimal(0)
        for index, values in enumerate(orders):
            order = Order(values, amounts, rounding)
            try:
                for constraint in self.fields:
                    constraint.check(order)
                if self.notional is not None:
                    total = _EXACT.add(total, self.notional.check(order, endpoint))
            except Ambiguous as problem:
                raise Ambiguous(f"order [{index}]: {problem}" if batch else str(problem)) from None
            except FieldProblem as problem:
                return f"order [{index}]: {problem}" if batch else str(problem)
        if batch and self.notional is not None and len(orders) > 1:
            try:
                self.notional.check_batch(total, len(orders))
            except FieldProblem as problem:
                return str(problem)
        return None

    def _table(self) -> OrderFields:
        if self.table is not None:
            return self.table
        assert self.notional is not None  # __post_init__
        return self.notional.table

    def describe(self) -> str:
        parts = [constraint.describe() for constraint in self.fields]
        if self.notional is not None:
            parts.append(self.notional.bounds.describe("notional"))
        return ", ".join(parts)

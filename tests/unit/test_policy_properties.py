"""Properties of field constraints, checked with hypothesis against independent oracles.

* A rule with bounds never admits a body outside them, however the number is spelled
  (JSON number, decimal string, garbage); the oracle is ``fractions.Fraction`` of the text.
* A notional cap never admits quantity x price above it (or a negative operand).
* Report mode is exactly "what enforcing would do": flipping every mode to ``enforce``
  denies a request iff the report-mode decision denied it or carried ``would_deny``.
"""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.policy.fields import Bounds, Constraints, FieldRange, Notional, OneOf
from proxy.policy.order_fields import load_order_fields
from proxy.policy.path_spelling import compile_path_glob
from proxy.policy.rules import Client, Rule, compile_glob, decide_request

ANY = (compile_glob("*"),)


def _rule(index: int, path: str, constraints: Constraints | None, report: bool = False) -> Rule:
    return Rule(
        f"c.allow[{index}]",
        (compile_glob("coinex"),),
        ANY,
        None,
        (compile_path_glob(path),),
        "",
        report,
        constraints,
    )


def _client(*allow: Rule, deny: tuple[Rule, ...] = (), report: bool = False) -> Client:
    return Client("c", "test", loopback=True, report=report, allow=allow, deny=deny)


decimals = st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**12), max_value=10**12, places=8)
bound = st.one_of(st.none(), decimals)


@st.composite
def amount_literal(draw: st.DrawFn) -> tuple[str, Fraction | None]:
    """A JSON value for ``amount`` and its exact value (None: not a number the policy accepts)."""
    value = draw(decimals)
    kind = draw(st.sampled_from(["number", "exponent", "string", "garbage"]))
    if kind == "number":
        text = format(value, "f")
        return text, Fraction(text)
    if kind == "exponent":  # a JSON number in exponent form: "1.5E+3"
        text = format(value, "E")
        return text, Fraction(text)
    if kind == "string":
        text = format(value, "f")
        return json.dumps(text), Fraction(text)
    junk = draw(
        st.sampled_from(['"1e3"', '" 1"', '"+1"', '"1,5"', "true", "null", "[1]", '{"v":1}', '"abc"'])
    )
    return junk, None


@settings(max_examples=400, deadline=None)
@given(low=bound, high=bound, amount=amount_literal(), price=decimals)
def test_bounds_never_admit_a_value_outside_them(low, high, amount, price) -> None:
    if low is None and high is None:
        high = Decimal(0)
    literal, exact = amount
    rule = _rule(0, "/o", Constraints((FieldRange("amount", Bounds(low, high)),), table=load_order_fields()))
    body = f'{{"amount": {literal}, "price": "{price}"}}'.encode()
    decision = decide_request(_client(rule), "coinex", "main", "POST", "/o", body)
    inside = (
        exact is not None
        and (low is None or exact >= Fraction(low))
        and (high is None or exact <= Fraction(high))
    )
    assert decision.allowed is inside, decision.reason


@settings(max_examples=400, deadline=None)
@given(
    quantity=decimals,
    price=decimals,
    cap=st.decimals(allow_nan=False, allow_infinity=False, min_value=0, max_value=10**9, places=4),
    floor=st.one_of(
        st.none(), st.decimals(allow_nan=False, allow_infinity=False, min_value=0, max_value=10**3)
    ),
    as_numbers=st.booleans(),
)
def test_notional_never_admits_a_product_outside_the_cap(quantity, price, cap, floor, as_numbers) -> None:
    if floor is not None and floor > cap:
        floor, cap = cap, floor
    notional = Notional(Bounds(floor, cap), load_order_fields())
    rule = _rule(0, "/v2/spot/order", Constraints((), notional))
    q, p = format(quantity, "f"), format(price, "f")
    fields = f'"amount": {q}, "price": {p}' if as_numbers else f'"amount": "{q}", "price": "{p}"'
    body = ('{"market": "BTCUSDT", ' + fields + "}").encode()
    decision = decide_request(_client(rule), "coinex", "main", "POST", "/v2/spot/order", body)
    product = Fraction(q) * Fraction(p)
    inside = (
        Fraction(q) >= 0
        and Fraction(p) >= 0
        and product <= Fraction(cap)
        and (floor is None or product >= Fraction(floor))
    )
    assert decision.allowed is inside, decision.reason


PATHS = ["/v2/spot/order", "/v2/spot/cancel", "/v2/assets/withdraw"]
rule_spec = st.tuples(
    st.sampled_from(["/v2/spot/order", "/v2/spot/*", "/v2/**"]),
    st.one_of(st.none(), st.sets(st.sampled_from(["A", "B"]), min_size=1)),
    st.booleans(),
)


TABLE = load_order_fields()


@settings(max_examples=400, deadline=None)
@given(
    allow=st.lists(rule_spec, max_size=4),
    deny=st.lists(st.tuples(st.sampled_from(["**/withdraw*", "/v2/spot/cancel"]), st.booleans()), max_size=2),
    client_report=st.booleans(),
    path=st.sampled_from(PATHS),
    market=st.sampled_from(["A", "B", "C"]),
)
def test_report_mode_is_what_enforcing_would_do(allow, deny, client_report, path, market) -> None:
    allow_rules = tuple(
        _rule(
            i,
            glob,
            None
            if values is None
            else Constraints((OneOf("market", frozenset(values), ""),), table=load_order_fields()),
            report,
        )
        for i, (glob, values, report) in enumerate(allow)
    )
    deny_rules = tuple(
        replace(_rule(i, glob, None, report), name=f"c.deny[{i}]") for i, (glob, report) in enumerate(deny)
    )
    watched = _client(*allow_rules, deny=deny_rules, report=client_report)
    enforced = _client(
        *(replace(r, report=False) for r in allow_rules),
        deny=tuple(replace(r, report=False) for r in deny_rules),
    )
    body = json.dumps({"market": market}).encode()
    seen = decide_request(watched, "coinex", "main", "POST", path, body)
    truth = decide_request(enforced, "coinex", "main", "POST", path, body)
    assert truth.allowed is (seen.allowed and seen.would_deny is None)
    if seen.would_deny is not None:
        assert seen.would_deny == truth.reason  # the logged reason is the one enforcement will give
    if truth.allowed:
        assert seen.rule == truth.rule

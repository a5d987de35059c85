"""Trading-aware decisions, table-driven over ``fixtures/policies/trading``, asserting reasons.

Each row is one request through ``decide_request`` (path step, then fields step) and what
the decision must say: allowed or not, a substring of the reason, and for report mode a
substring of ``would_deny``.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from proxy.policy.fields import FieldProblem, as_decimal, parse_request_fields
from proxy.policy.loader import load_policies
from proxy.policy.rules import decide, decide_fields, decide_request

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "policies"
VENUES = ["coinex", "coinex-eu", "icrypex", "haqqex", "invex", "evedex"]
SCHEMES = {"coinex-eu": "coinex"}


@pytest.fixture(scope="module")
def policies():
    return load_policies(FIXTURES / "trading", venues=VENUES)


def _body(value: object) -> bytes:
    if value is None:
        return b""
    return value.encode() if isinstance(value, str) else json.dumps(value).encode()


def order(**fields: object) -> dict[str, object]:
    return {"market": "BTCUSDT", "side": "buy", "type": "limit", "amount": "1", "price": "30000"} | fields


ALLOW, DENY, REPORT = "allow", "deny", "report"
CX_ORDER = ("coinex", "POST", "/v2/spot/order")
# client, venue, method, target, body, outcome, reason substring (report: would_deny substring)
CASES = [
    # --- values, bounds, notional on CoinEx (mm.allow[1])
    ("mm", *CX_ORDER, order(), ALLOW, "allow rule mm.allow[1]"),
    ("mm", *CX_ORDER, order(market="ETHUSDT", side="sell"), ALLOW, "mm.allow[1]"),
    ("mm", *CX_ORDER, order(market="XRPUSDT"),
     DENY, "mm.allow[1] in desk.yaml matches the path but market 'XRPUSDT' is not one of [BTCUSDT, ETHUSDT]"),
    ("mm", *CX_ORDER, order(market="btcusdt"), DENY, "market 'btcusdt' is not one of"),
    ("mm", *CX_ORDER, order(side="BUY"), DENY, "side 'BUY' is not one of [buy, sell]"),
    ("mm", *CX_ORDER, order(amount="2.5", price="1"), DENY, "amount 2.5 is above max 2"),
    ("mm", *CX_ORDER, order(amount="0.00001"), DENY, "amount 0.00001 is below min 0.0001"),
    ("mm", *CX_ORDER, order(amount="2", price="25000"), ALLOW, "mm.allow[1]"),
    ("mm", *CX_ORDER, order(amount="2", price="25000.01"),
     DENY, "notional 50000.02 (amount 2 * price 25000.01) is above max 50000"),
    ("mm", *CX_ORDER, '{"market":"BTCUSDT","side":"buy","amount":1.5,"price":1e4}',
     ALLOW, "mm.allow[1]"),
    ("mm", *CX_ORDER, '{"market":"BTCUSDT","side":"buy","amount":1.5,"price":1e5}',
     DENY, "notional 150000 (amount 1.5 * price 1E+5) is above max 50000"),
    # --- what cannot be checked is a denial with a reason
    ("mm", *CX_ORDER, order(price=None), DENY, "price null is not a"),
    ("mm", *CX_ORDER, {"market": "BTCUSDT", "side": "buy", "amount": "1"},
     DENY, "price is missing"),
    ("mm", *CX_ORDER, order(amount="1e0"), DENY, "amount '1e0' is not a decimal number"),
    ("mm", *CX_ORDER, order(amount=" 1"), DENY, "amount ' 1' is not a decimal number"),
    ("mm", *CX_ORDER, order(amount=True), DENY, "amount a boolean is not a decimal"),
    ("mm", *CX_ORDER, order(amount=[1]), DENY, "amount an array is not a decimal"),
    ("mm", *CX_ORDER, order(market=1), DENY, "market 1 is not a string"),
    ("mm", *CX_ORDER, order(amount="-1"), DENY, "amount -1 is below min"),
    ("mm", *CX_ORDER, '{"market":"BTCUSDT","side":"buy","amount":NaN,"price":1}',
     DENY, "the body is not usable JSON (NaN is not a JSON number)"),
    ("mm", *CX_ORDER, '{"market":"BTCUSDT","side":"buy","amount":1,"price":1e999}',
     DENY, "price 1E+999 is out of range"),
    ("mm", *CX_ORDER, '{"market":"ETHUSDT","market":"DOGEUSDT"}',
     DENY, "ambiguous request, refused: duplicate object key"),
    ("mm", *CX_ORDER, "[" * 200 + "]" * 200, DENY, "nested too deeply"),
    ("mm", *CX_ORDER, b"\xff".decode("latin-1"), DENY, "not usable JSON"),
    ("mm", *CX_ORDER, "market=BTCUSDT", DENY, "the body is not usable JSON"),
    ("mm", *CX_ORDER, '"BTCUSDT"', DENY, "the body is not a JSON object"),
    ("mm", *CX_ORDER, "[]", DENY, "the body is not a JSON object"),
    ("mm", *CX_ORDER, None, DENY, "market is missing"),
    (
        "mm", "coinex", "POST", "/v2/spot/order?market=BTCUSDT", order(), DENY,
        "market is in the query; coinex reads it from the JSON body on POST",
    ),
    # --- query fields (mm.allow[0], mm.allow[4])
    ("mm", "coinex", "GET", "/v2/spot/pending-order?market=ETHUSDT&page=1", None, ALLOW, "mm.allow[0]"),
    ("mm", "coinex", "GET", "/v2/spot/pending-order?market=DOGEUSDT", None, DENY, "market 'DOGEUSDT' is not"),
    ("mm", "coinex", "GET", "/v2/spot/pending-order?market=BTCUSDT&market=DOGEUSDT", None,
     DENY, "query key 'market' appears twice"),
    ("mm", "coinex", "GET", "/v2/spot/pending-order", None, DENY, "market is missing"),
    ("mm", "invex", "DELETE", "/trading/v1/orders?symbol=TRX_USDT&order_id=7", None, ALLOW, "mm.allow[4]"),
    ("mm", "invex", "DELETE", "/trading/v1/orders?symbol=BTC_USDT", None, DENY, "symbol 'BTC_USDT' is not"),
    # --- per-venue order field names for notional
    ("mm", "icrypex", "POST", "/sapi/v1/orders", {"symbol": "BTCTRY", "side": "BUY", "quantity": "0.001",
     "price": "2000000"}, ALLOW, "mm.allow[2]"),
    ("mm", "icrypex", "POST", "/sapi/v1/orders", {"symbol": "BTCTRY", "quantity": "0.00001", "price": "2e6"},
     DENY, "price '2e6' is not a decimal number"),
    ("mm", "icrypex", "POST", "/sapi/v1/orders", '{"symbol":"BTCTRY","quantity":0.00001,"price":2000000}',
     DENY, "notional 20 (quantity 0.00001 * price 2000000) is below min 100"),
    ("mm", "haqqex", "POST", "/api/v1/orders", {"pair": "BTC_USDT", "amount": "0.01", "price": "65000.5"},
     ALLOW, "mm.allow[6]"),
    ("mm", "haqqex", "POST", "/api/v1/orders", {"pair": "BTC_USDT", "amount": "1", "price": "65000.5"},
     DENY, "notional 65000.5 (amount 1 * price 65000.5) is above max 1000"),
    ("mm", "invex", "POST", "/trading/v1/orders", {"symbol": "TRX_USDT", "side": "BUYER", "quantity": "10",
     "price": "0.1"}, ALLOW, "mm.allow[5]"),
    ("mm", "invex", "POST", "/trading/v1/orders", {"symbol": "TRX_USDT", "side": "BUYER", "quantity": "10000",
     "price": "0.1"}, DENY, "notional 1000 (quantity 10000 * price 0.1) is above max 100"),
    ("mm", "evedex", "POST", "/api/v2/order/limit", {"instrument": "BTCUSD", "side": "BUY", "quantity": "0.1",
     "limitPrice": "65000"}, ALLOW, "mm.allow[3]"),
    ("mm", "evedex", "POST", "/api/v2/order/limit", {"instrument": "BTCUSD", "quantity": "1",
     "limitPrice": "65000"}, DENY, "notional 65000 (quantity 1 * limitPrice 65000) is above max 10000"),
    ("mm", "evedex", "POST", "/api/v2/order/market", {"instrument": "BTCUSD", "cashQuantity": "20000"},
     DENY, "notional 20000 (cashQuantity) is above max 10000"),
    ("mm", "evedex", "POST", "/api/v2/order/market", {"instrument": "BTCUSD", "cashQuantity": "-5"},
     DENY, "cashQuantity -5 is negative"),
    ("mm", "evedex", "PUT", "/api/order/00001:abc/limit", {"quantity": "0.1", "limitPrice": "1000"},
     ALLOW, "mm.allow[3]"),
    ("mm", "evedex", "POST", "/api/v2/order/mass-limit/BTCUSD",
     [{"quantity": "0.1", "limitPrice": "1000"}, {"quantity": "0.1", "limitPrice": "65000"}],
     ALLOW, "mm.allow[3]"),
    ("mm", "evedex", "POST", "/api/v2/order/mass-limit/BTCUSD",
     [{"quantity": "0.1", "limitPrice": "1000"}, {"quantity": "1", "limitPrice": "65000"}],
     DENY, "order [1]: notional 65000"),
    ("mm", "evedex", "POST", "/api/v2/order/mass-limit/BTCUSD", [{"quantity": "0.1", "limitPrice": "1"}, 5],
     DENY, "order [1] is not a JSON object"),
    ("mm", "coinex-eu", "POST", "/v2/spot/order", {"amount": "1", "price": "99"}, ALLOW, "mm.allow[7]"),
    ("mm", "coinex-eu", "POST", "/v2/spot/order", {"amount": "1", "price": "101"}, DENY, "above max 100"),
    ("mm", "coinex", "POST", "/v2/spot/cancel-all-order", {"market": "BTCUSDT"},
     DENY, "notional: no order field names are known for this endpoint"),
    # --- path decisions are unchanged; deny wins before any field is read
    ("mm", "coinex", "POST", "/v2/assets/withdraw", "not json", DENY, "deny rule mm.deny[0]"),
    ("mm", "coinex", "POST", "/v2/spot/cancel-order", order(), DENY, "no allow rule for client mm"),
    # --- rule order: the first rule whose path matches and whose constraints pass allows
    ("fallback", *CX_ORDER, order(), ALLOW, "fallback.allow[0]"),
    ("fallback", *CX_ORDER, order(market="DOGEUSDT"), ALLOW, "fallback.allow[1]"),
    ("fallback", *CX_ORDER, "not json", ALLOW, "fallback.allow[1]"),
    # --- report mode on a rule
    ("report-first", *CX_ORDER, order(), ALLOW, "report-first.allow[0]"),
    ("report-first", *CX_ORDER, order(market="ETHUSDT"), ALLOW, "report-first.allow[1]"),
    ("report-first", *CX_ORDER, order(market="DOGEUSDT"),
     REPORT, "report-first.allow[0] in desk.yaml matches the path but market 'DOGEUSDT' is not one of"),
    ("report-first", "coinex", "POST", "/v2/spot/cancel-all", None, REPORT, "deny rule report-first.deny[0]"),
    ("enforce-first", *CX_ORDER, order(market="ETHUSDT"), ALLOW, "enforce-first.allow[1]"),
    ("enforce-first", *CX_ORDER, order(market="DOGEUSDT"),
     REPORT, "enforce-first.allow[0] in desk.yaml matches the path but market 'DOGEUSDT'"),
    ("enforce-first", *CX_ORDER, order(), ALLOW, "enforce-first.allow[0]"),
    # --- report mode on a client; a rule's own mode wins
    ("shadow", *CX_ORDER, order(market="DOGEUSDT"), REPORT, "market 'DOGEUSDT'"),
    ("shadow", "coinex", "POST", "/v2/spot/stop-order", order(market="DOGEUSDT"),
     DENY, "shadow.allow[1] in desk.yaml matches the path but market 'DOGEUSDT'"),
    ("shadow", "coinex", "GET", "/v2/spot/anything", None, REPORT, "no allow rule for client shadow"),
    ("shadow", "coinex", "POST", "/v2/spot/cancel-all", None, REPORT, "deny rule shadow.deny[1]"),
    ("shadow", "coinex", "POST", "/v2/assets/withdraw", None, DENY, "deny rule shadow.deny[0]"),
]  # fmt: skip


@pytest.mark.parametrize(("client", "venue", "method", "target", "body", "outcome", "reason"), CASES)
def test_decisions(policies, client, venue, method, target, body, outcome, reason) -> None:
    scheme = SCHEMES.get(venue, venue)
    decision = decide_request(policies.clients[client], venue, "main", method, target, _body(body), scheme)
    assert decision.pending is None
    assert decision.allowed is (outcome != DENY)
    if outcome == REPORT:
        assert decision.would_deny is not None and reason in decision.would_deny
    else:
        assert decision.would_deny is None
        assert reason in decision.reason


def test_path_step_settles_without_the_body_unless_a_matching_rule_has_constraints(policies) -> None:
    mm = policies.clients["mm"]
    assert decide(mm, "coinex", "main", "GET", "/v2/assets/withdraw").pending is None  # deny rule
    assert decide(mm, "coinex", "main", "POST", "/v2/spot/cancel-order").pending is None  # no rule
    assert decide(policies.clients["shadow"], "coinex", "main", "GET", "/x").pending is None  # report default
    pending = decide(mm, "coinex", "main", "POST", "/v2/spot/order")
    assert pending.pending is not None and not pending.allowed  # fail closed until the fields are checked
    assert [r.name for r in pending.pending.candidates] == ["mm.allow[1] in desk.yaml"]
    # a finished decision passes through the fields step unchanged
    settled = decide(mm, "coinex", "main", "POST", "/v2/spot/cancel-order")
    assert decide_fields(settled, parse_request_fields("", b"")) is settled


def test_reason_names_the_first_failing_rule_and_constraint(policies) -> None:
    both = policies.clients["enforce-first"]
    decision = decide_request(both, "coinex", "main", "POST", "/v2/spot/order", _body(order(market="X")))
    assert decision.allowed and decision.would_deny is not None
    assert decision.would_deny.startswith("allow rule enforce-first.allow[0]")


def test_reasons_quote_client_values_briefly(policies) -> None:
    long_market = "M" * 500
    decision = decide_request(
        policies.clients["mm"], "coinex", "main", "POST", "/v2/spot/order", _body(order(market=long_market))
    )
    assert not decision.allowed
    assert long_market not in decision.reason and len(decision.reason) < 300


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.001", Decimal("0.001")),
        ("-2", Decimal("-2")),
        (Decimal("1E+2"), Decimal("100")),
        ("007", Decimal("7")),
    ],
)
def test_as_decimal_accepts(value: object, expected: Decimal) -> None:
    assert as_decimal("amount", value) == expected


@pytest.mark.parametrize(
    "value", ["1e3", "+1", ".5", "5.", "1,5", "0x10", "Infinity", "NaN", " 1", "1" * 41, Decimal("NaN"), 1.5]
)
def test_as_decimal_refuses(value: object) -> None:
    with pytest.raises(FieldProblem):
        as_decimal("amount", value)


def test_exact_decimal_arithmetic_at_the_edge(policies) -> None:
    # 0.1 * 3 is 0.30000000000000004 in binary floating point: with floats this would fail.
    mm = policies.clients["mm"]
    body = _body({"symbol": "TRX_USDT", "side": "BUYER", "quantity": "1000", "price": "0.1"})
    assert decide_request(mm, "invex", "main", "POST", "/trading/v1/orders", body).allowed
    quantity = "1000.0000000000000000000000001"
    body = _body({"symbol": "TRX_USDT", "side": "BUYER", "quantity": quantity, "price": "0.1"})
    assert not decide_request(mm, "invex", "main", "POST", "/trading/v1/orders", body).allowed

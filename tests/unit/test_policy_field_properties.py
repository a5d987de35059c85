"""Property: a request the policy lets through satisfies the policy *as the venue reads it*.

Hypothesis places the fields of CoinEx orders (single and batch) in the body, the query or
both, under exact and case-folded keys, beside or inside the batch list, with assorted
Content-Types and query spellings. Whatever the proxy allows is then read by independent
readers written here, not by the proxy's code:

* ``go_reading``: a Go ``encoding/json``-style decoder: keys match struct fields
  case-insensitively (Unicode simple folding: ``\u017f`` is ``s``), the last match wins; a body
  is parsed only under a JSON Content-Type;
* a lenient framework (Rails/Spring style) that merges the query into the body's fields
  (the query wins), splitting it on ``&`` *and* ``;`` with ``+`` as a space, and lets a
  batch's top-level fields fill in for (or override) its orders.

Every reading must satisfy the rule: markets and sides in the lists, each notional and the
batch total within the cap. For EVEDEX, the forwarded body is the signer's (rounded)
output, and the notional of what is signed must be within the cap.
"""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from urllib.parse import unquote_plus

import coincurve
from hypothesis import example, given, settings
from hypothesis import strategies as st

from proxy.messages import OutgoingRequest
from proxy.policy.loader import load_policies
from proxy.policy.rules import decide_request
from proxy.signers.evedex.signer import sign_order_body

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "policies"
DESK = load_policies(FIXTURES / "fields").clients["desk"]
MARKETS, SIDES, CAP = {"BTCUSDT", "ETHUSDT"}, {"buy", "sell"}, Decimal(50000)
FIELDS = ("market", "side", "amount", "price")


# --------------------------------------------------------------------------- independent readers


def _fold(key: str) -> str:
    # Go's strings.EqualFold over simple case folding, written out for the letters that matter.
    return key.lower().replace("\u017f", "s").replace("\u212a", "k")


def go_object(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """A decoded JSON object as a Go struct with the order's fields sees it."""
    struct: dict[str, object] = {}
    for key, value in pairs:
        for name in (*FIELDS, "orders"):
            if _fold(key) == _fold(name):
                struct[name] = value  # the last case-insensitive match wins
    return struct


def go_reading(body: bytes, content_type: str | None) -> object:
    if content_type is None or not content_type.lower().startswith("application/json"):
        return None  # a JSON decoder is not even called: the venue sees no fields
    return json.loads(body, object_pairs_hook=go_object, parse_float=Decimal, parse_int=Decimal)


def lenient_query(query: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for part in query.replace(";", "&").split("&"):
        key, _, value = part.partition("=")
        if key:
            params[_fold(unquote_plus(key))] = unquote_plus(value)  # the last one wins
    return params


def orders_of(reading: object) -> list[dict[str, object]]:
    if isinstance(reading, dict) and isinstance(reading.get("orders"), list):
        return [go_object(list(order.items())) for order in reading["orders"] if isinstance(order, dict)]
    return [reading] if isinstance(reading, dict) else [{}]


def satisfies(orders: list[dict[str, object]]) -> bool:
    total = Decimal(0)
    for order in orders:
        if order.get("market") not in MARKETS or order.get("side") not in SIDES:
            return False
        try:
            notional = Decimal(str(order["amount"])) * Decimal(str(order["price"]))
        except (KeyError, ArithmeticError, ValueError):
            return False
        if notional > CAP or notional < 0:
            return False
        total += notional
    return total <= CAP


# --------------------------------------------------------------------------- generated requests

# A well-formed order, then up to three perturbations, each a way to place or spell a field
# that some parser reads differently. Empty lists are common, so many requests are allowed.
PERTURBATIONS = st.tuples(
    st.sampled_from(["to-query", "also-query", "drop", "respell", "fold-twin", "beside-batch"]),
    st.sampled_from(FIELDS),
    st.sampled_from(["upper", "title", "long-s"]),
    st.booleans(),  # the moved/added copy keeps the value (else: one outside the rule)
)


# Hypothesis does not draw sampled_from() elements by weight: gate each kind of noise on a
# few booleans instead, so that a good share of requests is well-formed and allowed.
RARE = st.tuples(st.booleans(), st.booleans(), st.booleans()).map(all)


def _spell(name: str, how: str) -> str:
    if how == "upper":
        return name.upper()
    if how == "title":
        return name.title()
    if how == "long-s" and "s" in name:
        return name.replace("s", "\u017f", 1)
    return name


def _other(name: str) -> str:
    return {"market": "DOGEUSDT", "side": "short", "amount": "40", "price": "65000"}[name]


Pairs = list[tuple[str, object]]


@st.composite
def one_order(draw: st.DrawFn) -> tuple[Pairs, list[tuple[str, str]], Pairs]:
    """(body pairs, query pairs, pairs beside a batch list) for one order."""
    values = {
        "market": draw(st.sampled_from(["BTCUSDT", "ETHUSDT", "DOGEUSDT"])),
        "side": draw(st.sampled_from(["buy", "sell", "short"])),
        "amount": draw(st.sampled_from(["0.1", "0.5", "1", "40"])),
        "price": draw(st.sampled_from(["1", "3000", "60000", "65000"])),
    }
    body: dict[str, tuple[str, object]] = {name: (name, values[name]) for name in FIELDS}
    extra: list[tuple[str, object]] = []
    query: list[tuple[str, str]] = []
    beside: list[tuple[str, object]] = []
    count = draw(st.integers(1, 3)) if draw(RARE) else 0
    for kind, name, spelling, same in (draw(PERTURBATIONS) for _ in range(count)):
        value = values[name] if same else _other(name)
        if kind == "to-query":
            body.pop(name, None)
            query.append((_spell(name, spelling) if not same else name, value))
        elif kind == "also-query":
            query.append((name, value))
        elif kind == "drop":
            body.pop(name, None)
        elif kind == "respell" and name in body:
            body[name] = (_spell(name, spelling), body[name][1])
        elif kind == "fold-twin":
            extra.append((_spell(name, spelling), value))
        elif kind == "beside-batch":
            beside.append((_spell(name, spelling) if not same else name, value))
    return [("type", "limit"), *body.values(), *extra], query, beside


def _json_object(pairs: list[tuple[str, object]]) -> str:
    return "{" + ",".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in pairs) + "}"


@st.composite
def coinex_request(draw: st.DrawFn) -> tuple[str, bytes, str | None]:
    batch = draw(st.booleans())
    orders = [draw(one_order()) for _ in range(draw(st.integers(1, 3)) if batch else 1)]
    query = [pair for _, q, _ in orders for pair in q]
    if batch:
        items = ",".join(_json_object(pairs) for pairs, _, _ in orders)
        beside = [pair for _, _, b in orders for pair in b]
        members = [f'"orders":[{items}]', *(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in beside)]
        body = "{" + ",".join(members) + "}"
        path = "/v2/spot/batch-order"
    else:
        body, path = _json_object(orders[0][0]), "/v2/spot/order"
    noise = st.sampled_from(["client_id=a+b", "client_id=a%20b", "x=1;market=DOGEUSDT", "n=1"])
    extras = [draw(noise)] if draw(RARE) else []
    separator = ";" if draw(RARE) else "&"
    parts = [f"{k}={v}" for k, v in query] + extras
    target = path + ("?" + separator.join(parts) if parts else "")
    content_type: str | None = "application/json"
    if draw(RARE):
        content_type = draw(
            st.sampled_from(
                ["application/json; charset=utf-8", "application/x-www-form-urlencoded", "text/plain", None]
            )
        )
    return target, body.encode(), content_type


GOOD = {"market": "BTCUSDT", "side": "buy", "type": "limit", "amount": "0.1", "price": "60000"}
BATCH = json.dumps({"orders": [GOOD], "Market": "DOGEUSDT"}).encode()


@settings(max_examples=800, deadline=None)
@given(request=coinex_request())
# The attacks, always tried (random search finds them only now and then):
@example(("/v2/spot/order?price=1", json.dumps(GOOD | {"type": "market", "price": None}).encode(), None))
@example(("/v2/spot/order?x=1;market=DOGEUSDT", json.dumps(GOOD).encode(), "application/json"))
@example(("/v2/spot/order?note=a+b&market=DOGEUSDT", json.dumps(GOOD).encode(), "application/json"))
@example(("/v2/spot/batch-order", BATCH, "application/json"))
@example(("/v2/spot/order", json.dumps(GOOD).encode(), "application/x-www-form-urlencoded"))
def test_an_allowed_coinex_request_satisfies_the_policy_as_the_venue_reads_it(request) -> None:
    target, body, content_type = request
    decision = decide_request(DESK, "coinex", "main", "POST", target, body, "coinex", content_type)
    if not decision.allowed:
        return
    reading = go_reading(body, content_type)
    assert reading is not None, f"allowed a body the venue does not parse as JSON: {content_type}"
    orders = orders_of(reading)
    assert satisfies(orders), (target, body, decision.reason)
    query = lenient_query(target.partition("?")[2])
    # lenient readings: the query wins; a batch's top level fills in for, or overrides, its orders
    top = {k: v for k, v in reading.items() if k in FIELDS} if "orders" in reading else {}
    from_query = {k: v for k, v in query.items() if k in FIELDS}
    for merged in ([{**top, **order, **from_query} for order in orders],
                   [{**order, **top, **from_query} for order in orders]):  # fmt: skip
        assert satisfies(merged), (target, body, decision.reason)


# --------------------------------------------------------------------------- EVEDEX: what is signed

KEY = coincurve.PrivateKey(bytes.fromhex("11" * 32))
# Near the edge, where rounding to 8 decimals can cross the cap: 10000 / 60000 = 0.16666666|66...
NEAR_CAP = st.integers(-60, 60).map(lambda step: Decimal("0.1666666666") + Decimal(step) * Decimal("1e-10"))
evedex_amount = st.one_of(
    NEAR_CAP, st.decimals(min_value=Decimal("0.000000001"), max_value=Decimal(2), places=10)
)


@settings(max_examples=300, deadline=None)
@example(quantities=[Decimal("0.166666666")], price=Decimal(60000), instrument="BTCUSD", mass=False)
@example(quantities=[Decimal("0.083333333")] * 2, price=Decimal(60000), instrument="BTCUSD", mass=True)
@given(
    quantities=st.lists(evedex_amount, min_size=1, max_size=3),
    price=st.sampled_from([Decimal("59999.999999996"), Decimal(60000), Decimal(65000), Decimal("3000.5")]),
    instrument=st.sampled_from(["BTCUSD", "ETHUSD"]),
    mass=st.booleans(),
)
def test_an_allowed_evedex_order_is_within_the_cap_as_signed(quantities, price, instrument, mass) -> None:
    if mass:
        path = f"/api/v2/order/mass-limit/{instrument}"
        payload: object = [
            {
                "id": f"00001:{i:026x}",
                "side": "BUY",
                "leverage": 1,
                "quantity": f"{q:f}",
                "limitPrice": f"{price:f}",
            }
            for i, q in enumerate(quantities)
        ]
    else:
        path = "/api/v2/order/limit"
        payload = {"id": "00001:" + "0" * 26, "instrument": instrument, "side": "BUY", "leverage": 1,
                   "quantity": f"{quantities[0]:f}", "limitPrice": f"{price:f}"}  # fmt: skip
    body = json.dumps(payload).encode()
    decision = decide_request(DESK, "evedex", "main", "POST", path, body, "evedex")
    if not decision.allowed:
        return
    signed = sign_order_body(OutgoingRequest("POST", path, (), body), KEY, 161803)
    sent = json.loads(signed.body, parse_float=Decimal)
    orders = sent if isinstance(sent, list) else [sent]
    total = Decimal(0)
    for order in orders:
        # the venue reads 8-decimal strings; check the text is what it executes
        quantity, limit = Decimal(order["quantity"]), Decimal(order["limitPrice"])
        assert quantity == quantity.quantize(Decimal("1e-8"), rounding=ROUND_HALF_UP)
        assert quantity * limit <= 10000, (order, decision.reason)
        total += quantity * limit
    assert total <= 10000
    # the venue trades the path's instrument on mass-limit, the body's otherwise
    assert path.endswith("/BTCUSD") if mass else all(order["instrument"] == "BTCUSD" for order in orders)

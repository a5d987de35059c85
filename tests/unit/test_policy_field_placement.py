"""Issue 13, the fields half: the policy decides on the venue's reading of the forwarded bytes.

One test (or table) per class: field placement, batches, path fields, case-folded JSON keys,
non-ASCII digits, Content-Type, ambiguous queries, method overrides, EVEDEX rounding. Each
asserts the decision *and* whether it is a 400 (``bad_request``: two parsers could read the
request differently) or a 403 (the policy refuses what it read).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from proxy.errors import BadRequest, PolicyDenied
from proxy.messages import Incoming
from proxy.pipeline import Audit
from proxy.policy.loader import load_policies
from proxy.policy.rules import decide_request
from tests.factories import build_pipeline, simulated

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "policies"
TOKEN = "fields-desk"


@pytest.fixture(scope="module")
def desk():
    return load_policies(FIXTURES / "fields").clients["desk"]


def cx(**fields: object) -> dict[str, object]:
    return {"market": "BTCUSDT", "side": "buy", "type": "limit", "amount": "0.5", "price": "60000"} | fields


def _body(value: object) -> bytes:
    if value is None:
        return b""
    return value.encode() if isinstance(value, str) else json.dumps(value).encode()


ALLOW, DENY, BAD = "allow", "deny", "bad_request"
CX_ORDER = ("coinex", "POST", "/v2/spot/order")
CX_BATCH = ("coinex", "POST", "/v2/spot/batch-order")
EVX_MASS = ("evedex", "POST", "/api/v2/order/mass-limit/BTCUSD")
ETH_MASS = ("evedex", "POST", "/api/v2/order/mass-limit/ETHUSD")
# venue, method, target, body, outcome, reason substring
CASES = [
    # --- 1. placement: the issue's example, and each venue's other half
    (*CX_ORDER[:2], "/v2/spot/order?price=1",
     {"market": "BTCUSDT", "side": "sell", "type": "market", "amount": "40"},
     BAD, "price is in the query; coinex reads it from the JSON body on POST"),
    (*CX_ORDER[:2], "/v2/spot/order?PRICE=1", cx(), BAD, "PRICE is in the query"),
    (*CX_ORDER, cx(), ALLOW, "desk.allow[0]"),
    ("coinex", "GET", "/v2/spot/pending-order", {"market": "BTCUSDT"},
     BAD, "coinex reads fields from the query on GET, and this request has a body"),
    ("coinex", "GET", "/v2/spot/pending-order?market=BTCUSDT", None, ALLOW, "desk.allow[1]"),
    ("invex", "DELETE", "/trading/v1/orders", {"symbol": "TRX_USDT"},
     BAD, "invex reads fields from the query on DELETE"),
    ("invex", "DELETE", "/trading/v1/orders?symbol=TRX_USDT&order_id=7", None, ALLOW, "desk.allow[4]"),
    ("haqqex", "POST", "/api/v1/orders?pair=BTC_USDT", {"amount": "0.001", "price": "65000"},
     BAD, "pair is in the query; haqqex reads it from the JSON body on POST"),
    # --- 2. batches: each order, and the batch total, within the rule
    (*CX_BATCH, {"orders": [cx(), cx(market="ETHUSDT", amount="10", price="2000")]},
     ALLOW, "desk.allow[0]"),
    (*CX_BATCH, {"orders": [cx(), cx(market="DOGEUSDT")]},
     DENY, "order [1]: market 'DOGEUSDT' is not one of [BTCUSDT, ETHUSDT]"),
    (*CX_BATCH, {"orders": [cx(), cx(amount="1", price="65000")]},
     DENY, "order [1]: notional 65000 (amount 1 * price 65000) is above max 50000"),
    (*CX_BATCH, {"orders": [cx(), cx()]},
     DENY, "batch notional 60000 (2 orders) is above max 50000"),
    (*CX_BATCH, {"orders": []}, DENY, "the batch (orders) is empty"),
    (*CX_BATCH, {"orders": [cx()], "market": "BTCUSDT"},
     BAD, "market is beside the orders list"),
    (*CX_BATCH, {"orders": [cx(), 5]}, DENY, "order [1] is not a JSON object"),
    (*CX_BATCH, [cx()], DENY, "the body is not a JSON object"),
    (*EVX_MASS, [{"side": "BUY", "quantity": "0.1", "limitPrice": "60000"}] * 2,
     DENY, "batch notional 12000 (2 orders) is above max 10000"),
    # --- 3. path fields: the EVEDEX instrument in the path is the one the venue trades
    (*ETH_MASS, [{"instrument": "BTCUSD", "side": "BUY", "quantity": "0.01", "limitPrice": "3000"}],
     BAD, "order [0]: instrument 'BTCUSD' in the body differs from the path's 'ETHUSD'"),
    (*ETH_MASS, [{"side": "BUY", "quantity": "0.01", "limitPrice": "3000"}],
     DENY, "order [0]: instrument 'ETHUSD' is not one of [BTCUSD]"),
    (*EVX_MASS, [{"side": "BUY", "quantity": "0.01", "limitPrice": "3000"}], ALLOW, "desk.allow[2]"),
    (*EVX_MASS, [{"instrument": "BTCUSD", "side": "BUY", "quantity": "0.01", "limitPrice": "3000"}],
     ALLOW, "desk.allow[2]"),
    ("evedex", "POST", "/api/v2/position/ETHUSD/close", {"instrument": "BTCUSD", "quantity": "1"},
     BAD, "instrument 'BTCUSD' in the body differs from the path's 'ETHUSD'"),
    ("evedex", "POST", "/api/v2/position/BTCUSD/close", {"quantity": "1", "leverage": 5},
     ALLOW, "desk.allow[3]"),
    ("evedex", "POST", "/api/v2/position/ETH%55SD/close", {"quantity": "1"},
     BAD, "instrument in the path is percent-encoded"),
    ("evedex", "POST", "/api/tpsl/ETHUSD", {"type": "take-profit", "side": "SELL", "quantity": "0.1",
     "price": "3000"}, DENY, "instrument 'ETHUSD' is not one of [BTCUSD]"),
    # --- 4. JSON keys equal after Unicode case folding, at every level; ASCII digits only
    (*CX_ORDER, '{"market":"BTCUSDT","MARKET":"DOGEUSDT","side":"buy","amount":"1","price":"1"}',
     BAD, "keys 'market' and 'MARKET' are the same to a case-insensitive decoder"),
    (*CX_ORDER, '{"market":"BTCUSDT","side":"buy","\u017fide":"short","amount":"1","price":"1"}',
     BAD, "the same to a case-insensitive decoder"),
    (*CX_ORDER, '{"market":"BTCUSDT","side":"buy","amount":"1","price":"1","x":{"a":1,"A":2}}',
     BAD, "keys 'a' and 'A'"),
    (*CX_BATCH, '{"orders":[{"market":"BTCUSDT","Market":"X","side":"buy","amount":"1","price":"1"}]}',
     BAD, "keys 'market' and 'Market'"),
    (*CX_ORDER, cx(amount="\u0661"), BAD, "amount '\u0661' has non-ASCII digits"),
    (*CX_ORDER, cx(price="\uff11\uff10\uff10"), BAD, "has non-ASCII digits"),
    # --- 5. queries two parsers split differently
    ("coinex", "GET", "/v2/spot/pending-order?market=BTCUSDT&x=1;market=DOGEUSDT", None,
     BAD, "';' in the query"),
    ("coinex", "GET", "/v2/spot/pending-order?Market=DOGEUSDT&market=BTCUSDT", None,
     BAD, "query key 'market' appears twice (letter case aside)"),
    ("coinex", "GET", "/v2/spot/pending-order?market=BTCUSDT&market=BTCUSDT", None,
     BAD, "query key 'market' appears twice"),
    ("coinex", "GET", "/v2/spot/pending-order?%6Darket=DOGEUSDT", None, BAD, "percent-encoded query key"),
    ("coinex", "GET", "/v2/spot/pending-order?market=BTCUSDT&note=a+b", None, BAD, "'+' in the query"),
    ("coinex", "GET", "/v2/spot/pending-order?market=BTCUSDT&=x", None, BAD, "empty query key"),
    ("coinex", "GET", "/v2/spot/pending-order?market=BTC%ZZUSDT", None, BAD, "malformed percent escape"),
    ("coinex", "GET", "/v2/spot/pending-order?market=BTCUSDT&note=%C0", None, BAD, "not UTF-8"),
    ("coinex", "GET", "/v2/spot/pending-order?market=BTCUSDT&note=a%20b", None, ALLOW, "desk.allow[1]"),
    (*CX_BATCH[:2], "/v2/spot/batch-order?orders[0][price]=1", {"orders": [cx()]},
     BAD, "query key 'orders[0][price]' has characters decoders read differently"),
    ("coinex", "GET", "/v2/spot/pending-order?market=BTCUSDT&order.market=DOGEUSDT", None,
     BAD, "has characters decoders read differently"),
    # --- 7. EVEDEX: notional on the values that are signed (8 dp, half-up)
    # 0.166666666 x 60000 = 9999.99996, but the signed quantity is 0.16666667: 10000.0002
    ("evedex", "POST", "/api/v2/order/limit", {"instrument": "BTCUSD", "side": "BUY",
     "quantity": "0.166666666", "limitPrice": "60000"},
     DENY, "notional 10000.0002 (quantity 0.16666667 * limitPrice 60000) is above max 10000"),
    ("evedex", "POST", "/api/v2/order/limit", {"instrument": "BTCUSD", "side": "BUY",
     "quantity": "0.166666664", "limitPrice": "60000"}, ALLOW, "desk.allow[2]"),
    ("evedex", "POST", "/api/v2/order/limit", {"instrument": "BTCUSD", "side": "BUY",
     "quantity": "0.6", "limitPrice": "16666.666666666"},  # the price is rounded too
     DENY, "notional 10000.000000002 (quantity 0.6 * limitPrice 16666.66666667) is above max 10000"),
]  # fmt: skip


@pytest.mark.parametrize(("venue", "method", "target", "body", "outcome", "reason"), CASES)
def test_decisions(desk, venue, method, target, body, outcome, reason) -> None:
    decision = decide_request(desk, venue, "main", method, target, _body(body), venue)
    assert decision.allowed is (outcome == ALLOW), decision.reason
    assert decision.bad_request is (outcome == BAD), decision.reason
    assert reason in decision.reason


# --------------------------------------------------------------------------- through the pipeline


class Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    async def __call__(self) -> bytes:
        return self.data


@pytest.fixture
def world():
    world = simulated(["coinex"])
    return build_pipeline(FIXTURES / "fields", world.venues, world.store, world.upstream), world.upstream


def _incoming(method: str, target: str, headers: tuple[tuple[str, str], ...]) -> Incoming:
    path, _, query = target.partition("?")
    auth = (("proxy-authorization", f"Bearer {TOKEN}"),)
    return Incoming(method, f"/coinex/main{path}".encode(), query.encode(), auth + headers, "10.0.0.1")


ORDER_BYTES = json.dumps(cx()).encode()


@pytest.mark.parametrize(
    ("headers", "refused"),
    [
        ((("content-type", "application/json"),), None),
        ((("content-type", "Application/JSON; charset=UTF-8"),), None),
        ((("content-type", "application/x-www-form-urlencoded"),), "Content-Type"),
        ((("content-type", "text/plain"),), "Content-Type"),
        ((("content-type", "application/json; charset=latin-1"),), "Content-Type"),
        ((("content-type", "application/json"), ("content-type", "text/plain")), "Content-Type"),
        ((), "no Content-Type"),
        ((("content-type", "application/json"), ("content-encoding", "gzip")), "Content-Encoding 'gzip'"),
        ((("content-type", "application/json"), ("content-encoding", "identity")), None),
    ],
)
async def test_content_type_must_be_the_one_the_venue_parses(world, headers, refused) -> None:
    pipeline, upstream = world
    request = _incoming("POST", "/v2/spot/order", headers)
    if refused is None:
        reply = await pipeline.handle(request, Body(ORDER_BYTES), Audit())
        assert reply.status == 200 and len(upstream.sent) == 1
        return
    with pytest.raises(BadRequest, match=refused):
        await pipeline.handle(request, Body(ORDER_BYTES), Audit())
    assert not upstream.sent


async def test_the_issue_example_is_a_400_and_never_reaches_the_venue(world) -> None:
    pipeline, upstream = world
    market_sell = json.dumps({"market": "BTCUSDT", "side": "sell", "type": "market", "amount": "40"}).encode()
    request = _incoming("POST", "/v2/spot/order?price=1", (("content-type", "application/json"),))
    with pytest.raises(BadRequest, match="price is in the query"):
        await pipeline.handle(request, Body(market_sell), Audit())
    assert not upstream.sent


@pytest.mark.parametrize("header", ["x-http-method-override", "x-method-override", "x-http-method"])
async def test_method_override_headers_are_refused(world, header) -> None:
    pipeline, upstream = world
    request = _incoming("GET", "/v2/spot/pending-order?market=BTCUSDT", ((header, "DELETE"),))
    with pytest.raises(BadRequest, match="method override"):
        await pipeline.handle(request, Body(b""), Audit())
    assert not upstream.sent


async def test_method_override_query_parameter_is_refused(world) -> None:
    pipeline, upstream = world
    request = _incoming("POST", "/v2/spot/order?_method=DELETE", (("content-type", "application/json"),))
    with pytest.raises(BadRequest, match="method override"):
        await pipeline.handle(request, Body(ORDER_BYTES), Audit())
    assert not upstream.sent


async def test_policy_refusal_stays_403(world) -> None:
    pipeline, upstream = world
    request = _incoming("POST", "/v2/spot/order", (("content-type", "application/json"),))
    with pytest.raises(PolicyDenied, match="DOGEUSDT"):
        await pipeline.handle(request, Body(json.dumps(cx(market="DOGEUSDT")).encode()), Audit())
    assert not upstream.sent


@pytest.mark.parametrize("text", ["\u0661", "\uff11\uff10\uff10", "1.\u0665"])
def test_evedex_signer_refuses_non_ascii_digits(text) -> None:
    # Decimal("\u0661") is 1 to Python; big.js (and the venue) reject it: never sign a value the
    # client did not spell in ASCII.
    from proxy.signers.evedex.orders import to_matcher_number

    with pytest.raises(BadRequest):
        to_matcher_number(text, "quantity")

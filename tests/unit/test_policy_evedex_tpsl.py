"""EVEDEX attached TP/SL orders (``tpsl`` in an order body) under a constrained rule.

An EVEDEX limit/market/stop-limit/mass-limit order may carry attached take-profit and
stop-loss orders with their own quantity and price; the signer passes them through
(``evedex_orders``: unsigned client fields). Their shape is not documented (venues.md), so
no sound reading exists: a rule with field constraints refuses a body carrying any
non-empty ``tpsl``, at any depth and in any letter case, and ``tpsl`` in the query.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from proxy.policy.loader import load_policies
from proxy.policy.rules import decide_request

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "policies"
LIMIT = "/api/v2/order/limit"
MASS = "/api/v2/order/mass-limit/BTCUSD"
ORDER = {"instrument": "BTCUSD", "side": "BUY", "quantity": "0.01", "limitPrice": "60000"}
# 100 BTC at 60 000: 6 000 000 USD, against the rule's 10 000 cap
BIG_TP = [{"type": "take-profit", "side": "SELL", "quantity": "100", "price": "60000"}]


@pytest.fixture(scope="module")
def desk():
    return load_policies(FIXTURES / "fields").clients["desk"]


REFUSED = [
    (LIMIT, ORDER | {"tpsl": BIG_TP}, "tpsl"),
    (LIMIT, ORDER | {"TPSL": BIG_TP}, "TPSL"),
    (LIMIT, ORDER | {"tp\u017fl": BIG_TP}, "tp\u017fl"),  # U+017F folds to 's'
    (LIMIT, ORDER | {"tpsl": BIG_TP[0]}, "tpsl"),  # one object, not a list
    (LIMIT, ORDER | {"tpsl": "x"}, "tpsl"),
    (LIMIT, ORDER | {"order": {"tpsl": BIG_TP}}, "order.tpsl"),  # nested deeper
    ("/api/v2/order/market", {"instrument": "BTCUSD", "side": "BUY", "cashQuantity": "100",
     "timeInForce": "IOC", "tpsl": BIG_TP}, "tpsl"),
    ("/api/v2/order/stop-limit", ORDER | {"stopPrice": "59000", "tpsl": BIG_TP}, "tpsl"),
    (MASS, [ORDER, ORDER | {"tpsl": BIG_TP}], "[1].tpsl"),  # on one order of a batch
]  # fmt: skip


@pytest.mark.parametrize(("path", "body", "where"), REFUSED)
def test_attached_tpsl_is_refused_under_a_constrained_rule(desk, path, body, where) -> None:
    decision = decide_request(desk, "evedex", "main", "POST", path, json.dumps(body).encode(), "evedex")
    assert not decision.allowed
    assert not decision.bad_request  # a 403: read fine, but not checkable against the rule
    assert f"{where}: attached orders are not checked" in decision.reason


def test_tpsl_in_the_query_is_refused(desk) -> None:
    decision = decide_request(
        desk, "evedex", "main", "POST", LIMIT + "?tpsl=1", json.dumps(ORDER).encode(), "evedex"
    )
    assert not decision.allowed
    assert "tpsl" in decision.reason


@pytest.mark.parametrize("empty", [None, []])
def test_an_empty_tpsl_is_no_attached_order(desk, empty) -> None:
    body = json.dumps(ORDER | {"tpsl": empty}).encode()
    decision = decide_request(desk, "evedex", "main", "POST", LIMIT, body, "evedex")
    assert decision.allowed, decision.reason
    assert "desk.allow[2]" in decision.reason


def test_without_tpsl_the_order_is_allowed(desk) -> None:
    decision = decide_request(desk, "evedex", "main", "POST", MASS, json.dumps([ORDER]).encode(), "evedex")
    assert decision.allowed, decision.reason

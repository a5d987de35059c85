"""The shipped order field names (``proxy/policy/order_fields.yaml``): valid, complete, consistent.

The names are data the security team reviews; these tests keep them honest: every scheme
exists, and every order the demo tour sends (the bodies the simulated venues accept) is
one the table can price.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.config_errors import ConfigError
from proxy.dev.demo import TOUR
from proxy.policy.order_fields import ORDER_FIELDS, load_order_fields
from proxy.signers import SIGNERS


def test_shipped_table_covers_every_scheme() -> None:
    table = load_order_fields()
    assert table.source == str(ORDER_FIELDS)
    assert set(table.schemes) == set(SIGNERS)
    for endpoints in table.schemes.values():
        assert endpoints


@pytest.mark.parametrize(
    "step", [s for s in TOUR if s.method in ("POST", "PUT") and "order" in s.path], ids=lambda s: s.title
)
def test_every_demo_order_has_a_notional(step) -> None:
    endpoint = load_order_fields().find(step.scheme, step.method, step.path)
    assert endpoint is not None, f"{step.scheme} {step.method} {step.path} is not in order_fields.yaml"
    named = [endpoint.notional] if endpoint.notional else [endpoint.quantity, endpoint.price]
    for name in [*named, endpoint.market, endpoint.side]:
        assert name is None or name in step.body


@pytest.mark.parametrize(
    ("scheme", "method", "path", "quantity", "price"),
    [
        ("coinex", "POST", "/v2/spot/order", "amount", "price"),
        ("coinex", "POST", "/v2/futures/order", "amount", "price"),
        ("icrypex", "POST", "/sapi/v1/orders", "quantity", "price"),
        ("haqqex", "POST", "/api/v1/orders", "amount", "price"),
        ("invex", "POST", "/trading/v1/orders", "quantity", "price"),
        ("evedex", "POST", "/api/v2/order/limit", "quantity", "limitPrice"),
        ("evedex", "PUT", "/api/order/00001:ab/limit", "quantity", "limitPrice"),
    ],
)
def test_lookup(scheme: str, method: str, path: str, quantity: str, price: str) -> None:
    endpoint = load_order_fields().find(scheme, method, path)
    assert endpoint is not None and (endpoint.quantity, endpoint.price) == (quantity, price)


def test_no_entry_for_other_methods_or_unknown_schemes() -> None:
    table = load_order_fields()
    assert table.find("coinex", "GET", "/v2/spot/order") is None
    assert table.find("nope", "POST", "/v2/spot/order") is None
    close = table.find("evedex", "POST", "/api/v2/position/BTCUSD/close")
    assert close is not None and close.price is None  # no price: no notional; the path has the instrument
    assert close.path_values("/api/v2/position/BTCUSD/close") == {"instrument": "BTCUSD"}


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("version: 1\nschemes: {x: [{method: POST, path: /o, quantity: q, source: s}]}\n", "schemes.x.0"),
        (
            "version: 1\nschemes: {x: [{method: POST, path: /o, notional: n, source: s, extra: 1}]}\n",
            "schemes",
        ),
        (
            "version: 1\nschemes: {x: [{method: FETCH, path: /o, notional: n, source: s}]}\n",
            "schemes.x.0.method",
        ),
        ("version: 2\nschemes: {}\n", "version"),
    ],
)
def test_bad_table_names_file_and_field(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "order_fields.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_order_fields(path)
    assert info.value.file == str(path) and info.value.field.startswith(field)


def test_missing_table_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the order field names"):
        load_order_fields(tmp_path / "absent.yaml")

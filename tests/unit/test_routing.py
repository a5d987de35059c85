from __future__ import annotations

import pytest

from proxy.errors import BadRequest, UnknownRoute
from proxy.policy.routing import parse_route


@pytest.mark.parametrize(
    ("raw", "query", "venue", "account", "target"),
    [
        (
            b"/coinex/main/v2/spot/pending-order",
            b"market=BTCUSDT",
            "coinex",
            "main",
            "/v2/spot/pending-order?market=BTCUSDT",
        ),
        (b"/coinex/main/v2/x", b"", "coinex", "main", "/v2/x"),
        (b"/invex/acct-2/trading/v1/orders/", b"", "invex", "acct-2", "/trading/v1/orders/"),
        # an escape of a reserved character (':') stays byte-for-byte; so does the query
        (b"/coinex/main/v2/a%3Ab", b"q=%2F&x=a+b", "coinex", "main", "/v2/a%3Ab?q=%2F&x=a+b"),
    ],
)
def test_routes(raw: bytes, query: bytes, venue: str, account: str, target: str) -> None:
    route = parse_route(raw, query)
    assert (route.venue, route.account, route.target) == (venue, account, target)


@pytest.mark.parametrize(
    "raw",
    [
        b"/coinex/main/v2/../withdraw",
        b"/coinex/main/v2/./x",
        b"/coinex/main/v2/%2e%2e/withdraw",
        b"/coinex/main/v2/%2E./withdraw",
        b"/coinex/main/v2/a%2fb",
        b"/coinex/main/v2/a%5Cb",
        b"/coinex/main/v2/a%252fb",
        b"/coinex/main/v2//x",
        b"/coinex//v2/x",
        b"/coinex/main/v2/a\\b",
        b"http://evil.example/coinex/main/v2/x",
        b"/coinex/main/v2/\xc3\xa9",
        b"/coinex/main/v2/a b",
        b"/coinex/main/v2/a%20b",  # an encoded space: servers trim or reject it (path_spelling)
        b"/coinex/main/" + b"a" * 9000,
    ],
)
def test_refused_paths(raw: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_route(raw, b"")


def test_query_with_control_bytes_refused() -> None:
    with pytest.raises(BadRequest):
        parse_route(b"/coinex/main/v2/x", b"a=1\r\nX: y")


@pytest.mark.parametrize("raw", [b"/coinex/main", b"/coinex", b"/", b"/co$nex/main/x"])
def test_unknown_routes(raw: bytes) -> None:
    with pytest.raises(UnknownRoute):
        parse_route(raw, b"")

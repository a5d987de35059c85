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


# Cases pinned while ``parse_route`` got its short way for clean targets (issue 17): a
# differential fuzz against the previous implementation found no disagreement; these are the
# spellings nearest the edges of the short way's screen, each with the outcome written out.
BAD, UNKNOWN = BadRequest, UnknownRoute
DOT, EMPTY = "path contains a dot segment", "path contains an empty segment ('//')"
NOT_ORIGIN = "request target must be origin-form (/<venue>/<account>/<path>)"
ESCAPED = "path contains an encoded dot, slash, backslash or percent sign"
SHAPE, NAMES = "proxy path must be /<venue>/<account>/<upstream path>", "unknown venue or account"


@pytest.mark.parametrize(
    ("raw", "query", "expected"),
    [
        (b"/coinex/main/", b"", ("coinex", "main", "/", "")),  # the upstream root, trailing slash kept
        (b"/coinex/main/v2/...", b"", ("coinex", "main", "/v2/...", "")),  # three dots: a name
        (b"/coinex/main/v2/.well/..x", b"", ("coinex", "main", "/v2/.well/..x", "")),
        (b"/coinex/main/v2/a%3Ab%3a%5B", b"", ("coinex", "main", "/v2/a%3Ab%3a%5B", "")),  # kept, any case
        (b"/" + b"A" * 64 + b"/main/x", b"", ("A" * 64, "main", "/x", "")),
        (b"/coinex/main/x", b"a=%55&b=%3B&c=%2F", ("coinex", "main", "/x", "a=%55&b=%3B&c=%2F")),
        (b"/coinex/main/v2/.", b"", (BAD, DOT)),  # a dot segment at the end
        (b"/coinex/main/v2/..", b"", (BAD, DOT)),
        (b"/./main/x", b"", (BAD, DOT)),  # before the venue name is looked at
        (b"//coinex/main/x", b"", (BAD, EMPTY)),
        (b"/co$nex//x", b"", (BAD, EMPTY)),  # segments before names
        (b"/coinex/main//", b"", (BAD, EMPTY)),
        (b"/coinex/main/v2/a%3Gb", b"",
         (BAD, "path contains '%' not followed by two hex digits ('%3G'): servers disagree on it")),
        (b"/coinex/main/v2/%2e%2e", b"", (BAD, ESCAPED)),
        (b"/coinex/main/v2/a\\b", b"", (BAD, "path contains a backslash")),
        (b"x/y", b"\x00", (BAD, "query contains bytes that are not printable ASCII")),  # before the form
        (b"http://h/coinex/main/x", b"a;b", (BAD, NOT_ORIGIN)),  # the form before query spellings
        (b"/coinex/main/v2/x%2F", b"\x7f", (BAD, ESCAPED)),  # the path's bytes before the query's
        (b"/coinex/main/x", b"%u0070", (BAD, "query contains a '%' that is not a percent-escape (%XX), "
                                              "which servers decode differently")),
        (b"/coinex/main", b"", (UNKNOWN, SHAPE)),
        (b"/coinex//", b"", (BAD, EMPTY)),
        (b"/coinex", b"a;b", (BAD, "query contains ';', a parameter separator to some servers and not to "
                                   "others (send %3B)")),  # spellings before the shape
        (b"/" + b"A" * 65 + b"/main/x", b"", (UNKNOWN, NAMES)),
        (b"/co.nex/main/x", b"", (UNKNOWN, NAMES)),
        (b"/coinex/-main/x", b"", (UNKNOWN, NAMES)),
        (b"/coinex/main/" + b"a" * 8179, b"", ("coinex", "main", "/" + "a" * 8179, "")),  # 8,192: the cap
        (b"/coinex/main/" + b"a" * 8179, b"q", (BAD, "request target too long")),
    ],
)  # fmt: skip
def test_route_outcomes(raw: bytes, query: bytes, expected: tuple[object, ...]) -> None:
    if expected[0] in (BAD, UNKNOWN):
        with pytest.raises(expected[0]) as info:  # type: ignore[call-overload]
            parse_route(raw, query)
        assert type(info.value) is expected[0] and info.value.message == expected[1]
    else:
        route = parse_route(raw, query)
        assert (route.venue, route.account, route.upstream_path, route.query) == expected

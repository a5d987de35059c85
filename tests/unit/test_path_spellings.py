"""Spellings of one path that a venue's server routes to the same endpoint: percent-encoded
unreserved letters, letter case, a trailing slash, ``;params``, ``+``, encoded whitespace and
non-ASCII bytes. Each either is refused (``bad_request``) or meets the same deny rules and
rate-limit groups as the canonical spelling (``docs/policies.md``, "Paths").

The expected outcomes are written out by hand; the shipped example policy and the shipped
CoinEx rate-limit profile are the subjects, so the tests show what an operator gets.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from proxy.app import build_rate_limits
from proxy.cli import main
from proxy.errors import BadRequest
from proxy.messages import OutgoingRequest
from proxy.policy.loader import load_policies
from proxy.policy.routing import parse_route
from proxy.policy.rules import decide
from proxy.settings import build_settings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def market_maker():
    return load_policies(REPO / "policies", allow_example_tokens=True).clients["market-maker"]


# --- refused at routing: no canonical form can say what the venue will read ------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"/coinex/main/v2/assets/with%64raw", "percent-encoded 'd'"),
        (b"/coinex/main/v2/assets/with%44raw", "percent-encoded 'D'"),
        (b"/coinex/main/v2/assets/%77ithdraw", "percent-encoded 'w'"),
        (b"/coinex/main/v2/assets/withdra%7E", "percent-encoded '~'"),
        (b"/coinex/main/v2/assets/withdra%5f", "percent-encoded '_'"),
        (b"/coinex/main/v2/assets/withdraw%2D", "percent-encoded '-'"),
        (b"/coinex/main/v2/assets/withdraw%31", "percent-encoded '1'"),
        (b"/coinex/main/v2/assets/withdraw;jsessionid=1", "';'"),
        (b"/coinex/main/v2/assets/withdraw%3b", "%3b"),
        (b"/coinex/main/v2/assets/withdraw+", "'+'"),
        (b"/coinex/main/v2/assets/withdraw%2B", "%2B"),
        (b"/coinex/main/v2/assets/withdraw%20", "space or control"),
        (b"/coinex/main/v2/assets/withdraw%09", "space or control"),
        (b"/coinex/main/v2/assets/withdraw%00", "space or control"),
        (b"/coinex/main/v2/assets/withdra%c0%f7", "non-ASCII"),  # overlong / folded forms
        (b"/coinex/main/v2/assets/%ef%bd%97ithdraw", "non-ASCII"),  # fullwidth 'w' (NFKC: 'w')
        (b"/coinex/main/v2/assets/with%u0064raw", "two hex digits"),  # IIS %u escapes
        (b"/coinex/main/v2/assets/withdraw%", "two hex digits"),
        (b"/coinex/main/v2/assets/withdraw#x", "fragment"),
        (b"/coinex/main/v2/assets/withdraw%3Fx=1", "delimiter"),  # decoded by a front proxy: ?x=1
        (b"/coinex/main/v2/assets/withdraw%23x", "delimiter"),
    ],
)
def test_ambiguous_path_spellings_are_refused(raw: bytes, message: str) -> None:
    with pytest.raises(BadRequest) as info:
        parse_route(raw, b"")
    assert message in info.value.message


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (b"market=BTCUSDT;price=1", "';'"),
        (b"market=BTCUSDT#price=1", "fragment"),
        (b"%u0070rice=1", "not a percent-escape"),
        (b"price=1%", "not a percent-escape"),
        (b"price%00x=99999&price=1", "control byte"),
        (b"market=BTCUSDT%0a", "control byte"),
        (b"market=BTCUSDT%7F", "control byte"),
    ],
)
def test_ambiguous_query_spellings_are_refused(query: bytes, message: str) -> None:
    with pytest.raises(BadRequest) as info:
        parse_route(b"/coinex/main/v2/spot/pending-order", query)
    assert message in info.value.message


@pytest.mark.parametrize(
    ("raw", "query", "target"),
    [
        # ':' percent-encoded by the client SDK in an EVEDEX order id: every server decodes it to ':'
        (b"/evedex/main/api/order/00123%3A0123", b"", "/api/order/00123%3A0123"),
        (b"/evedex/main/api/order/00123:0123", b"", "/api/order/00123:0123"),
        # escapes in the query are decoded alike by every parser (ours included): they pass
        (b"/coinex/main/v2/spot/pending-order", b"market=BTC%55SDT&x=a+b&y=%3B",
         "/v2/spot/pending-order?market=BTC%55SDT&x=a+b&y=%3B"),
        (b"/invex/main/trading/v1/orders/", b"", "/trading/v1/orders/"),
    ],
)  # fmt: skip
def test_unambiguous_spellings_still_route_byte_for_byte(raw: bytes, query: bytes, target: str) -> None:
    assert parse_route(raw, query).target == target


# --- deny rules: at least as broad as any venue's routing ------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/v2/assets/WITHDRAW",
        "/v2/assets/Withdraw",
        "/v2/assets/withdraw/",
        "/v2/assets/WithDraw/",
        "/V2/ASSETS/WITHDRAWAL-ADDRESS",
    ],
)
def test_deny_rule_catches_case_and_trailing_slash_variants(market_maker, path: str) -> None:
    decision = decide(market_maker, "coinex", "main", "GET", path)
    assert not decision.allowed
    assert decision.rule == "market-maker.deny[0] in example.yaml"


def test_deny_rule_written_with_a_trailing_slash_catches_the_path_without(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(
        "version: 1\nclients:\n  c:\n    loopback: true\n"
        "    allow: [{venue: x, paths: ['/**']}]\n"
        "    deny: [{venue: x, paths: ['/v1/Admin/', '/v1/keys/**']}]\n"
    )
    client = load_policies(tmp_path).clients["c"]
    for path in ("/v1/admin", "/v1/ADMIN/", "/v1/keys", "/v1/Keys/", "/v1/keys/k1"):
        assert decide(client, "x", "main", "GET", path).rule == "c.deny[0] in p.yaml", path
    assert decide(client, "x", "main", "GET", "/v1/administrator").allowed


# --- allow rules: only the spelling the rule writes ------------------------------------------


def test_a_case_variant_does_not_fall_through_to_a_broader_allow_rule(tmp_path: Path) -> None:
    # The first rule constrains orders; the second allows other /v2/spot/ POSTs. A case-
    # insensitive venue routes /v2/spot/ORDER to the order endpoint: it must not reach the
    # second rule unconstrained.
    (tmp_path / "p.yaml").write_text(
        "version: 1\nclients:\n  c:\n    loopback: true\n    allow:\n"
        "      - {venue: coinex, methods: [POST], paths: ['/v2/spot/order'],\n"
        "         fields: {market: {in: [BTCUSDT]}}}\n"
        "      - {venue: coinex, methods: [POST], paths: ['/v2/spot/*']}\n"
    )
    client = load_policies(tmp_path).clients["c"]
    for path in ("/v2/spot/ORDER", "/v2/spot/Order", "/v2/spot/order/"):
        decision = decide(client, "coinex", "main", "POST", path)
        assert not decision.allowed and decision.pending is None, path
        assert "c.allow[0] in p.yaml" in decision.reason and "spell" in decision.reason, path
    exact = decide(client, "coinex", "main", "POST", "/v2/spot/order")
    assert exact.pending is not None and exact.pending.candidates[0].name == "c.allow[0] in p.yaml"
    assert decide(client, "coinex", "main", "POST", "/v2/spot/cancel-order").allowed


def test_allow_rule_matches_only_its_own_spelling(market_maker) -> None:
    decision = decide(market_maker, "coinex", "main", "POST", "/v2/spot/Cancel-Order")
    assert not decision.allowed and "market-maker.allow[2] in example.yaml" in decision.reason
    # A wildcard keeps its meaning: '*' and '**' match whatever the client spelled there.
    assert decide(market_maker, "coinex", "main", "GET", "/v2/spot/market/BTCUSDT").allowed


# --- rate-limit groups: charged as the venue routes ------------------------------------------

PLACE, IP = "account coinex/main spot_place (30/1s) x1", "venue coinex ip (400/1s) x1"


def _charged(tmp_path: Path, method: str, path: str, body: Any = None) -> list[str]:
    venues = {"coinex": {"scheme": "coinex", "upstream": "https://coinex.test", "accounts": ["main"]}}
    settings = build_settings({"venues": venues, "policies": str(tmp_path)}, tmp_path / "proxy.yaml", {})
    raw = b"" if body is None else json.dumps(body).encode()
    charge = build_rate_limits(settings).charge("coinex", "main", OutgoingRequest(method, path, (), raw))
    return sorted(f"{b.name} x{b.cost:g}" for b in charge.buckets)


@pytest.mark.parametrize(
    ("method", "path", "body", "charged"),
    [
        ("POST", "/v2/spot/ORDER", {}, [PLACE, IP]),
        ("POST", "/v2/spot/order/", {}, [PLACE, IP]),
        ("POST", "/V2/Spot/Batch-Order/", {"orders": [{}, {}, {}]},
         ["account coinex/main spot_place (30/1s) x3", "venue coinex ip (400/1s) x1"]),
        ("GET", "/v2/ASSETS/spot/balance", None,
         ["account coinex/main account (10/1s) x1", "venue coinex ip (400/1s) x1"]),
        ("GET", "/v2/assets", None, ["account coinex/main account (10/1s) x1", IP]),
        ("GET", "/v2/spot/pending-order/?market=BTCUSDT", None,
         ["account coinex/main order_query (50/1s) x1", "venue coinex ip (400/1s) x1"]),
    ],
)  # fmt: skip
def test_rate_limit_groups_charge_every_spelling_of_an_endpoint(
    tmp_path: Path, method: str, path: str, body: Any, charged: list[str]
) -> None:
    assert _charged(tmp_path, method, path, body) == charged


def test_shipped_path_cases_pass(capsys) -> None:
    code = main(["policy", "test", str(REPO / "policies" / "cases" / "paths.yaml")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.count("\nok ") == 12 and " 0 failed" in out

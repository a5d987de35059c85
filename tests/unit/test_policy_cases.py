"""``signing-proxy policy test`` and ``policy explain`` through the real CLI entry point.

The first test is the CI gate the issue asks for: the shipped cases must pass against the
shipped example policies, with the shipped example config.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
import yaml

from proxy.cli import main

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_CASES = ROOT / "policies" / "cases" / "example-cases.yaml"
EXAMPLE_CONFIG = ROOT / "proxy.example.yaml"


@pytest.mark.parametrize(
    "where", [[], ["--config", str(EXAMPLE_CONFIG)], ["--policies", str(ROOT / "policies")]]
)
def test_shipped_cases_pass_against_shipped_policies(capsys, where: list[str]) -> None:
    code = main(["policy", "test", str(SHIPPED_CASES), *where])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "FAIL" not in out and " 0 failed" in out
    assert out.count("\nok ") >= 20


def _cases(tmp_path: Path, cases: list[dict[str, object]], **top: object) -> Path:
    path = tmp_path / "cases.yaml"
    doc = {"version": 1, "policies": str(ROOT / "policies"), **top, "cases": cases}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


CASE = {
    "name": "buy",
    "client": "market-maker",
    "venue": "coinex",
    "account": "main",
    "method": "POST",
    "path": "/v2/spot/order",
    "body": {"market": "BTCUSDT", "side": "buy", "amount": "1", "price": "60000"},
    "expect": "deny",
    "reason": "notional 60000",
}


@pytest.mark.parametrize(
    ("change", "shown"),
    [
        ({"expect": "allow"}, "FAIL    buy  allow   deny"),  # wrong decision
        ({"reason": "market 'BTCUSDT'"}, "expected deny with a reason containing \"market 'BTCUSDT'\""),
        ({"expect": "report", "reason": "notional"}, "FAIL"),  # denied, not reported
    ],
)
def test_a_mismatch_exits_1_and_says_why(tmp_path: Path, capsys, change: dict[str, str], shown: str) -> None:
    good = dict(CASE, name="good")
    code = main(["policy", "test", str(_cases(tmp_path, [good, CASE | change]))])
    out = capsys.readouterr().out
    assert code == 1
    assert shown in out
    assert "2 cases: 1 passed, 1 failed" in out


def test_matching_case_passes(tmp_path: Path, capsys) -> None:
    assert main(["policy", "test", str(_cases(tmp_path, [CASE]))]) == 0
    assert "notional 60000 (amount 1 * price 60000) is above max 50000" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("cases", "top", "field"),
    [
        ([CASE | {"expect": "maybe"}], {}, "cases.0.expect"),
        ([CASE | {"extra": 1}], {}, "cases.0.extra"),
        ([{k: v for k, v in CASE.items() if k != "reason"}], {}, "cases.0.reason"),
        ([CASE | {"method": "FETCH"}], {}, "cases.0.method"),
        ([CASE | {"client": "nobody"}], {}, "cases.0.client"),
        ([], {}, "cases"),
        ([CASE], {"version": 2}, "version"),
    ],
)
def test_malformed_cases_exit_2_naming_the_field(tmp_path: Path, capsys, cases, top, field: str) -> None:
    code = main(["policy", "test", str(_cases(tmp_path, cases, **top))])
    err = capsys.readouterr().err
    assert code == 2
    assert f"cases.yaml: {field}" in err


def test_broken_policies_exit_2(tmp_path: Path, capsys) -> None:
    policies = tmp_path / "pol"
    policies.mkdir()
    (policies / "p.yaml").write_text(
        "version: 1\nclients:\n  a: {loopback: true, allow: [{paths: [/x], notional: {}}]}\n"
    )
    code = main(["policy", "test", str(_cases(tmp_path, [CASE])), "--policies", str(policies)])
    assert code == 2
    assert "p.yaml: clients.a.allow.0.notional" in capsys.readouterr().err


def test_schemes_map_venue_names_for_notional(tmp_path: Path, capsys) -> None:
    policies = tmp_path / "pol"
    policies.mkdir()
    rule = "{venue: eu, methods: [POST], paths: [/v2/spot/order], notional: {max: '10'}}"
    (policies / "p.yaml").write_text(f"version: 1\nclients:\n  a:\n    loopback: true\n    allow: [{rule}]\n")
    case = CASE | {"client": "a", "venue": "eu", "expect": "deny", "reason": "notional 60000"}
    assert (
        main(["policy", "test", str(_cases(tmp_path, [case], policies="pol", schemes={"eu": "coinex"}))]) == 0
    )
    case = case | {"reason": "eu reads no order fields on POST"}  # without the map, eu is no scheme
    assert main(["policy", "test", str(_cases(tmp_path, [case], policies="pol"))]) == 0
    capsys.readouterr()


EXPLAIN = ["policy", "explain", "--config", str(EXAMPLE_CONFIG), "--venue", "coinex", "--account", "main"]


def test_explain_prints_one_decision(capsys) -> None:
    body = '{"market": "BTCUSDT", "side": "sell", "amount": "40", "price": "65000"}'
    code = main(
        [*EXPLAIN, "--client", "market-maker", "--method", "post", "--path", "/v2/spot/order", "--body", body]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "decision:   deny" in out
    assert "notional 2600000 (amount 40 * price 65000) is above max 50000" in out
    assert (
        "order fields (coinex): POST /v2/spot/order: market=market side=side quantity=amount price=price"
        in out
    )


def test_explain_report_mode_and_exit_codes(capsys) -> None:
    args = ["--venue", "icrypex", "--account", "main", "--method", "POST", "--path", "/sapi/v1/orders"]
    code = main(["policy", "explain", "--config", str(EXAMPLE_CONFIG), "--client", "arb-bot", *args[:8]])
    out = capsys.readouterr().out
    assert code == 0
    assert "decision:   report (let through; enforcing would deny)" in out
    assert (
        "would deny: allow rule arb-bot.allow[1] in example.yaml matches the path but symbol is missing"
        in out
    )
    code = main(
        [*EXPLAIN, "--client", "market-maker", "--method", "GET", "--path", "/v2/assets/spot/balance"]
    )
    assert code == 0 and "decision:   allow" in capsys.readouterr().out


def test_explain_unknown_client_exits_2(capsys) -> None:
    assert main([*EXPLAIN, "--client", "nobody", "--method", "GET", "--path", "/x"]) == 2
    assert "--client: unknown client 'nobody'" in capsys.readouterr().err


def test_check_mentions_report_mode(capsys, tmp_path: Path) -> None:
    # The shipped example's tokens are refused by check (test_example_tokens): an operator's
    # copy carries its own token hashes.
    policies = tmp_path / "policies"
    policies.mkdir()
    text = (ROOT / "policies" / "example.yaml").read_text()
    for digest in re.findall(r"token_sha256: ([0-9a-f]{64})", text):
        text = text.replace(digest, hashlib.sha256(digest.encode()).hexdigest())
    (policies / "example.yaml").write_text(text)
    config = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    config["policies"] = str(policies)
    (tmp_path / "proxy.yaml").write_text(yaml.safe_dump(config))
    assert main(["check", "--config", str(tmp_path / "proxy.yaml")]) == 0
    assert "policies: note: client arb-bot is in report mode" in capsys.readouterr().out


FIELD_CASES = ROOT / "policies" / "cases" / "fields.yaml"


def test_shipped_field_cases_cover_every_class(capsys) -> None:
    code = main(["policy", "test", str(FIELD_CASES), "--config", str(EXAMPLE_CONFIG)])
    out = capsys.readouterr().out
    assert code == 0, out
    for marker in (
        "is in the query",
        "batch notional",
        "differs from the path",
        "case-insensitive decoder",
        "non-ASCII digits",
        "Content-Type",
        "query contains ';'",
        "method override",
        "0.16666667",
    ):
        assert marker in out, marker


def test_explain_reads_the_content_type_like_the_proxy(capsys) -> None:
    body = '{"market": "BTCUSDT", "side": "sell", "amount": "0.1", "price": "65000"}'
    request = ["--method", "post", "--path", "/v2/spot/order", "--body", body]
    args = [*EXPLAIN, "--client", "market-maker", *request]
    assert main(args) == 0
    capsys.readouterr()
    assert main([*args, "--header", "Content-Type: text/plain"]) == 1
    assert "Content-Type 'text/plain': field rules read a JSON body" in capsys.readouterr().out

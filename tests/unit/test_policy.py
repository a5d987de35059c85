"""Policy decisions, table-driven over the fixture policy, asserting the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.config_errors import ConfigError
from proxy.policy.loader import load_policies
from proxy.policy.rules import compile_glob, decide

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "policies"


@pytest.fixture(scope="module")
def policies():
    return load_policies(FIXTURES / "basic", venues=["coinex", "icrypex", "haqqex"])


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("/v2/spot/*", "/v2/spot/order", True),
        ("/v2/spot/*", "/v2/spot/order/x", False),
        ("/v2/spot/**", "/v2/spot/order/x", True),
        ("/v2/spot/**", "/v2/spot", False),
        ("**/withdraw*", "/v2/assets/withdraw", True),
        ("**/withdraw*", "/v2/assets/withdrawal-address", True),
        ("**/withdraw*", "/v2/assets/WITHDRAW", False),  # exact; deny rules: test_path_spellings
        ("/v2/spot/order", "/v2/spot/order;x", False),
        ("/v2/a.b", "/v2/aXb", False),  # '.' is literal, not a regex wildcard
    ],
)
def test_glob(pattern: str, path: str, matches: bool) -> None:
    assert bool(compile_glob(pattern).match(path)) is matches


@pytest.mark.parametrize(
    ("client", "venue", "account", "method", "path", "allowed", "reason"),
    [
        (
            "market-maker",
            "coinex",
            "main",
            "GET",
            "/v2/spot/pending-order",
            True,
            "allow rule market-maker.allow[0] in desk.yaml matches",
        ),
        (
            "market-maker",
            "coinex",
            "main",
            "POST",
            "/v2/spot/order",
            True,
            "allow rule market-maker.allow[1] in desk.yaml matches",
        ),
        (
            "market-maker",
            "coinex",
            "main",
            "POST",
            "/v2/spot/pending-order",
            False,
            "no allow rule for client market-maker matches POST /v2/spot/pending-order on coinex/main",
        ),
        (
            "market-maker",
            "coinex",
            "other",
            "GET",
            "/v2/spot/pending-order",
            False,
            "no allow rule for client market-maker matches GET /v2/spot/pending-order on coinex/other",
        ),
        (
            "market-maker",
            "coinex",
            "main",
            "GET",
            "/v2/assets/withdraw",
            False,
            "deny rule market-maker.deny[0] in desk.yaml matches",
        ),
        (
            "market-maker",
            "icrypex",
            "any-account",
            "GET",
            "/sapi/v1/wallet",
            True,
            "allow rule market-maker.allow[2] in desk.yaml matches",
        ),
        (
            "market-maker",
            "icrypex",
            "x",
            "GET",
            "/sapi/v1/wallet/withdraw",
            False,
            "deny rule market-maker.deny[0] in desk.yaml matches",
        ),
        (
            "sidecar",
            "haqqex",
            "main",
            "DELETE",
            "/api/v1/order",
            True,
            "allow rule sidecar.allow[0] in desk.yaml matches",
        ),
        (
            "sidecar",
            "coinex",
            "main",
            "GET",
            "/v2/spot/order",
            False,
            "no allow rule for client sidecar matches GET /v2/spot/order on coinex/main",
        ),
    ],
)
def test_decisions(policies, client, venue, account, method, path, allowed, reason) -> None:
    decision = decide(policies.clients[client], venue, account, method, path)
    assert decision.allowed is allowed
    assert decision.reason.startswith(reason)


def test_loaded_shape(policies) -> None:
    assert policies.loopback is not None and policies.loopback.name == "sidecar"
    assert policies.account_limits["coinex/main"].per_second == 10
    assert policies.clients["market-maker"].rate_limit.burst == 40


BAD_CASES = [
    ("version: 2\nclients: {}\n", "version"),
    ("version: 1\nclients:\n  a: {loopback: true, allow: [{paths: [/x]}], extra: 1}\n", "clients.a.extra"),
    ("version: 1\nclients:\n  a: {token_sha256: abc}\n", "clients.a.token_sha256"),
    (
        "version: 1\nclients:\n  a: {loopback: true, allow: [{paths: [/x], methods: [FETCH]}]}\n",
        "clients.a.allow.0.methods",
    ),
    ("version: 1\nclients:\n  a: {loopback: true, allow: [{paths: [x/y]}]}\n", "clients.a.allow.0.paths"),
    ("version: 1\nclients:\n  a: {allow: [{paths: [/x]}]}\n", "clients.a"),
    (
        "version: 1\nclients:\n  a: {loopback: true, allow: [{venue: nope, paths: [/x]}]}\n",
        "clients.a.allow.0.venue",
    ),
    ("version: 1\naccounts:\n  coinex: {}\n", "accounts.coinex"),
    ("version: 1\nclients: [\n", "line"),
]
# Trading-aware rules: every mistake names its field.
_RULE = (
    "version: 1\nclients:\n  a:\n    loopback: true\n    mode: {mode}\n    allow: [{{paths: [/x], {rule}}}]\n"
)
FIELD_CASES = [
    ("fields: {amount: {max: 2.5}}", "clients.a.allow.0.fields.amount.max"),  # a YAML float
    ("fields: {amount: {max: '2,5'}}", "clients.a.allow.0.fields.amount.max"),
    ("fields: {amount: {maximum: 2}}", "clients.a.allow.0.fields.amount.maximum"),
    ("fields: {amount: {in: [a], max: 2}}", "clients.a.allow.0.fields.amount"),
    ("fields: {amount: {}}", "clients.a.allow.0.fields.amount"),
    ("fields: {amount: {min: 3, max: 2}}", "clients.a.allow.0.fields.amount"),
    ("fields: {side: {in: [yes]}}", "clients.a.allow.0.fields.side.in.0"),  # YAML 1.1: a boolean
    ("fields: {side: {in: []}}", "clients.a.allow.0.fields.side.in"),
    ("fields: {'a b': {in: [x]}}", "clients.a.allow.0.fields.a b"),
    ("notional: {}", "clients.a.allow.0.notional"),
    ("notional: {cap: 1}", "clients.a.allow.0.notional.cap"),
    ("notional: {min: '2', max: '1'}", "clients.a.allow.0.notional"),
    ("mode: shadow", "clients.a.allow.0.mode"),
    ("expr: 'amount * price <= 1'", "clients.a.allow.0.expr"),
]


@pytest.mark.parametrize(("rule", "field"), FIELD_CASES)
def test_bad_field_rule_names_file_and_field(tmp_path: Path, rule: str, field: str) -> None:
    (tmp_path / "p.yaml").write_text(_RULE.format(mode="enforce", rule=rule))
    with pytest.raises(ConfigError) as info:
        load_policies(tmp_path)
    assert info.value.file.endswith("p.yaml")
    assert info.value.field.startswith(field)


def test_constraints_and_modes_are_checked_where_they_belong(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(
        "version: 1\nclients:\n  a: {loopback: true, deny: [{paths: [/x], fields: {m: {in: [x]}}}]}\n"
    )
    with pytest.raises(ConfigError, match=r"clients\.a\.deny\.0\.fields"):  # deny rules stay path-only
        load_policies(tmp_path)
    (tmp_path / "p.yaml").write_text(_RULE.format(mode="watch", rule="methods: [GET]"))
    with pytest.raises(ConfigError, match=r"clients\.a\.mode"):
        load_policies(tmp_path)


def test_valid_field_rule_compiles_once(tmp_path: Path) -> None:
    rule = "fields: {amount: {min: 1, max: '2.50'}, side: {in: [buy]}}, notional: {max: '100'}, mode: report"
    (tmp_path / "p.yaml").write_text(_RULE.format(mode="enforce", rule=rule))
    compiled = load_policies(tmp_path).clients["a"].allow[0]
    assert compiled.report and compiled.constraints is not None
    assert compiled.summary.endswith(
        "where 1 <= amount <= 2.50, side in [buy], notional <= 100 [report mode]"
    )


@pytest.mark.parametrize(("text", "field"), BAD_CASES)
def test_bad_policy_names_file_and_field(tmp_path: Path, text: str, field: str) -> None:
    (tmp_path / "p.yaml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_policies(tmp_path, venues=["coinex"])
    assert info.value.file.endswith("p.yaml")
    assert info.value.field.startswith(field)


def test_duplicate_client_across_files(tmp_path: Path) -> None:
    for name in ("a.yaml", "b.yaml"):
        (tmp_path / name).write_text("version: 1\nclients:\n  bot: {loopback: true}\n")
    with pytest.raises(ConfigError, match=r"b\.yaml: clients\.bot: client also defined in"):
        load_policies(tmp_path)


def test_empty_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no policy files"):
        load_policies(tmp_path)

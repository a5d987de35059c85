"""``signing-proxy policy test`` and ``policy explain``: the proxy's own decision code, offline.

Both run the proxy's own steps on requests described by hand: the path vetting
(``proxy.policy.routing``), the method-override refusal (``proxy.hygiene``), then
``proxy.policy.rules.decide_request`` -- ``decide`` then ``decide_request_fields``, the pair the
pipeline runs, with the request's Content-Type -- so a case shows exactly what the proxy
would answer. Ambiguous requests (a 400 in the proxy) are ``deny`` with a reason that says so.

A cases file is versioned YAML (``docs/policies.md``)::

    version: 1
    policies: ..                  # optional: the policy directory, relative to this file
    schemes: {coinex-eu: coinex}  # optional: venue -> scheme, when a venue is not named
                                  #   after its scheme and no --config says it
    cases:
      - name: market-maker may buy 1 BTC
        client: market-maker
        venue: coinex
        account: main
        method: POST
        path: /v2/spot/order      # may carry ?query
        body: {market: BTCUSDT, side: buy, amount: "1", price: "30000"}   # or a string
        headers: {Content-Type: text/plain}   # optional; default Content-Type: application/json
        expect: allow             # allow | deny | report (let through, would deny)
        reason: market-maker.allow[1]   # a substring of the reason (report: of would_deny)

``policy test`` prints a table and returns 1 on any mismatch; a malformed file or an
unknown client is a ``ConfigError`` (exit 2 in the CLI), naming the file and the case.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from proxy.config_errors import ConfigError, from_validation_error
from proxy.errors import ProxyError
from proxy.hygiene import refuse_method_override
from proxy.policy.loader import METHODS, load_policies
from proxy.policy.order_fields import load_order_fields
from proxy.policy.request_fields import joined_header
from proxy.policy.routing import parse_route
from proxy.policy.rules import Client, Decision, PolicySet, decide_request

Outcome = Literal["allow", "deny", "report"]


class CaseModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    client: str
    venue: str
    account: str
    method: str
    path: str = Field(pattern=r"^/")
    body: dict[str, Any] | list[Any] | str | None = None
    headers: dict[str, str] = {}
    expect: Outcome
    reason: str = Field(min_length=1)

    @field_validator("method")
    @classmethod
    def _known_method(cls, value: str) -> str:
        if value.upper() not in METHODS:
            raise ValueError(f"unknown HTTP method {value!r}")
        return value.upper()


class CasesFileModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1]
    policies: str | None = None
    schemes: dict[str, str] = {}
    cases: list[CaseModel] = Field(min_length=1)


@dataclass(frozen=True)
class PolicyWorld:
    """Policies plus what the proxy knows about venues: which scheme names their fields."""

    policies: PolicySet
    schemes: Mapping[str, str] = field(default_factory=dict)

    def scheme(self, venue: str) -> str:
        return self.schemes.get(venue, venue)

    def client(self, name: str, file: str | Path, where: str) -> Client:
        client = self.policies.clients.get(name)
        if client is None:
            known = ", ".join(sorted(self.policies.clients)) or "none"
            raise ConfigError(file, where, f"unknown client {name!r} (policies define: {known})")
        return client


def load_world(
    policies: str | Path, schemes: Mapping[str, str] | None = None, venues: Mapping[str, str] | None = None
) -> PolicyWorld:
    """The policies of a directory, with the venue schemes the cases name; ``venues`` (name ->
    scheme, from a proxy config the caller loaded) also checks the policies against them.

    Offline: nothing is served, so the repo's example tokens may appear (the shipped cases
    test ``policies/example.yaml``).
    """
    loaded = load_policies(policies, venues=venues, allow_example_tokens=True)
    return PolicyWorld(loaded, {**(schemes or {}), **(venues or {})})


def evaluate(
    world: PolicyWorld,
    client: Client,
    venue: str,
    account: str,
    method: str,
    target: str,
    body: bytes,
    headers: tuple[tuple[str, str], ...] = (),
) -> Decision:
    """What the proxy decides for this request: path vetting, method overrides, then
    ``decide_request``. ``headers`` have lower-case names; without a Content-Type the
    request is taken as JSON (what a hand-written case means)."""
    path, _, query = target.partition("?")
    try:
        route = parse_route(f"/{venue}/{account}{path}".encode(), query.encode())
        refuse_method_override(headers, route.query)
    except ProxyError as error:
        return Decision(False, f"refused before the policy ({error.code}): {error.message}", bad_request=True)
    typed = joined_header(headers, "content-type")
    if typed is None:
        typed = "application/json"
    encoding = joined_header(headers, "content-encoding")
    return decide_request(client, venue, account, method, target, body, world.scheme(venue), typed, encoding)


def outcome(decision: Decision) -> Outcome:
    if not decision.allowed:
        return "deny"
    return "report" if decision.would_deny is not None else "allow"


def body_bytes(body: dict[str, Any] | list[Any] | str | None) -> bytes:
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body, default=str).encode()  # default: YAML dates, as a client would send text


# --------------------------------------------------------------------------- policy test


def load_cases(path: str | Path) -> CasesFileModel:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(path, "", f"cannot read cases: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(path, "", f"invalid YAML: {getattr(exc, 'problem', exc)}") from None
    try:
        return CasesFileModel.model_validate(raw)
    except ValidationError as exc:
        raise from_validation_error(path, exc) from None


@dataclass(frozen=True)
class CaseResult:
    case: CaseModel
    decision: Decision

    @property
    def got(self) -> Outcome:
        return outcome(self.decision)

    @property
    def reason(self) -> str:
        """The reason the case's ``reason`` is matched against: would_deny for report."""
        return (self.decision.would_deny or "") if self.got == "report" else self.decision.reason

    @property
    def ok(self) -> bool:
        return self.got == self.case.expect and self.case.reason in self.reason


def run_cases(world: PolicyWorld, cases: CasesFileModel, source: str | Path) -> list[CaseResult]:
    results = []
    for index, case in enumerate(cases.cases):
        client = world.client(case.client, source, f"cases.{index}.client")
        target, body = case.path, body_bytes(case.body)
        headers = tuple((name.lower(), value) for name, value in case.headers.items())
        decision = evaluate(world, client, case.venue, case.account, case.method, target, body, headers)
        results.append(CaseResult(case, decision))
    return results


def print_results(results: list[CaseResult], out: TextIO) -> int:
    """The table; returns the exit status (1 when any case does not match)."""
    width = max(len("case"), *(len(r.case.name) for r in results))
    print(f"{'result':<7} {'case':<{width}} {'expect':<7} {'got':<7} reason", file=out)
    for r in results:
        mark = "ok" if r.ok else "FAIL"
        print(f"{mark:<7} {r.case.name:<{width}} {r.case.expect:<7} {r.got:<7} {r.reason}", file=out)
        if not r.ok:
            print(f"{'':<7} expected {r.case.expect} with a reason containing {r.case.reason!r}", file=out)
    failed = sum(not r.ok for r in results)
    print(f"{len(results)} cases: {len(results) - failed} passed, {failed} failed", file=out)
    return 1 if failed else 0


# --------------------------------------------------------------------------- policy explain


def print_explanation(
    world: PolicyWorld, decision: Decision, venue: str, method: str, path: str, out: TextIO
) -> int:
    """One decision, readable; returns 0 when the request would go through, else 1."""
    shown = {"allow": "allow", "deny": "deny", "report": "report (let through; enforcing would deny)"}
    print(f"decision:   {shown[outcome(decision)]}", file=out)
    print(f"reason:     {decision.reason}", file=out)
    if decision.would_deny is not None:
        print(f"would deny: {decision.would_deny}", file=out)
    scheme = world.scheme(venue)
    endpoint = load_order_fields().find(scheme, method, path.partition("?")[0])
    if endpoint is not None:
        print(f"order fields ({scheme}): {endpoint.describe()}", file=out)
    return 0 if decision.allowed else 1


def report_mode_notes(policies: PolicySet) -> list[str]:
    """What ``check`` mentions: clients and rules that only report (nothing there is enforced)."""
    notes = [f"client {c.name} is in report mode" for c in policies.clients.values() if c.report]
    for client in policies.clients.values():
        for rule in (*client.allow, *client.deny):
            if rule.report and not client.report:
                notes.append(f"rule {rule.name} is in report mode")
    return notes

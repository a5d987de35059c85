"""Allowlist policy: compiled rules and pure decisions that carry their reason.

Model: stripe/smokescreen ``acl/v1/acl.go`` (``Decision{Result, Reason}``). A policy is a
set of clients; each client has ``allow`` and ``deny`` rules over venue, account, method
and path. Deny wins over allow; no matching allow rule is a denial (deny by default).

Globs (DESIGN.md): ``*`` matches within one path segment, ``**`` across segments. Venue
and account patterns use the same ``*``. Rules are compiled to regular expressions once,
at load.

Paths (``docs/policies.md``, "Paths"; ``proxy.policy.path_spelling``): deny rules match the
path's canonical spelling (escapes decoded, any letter case, with or without a trailing
slash), so no spelling a venue routes to a denied endpoint escapes them. Allow rules are
chosen on the canonical spelling too, and then must match the spelling as sent: a request
whose path is another spelling of the first allow rule it meets is denied, never handed
to a later, broader rule.

Trading-aware rules (``docs/policies.md``): an allow rule may also constrain request fields
(``proxy.policy.fields``). Deciding takes two steps so that the body is read only when it
matters: ``decide`` looks at the path alone and either settles the request or returns a
``Decision`` with ``pending`` set; ``decide_fields`` finishes it with the request's fields.
The first allow rule whose path matches *and* whose constraints pass allows.

Report mode (``mode: report`` on a client or a rule) is computed as two outcomes: what
enforcing every rule would say, and what enforcing only the ``enforce`` rules says. When
the first denies and the second allows, the request goes through and the decision carries
``would_deny``: the reason it will be refused once the rule is enforced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from proxy.policy.fields import Ambiguous, Constraints, RequestFields, parse_request_fields
from proxy.policy.path_spelling import PathGlob, canonical_path, glob_regex


def compile_glob(pattern: str) -> re.Pattern[str]:
    return re.compile(glob_regex(pattern) + r"\Z", re.DOTALL)


@dataclass(frozen=True, slots=True)
class RateSpec:
    per_second: float
    burst: float


@dataclass(frozen=True, slots=True)
class Rule:
    """One allow or deny rule. ``name`` locates it: ``<file>: clients.<c>.allow[<i>]``."""

    name: str
    venues: tuple[re.Pattern[str], ...]
    accounts: tuple[re.Pattern[str], ...]
    methods: frozenset[str] | None  # None: any method
    paths: tuple[PathGlob, ...]  # proxy.policy.path_spelling.compile_path_glob
    summary: str
    report: bool = False  # effective mode: the rule's own, else its client's
    constraints: Constraints | None = None  # allow rules only; None: the path decides

    def matches(self, venue: str, account: str, method: str, canonical: str) -> bool:
        """Whether the rule covers the request; ``canonical`` is ``canonical_path(path)``."""
        return (
            any(p.match(venue) for p in self.venues)
            and any(p.match(account) for p in self.accounts)
            and (self.methods is None or method in self.methods)
            and any(p.matches_canonical(canonical) for p in self.paths)
        )

    def spelled_as(self, path: str) -> bool:
        """Whether the path as sent matches one of the rule's globs as written."""
        return any(p.match(path) for p in self.paths)


@dataclass(frozen=True, slots=True)
class Client:
    name: str
    source: str
    token_sha256: str | None = None
    loopback: bool = False
    report: bool = False  # client mode: a request no allow rule matches is only reported
    rate_limit: RateSpec | None = None
    allow: tuple[Rule, ...] = ()
    deny: tuple[Rule, ...] = ()

    def __repr__(self) -> str:  # the token hash is not secret, but nothing gains from printing it
        return f"<Client {self.name} from {self.source}>"


@dataclass(frozen=True, slots=True)
class Pending:
    """What ``decide_fields`` needs after ``decide`` found constrained allow rules."""

    venue: str
    method: str
    path: str
    candidates: tuple[Rule, ...]  # path-matching allow rules, up to the first unconstrained one
    shadow: str | None = None  # a report-mode deny rule matched: enforcing would deny


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str
    rule: str | None = None
    would_deny: str | None = None  # report mode: let through, but enforcing would deny for this
    pending: Pending | None = None  # fields not checked yet; ``allowed`` is False until they are
    bad_request: bool = False  # refused as ambiguous (400), whatever the mode: never forwarded


@dataclass(frozen=True, slots=True)
class PolicySet:
    clients: dict[str, Client] = field(default_factory=dict)
    by_token: dict[str, Client] = field(default_factory=dict)
    loopback: Client | None = None
    account_limits: dict[str, RateSpec] = field(default_factory=dict)  # "venue/account" -> spec
    sources: tuple[str, ...] = ()


def decide(client: Client, venue: str, account: str, method: str, path: str) -> Decision:
    """The path-level decision. Pure; deny wins; default deny; no body needed.

    Settles the request unless a path-matching allow rule constrains fields: then the
    result has ``pending`` set and ``decide_fields`` must finish it.
    """
    canonical = canonical_path(path)
    shadow = None
    for rule in client.deny:
        if rule.matches(venue, account, method, canonical):
            reason = f"deny rule {rule.name} matches ({rule.summary})"
            if not rule.report:
                return Decision(False, reason, rule.name)
            shadow = shadow or reason
    candidates: list[Rule] = []
    misspelled = None
    for rule in client.allow:
        if rule.matches(venue, account, method, canonical):
            if not rule.spelled_as(path):
                # Another spelling of a path this rule names (letter case, trailing slash,
                # an escape): the venue may route it to the rule's endpoint, so a later,
                # broader rule must not allow it without this rule's constraints.
                misspelled = rule
                break
            candidates.append(rule)
            if rule.constraints is None:
                break
    if not candidates:
        default = f"no allow rule for client {client.name} matches {method} {path} on {venue}/{account}"
        if misspelled is not None:
            default = (
                f"{path} is another spelling (letter case, trailing slash or escapes) of a path allow "
                f"rule {misspelled.name} names ({misspelled.summary}); only the rule's spelling is allowed"
            )
        if client.report:
            return _settle(
                Decision(False, shadow or default), Decision(True, f"client {client.name} is in report mode")
            )
        return Decision(False, default)
    if candidates[0].constraints is None:
        allowed = _allowed(candidates[0])
        return _settle(Decision(False, shadow) if shadow else allowed, allowed)
    pending = Pending(venue, method, path, tuple(candidates), shadow)
    return Decision(False, "request fields not checked yet", pending=pending)


def decide_fields(decision: Decision, fields: RequestFields, scheme: str | None = None) -> Decision:
    """Finish a pending decision with the request's fields. ``scheme`` names the venue's
    order field names for ``notional`` (default: the venue name)."""
    pending = decision.pending
    if pending is None:
        return decision
    scheme = scheme or pending.venue
    passed: Decision | None = None  # the first rule whose constraints pass
    reported: Decision | None = None  # the first report-mode rule that failed: lets it through
    denials: list[Decision] = []  # failures in rule order, enforce and report alike
    refused: Decision | None = None  # the first failure of an enforce-mode rule
    for rule in pending.candidates:
        failure = None
        if rule.constraints is not None:
            try:
                failure = rule.constraints.check(fields, scheme, pending.method, pending.path)
            except Ambiguous as ambiguous:
                # Not a policy outcome: what the venue would read is unknown, so report mode
                # cannot let it through either (docs/policies.md, "Refused as ambiguous").
                reason = f"ambiguous request, refused: {ambiguous} (allow rule {rule.name} reads fields)"
                return Decision(False, reason, rule.name, bad_request=True)
        if failure is None:
            passed = _allowed(rule)
            break
        denial = Decision(False, f"allow rule {rule.name} matches the path but {failure}", rule.name)
        denials.append(denial)
        if rule.report:
            reported = reported or Decision(True, f"allow rule {rule.name} is in report mode", rule.name)
        else:
            refused = refused or denial
    # Enforcing every rule: the first passing rule allows, else the first failure denies.
    enforced = passed or denials[0]
    if pending.shadow is not None:
        enforced = Decision(False, pending.shadow)
    # Enforcing only enforce-mode rules: a failed report-mode rule before any pass lets it through.
    actual = reported or passed or refused or enforced
    return _settle(enforced, actual)


def decide_request(
    client: Client,
    venue: str,
    account: str,
    method: str,
    target: str,
    body: bytes = b"",
    scheme: str | None = None,
    content_type: str | None = "application/json",
    content_encoding: str | None = None,
) -> Decision:
    """Both steps for one request (``policy test``, ``policy explain``); ``target`` may carry a query.

    The pipeline runs the same two steps: ``decide``, then ``decide_request_fields``.
    """
    path, _, query = target.partition("?")
    decision = decide(client, venue, account, method, path)
    return decide_request_fields(decision, query, body, content_type, content_encoding, scheme)


def decide_request_fields(
    decision: Decision,
    query: str,
    body: bytes,
    content_type: str | None,
    content_encoding: str | None,
    scheme: str | None,
) -> Decision:
    """The fields step on a request's raw query, body and headers: what the pipeline runs
    after ``decide`` (and ``policy test``/``explain`` through ``decide_request``)."""
    if decision.pending is None:
        return decision
    fields = parse_request_fields(query, body, content_type, content_encoding)
    return decide_fields(decision, fields, scheme)


def _allowed(rule: Rule) -> Decision:
    return Decision(True, f"allow rule {rule.name} matches ({rule.summary})", rule.name)


def _settle(enforced: Decision, actual: Decision) -> Decision:
    """Enforced allows: allow. Only report-mode rules deny: allow, carrying ``would_deny``."""
    if enforced.allowed:
        return enforced
    if actual.allowed:
        return replace(actual, would_deny=enforced.reason)
    return actual

"""Allowlist policy: compiled rules and pure decisions that carry their reason.

Model: stripe/smokescreen ``acl/v1/acl.go`` (``Decision{Result, Reason}``). A policy is a
set of clients; each client has ``allow`` and ``deny`` rules over venue, account, method
and path. Deny wins over allow; no matching allow rule is a denial (deny by default).

Globs (DESIGN.md): ``*`` matches within one path segment, ``**`` across segments;
matching is on the raw path (no query), case-sensitive. Venue and account patterns use
the same ``*``. Rules are compiled to regular expressions once, at load.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


def compile_glob(pattern: str) -> re.Pattern[str]:
    parts = re.split(r"(\*\*|\*)", pattern)
    regex = "".join(".*" if p == "**" else "[^/]*" if p == "*" else re.escape(p) for p in parts)
    return re.compile(regex + r"\Z", re.DOTALL)


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
    paths: tuple[re.Pattern[str], ...]
    summary: str

    def matches(self, venue: str, account: str, method: str, path: str) -> bool:
        return (
            any(p.match(venue) for p in self.venues)
            and any(p.match(account) for p in self.accounts)
            and (self.methods is None or method in self.methods)
            and any(p.match(path) for p in self.paths)
        )


@dataclass(frozen=True, slots=True)
class Client:
    name: str
    source: str
    token_sha256: str | None = None
    loopback: bool = False
    rate_limit: RateSpec | None = None
    allow: tuple[Rule, ...] = ()
    deny: tuple[Rule, ...] = ()

    def __repr__(self) -> str:  # the token hash is not secret, but nothing gains from printing it
        return f"<Client {self.name} from {self.source}>"


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str
    rule: str | None = None


@dataclass(frozen=True, slots=True)
class PolicySet:
    clients: dict[str, Client] = field(default_factory=dict)
    by_token: dict[str, Client] = field(default_factory=dict)
    loopback: Client | None = None
    account_limits: dict[str, RateSpec] = field(default_factory=dict)  # "venue/account" -> spec
    sources: tuple[str, ...] = ()


def decide(client: Client, venue: str, account: str, method: str, path: str) -> Decision:
    """The policy decision for one request. Pure; deny wins; default deny."""
    for rule in client.deny:
        if rule.matches(venue, account, method, path):
            return Decision(False, f"deny rule {rule.name} matches ({rule.summary})", rule.name)
    for rule in client.allow:
        if rule.matches(venue, account, method, path):
            return Decision(True, f"allow rule {rule.name} matches ({rule.summary})", rule.name)
    return Decision(
        False,
        f"no allow rule for client {client.name} matches {method} {path} on {venue}/{account}",
    )

"""Venue rate-limit profiles: data files, validated and compiled (``proxy.ratelimit.gate``
turns them into what one request is charged).

The shipped profiles are ``proxy/ratelimit/data/<name>.yaml`` (an operator's own sit in
``<policies>/ratelimits/``); a venue uses the profile named like its
scheme unless ``rate_limits.venues.<venue>.profile`` says otherwise (``none``: no
profile). ``load_policies`` reads only the files directly in the policy directory, so
the ``ratelimits/`` subdirectory is never mistaken for a policy. Shape::

    version: 1
    source: "where the numbers come from"
    algorithm: bucket          # bucket: token bucket, capacity = limit, refill limit/window_s
                               # window: at most `limit` in any window_s (sliding log)
    feedback:                  # how the venue says "slow down"
      statuses: [429]          # HTTP statuses
      codes: [4213]            # values of the JSON body's `code_field` (default "code")
      cooldown_s: 1            # pause the key this long (or the venue's Retry-After if longer)
      remaining_header: x-ratelimit-remaining
    groups:
      spot_place:
        limit: 30
        window_s: 1
        scope: account         # account: per venue key; ip: every account of the venue
        match:                 # method (default any) + path globs as in policies
          - {methods: [POST], paths: ["/v2/spot/order"]}
          - methods: [POST]    # a batch costs len(body["orders"]) units ("$": the body is the list)
            paths: ["/v2/spot/batch-order"]
            cost: {per_item: orders}
      stream_open:
        limit: 10
        window_s: 60
        streams: true          # charged when a stream opens (the proxy logs in), never for REST
        match:
          - {paths: ["/v2/spot", "/v2/futures"]}

Paths match as deny rules do (``docs/policies.md``, "Paths"): on the request path's
canonical spelling (``proxy.policy.path_spelling``: escapes decoded, any letter case, with or
without a trailing slash), so every spelling a venue routes to an endpoint is charged to
that endpoint's groups. A request is charged to *every* group it matches (an ``all``
group plus an endpoint group is how a venue-wide default is written); a rule's
``unless: [globs]`` leaves paths to another group. Operators override ``limit`` and
``window_s`` per ``<venue>/<account>`` or per ``<venue>`` in ``rate_limits.overrides``;
every name is checked at startup and a mistake is a ``ConfigError`` naming the field.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from proxy.config_errors import ConfigError, from_validation_error
from proxy.messages import UpstreamReply
from proxy.policy.path_spelling import canonical_glob_regex
from proxy.policy.rules import RateSpec
from proxy.ratelimit.limiter import Bucket, Window
from proxy.shipped import RATE_LIMIT_PROFILES

SHIPPED_PROFILES = RATE_LIMIT_PROFILES
PROFILE_DIR = "ratelimits"
MAX_COOLDOWN_S = 3600.0
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_FEEDBACK_BODY_MAX = 4096  # "slow down" envelopes are tiny; never parse a large body for them


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CostModel(_Strict):
    per_item: str = Field(min_length=1)  # JSON body field holding the batch; "$": the body itself


class MatchModel(_Strict):
    methods: list[str] | None = None
    paths: list[str] = Field(min_length=1)
    unless: list[str] = []  # paths the globs above would match that belong to another group
    cost: CostModel | None = None  # default: one unit per request

    @field_validator("methods")
    @classmethod
    def _methods(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not set(m.upper() for m in value) <= _METHODS:
            raise ValueError(f"unknown HTTP method in {value}")
        return None if value is None else [m.upper() for m in value]

    @field_validator("paths", "unless")
    @classmethod
    def _paths(cls, value: list[str]) -> list[str]:
        if not all(p.startswith("/") for p in value):
            raise ValueError("path patterns start with '/'")
        return value


class GroupModel(_Strict):
    limit: int = Field(ge=1)
    window_s: float = Field(gt=0)
    scope: Literal["account", "ip"] = "account"
    algorithm: Literal["bucket", "window"] | None = None
    match: list[MatchModel] = Field(min_length=1)
    streams: bool = False  # counts stream opens (WebSocket logins) only; other groups: REST only
    note: str = ""


class FeedbackModel(_Strict):
    statuses: list[int] = [429]
    codes: list[int] = []
    code_field: str = "code"
    cooldown_s: float = Field(default=1.0, gt=0, le=MAX_COOLDOWN_S)
    remaining_header: str | None = None


class ProfileModel(_Strict):
    version: Literal[1]
    source: str
    algorithm: Literal["bucket", "window"] = "bucket"
    feedback: FeedbackModel = FeedbackModel()
    groups: dict[str, GroupModel] = Field(min_length=1)

    @field_validator("groups")
    @classmethod
    def _names(cls, value: dict[str, GroupModel]) -> dict[str, GroupModel]:
        bad = [name for name in value if not _NAME.match(name)]
        if bad:
            raise ValueError(f"group names are lower-case identifiers: {bad}")
        return value


@dataclass(frozen=True, slots=True)
class Rule:
    methods: frozenset[str] | None  # None: any method
    paths: re.Pattern[str]
    unless: re.Pattern[str] | None
    per_item: str | None  # None: one unit per request

    def matches(self, method: str, canonical: str) -> bool:
        """``canonical``: the request path's ``proxy.policy.path_spelling.canonical_path``."""
        return (
            (self.methods is None or method in self.methods)
            and self.paths.match(canonical) is not None
            and (self.unless is None or self.unless.match(canonical) is None)
        )

    def cost_of(self, body: bytes) -> float:
        if self.per_item is None:
            return 1.0
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            return 1.0  # the venue refuses it; one unit is what it costs
        items = payload.get(self.per_item) if isinstance(payload, dict) else None
        items = payload if self.per_item == "$" else items
        return float(max(len(items), 1)) if isinstance(items, list) else 1.0


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    limit: int
    window_s: float
    scope: str  # "account" | "ip"
    algorithm: str  # "bucket" | "window"
    rules: tuple[Rule, ...]
    streams: bool = False  # True: charged for stream opens (GET of the stream path), never REST

    def rule_for(self, method: str, canonical: str) -> Rule | None:
        for rule in self.rules:
            if rule.matches(method, canonical):
                return rule
        return None

    @property
    def spec(self) -> RateSpec | Window:
        if self.algorithm == "window":
            return Window(self.limit, self.window_s)
        return RateSpec(self.limit / self.window_s, self.limit)

    def bucket(self, owner: str, cost: float = 1.0) -> Bucket:
        kind = "account" if self.scope == "account" else "venue"
        return Bucket(f"{kind} {owner} {self.name} ({self.limit}/{self.window_s:g}s)", self.spec, cost)


@dataclass(frozen=True, slots=True)
class Feedback:
    statuses: frozenset[int] = frozenset({429})
    codes: frozenset[int] = frozenset()
    code_field: str = "code"
    cooldown_s: float = 1.0
    remaining_header: str | None = None

    def slow_down(self, reply: UpstreamReply) -> tuple[float, str] | None:
        """``(seconds, reason)`` when the reply says this key must pause, else ``None``."""
        if reply.status in self.statuses:
            return max(self.cooldown_s, _retry_after(reply)), f"venue answered HTTP {reply.status}"
        if self.codes and len(reply.body) <= _FEEDBACK_BODY_MAX:
            code = _body_code(reply.body, self.code_field)
            if code in self.codes:
                return max(self.cooldown_s, _retry_after(reply)), f"venue answered code {code}"
        return None

    def remaining(self, reply: UpstreamReply) -> int | None:
        if self.remaining_header is None:
            return None
        for name, value in reply.headers:
            if name.lower() == self.remaining_header:
                return int(value) if value.strip().isdigit() else None
        return None


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    source: str
    groups: tuple[Group, ...]
    feedback: Feedback


def load_profiles(directory: Path) -> dict[str, Profile]:
    """Every ``<name>.yaml`` in ``directory``, validated; errors name the file and field."""
    if not directory.is_dir():
        raise ConfigError(directory, "", "rate-limit profile directory does not exist")
    return {p.stem: load_profile(p) for p in sorted(directory.glob("*.yaml")) if p.is_file()}


def load_profile(path: Path) -> Profile:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        model = ProfileModel.model_validate(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(path, "", f"invalid YAML: {getattr(exc, 'problem', exc)}") from None
    except ValidationError as exc:
        raise from_validation_error(path, exc) from None
    groups = tuple(_group(name, g, model.algorithm) for name, g in model.groups.items())
    fb = model.feedback
    header = fb.remaining_header.lower() if fb.remaining_header else None
    feedback = Feedback(frozenset(fb.statuses), frozenset(fb.codes), fb.code_field, fb.cooldown_s, header)
    return Profile(path.stem, model.source, groups, feedback)


def _group(name: str, model: GroupModel, default_algorithm: str) -> Group:
    rules = tuple(
        Rule(
            None if rule.methods is None else frozenset(rule.methods),
            _globs(rule.paths),
            _globs(rule.unless) if rule.unless else None,
            None if rule.cost is None else rule.cost.per_item,
        )
        for rule in model.match
    )
    algorithm = model.algorithm or default_algorithm
    return Group(name, model.limit, model.window_s, model.scope, algorithm, rules, model.streams)


def _globs(patterns: list[str]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{canonical_glob_regex(p)}\\Z)" for p in patterns), re.DOTALL)


def _retry_after(reply: UpstreamReply) -> float:
    for name, value in reply.headers:
        if name.lower() == "retry-after" and value.strip().isdigit():
            return min(float(value), MAX_COOLDOWN_S)
    return 0.0


def _body_code(body: bytes, field: str) -> int | None:
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return None
    code = payload.get(field) if isinstance(payload, dict) else None
    if isinstance(code, bool):
        return None
    if isinstance(code, int):
        return code
    return int(code) if isinstance(code, str) and code.isdigit() else None

"""Load and validate the policy directory (versioned YAML, unknown keys rejected).

Model: smokescreen ``yaml_loader.go``. Every file must say ``version: 1``. A malformed
file stops startup with a ``ConfigError`` naming the file and the field. Files are read
in name order; client names and token hashes must be unique across the directory.

Field constraints (``fields``, ``notional``) and ``mode`` are compiled here, once, into
``proxy.policy.fields`` objects; the venues' order field names for ``notional`` come from
``proxy.policy.order_fields``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from proxy.config_errors import ConfigError, from_validation_error
from proxy.policy.example_tokens import example_token
from proxy.policy.fields import Bounds, Constraints, FieldRange, Notional, OneOf
from proxy.policy.order_fields import FieldName, load_order_fields
from proxy.policy.path_spelling import compile_path_glob, path_ambiguity
from proxy.policy.rules import Client, PolicySet, RateSpec, Rule, compile_glob

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?\Z")  # ASCII digits: \d is Unicode


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RateLimitModel(_Strict):
    per_second: float = Field(gt=0)
    burst: float = Field(ge=1)


def _decimal(value: Any) -> Decimal:
    # YAML reads 0.1 as a binary float: a bound must be an integer or a quoted decimal.
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, str) and _DECIMAL.match(value):
        return Decimal(value)
    raise ValueError('must be an integer or a quoted decimal such as "0.5" (YAML floats are inexact)')


DecimalBound = Annotated[Decimal, PlainValidator(_decimal)]
Mode = Literal["enforce", "report"]


class BoundsModel(_Strict):
    min: DecimalBound | None = None
    max: DecimalBound | None = None

    @model_validator(mode="after")
    def _ordered(self) -> BoundsModel:
        if self.min is None and self.max is None:
            raise ValueError("needs min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class FieldModel(_Strict):
    """``{in: [...]}`` (text values) or ``{min: .., max: ..}`` (decimal bounds), not both."""

    one_of: list[StrictStr] | None = Field(default=None, alias="in", min_length=1)
    min: DecimalBound | None = None
    max: DecimalBound | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> FieldModel:
        bounded = self.min is not None or self.max is not None
        if (self.one_of is None) == (not bounded):
            raise ValueError("give either 'in' or 'min'/'max'")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class RuleModel(_Strict):
    venue: str = "*"
    accounts: list[str] = ["*"]
    methods: list[str] | None = None
    paths: list[str] = Field(min_length=1)
    mode: Mode | None = None  # None: the client's mode

    @field_validator("methods")
    @classmethod
    def _known_methods(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        upper = [m.upper() for m in value]
        unknown = sorted(set(upper) - METHODS)
        if unknown:
            raise ValueError(f"unknown HTTP method(s) {unknown}")
        return upper

    @field_validator("paths")
    @classmethod
    def _absolute_paths(cls, value: list[str]) -> list[str]:
        for path in value:
            if not (path.startswith("/") or path.startswith("**")):
                raise ValueError(f"path pattern {path!r} must start with '/' or '**'")
            problem = path_ambiguity(path)  # the proxy refuses such paths: the rule could never match
            if problem is not None:
                raise ValueError(f"path pattern {path!r} names a spelling the proxy refuses: {problem}")
        return value


class AllowRuleModel(RuleModel):
    """Deny rules stay path-only: a constraint on a deny rule would read as an allowlist."""

    fields: dict[FieldName, FieldModel] = {}
    notional: BoundsModel | None = None


class ClientModel(_Strict):
    token_sha256: str | None = None
    loopback: bool = False
    mode: Mode = "enforce"
    rate_limit: RateLimitModel | None = None
    allow: list[AllowRuleModel] = []
    deny: list[RuleModel] = []

    @field_validator("token_sha256")
    @classmethod
    def _hex_digest(cls, value: str | None) -> str | None:
        if value is not None and not _SHA256.match(value):
            raise ValueError("must be the lower-case hex SHA-256 of the client token (64 characters)")
        return value


class AccountModel(_Strict):
    rate_limit: RateLimitModel | None = None


class PolicyFileModel(_Strict):
    version: Literal[1]
    clients: dict[str, ClientModel] = {}
    accounts: dict[str, AccountModel] = {}


def load_policies(
    directory: str | Path, venues: Iterable[str] | None = None, allow_example_tokens: bool = False
) -> PolicySet:
    """Read every ``*.yaml``/``*.yml`` in ``directory`` into one compiled ``PolicySet``.

    A token hash printed in the repo's examples is refused (``proxy.policy.example_tokens``) unless
    ``allow_example_tokens``: only the demo and the offline policy tools pass it.
    """
    root = Path(directory)
    if not root.is_dir():
        # The image ships no policy (issue 19): say where the operator must mount them.
        raise ConfigError(root, "", "policy directory does not exist: mount your policy files (*.yaml) here")
    files = sorted(p for p in root.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    if not files:
        raise ConfigError(
            root, "", "no policy files (*.yaml) found: mount your policy files here (none are built in)"
        )
    known = None if venues is None else frozenset(venues)
    builder = _Builder(known, allow_example_tokens)
    for path in files:
        builder.add(path, _parse_file(path))
    return builder.build()


def _parse_file(path: Path) -> PolicyFileModel:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(path, where, f"invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(raw, dict):
        raise ConfigError(path, "", "a policy file must be a mapping with 'version: 1'")
    try:
        return PolicyFileModel.model_validate(raw)
    except ValidationError as exc:
        raise from_validation_error(path, exc) from None


class _Builder:
    def __init__(self, venues: frozenset[str] | None, allow_example_tokens: bool = False) -> None:
        self.venues = venues
        self.allow_example_tokens = allow_example_tokens
        self.clients: dict[str, Client] = {}
        self.by_token: dict[str, Client] = {}
        self.loopback: Client | None = None
        self.account_limits: dict[str, RateSpec] = {}
        self.sources: list[str] = []

    def add(self, path: Path, model: PolicyFileModel) -> None:
        self.sources.append(str(path))
        for name, client_model in model.clients.items():
            self._add_client(path, name, client_model)
        for key, account in model.accounts.items():
            self._add_account(path, key, account)

    def _add_client(self, path: Path, name: str, model: ClientModel) -> None:
        field = f"clients.{name}"
        if name in self.clients:
            raise ConfigError(path, field, f"client also defined in {self.clients[name].source}")
        if model.token_sha256 is None and not model.loopback:
            raise ConfigError(path, field, "a client needs token_sha256 or loopback: true")
        printed = example_token(model.token_sha256)
        if printed is not None and not self.allow_example_tokens:
            raise ConfigError(
                path,
                f"{field}.token_sha256",
                f"uses a published example token ({printed}): anyone can present it; "
                "set the hash of your own token (example tokens work only in `signing-proxy demo`)",
            )
        for kind, rules in (("allow", model.allow), ("deny", model.deny)):
            for index, rule in enumerate(rules):
                self._check_venue(path, f"{field}.{kind}.{index}.venue", rule.venue)
        client = Client(
            name=name,
            source=str(path),
            token_sha256=model.token_sha256,
            loopback=model.loopback,
            report=model.mode == "report",
            rate_limit=_rate(model.rate_limit),
            allow=tuple(_rule(path, name, "allow", i, r, model.mode) for i, r in enumerate(model.allow)),
            deny=tuple(_rule(path, name, "deny", i, r, model.mode) for i, r in enumerate(model.deny)),
        )
        if client.token_sha256 is not None:
            if client.token_sha256 in self.by_token:
                other = self.by_token[client.token_sha256].name
                raise ConfigError(path, f"{field}.token_sha256", f"same token as client {other}")
            self.by_token[client.token_sha256] = client
        if client.loopback:
            if self.loopback is not None:
                raise ConfigError(
                    path, f"{field}.loopback", f"client {self.loopback.name} is already loopback"
                )
            self.loopback = client
        self.clients[name] = client

    def _add_account(self, path: Path, key: str, model: AccountModel) -> None:
        venue, sep, account = key.partition("/")
        if not sep or not venue or not account:
            raise ConfigError(path, f"accounts.{key}", "account keys are '<venue>/<account>'")
        self._check_venue(path, f"accounts.{key}", venue)
        if model.rate_limit is not None:
            self.account_limits[key] = RateSpec(model.rate_limit.per_second, model.rate_limit.burst)

    def _check_venue(self, path: Path, field: str, venue: str) -> None:
        if self.venues is not None and "*" not in venue and venue not in self.venues:
            raise ConfigError(path, field, f"unknown venue {venue!r} (configured: {sorted(self.venues)})")

    def build(self) -> PolicySet:
        return PolicySet(
            clients=self.clients,
            by_token=self.by_token,
            loopback=self.loopback,
            account_limits=self.account_limits,
            sources=tuple(self.sources),
        )


def _rate(model: RateLimitModel | None) -> RateSpec | None:
    return None if model is None else RateSpec(model.per_second, model.burst)


def _rule(path: Path, client: str, kind: str, index: int, model: RuleModel, client_mode: Mode) -> Rule:
    methods = "any method" if model.methods is None else ",".join(model.methods)
    summary = f"venue={model.venue} accounts={','.join(model.accounts)} {methods} {' '.join(model.paths)}"
    constraints = _constraints(model) if isinstance(model, AllowRuleModel) else None
    if constraints is not None:
        summary += f" where {constraints.describe()}"
    mode = model.mode or client_mode
    if mode == "report":
        summary += " [report mode]"
    return Rule(
        name=f"{client}.{kind}[{index}] in {path.name}",
        venues=(compile_glob(model.venue),),
        accounts=tuple(compile_glob(a) for a in model.accounts),
        methods=None if model.methods is None else frozenset(model.methods),
        paths=tuple(compile_path_glob(p) for p in model.paths),
        summary=summary,
        report=mode == "report",
        constraints=constraints,
    )


def _constraints(model: AllowRuleModel) -> Constraints | None:
    if not model.fields and model.notional is None:
        return None
    fields: list[OneOf | FieldRange] = []
    for name, spec in model.fields.items():
        if spec.one_of is not None:
            fields.append(OneOf(name, frozenset(spec.one_of), ", ".join(spec.one_of)))
        else:
            fields.append(FieldRange(name, Bounds(spec.min, spec.max)))
    table = load_order_fields()
    notional = None
    if model.notional is not None:
        notional = Notional(Bounds(model.notional.min, model.notional.max), table)
    return Constraints(tuple(fields), notional, table)

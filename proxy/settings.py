"""Configuration: one YAML file, overridden by ``SIGNING_PROXY_…`` environment variables.

``load_settings(path)`` returns validated, frozen ``Settings`` or raises ``ConfigError``
naming the file and the field. Environment overrides use ``__`` for nesting, values are
parsed as YAML scalars: ``SIGNING_PROXY_LISTEN__PORT=9090``,
``SIGNING_PROXY_VAULT__URL=http://vault:8200``. ``VAULT_ADDR`` is honoured when
``vault.url`` is not set. Relative paths are relative to the config file.

Per-venue scheme options sit beside ``scheme`` and are validated by that scheme's
``Signer.Options`` model, so a typo in ``window_ms`` stops startup.

An entry of a venue's ``accounts`` is a name (``main``: KV mode) or a mapping
``{name: main, signing: transit, transit_key: …}``: Vault Transit holds the key and signs
(``docs/transit.md``). A scheme Transit cannot sign for (EVEDEX) stops startup.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from proxy.config_errors import ConfigError, from_validation_error
from proxy.signers import SIGNERS
from proxy.signers.base import SchemeOptions
from proxy.signing_modes import AccountSettings, account_entry, check_accounts, transit_keys

ENV_PREFIX = "SIGNING_PROXY_"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Listen(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)


class AdminListen(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=9901, ge=0, le=65535)


class VaultAuth(_Strict):
    """See ``proxy.credentials.vault_auth``. Secrets (token, secret_id) come from files or
    the environment, never from this file."""

    method: Literal["token", "approle", "kubernetes", "jwt"] = "token"
    token_file: str | None = None  # token method: else VAULT_TOKEN
    role_id: str | None = None  # approle: else VAULT_ROLE_ID
    secret_id_file: str | None = None  # approle: else VAULT_SECRET_ID
    role: str | None = None  # kubernetes / jwt
    token_path: str = "/var/run/secrets/kubernetes.io/serviceaccount/token"
    mount: str | None = None  # auth mount path; default: the method's name

    @model_validator(mode="after")
    def _complete(self) -> VaultAuth:
        if self.method in ("kubernetes", "jwt") and not self.role:
            raise ValueError(f"vault.auth.role is required for method {self.method}")
        return self


class VaultSettings(_Strict):
    url: str = ""
    auth: VaultAuth = VaultAuth()
    kv_mount: str = "secret"
    kv_prefix: str = "signing-proxy"
    cache_ttl_s: float = Field(default=300, gt=0)
    stale_grace_s: float = Field(default=900, ge=0)
    timeout_s: float = Field(default=5, gt=0)
    transit_mount: str = Field(default="transit", pattern=r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")
    transit_max_connections: int = Field(default=32, ge=1, le=1024)  # keep-alive pool to Vault


class UpstreamSettings(_Strict):
    connect_timeout_s: float = Field(default=5, gt=0)
    timeout_s: float = Field(default=10, gt=0)
    max_body_bytes: int = Field(default=1_048_576, ge=0)
    max_connections: int = Field(default=100, ge=1)
    retry_idempotent: bool = False  # GET/HEAD only, and only on connect failures


class GroupOverride(_Strict):
    """Operator numbers for one profile group (``rate_limits.overrides``)."""

    limit: int | None = Field(default=None, ge=1)
    window_s: float | None = Field(default=None, gt=0)


class VenueRateLimits(_Strict):
    profile: str | None = None  # default: the venue's scheme; "none": no venue profile
    cooldown_s: float | None = Field(default=None, gt=0, le=3600)  # pause after a venue "slow down"


class RateLimitSettings(_Strict):
    """``rate_limits:``; see ``docs/rate-limits.md`` and ``proxy.ratelimit_profiles``."""

    backend: Literal["memory", "redis"] = "memory"
    url: str | None = Field(default=None, repr=False)  # redis://[:password@]host:port/db
    key_prefix: str = Field(default="signing-proxy", pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    timeout_s: float = Field(default=0.5, gt=0, le=30)  # per Redis command
    on_redis_error: Literal["fail_closed", "local"] = "fail_closed"
    max_wait_ms: int = Field(default=0, ge=0, le=60_000)  # queue instead of an immediate 429
    client_max_wait_ms: dict[str, Annotated[int, Field(ge=0, le=60_000)]] = {}
    venue_profiles: bool = True  # false: no venue profile anywhere (client and policy buckets only)
    profiles_dir: Path | None = None  # default: <policies>/ratelimits if present, else the shipped ones
    venues: dict[str, VenueRateLimits] = {}
    # "<venue>/<account>" or "<venue>" -> {<group>: {limit, window_s}}
    overrides: dict[str, dict[str, GroupOverride]] = {}
    shared_sessions: bool | None = None  # EVEDEX logins shared through Redis; default: backend == redis

    @field_validator("url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in ("redis", "rediss", "unix"):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value

    @model_validator(mode="after")
    def _redis_needs_url(self) -> RateLimitSettings:
        if self.backend == "redis" and not self.url:
            raise ValueError("rate_limits.url is required with backend: redis")
        if self.shared_sessions and self.backend != "redis":
            raise ValueError("rate_limits.shared_sessions needs backend: redis")
        return self


class VenueSettings(BaseModel):
    """``scheme`` picks the signer; other keys beside it are that scheme's options."""

    model_config = ConfigDict(extra="allow", frozen=True)

    scheme: str
    upstream: str
    accounts: list[Annotated[AccountSettings, BeforeValidator(account_entry)]] = Field(min_length=1)
    ws_upstream: str | None = None  # the venue's WebSocket origin (ws:// or wss://); docs/websockets.md

    @field_validator("scheme")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if value not in SIGNERS:
            raise ValueError(f"unknown scheme {value!r} (known: {', '.join(sorted(SIGNERS))})")
        return value

    @field_validator("upstream")
    @classmethod
    def _origin(cls, value: str) -> str:
        return validate_origin(value)

    @field_validator("ws_upstream")
    @classmethod
    def _ws_origin(cls, value: str | None) -> str | None:
        return None if value is None else validate_origin(value, schemes=("ws", "wss"))

    @field_validator("accounts")
    @classmethod
    def _accounts_signable(
        cls, accounts: list[AccountSettings], info: ValidationInfo
    ) -> list[AccountSettings]:
        return check_accounts(accounts, info.data.get("scheme"))

    @model_validator(mode="after")
    def _ws_login_exists(self) -> VenueSettings:
        from proxy.ws.logins import stream_config_problem  # import cycle: ws.logins needs signers

        problem = stream_config_problem(self.scheme, self.options) if self.ws_upstream else None
        if problem:
            raise ValueError(f"ws_upstream: {problem}")
        return self

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    @property
    def account_names(self) -> list[str]:
        return [account.name for account in self.accounts]


class WebSocketSettings(_Strict):
    """``websocket:`` limits for proxied streams (``docs/websockets.md``)."""

    max_connections_per_client: int = Field(default=16, ge=1, le=10_000)
    max_connections_per_key: int = Field(default=8, ge=1, le=10_000)  # per venue account
    idle_timeout_s: float = Field(default=300, gt=0, le=86_400)  # no data frame either way
    max_frame_bytes: int = Field(default=1_048_576, ge=1024, le=16_777_216)  # uvicorn's own cap is 16 MiB


class Settings(_Strict):
    listen: Listen = Listen()
    admin: AdminListen = AdminListen()
    vault: VaultSettings = VaultSettings()
    upstream: UpstreamSettings = UpstreamSettings()
    rate_limits: RateLimitSettings = RateLimitSettings()
    websocket: WebSocketSettings = WebSocketSettings()
    policies: Path = Path("policies")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    watch_interval_s: float = Field(default=2.0, ge=0)  # poll config+policies for changes; 0: SIGHUP only
    drain_timeout_s: int = Field(default=10, ge=1)  # on SIGTERM, finish in-flight requests this long
    # /readyz: "local" (default) = config and policies loaded, listener up, first credential
    # warm-up attempted; Vault, Redis and per-account secrets are reported, never fatal.
    # "strict": also 503 while a dependency is down or any account's secret is unusable.
    readiness: Literal["local", "strict"] = "local"
    venues: dict[str, VenueSettings] = Field(min_length=1)
    source: str = "<settings>"


def validate_origin(value: str, schemes: tuple[str, ...] = ("http", "https")) -> str:
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.netloc:
        raise ValueError(f"must be an origin: scheme://host[:port] with scheme {' or '.join(schemes)}")
    if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError("must be an origin without path, query or credentials")
    return f"{parts.scheme}://{parts.netloc}"


def load_settings(path: str | Path, environ: Mapping[str, str] | None = None) -> Settings:
    path = Path(path)
    environ = os.environ if environ is None else environ
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(path, "", f"cannot read config: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(path, "", f"invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(raw, dict):
        raise ConfigError(path, "", "the config file must be a mapping")
    return build_settings(raw, path, environ)


def build_settings(raw: dict[str, Any], path: Path, environ: Mapping[str, str]) -> Settings:
    data = _apply_env(dict(raw), environ)
    vault = dict(data.get("vault") or {})
    if not vault.get("url") and environ.get("VAULT_ADDR"):
        vault["url"] = environ["VAULT_ADDR"]
    data["vault"] = vault
    data["source"] = str(path)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise from_validation_error(path, exc) from None
    for name, venue in settings.venues.items():
        validate_scheme_options(path, name, venue)
        transit_keys(path, name, venue.accounts)
    policies = settings.policies if settings.policies.is_absolute() else path.parent / settings.policies
    return settings.model_copy(update={"policies": policies})


def validate_scheme_options(path: Path, name: str, venue: VenueSettings) -> SchemeOptions:
    try:
        return SIGNERS[venue.scheme].Options.model_validate(venue.options)
    except ValidationError as exc:
        raise from_validation_error(path, exc, prefix=f"venues.{name}") from None


def _apply_env(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX) or key == ENV_PREFIX + "CONFIG":
            continue
        parts = [p.lower() for p in key[len(ENV_PREFIX) :].split("__")]
        node = data
        for part in parts[:-1]:
            child = node.get(part)
            node[part] = child = dict(child) if isinstance(child, dict) else {}
            node = child
        node[parts[-1]] = yaml.safe_load(value) if value else value
    return data

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

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlsplit, urlunsplit

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
from proxy.policy.routing import ROUTE_NAME
from proxy.signers import SIGNERS, stream_config_problem
from proxy.signers.base import SchemeOptions
from proxy.signing_modes import AccountSettings, account_entry, check_accounts, transit_keys

ENV_PREFIX = "SIGNING_PROXY_"
# Venue and account names are URL path segments (``/<venue>/<account>/…``): a name routing
# cannot reach would only make derived names (KV paths, Redis keys) collide.
_UNREACHABLE_NAME = "venue names must match [A-Za-z0-9][A-Za-z0-9_-]{0,63} (one URL path segment)"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Listen(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # Slow clients (proxy.server.ClientLimits explains the defaults against nginx's 60 s).
    header_timeout_s: float = Field(default=10, gt=0, le=300)  # the request head, from its first byte
    body_timeout_s: float = Field(default=30, gt=0, le=600)  # the whole body, from the end of the head
    max_connections: int = Field(default=1024, ge=1, le=1_000_000)  # more are closed on accept
    # Data-plane processes (proxy.workers): 1 for the sidecar; "auto" = the cores this process
    # may run on. More than 1 needs rate_limits.backend: redis (limits are never multiplied).
    workers: Annotated[int, Field(ge=1, le=256)] | Literal["auto"] = 1


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
    # A 403 for a valid token (the policy refuses the path) is remembered this long per path.
    denied_cache_s: float = Field(default=5, ge=0, le=300)
    # At most one re-login per this interval caused by a 403 with an invalid token.
    relogin_interval_s: float = Field(default=5, ge=0, le=3600)


class UpstreamSettings(_Strict):
    connect_timeout_s: float = Field(default=5, gt=0)
    timeout_s: float = Field(default=10, gt=0)
    max_body_bytes: int = Field(default=1_048_576, ge=0)
    max_connections: int = Field(default=100, ge=1)
    retry_idempotent: bool = False  # GET/HEAD only, and only on connect failures
    # A venue answer over this is dropped (502): JSON answers are KiBs, order books a few MiB.
    max_response_bytes: int = Field(default=16 * 1024 * 1024, ge=1024, le=1024 * 1024 * 1024)


class ErrorSettings(_Strict):
    """How the proxy's own refusals look (README, "Using it from CCXT").

    ``venue_envelope``: on a venue route, render the refusal in that venue's JSON error
    shape (``proxy.signers.envelopes``) so trading SDKs raise the matching exception; the
    status and ``X-Signing-Proxy-Error`` stay. ``false``: always the plain contract body.
    """

    venue_envelope: bool = True


class GroupOverride(_Strict):
    """Operator numbers for one profile group (``rate_limits.overrides``)."""

    limit: int | None = Field(default=None, ge=1)
    window_s: float | None = Field(default=None, gt=0)


class VenueRateLimits(_Strict):
    profile: str | None = None  # default: the venue's scheme; "none": no venue profile
    cooldown_s: float | None = Field(default=None, gt=0, le=3600)  # pause after a venue "slow down"


class RateLimitSettings(_Strict):
    """``rate_limits:``; see ``docs/rate-limits.md`` and ``proxy.ratelimit.profiles``."""

    backend: Literal["memory", "redis"] = "memory"
    url: str | None = Field(default=None, repr=False)  # redis://host:port/db (no password: password_file)
    # A file holding the Redis password (a Secret volume), read at startup and put into the
    # client's URL: the config file (a ConfigMap) never holds it. Relative to the config file.
    password_file: Path | None = None
    # None: "signing-proxy:<hash of where the keys live>" (``default_key_prefix``)
    key_prefix: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
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
    # The shared EVEDEX login lock: its lease (renewed every third while the login runs; a dead
    # holder's lock is taken over after at most this) and how long a replica waits for a live
    # holder before refusing the request (credentials_unavailable).
    session_lock_lease_s: float = Field(default=3.0, ge=0.1, le=60)
    session_lock_wait_s: float = Field(default=10.0, gt=0, le=600)

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
    # Client frames forwarded to the venue, per stream: a token bucket. Subscriptions come in
    # a burst at the start, then pings and the odd (un)subscribe; over it the stream is
    # closed with 4429 (docs/websockets.md), before the venue bans the account's connection.
    frames_per_second: float = Field(default=20, gt=0, le=10_000)
    frame_burst: int = Field(default=100, ge=1, le=100_000)


class Settings(_Strict):
    listen: Listen = Listen()
    admin: AdminListen = AdminListen()
    vault: VaultSettings = VaultSettings()
    upstream: UpstreamSettings = UpstreamSettings()
    rate_limits: RateLimitSettings = RateLimitSettings()
    websocket: WebSocketSettings = WebSocketSettings()
    errors: ErrorSettings = ErrorSettings()
    policies: Path = Path("policies")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    watch_interval_s: float = Field(default=2.0, ge=0)  # poll config+policies for changes; 0: SIGHUP only
    # A reload waits until the files read the same twice this far apart (a file written in
    # place is never loaded half-written); 0: read once (an atomic rename writer).
    reload_settle_s: float = Field(default=0.5, ge=0, le=60)
    drain_timeout_s: int = Field(default=10, ge=1)  # on SIGTERM, finish in-flight requests this long
    # /readyz: "local" (default) = config and policies loaded, listener up, first credential
    # warm-up attempted; Vault, Redis and per-account secrets are reported, never fatal.
    # "strict": also 503 while a dependency is down or any account's secret is unusable.
    readiness: Literal["local", "strict"] = "local"
    # How often the background health pass re-checks Vault, Redis and every account's secret
    # (what /readyz's body and the degradation gauges report).
    health_interval_s: float = Field(default=5.0, gt=0, le=3600)
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
    transit_owners: dict[str, str] = {}
    for name, venue in settings.venues.items():
        if not ROUTE_NAME.match(name):
            raise ConfigError(path, f"venues.{name}", _UNREACHABLE_NAME)
        validate_scheme_options(path, name, venue)
        for account, key in transit_keys(path, name, venue.accounts).items():
            owner = transit_owners.setdefault(key, f"{name}/{account}")
            if owner != f"{name}/{account}":
                raise ConfigError(
                    path,
                    f"venues.{name}.accounts",
                    f"Transit key {key!r} would sign for both {owner} and {name}/{account}: "
                    "set a distinct transit_key on one of them",
                )
    policies = settings.policies if settings.policies.is_absolute() else path.parent / settings.policies
    limits: dict[str, Any] = {}
    if settings.rate_limits.key_prefix is None:
        limits["key_prefix"] = default_key_prefix(settings.vault)
    if settings.rate_limits.password_file is not None and settings.rate_limits.url is not None:
        limits["url"] = _with_password(path, settings.rate_limits.url, settings.rate_limits.password_file)
    update: dict[str, Any] = {"policies": policies}
    if limits:
        update["rate_limits"] = settings.rate_limits.model_copy(update=limits)
    return settings.model_copy(update=update)


def _with_password(path: Path, url: str, password_file: Path) -> str:
    """``url`` with the password read from ``password_file``; errors never quote either."""
    field = "rate_limits.password_file"
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise ConfigError(path, field, "needs a redis:// or rediss:// url")
    if parts.password is not None:
        raise ConfigError(path, field, "a password in rate_limits.url and password_file: keep only the file")
    source = password_file if password_file.is_absolute() else path.parent / password_file
    try:
        password = source.read_text(encoding="utf-8").strip("\r\n")
    except OSError as exc:
        raise ConfigError(path, field, f"cannot read {source} ({exc.strerror})") from None
    if not password:
        raise ConfigError(path, field, f"{source} is empty")
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host  # IPv6 literal
    netloc = f"{parts.username or ''}:{quote(password, safe='')}@{host}"  # username: as written
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def default_key_prefix(vault: VaultSettings) -> str:
    """``signing-proxy:<12 hex>``: the Redis key prefix when ``rate_limits.key_prefix`` is unset.

    The hash is of where the deployment's keys live (Vault address, KV mount and prefix,
    Transit mount). Two deployments that read the same secrets sign as the same venue
    accounts and share their buckets, cooldowns and sessions, as the venue itself counts
    them; any other deployment on the same Redis gets its own keys. Adding venues or
    accounts keeps the prefix (no bucket reset in a rolling update).
    """
    identity = [vault.url.rstrip("/"), vault.kv_mount, vault.kv_prefix, vault.transit_mount]
    digest = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:12]
    return f"signing-proxy:{digest}"


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

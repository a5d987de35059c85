"""The composition root: ``create_app(settings)`` wires the data plane from validated
``Settings``, and every config-time ``build_*`` lives here (venues, store, login, Transit,
limiter, venue rate limits), so runtime modules never import the settings they are built from.

Builds the venues (one signer each), the credential store (Vault), Transit, the limiter
and its rate gate, the forwarder and the stream gateway, and hands their start/stop to
the edge's lifespan (``proxy.edge.ProxyApp``). Config and policy errors raise
``ConfigError`` here, before anything listens.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from proxy.clock import Clock, SystemClock
from proxy.config_errors import ConfigError
from proxy.credentials.base import CredentialStore
from proxy.credentials.transit import TransitKeys, VaultTransit
from proxy.credentials.vault import VaultStore, make_client
from proxy.credentials.vault_auth import (
    AppRoleLogin,
    ServiceAccountLogin,
    TokenKeeper,
    TokenLogin,
    VaultLogin,
)
from proxy.edge import ProxyApp
from proxy.forward import Forwarder
from proxy.hygiene import HeaderPolicy
from proxy.metrics import Metrics
from proxy.pipeline import Pipeline
from proxy.policy.loader import load_policies
from proxy.policy.rules import PolicySet
from proxy.ratelimit.gate import RateGate, RateLimits, VenueLimits
from proxy.ratelimit.limiter import Limiter, LimiterCollector, MemoryLimiter
from proxy.ratelimit.profiles import PROFILE_DIR, SHIPPED_PROFILES, Group, Profile, load_profiles
from proxy.readiness import Health
from proxy.settings import GroupOverride, RateLimitSettings, Settings, validate_scheme_options
from proxy.signers import ENVELOPES, SIGNERS, owned_headers
from proxy.signers.base import LockWaits, SessionEvents
from proxy.signing_modes import transit_keys
from proxy.venue import Venue
from proxy.ws.gateway import StreamGateway
from proxy.ws.upstream import AiohttpConnector

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from proxy.credentials.sessions_redis import RedisSessions


def build_venues(
    settings: Settings, events: SessionEvents | None = None, lock_waits: LockWaits | None = None
) -> dict[str, Venue]:
    """One signer per configured venue, built once from its validated scheme options."""
    venues = {}
    for name, config in settings.venues.items():
        signer_class = SIGNERS[config.scheme]
        options = validate_scheme_options(Path(settings.source), name, config)
        signer = signer_class(options)
        if events is not None:
            signer.events = events
        if lock_waits is not None:
            signer.lock_waits = lock_waits
        transit = transit_keys(settings.source, name, config.accounts)
        venues[name] = Venue(
            name, config.upstream, frozenset(config.account_names), signer, config.ws_upstream, transit
        )
    return venues


def build_transit(
    settings: Settings, store: CredentialStore, metrics: Metrics | None = None
) -> VaultTransit | None:
    """Vault Transit for ``signing: transit`` accounts, sharing the store's token when it can.

    Built whenever Vault is configured (it opens no connection until first used), so a
    reload that switches an account to Transit finds it ready.
    """
    vault = settings.vault
    invalidate = None
    if isinstance(store, VaultStore):
        keeper = store.keeper
        invalidate = store.invalidate  # a retired pinned version: re-read the KV pin
    elif vault.url:
        keeper = TokenKeeper(
            make_client(vault.url, None, vault.timeout_s),
            build_login(settings),
            SystemClock(),
            relogin_interval_s=vault.relogin_interval_s,
        )
    else:
        return None
    url = vault.url or str(keeper.client.url)
    return VaultTransit(
        url,
        keeper,
        vault.transit_mount,
        vault.timeout_s,
        vault.transit_max_connections,
        on_version_gone=invalidate,
        metrics=metrics,
        denied_cache_s=vault.denied_cache_s,
    )


def build_store(settings: Settings, clock: Clock, metrics: Metrics | None = None) -> VaultStore:
    vault = settings.vault
    if not vault.url:
        raise ConfigError(settings.source, "vault.url", "no Vault address (set vault.url or VAULT_ADDR)")
    client = make_client(vault.url, None, vault.timeout_s)
    return VaultStore(
        client,
        clock,
        vault.kv_mount,
        vault.kv_prefix,
        vault.cache_ttl_s,
        vault.stale_grace_s,
        login=build_login(settings),
        metrics=metrics,
        denied_cache_s=vault.denied_cache_s,
        relogin_interval_s=vault.relogin_interval_s,
    )


def build_login(settings: Settings) -> VaultLogin:
    auth = settings.vault.auth
    if auth.method == "token":
        return TokenLogin(token_file=auth.token_file)
    if auth.method == "approle":
        role_id = auth.role_id or os.environ.get("VAULT_ROLE_ID")
        if not role_id:
            raise ConfigError(
                settings.source, "vault.auth.role_id", "approle needs role_id (or VAULT_ROLE_ID)"
            )
        return AppRoleLogin(role_id, auth.secret_id_file, mount=auth.mount or "approle")
    assert auth.role is not None  # validated in settings
    return ServiceAccountLogin(
        auth.role, auth.token_path, mount=auth.mount or auth.method, method=auth.method
    )


def build_limiter(config: RateLimitSettings, clock: Clock) -> Limiter:
    """The configured backend (``rate_limits.backend``); nothing connects until first use."""
    if config.backend == "memory":
        return MemoryLimiter(clock)
    from proxy.ratelimit.redis import RedisLimiter  # redis is imported only when configured

    assert config.url is not None  # RateLimitSettings validates it
    assert config.key_prefix is not None  # load_settings fills the default (default_key_prefix)
    return RedisLimiter(
        config.url,
        clock,
        key_prefix=config.key_prefix,
        timeout_s=config.timeout_s,
        on_error=config.on_redis_error,
    )


def build_rate_limits(settings: Settings) -> RateLimits:
    """Resolve each configured venue's profile and the operator's overrides."""
    config = settings.rate_limits
    source = Path(settings.source)
    if not config.venue_profiles:
        return RateLimits()
    directory = _profile_dir(config, source, settings.policies)
    profiles = load_profiles(directory)
    unknown = sorted(set(config.venues) - set(settings.venues))
    if unknown:
        raise ConfigError(source, f"rate_limits.venues.{unknown[0]}", "not a configured venue")
    venues = {}
    for name, venue in settings.venues.items():
        choice = config.venues.get(name)
        profile_name = (choice.profile if choice and choice.profile else None) or venue.scheme
        if profile_name == "none":
            continue
        if profile_name not in profiles:
            field = f"rate_limits.venues.{name}.profile" if choice and choice.profile else f"venues.{name}"
            raise ConfigError(source, field, f"no rate-limit profile {profile_name!r} in {directory}")
        cooldown = choice.cooldown_s if choice else None
        venues[name] = _venue_limits(
            name, venue.account_names, profiles[profile_name], config, source, cooldown
        )
    _check_overrides(config, settings, venues, source)
    return RateLimits(venues)


def _profile_dir(config: RateLimitSettings, source: Path, policies: Path) -> Path:
    if config.profiles_dir is not None:
        given = config.profiles_dir
        return given if given.is_absolute() else source.parent / given
    beside = policies / PROFILE_DIR
    return beside if beside.is_dir() else SHIPPED_PROFILES


def _venue_limits(
    venue: str,
    accounts: Iterable[str],
    profile: Profile,
    config: RateLimitSettings,
    source: Path,
    cooldown_s: float | None,
) -> VenueLimits:
    known = {g.name: g for g in profile.groups}
    venue_wide = _overridden(known, config.overrides.get(venue, {}), f"rate_limits.overrides.{venue}", source)
    ip_groups = tuple(g for g in venue_wide.values() if g.scope == "ip")
    per_account = {}
    for account in accounts:
        key = f"{venue}/{account}"
        field = f"rate_limits.overrides.{key}"
        groups = _overridden(venue_wide, config.overrides.get(key, {}), field, source)
        ip_touched = [g for g in config.overrides.get(key, {}) if venue_wide[g].scope == "ip"]
        if ip_touched:
            raise ConfigError(
                source, f"{field}.{ip_touched[0]}", "an ip-scoped group is overridden per venue"
            )
        per_account[account] = tuple(g for g in groups.values() if g.scope == "account")
    feedback = profile.feedback if cooldown_s is None else replace(profile.feedback, cooldown_s=cooldown_s)
    default = tuple(g for g in venue_wide.values() if g.scope == "account")
    return VenueLimits(venue, profile.name, ip_groups, per_account, feedback, default)


def _overridden(
    groups: dict[str, Group], overrides: Mapping[str, GroupOverride], field: str, source: Path
) -> dict[str, Group]:
    result = dict(groups)
    for name, override in overrides.items():
        if name not in groups:
            raise ConfigError(
                source, f"{field}.{name}", f"unknown group (profile groups: {', '.join(groups)})"
            )
        limit = override.limit or groups[name].limit
        window = override.window_s or groups[name].window_s
        result[name] = replace(groups[name], limit=limit, window_s=window)
    return result


def _check_overrides(
    config: RateLimitSettings, settings: Settings, venues: Mapping[str, VenueLimits], source: Path
) -> None:
    for key in config.overrides:
        venue, _, account = key.partition("/")
        field = f"rate_limits.overrides.{key}"
        if venue not in settings.venues or (account and account not in settings.venues[venue].account_names):
            raise ConfigError(source, field, "not a configured venue or <venue>/<account>")
        if venue not in venues:
            raise ConfigError(source, field, f"venue {venue} has no rate-limit profile to override")


def create_app(
    settings: Settings,
    *,
    store: CredentialStore | None = None,
    clock: Clock | None = None,
    policies: PolicySet | None = None,
    metrics: Metrics | None = None,
    transit: TransitKeys | None = None,
) -> ProxyApp:
    """Wire the data plane from settings. Config and policy errors raise ``ConfigError`` here."""
    clock = clock or SystemClock()
    metrics = metrics or Metrics()
    builder = VenueBuilder(settings, clock, metrics)  # startup and reloads build venues with it
    venues = builder(settings)
    if policies is None:
        policies = load_policies(settings.policies, venues=venues)
    store = store if store is not None else build_store(settings, clock, metrics)
    up = settings.upstream
    forwarder = Forwarder(
        up.connect_timeout_s,
        up.timeout_s,
        up.max_connections,
        up.retry_idempotent,
        max_response_bytes=up.max_response_bytes,
    )
    limiter = build_limiter(settings.rate_limits, clock)
    gate = RateGate(
        limiter,
        build_rate_limits(settings),
        settings.rate_limits.max_wait_ms,
        _client_waits(settings, policies),
    )
    metrics.registry.register(LimiterCollector(limiter))
    builder.store = store
    builder.share(venues)
    transit = transit if transit is not None else build_transit(settings, store, metrics)
    _transit_ready(settings, venues, transit)
    pipeline = Pipeline(
        policies,
        venues,
        store,
        limiter,
        forwarder,
        clock,
        HeaderPolicy(owned_headers()),
        rate_gate=gate,
        transit=transit,
        build_venues=builder,
    )
    ws = settings.websocket
    streams = StreamGateway(
        pipeline, ws, AiohttpConnector(up.connect_timeout_s, up.timeout_s, ws.max_frame_bytes), up.timeout_s
    )

    health = Health(
        pipeline, metrics, strict=settings.readiness == "strict", interval_s=settings.health_interval_s
    )

    async def startup() -> None:
        await forwarder.start()
        await store.start()
        if transit is not None:
            await transit.start()
        await streams.start()
        health.start()  # its first pass is the credential warm-up (readiness waits for it)

    async def shutdown() -> None:
        await health.close()
        await streams.close()
        await forwarder.close()
        if transit is not None:
            await transit.close()
        await limiter.close()
        await builder.aclose()
        await store.close()

    return ProxyApp(
        pipeline,
        up.max_body_bytes,
        startup=startup,
        shutdown=shutdown,
        metrics=metrics,
        streams=streams,
        envelopes=ENVELOPES if settings.errors.venue_envelope else None,
        health=health,
    )


def _transit_ready(settings: Settings, venues: dict[str, Venue], transit: TransitKeys | None) -> None:
    if transit is not None:
        return
    for name, venue in venues.items():
        if venue.transit_keys:
            field = f"venues.{name}.accounts"
            raise ConfigError(
                settings.source, field, "signing: transit needs Vault (set vault.url or VAULT_ADDR)"
            )


def _client_waits(settings: Settings, policies: PolicySet) -> dict[str, int]:
    waits = settings.rate_limits.client_max_wait_ms
    for name in waits:
        if name not in policies.clients:
            field = f"rate_limits.client_max_wait_ms.{name}"
            raise ConfigError(settings.source, field, "no such client in the policies")
    return dict(waits)


class VenueBuilder:
    """Builds the venues with every signer wired as the process wires them: session event and
    lock-wait metrics, and the replicas' shared EVEDEX sessions (``proxy.credentials.sessions_redis``).

    ``create_app`` builds the startup venues with it and hands it to the pipeline; a reload
    (``proxy.reload``) builds through the same instance, so a signer built by a reload shares
    the same session store and Redis client as one built at startup. The Redis settings are
    the startup ones: ``rate_limits`` needs a restart to change.
    """

    def __init__(self, settings: Settings, clock: Clock, metrics: Metrics) -> None:
        self._config = settings.rate_limits
        self._clock = clock
        self._metrics = metrics
        self.store: CredentialStore | None = None  # set once built; sessions are shared from then on
        self.client: Redis | None = None  # the sessions' Redis client, closed at shutdown
        self._shared: RedisSessions | None = None

    def __call__(self, settings: Settings) -> dict[str, Venue]:
        venues = build_venues(settings, self._metrics.session, self._metrics.session_lock_wait)
        self.share(venues)
        return venues

    def share(self, venues: dict[str, Venue]) -> None:
        """Give the venues' session-keeping signers the shared store, once it can be built."""
        config = self._config
        enabled = config.backend == "redis" if config.shared_sessions is None else config.shared_sessions
        if not enabled or config.url is None or self.store is None:
            return
        from proxy.credentials.sessions_redis import share_sessions  # redis is imported only when configured

        share_sessions((venue.signer for venue in venues.values()), self._sessions)

    def _sessions(self) -> RedisSessions:
        """The process's one shared session store; its Redis client is opened on first need."""
        if self._shared is None:
            from proxy.credentials.sessions_redis import RedisSessions
            from proxy.ratelimit.redis import make_client

            config = self._config
            assert config.url is not None and self.store is not None  # share() checked
            assert config.key_prefix is not None  # load_settings fills the default (default_key_prefix)
            self.client = make_client(config.url, config.timeout_s)
            self._shared = RedisSessions(
                self.client,
                self.store,
                self._clock,
                key_prefix=config.key_prefix,
                lease_s=config.session_lock_lease_s,
                wait_s=config.session_lock_wait_s,
                observe=self._metrics.session_lock_wait,
            )
        return self._shared

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.aclose(close_connection_pool=True)

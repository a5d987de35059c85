"""The whole stack on one machine: OpenBao dev server, simulated venues, the proxy.

Used by ``signing-proxy demo`` and by the integration tests, so the demo a newcomer
runs is the same wiring the tests check. ``LocalStack`` writes a real config file and a
real policy directory into a temporary folder and starts the proxy from them with
``load_settings`` + ``create_app``: the same path as ``signing-proxy serve``.
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from proxy.admin import create_admin_app
from proxy.app import create_app
from proxy.dev.devvault import DevVault, free_port
from proxy.edge import ProxyApp
from proxy.identity import token_sha256
from proxy.serve import client_limits, data_plane_config
from proxy.server import BackgroundServer
from proxy.settings import load_settings
from proxy.signers import SIGNERS
from proxy.signing_modes import default_transit_key
from proxy.sim import DEMOS, SIMULATORS
from proxy.sim.base import SimVenue
from proxy.sim.credentials import demo_credentials, sim_keys
from proxy.ws.logins import LOGINS

ALL_SCHEMES = tuple(SIGNERS)

# What the shipped demo policy lets the demo client do per venue: reads anywhere, order
# endpoints for writes (each simulator's DEMO); withdrawals are denied for everyone.
ORDER_PATHS = {scheme: list(demo.order_paths) for scheme, demo in DEMOS.items()}
WITHDRAW_DENY = ["**/withdraw*", "**/crypto-withdrawals*"]


@dataclass
class StackClient:
    name: str
    token: str


@dataclass
class LocalStack:
    schemes: tuple[str, ...] = ALL_SCHEMES
    account: str = "main"
    # Accounts declared in the config but not seeded in Vault (tests seed them as they need).
    unseeded_accounts: tuple[str, ...] = ()
    # Extra venue names -> (scheme, upstream origin), seeded with that scheme's credentials.
    extra_venues: dict[str, tuple[str, str]] = field(default_factory=dict)
    extra_config: dict[str, Any] = field(default_factory=dict)
    # Venues (of ``schemes``) whose account signs with a key imported into Vault Transit,
    # through the same code as ``signing-proxy keys put --transit`` (docs/transit.md).
    transit: tuple[str, ...] = ()
    tiny_rate: dict[str, float] = field(default_factory=lambda: {"per_second": 0.2, "burst": 2})
    # More account entries per venue (e.g. ``{name: desk3, signing: transit, transit_key: …}``).
    extra_accounts: dict[str, list[Any]] = field(default_factory=dict)
    # Called once OpenBao runs, before the config is written: returns ``vault.auth`` (e.g. an
    # AppRole under a restricted policy) instead of the root token.
    vault_auth: Callable[[DevVault, Path], dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        # One private (0700) directory for everything the stack writes: the config, the
        # policies, the Vault root-token file and the logs. ``stop`` removes it.
        self._dir = tempfile.TemporaryDirectory(prefix="signing-proxy-")
        self.dir = Path(self._dir.name)
        self.token_file = self.dir / "vault-token"
        self.vault = DevVault(log=self.dir / "bao.log")
        self.sims: dict[str, SimVenue] = {}
        self.credentials: dict[str, dict[str, str]] = {}
        self.clients = {
            "trader": StackClient("trader", "trader-" + secrets.token_urlsafe(16)),
            "tiny": StackClient("tiny", "tiny-" + secrets.token_urlsafe(16)),
        }
        self._servers: list[BackgroundServer] = []
        self.venue_schemes: dict[str, str] = {}
        self.proxy_url = ""
        self.admin_url = ""
        self.app: ProxyApp | None = None

    async def __aenter__(self) -> LocalStack:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        self.vault.start()
        self.vault.enable_transit()
        venues = {}
        for scheme in self.schemes:
            fields = demo_credentials(scheme)
            self.credentials[scheme] = fields
            self._seed(scheme, fields)
            sim = SIMULATORS[scheme](sim_keys(fields), None)
            self.sims[scheme] = sim
            server = await BackgroundServer.for_app(sim, free_port()).start()
            self._servers.append(server)
            venues[scheme] = self._venue_config(scheme, server.url)
        for name, (scheme, upstream) in self.extra_venues.items():
            self.vault.put_secret(f"signing-proxy/{name}/{self.account}", self.credentials[scheme])
            venues[name] = self._venue_config(scheme, upstream)
            if scheme == "evedex" and "evedex" in venues:  # log in at the simulated venue
                venues[name]["auth_upstream"] = venues["evedex"]["upstream"]
        self.venue_schemes = {name: config["scheme"] for name, config in venues.items()}
        config_path = self._write_files(venues)
        settings = load_settings(config_path, environ={})
        self.settings = settings
        self.app = create_app(settings)
        config = data_plane_config(
            self.app,
            "127.0.0.1",
            free_port(),
            ws_max_size=settings.websocket.max_frame_bytes,
            limits=client_limits(settings.listen),
        )
        proxy = await BackgroundServer(config).start()
        self._servers.append(proxy)
        self.proxy_url = proxy.url
        admin = create_admin_app(self.app.pipeline, self.app.metrics, self.app.health)
        admin_server = await BackgroundServer.for_app(admin, free_port()).start()
        self._servers.append(admin_server)
        self.admin_url = admin_server.url

    def _seed(self, scheme: str, fields: dict[str, str]) -> None:
        if scheme not in self.transit:
            self.vault.put_secret(f"signing-proxy/{scheme}/{self.account}", fields)
            return
        from proxy.keys.provisioning import Account, KeyVault, put_transit

        key = default_transit_key(scheme, self.account)
        account = Account(scheme, self.account, SIGNERS[scheme](), key)
        put_transit(KeyVault(self.vault.client(), "secret", "signing-proxy", "transit"), account, fields, key)

    def _venue_config(self, scheme: str, url: str) -> dict[str, Any]:
        main: str | dict[str, str] = self.account
        if scheme in self.transit:
            main = {"name": self.account, "signing": "transit"}
        accounts = [main, *self.unseeded_accounts, *self.extra_accounts.get(scheme, [])]
        config: dict[str, Any] = {"scheme": scheme, "upstream": url, "accounts": accounts}
        if scheme == "evedex":
            config["auth_upstream"] = url  # the simulated venue serves both APIs
        if scheme in LOGINS:  # the simulated venue serves its streams on the same port
            config["ws_upstream"] = "ws" + url.removeprefix("http")
        return config

    def _write_files(self, venues: dict[str, Any]) -> Path:
        policies = self.dir / "policies"
        policies.mkdir()
        (policies / "demo.yaml").write_text(yaml.safe_dump(self.policy(), sort_keys=False))
        token_file = self.token_file
        token_file.touch(mode=0o600)
        token_file.write_text(self.vault.root_token)
        auth = {"method": "token", "token_file": str(token_file)}
        if self.vault_auth is not None:
            auth = self.vault_auth(self.vault, self.dir)
        config = {
            "listen": {"host": "127.0.0.1", "port": 0},
            "vault": {"url": self.vault.url, "cache_ttl_s": 300, "auth": auth},
            "policies": "policies",
            "venues": venues,
            **self.extra_config,
        }
        path = self.dir / "proxy.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def policy(self) -> dict[str, Any]:
        allow = []
        for venue, scheme in self.venue_schemes.items():
            allow.append({"venue": venue, "methods": ["GET"], "paths": ["/**"]})
            allow.append({"venue": venue, "methods": ["POST", "PUT", "DELETE"], "paths": ORDER_PATHS[scheme]})
        deny = [{"venue": "*", "paths": WITHDRAW_DENY}]
        trader, tiny = self.clients["trader"], self.clients["tiny"]
        return {
            "version": 1,
            "clients": {
                trader.name: {"token_sha256": token_sha256(trader.token), "allow": allow, "deny": deny},
                tiny.name: {
                    "token_sha256": token_sha256(tiny.token),
                    "rate_limit": self.tiny_rate,
                    "allow": allow,
                    "deny": deny,
                },
            },
        }

    def headers(self, client: str = "trader") -> dict[str, str]:
        return {"Proxy-Authorization": f"Bearer {self.clients[client].token}"}

    def url(self, venue: str, path: str, account: str | None = None) -> str:
        return f"{self.proxy_url}/{venue}/{account or self.account}{path}"

    async def stop(self) -> None:
        # Whatever fails or is interrupted on the way, bao stops and the directory (root
        # token, logs) goes.
        try:
            for server in reversed(self._servers):
                await server.stop()
        finally:
            self._servers.clear()
            try:
                self.vault.stop()
            finally:
                self._dir.cleanup()

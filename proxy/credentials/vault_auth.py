"""How the proxy authenticates to Vault/OpenBao, and keeps its token alive.

Methods (``vault.auth.method``):

* ``token``: a token from ``VAULT_TOKEN`` (or ``vault.auth.token_file``). It cannot log in
  again, so it is renewed before it expires (``renew-self``) when it is renewable.
* ``approle``: ``role_id`` (config or ``VAULT_ROLE_ID``) and ``secret_id`` read from
  ``secret_id_file`` or ``VAULT_SECRET_ID`` — never from the config file itself.
* ``kubernetes``: the pod's projected service-account token (``token_path``, default
  ``/var/run/secrets/kubernetes.io/serviceaccount/token``) against the Kubernetes auth
  method (``auth/<mount>/login``).
* ``jwt``: the same token file against Vault's JWT/OIDC auth method; the way to use a
  projected service-account token when Vault validates it with the cluster's JWKS.

The token file is re-read at every login: Kubernetes rotates projected tokens.
``TokenKeeper`` decides, from the token's TTL, when to renew and when to log in again;
``VaultStore`` calls it before reads and on a 403, and a background task keeps it fresh.
Nothing here logs or raises a token or secret id.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import hvac

from proxy.clock import Clock

log = logging.getLogger("signing_proxy.vault")

SA_TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/token"


class VaultLoginError(Exception):
    """Login failed; the message names the method and the missing input, never a value."""


class VaultLogin(Protocol):
    method: str

    def login(self, client: hvac.Client) -> None:
        """Set ``client.token`` to a fresh token."""

    @property
    def can_relogin(self) -> bool: ...


@dataclass
class TokenLogin:
    """A given token: ``token``, else the file ``token_file``, else ``VAULT_TOKEN``."""

    token: str | None = None
    token_file: str | None = None
    method: str = "token"

    def login(self, client: hvac.Client) -> None:
        client.token = self.token or _read_secret(self.token_file, "VAULT_TOKEN", "vault token")

    @property
    def can_relogin(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "<TokenLogin>"


@dataclass
class AppRoleLogin:
    role_id: str
    secret_id_file: str | None
    mount: str = "approle"
    method: str = "approle"

    def login(self, client: hvac.Client) -> None:
        secret_id = _read_secret(self.secret_id_file, "VAULT_SECRET_ID", "approle secret_id")
        client.auth.approle.login(role_id=self.role_id, secret_id=secret_id, mount_point=self.mount)

    @property
    def can_relogin(self) -> bool:
        return True


@dataclass
class ServiceAccountLogin:
    """Kubernetes (``auth/kubernetes``) or JWT (``auth/jwt``) login with a token file."""

    role: str
    token_path: str = SA_TOKEN_PATH
    mount: str = "kubernetes"
    method: str = "kubernetes"

    def login(self, client: hvac.Client) -> None:
        jwt = _read_secret(self.token_path, None, "service-account token")
        if self.method == "jwt":
            client.auth.jwt.jwt_login(role=self.role, jwt=jwt, path=self.mount)
        else:
            client.auth.kubernetes.login(role=self.role, jwt=jwt, mount_point=self.mount)

    @property
    def can_relogin(self) -> bool:
        return True


def _read_secret(path: str | None, env: str | None, what: str) -> str:
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise VaultLoginError(f"cannot read {what} from {path} ({exc.strerror})") from None
    value = os.environ.get(env) if env else None
    if not value:
        raise VaultLoginError(f"no {what}: set a file path in the config" + (f" or {env}" if env else ""))
    return value


class TokenKeeper:
    """Keeps ``client.token`` valid: renew at ``renew_fraction`` of its TTL, else log in again."""

    def __init__(self, client: hvac.Client, login: VaultLogin, clock: Clock, renew_fraction: float = 0.66):
        self.client = client
        self.login = login
        self.clock = clock
        self.renew_fraction = renew_fraction
        self._renew_at: float | None = None  # monotonic; None: token never expires or unknown
        self._expires_at: float | None = None
        self._renewable = False
        self._logged_in = False

    def ensure(self) -> None:
        """Blocking (run in a thread). Log in the first time; renew or re-login when due."""
        if not self._logged_in:
            self.relogin()
            return
        if self._renew_at is not None and self.clock.monotonic() >= self._renew_at:
            self.renew()

    def relogin(self) -> None:
        self.login.login(self.client)
        self._logged_in = True
        self._learn_ttl()
        log.info("vault login", extra={"method": self.login.method, "ttl_s": self.ttl_s})

    def renew(self) -> None:
        expired = self._expires_at is not None and self.clock.monotonic() >= self._expires_at
        if self._renewable and not expired:
            try:
                self.client.auth.token.renew_self()
                self._learn_ttl()
                log.info("vault token renewed", extra={"method": self.login.method, "ttl_s": self.ttl_s})
                return
            except hvac.exceptions.VaultError as exc:
                log.warning("vault token renewal failed", extra={"error": type(exc).__name__})
        if self.login.can_relogin:
            self.relogin()
        else:
            log.error("vault token cannot be renewed and the token method cannot log in again")
            self._renew_at = None

    def on_forbidden(self) -> bool:
        """A read was refused (expired/revoked token). Log in again if we can; True if retried."""
        if not self.login.can_relogin:
            return False
        self.relogin()
        return True

    @property
    def ttl_s(self) -> float | None:
        if self._expires_at is None:
            return None
        return max(0.0, self._expires_at - self.clock.monotonic())

    def seconds_until_renewal(self) -> float | None:
        if self._renew_at is None:
            return None
        return max(0.0, self._renew_at - self.clock.monotonic())

    def _learn_ttl(self) -> None:
        data = self.client.auth.token.lookup_self()["data"]
        ttl = int(data.get("ttl") or 0)
        self._renewable = bool(data.get("renewable"))
        now = self.clock.monotonic()
        if ttl <= 0:  # root and other non-expiring tokens
            self._renew_at = self._expires_at = None
            return
        self._expires_at = now + ttl
        self._renew_at = now + ttl * self.renew_fraction

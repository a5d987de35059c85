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

A 403 is not proof of an expired token: Vault answers 403 both for an invalid token and for
a path the token's policy does not allow. ``on_forbidden`` tells them apart by looking the
token up (``auth/token/lookup-self`` is in every token's default policy and fails only when
the token itself is invalid), logs in again only for an invalid token, at most once per
``relogin_interval_s``, one thread at a time, and revokes the token it replaces
(``revoke-self`` with the old token) so replaced tokens do not pile up in Vault.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import hvac

from proxy.clock import Clock

log = logging.getLogger("signing_proxy.vault")

SA_TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/token"
Verdict = Literal["replaced", "denied", "invalid"]  # what a 403 meant (TokenKeeper.on_forbidden)


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
    """Keeps ``client.token`` valid: renew at ``renew_fraction`` of its TTL, else log in again.

    Thread-safe: KV reads, Transit's re-login and the background renewer call it from
    worker threads; one lock makes every login single-flight.
    """

    def __init__(
        self,
        client: hvac.Client,
        login: VaultLogin,
        clock: Clock,
        renew_fraction: float = 0.66,
        relogin_interval_s: float = 5.0,
    ):
        self.client = client
        self.login = login
        self.clock = clock
        self.renew_fraction = renew_fraction
        self.relogin_interval_s = relogin_interval_s
        self.policies: tuple[str, ...] = ()  # the token's policies: named in permission refusals
        self.logins = 0
        self._lock = threading.RLock()
        self._renew_at: float | None = None  # monotonic; None: token never expires or unknown
        self._expires_at: float | None = None
        self._renewable = False
        self._logged_in = False
        self._own_token: str | None = None  # a token our login obtained (ours to revoke)
        self._forced_at = -math.inf  # last re-login caused by a 403

    def ensure(self) -> None:
        """Blocking (run in a thread). Log in the first time; renew or re-login when due."""
        with self._lock:
            if not self._logged_in:
                self.relogin()
                return
            if self._renew_at is not None and self.clock.monotonic() >= self._renew_at:
                self.renew()

    def relogin(self) -> None:
        with self._lock:
            replaced = self._own_token
            self.login.login(self.client)
            self.logins += 1
            self._logged_in = True
            self._own_token = self.client.token if self.login.can_relogin else None
            self._learn_ttl()
            log.info("vault login", extra={"method": self.login.method, "ttl_s": self.ttl_s})
            if replaced is not None and replaced != self.client.token:
                self._revoke(replaced)

    def renew(self) -> None:
        with self._lock:
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

    def on_forbidden(self, refused_token: str | None = None) -> Verdict:
        """A request with ``refused_token`` got 403. What it means:

        * ``"replaced"``: the token was invalid and is replaced (now or by another caller):
          retry once;
        * ``"denied"``: the token is valid, so the policy refuses the path: do not retry;
        * ``"invalid"``: the token is invalid and cannot be replaced now (a ``token`` method,
          or a re-login less than ``relogin_interval_s`` ago): like Vault being unreachable.

        Raises what the lookup raises when Vault cannot be asked (unreachable, 5xx).
        """
        with self._lock:
            if refused_token is not None and self.client.token != refused_token:
                return "replaced"  # another caller already logged in again
            if self._token_valid():
                return "denied"  # a permission problem: logging in again would not change it
            if not self.login.can_relogin:
                log.error("vault token is invalid and the token method cannot log in again")
                return "invalid"
            since = self.clock.monotonic() - self._forced_at
            if since < self.relogin_interval_s:
                log.error(
                    "vault token invalid again right after a re-login: not logging in again yet",
                    extra={"method": self.login.method, "since_s": round(since, 3)},
                )
                return "invalid"
            self._forced_at = self.clock.monotonic()
            log.warning("vault token invalid (revoked or expired): logging in again")
            self.relogin()
            return "replaced"

    def _token_valid(self) -> bool:
        try:
            data = self.client.auth.token.lookup_self()["data"]
        except hvac.exceptions.Forbidden:
            return False
        self._learn_from(data)
        return True

    def _revoke(self, token: str) -> None:
        """``revoke-self`` with the replaced token; best effort (an expired one is gone anyway)."""
        adapter = self.client.adapter
        try:
            hvac.Client(
                url=self.client.url,
                token=token,
                session=adapter.session,
                namespace=adapter.namespace,
                timeout=adapter._kwargs.get("timeout", 5),
                verify=adapter._kwargs.get("verify", True),
            ).auth.token.revoke_self()
            log.info("vault token replaced and revoked", extra={"method": self.login.method})
        except Exception as exc:  # already expired or revoked, or Vault down: nothing to undo
            log.info("vault token replaced; revoking the old one failed", extra={"error": type(exc).__name__})

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
        self._learn_from(self.client.auth.token.lookup_self()["data"])

    def _learn_from(self, data: dict[str, Any]) -> None:
        policies = data.get("policies")
        self.policies = tuple(str(p) for p in policies) if isinstance(policies, list) else ()
        ttl = int(data.get("ttl") or 0)
        self._renewable = bool(data.get("renewable"))
        now = self.clock.monotonic()
        if ttl <= 0:  # root and other non-expiring tokens
            self._renew_at = self._expires_at = None
            return
        self._expires_at = now + ttl
        self._renew_at = now + ttl * self.renew_fraction

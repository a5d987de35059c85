"""Credentials from Vault / OpenBao KV v2, cached in memory.

Layout (DESIGN.md): ``<kv_mount>/<kv_prefix>/<venue>/<account>``. hvac is synchronous
(requests), so reads run in a worker thread and never block the event loop; concurrent
misses for one account share one read (single flight).

Cache policy: a secret younger than ``cache_ttl_s`` is served from memory; an older one
is re-read, which picks up rotation without a restart. When Vault cannot be reached, a
cached secret keeps serving until it is ``cache_ttl_s + stale_grace_s`` old; after that,
or when the secret is missing, the request gets ``credentials_unavailable``.

A 403 on a read is asked about once (``TokenKeeper.on_forbidden``): an invalid token is
replaced and the read retried; a valid one means the Vault policy refuses the path. That
refusal is remembered for ``denied_cache_s`` (``vault_denials``), answered as
``credentials_unavailable`` naming the path and the token's policies, counted in
``signing_proxy_vault_denied_total``, and never served from a stale cache: someone took the
permission away on purpose. Messages
name the venue/account and the missing field, never a value; hvac exceptions (which may
quote responses) are not chained into what we raise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

import hvac
import hvac.exceptions
import requests

from proxy.clock import Clock
from proxy.credentials.vault_auth import TokenKeeper, TokenLogin, VaultLogin, VaultLoginError
from proxy.credentials.vault_denials import DenialCache, denial_detail
from proxy.errors import CredentialsUnavailable
from proxy.messages import Credentials
from proxy.metrics import Metrics

log = logging.getLogger("signing_proxy.vault")


@dataclass(slots=True)
class _Entry:
    creds: Credentials
    fetched_at: float


class _Missing(Exception):
    """The secret does not exist (as opposed to Vault being unreachable)."""


class _Denied(Exception):
    """Vault refused the path to a valid token: the policy does not allow it."""


class _TokenInvalid(Exception):
    """Our token is invalid and cannot be replaced right now (see ``TokenKeeper``)."""


class VaultStore:
    def __init__(
        self,
        client: hvac.Client,
        clock: Clock,
        kv_mount: str = "secret",
        kv_prefix: str = "signing-proxy",
        cache_ttl_s: float = 300,
        stale_grace_s: float = 900,
        login: VaultLogin | None = None,
        metrics: Metrics | None = None,
        denied_cache_s: float = 5.0,
        relogin_interval_s: float = 5.0,
    ) -> None:
        self._client = client
        self._metrics = metrics or Metrics.disabled()
        self._clock = clock
        self._keeper = TokenKeeper(
            client, login or TokenLogin(client.token), clock, relogin_interval_s=relogin_interval_s
        )
        self._denied = DenialCache(clock, denied_cache_s)
        self._renewer: asyncio.Task[None] | None = None
        self._mount = kv_mount
        self._prefix = kv_prefix.strip("/")
        self._ttl = cache_ttl_s
        self._grace = stale_grace_s
        self._cache: dict[tuple[str, str], _Entry] = {}
        self._inflight: dict[tuple[str, str], asyncio.Future[Credentials]] = {}

    @property
    def keeper(self) -> TokenKeeper:
        """The token keeper, shared with ``VaultTransit`` so both use one fresh token."""
        return self._keeper

    def path(self, venue: str, account: str) -> str:
        return f"{self._prefix}/{venue}/{account}" if self._prefix else f"{venue}/{account}"

    def invalidate(self, venue: str, account: str) -> None:
        """Forget the cached secret: the next request reads KV (a Transit pin that is gone)."""
        self._cache.pop((venue, account), None)

    async def get(self, venue: str, account: str) -> Credentials:
        key = (venue, account)
        entry = self._cache.get(key)
        if entry is not None and self._clock.monotonic() - entry.fetched_at < self._ttl:
            self._metrics.vault_lookup("hit")
            return entry.creds
        denied = self._denied.get(self.path(venue, account))
        if denied is not None:
            self._metrics.vault_denied(venue, account, "kv")
            raise CredentialsUnavailable(venue, account, denied)
        inflight = self._inflight.get(key)
        if inflight is not None:
            return await asyncio.shield(inflight)
        future: asyncio.Future[Credentials] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            creds = await self._refresh(venue, account, entry)
            future.set_result(creds)
            return creds
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters get it, nobody else must
            raise
        finally:
            del self._inflight[key]

    async def _refresh(self, venue: str, account: str, entry: _Entry | None) -> Credentials:
        try:
            fields, version = await asyncio.to_thread(self._read, venue, account)
        except _Missing:
            self._metrics.vault_lookup("missing")
            self._cache.pop((venue, account), None)
            raise CredentialsUnavailable(venue, account, "no secret at the configured Vault path") from None
        except _Denied:
            path = f"{self._mount}/data/{self.path(venue, account)}"
            detail = denial_detail(path, "read", self._keeper.policies)
            self._denied.put(self.path(venue, account), detail)
            self._cache.pop((venue, account), None)
            self._metrics.vault_lookup("denied")
            self._metrics.vault_denied(venue, account, "kv")
            log.error("vault refused a read", extra={"venue": venue, "account": account, "path": path})
            raise CredentialsUnavailable(venue, account, detail) from None
        except _TokenInvalid:
            return self._stale_or_fail(venue, account, entry, "token invalid, no re-login possible now")
        except Exception as exc:  # unreachable, 5xx, login refused
            return self._stale_or_fail(venue, account, entry, type(exc).__name__)
        self._metrics.vault_lookup("read")
        creds = Credentials(fields, version)
        if entry is not None and entry.creds.version != version:
            log.info("vault secret rotated", extra={"venue": venue, "account": account, "version": version})
        self._cache[(venue, account)] = _Entry(creds, self._clock.monotonic())
        return creds

    def _stale_or_fail(
        self, venue: str, account: str, entry: _Entry | None, why: str, what: str = "Vault unreachable"
    ) -> Credentials:
        age = None if entry is None else self._clock.monotonic() - entry.fetched_at
        if entry is not None and age is not None and age < self._ttl + self._grace:
            self._metrics.vault_lookup("stale")
            log.warning(
                "vault unreachable, serving cached secret",
                extra={"venue": venue, "account": account, "error": why, "age_s": round(age, 1)},
            )
            return entry.creds
        self._metrics.vault_lookup("error")
        log.error("vault unreachable", extra={"venue": venue, "account": account, "error": why})
        raise CredentialsUnavailable(venue, account, f"{what} ({why}) and no cached secret")

    def _read(self, venue: str, account: str) -> tuple[dict[str, str], int]:
        self._keeper.ensure()
        refused = self._client.token
        try:
            response = self._read_version(venue, account)
        except hvac.exceptions.Forbidden:
            # An invalid token is replaced and the read tried once more (a read is idempotent,
            # unlike a venue request); a valid one is refused by the policy.
            verdict = self._keeper.on_forbidden(refused)
            if verdict == "denied":
                raise _Denied() from None
            if verdict == "invalid":  # like Vault unreachable: a cached secret may still serve
                raise _TokenInvalid() from None
            try:
                response = self._read_version(venue, account)
            except hvac.exceptions.Forbidden:
                raise _Denied() from None
        data = response["data"]
        fields = {str(k): str(v) for k, v in (data.get("data") or {}).items() if v is not None}
        return fields, int(data.get("metadata", {}).get("version", 0))

    def _read_version(self, venue: str, account: str) -> dict[str, Any]:
        try:
            return self._client.secrets.kv.v2.read_secret_version(  # type: ignore[no-any-return]
                path=self.path(venue, account), mount_point=self._mount, raise_on_deleted_version=True
            )
        except hvac.exceptions.InvalidPath:
            raise _Missing() from None

    async def ping(self) -> bool:
        """Vault reachable and our token valid."""
        return await self.health() == "ok"

    async def health(self) -> str:
        """``ok``, or what is wrong with Vault for us: unreachable, sealed, authentication.

        Readiness reports it (``proxy.readiness``); only exception *type names* are kept,
        since hvac's messages may quote Vault's responses.
        """
        try:
            await asyncio.to_thread(self._keeper.ensure)
            authenticated = await asyncio.to_thread(self._client.is_authenticated)
        except (requests.ConnectionError, requests.Timeout):
            return "unreachable"
        except hvac.exceptions.VaultDown:
            return "sealed"
        except VaultLoginError:  # no token, or its file unreadable
            return "authentication failed"
        except (hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized, hvac.exceptions.InvalidRequest):
            return "authentication failed"
        except Exception as exc:  # whatever else: not ok, and say which kind of failure
            return f"error ({type(exc).__name__})"
        return "ok" if authenticated else "authentication failed"

    async def start(self) -> None:
        """Log in now (fail fast on bad auth config) and keep the token fresh in the background."""
        try:
            await asyncio.to_thread(self._keeper.ensure)
        except Exception as exc:  # Vault may be down at start: reads retry; readiness says so
            log.error("vault login failed at start", extra={"error": type(exc).__name__})
        self._renewer = asyncio.create_task(self._renew_forever())

    async def _renew_forever(self) -> None:
        while True:
            wait = self._keeper.seconds_until_renewal()
            await asyncio.sleep(60 if wait is None else max(wait, 1))
            try:
                await asyncio.to_thread(self._keeper.ensure)
            except Exception as exc:
                log.error("vault token renewal failed", extra={"error": type(exc).__name__})

    async def close(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None
        await asyncio.to_thread(self._client.adapter.close)


def make_client(url: str, token: str | None, timeout_s: float) -> hvac.Client:
    # One long-lived client: its requests.Session keeps connections to Vault warm.
    return hvac.Client(url=url, token=token, timeout=timeout_s)

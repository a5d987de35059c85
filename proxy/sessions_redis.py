"""EVEDEX sessions shared by every replica through Redis (``EvedexSigner.sessions``).

Without it, N replicas each sign in and each refresh (and EVEDEX refresh tokens rotate: a
second refresh with the same token fails and forces yet another login). With it:

* **one renewal at a time per account, fleet-wide**: ``lock`` takes
  ``{<prefix>}:evedex:lock:<venue>/<account>`` with ``SET NX PX <lease>`` and renews the lease
  every third of it while the login or refresh runs, so a slow refresh keeps the lock and a
  second one cannot start; a crashed holder's lease simply expires. Waiters poll, then find
  the new tokens with ``load`` and use them.
* **tokens at rest are encrypted**: AES-256-GCM with a random 96-bit nonce, the
  ``<venue>/<account>`` as associated data (a blob cannot be replayed for another account),
  under a key from Vault: field ``session_encryption_key`` (base64 of 32 bytes) of the secret
  ``<kv_mount>/<kv_prefix>/_proxy/session``. The key is re-read with the credential cache, so
  rotating it only costs one login per account (old blobs no longer decrypt).
* **failure keeps trading**: without the key, or while Redis is unreachable, each replica
  keeps its own session, exactly as with the in-memory default, and says so once in the log.

The stored value expires with the refresh token (or after a day when its lifetime is
unknown). Tokens never appear in logs or exceptions.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Any

import redis.asyncio as aioredis
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from redis.exceptions import RedisError

from proxy.clock import Clock
from proxy.credentials.base import CredentialStore
from proxy.errors import CredentialsUnavailable
from proxy.signers.evedex import LocalSessions
from proxy.signers.evedex_session import Tokens

log = logging.getLogger("signing_proxy.sessions")

KEY_SECRET = ("_proxy", "session")  # <kv_prefix>/_proxy/session
KEY_FIELD = "session_encryption_key"
_NO_EXPIRY_MS = 86_400_000
_FAILURES = (RedisError, OSError, TimeoutError)

# KEYS[1] lock; ARGV: owner, lease ms. Extends the lease only while we still own it.
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

Sleep = Callable[[float], Awaitable[Any]]


class RedisSessions:
    def __init__(
        self,
        client: aioredis.Redis,
        secrets_store: CredentialStore,
        clock: Clock,
        *,
        key_prefix: str = "signing-proxy",
        lease_s: float = 10.0,
        poll_s: float = 0.05,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._redis = client
        self._secrets = secrets_store
        self._clock = clock
        self._prefix = "{" + key_prefix + "}:evedex:"
        self._lease_ms = max(1, int(lease_s * 1000))
        self._poll_s = poll_s
        self._sleep = sleep
        self._renew = client.register_script(RENEW)
        self._release = client.register_script(RELEASE)
        self._cipher: tuple[object, AESGCM] | None = None  # (credential version, cipher)
        self._warned: set[str] = set()

    async def load(self, venue: str, account: str) -> tuple[str, Tokens] | None:
        cipher = await self._aes()
        if cipher is None:
            return None
        try:
            blob = await self._redis.get(self._prefix + "session:" + _aad(venue, account))
        except _FAILURES as exc:
            self._warn("redis", "redis unreachable: sessions are per replica", exc)
            return None
        self._warned.discard("redis")  # reachable: a later outage is worth a line again
        if not isinstance(blob, bytes) or len(blob) < 13:
            return None
        try:
            plain = cipher.decrypt(blob[:12], blob[12:], _aad(venue, account).encode())
            data = json.loads(plain)
            return str(data["address"]), Tokens(**data["tokens"])
        except (InvalidTag, ValueError, KeyError, TypeError):
            self._warn("decrypt", "a shared session does not decrypt (key rotated?): logging in again", None)
            return None

    async def save(self, venue: str, account: str, address: str, tokens: Tokens) -> None:
        cipher = await self._aes()
        if cipher is None:
            return
        nonce = os.urandom(12)
        plain = json.dumps({"address": address, "tokens": asdict(tokens)}).encode()
        blob = nonce + cipher.encrypt(nonce, plain, _aad(venue, account).encode())
        now_ms = int(self._clock.now() * 1000)
        expires = tokens.refresh_expires_ms
        ttl_ms = _NO_EXPIRY_MS if expires is None else max(expires - now_ms, 1000)
        try:
            await self._redis.set(self._prefix + "session:" + _aad(venue, account), blob, px=ttl_ms)
        except _FAILURES as exc:
            self._warn("redis", "redis unreachable: sessions are per replica", exc)

    @asynccontextmanager
    async def lock(self, venue: str, account: str) -> AsyncIterator[object]:
        """Hold the account's fleet-wide renewal lock (lease renewed while held)."""
        if await self._aes() is None:  # nothing can be shared: no point in waiting for others
            yield None
            return
        key = self._prefix + "lock:" + _aad(venue, account)
        owner = secrets.token_hex(16)
        held = await self._acquire(key, owner)
        keeper = asyncio.create_task(self._keep(key, owner)) if held else None
        try:
            yield None
        finally:
            if keeper is not None:
                keeper.cancel()
                await asyncio.gather(keeper, return_exceptions=True)
                try:
                    await self._release(keys=[key], args=[owner])
                except _FAILURES as exc:
                    self._warn("redis", "redis unreachable: sessions are per replica", exc)

    async def _acquire(self, key: str, owner: str) -> bool:
        # A holder renews its lease while alive, so waiting 3 leases means it is stuck.
        deadline = self._clock.monotonic() + 3 * self._lease_ms / 1000
        while True:
            try:
                if await self._redis.set(key, owner, nx=True, px=self._lease_ms):
                    return True
            except _FAILURES as exc:
                self._warn("redis", "redis unreachable: sessions are per replica", exc)
                return False
            if self._clock.monotonic() >= deadline:
                self._warn("stuck", "session lock still held after 3 leases: renewing without it", None)
                return False
            await self._sleep(self._poll_s)

    async def _keep(self, key: str, owner: str) -> None:
        while True:
            await self._sleep(self._lease_ms / 3000)
            try:
                if not await self._renew(keys=[key], args=[owner, self._lease_ms]):
                    self._warn("lost", "session lock lease lost during a renewal", None)
                    return
            except _FAILURES as exc:
                self._warn("redis", "redis unreachable: sessions are per replica", exc)
                return

    async def _aes(self) -> AESGCM | None:
        try:
            creds = await self._secrets.get(*KEY_SECRET)
        except CredentialsUnavailable:
            self._warn("key", f"no {KEY_FIELD} in Vault (_proxy/session): sessions are per replica", None)
            return None
        if self._cipher is not None and self._cipher[0] == creds.version:
            return self._cipher[1]
        key = _decode_key(creds.get(KEY_FIELD) or "")
        if key is None:
            self._warn("key", f"{KEY_FIELD} must be base64 of 32 bytes: sessions are per replica", None)
            return None
        self._cipher = (creds.version, AESGCM(key))
        return self._cipher[1]

    def _warn(self, topic: str, message: str, exc: BaseException | None) -> None:
        if topic in self._warned:
            return
        self._warned.add(topic)  # once per cause: an outage must not flood the log
        extra = {"error": type(exc).__name__} if exc is not None else {}
        log.warning(f"evedex shared sessions: {message}", extra=extra)


def share_sessions(
    signers: Iterable[object],
    connect: Callable[[], aioredis.Redis],
    secrets_store: CredentialStore,
    clock: Clock,
    prefix: str,
) -> aioredis.Redis | None:
    """Give every signer that keeps venue sessions (EVEDEX jwt mode) one shared store; the
    Redis client it opened for them (the caller closes it), or ``None`` when none needs it."""
    keeping = [s for s in signers if isinstance(getattr(s, "sessions", None), LocalSessions)]
    if not keeping:
        return None
    client = connect()
    store = RedisSessions(client, secrets_store, clock, key_prefix=prefix)
    for signer in keeping:
        signer.sessions = store  # type: ignore[attr-defined]
    return client


def _aad(venue: str, account: str) -> str:
    return f"{venue}/{account}"


def _decode_key(text: str) -> bytes | None:
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return key if len(key) == 32 else None

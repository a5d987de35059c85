"""EVEDEX sessions shared by every replica through Redis (``EvedexSigner.sessions``).

Without it, N replicas each sign in and each refresh (and EVEDEX refresh tokens rotate: a
second refresh with the same token fails and forces yet another login). With it:

* **one renewal at a time per account, fleet-wide**: ``lock`` takes
  ``{<prefix>}:evedex:lock:<venue>/<account>`` with ``SET NX PX <lease>`` (a short lease,
  3 s by default) and renews the lease every third of it while the login or refresh runs,
  so a slow refresh keeps the lock and a second one cannot start. The lock's value declares
  its holder's lease (``<owner>:<lease ms>``). A replica that dies holding it stops
  renewing, and the lease runs out: waiters take the lock over. A lock with no TTL, or with
  a TTL longer than its holder declared (or than ours, when it declares none: a crashed
  older version), is cut to that lease by the first waiter, so no dead lock outlives one
  lease. Waiters poll for at most ``wait_s`` (a live holder renewing that long is a venue
  login stuck in its timeouts); then the request is refused ``credentials_unavailable``
  rather than starting a second renewal behind the holder's back. Every wait is observed
  (``signing_proxy_session_lock_wait_seconds{venue,lock,outcome}``). Lease times are real
  time (Redis ``PX``), measured on the event loop's clock, not the injected one.
* **tokens at rest are encrypted**: AES-256-GCM with a random 96-bit nonce, under a key
  from Vault: field ``session_encryption_key`` (base64 of 32 bytes) of the secret
  ``<kv_mount>/<kv_prefix>/_proxy/session``. The key is re-read with the credential cache, so
  rotating it only costs one login per account (old blobs no longer decrypt). The blob is
  ``nonce | version (8 bytes) | ciphertext``, with ``<venue>/<account>`` and the version as
  associated data: a blob cannot be moved to another account, and its version cannot be
  edited. Each replica remembers the highest version it has read or written per account and
  refuses an older blob, so writing back an earlier session (someone with Redis access
  replaying old tokens) is rejected by every replica that has seen a newer one. A saver
  writes one more than the highest it has seen; it holds the lock, so it has just read the
  latest.
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
import struct
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
from proxy.signers.evedex.session import Tokens
from proxy.signers.evedex.signer import LocalSessions

log = logging.getLogger("signing_proxy.sessions")

KEY_SECRET = ("_proxy", "session")  # <kv_prefix>/_proxy/session
KEY_FIELD = "session_encryption_key"
_NO_EXPIRY_MS = 86_400_000
_FAILURES = (RedisError, OSError, TimeoutError)

# KEYS[1] lock; ARGV: value (owner:lease ms), lease ms. 1: taken. 0: held by someone else,
# whose TTL is cut to the lease it declares (capped), or to ours if it declares none or the
# key has no TTL: a dead holder's lock never outlives one lease.
ACQUIRE = """
local lease = tonumber(ARGV[2])
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', lease) then return 1 end
local declared = nil
if redis.call('TYPE', KEYS[1])['ok'] == 'string' then
  declared = tonumber(string.match(redis.call('GET', KEYS[1]) or '', ':(%d+)$') or '')
end
local cap = math.min(declared or lease, tonumber(ARGV[3]))
local ttl = redis.call('PTTL', KEYS[1])
if ttl == -1 or ttl > cap then redis.call('PEXPIRE', KEYS[1], cap) end
return 0
"""
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
# (venue, lock "shared"|"local", outcome, seconds waited): the metrics' session_lock_wait.
LockWaits = Callable[[str, str, str, float], None]
_MAX_DECLARED_LEASE_MS = 60_000  # a holder may declare a longer lease than ours, up to this
_VERSION = struct.Struct(">Q")
_HEADER = 12 + _VERSION.size  # nonce, version


def _ignore_waits(venue: str, lock: str, outcome: str, seconds: float) -> None:
    return None


class RedisSessions:
    def __init__(
        self,
        client: aioredis.Redis,
        secrets_store: CredentialStore,
        clock: Clock,
        *,
        key_prefix: str = "signing-proxy",
        lease_s: float = 3.0,
        wait_s: float = 10.0,
        poll_s: float = 0.05,
        sleep: Sleep = asyncio.sleep,
        observe: LockWaits = _ignore_waits,
    ) -> None:
        self._redis = client
        self._secrets = secrets_store
        self._clock = clock
        self._prefix = "{" + key_prefix + "}:evedex:"
        self._lease_ms = max(1, int(lease_s * 1000))
        self._wait_s = wait_s
        self._poll_s = poll_s
        self._sleep = sleep
        self._observe = observe
        self._seen: dict[str, int] = {}  # "<venue>/<account>" -> highest blob version read or written
        self._acquire_script = client.register_script(ACQUIRE)
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
        if not isinstance(blob, bytes) or len(blob) <= _HEADER:
            return None
        name = _aad(venue, account)
        (version,) = _VERSION.unpack_from(blob, 12)
        try:
            plain = cipher.decrypt(blob[:12], blob[_HEADER:], _bound(name, version))
            data = json.loads(plain)
            found = str(data["address"]), Tokens(**data["tokens"])
        except (InvalidTag, ValueError, KeyError, TypeError):
            self._warn("decrypt", "a shared session does not decrypt (key rotated?): logging in again", None)
            return None
        if version < self._seen.get(name, 0):
            # Every time, not once: an older blob is written back on purpose (loads happen only
            # around renewals, so this cannot flood the log).
            log.warning(
                "evedex shared sessions: a session older than one already seen was rejected (replayed?)",
                extra={"account": name, "version": version, "seen": self._seen[name]},
            )
            return None
        self._seen[name] = version
        return found

    async def save(self, venue: str, account: str, address: str, tokens: Tokens) -> None:
        cipher = await self._aes()
        if cipher is None:
            return
        name = _aad(venue, account)
        version = self._seen[name] = self._seen.get(name, 0) + 1
        nonce = os.urandom(12)
        plain = json.dumps({"address": address, "tokens": asdict(tokens)}).encode()
        blob = nonce + _VERSION.pack(version) + cipher.encrypt(nonce, plain, _bound(name, version))
        now_ms = int(self._clock.now() * 1000)
        expires = tokens.refresh_expires_ms
        ttl_ms = _NO_EXPIRY_MS if expires is None else max(expires - now_ms, 1000)
        try:
            await self._redis.set(self._prefix + "session:" + _aad(venue, account), blob, px=ttl_ms)
        except _FAILURES as exc:
            self._warn("redis", "redis unreachable: sessions are per replica", exc)

    @asynccontextmanager
    async def lock(self, venue: str, account: str) -> AsyncIterator[object]:
        """Hold the account's fleet-wide renewal lock (lease renewed while held).

        Raises ``CredentialsUnavailable`` when another replica still holds it after ``wait_s``.
        """
        if await self._aes() is None:  # nothing can be shared: no point in waiting for others
            yield None
            return
        key = self._prefix + "lock:" + _aad(venue, account)
        owner = f"{secrets.token_hex(16)}:{self._lease_ms}"
        loop = asyncio.get_running_loop()
        started = loop.time()
        outcome = await self._acquire(key, owner)
        self._observe(venue, "shared", outcome, loop.time() - started)
        if outcome == "gave_up":
            raise CredentialsUnavailable(
                venue,
                account,
                f"evedex session renewal by another replica still running after {self._wait_s:g}s",
            )
        keeper = asyncio.create_task(self._keep(key, owner)) if outcome == "acquired" else None
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

    async def _acquire(self, key: str, owner: str) -> str:
        """The outcome: "acquired", "gave_up" (held by a live replica past ``wait_s``) or
        "unshared" (Redis unreachable: renew alone, as without Redis)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait_s  # real time: leases are Redis PX, not our clock
        args: list[str | int] = [owner, self._lease_ms, max(self._lease_ms, _MAX_DECLARED_LEASE_MS)]
        while True:
            try:
                if await self._acquire_script(keys=[key], args=args):
                    return "acquired"
            except _FAILURES as exc:
                self._warn("redis", "redis unreachable: sessions are per replica", exc)
                return "unshared"
            if loop.time() >= deadline:
                log.warning(
                    "evedex shared sessions: session lock still held by a live replica: giving up",
                    extra={"key": key.rsplit(":", 1)[-1], "wait_s": self._wait_s},
                )
                return "gave_up"
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


def share_sessions(signers: Iterable[object], shared: Callable[[], RedisSessions]) -> int:
    """Give every signer that keeps venue sessions (EVEDEX jwt mode) the shared store;
    ``shared`` is called only when one needs it (it may open the Redis client). How many."""
    keeping = [s for s in signers if isinstance(getattr(s, "sessions", None), LocalSessions)]
    if keeping:
        store = shared()
        for signer in keeping:
            signer.sessions = store  # type: ignore[attr-defined]
    return len(keeping)


def _aad(venue: str, account: str) -> str:
    return f"{venue}/{account}"


def _bound(name: str, version: int) -> bytes:
    """Associated data: the account and the blob's version (neither can be swapped)."""
    return name.encode() + b"\x00" + _VERSION.pack(version)


def _decode_key(text: str) -> bytes | None:
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return key if len(key) == 32 else None

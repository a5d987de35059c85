"""Key operations in Vault/OpenBao Transit: the hot path of ``signing: transit`` accounts.

The signer yields ``Hmac``/``RsaPss`` (``proxy.signers.keyops``); this module asks Vault
to compute it with an imported, non-exportable key and hands back the raw bytes:

* ``Hmac``   -> ``POST <mount>/hmac/<key>/sha2-256`` (``input`` base64) -> ``vault:vN:<b64 mac>``
* ``RsaPss`` -> ``POST <mount>/sign/<key>/sha2-256`` with ``signature_algorithm: pss``,
  ``salt_length: auto`` (Go's ``PSSSaltLengthAuto`` = the maximum, 222 bytes for RSA-2048:
  what Invex verifies with, ``PSS.MAX_LENGTH``), ``prehashed: false`` -> ``vault:vN:<b64 sig>``

``key_version`` is sent when the account's KV secret pins one (``transit_key_version``,
written by ``signing-proxy keys``), so the API key and the key version switch together
when a rotation reaches the KV cache; without it Vault signs with the latest version.

Why aiohttp and not hvac here: hvac is synchronous (requests), so every call would cost a
thread hop, and requests' pool keeps 10 connections, dropping the rest under concurrency.
One ``aiohttp`` session with a bounded keep-alive pool keeps the event loop free and the
connections warm (``benchmarks/transit.py`` measures the cost). The token is the hvac
client's, kept fresh by the ``TokenKeeper`` that ``VaultStore`` already runs. A 403 asks the
keeper, single-flight, whether the token is still valid: if not, one re-login and one retry
(a MAC or signature has no side effect); if it is, the policy refuses the key, and that
refusal is remembered per path for ``denied_cache_s`` (``vault_denials``) and counted in
``signing_proxy_vault_denied_total``, instead of logging in on every request.

When Vault says the pinned version is gone (retired with ``keys retire --force`` while this
replica still cached the old pin), ``on_version_gone`` drops the account's cached KV secret:
that request fails (nothing was sent to the venue) and the next one re-reads the pin.

Failures become ``CredentialsUnavailable`` (503) naming the venue, account, Transit path
and status; Vault's error text is included only as a short, printable excerpt (Transit
errors never echo the input). Nothing here ever sees key material.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import re
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import hvac

from proxy.credentials.vault_auth import TokenKeeper
from proxy.credentials.vault_denials import DenialCache, denial_detail
from proxy.errors import CredentialsUnavailable
from proxy.messages import Credentials
from proxy.metrics import Metrics
from proxy.signers.keyops import Hmac, KeyOp, KeyOperator

log = logging.getLogger("signing_proxy.transit")

# KV fields of a Transit-mode account besides its public ones (written by ``proxy.keys.provisioning``).
KV_KEY_FIELD = "transit_key"  # the key's name: tells a human reading KV where the secret went
KV_VERSION_FIELD = "transit_key_version"  # the version to sign with; absent: Vault's latest
PSS_SALT_LENGTH = "auto"  # Go crypto/rsa PSSSaltLengthAuto: maximum salt, = Python PSS.MAX_LENGTH
# OpenBao 2.x, for a key_version below min_encryption_version or above the latest:
# hmac: "version is too old (disallowed by policy)", "key version does not exist";
# sign: "requested version for signing is less than the minimum …" / "higher than the latest …".
_VERSION_GONE = re.compile(
    r"version is too old|version does not exist|less than the minimum|higher than the latest"
)


class TransitError(Exception):
    """A Transit call failed; ``detail`` is safe to show (status and a short Vault excerpt)."""

    def __init__(self, detail: str, version_gone: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.version_gone = version_gone  # the pinned key version can no longer be used


class TransitDenied(TransitError):
    """Vault's policy refuses the Transit path to a valid token."""


class TransitKeys(Protocol):
    """What the pipeline signs through in Transit mode (tests inject fakes)."""

    def operator(self, venue: str, account: str, key: str, version: int | None) -> KeyOperator: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


def pinned_version(venue: str, account: str, creds: Credentials) -> int | None:
    """The Transit key version KV pins for the account; ``None``: Vault's latest."""
    value = creds.get(KV_VERSION_FIELD)
    if value is None:
        return None
    if not value.isdigit() or int(value) < 1:
        raise CredentialsUnavailable(venue, account, f"KV field {KV_VERSION_FIELD} is not a version number")
    return int(value)


def request_for(op: KeyOp, version: int | None) -> tuple[str, dict[str, Any]]:
    """The Transit endpoint (after ``<mount>/``) and JSON body for one key operation."""
    body: dict[str, Any] = {"input": base64.b64encode(op.message).decode("ascii")}
    if version is not None:
        body["key_version"] = version
    if isinstance(op, Hmac):
        return "hmac", body
    body.update(signature_algorithm="pss", salt_length=PSS_SALT_LENGTH, prehashed=False)
    return "sign", body


def parse_output(value: object) -> bytes:
    """``vault:v<N>:<base64>`` -> the raw bytes."""
    if not isinstance(value, str) or value.count(":") != 2:
        raise TransitError("Vault answered without a vault:v<N>:<base64> value")
    prefix, version, encoded = value.split(":")
    if prefix != "vault" or not version.startswith("v"):
        raise TransitError("Vault answered without a vault:v<N>:<base64> value")
    try:
        return base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise TransitError("Vault answered with invalid base64") from None


class VaultTransit:
    def __init__(
        self,
        url: str,
        keeper: TokenKeeper,
        mount: str = "transit",
        timeout_s: float = 5,
        max_connections: int = 32,
        on_version_gone: Callable[[str, str], None] | None = None,
        metrics: Metrics | None = None,
        denied_cache_s: float = 5.0,
    ) -> None:
        self._mount = mount.strip("/")
        self._base = url.rstrip("/") + "/v1/" + self._mount
        self._on_version_gone = on_version_gone  # (venue, account): drop the cached KV pin
        self._keeper = keeper
        self._metrics = metrics or Metrics.disabled()
        self._denied = DenialCache(keeper.clock, denied_cache_s)
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._relogin = asyncio.Lock()

    def operator(self, venue: str, account: str, key: str, version: int | None) -> KeyOperator:
        async def perform(op: KeyOp) -> bytes:
            try:
                return await self.perform(key, version, op)
            except TransitDenied as error:
                self._metrics.vault_denied(venue, account, "transit")
                raise CredentialsUnavailable(
                    venue, account, f"Vault Transit key {key}: {error.detail}"
                ) from None
            except TransitError as error:
                if error.version_gone and self._on_version_gone is not None:
                    log.warning(
                        "pinned Transit key version is gone: re-reading KV",
                        extra={"venue": venue, "account": account, "version": version},
                    )
                    self._on_version_gone(venue, account)
                raise CredentialsUnavailable(
                    venue, account, f"Vault Transit key {key}: {error.detail}"
                ) from None

        return perform

    async def perform(self, key: str, version: int | None, op: KeyOp) -> bytes:
        endpoint, body = request_for(op, version)
        vault_path = f"{self._mount}/{endpoint}/{key}/sha2-256"
        denied = self._denied.get(vault_path)
        if denied is not None:
            raise TransitDenied(denied)
        path = f"{self._base}/{endpoint}/{key}/sha2-256"
        token = self._keeper.client.token
        status, payload = await self._post(path, body, token)
        if status == 403:
            verdict = await self._after_403(token, vault_path)
            if verdict == "retry":
                status, payload = await self._post(path, body, self._keeper.client.token)
                verdict = "denied" if status == 403 else verdict
            if verdict == "denied":
                why = denial_detail(vault_path, "update", self._keeper.policies)
                detail = f"{endpoint} answered 403: {why}"
                self._denied.put(vault_path, detail)
                log.error("vault refused a Transit key", extra={"path": vault_path})
                raise TransitDenied(detail)
        if status != 200:
            excerpt = _excerpt(payload)
            gone = version is not None and status in (400, 500) and bool(_VERSION_GONE.search(excerpt))
            raise TransitError(f"{endpoint} answered {status}{excerpt}", version_gone=gone)
        data = payload.get("data") if isinstance(payload, dict) else None
        field = "hmac" if endpoint == "hmac" else "signature"
        return parse_output(data.get(field) if isinstance(data, dict) else None)

    async def _post(self, url: str, body: dict[str, Any], token: str | None) -> tuple[int, Any]:
        session = self._session or await self._start_session()
        headers = {"X-Vault-Token": token or "", "Content-Type": "application/json"}
        try:
            async with session.post(url, data=json.dumps(body), headers=headers) as response:
                raw = await response.read()
                status = response.status
        except TimeoutError:
            raise TransitError("no answer in time") from None
        except aiohttp.ClientError as exc:
            raise TransitError(f"unreachable ({type(exc).__name__})") from None
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, None

    async def _after_403(self, refused_token: str | None, vault_path: str) -> str:
        """Single flight: "retry" (the token was replaced), "denied" (the token is valid: the
        policy refuses ``vault_path``) or "error" (Vault could not be asked, or the invalid
        token cannot be replaced now: the 403 stands, nothing is remembered)."""
        async with self._relogin:
            if self._keeper.client.token != refused_token:
                return "retry"  # a request before us logged in again
            if self._denied.get(vault_path) is not None:
                return "denied"  # a request before us found out
            try:
                verdict = await asyncio.to_thread(self._keeper.on_forbidden, refused_token)
            except Exception as exc:  # login refused or Vault down: the 403 stands
                log.error("vault login after a Transit 403 failed", extra={"error": type(exc).__name__})
                return "error"
            return {"replaced": "retry", "denied": "denied", "invalid": "error"}[verdict]

    async def _start_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections, ssl=_ssl_for(self._keeper.client), enable_cleanup_closed=True
            )
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout, cookie_jar=aiohttp.DummyCookieJar()
            )
        return self._session

    async def start(self) -> None:
        await self._start_session()
        if self._keeper.client.token is None:  # not sharing a VaultStore's login: log in now
            try:
                await asyncio.to_thread(self._keeper.ensure)
            except Exception as exc:  # Vault down at start: a 403 later logs in again
                log.error("vault login for Transit failed at start", extra={"error": type(exc).__name__})

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def __repr__(self) -> str:
        return f"<VaultTransit {self._base}>"


def _ssl_for(client: hvac.Client) -> ssl.SSLContext | bool:
    """The TLS settings hvac uses (``VAULT_CACERT``/``VAULT_CAPATH``, client cert), for aiohttp."""
    session = client.adapter.session
    verify, cert = session.verify, session.cert
    if verify is False:
        return False
    context = ssl.create_default_context()
    if isinstance(verify, str):  # a CA bundle file (VAULT_CACERT) or directory (VAULT_CAPATH)
        is_dir = Path(verify).is_dir()
        context = ssl.create_default_context(
            cafile=None if is_dir else verify, capath=verify if is_dir else None
        )
    if isinstance(cert, tuple):
        context.load_cert_chain(cert[0], cert[1])
    elif isinstance(cert, str):
        context.load_cert_chain(cert)
    return context


def _excerpt(payload: Any) -> str:
    errors = payload.get("errors") if isinstance(payload, dict) else None
    if not errors or not isinstance(errors, list):
        return ""
    text = " ".join(str(e) for e in errors).replace("\n", " ").strip()
    text = "".join(ch for ch in text if ch.isprintable())[:120]
    return f" ({text})" if text else ""

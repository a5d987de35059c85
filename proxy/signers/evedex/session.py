"""EVEDEX login: the pure SIWE (EIP-4361) and JWT half of the ``evedex`` scheme.

Login (``exchange-api src/authRestGateway.ts``): ``GET /auth/nonce`` -> ``{"nonce"}``; the
SIWE message below, signed with EIP-191 ``personal_sign``; ``POST /auth/user/sign-up``
``{"wallet", "message", "nonce", "signature"}`` -> ``Session = {"user", "token":
{"accessToken", "refreshToken"}}``. ``POST /auth/refresh`` (no body, ``Authorization:
Bearer <refreshToken>``) answers the same shape. Pinned to vector ``siwe_login``.

SIWE fields follow the SDK (``exchange-crypto getAuthSiweMessagePayload``): scheme
``https`` (so the first line reads ``https://evedex.com wants you...``), domain
``evedex.com``, uri ``https://evedex.com``, statement ``Sign in to evedex.com``, version 1,
the venue chain id, the server's nonce and ``issuedAt`` = now as the siwe library writes it
(ISO 8601, milliseconds, ``Z``). The docs sample differs (``exchange.evedex.com``, no
statement) and which fields the server checks is an open question (venues.md Q3), so
domain, uri and statement are options. No ``expirationTime``: the SDK sends none.

Tokens are opaque to the venue contract; when one is a readable JWT its claims drive the
proactive refresh (decoded without verification: the venue verifies, we only schedule).
Choices: the lifetime ``exp - iat`` is counted from receipt on our clock (immune to clock
skew; plain ``exp`` when there is no ``iat``), and the leeway is capped at half the lifetime
so a short-lived token is not renewed on every request.
Neither tokens nor keys ever appear in a ``repr``: ``Tokens``, ``Wallet`` and the header
values built by ``with_credential`` hide them.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import time
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import coincurve
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

from proxy.errors import SigningFailed
from proxy.messages import OutgoingRequest

SIWE_SCHEME = "https"  # exchange-crypto passes scheme "https"; siwe prefixes it to the domain
SIWE_VERSION = "1"
AUTHORIZATION, API_KEY = "authorization", "x-api-key"
_BAD_KEY = "wallet_private_key is not a 32-byte hex secp256k1 key"


@dataclass(frozen=True, slots=True, repr=False)
class Wallet:
    address: str
    account: LocalAccount  # SIWE personal_sign
    signing_key: coincurve.PrivateKey  # EIP-712 digests (orders.py explains why coincurve)

    def __repr__(self) -> str:
        return f"<Wallet {self.address}>"


@lru_cache(maxsize=64)
def load_wallet(private_key_hex: str) -> Wallet:
    """Parse ``wallet_private_key`` once per key; a rotated key is a new cache entry."""
    account = _parse_account(private_key_hex)
    if account is None:
        raise SigningFailed("evedex", _BAD_KEY)  # outside ``except``: no chained key bytes
    return Wallet(account.address, account, coincurve.PrivateKey(bytes(account.key)))


def _parse_account(private_key_hex: str) -> LocalAccount | None:
    try:
        account: LocalAccount = Account.from_key(private_key_hex)
    except (ValueError, TypeError):  # binascii.Error is a ValueError
        return None
    return account


def with_credential(request: OutgoingRequest, name: str, value: str) -> OutgoingRequest:
    """Set the venue credential header, dropping any the client left (defence in depth)."""
    kept = tuple(h for h in request.headers if h[0] not in (AUTHORIZATION, API_KEY))
    return replace(request, headers=(*kept, (name, _Redacted(value))))


def bearer(token: str) -> str:
    return f"Bearer {token}"


class _Redacted(str):
    """A header value whose ``repr`` hides it (``OutgoingRequest``'s repr lists headers)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'<redacted>'"


def iso_ms(now_ms: int) -> str:
    """``new Date(ms).toISOString()``: ``2023-11-14T22:13:20.000Z`` (integer maths, no floats)."""
    seconds, millis = divmod(now_ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def siwe_message(
    *, domain: str, address: str, statement: str, uri: str, chain_id: int, nonce: str, issued_at: str
) -> str:
    """EIP-4361 message text exactly as ``siwe`` 3 ``prepareMessage`` writes it."""
    return "\n".join(
        (
            f"{SIWE_SCHEME}://{domain} wants you to sign in with your Ethereum account:",
            address,
            "",
            statement,
            "",
            f"URI: {uri}",
            f"Version: {SIWE_VERSION}",
            f"Chain ID: {chain_id}",
            f"Nonce: {nonce}",
            f"Issued At: {issued_at}",
        )
    )


def personal_sign(account: LocalAccount, message: str) -> str:
    """EIP-191 ``personal_sign`` (ethers ``signMessage``): 0x-prefixed 65-byte hex.

    ``bytes(...).hex()`` because ``HexBytes.hex()`` drops the ``0x`` from hexbytes 1.0 on.
    """
    return "0x" + bytes(account.sign_message(encode_defunct(text=message)).signature).hex()


def sign_up_body(address: str, message: str, nonce: str, signature: str) -> bytes:
    return json.dumps(
        {"wallet": address, "message": message, "nonce": nonce, "signature": signature}
    ).encode()


def read_nonce(body: bytes) -> str | None:
    nonce = _json_object(body).get("nonce")
    return nonce if isinstance(nonce, str) and nonce else None


@dataclass(frozen=True, slots=True, repr=False)
class Tokens:
    """An account's access and refresh tokens. ``repr`` shows expiries only.

    Expiries are on the proxy's clock: a JWT with ``iat`` and ``exp`` is taken to live
    ``exp - iat`` from when we received it, so skew between our clock and the venue's can
    neither make a fresh token look stale (a refresh per request) nor a stale one fresh.
    """

    access: str
    refresh: str
    access_expires_ms: int | None
    access_lifetime_ms: int | None
    refresh_expires_ms: int | None

    def access_due(self, now_ms: int, leeway_ms: int) -> bool:
        """True when the access token expires within the leeway: renew it before use."""
        if self.access_expires_ms is None:
            return False  # opaque token: only a 401 tells
        if self.access_lifetime_ms is not None:  # a token shorter-lived than 2x the leeway
            leeway_ms = min(leeway_ms, self.access_lifetime_ms // 2)  # must not renew every time
        return now_ms >= self.access_expires_ms - leeway_ms

    def refresh_expired(self, now_ms: int) -> bool:
        return self.refresh_expires_ms is not None and now_ms >= self.refresh_expires_ms

    def __repr__(self) -> str:
        expiries = f"access_expires_ms={self.access_expires_ms} refresh_expires_ms={self.refresh_expires_ms}"
        return f"<Tokens {expiries}>"

    __str__ = __repr__


def read_session(body: bytes, now_ms: int) -> Tokens | None:
    """``Session.token`` from a sign-up or refresh answer received at ``now_ms``; ``None`` if unreadable."""
    token = _json_object(body).get("token")
    if not isinstance(token, dict):
        return None
    access, refresh = token.get("accessToken"), token.get("refreshToken")
    if not (isinstance(access, str) and access and isinstance(refresh, str) and refresh):
        return None
    access_expires, lifetime = jwt_expiry(access, now_ms)
    return Tokens(access, refresh, access_expires, lifetime, jwt_expiry(refresh, now_ms)[0])


def jwt_expiry(token: str, now_ms: int) -> tuple[int | None, int | None]:
    """``(expires_ms, lifetime_ms)`` on our clock from the unverified JWT claims.

    With ``iat``: ``now_ms + (exp - iat)``; with ``exp`` only: ``exp``; else ``(None, None)``.
    """
    claims = _jwt_claims(token)
    exp, iat = _claim_ms(claims, "exp"), _claim_ms(claims, "iat")
    if exp is None:
        return None, None
    if iat is None or iat > exp:
        return exp, None
    return now_ms + exp - iat, exp - iat


def _jwt_claims(token: str) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        return _json_object(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):  # not base64
        return {}


def _claim_ms(claims: dict[str, Any], name: str) -> int | None:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return int(value * 1000)


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}

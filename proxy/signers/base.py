"""The signer interface: how a venue's authentication is added to a request.

A signer is *sans-IO* (after httpx's ``Auth.auth_flow``): ``sign`` is a pure function of
the outgoing request, the account's credentials and the time, and returns the request
to forward. The pipeline owns all I/O. A scheme that must talk to the venue to
authenticate (EVEDEX's SIWE login and JWT refresh) overrides ``flow``, which receives a
``send`` coroutine and may call it more than once.

Schemes whose key operation is an HMAC-SHA256 or an RSA-PSS signature write it once as
``sign_steps`` (``proxy.signers.keyops``): a generator that yields the key operation and
receives its bytes. ``sign`` drives it with the KV secret (``local_key_op``); in Transit
mode (``docs/transit.md``) ``keyed_flow`` drives it with Vault computing the operation,
so the secret never enters this process. Such a scheme sets ``key_fields`` (the KV fields
that hold key material) and ``supports_transit``; ``transit_key`` says what Vault imports.

To add a venue scheme:

1. Create ``proxy/signers/<scheme>.py`` with pure module-level functions for the
   scheme's prehash and signature (pinned to ``../shared/vectors/<scheme>.json`` in
   ``tests/unit/signers/``), and a ``Signer`` subclass that sets ``scheme``,
   ``required_fields`` (Vault KV fields), ``owned_headers`` (lower-case names or
   prefixes ending in ``-`` that the scheme owns and the client may never send) and
   implements ``sign_steps`` (HMAC schemes: subclass ``HmacSigner``) or, for a key
   Transit cannot hold, ``sign``.
2. Add one line to ``SIGNERS`` in ``proxy/signers/__init__.py``.
3. Add a simulated venue in ``proxy/sim/`` that verifies the scheme as strictly as
   the venue does.

Signers are built once per configured venue from its scheme options and must not keep
per-request state: the same instance signs concurrent requests.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from proxy.errors import Envelope, SigningFailed
from proxy.messages import Credentials, OutgoingRequest, UpstreamReply
from proxy.signers.keyops import Hmac, KeyOp, KeyOperator, SignSteps, drive, drive_local

Send = Callable[[OutgoingRequest], Awaitable[UpstreamReply]]
# (venue, event, result): session events a scheme reports, e.g. ("evedex", "refresh", "ok").
SessionEvents = Callable[[str, str, str], None]


def _ignore_events(venue: str, event: str, result: str) -> None:
    return None


# (venue, lock, outcome, seconds): how long a request waited for a session lock
# ("local": this process's renewal in progress, "shared": another replica's).
LockWaits = Callable[[str, str, str, float], None]


def _ignore_waits(venue: str, lock: str, outcome: str, seconds: float) -> None:
    return None


@dataclass(frozen=True, slots=True)
class SignContext:
    """Everything a signer may read besides the request and credentials."""

    venue: str
    account: str
    now_ms: int


class SchemeOptions(BaseModel):
    """Per-venue options of a scheme (keys beside ``scheme`` in the venue config).

    Subclass it per scheme; unknown keys are rejected at startup, naming the field.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)


class Signer:
    """Base class for a venue authentication scheme. See the module docstring."""

    scheme: ClassVar[str]
    Options: ClassVar[type[SchemeOptions]] = SchemeOptions
    required_fields: ClassVar[tuple[str, ...]] = ()
    owned_headers: ClassVar[frozenset[str]] = frozenset()

    # The error body shape of this venue (``proxy.signers.envelopes``), when enabled.
    envelope: ClassVar[Envelope]
    # True when ``proxy.ws.logins`` has a stream login for this scheme (a test keeps them equal).
    streams: ClassVar[bool] = False

    def __init__(self, options: SchemeOptions | Mapping[str, Any] | None = None) -> None:
        # Validated once, as this scheme's own model: subclasses declare ``options: TheirOptions``
        # and read typed fields from it (never re-validate it).
        if not isinstance(options, self.Options):
            raw = options.model_dump() if isinstance(options, SchemeOptions) else dict(options or {})
            options = self.Options.model_validate(raw)
        self.options: SchemeOptions = options
        self.events: SessionEvents = _ignore_events  # create_app points it at the metrics
        self.lock_waits: LockWaits = _ignore_waits  # likewise (schemes with venue sessions)

    # KV fields holding key material: in Transit mode they live in Transit, never in KV.
    key_fields: ClassVar[tuple[str, ...]] = ()
    # True when Vault Transit can hold the key (HMAC-SHA256, RSA); EVEDEX's secp256k1 cannot.
    supports_transit: ClassVar[bool] = False

    @classmethod
    def stream_problem(cls, options: Mapping[str, Any]) -> str | None:
        """Why a venue of this scheme with these options cannot carry streams (startup check)."""
        return None

    @classmethod
    def public_fields(cls) -> tuple[str, ...]:
        """The KV fields a Transit-mode account needs: the required ones minus key material."""
        return tuple(name for name in cls.required_fields if name not in cls.key_fields)

    def validate_secret(self, creds: Credentials) -> None:
        """Parse the fields present in ``creds`` exactly as signing will, or raise
        ``SigningFailed`` naming the field (never its value).

        ``signing-proxy keys put|rotate|check`` and ``check --vault`` call it so that a
        malformed secret is refused when it is stored, not at request time. A scheme that
        decodes its key (base64, DER, secp256k1) extends it with its own parser; fields
        absent from ``creds`` (key material held in Transit) are skipped.
        """
        for name in (*self.required_fields, "api_key"):
            value = creds.get(name)
            if value is not None:
                plain_field(self.scheme, name, value)

    def sign(self, request: OutgoingRequest, creds: Credentials, ctx: SignContext) -> OutgoingRequest:
        """Sign with the KV secret in ``creds``: ``sign_steps`` driven by ``local_key_op``."""
        return drive_local(self.sign_steps(request, creds, ctx), self.local_key_op, creds)

    def sign_steps(self, request: OutgoingRequest, creds: Credentials, ctx: SignContext) -> SignSteps:
        """Yield the key operation, receive its raw bytes, return the signed request.

        Reads only ``public_fields`` from ``creds``: in Transit mode that is all there is.
        """
        raise NotImplementedError

    def local_key_op(self, op: KeyOp, creds: Credentials) -> bytes:
        """Perform ``op`` with the KV secret in ``creds`` (KV mode)."""
        raise NotImplementedError

    def transit_key(self, creds: Credentials) -> tuple[str, bytes]:
        """``(Transit key type, key material)`` to import for this secret (``proxy.keys.cli``).

        Raises ``SigningFailed`` (naming no key material) when the secret is unusable.
        """
        raise NotImplementedError(f"scheme {self.scheme} cannot keep its key in Vault Transit")

    async def keyed_flow(
        self,
        request: OutgoingRequest,
        creds: Credentials,
        ctx: SignContext,
        send: Send,
        keys: KeyOperator,
    ) -> UpstreamReply:
        """Sign with a key held elsewhere (``keys``: Vault Transit) and send once."""
        return await send(await drive(self.sign_steps(request, creds, ctx), keys))

    async def flow(
        self,
        request: OutgoingRequest,
        creds: Credentials,
        ctx: SignContext,
        send: Send,
    ) -> UpstreamReply:
        """Sign and send once. Override only when authentication needs extra round trips."""
        return await send(self.sign(request, creds, ctx))

    def __repr__(self) -> str:  # never echo options that might one day hold secrets
        return f"<{type(self).__name__} scheme={self.scheme}>"


def plain_field(scheme: str, name: str, value: str) -> None:
    """A credential field is sent or keyed as written: refuse what cannot be meant.

    Surrounding whitespace (a pasted newline) signs with a different key than the venue
    holds; control characters cannot travel in a header. Names the field, never the value.
    """
    if not value:
        raise SigningFailed(scheme, f"{name} is empty")
    if value != value.strip():
        raise SigningFailed(scheme, f"{name} has leading or trailing whitespace")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise SigningFailed(scheme, f"{name} contains control characters")


# HMAC keys shorter than this are refused by Transit ("invalid key size"); see pad_hmac_key.
TRANSIT_MIN_HMAC_KEY = 32
_SHA256_BLOCK = 64


def pad_hmac_key(key: bytes) -> bytes:
    """The key to import into Transit: ``key`` zero-padded to Transit's 32-byte minimum.

    RFC 2104 section 2 pads any key shorter than the hash block (64 bytes for SHA-256)
    with zeros before use, so ``key`` and ``key + zeros`` give the same HMAC, byte for
    byte; the padding changes nothing the venue can see (a test checks it against Vault).
    """
    if len(key) >= TRANSIT_MIN_HMAC_KEY:
        return key
    assert TRANSIT_MIN_HMAC_KEY <= _SHA256_BLOCK  # the equivalence needs padding within a block
    return key.ljust(TRANSIT_MIN_HMAC_KEY, b"\0")


class HmacSigner(Signer):
    """A scheme whose key operation is HMAC-SHA256 keyed with ``hmac_key(creds)``."""

    key_fields = ("secret_key",)
    supports_transit = True

    def hmac_key(self, creds: Credentials) -> bytes:
        """The HMAC key bytes the venue uses (default: the secret's UTF-8 bytes)."""
        return creds["secret_key"].encode()

    def local_key_op(self, op: KeyOp, creds: Credentials) -> bytes:
        if not isinstance(op, Hmac):
            raise TypeError(f"{self.scheme} signs with HMAC only, not {type(op).__name__}")
        return hmac.new(self.hmac_key(creds), op.message, hashlib.sha256).digest()

    def transit_key(self, creds: Credentials) -> tuple[str, bytes]:
        return "hmac", pad_hmac_key(self.hmac_key(creds))

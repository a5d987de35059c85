"""INVEX (invex.ir): RSA-PSS signature carried *inside* the request, API key in a header.

Scheme (``../shared/venues.md`` section 1, confidence M/L; vectors ``vectors/invex.json``):
header ``X-API-Key-Invex: <api_key>``; the request's parameters (query for GET/DELETE,
JSON body for POST) gain ``expire_at`` and then ``signature``, where ``signature`` is the
lowercase hex RSA-PSS-SHA256 (MGF1-SHA256, salt = PSS.MAX_LENGTH) signature of
``json.dumps(params)`` -- Python's default separators, the client's key order, every
parameter including ``expire_at`` and excluding ``signature``. PSS is randomised: tests
verify, they never compare signature bytes. In Transit mode (``docs/transit.md``) Vault
signs the same message with ``salt_length: auto``, Go's name for that same maximum.

Sources: ``invex-cryptocurrency-exchange/Invex-API-docs@6597c42`` (README,
``examples/create_order.py``, ``examples/market_rules.py``, FastAPI ``swagger/swagger.yaml``).
No third-party implementation exists, so everything below marked *choice* is ours.

Choices where the sources are silent:

* **Timezone of expire_at** (default ``Asia/Tehran``, option ``expire_at_timezone``): the
  official examples format a naive ``datetime.now()`` on the caller's machine, and the venue
  and its users are in Iran. If the server really compares in UTC, Tehran time (UTC+03:30)
  is 3.5 h *ahead*, so requests stay valid (only a lead-time cap could bite); choosing UTC
  while the server uses Tehran time would make every request look 3.5 h expired. Tehran
  is therefore the failure-safe default. Time comes only from ``SignContext.now_ms``.
* **Owned parameters**: ``expire_at`` and ``signature`` belong to the proxy; any the client
  sent are removed first, then ``expire_at`` is appended last, ``signature`` after it.
* **Where parameters live**: POST/PUT/PATCH sign a JSON-object body (an empty body counts as
  ``{}``); every other method signs its query. A body on a query method, or a query on a
  body method, would be forwarded unsigned, so both are refused with ``BadRequest``.
* **Duplicate query keys** are refused: the server's ``dict(parse_qsl(...))`` keeps one
  value, so a signed message could not cover everything that is sent.
* **Query bytes**: the client's pieces are forwarded byte-for-byte (empty pieces dropped;
  ``parse_qsl`` ignores them too), followed by ``expire_at`` and ``signature`` encoded the
  way ``requests`` does (``quote_plus``: space as ``+``, ``:`` as ``%3A``).
* **Body bytes**: the body is re-serialised with ``json.dumps`` (what the examples send), so
  the forwarded bytes are exactly the signed message plus ``signature``.
* **Public endpoints** (``GET /trading/v1/markets``) are signed too: the official
  ``market_rules.py`` example signs it, and a signature the server ignores costs nothing.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, tzinfo
from typing import Any
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import load_der_private_key
from pydantic import Field, field_validator

from proxy import jsonjs
from proxy.errors import BadRequest, SigningFailed
from proxy.messages import Credentials, OutgoingRequest
from proxy.signers import envelopes
from proxy.signers.base import SchemeOptions, SignContext, Signer
from proxy.signers.keyops import KeyOp, RsaPss, SignSteps, Steps, drive_local

API_KEY_HEADER = "x-api-key-invex"
EXPIRE_AT = "expire_at"
SIGNATURE = "signature"
OWNED_PARAMS = frozenset({EXPIRE_AT, SIGNATURE})
EXPIRE_AT_FORMAT = "%Y-%m-%d %H:%M:%S"  # examples: strftime("%Y-%m-%d %H:%M:%S")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH)
TRANSIT_RSA_SIZES = (2048, 3072, 4096)  # Transit key types rsa-2048 / rsa-3072 / rsa-4096
_BAD_KEY = "private_key is not a hex PKCS#8 DER RSA key"
_NOT_OBJECT = "invex: body must be a JSON object"


class InvexOptions(SchemeOptions):
    expire_after_s: int = Field(60, ge=1, le=3600)
    expire_at_timezone: str = "Asia/Tehran"

    @field_validator("expire_at_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA timezone {value!r}") from None
        return value


# --- pure functions (pinned to the vectors) -------------------------------------------


def format_expire_at(now_ms: int, expire_after_s: int, tz: tzinfo) -> str:
    """``expire_at`` as the examples write it: local wall time in ``tz``, whole seconds."""
    return datetime.fromtimestamp(now_ms // 1000 + expire_after_s, tz).strftime(EXPIRE_AT_FORMAT)


def message_to_sign(params: dict[str, Any]) -> str:
    """The signed string: ``json.dumps`` with Python defaults, key order as given."""
    return json.dumps(params)


@functools.lru_cache(maxsize=32)
def load_private_key(private_key_hex: str) -> RSAPrivateKey:
    """Parse the Vault ``private_key`` once per key (DER parsing + RSA checks cost ms).

    Keyed on the secret itself, so a rotated credential gets a new entry and the old one
    ages out. Failures are not cached and never quote the key.
    """
    key = _parse_der_hex(private_key_hex)
    if not isinstance(key, RSAPrivateKey):
        # Raised outside any ``except`` block: no chained exception can carry key bytes.
        raise SigningFailed("invex", _BAD_KEY)
    return key


def _parse_der_hex(private_key_hex: str) -> PrivateKeyTypes | None:
    try:
        return load_der_private_key(bytes.fromhex(private_key_hex), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return None


def sign_message(key: RSAPrivateKey, message: str) -> str:
    return key.sign(message.encode(), _PSS, hashes.SHA256()).hex()


def split_query(query: str) -> tuple[list[str], dict[str, str]]:
    """The client's raw query pieces to forward, and the params the server will rebuild.

    Owned params are dropped from both; duplicate names are refused (see module docstring).
    """
    pieces: list[str] = []
    params: dict[str, str] = {}
    for piece in query.split("&"):
        pairs = parse_qsl(piece, keep_blank_values=True)
        if not pairs:
            continue
        name, value = pairs[0]
        if name in OWNED_PARAMS:
            continue
        if name in params:
            raise BadRequest(f"invex: query parameter {name!r} appears more than once")
        params[name] = value
        pieces.append(piece)
    return pieces, params


def query_steps(query: str, expire_at: str) -> Steps[str]:
    """The signed query: the client's pieces, then ``expire_at`` and ``signature``."""
    pieces, params = split_query(query)
    params[EXPIRE_AT] = expire_at
    signature = yield RsaPss(message_to_sign(params).encode())
    return "&".join([*pieces, urlencode({EXPIRE_AT: expire_at, SIGNATURE: signature.hex()})])


def signed_query(query: str, expire_at: str, key: RSAPrivateKey) -> str:
    return drive_local(query_steps(query, expire_at), _pss, key)


def body_object(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        jsonjs.check_depth(body.decode())  # see jsonjs.check_depth: deep nesting can crash json
        obj = json.loads(body)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise BadRequest(_NOT_OBJECT) from None
    if not isinstance(obj, dict):
        raise BadRequest(_NOT_OBJECT)
    return obj


def body_steps(body: bytes, expire_at: str) -> Steps[bytes]:
    """The signed body: the client's object, then ``expire_at`` and ``signature``."""
    params = {k: v for k, v in body_object(body).items() if k not in OWNED_PARAMS}
    params[EXPIRE_AT] = expire_at
    signature = yield RsaPss(message_to_sign(params).encode())
    params[SIGNATURE] = signature.hex()
    return json.dumps(params).encode()


def signed_body(body: bytes, expire_at: str, key: RSAPrivateKey) -> bytes:
    return drive_local(body_steps(body, expire_at), _pss, key)


def _pss(op: KeyOp, key: RSAPrivateKey) -> bytes:
    if not isinstance(op, RsaPss):
        raise TypeError(f"invex signs with RSA-PSS only, not {type(op).__name__}")
    return key.sign(op.message, _PSS, hashes.SHA256())


# --- the flow ----------------------------------------------------------------------------


class InvexSigner(Signer):
    scheme = "invex"
    Options = InvexOptions
    required_fields = ("api_key", "private_key")
    key_fields = ("private_key",)
    supports_transit = True
    owned_headers = frozenset({API_KEY_HEADER})
    envelope = envelopes.invex
    options: InvexOptions

    def __init__(self, options: SchemeOptions | Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        opts = self.options
        self._expire_after_s = opts.expire_after_s
        self._tz = ZoneInfo(opts.expire_at_timezone)

    def sign_steps(self, request: OutgoingRequest, creds: Credentials, ctx: SignContext) -> SignSteps:
        expire_at = format_expire_at(ctx.now_ms, self._expire_after_s, self._tz)
        if request.method.upper() in BODY_METHODS:
            signed = yield from self._body_steps(request, expire_at)
        else:
            signed = yield from self._query_steps(request, expire_at)
        return signed.with_headers((API_KEY_HEADER, creds["api_key"]))

    def validate_secret(self, creds: Credentials) -> None:
        super().validate_secret(creds)
        private_key = creds.get("private_key")
        if private_key is not None:
            load_private_key(private_key)  # the signer's own DER parse: RSA or refused

    def local_key_op(self, op: KeyOp, creds: Credentials) -> bytes:
        return _pss(op, load_private_key(creds["private_key"]))

    def transit_key(self, creds: Credentials) -> tuple[str, bytes]:
        key = load_private_key(creds["private_key"])
        if key.key_size not in TRANSIT_RSA_SIZES:
            raise SigningFailed("invex", f"Transit holds RSA keys of {TRANSIT_RSA_SIZES} bits only")
        return f"rsa-{key.key_size}", bytes.fromhex(creds["private_key"])  # PKCS#8 DER, as Vault imports

    @staticmethod
    def _query_steps(request: OutgoingRequest, expire_at: str) -> Steps[OutgoingRequest]:
        if request.body:
            raise BadRequest(f"invex: {request.method} parameters go in the query; a body would be unsigned")
        query = yield from query_steps(request.query, expire_at)
        return replace(
            request, target=f"{request.path}?{query}", headers=_without(request.headers, API_KEY_HEADER)
        )

    @staticmethod
    def _body_steps(request: OutgoingRequest, expire_at: str) -> Steps[OutgoingRequest]:
        if request.query:
            raise BadRequest(
                f"invex: {request.method} parameters go in the JSON body; a query would be unsigned"
            )
        body = yield from body_steps(request.body, expire_at)
        # The body changed length and type: drop the client's framing, the forwarder sets length.
        headers = _without(request.headers, API_KEY_HEADER, "content-type", "content-length")
        return replace(request, body=body, headers=(*headers, ("content-type", "application/json")))


def _without(headers: tuple[tuple[str, str], ...], *names: str) -> tuple[tuple[str, str], ...]:
    return tuple((k, v) for k, v in headers if k not in names)

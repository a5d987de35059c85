"""ICRYPEX: base64 HMAC-SHA256 over ``api_key + timestamp``, keyed with the decoded secret.

Scheme (``../shared/venues.md`` section 3, confidence **H**; vectors ``vectors/icrypex.json``):
``ICX-SIGN = base64(HMAC_SHA256(key=base64decode(secret_key), msg=utf8(api_key + str(ts_ms))))``.
Headers on every private request: ``ICX-API-KEY``, ``ICX-SIGN``, ``ICX-TS`` (ms) and
``ICX-NONCE``, which despite its name is the timestamp *tolerance* in ms (maximum 60000;
"if your nonce value is 15000, your signature will be valid for 15 seconds"). Method,
path, query and body are **not** signed, so they pass through untouched. WebSocket login:
the text frame ``api-login|{"pk":KEY,"s":SIG,"ts":TS,"n":TOL}`` with the same signature.

Sources: official ``icrypex-com/apidoc@99ab1ee`` (``architecture.md`` Python/PHP/C# samples,
``websockets.md``); third-party ``HidayetCanOzcan/icrypex-sdk@45b0ff5`` (npm icrypex-sdk
0.5.2), whose signature and WS frame match the vectors byte for byte.

Choices where the sources are silent or disagree:

* **ICX-NONCE** is the configured tolerance (option ``tolerance_ms``, default 15000 as in the
  docs' example, validated 1..60000 as the docs require). The SDK sends ``Date.now()``
  there, contradicting the docs; we follow the docs.
* **Secret decoding** is strict base64 (standard alphabet, padding required, nothing else
  allowed), like the C# sample's ``Convert.FromBase64String``; the Python sample's lenient
  ``b64decode`` would silently drop stray characters and sign with a different key. A
  secret that is not valid base64 raises ``SigningFailed`` naming no key material. The
  decoded key is cached per secret string (``lru_cache``), so rotation just adds an entry.
* **Timestamp** is ``SignContext.now_ms``, in decimal, the same string in the header and in
  the signed message.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from pydantic import Field

from proxy.errors import SigningFailed
from proxy.messages import Credentials, OutgoingRequest
from proxy.signers import envelopes
from proxy.signers.base import HmacSigner, SchemeOptions, SignContext
from proxy.signers.keyops import Hmac, SignSteps

API_KEY_HEADER = "icx-api-key"
SIGN_HEADER = "icx-sign"
TS_HEADER = "icx-ts"
NONCE_HEADER = "icx-nonce"
MAX_TOLERANCE_MS = 60_000  # architecture.md: "Maximum allowed value is 60 seconds"


class IcrypexOptions(SchemeOptions):
    tolerance_ms: int = Field(default=15_000, ge=1, le=MAX_TOLERANCE_MS)


@functools.lru_cache(maxsize=64)
def decode_secret(secret_key: str) -> bytes:
    """The HMAC key: the base64-decoded secret. Cached: decoding once per credential suffices."""
    try:
        return base64.b64decode(secret_key, validate=True)
    except (binascii.Error, ValueError):
        # ``from None``: the library's message could quote the secret's characters.
        raise SigningFailed("icrypex", "secret_key is not valid base64") from None


def string_to_sign(api_key: str, ts_ms: int | str) -> str:
    return f"{api_key}{ts_ms}"


def signature(secret_key: str, message: str) -> str:
    """``ICX-SIGN``: base64 of HMAC-SHA256 keyed with the decoded secret."""
    return encode_signature(hmac.new(decode_secret(secret_key), message.encode(), hashlib.sha256).digest())


def encode_signature(mac: bytes) -> str:
    """``ICX-SIGN`` from the raw HMAC digest: standard base64."""
    return base64.b64encode(mac).decode("ascii")


def ws_login_frame(api_key: str, secret_key: str, ts_ms: int, tolerance_ms: int) -> str:
    """The WebSocket ``api-login`` text frame (``websockets.md``): compact JSON, pk/s/ts/n."""
    return login_frame(api_key, signature(secret_key, string_to_sign(api_key, ts_ms)), ts_ms, tolerance_ms)


def login_frame(api_key: str, sign: str, ts_ms: int, tolerance_ms: int) -> str:
    """``api-login`` around an already computed ``ICX-SIGN`` (Transit computes it remotely)."""
    payload = {"pk": api_key, "s": sign, "ts": ts_ms, "n": tolerance_ms}
    return "api-login|" + json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


class IcrypexSigner(HmacSigner):
    scheme = "icrypex"
    Options = IcrypexOptions
    required_fields = ("api_key", "secret_key")
    owned_headers = frozenset({"icx-"})
    envelope = envelopes.icrypex
    streams = True
    options: IcrypexOptions

    def __init__(self, options: SchemeOptions | Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        tolerance_ms = self.options.tolerance_ms
        self._nonce = (NONCE_HEADER, str(tolerance_ms))

    def validate_secret(self, creds: Credentials) -> None:
        super().validate_secret(creds)
        secret = creds.get("secret_key")
        if secret is not None:
            decode_secret(secret)  # the signer's own strict base64

    def hmac_key(self, creds: Credentials) -> bytes:
        # Transit imports these decoded bytes too: the venue's key is the decoded secret.
        return decode_secret(creds["secret_key"])

    def sign_steps(self, request: OutgoingRequest, creds: Credentials, ctx: SignContext) -> SignSteps:
        api_key = creds["api_key"]
        ts = str(ctx.now_ms)
        mac = yield Hmac(string_to_sign(api_key, ts).encode())
        return request.with_headers(
            (API_KEY_HEADER, api_key),
            (SIGN_HEADER, encode_signature(mac)),
            (TS_HEADER, ts),
            self._nonce,
        )

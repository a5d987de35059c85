"""HAQQEX: lowercase hex HMAC-SHA256 over ``timestamp + "." + JSON.stringify(data)``.

Scheme (``../shared/venues.md`` section 4, confidence **M**: the venue's docs only, no
independent client exists; vectors ``vectors/haqqex.json`` are cross-checked with Node):
``x-api-sign = lower_hex(HMAC_SHA256(key=utf8(secretKey), msg=utf8(ts + "." + params)))``
with ``params = JSON.stringify(data)``, ``data`` defaulting to ``{}``. Headers:
``x-api-key``, ``x-api-timestamp`` (UTC ms, decimal string), ``x-api-sign``,
``Content-Type: application/json``. The docs' JS sample sends the same ``data`` object as
the axios body for every method, GET included, so a request without data signs ``ts.{}``
and carries the body ``{}``.

Source: ``https://opendocs.dev.haqqex.tech/intro`` (the only page available).

Choices where the source is silent (venues.md open question 6):

* **Body bytes**: the client's JSON body is parsed and re-serialised in exactly the
  ``JSON.stringify`` form (``proxy.jsonjs``: insertion order with array-index keys first, no
  whitespace, JS number formatting), and *those* bytes are both signed and forwarded, so
  the signature covers what is sent whatever the client's spacing was. ``content-type`` is
  set to ``application/json`` and any client ``content-length`` dropped (the body changed).
* **Empty body** = no data: signs ``{}`` and forwards ``{}`` (the docs' default), any method.
* **Accepted data**: a JSON object or array. The docs type ``data`` as an ``object``;
  scalars are refused (Express's default JSON parser rejects them too). Invalid UTF-8,
  invalid JSON, ``NaN``/``Infinity``, duplicate keys and numbers a JS double would alter are
  refused with ``BadRequest`` naming the problem (see ``proxy.jsonjs``).
* **Query strings are passed through byte-for-byte and are NOT covered by the signature.**
  The docs' sample signs only ``data``; nothing in it ever puts a query into the signed
  string, so a query is signed nowhere. Anyone who can alter a query in flight can alter
  it without detection (TLS is what protects it); clients should prefer body fields.
* **Timestamp** is ``SignContext.now_ms`` as a decimal string (``Date.now().toString()``).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace

from proxy import jsonjs
from proxy.errors import BadRequest
from proxy.messages import Credentials, OutgoingRequest
from proxy.signers import envelopes
from proxy.signers.base import HmacSigner, SignContext
from proxy.signers.keyops import Hmac, SignSteps

KEY_HEADER = "x-api-key"
TIMESTAMP_HEADER = "x-api-timestamp"
SIGN_HEADER = "x-api-sign"
EMPTY_DATA = "{}"  # the docs' ``data: object = {}`` default
_REPLACED_HEADERS = frozenset({"content-type", "content-length"})


def signed_params(body: bytes) -> str:
    """``JSON.stringify(data)`` for the client's body: the signed string and the new body."""
    if not body:
        return EMPTY_DATA
    try:
        data = jsonjs.loads(body)
    except jsonjs.JSONJSError as exc:
        raise BadRequest(f"haqqex signs the JSON body, which is unusable: {exc}") from None
    if not isinstance(data, dict | list):
        raise BadRequest("haqqex signs the JSON body, which must be an object or an array")
    return jsonjs.stringify(data)


def string_to_sign(ts_ms: int | str, params: str) -> str:
    return f"{ts_ms}.{params}"


def signature(secret: str, message: str) -> str:
    """``x-api-sign``: lowercase hex HMAC-SHA256 keyed with the secret's UTF-8 bytes."""
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


class HaqqexSigner(HmacSigner):
    scheme = "haqqex"
    required_fields = ("api_key", "secret_key")
    owned_headers = frozenset({"x-api-"})
    envelope = envelopes.haqqex

    def sign_steps(self, request: OutgoingRequest, creds: Credentials, ctx: SignContext) -> SignSteps:
        params = signed_params(request.body)
        ts = str(ctx.now_ms)
        mac = yield Hmac(string_to_sign(ts, params).encode())
        kept = tuple((name, value) for name, value in request.headers if name not in _REPLACED_HEADERS)
        headers = (
            *kept,
            (KEY_HEADER, creds["api_key"]),
            (TIMESTAMP_HEADER, ts),
            (SIGN_HEADER, mac.hex()),
            ("content-type", "application/json"),
        )
        return replace(request, headers=headers, body=params.encode())

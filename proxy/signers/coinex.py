"""CoinEx API v2: HMAC-SHA256 (lowercase hex) over ``METHOD + target + body + timestamp``.

Scheme (``../shared/venues.md`` section 5, confidence **H**; vectors ``vectors/coinex.json``):
``X-COINEX-SIGN = lower_hex(HMAC_SHA256(key=secret_key, msg=prepared_str))`` with
``prepared_str = METHOD + request_path + body + X-COINEX-TIMESTAMP`` where ``request_path``
is the path *including* ``/v2`` plus ``?query`` exactly as sent, and ``body`` is the exact
request body ('' when none). Headers: ``X-COINEX-KEY`` (access_id), ``X-COINEX-SIGN``,
``X-COINEX-TIMESTAMP`` (ms), optional ``X-COINEX-WINDOWTIME`` (ms validity window, default
5000 on the venue side). WebSocket ``server.sign``: ``signed_str`` is the same HMAC over
``str(timestamp_ms)`` alone.

Sources: docs ``docs.coinex.com/api/v2/authorization`` and ``/guide``; official demo
``coinexcom/coinex_api_demo@229d439`` (``python/api.py``), ``coinex_mcp_server@49183fc3``,
coinexlib 1.1.0 and a hummingbot fork agree; vectors are checked against coinexlib and the
demo. ccxt (<= 4.5.85) still signs the pre-2024 ``sha256(prepared_str + secret)`` form and
key-sorts queries: we follow the docs (HMAC, query exactly as sent) instead.

Choices where the sources are silent:

* **Text encoding**: the HMAC runs over UTF-8. The official demo encodes with latin-1, which
  is identical for the ASCII that targets, timestamps and secrets are made of; for bodies
  the demo sends the same latin-1 bytes it signs, i.e. the venue hashes the raw body. We
  forward the body unchanged and sign its UTF-8 text, which is those same bytes; a body that
  is not valid UTF-8 (no JSON API accepts it, RFC 8259 section 8.1) is refused with
  ``BadRequest`` rather than guessed at.
* **Method**: upper-cased in the prepared string (the docs: "uppercase letters"); the
  request's own method is forwarded unchanged.
* **Window** (option ``window_ms``): unset by default, so the venue's 5000 ms applies and no
  ``X-COINEX-WINDOWTIME`` is sent. When set it must be 100..60000 ms: the docs state no
  maximum (venues.md open question 7); below ~100 ms ordinary latency expires requests, and
  beyond a minute a captured request stays replayable for longer than any client needs.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from pydantic import Field

from proxy.errors import BadRequest
from proxy.messages import Credentials, OutgoingRequest
from proxy.signers import envelopes
from proxy.signers.base import HmacSigner, SchemeOptions, SignContext
from proxy.signers.keyops import Hmac, SignSteps

KEY_HEADER = "x-coinex-key"
SIGN_HEADER = "x-coinex-sign"
TIMESTAMP_HEADER = "x-coinex-timestamp"
WINDOW_HEADER = "x-coinex-windowtime"


class CoinexOptions(SchemeOptions):
    window_ms: int | None = Field(default=None, ge=100, le=60_000)


def prepared_string(method: str, target: str, body: str, ts_ms: int | str) -> str:
    """``METHOD + /v2/path?query + body + timestamp`` (docs "Generation method for HTTP")."""
    return f"{method.upper()}{target}{body}{ts_ms}"


def signature(secret: str, prepared: str) -> str:
    """``X-COINEX-SIGN``: lowercase hex HMAC-SHA256 keyed with the secret's UTF-8 bytes."""
    return hmac.new(secret.encode(), prepared.encode(), hashlib.sha256).hexdigest()


def ws_signed_str(secret: str, ts_ms: int) -> str:
    """``params.signed_str`` of the WebSocket ``server.sign`` request: HMAC over the timestamp."""
    return signature(secret, str(ts_ms))


def ws_sign_request(access_id: str, secret: str, ts_ms: int, request_id: int = 1) -> dict[str, Any]:
    """The whole ``server.sign`` request object (serialise it with any JSON encoder)."""
    return ws_login_request(access_id, ws_signed_str(secret, ts_ms), ts_ms, request_id)


def ws_login_request(access_id: str, signed_str: str, ts_ms: int, request_id: int = 1) -> dict[str, Any]:
    """``server.sign`` around an already computed ``signed_str`` (Transit computes it remotely)."""
    params = {"access_id": access_id, "signed_str": signed_str, "timestamp": ts_ms}
    return {"method": "server.sign", "params": params, "id": request_id}


def body_text(body: bytes) -> str:
    """The body as signed text; '' when there is none."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("coinex signs the request body as text, but the body is not valid UTF-8") from None


class CoinexSigner(HmacSigner):
    scheme = "coinex"
    Options = CoinexOptions
    required_fields = ("api_key", "secret_key")
    owned_headers = frozenset({"x-coinex-"})
    envelope = envelopes.coinex
    streams = True
    options: CoinexOptions

    def __init__(self, options: SchemeOptions | Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        window_ms = self.options.window_ms
        # Built once: the same header tuple is appended to every request.
        self._window: tuple[tuple[str, str], ...] = (
            () if window_ms is None else ((WINDOW_HEADER, str(window_ms)),)
        )

    def sign_steps(self, request: OutgoingRequest, creds: Credentials, ctx: SignContext) -> SignSteps:
        prepared = prepared_string(request.method, request.target, body_text(request.body), ctx.now_ms)
        mac = yield Hmac(prepared.encode())  # = signature(secret_key, prepared), as raw bytes
        return request.with_headers(
            (KEY_HEADER, creds["api_key"]),
            (SIGN_HEADER, mac.hex()),
            (TIMESTAMP_HEADER, str(ctx.now_ms)),
            *self._window,
        )

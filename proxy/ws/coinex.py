"""CoinEx v2 streams: the proxy sends ``server.sign`` and checks the (compressed) reply.

Login (``../shared/venues.md`` section 5; vector ``ws_server_sign``): the text frame
``{"method":"server.sign","params":{"access_id","signed_str","timestamp"},"id":1}`` with
``signed_str = lower_hex(HMAC_SHA256(secret, str(timestamp_ms)))``
(``proxy.signers.coinex.ws_sign_request``; for a ``signing: transit`` account Vault Transit
computes the HMAC, ``StreamContext.key_op``). Success is ``{"id":1,"code":0,"message":"OK"}``.
CoinEx compresses every server frame (the official demo ``gzip.decompress``-es each one):
the proxy decompresses **only this reply**, to read ``code``; every other venue frame is
relayed as the venue sent it.

Choices where the docs are silent:

* **Compression** is recognised by its header: gzip (``1f 8b``), zlib (``78 ..``), else
  raw deflate; an uncompressed JSON reply is accepted too. Decompression is bounded
  (``MAX_REPLY_BYTES``) so a hostile reply cannot balloon.
* **Client ``server.sign`` frames** (JSON in which any ``method`` key is ``server.sign``, at
  any depth and duplicate keys included, so no parser difference can smuggle one) are
  dropped; the client gets the success reply it would have got, with its own ``id`` and in
  the venue's compression, so SDKs that insist on logging in (ccxt pro) carry on with
  placeholder keys. A frame that is not JSON is forwarded as is: the venue refuses it the
  same way either way.
"""

from __future__ import annotations

import gzip
import json
import zlib
from typing import Any

from proxy.signers.coinex import ws_login_request
from proxy.signers.keyops import Hmac
from proxy.ws.base import LoginFailed, StreamLogin, Verdict, await_reply
from proxy.ws.frames import Frame
from proxy.ws.upstream import UpstreamSocket

LOGIN_METHOD = "server.sign"
LOGIN_ID = 1  # the proxy's login is the first request on the connection; no client id is in use yet
MAX_REPLY_BYTES = 65_536
GZIP, ZLIB, DEFLATE, PLAIN = "gzip", "zlib", "deflate", "plain"


def inflate(data: bytes, limit: int = MAX_REPLY_BYTES) -> tuple[bytes, str] | None:
    """``(plain bytes, codec)`` of a CoinEx server frame, ``None`` when it does not decompress."""
    if data[:1] in (b"{", b"["):
        return data, PLAIN
    # gzip and zlib announce themselves; raw deflate has no header, so it is tried last.
    for magic, wbits, codec in ((b"\x1f\x8b", 16 + zlib.MAX_WBITS, GZIP), (b"\x78", zlib.MAX_WBITS, ZLIB)):
        if data.startswith(magic):
            try:
                return _bounded(data, wbits, limit), codec
            except zlib.error:
                pass
    try:
        return _bounded(data, -zlib.MAX_WBITS, limit), DEFLATE
    except zlib.error:
        return None


def _bounded(data: bytes, wbits: int, limit: int) -> bytes:
    inflater = zlib.decompressobj(wbits)
    out = inflater.decompress(data, limit)
    if inflater.unconsumed_tail:
        raise zlib.error("reply larger than the limit")
    return out


def deflate(plain: bytes, codec: str) -> bytes:
    """Compress like the venue did (for the answer to a dropped client login)."""
    if codec == GZIP:
        return gzip.compress(plain, mtime=0)
    if codec == ZLIB:
        return zlib.compress(plain)
    if codec == DEFLATE:
        squeezer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        return squeezer.compress(plain) + squeezer.flush()
    return plain


def read_message(frame: Frame) -> dict[str, Any] | None:
    """A server frame as a JSON object (decompressed when binary), else ``None``."""
    if isinstance(frame.data, str):
        raw: bytes = frame.data.encode()
    else:
        inflated = inflate(frame.data)
        if inflated is None:
            return None
        raw = inflated[0]
    try:
        message = json.loads(raw)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None


def client_login_id(frame: Frame) -> tuple[bool, Any]:
    """``(is a server.sign request, its id)``. Every ``method`` key counts, so a duplicate
    key cannot hide a login from us while the venue's parser picks it."""
    text = frame.text()
    if text is None:
        return False, None
    methods: list[Any] = []

    def collect(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        methods.extend(value for key, value in pairs if key == "method")
        return dict(pairs)

    try:
        message = json.loads(text, object_pairs_hook=collect)
    except (ValueError, RecursionError):
        return False, None
    if LOGIN_METHOD not in methods:
        return False, None
    return True, message.get("id") if isinstance(message, dict) else None


class CoinexLogin(StreamLogin):
    scheme = "coinex"
    _codec = GZIP  # how the venue compressed its login reply; acks are compressed the same way

    async def login(self, upstream: UpstreamSocket) -> list[Frame]:
        ts_ms = self.ctx.now_ms()
        mac = await self.ctx.key_op(Hmac(str(ts_ms).encode()))  # = ws_signed_str(secret, ts_ms)
        request = ws_login_request(self.ctx.creds["api_key"], mac.hex(), ts_ms, LOGIN_ID)
        await upstream.send(Frame(json.dumps(request, separators=(",", ":"))))
        reply, backlog = await await_reply(upstream, _is_login_reply, self.ctx.reply_timeout_s, LOGIN_METHOD)
        message = read_message(reply) or {}
        if message.get("code") != 0:
            code = message.get("code")
            raise LoginFailed(
                f"the venue answered {LOGIN_METHOD} with code {code if isinstance(code, int) else '?'}"
            )
        if isinstance(reply.data, bytes):
            self._codec = (inflate(reply.data) or (b"", GZIP))[1]
        return backlog

    async def from_client(self, frame: Frame) -> Verdict:
        is_login, request_id = client_login_id(frame)
        if not is_login:
            return Verdict(to_venue=frame)
        ack = json.dumps({"id": request_id, "code": 0, "message": "OK"}, separators=(",", ":")).encode()
        answer = Frame(ack.decode()) if self._codec == PLAIN else Frame(deflate(ack, self._codec))
        return Verdict(to_client=answer, dropped=f"client {LOGIN_METHOD}")


def _is_login_reply(frame: Frame) -> bool:
    message = read_message(frame)
    return message is not None and message.get("id") == LOGIN_ID and "method" not in message

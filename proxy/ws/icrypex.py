"""Icrypex streams: the proxy sends ``api-login|{…}`` and waits for ``api-auth|{"v":true}``.

Frames are text, ``type|json`` (``icrypex-com/apidoc`` ``websockets.md``). Login: the text
frame ``api-login|{"pk":KEY,"s":SIG,"ts":TS,"n":TOL}`` with the REST signature over
``api_key + ts`` (``proxy.signers.icrypex.ws_login_frame``, vector ``ws_api_login``) and the
venue's configured ``tolerance_ms`` as ``n`` (Vault Transit computes the HMAC for a
``signing: transit`` account); the answer is ``api-auth|{"v":true}``, once per
connection. ``api-auth`` with anything but ``"v": true`` is a refused login.

Choices where the docs are silent:

* **Client ``api-login`` frames** (type ``api-login``, compared case-insensitively and
  trimmed, in a text or a UTF-8 binary frame) are dropped; the client is answered
  ``api-auth|{"v":true}``, as the venue would answer a good login, so SDKs that log in
  themselves (icrypex-sdk) carry on with placeholder keys.
* Private events need no extra step in the docs ("Order Status & Trade" and "Balance
  Changes" are "not enabled yet"); the simulator's channel names are its own choice
  (``proxy.sim.icrypex``). Every venue frame after the login is relayed untouched.
"""

from __future__ import annotations

import json

from proxy.signers.icrypex import IcrypexOptions, encode_signature, login_frame, string_to_sign
from proxy.signers.keyops import Hmac
from proxy.ws.base import LoginFailed, StreamLogin, Verdict, await_reply
from proxy.ws.frames import Frame
from proxy.ws.upstream import UpstreamSocket

LOGIN_TYPE, REPLY_TYPE = "api-login", "api-auth"
AUTHENTICATED = REPLY_TYPE + '|{"v":true}'


def message_type(frame: Frame) -> str | None:
    text = frame.text()
    if text is None or "|" not in text:
        return None
    return text.partition("|")[0].strip().lower()


class IcrypexLogin(StreamLogin):
    scheme = "icrypex"

    async def login(self, upstream: UpstreamSocket) -> list[Frame]:
        api_key, ts_ms = self.ctx.creds["api_key"], self.ctx.now_ms()
        tolerance_ms = IcrypexOptions.model_validate(self.ctx.venue.signer.options.model_dump()).tolerance_ms
        mac = await self.ctx.key_op(Hmac(string_to_sign(api_key, ts_ms).encode()))  # as ws_login_frame
        frame = login_frame(api_key, encode_signature(mac), ts_ms, tolerance_ms)
        await upstream.send(Frame(frame))
        reply, backlog = await await_reply(
            upstream, lambda f: message_type(f) == REPLY_TYPE, self.ctx.reply_timeout_s, LOGIN_TYPE
        )
        if _verdict(reply) is not True:
            raise LoginFailed(f'the venue answered {LOGIN_TYPE} with {REPLY_TYPE} "v" not true')
        return backlog

    async def from_client(self, frame: Frame) -> Verdict:
        if message_type(frame) == LOGIN_TYPE:
            return Verdict(to_client=Frame(AUTHENTICATED), dropped=f"client {LOGIN_TYPE}")
        return Verdict(to_venue=frame)


def _verdict(reply: Frame) -> object:
    try:
        body = json.loads((reply.text() or "").partition("|")[2])
    except ValueError:
        return None
    return body.get("v") if isinstance(body, dict) else None

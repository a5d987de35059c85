"""The venue side of a stream: the one place that knows the WebSocket client library.

aiohttp (REST has its own HTTP/1.1 client, ``proxy.http1``): its own ``ClientSession``
(started and closed with the app), no cookies, no automatic headers, no WebSocket
heartbeat of its own (CoinEx asks clients to disable library pings and send
``server.ping``; the client's pings are relayed frames).
Pings from the venue are answered by aiohttp and never reach the client.

Contract kept here, as for REST:

* the URL is ``<ws_upstream origin><target>`` passed *encoded*: the path the policy
  decided on is the path the venue sees;
* nothing from the client's request goes upstream but the path, query and the requested
  subprotocols; the login is the proxy's (``proxy.ws.base``);
* the handshake is sent once: aiohttp's own re-send of a GET on a dropped connection is
  disabled (``proxy.exactly_once.NO_HIDDEN_RETRIES``);
* a failed handshake is ``UpstreamUnreachable`` (502, naming the venue's HTTP status when
  it answered) or ``UpstreamTimeout`` (504), with the origin and failure class only; an
  answered one is ``HandshakeRefused``, carrying the venue's status and headers so that the
  gateway can give them to the rate gate's feedback (a 429 pauses the key, as on REST);
* frames over ``max_frame_bytes`` are refused by aiohttp (it closes the venue side with
  1009), which ``receive`` reports as ``Closed(1009)``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Protocol

import aiohttp
from yarl import URL

from proxy.errors import UpstreamTimeout, UpstreamUnreachable
from proxy.exactly_once import NO_HIDDEN_RETRIES, MaybeSent
from proxy.messages import UpstreamReply
from proxy.ws import frames
from proxy.ws.frames import Closed, Frame

_CLOSE_WAIT_S = 5.0  # how long to wait for the venue's close reply before dropping the socket


class HandshakeRefused(UpstreamUnreachable):
    """The venue answered the upgrade with an HTTP status; ``reply`` is its status and
    headers (no body: the client library does not read it), for the rate gate's feedback."""

    def __init__(self, message: str, reply: UpstreamReply) -> None:
        super().__init__(message)
        self.reply = reply


class UpstreamGone(Exception):
    """Sending to the venue failed: its connection is closed."""


class UpstreamSocket(Protocol):
    """An open venue connection. ``receive`` returns the next message or how it ended."""

    protocol: str | None  # the subprotocol the venue chose

    async def receive(self) -> Frame | Closed: ...

    async def send(self, frame: Frame) -> None: ...

    async def close(self, code: int = frames.NORMAL, reason: str = "") -> None: ...


class Connector(Protocol):
    """Opens venue connections: ``AiohttpConnector`` in production, fakes in unit tests."""

    async def connect(self, origin: str, target: str, protocols: Sequence[str]) -> UpstreamSocket: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class AiohttpSocket:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self.protocol = ws.protocol

    async def receive(self) -> Frame | Closed:
        message = await self._ws.receive()
        if message.type is aiohttp.WSMsgType.TEXT:
            return Frame(message.data)
        if message.type is aiohttp.WSMsgType.BINARY:
            return Frame(message.data)
        if message.type is aiohttp.WSMsgType.CLOSE:
            return Closed.of(int(message.data), message.extra or "")
        if message.type is aiohttp.WSMsgType.ERROR:
            if isinstance(message.data, aiohttp.WebSocketError) and message.data.code == frames.TOO_BIG:
                return Closed(frames.TOO_BIG, "frame_too_large: venue frame over the proxy's limit")
            return Closed(frames.BAD_GATEWAY, f"upstream_closed: {type(message.data).__name__}")
        # CLOSED/CLOSING without a close frame: the TCP connection went away.
        return Closed(frames.BAD_GATEWAY, "upstream_closed: connection lost without a close frame")

    async def send(self, frame: Frame) -> None:
        try:
            if isinstance(frame.data, str):
                await self._ws.send_str(frame.data)
            else:
                await self._ws.send_bytes(frame.data)
        except (aiohttp.ClientError, OSError):
            raise UpstreamGone() from None

    async def close(self, code: int = frames.NORMAL, reason: str = "") -> None:
        with contextlib.suppress(aiohttp.ClientError, OSError):  # the venue is gone already
            await self._ws.close(code=code, message=reason.encode())


class AiohttpConnector:
    def __init__(self, connect_timeout_s: float, timeout_s: float, max_frame_bytes: int) -> None:
        # ``timeout_s`` bounds the whole handshake (``asyncio.timeout``: a session-wide total
        # would also run on the open stream); the relay's idle timeout covers silence after it.
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout_s)
        self._handshake_s = timeout_s
        self._max_frame_bytes = max_frame_bytes
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                skip_auto_headers=("User-Agent",),
                cookie_jar=aiohttp.DummyCookieJar(),  # never carry one client's cookies to another
                middlewares=NO_HIDDEN_RETRIES,  # a handshake that may have arrived is not re-sent
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def connect(self, origin: str, target: str, protocols: Sequence[str]) -> UpstreamSocket:
        if self._session is None:
            await self.start()
        assert self._session is not None
        try:
            async with asyncio.timeout(self._handshake_s):
                ws = await self._session.ws_connect(
                    URL(origin + target, encoded=True),
                    protocols=tuple(protocols),
                    autoping=True,
                    heartbeat=None,
                    max_msg_size=self._max_frame_bytes,
                    timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=_CLOSE_WAIT_S),
                )
        except aiohttp.WSServerHandshakeError as exc:
            reply = UpstreamReply(exc.status, tuple((exc.headers or {}).items()), b"")
            message = f"{origin} refused the WebSocket upgrade (HTTP {exc.status})"
            raise HandshakeRefused(message, reply) from None
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise UpstreamTimeout(f"{origin} did not complete the WebSocket handshake in time") from None
        except MaybeSent as exc:
            raise UpstreamUnreachable(f"cannot open a WebSocket to {origin} ({exc.cause_name})") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise UpstreamUnreachable(f"cannot open a WebSocket to {origin} ({type(exc).__name__})") from None
        return AiohttpSocket(ws)

"""Frames both ways between an accepted client and a logged-in venue connection.

Two pumps and a watchdog run until the first of them ends the stream:

* client -> venue: each frame passes the login's ``from_client`` (dropped, rewritten or
  forwarded) and is sent in arrival order;
* venue -> client: each frame is relayed untouched, text as text, binary as binary;
* idle watchdog: no data frame either way for ``idle_timeout_s`` closes both sides.

Client frames forwarded to the venue pass a per-stream token bucket (``frame_rate``, the
``websocket.frames_per_second``/``frame_burst`` settings; the same bucket code as the REST
limits). A frame over it closes the stream with ``4429 rate_limited`` (and the venue side
with 1000) instead of being dropped: a silently lost subscribe or order frame would leave
the client believing it was sent.

One task per direction awaits each send before reading the next frame, so order is
kept and a slow reader slows its sender (uvicorn and aiohttp stop reading meanwhile)
instead of filling memory. A frame over ``max_frame_bytes`` closes the stream with 1009.
How the stream ended is an ``Ending``: what the client is told, what the venue is told.
A venue close is passed on with its code and reason; the proxy never reconnects a stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from proxy.clock import Clock
from proxy.errors import ProxyError, RateLimited
from proxy.policy.rules import RateSpec
from proxy.ratelimit.limiter import Bucket, MemoryLimiter
from proxy.ws import frames
from proxy.ws.base import StreamLogin
from proxy.ws.frames import Closed, Frame
from proxy.ws.upstream import UpstreamGone, UpstreamSocket

log = logging.getLogger("signing_proxy.stream")

Message = dict[str, Any]


class ClientGone(Exception):
    """The client's connection is closed: nothing more can be sent to it."""


class ClientSide:
    """The accepted client over ASGI: frames in, frames out, one close."""

    def __init__(self, receive: Callable[[], Awaitable[Message]], send: Callable[[Message], Awaitable[None]]):
        self._receive = receive
        self._send = send
        self.closed = False

    async def receive(self) -> Frame | Closed:
        message = await self._receive()
        if message["type"] == "websocket.receive":
            text = message.get("text")
            return Frame(text) if text is not None else Frame(message.get("bytes") or b"")
        self.closed = True  # websocket.disconnect
        return Closed(int(message.get("code", 1005)), message.get("reason") or "")

    async def send(self, frame: Frame) -> None:
        message: Message = {"type": "websocket.send"}
        message["text" if frame.is_text else "bytes"] = frame.data
        try:
            await self._send(message)
        except OSError:  # uvicorn's ClientDisconnected
            self.closed = True
            raise ClientGone() from None

    async def close(self, closed: Closed) -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(OSError, RuntimeError):  # already gone: the close reaches nobody
            await self._send({"type": "websocket.close", "code": closed.code, "reason": closed.reason})


@dataclass(frozen=True, slots=True)
class Ending:
    """How a stream ended. ``None``: that side is gone already and is told nothing."""

    by: str  # client | venue | idle | frame_too_large | frame_rate | error | login_failed
    to_client: Closed | None
    to_venue: Closed | None


@dataclass(slots=True)
class RelayStats:
    to_venue: int = 0
    to_client: int = 0
    dropped: int = 0


class Relay:
    def __init__(
        self,
        client: ClientSide,
        upstream: UpstreamSocket,
        login: StreamLogin,
        max_frame_bytes: int,
        idle_timeout_s: float,
        clock: Clock,
        frame_rate: RateSpec | None = None,
    ) -> None:
        self.client = client
        self.upstream = upstream
        self.login = login
        self.max_frame_bytes = max_frame_bytes
        self.idle_timeout_s = idle_timeout_s
        self.clock = clock
        self.stats = RelayStats()
        self._last = clock.monotonic()
        # One bucket for this stream only: a limiter of its own, dropped with the stream.
        self._frames = MemoryLimiter(clock, max_buckets=1) if frame_rate is not None else None
        self._frame_bucket = (
            None
            if frame_rate is None
            else Bucket(
                f"frames to the venue ({frame_rate.per_second:g}/s, burst {frame_rate.burst:g})", frame_rate
            )
        )

    async def run(self, backlog: list[Frame]) -> Ending:
        """Relay until one side ends; close the other side accordingly; return the ending."""
        pumps = [
            asyncio.create_task(self._backlog_then_venue(backlog)),
            asyncio.create_task(self._client_to_venue()),
            asyncio.create_task(self._watch_idle()),
        ]
        try:
            done, _ = await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
        ending = _ending_of(next(task for task in pumps if task in done))
        await self.finish(ending)
        return ending

    async def finish(self, ending: Ending) -> None:
        if ending.to_client is not None:
            await self.client.close(ending.to_client)
        if ending.to_venue is not None:
            await self.upstream.close(ending.to_venue.code, ending.to_venue.reason)

    async def _backlog_then_venue(self, backlog: list[Frame]) -> Ending:
        try:
            for frame in backlog:  # what the venue sent while the proxy logged in
                if frame.size > self.max_frame_bytes:
                    return self._too_big("venue")
                await self._to_client(frame)
            while True:
                received = await self.upstream.receive()
                if isinstance(received, Closed):
                    return Ending("venue", received, None)
                if received.size > self.max_frame_bytes:  # aiohttp enforces it too; fakes may not
                    return self._too_big("venue")
                await self._to_client(received)
        except ClientGone:
            return Ending("client", None, Closed(frames.NORMAL))

    async def _client_to_venue(self) -> Ending:
        try:
            while True:
                received = await self.client.receive()
                if isinstance(received, Closed):
                    return Ending("client", None, _client_close_for_venue(received))
                if received.size > self.max_frame_bytes:
                    return self._too_big("client")
                self._last = self.clock.monotonic()
                await self._from_client(received)
        except ClientGone:
            return Ending("client", None, Closed(frames.NORMAL))
        except UpstreamGone:
            return Ending(
                "venue", Closed(frames.BAD_GATEWAY, "upstream_closed: the venue connection is gone"), None
            )
        except RateLimited as refused:
            return Ending("frame_rate", frames.for_error(refused), Closed(frames.NORMAL))

    async def _from_client(self, frame: Frame) -> None:
        verdict = await self.login.from_client(frame)
        if verdict.dropped is not None:
            self.stats.dropped += 1
            log.info("client frame dropped", extra={"reason": verdict.dropped})
        if verdict.to_client is not None:
            await self.client.send(verdict.to_client)
        if verdict.to_venue is not None:
            self._charge_frame()
            await self.upstream.send(verdict.to_venue)
            self.stats.to_venue += 1

    def _charge_frame(self) -> None:
        """Take one frame from the stream's bucket, or raise ``RateLimited`` (nothing is sent)."""
        if self._frames is None or self._frame_bucket is None:
            return
        refusal = self._frames.admit_now((self._frame_bucket,))
        if refusal is not None:
            raise RateLimited(refusal.limit, refusal.retry_after_s)

    async def _to_client(self, frame: Frame) -> None:
        self._last = self.clock.monotonic()
        await self.client.send(frame)
        self.stats.to_client += 1

    async def _watch_idle(self) -> Ending:
        while True:
            remaining = self._last + self.idle_timeout_s - self.clock.monotonic()
            if remaining <= 0:
                reason = f"idle_timeout: no frames for {self.idle_timeout_s:g} s"
                return Ending("idle", Closed(frames.IDLE, reason), Closed(frames.NORMAL))
            await asyncio.sleep(remaining)

    def _too_big(self, side: str) -> Ending:
        reason = f"frame_too_large: {side} frame over {self.max_frame_bytes} bytes"
        return Ending("frame_too_large", Closed(frames.TOO_BIG, reason), Closed(frames.NORMAL))


def _client_close_for_venue(closed: Closed) -> Closed:
    # The client's own close code goes upstream when it may (e.g. 1000, 1001, 4xxx); a
    # vanished client (1005/1006) becomes a plain 1000.
    sendable = Closed.of(closed.code, closed.reason)
    return sendable if sendable.code == closed.code else Closed(frames.NORMAL)


def _ending_of(task: asyncio.Task[Ending]) -> Ending:
    error = task.exception()
    if error is None:
        return task.result()
    if isinstance(error, ProxyError):  # e.g. EVEDEX could not renew its token
        return Ending("error", frames.for_error(error), Closed(frames.NORMAL))
    # Class only: a library's message may quote frame content.
    log.error("stream relay failed", extra={"error": type(error).__name__})
    return Ending("error", Closed(frames.INTERNAL, "internal_error"), Closed(frames.NORMAL))

"""One pipelined Redis connection per process for the rate limiter (``RedisPipe``).

Redis runs commands one at a time, so a pool of connections buys the limiter no
parallelism, only CPU: a checkout and release, a timeout wrapper and a socket read per
reply. Here every command of the process goes out on one connection, written as soon as
it is asked for, and Redis answers in order, so one reader matches each reply to the
oldest command still waiting (first in, first out). Under load one socket read brings
several replies.

What it guarantees:

* **A command is written at most once.** Nothing here resends it: no retry on a timeout,
  a lost connection or any Redis error. A command whose reply never came may have run on
  Redis (an admit may have taken tokens); the caller is told it failed, never that it
  passed. The one second attempt is a script that Redis answers ``NOSCRIPT`` (its cache
  was flushed or the server restarted): Redis ran nothing, and the script is sent again
  whole (``EVAL``) within the same time bound.
* **One bound per call.** Connecting (TCP, TLS, ``AUTH``/``SELECT``), writing and the reply
  all fit in ``timeout_s`` or the call raises ``TimeoutError``. The connection is then
  closed and every other command on it fails with ``ConnectionError`` rather than leave a
  late reply in the stream. A caller that is cancelled (its client went away) keeps its
  place in the queue, so its reply is read and dropped, never handed to the next command.
* **The connection is redis-py's**, made from the URL by redis-py's own parser, exactly as
  the session store's client reads it (host, database, TLS options, the password from
  ``password_file``), so the two can never connect differently. Only the timeouts, retries
  and protocol are ours whatever the URL's query says: ``timeout_s`` bounds each call, a
  failed connect is not tried again, and RESP2 has no out-of-band replies. It is opened
  on first use, and again by the first call after it was lost.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio.connection import AbstractConnection, ConnectionPool, parse_url
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

Arg = str | bytes | int | float


@dataclass(frozen=True, slots=True)
class Script:
    """A Lua script and its SHA1, the name Redis caches it under (``EVALSHA``)."""

    text: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        digest = hashlib.sha1(self.text.encode(), usedforsecurity=False).hexdigest()
        object.__setattr__(self, "sha", digest)


@dataclass(eq=False, slots=True)
class _Link:
    """One open connection, the commands waiting for a reply on it (in the order they
    were written) and the task reading the replies."""

    conn: AbstractConnection
    waiting: collections.deque[asyncio.Future[Any]] = field(default_factory=collections.deque)
    reader: asyncio.Task[None] | None = None
    closed: bool = False


class RedisPipe:
    def __init__(self, url: str, timeout_s: float) -> None:
        options: dict[str, Any] = {**parse_url(url)}  # the URL as redis-py reads it, for every client
        options.update(  # ours, whatever the URL's query says
            socket_timeout=None,  # each call is bounded as a whole (timeout_s), below
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),  # a failed connect is reported, not tried again
            health_check_interval=0,
            protocol=2,  # no out-of-band replies (RESP3 pushes) between the answers
        )
        self._pool = ConnectionPool(**options)
        self._timeout_s = timeout_s
        self._link: _Link | None = None
        self._connecting: asyncio.Task[_Link] | None = None

    async def call(self, *args: Arg) -> Any:
        """Send one command and return its reply (Redis's error reply raised as redis-py's
        ``ResponseError`` subclass)."""
        return await self._bounded(self._send, (args,))

    async def script(self, script: Script, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """Run ``script`` by its SHA1, or whole if Redis does not hold it (it ran nothing)."""
        return await self._bounded(self._run_script, (script, keys, args))

    async def aclose(self) -> None:
        if self._connecting is not None:
            self._connecting.cancel()
            self._connecting = None
        if self._link is not None:
            await self._close(self._link, "Redis connection closed")

    # --- one call -----------------------------------------------------------------------

    async def _bounded(self, step: Any, args: tuple[Any, ...]) -> Any:
        link: _Link | None = None
        try:
            async with asyncio.timeout(self._timeout_s):
                link = await self._connected()
                return await step(link, *args)
        except TimeoutError:
            if link is not None:  # a late reply must not stay in the stream: close it
                await self._close(link, "Redis did not answer in time")
            raise

    async def _run_script(self, link: _Link, script: Script, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        try:
            return await self._send(link, ("EVALSHA", script.sha, len(keys), *keys, *args))
        except NoScriptError:  # Redis ran nothing: send the script itself, once
            return await self._send(link, ("EVAL", script.text, len(keys), *keys, *args))

    async def _send(self, link: _Link, args: tuple[Arg, ...]) -> Any:
        if link.closed:
            raise RedisConnectionError("Redis connection lost")
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        link.waiting.append(reply)  # queued and written with no await between: replies stay in order
        try:
            # Connected, no health check, no socket timeout: redis-py writes the bytes before
            # its first await (the drain), so the order of the queue is the order on the wire.
            await link.conn.send_packed_command(link.conn.pack_command(*args), check_health=False)
        except (RedisConnectionError, OSError) as exc:
            await self._close(link, _lost(exc))
            raise
        return await reply

    # --- the connection -----------------------------------------------------------------

    async def _connected(self) -> _Link:
        if self._link is not None and not self._link.closed:
            return self._link
        if self._connecting is None:  # one connect shared by every caller meanwhile
            task = asyncio.get_running_loop().create_task(self._connect())
            task.add_done_callback(self._connect_done)
            self._connecting = task
        return await asyncio.shield(self._connecting)  # a caller's timeout leaves it to the others

    def _connect_done(self, task: asyncio.Task[_Link]) -> None:
        if self._connecting is task:
            self._connecting = None  # the next call after a failed connect tries again
        if not task.cancelled():
            task.exception()  # seen by its callers; marked retrieved for a connect nobody awaited

    async def _connect(self) -> _Link:
        conn: AbstractConnection = self._pool.make_connection()  # type: ignore[no-untyped-call]
        try:
            async with asyncio.timeout(self._timeout_s):
                await conn.connect()  # type: ignore[no-untyped-call]
        except BaseException:
            await conn.disconnect(nowait=True)
            raise
        link = _Link(conn)
        link.reader = asyncio.get_running_loop().create_task(self._read(link))
        self._link = link
        return link

    async def _read(self, link: _Link) -> None:
        """Hand each reply to the oldest command waiting; end when the connection does."""
        while True:
            try:
                reply: Any = await link.conn.read_response()
            except ResponseError as error:  # Redis refused that one command
                reply = error
            except asyncio.CancelledError:  # closed by us (or the loop is ending)
                self._fail(link, "Redis connection closed")
                raise
            except Exception as exc:  # the connection is lost
                await self._close(link, _lost(exc))
                return
            if not link.waiting:  # a reply nobody asked for: the stream cannot be trusted
                await self._close(link, "Redis sent a reply nobody asked for")
                return
            waiter = link.waiting.popleft()
            if waiter.done():  # its caller went away: the reply is read and dropped
                continue
            if isinstance(reply, ResponseError):
                waiter.set_exception(reply)
            else:
                waiter.set_result(reply)

    async def _close(self, link: _Link, reason: str) -> None:
        if self._fail(link, reason):
            await link.conn.disconnect(nowait=True)

    def _fail(self, link: _Link, reason: str) -> bool:
        """Mark ``link`` closed and fail every command waiting on it; False if it already was."""
        if self._link is link:
            self._link = None
        if link.closed:
            return False
        link.closed = True
        while link.waiting:
            waiter = link.waiting.popleft()
            if not waiter.done():
                waiter.set_exception(RedisConnectionError(reason))
        if link.reader is not None and link.reader is not asyncio.current_task():
            link.reader.cancel()
        return True


def _lost(exc: BaseException) -> str:
    return f"Redis connection lost ({type(exc).__name__})"  # the class only: no address, no reply

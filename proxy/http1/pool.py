"""Connections per origin under one bound.

* at most ``max_connections`` connections are open at once, idle ones included, over all
  origins; a request that finds none free waits in a FIFO queue (the caller's deadline
  bounds the wait) or, when another origin holds an idle one, closes that one and connects;
* idle connections are reused last-in first-out (the warmest first) and only while
  ``open``: one the venue closed, reset or wrote to while idle is never handed out;
* an idle connection older than ``keepalive_s`` (15 s, aiohttp's default) is closed instead
  of reused: venues and their load balancers close idle keep-alive connections after a
  while of their own, and a request written as the venue closes is lost with no way to tell
  whether it arrived (a POST is then a 502, never re-sent). Reusing only connections much
  younger than those idle timeouts keeps that race rare;
* a connection is opened (TCP, then TLS for ``https``: verification on, SNI and hostname
  check against the origin's host) under ``connect_timeout_s``; any failure there is
  ``ConnectFailed``: nothing was written;
* ``close`` closes every connection, in use or idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections import deque
from collections.abc import Callable
from functools import partial

from proxy.http1.connection import Connection
from proxy.http1.errors import ConnectFailed
from proxy.http1.origin import Origin

KEEPALIVE_S = 15.0


class Pool:
    def __init__(
        self,
        max_connections: int,
        connect_timeout_s: float,
        ssl_context: ssl.SSLContext | None = None,
        keepalive_s: float = KEEPALIVE_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max = max_connections
        self._connect_timeout_s = connect_timeout_s
        self._ssl = ssl_context
        self._keepalive_s = keepalive_s
        self._monotonic = monotonic
        self._idle: dict[Origin, list[Connection]] = {}
        self._open: set[Connection] = set()
        self._connecting = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self, origin: Origin) -> Connection:
        while True:
            conn = self._take_idle(origin)
            if conn is not None:
                return conn
            if len(self._open) + self._connecting < self._max or self._evict_idle():
                return await self._connect(origin)
            await self._wait_for_slot()

    def release(self, origin: Origin, conn: Connection) -> None:
        """Back to the idle stack of ``origin``: only a connection whose answer was read whole."""
        if not conn.open:
            self.discard(conn)
            return
        now = self._monotonic()
        conn.idle_since = now
        stack = self._idle.setdefault(origin, [])
        while stack and (not stack[0].open or now - stack[0].idle_since > self._keepalive_s):
            self._close(stack.pop(0))  # the oldest first: expired or closed by the venue
        stack.append(conn)
        self._wake_one()

    def discard(self, conn: Connection) -> None:
        """Drop a connection that must not be reused (failed, timed out, not keep-alive)."""
        conn.abort()
        self._forget(conn)

    def retire(self, conn: Connection) -> None:
        """Close a connection whose answer was read whole but that must not be reused."""
        self._close(conn)

    def close(self) -> None:
        for conn in list(self._open):
            conn.close()
        self._open.clear()
        self._idle.clear()

    @property
    def open_connections(self) -> int:
        return len(self._open)

    def _take_idle(self, origin: Origin) -> Connection | None:
        stack = self._idle.get(origin)
        if not stack:
            return None
        now = self._monotonic()
        while stack:
            conn = stack.pop()
            if not conn.open:
                continue  # the venue closed it while idle (``_forget`` already freed its slot)
            if now - conn.idle_since <= self._keepalive_s:
                return conn
            self._close(conn)  # expired, and every connection under it is older still
            while stack:
                self._close(stack.pop())
        return None

    def _evict_idle(self) -> bool:
        """Close the oldest idle connection of any origin to make room; False when none is idle."""
        for stack in self._idle.values():
            while stack:
                conn = stack.pop(0)
                if conn.open:
                    conn.close()
                    self._open.discard(conn)
                    return True
        return False

    async def _connect(self, origin: Origin) -> Connection:
        self._connecting += 1
        try:
            conn = await self._open_connection(origin)
        except BaseException:
            self._connecting -= 1
            self._wake_one()
            raise
        self._connecting -= 1
        if not conn.open:  # closed before we wrote a byte
            self._wake_one()
            raise ConnectFailed("ClosedBeforeUse")
        self._open.add(conn)
        return conn

    async def _open_connection(self, origin: Origin) -> Connection:
        loop = asyncio.get_running_loop()
        tls = self._tls_context() if origin.tls else None
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                _, conn = await loop.create_connection(
                    partial(Connection, self._forget),
                    origin.host,
                    origin.port,
                    ssl=tls,
                    server_hostname=origin.host if tls is not None else None,
                )  # no happy_eyeballs_delay: uvloop, the loop ``serve`` runs on, has no such argument
        except TimeoutError:
            raise ConnectFailed("ConnectTimeout") from None
        except OSError as exc:  # refused, unreachable, unresolvable, TLS refused (ssl.SSLError)
            raise ConnectFailed(type(exc).__name__) from None
        return conn

    def _tls_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()  # verification and hostname check on
        return self._ssl

    async def _wait_for_slot(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._wake_one()  # woken, then cancelled: hand the slot to the next in line
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            raise

    def _close(self, conn: Connection) -> None:
        conn.close()
        self._forget(conn)

    def _forget(self, conn: Connection) -> None:
        if conn in self._open:
            self._open.discard(conn)
            self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

"""One keep-alive HTTP/1.1 connection to a venue: an asyncio ``Protocol`` that writes one
request at a time and parses the answer with ``httptools`` (llhttp, strict: conflicting
``Content-Length``/``Transfer-Encoding``, bad characters and bad chunk framing are errors).

Guarantees of ``Connection.exchange``:

* the answer is the first final one: 1xx interim answers are skipped (a ``101`` is an
  error: we never ask for an upgrade); headers come as ``(lower-case name, value)``,
  latin-1, in the venue's order, trailing blanks of a value dropped; a chunked body's
  trailers are not headers (they count towards the body cap and are dropped); the body is
  de-chunked but never decoded (``Content-Encoding`` is relayed as is);
* the body is framed by ``Content-Length``, chunked encoding, or the venue closing its
  side (a FIN, never a reset or our own close); 204 and 304 carry none (llhttp); a HEAD
  answer ends with its head and its connection is closed, never reused (llhttp cannot be
  told the answer to a HEAD has no body, and a guess would misframe the next answer);
* the head (status line and headers) is bounded by ``max_head_bytes`` (llhttp has no limit
  of its own): over it, ``HeadTooLarge``; the body by ``cap``, declared or as it arrives:
  over it, ``AnswerTooLarge`` without reading further; both drop the connection;
* ``reusable`` is true only after a final answer read whole on an HTTP/1.1 connection the
  venue keeps alive (llhttp's ``should_keep_alive``: no ``Connection: close``);
* ``open`` turns false as soon as the venue closes its side, resets, or sends anything
  while no request is outstanding (the pool then never hands the connection out), and
  ``on_closed`` tells the pool when the socket is gone;
* any other failure after the request was written is ``ExchangeFailed`` naming the class
  (``ServerDisconnected``, ``ConnectionResetError``, ``InvalidAnswer``, ...).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import httptools

from proxy.http1.errors import AnswerTooLarge, ExchangeFailed, HeadTooLarge

MAX_HEAD_BYTES = 64 * 1024
_NO_BODY_STATUSES = frozenset({204, 304})


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


class _Stop(Exception):
    """Raised in a parser callback to stop llhttp; the reason is in ``Connection._error``."""


class Connection(asyncio.Protocol):
    def __init__(self, on_closed: Callable[[Connection], None], max_head_bytes: int = MAX_HEAD_BYTES) -> None:
        self._on_closed = on_closed
        self._max_head = max_head_bytes
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self.open = False
        self.reusable = False
        self.idle_since = 0.0  # the pool's clock, set when the connection goes back to it
        self._waiter: asyncio.Future[Response] | None = None
        self._error: ExchangeFailed | None = None
        self._head = False
        self._cap = 0
        self._head_bytes = 0  # bytes received before the head was complete (memory bound)
        self._head_size = 0  # status line and header bytes counted by the parser (exact bound)
        self._head_done = False
        self._until_close = False
        self._headers: list[tuple[str, str]] = []
        self._body: list[bytes] = []
        self._size = 0

    async def exchange(self, raw: bytes, head: bool, cap: int) -> Response:
        """Write ``raw`` (a whole request) and return the final answer. ``head``: it was a HEAD."""
        assert self._transport is not None and self.open, "the pool hands out open connections only"
        self._head, self._cap = head, cap
        self._error, self.reusable = None, False
        self._head_bytes = self._head_size = 0
        self._head_done = self._until_close = False
        self._waiter = waiter = asyncio.get_running_loop().create_future()
        self._transport.write(raw)
        response: Response = await waiter
        return response

    def close(self) -> None:
        self.open = False
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        self.open = self.reusable = False
        if self._transport is not None:
            self._transport.abort()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self.open = True

    def data_received(self, data: bytes) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            self.abort()  # unsolicited bytes: the connection's framing can no longer be trusted
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self._fail(self._error or ExchangeFailed("InvalidAnswer"))
            return
        if not self._head_done:
            self._head_bytes += len(data)
            if self._head_bytes > self._max_head:
                self._fail(HeadTooLarge(self._max_head))

    def eof_received(self) -> bool | None:
        self.open = self.reusable = False
        if self._head_done and self._until_close:
            self._finish()  # the venue closed its side: that was the end of the body
        return None  # close the transport: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = self.reusable = False
        self._transport = None
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ExchangeFailed(type(exc).__name__ if exc else "ServerDisconnected"))
        self._on_closed(self)

    # httptools callbacks

    def on_message_begin(self) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            self._error = ExchangeFailed("UnsolicitedAnswer")
            raise _Stop
        self._head_done = False
        self._headers, self._body, self._size = [], [], 0

    def on_status(self, status: bytes) -> None:
        self._count_head(len(status) + 15)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._head_done:  # a trailer after a chunked body: not relayed, bounded by the cap
            self._count_body(len(name) + len(value))
            return
        self._count_head(len(name) + len(value) + 4)
        self._headers.append((name.decode("latin-1").lower(), value.decode("latin-1").rstrip(" \t")))

    def on_headers_complete(self) -> None:
        self._head_done = True
        status = self._parser.get_status_code()
        if status == 101:
            self._error = ExchangeFailed("UnexpectedUpgrade")
            raise _Stop
        if status < 200:
            return  # interim: llhttp ends it here, the final answer follows
        if self._head:
            self._finish()
            raise _Stop  # the body a HEAD answer may declare never comes: stop, do not reuse
        if status in _NO_BODY_STATUSES:
            self._until_close = False  # llhttp ends the answer here, whatever length it declares
            return
        declared, chunked = _framing(self._headers)
        if declared is not None and declared > self._cap:
            self._error = AnswerTooLarge(self._cap)
            raise _Stop
        self._until_close = declared is None and not chunked

    def on_body(self, body: bytes) -> None:
        self._count_body(len(body))
        self._body.append(body)

    def on_message_complete(self) -> None:
        parser = self._parser
        if parser.get_status_code() < 200:
            return
        keep_alive = parser.should_keep_alive() and parser.get_http_version() == "1.1"
        self._finish()
        self.reusable = keep_alive

    # internals

    def _count_head(self, size: int) -> None:
        self._head_size += size
        if self._head_size > self._max_head:
            self._error = HeadTooLarge(self._max_head)
            raise _Stop

    def _count_body(self, size: int) -> None:
        self._size += size
        if self._size > self._cap:
            self._error = AnswerTooLarge(self._cap)
            raise _Stop

    def _finish(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(
                Response(self._parser.get_status_code(), tuple(self._headers), b"".join(self._body))
            )

    def _fail(self, error: ExchangeFailed) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        self.abort()


def _framing(headers: list[tuple[str, str]]) -> tuple[int | None, bool]:
    """The declared ``Content-Length`` (llhttp has checked it is one number) and whether the
    body is chunked (the last transfer coding is ``chunked``, as llhttp reads it)."""
    declared: int | None = None
    chunked = False
    for name, value in headers:
        if name == "content-length":
            declared = int(value)
        elif name == "transfer-encoding":
            chunked = value.rpartition(",")[2].strip().lower() == "chunked"
    return declared, chunked

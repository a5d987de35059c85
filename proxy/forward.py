"""Sending a signed request to the venue: the one place that maps the HTTP client's
failures to the proxy's errors.

The client is ``proxy.http1``, a purpose-built HTTP/1.1 client on asyncio and httptools
(README "Forwarding client: purpose-built HTTP/1.1": aiohttp cost ~120 µs of CPU per
request here; httpx and pyreqwest were measured and refused, README "Clients measured
and refused").

Contract kept here (each item's details are in the ``proxy.http1`` module named):

* the request line is ``METHOD <target> HTTP/1.1`` with the target byte for byte as the
  signer left it: no re-encoding, no normalisation; headers are exactly ours plus ``Host``
  and ``Content-Length`` (no ``User-Agent``/``Accept``/``Accept-Encoding``); a target,
  method or header HTTP/1.1 cannot carry unambiguously is refused before anything is sent:
  400 ``bad_request`` naming which part, not its content (``request``);
* no redirect is followed (a 3xx is the venue's answer and is relayed); bodies are relayed
  undecoded (``Content-Encoding`` as is); 1xx answers are skipped (``connection``);
* nothing is re-sent once a byte may have reached the venue. With ``retry_idempotent``, a
  GET/HEAD whose *connection* could not be opened is tried once more; nothing else ever is.
  A pooled connection the venue closed while idle is never picked (``pool``);
* ``connect_timeout_s`` bounds the TCP connect and TLS handshake (502 "cannot connect");
  ``timeout_s`` bounds the whole send: the wait for a pool slot, connecting, writing and
  reading the answer (504 ``upstream_timeout``; the connection is dropped, never pooled);
* a venue answer is read under ``max_response_bytes`` (``upstream.max_response_bytes``),
  declared or chunked, and its head under 64 KiB: over either the connection is dropped and
  the client gets 502 ``upstream_unreachable`` naming the limit (the venue may have
  executed the request: the message says the answer, not the request, was refused);
* ``https`` origins are verified (``ssl.create_default_context()``, SNI and hostname check);
* transport failures become ``UpstreamUnreachable`` (502) or ``UpstreamTimeout`` (504)
  with a message naming the venue origin and the failure class, never the request.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Protocol

from proxy.errors import BadRequest, UpstreamTimeout, UpstreamUnreachable
from proxy.http1.client import Client
from proxy.http1.connection import Response
from proxy.http1.errors import AnswerTooLarge, ConnectFailed, ExchangeFailed, HeadTooLarge, UnsafeRequest
from proxy.messages import OutgoingRequest, UpstreamReply

log = logging.getLogger("signing_proxy.forward")

_RETRYABLE_METHODS = frozenset({"GET", "HEAD"})


class Upstream(Protocol):
    """What the pipeline sends through: ``Forwarder`` in production, in-process fakes in tests."""

    async def send(self, origin: str, request: OutgoingRequest) -> UpstreamReply: ...


class Forwarder:
    def __init__(
        self,
        connect_timeout_s: float = 5,
        timeout_s: float = 10,
        max_connections: int = 100,
        retry_idempotent: bool = False,
        max_response_bytes: int = 16 * 1024 * 1024,
        ssl_context: ssl.SSLContext | None = None,  # None: the system's trust store (tests inject one)
    ) -> None:
        self._connect_timeout_s = connect_timeout_s
        self._timeout_s = timeout_s
        self._max_connections = max_connections
        self._retry_idempotent = retry_idempotent
        self._max_response_bytes = max_response_bytes
        self._ssl_context = ssl_context
        self._client: Client | None = None

    async def start(self) -> None:
        if self._client is None:
            self._client = Client(
                self._max_connections,
                self._connect_timeout_s,
                self._max_response_bytes,
                ssl_context=self._ssl_context,
            )

    async def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def send(self, origin: str, request: OutgoingRequest) -> UpstreamReply:
        try:
            async with asyncio.timeout(self._timeout_s):
                response = await self._send(origin, request)
        except TimeoutError:
            raise UpstreamTimeout(f"{origin} did not answer in time") from None
        except UnsafeRequest as exc:
            raise BadRequest(f"not sent to the venue: {exc.part}") from None
        except ConnectFailed as exc:
            raise UpstreamUnreachable(f"cannot connect to {origin} ({exc.cause})") from None
        except AnswerTooLarge as exc:
            extra = {"origin": origin, "max_response_bytes": exc.limit}
            log.warning("venue answer over the cap", extra=extra)
            raise UpstreamUnreachable(
                f"the answer from {origin} exceeds upstream.max_response_bytes ({exc.limit} bytes); "
                "the request may have been executed"
            ) from None
        except HeadTooLarge as exc:
            raise UpstreamUnreachable(
                f"the answer from {origin} has a status line and headers over {exc.limit} bytes; "
                "the request may have been executed"
            ) from None
        except ExchangeFailed as exc:
            raise UpstreamUnreachable(f"request to {origin} failed ({exc.cause})") from None
        return UpstreamReply(response.status, response.headers, response.body)

    async def _send(self, origin: str, request: OutgoingRequest) -> Response:
        if self._client is None:
            await self.start()
        assert self._client is not None
        client = self._client
        method, target, headers, body = request.method, request.target, request.headers, request.body
        try:
            return await client.request(origin, method, target, headers, body)
        except ConnectFailed:
            if not (self._retry_idempotent and method in _RETRYABLE_METHODS):
                raise
        # The connection never opened: nothing reached the venue, one more try.
        return await client.request(origin, method, target, headers, body)

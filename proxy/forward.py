"""Sending a signed request to the venue: the one place that knows the HTTP client.

The transport is aiohttp (one shared ``ClientSession``, bounded keep-alive pool).
PERFORMANCE.md measured httpx's default transport 4-8x slower under concurrency; the
benchmark issue re-measures and, if the choice changes, only this module changes.

Contract kept here:

* the URL is ``<configured origin><target>`` with the target passed *encoded*, so the
  client library cannot collapse ``/../`` or re-encode what the venue signed;
* no redirect is followed (a 3xx is the venue's answer and is relayed);
* bodies are relayed undecoded (``auto_decompress=False``), headers are exactly ours
  (no automatic ``User-Agent``/``Accept``/``Content-Type``);
* nothing is re-sent once it may have reached the venue. With ``retry_idempotent``, a
  GET/HEAD whose *connection* failed is tried once more; nothing else ever is. aiohttp
  itself re-sends an idempotent method (GET, HEAD, PUT, DELETE, ...) once when the
  connection drops after the request was written (``ClientSession._request`` retries on
  ``ServerDisconnectedError``/``ClientOSError``, RFC 9112 §9.3.1.1): ``exactly_once``, a
  client middleware around its send, turns those errors into one it does not retry;
* a venue answer is read under ``max_response_bytes`` (``upstream.max_response_bytes``),
  declared or chunked: over it the connection is dropped and the client gets 502
  ``upstream_unreachable`` naming the cap (the venue may have executed the request: the
  message says the answer, not the request, was refused);
* transport failures become ``UpstreamUnreachable`` (502) or ``UpstreamTimeout`` (504)
  with a message naming the venue origin and the failure class, never the request.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

import aiohttp
from yarl import URL

from proxy.errors import UpstreamTimeout, UpstreamUnreachable
from proxy.messages import OutgoingRequest, UpstreamReply

log = logging.getLogger("signing_proxy.forward")


class MaybeSent(Exception):
    """The connection failed after it was established: the request may have reached the
    venue. Deliberately neither an ``aiohttp.ClientError`` nor an ``OSError``, the two
    families aiohttp's request loop retries or re-wraps."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(type(cause).__name__)
        self.cause_name = type(cause).__name__


_Handler = Callable[[aiohttp.ClientRequest], Awaitable[aiohttp.ClientResponse]]


async def exactly_once(request: aiohttp.ClientRequest, handler: _Handler) -> aiohttp.ClientResponse:
    try:
        return await handler(request)
    except aiohttp.ClientConnectorError:
        raise  # never established: nothing was sent (a ClientOSError subclass, so first)
    except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError) as exc:
        raise MaybeSent(exc) from None


NO_HIDDEN_RETRIES = (exactly_once,)  # ``middlewares=`` of every aiohttp session that talks to a venue

_SKIP_AUTO = frozenset({"User-Agent", "Accept", "Accept-Encoding", "Content-Type"})


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
    ) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=connect_timeout_s)
        self._max_connections = max_connections
        self._retry_idempotent = retry_idempotent
        self._max_response_bytes = max_response_bytes
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections, ttl_dns_cache=300, enable_cleanup_closed=True
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                auto_decompress=False,
                skip_auto_headers=_SKIP_AUTO,
                cookie_jar=aiohttp.DummyCookieJar(),  # never carry one client's cookies to another
                middlewares=NO_HIDDEN_RETRIES,  # no hidden re-send of an idempotent method
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, origin: str, request: OutgoingRequest) -> UpstreamReply:
        attempts = 2 if self._retry_idempotent and request.method in ("GET", "HEAD") else 1
        for attempt in range(attempts):
            try:
                return await self._send_once(origin, request)
            except aiohttp.ClientConnectorError as exc:
                if attempt + 1 < attempts:
                    continue  # connection never established: nothing reached the venue
                raise UpstreamUnreachable(f"cannot connect to {origin} ({type(exc).__name__})") from None
        raise AssertionError("unreachable")

    async def _send_once(self, origin: str, request: OutgoingRequest) -> UpstreamReply:
        if self._session is None:
            await self.start()
        assert self._session is not None
        url = URL(origin + request.target, encoded=True)
        try:
            async with self._session.request(
                request.method,
                url,
                headers=list(request.headers),
                data=request.body if request.body or request.method not in ("GET", "HEAD") else None,
                allow_redirects=False,
            ) as response:
                body = await self._read_capped(response, origin)
                headers = tuple(
                    (k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in response.raw_headers
                )
                return UpstreamReply(response.status, headers, body)
        except aiohttp.ClientConnectorError:
            raise
        except MaybeSent as exc:
            raise UpstreamUnreachable(f"request to {origin} failed ({exc.cause_name})") from None
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise UpstreamTimeout(f"{origin} did not answer in time") from None
        except aiohttp.ClientError as exc:
            raise UpstreamUnreachable(f"request to {origin} failed ({type(exc).__name__})") from None

    async def _read_capped(self, response: aiohttp.ClientResponse, origin: str) -> bytes:
        cap = self._max_response_bytes
        declared = response.content_length
        if (declared is not None and declared <= cap) or response.method == "HEAD":
            return await response.read()  # the parser stops at Content-Length: the fast path
        chunks: list[bytes] = []
        size = 0
        if declared is None:  # chunked, or until the venue closes: count as it comes
            async for chunk in response.content.iter_any():
                size += len(chunk)
                if size > cap:
                    break
                chunks.append(chunk)
            else:
                return b"".join(chunks)
        response.close()  # never pool a connection with an unread answer on it
        log.warning("venue answer over the cap", extra={"origin": origin, "max_response_bytes": cap})
        raise UpstreamUnreachable(
            f"the answer from {origin} exceeds upstream.max_response_bytes ({cap} bytes); "
            "the request may have been executed"
        )

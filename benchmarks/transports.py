"""Forwarders for the transport comparison (the production one is ``proxy.forward``).

Same ``Upstream`` contract as ``proxy.forward.Forwarder`` where it matters for speed: one
long-lived client, a bounded keep-alive pool of the same size, no redirects, the venue's
headers and body relayed. Error mapping is left out: the benchmark sends nothing that fails.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, cast

import httptools
import httpx

from proxy.errors import UpstreamUnreachable
from proxy.messages import OutgoingRequest, UpstreamReply

HTTPX_TRANSPORTS = ("httpx", "httpx-aiohttp")


class HttpxForwarder:
    """``transport``: ``httpx`` (httpcore, the default) or ``httpx-aiohttp`` (AiohttpTransport)."""

    def __init__(self, transport: str, max_connections: int = 100, timeout_s: float = 10) -> None:
        if transport not in HTTPX_TRANSPORTS:
            raise ValueError(f"unknown transport {transport!r}")
        self._transport_name = transport
        self._limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self._timeout = httpx.Timeout(timeout_s)
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        if self._client is not None:
            return
        transport = None
        if self._transport_name == "httpx-aiohttp":
            # Imported here: only this comparison needs the package (the ``bench`` extra).
            from httpx_aiohttp import AiohttpTransport

            transport = AiohttpTransport(limits=self._limits)
        self._client = httpx.AsyncClient(
            limits=self._limits, timeout=self._timeout, transport=transport, follow_redirects=False
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def send(self, origin: str, request: OutgoingRequest) -> UpstreamReply:
        if self._client is None:
            await self.start()
        assert self._client is not None
        response = await self._client.request(
            request.method,
            origin + request.target,
            headers=list(request.headers),
            content=request.body or None,
        )
        headers = tuple((k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in response.headers.raw)
        return UpstreamReply(response.status_code, headers, response.content)


class _Exchange(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request at a time, answer parsed by httptools."""

    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[UpstreamReply] | None = None
        self._headers: list[tuple[str, str]] = []
        self._body: list[bytes] = []
        self.reusable = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self._fail()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.decode("latin-1").lower(), value.decode("latin-1")))

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        self.reusable = self._parser.should_keep_alive()
        reply = UpstreamReply(self._parser.get_status_code(), tuple(self._headers), b"".join(self._body))
        self._headers, self._body = [], []
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail()

    def _fail(self) -> None:
        self.reusable = False
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(UpstreamUnreachable("connection to the venue failed"))

    async def exchange(self, raw: bytes) -> UpstreamReply:
        assert self._transport is not None
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(raw)
        return await self._waiter

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class RawForwarder:
    """What-if prototype, not a product transport: HTTP/1.1 on raw asyncio + httptools with
    a keep-alive pool per origin. Plain ``http://`` only, no timeouts, no redirects handling
    needed (none followed anyway). It measures how much of the pass-through's CPU is the
    HTTP client library (config ``pass-raw``)."""

    def __init__(self, max_connections: int = 100) -> None:
        self._max = max_connections
        self._idle: dict[str, list[_Exchange]] = {}

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        for pool in self._idle.values():
            for conn in pool:
                conn.close()
        self._idle.clear()

    async def send(self, origin: str, request: OutgoingRequest) -> UpstreamReply:
        pool = self._idle.setdefault(origin, [])
        conn = pool.pop() if pool else await self._connect(origin)
        host = origin.partition("://")[2]
        lines = [f"{request.method} {request.target} HTTP/1.1", f"host: {host}"]
        lines += [f"{name}: {value}" for name, value in request.headers]
        if request.body or request.method not in ("GET", "HEAD"):
            lines.append(f"content-length: {len(request.body)}")
        reply = await conn.exchange(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + request.body)
        if conn.reusable and len(pool) < self._max:
            pool.append(conn)
        else:
            conn.close()
        return reply

    @staticmethod
    async def _connect(origin: str) -> _Exchange:
        scheme, _, host_port = origin.partition("://")
        if scheme != "http":
            raise UpstreamUnreachable("the RawForwarder prototype speaks plain http only")
        host, _, port = host_port.rpartition(":")
        loop = asyncio.get_running_loop()
        _transport, protocol = await loop.create_connection(_Exchange, host or host_port, int(port or 80))
        return protocol


class PyreqwestForwarder:
    """``pass-pyreqwest``: the pass-through on pyreqwest (Rust reqwest/hyper), measured as
    the alternative to aiohttp (README "Forwarding client": it is faster, but re-encodes
    ``'`` in a query and reports a dropped or unanswered request with the same exception
    classes as a refused connection, so it is not the product's client)."""

    def __init__(self, max_connections: int = 100, timeout_s: float = 10) -> None:
        self._max = max_connections
        self._timeout_s = timeout_s
        self._client: Any = None

    async def start(self) -> None:
        if self._client is not None:
            return
        # Imported here: only this comparison needs the package (the ``bench`` extra).
        from pyreqwest.client import ClientBuilder

        self._client = (
            ClientBuilder()
            .follow_redirects(False)
            .gzip(False)
            .brotli(False)
            .zstd(False)
            .deflate(False)
            .pool_max_idle_per_host(self._max)
            .timeout(timedelta(seconds=self._timeout_s))
            .build()
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def send(self, origin: str, request: OutgoingRequest) -> UpstreamReply:
        if self._client is None:
            await self.start()
        builder = self._client.request(request.method, origin + request.target).headers(list(request.headers))
        if request.body:
            builder = builder.body_bytes(request.body)
        response = await builder.build().send()
        body = bytes(await response.bytes())
        headers = tuple((k.lower(), v) for k, v in response.headers.items())
        return UpstreamReply(response.status, headers, body)

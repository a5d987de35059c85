"""Forwarders for the client comparison (the production one is ``proxy.forward`` on
``proxy.http1``): aiohttp (the previous product client), httpx and pyreqwest.

Same ``Upstream`` contract as ``proxy.forward.Forwarder`` where it matters for speed: one
long-lived client, a bounded keep-alive pool of the same size, no redirects, the venue's
headers and body relayed. Error mapping is left out: the benchmark sends nothing that fails.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import aiohttp
import httpx
from yarl import URL

from proxy.errors import UpstreamUnreachable
from proxy.exactly_once import NO_HIDDEN_RETRIES
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


class AiohttpForwarder:
    """``pass-aiohttp``: the product's forwarding client before ``proxy.http1`` (issue 17),
    kept as the comparison: one ``ClientSession``, a pool of the same size, no automatic
    headers, bodies undecoded, the exactly-once middleware and the streamed size cap. Its
    failures are not mapped (the benchmark sends nothing that fails)."""

    def __init__(
        self, max_connections: int = 100, timeout_s: float = 10, max_response_bytes: int = 16 * 1024 * 1024
    ) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=5)
        self._max_connections = max_connections
        self._cap = max_response_bytes
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
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
                cookie_jar=aiohttp.DummyCookieJar(),
                middlewares=NO_HIDDEN_RETRIES,
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, origin: str, request: OutgoingRequest) -> UpstreamReply:
        if self._session is None:
            await self.start()
        assert self._session is not None
        async with self._session.request(
            request.method,
            URL(origin + request.target, encoded=True),
            headers=list(request.headers),
            data=request.body if request.body or request.method not in ("GET", "HEAD") else None,
            allow_redirects=False,
        ) as response:
            declared = response.content_length
            if declared is not None and declared <= self._cap:
                body = await response.read()
            else:  # chunked or until close: counted as it comes, as the product did
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.content.iter_any():
                    size += len(chunk)
                    if size > self._cap:
                        raise UpstreamUnreachable("answer over the cap")
                    chunks.append(chunk)
                body = b"".join(chunks)
            raw = response.raw_headers
            headers = tuple((k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in raw)
            return UpstreamReply(response.status, headers, body)


class PyreqwestForwarder:
    """``pass-pyreqwest``: the pass-through on pyreqwest (Rust reqwest/hyper), measured as
    the alternative to aiohttp (README "Clients measured and refused": faster, but re-encodes
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

"""``Client.request``: one request, one answer, over the pool; nothing is ever re-sent.

The request head is built and checked (``encode_request``) before a connection is
chosen, so a refused request opens nothing. A connection goes back to the pool only when
its answer was read whole and the venue keeps it alive; on any failure, or when the
caller's deadline cancels the exchange, it is dropped, never reused.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Iterable

from proxy.http1.connection import Response
from proxy.http1.origin import Origin, parse_origin
from proxy.http1.pool import KEEPALIVE_S, Pool
from proxy.http1.request import encode_request


class Client:
    def __init__(
        self,
        max_connections: int,
        connect_timeout_s: float,
        max_response_bytes: int,
        ssl_context: ssl.SSLContext | None = None,
        keepalive_s: float = KEEPALIVE_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool = Pool(max_connections, connect_timeout_s, ssl_context, keepalive_s, monotonic)
        self._cap = max_response_bytes
        self._origins: dict[str, Origin] = {}  # configured origins only: a handful

    @property
    def open_connections(self) -> int:
        return self._pool.open_connections

    async def request(
        self, origin: str, method: str, target: str, headers: Iterable[tuple[str, str]], body: bytes
    ) -> Response:
        parsed = self._origins.get(origin)
        if parsed is None:
            parsed = self._origins[origin] = parse_origin(origin)
        raw = encode_request(method, target, headers, body, parsed.host_header)
        conn = await self._pool.acquire(parsed)
        try:
            response = await conn.exchange(raw, method == "HEAD", self._cap)
        except BaseException:
            self._pool.discard(conn)
            raise
        if conn.reusable:
            self._pool.release(parsed, conn)
        else:
            self._pool.retire(conn)
        return response

    def close(self) -> None:
        self._pool.close()

"""aiohttp's hidden re-send, turned off, for every aiohttp session that talks to a venue
(the WebSocket handshake in ``proxy.ws.upstream``; REST has its own client, ``proxy.http1``).

aiohttp re-sends an idempotent method (GET, HEAD, PUT, DELETE, ...) once when the
connection drops after the request was written (``ClientSession._request`` retries on
``ServerDisconnectedError``/``ClientOSError``, RFC 9112 §9.3.1.1). ``exactly_once``, a
client middleware around its send, turns those errors into ``MaybeSent``, which it does
not retry; a connection that never opened (``ClientConnectorError``) stays what it is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiohttp


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

"""Exactly one send (issue 14, item 1).

aiohttp re-sends an idempotent request (GET, HEAD, PUT, DELETE, ...) by itself when the
connection drops after the request was written (``ServerDisconnectedError`` /
``ClientOSError``), "because it was idempotent". A signed ``DELETE`` (cancel), ``PUT``
(EVEDEX replace-order) or ``GET`` then reaches the venue twice with the same signature.
The upstream here is a raw socket server that reads the whole request, then closes: on
a kept-alive (reused) connection and on a fresh one. The venue must have read each
request exactly once and the client gets 502 ``upstream_unreachable``. EVEDEX's one
built-in replay after a 401 stays the only replay.
"""

from __future__ import annotations

import httpx
import pytest

from proxy.dev.stack import LocalStack
from proxy.errors import UpstreamUnreachable
from proxy.forward import Forwarder
from proxy.messages import OutgoingRequest
from proxy.ws.upstream import AiohttpConnector
from tests.integration.faultserver import FaultServer

pytestmark = pytest.mark.asyncio(loop_scope="session")

BALANCE = "/v2/assets/spot/balance"
ORDER = {"market": "BTCUSDT", "side": "buy", "type": "limit", "amount": "1", "price": "1"}
# (method, path, body): a cancel, a replace, a read; each idempotent to aiohttp.
SENDS = [
    ("DELETE", "/v2/spot/cancel-order", None),
    ("PUT", "/v2/spot/order", ORDER),
    ("GET", BALANCE, None),
]
IDS = [s[0] for s in SENDS]


async def _send(http: httpx.AsyncClient, stack: LocalStack, venue: str, method: str, path: str, body):
    return await http.request(method, stack.url(venue, path), json=body, headers=stack.headers())


@pytest.mark.parametrize(("method", "path", "body"), SENDS, ids=IDS)
async def test_dropped_reused_connection_is_not_resent(
    stack: LocalStack, faulty: FaultServer, method: str, path: str, body
) -> None:
    faulty.mode = "drop_on_reuse"
    try:
        async with httpx.AsyncClient(timeout=15) as http:
            warm = await http.get(stack.url("coinex-faulty", BALANCE), headers=stack.headers())
            assert warm.status_code == 200  # the proxy now holds a kept-alive connection
            before = len(faulty.seen)
            response = await _send(http, stack, "coinex-faulty", method, path, body)
        assert response.status_code == 502
        assert response.headers["x-signing-proxy-error"] == "upstream_unreachable"
        assert faulty.seen[before:] == [f"{method} {path} HTTP/1.1".encode()]  # read once, never again
    finally:
        faulty.mode = "ok"
        faulty.close_idle()


@pytest.mark.parametrize(("method", "path", "body"), SENDS, ids=IDS)
async def test_fresh_connection_closed_after_reading_is_not_resent(
    stack: LocalStack, faulty: FaultServer, method: str, path: str, body
) -> None:
    faulty.mode = "close_without_answer"
    before = len(faulty.seen)
    try:
        async with httpx.AsyncClient(timeout=15) as http:
            response = await _send(http, stack, "coinex-faulty", method, path, body)
        assert response.status_code == 502
        assert response.headers["x-signing-proxy-error"] == "upstream_unreachable"
        assert faulty.seen[before:] == [f"{method} {path} HTTP/1.1".encode()]
    finally:
        faulty.mode = "ok"


async def test_evedex_401_replay_is_the_only_replay(stack: LocalStack, faulty: FaultServer) -> None:
    """The venue answers 401 (keep-alive), the proxy refreshes and replays once on the same
    connection, the venue reads the replay and drops: two sends in all, then 502."""
    faulty.mode = "unauthorized_then_drop"
    before = len(faulty.seen)
    try:
        async with httpx.AsyncClient(timeout=15) as http:
            url = stack.url("evedex-faulty", "/api/order/abc-1")
            response = await http.delete(url, headers=stack.headers())
        assert response.status_code == 502
        assert response.headers["x-signing-proxy-error"] == "upstream_unreachable"
        assert faulty.seen[before:] == [b"DELETE /api/order/abc-1 HTTP/1.1"] * 2  # the request, one replay
    finally:
        faulty.mode = "ok"
        faulty.close_idle()


async def test_retry_idempotent_still_never_resends_a_sent_get(faulty: FaultServer) -> None:
    """``retry_idempotent: true`` covers connections that could not be established only."""
    forwarder = Forwarder(connect_timeout_s=2, timeout_s=5, retry_idempotent=True)
    faulty.mode = "drop_on_reuse"
    get = OutgoingRequest("GET", BALANCE, (), b"")
    try:
        assert (await forwarder.send(faulty.url, get)).status == 200
        before = len(faulty.seen)
        with pytest.raises(UpstreamUnreachable):
            await forwarder.send(faulty.url, get)
        assert faulty.seen[before:] == [f"GET {BALANCE} HTTP/1.1".encode()]
    finally:
        faulty.mode = "ok"
        faulty.close_idle()
        await forwarder.close()


async def test_websocket_handshake_is_sent_once(faulty: FaultServer) -> None:
    """The venue-side WebSocket client (its own aiohttp session) re-sends nothing either."""
    connector = AiohttpConnector(connect_timeout_s=2, timeout_s=5, max_frame_bytes=65536)
    faulty.mode = "close_without_answer"
    before = len(faulty.seen)
    try:
        with pytest.raises(UpstreamUnreachable):
            await connector.connect("ws" + faulty.url.removeprefix("http"), "/v2/spot", [])
        assert faulty.seen[before:] == [b"GET /v2/spot HTTP/1.1"]
    finally:
        faulty.mode = "ok"
        await connector.close()

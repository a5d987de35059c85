"""The venue stand-in: answers like a venue, as fast as possible, verifies nothing.

The answers (``answer_for``) are shared by both implementations:

* nginx ``return 200 '<json>'`` locations (``benchmarks.nginx.upstream_conf``): the fastest,
  used when nginx is installed;
* ``python -m benchmarks.upstream --port N``: a raw asyncio protocol on uvloop with
  httptools, keep-alive, pre-built response bytes; the fallback (CI has no nginx).

EVEDEX's login round trips are answered too: ``/auth/nonce`` gives a nonce, and
``/auth/user/sign-up`` and ``/auth/refresh`` give a session whose access token is a JWT with
an ``exp`` in 2100, so the proxy logs in once and then only signs orders. The simulated
venues in ``proxy.sim`` are what checks signatures (in the test suite), not this.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import signal
from typing import Any, cast

import httptools
import uvloop

FAR_FUTURE = 4_102_444_800  # 2100-01-01: the proxy never needs to refresh during a run


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _jwt(kind: str) -> str:
    header = _b64({"alg": "HS256", "typ": "JWT"})
    return f"{header}.{_b64({'sub': 'bench', 'typ': kind, 'exp': FAR_FUTURE})}.YmVuY2g"


_SESSION = {
    "user": {"wallet": "0x0000000000000000000000000000000000000000"},
    "token": {"accessToken": _jwt("access"), "refreshToken": _jwt("refresh")},
}
ANSWERS: dict[str, bytes] = {
    "/auth/nonce": json.dumps({"nonce": "b3nchn0nce00000001"}).encode(),
    "/auth/user/sign-up": json.dumps(_SESSION).encode(),
    "/auth/refresh": json.dumps(_SESSION).encode(),
}
DEFAULT_ANSWER = json.dumps(
    {
        "code": 0,
        "data": {
            "order_id": 13400000001,
            "market": "BTCUSDT",
            "side": "buy",
            "type": "limit",
            "amount": "0.0105",
            "price": "63250.50",
            "status": "open",
        },
        "message": "OK",
    },
    separators=(",", ":"),
).encode()


def answer_for(path: str) -> bytes:
    return ANSWERS.get(path, DEFAULT_ANSWER)


def _raw_response(body: bytes) -> bytes:
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


_RAW = {path.encode(): _raw_response(body) for path, body in ANSWERS.items()}
_RAW_DEFAULT = _raw_response(DEFAULT_ANSWER)


class VenueProtocol(asyncio.Protocol):
    """One keep-alive connection; the answer is chosen by path, the body is ignored."""

    def __init__(self) -> None:
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            if self._transport is not None:
                self._transport.close()

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_message_complete(self) -> None:
        path, self._url = self._url.partition(b"?")[0], b""
        assert self._transport is not None
        self._transport.write(_RAW.get(path, _RAW_DEFAULT))
        if not self._parser.should_keep_alive():
            self._transport.close()


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(VenueProtocol, "127.0.0.1", port, backlog=4096)
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set_result, None)
    async with server:
        await stop


def main() -> None:
    parser = argparse.ArgumentParser(description="the benchmark's venue stand-in (raw asyncio)")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(args.port))


if __name__ == "__main__":
    main()

"""Request smuggling and injection, sent as raw bytes: each gets a refusal (the contract
error where the proxy itself answers, the HTTP parser's 400 where the bytes are not HTTP)
and nothing reaches any venue; or it is passed through harmlessly to the configured host."""

from __future__ import annotations

import httpx
import pytest

from proxy.dev.stack import LocalStack
from tests.integration.rawhttp import raw_request

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _sent(stack: LocalStack) -> int:
    return sum(len(sim.recorder.requests) for sim in stack.sims.values())


def _head(stack: LocalStack, request_line: str, *headers: str) -> bytes:
    token = stack.clients["trader"].token
    lines = [request_line, "Host: proxy", f"Proxy-Authorization: Bearer {token}", *headers]
    # surrogateescape: '\xff' stays the single byte 0xff; other non-ASCII goes out as UTF-8.
    return "\r\n".join(lines).encode("utf-8", "surrogateescape")


ORDER_LINE = "POST /coinex/main/v2/spot/order HTTP/1.1"
BALANCE_LINE = "GET /coinex/main/v2/assets/spot/balance HTTP/1.1"


@pytest.mark.parametrize(
    ("name", "line", "headers", "body"),
    [
        ("bare LF inside a header value", BALANCE_LINE, ["X-A: a\nInjected: b"], b""),
        ("CR inside a header value", BALANCE_LINE, ["X-A: a\rb"], b""),
        ("duplicate Content-Length", ORDER_LINE, ["Content-Length: 2", "Content-Length: 5"], b"{}"),
        (
            "Transfer-Encoding with Content-Length",
            ORDER_LINE,
            ["Transfer-Encoding: chunked", "Content-Length: 5"],
            b"{}",
        ),
        ("unknown Transfer-Encoding", ORDER_LINE, ["Transfer-Encoding: xchunked"], b"{}"),
        ("oversized header", BALANCE_LINE, ["X-Big: " + "a" * 200_000], b""),
        ("too many headers", BALANCE_LINE, [f"X-H{i}: v" for i in range(500)], b""),
        ("oversized query", "GET /coinex/main/v2/x?q=" + "a" * 20_000 + " HTTP/1.1", [], b""),
        ("invalid UTF-8 in path", "GET /coinex/main/v2/\udcff\udcfe HTTP/1.1", [], b""),
        ("unicode look-alike dot segment", "GET /coinex/main/v2/\u2024\u2024/withdraw HTTP/1.1", [], b""),
        (
            "absolute-form target",
            "GET http://evil.example/coinex/main/v2/assets/spot/balance HTTP/1.1",
            [],
            b"",
        ),
        ("encoded-encoded slash", "GET /coinex/main/v2/assets%252fwithdraw HTTP/1.1", [], b""),
    ],
)
async def test_refused_and_nothing_sent(
    stack: LocalStack, name: str, line: str, headers: list[str], body: bytes
):
    before = _sent(stack)
    if body and not any(h.lower().startswith(("content-length", "transfer-encoding")) for h in headers):
        headers = [*headers, f"Content-Length: {len(body)}"]
    response = await raw_request(stack.proxy_url, _head(stack, line, *headers), body)
    assert response.status == 400, name
    if response.headers.get("content-type") == "application/json":
        assert response.json()["error"]["code"] == "bad_request"
        assert response.headers["x-signing-proxy-error"] == "bad_request"
    assert _sent(stack) == before, name
    async with httpx.AsyncClient() as http:  # and the proxy is still healthy
        ok = await http.get(stack.url("coinex", "/v2/assets/spot/balance"), headers=stack.headers())
    assert ok.status_code == 200


async def test_conflicting_host_cannot_change_the_upstream(stack: LocalStack) -> None:
    head = _head(stack, BALANCE_LINE).replace(b"Host: proxy", b"Host: evil.example")
    response = await raw_request(stack.proxy_url, head + b"\r\nX-Forwarded-Host: evil.example")
    assert response.status == 200
    seen = stack.sims["coinex"].recorder.requests[-1]
    assert seen.header("host") == stack.settings.venues["coinex"].upstream.removeprefix("http://")
    assert "evil.example" not in str(seen.headers)


@pytest.mark.parametrize(
    ("venue", "path"),
    [("haqqex", "/api/v1/orders"), ("invex", "/trading/v1/orders"), ("evedex", "/api/v2/order/limit")],
)
async def test_json_bombs_are_refused(stack: LocalStack, venue: str, path: str) -> None:
    before = _sent(stack)
    bomb = b"[" * 200_000 + b"]" * 200_000  # under the 1 MiB cap; would crash an unbounded parser
    async with httpx.AsyncClient(timeout=20) as http:
        response = await http.post(stack.url(venue, path), content=bomb, headers=stack.headers())
        assert response.status_code == 400
        assert response.headers["x-signing-proxy-error"] == "bad_request"
        assert _sent(stack) == before
        ok = await http.get(stack.url("coinex", "/v2/assets/spot/balance"), headers=stack.headers())
    assert ok.status_code == 200

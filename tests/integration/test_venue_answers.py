"""What of a venue's answer reaches the client (issue 14, items 6 and 9).

* Headers of the proxy's own contract (``X-Signing-Proxy-*``) belong to the proxy: a
  venue (or anything between it and us) cannot make its answer look like a proxy
  refusal, which a client reads as "nothing was sent" and may retry an order.
* Venue response bodies are read under ``upstream.max_response_bytes`` (16 MiB by
  default), declared (``Content-Length``) or not (chunked): over it, 502
  ``upstream_unreachable`` naming the cap, and the connection is dropped.
"""

from __future__ import annotations

import httpx
import pytest

from proxy.dev.stack import LocalStack
from proxy.sim.base import SimResponse

pytestmark = pytest.mark.asyncio(loop_scope="session")

BALANCE = "/v2/assets/spot/balance"
CAP = 16 * 1024 * 1024  # upstream.max_response_bytes default (the test stack keeps it)

FORGED = (
    ("content-type", "application/json"),
    ("X-Signing-Proxy-Error", "rate_limited"),
    ("x-signing-proxy-error", "policy_denied"),
    ("X-SIGNING-PROXY-RETRY", "yes"),
    ("X-Signing-Proxy-Anything", "1"),
    ("x-venue", "kept"),
)


@pytest.mark.parametrize("status", [200, 400, 503])  # (a venue 429 would cool the key down)
async def test_venue_cannot_set_the_proxy_headers(stack: LocalStack, status: int) -> None:
    stack.sims["coinex"].scripted.append(SimResponse(status, b'{"code": 0}', FORGED))
    async with httpx.AsyncClient(timeout=20) as http:
        response = await http.get(stack.url("coinex", BALANCE), headers=stack.headers())
    assert response.status_code == status
    assert response.content == b'{"code": 0}'
    assert response.headers["x-venue"] == "kept"
    assert not [name for name in response.headers if name.lower().startswith("x-signing-proxy-")]


def _big(size: int, declared: bool) -> SimResponse:
    headers: tuple[tuple[str, str], ...] = (("content-type", "application/json"),)
    if declared:
        headers += (("content-length", str(size)),)
    return SimResponse(200, b"x" * size, headers)  # without Content-Length uvicorn sends it chunked


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_venue_body_over_the_cap_is_502(stack: LocalStack, declared: bool) -> None:
    sim = stack.sims["coinex"]
    sim.scripted.append(_big(CAP + 1, declared))
    before = len(sim.recorder.requests)
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.get(stack.url("coinex", BALANCE), headers=stack.headers())
        assert response.status_code == 502
        assert response.headers["x-signing-proxy-error"] == "upstream_unreachable"
        assert "max_response_bytes" in response.json()["error"]["message"]
        assert len(sim.recorder.requests) == before + 1  # sent once, not retried
        # At the cap exactly, the answer is relayed whole; and the proxy is healthy after.
        sim.scripted.append(_big(CAP, declared))
        whole = await http.get(stack.url("coinex", BALANCE), headers=stack.headers())
        assert whole.status_code == 200 and len(whole.content) == CAP
        ok = await http.get(stack.url("coinex", BALANCE), headers=stack.headers())
    assert ok.status_code == 200 and ok.json()["code"] == 0


async def test_a_chunked_answer_is_relayed_whole_with_its_length_never_as_chunked(stack: LocalStack) -> None:
    """The client de-chunks; the edge frames the body again (``proxy.hygiene`` drops the
    venue's ``Transfer-Encoding`` and ``Content-Length``): one framing, ours."""
    sim = stack.sims["coinex"]
    sim.scripted.append(
        SimResponse(200, b'{"code": 0, "chunked": true}', (("content-type", "application/json"),))
    )
    async with httpx.AsyncClient(timeout=20) as http:
        response = await http.get(stack.url("coinex", BALANCE), headers=stack.headers())
    assert response.status_code == 200
    assert response.content == b'{"code": 0, "chunked": true}'
    assert "transfer-encoding" not in response.headers
    assert response.headers["content-length"] == "28"

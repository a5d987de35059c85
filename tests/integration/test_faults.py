"""Faults end in the documented error within a bounded time, the proxy stays healthy,
and a request that may have executed is never re-sent (counted at the upstream)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from proxy.dev.stack import LocalStack
from tests.integration.faultserver import FaultServer

pytestmark = pytest.mark.asyncio(loop_scope="session")

ORDER = {"market": "BTCUSDT", "side": "buy", "type": "limit", "amount": "1", "price": "1"}


@pytest.mark.parametrize(
    ("mode", "code", "status"),
    [
        ("reset_mid_response", "upstream_unreachable", 502),
        ("garbage", "upstream_unreachable", 502),
        ("close_without_answer", "upstream_unreachable", 502),
        ("never_answer", "upstream_timeout", 504),
    ],
)
async def test_upstream_faults(
    stack: LocalStack, faulty: FaultServer, mode: str, code: str, status: int
) -> None:
    faulty.mode = mode
    before = faulty.requests
    try:
        async with httpx.AsyncClient(timeout=15) as http:
            response = await asyncio.wait_for(
                http.post(stack.url("coinex-faulty", "/v2/spot/order"), json=ORDER, headers=stack.headers()),
                timeout=10,  # bounded: upstream.timeout_s is 2 in the test stack
            )
            assert response.status_code == status
            assert response.headers["x-signing-proxy-error"] == code
            assert faulty.requests == before + 1  # sent once, never re-sent
            faulty.mode = "ok"
            healthy = await http.post(
                stack.url("coinex-faulty", "/v2/spot/order"), json=ORDER, headers=stack.headers()
            )
            assert healthy.status_code == 200
    finally:
        faulty.mode = "ok"


async def test_get_is_not_retried_by_default_either(stack: LocalStack, faulty: FaultServer) -> None:
    faulty.mode = "reset_mid_response"
    before = faulty.requests
    try:
        async with httpx.AsyncClient(timeout=15) as http:
            response = await http.get(
                stack.url("coinex-faulty", "/v2/assets/spot/balance"), headers=stack.headers()
            )
        assert response.status_code == 502
        assert faulty.requests == before + 1
    finally:
        faulty.mode = "ok"


async def test_untrusted_tls_certificate_is_refused(stack: LocalStack, untrusted_tls: FaultServer) -> None:
    async with httpx.AsyncClient(timeout=15) as http:
        response = await http.get(stack.url("coinex-tls", "/v2/assets/spot/balance"), headers=stack.headers())
    assert response.status_code == 502
    assert response.headers["x-signing-proxy-error"] == "upstream_unreachable"
    assert untrusted_tls.requests == 0  # nothing signed was sent over the untrusted channel

"""Identity comes from the socket peer only (issue 14, item 2).

uvicorn rewrites ``scope["client"]`` from ``X-Forwarded-For`` when the peer is trusted
(127.0.0.1 by default, anyone with ``FORWARDED_ALLOW_IPS="*"``), and that address decides
the ``loopback: true`` identity. The proxy runs with proxy headers off, so no header can
move a caller in or out of loopback identity. Tested on the real served process with
``FORWARDED_ALLOW_IPS="*"`` in its environment: a loopback caller claiming a remote
address keeps its loopback identity (with proxy headers on it lost it: 401), and none of
the forwarding headers reaches the venue.
"""

from __future__ import annotations

import httpx
import pytest

from proxy.dev.stack import LocalStack
from tests.integration.served import served_copy

pytestmark = pytest.mark.asyncio(loop_scope="session")

SIDECAR = {
    "sidecar": {"loopback": True, "allow": [{"venue": "coinex", "methods": ["GET"], "paths": ["/**"]}]}
}

CLAIMS = [
    {"X-Forwarded-For": "203.0.113.9"},
    {"X-Forwarded-For": "203.0.113.9, 127.0.0.1"},
    {"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "https"},
    {"Forwarded": "for=203.0.113.9;proto=https"},
    {"X-Real-IP": "203.0.113.9"},
    {"X-Forwarded-For": "203.0.113.9", "Forwarded": "for=203.0.113.9", "X-Real-IP": "203.0.113.9"},
]


async def test_forwarding_headers_never_change_identity(stack: LocalStack, tmp_path) -> None:
    proxy = await served_copy(stack, tmp_path, clients=SIDECAR, env={"FORWARDED_ALLOW_IPS": "*"}).start()
    url = f"{proxy.url}/coinex/main/v2/assets/spot/balance"
    recorder = stack.sims["coinex"].recorder
    try:
        async with httpx.AsyncClient(timeout=20) as http:
            for claim in CLAIMS:
                before = len(recorder.requests)
                response = await http.get(url, headers=claim)
                assert response.status_code == 200, claim  # the socket peer is loopback: the sidecar
                assert len(recorder.requests) == before + 1
                seen = {k.lower() for k, _ in recorder.requests[-1].headers}
                assert not seen & {"x-forwarded-for", "x-forwarded-proto", "forwarded", "x-real-ip"}, claim
            # A token still wins over loopback, whatever the headers claim.
            bad = await http.get(url, headers={"Proxy-Authorization": "Bearer nope", **CLAIMS[0]})
            assert bad.status_code == 401
    finally:
        await proxy.stop()

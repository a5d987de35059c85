"""A whole tour at DEBUG level: no credential, client token or signature in any log line
or error body. The demo credentials are fresh random values, so each is a canary."""

from __future__ import annotations

import httpx
import pytest

from proxy.dev.stack import LocalStack

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_no_secret_in_logs_or_error_bodies(stack: LocalStack, captured_logs) -> None:
    bodies = []
    async with httpx.AsyncClient(timeout=10) as http:
        for venue in ("coinex", "icrypex", "haqqex"):
            for path in ("/v2/assets/spot/balance", "/sapi/v1/wallet", "/api/v1/balances", "/x/withdraw"):
                response = await http.get(stack.url(venue, path), headers=stack.headers())
                bodies.append(response.text)
            bodies.append(
                (await http.get(stack.url(venue, "/x", account="absent"), headers=stack.headers())).text
            )
        bodies.append((await http.get(stack.url("coinex-dead", "/v2/x"), headers=stack.headers())).text)
        bodies.append(
            (
                await http.get(
                    stack.url("coinex", "/v2/x"), headers={"Proxy-Authorization": "Bearer wrong-token"}
                )
            ).text
        )
    signatures = [
        value
        for sim in stack.sims.values()
        for request in sim.recorder.requests
        for name, value in request.headers
        if name in ("x-coinex-sign", "icx-sign", "x-api-sign")
    ]
    canaries = [v for fields in stack.credentials.values() for k, v in fields.items() if k != "api_key"]
    canaries += [client.token for client in stack.clients.values()] + signatures + [stack.vault.root_token]
    logs = captured_logs.getvalue()
    assert '"msg": "request"' in logs  # the request log was captured at all
    assert len(signatures) >= 6
    for canary in canaries:
        assert canary not in logs
        assert all(canary not in body for body in bodies)

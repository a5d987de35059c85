"""Canary secrets for a whole run at DEBUG, with forced failures and tracebacks: no key,
secret, private key, wallet key, client token, session token or signature appears in any
log line, metrics output, error body, or the ``repr()`` of any object the proxy built.

Its own stack (all five venues, fresh random keys: each one is a canary), plus broken
accounts whose secrets make each signer fail with a library exception."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from proxy.dev.stack import LocalStack
from proxy.sim.base import SimResponse
from proxy.sim.samples import ORDERS, READS

pytestmark = pytest.mark.asyncio(loop_scope="session")

BROKEN = {
    "coinex": {"api_key": "k-broken", "secret_key": "x"},  # signs fine, the venue refuses it
    "icrypex": {"api_key": "k-broken", "secret_key": "%%%not-base64-CANARY-ICX%%%"},
    "invex": {"api_key": "k-broken", "private_key": "00CANARYnotadersequence"},
    "evedex": {"wallet_private_key": "0xCANARYCANARY", "api_key": "k-broken"},
    "haqqex": {"api_key": "k-broken", "secret_key": "CANARY-HAQQEX-broken"},
}
SIGNATURE_HEADERS = ("x-coinex-sign", "icx-sign", "x-api-sign", "authorization")


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def canary_stack():
    async with LocalStack(unseeded_accounts=("broken",), extra_config={"log_level": "DEBUG"}) as stack:
        for scheme, fields in BROKEN.items():
            stack.vault.put_secret(f"signing-proxy/{scheme}/broken", fields)
        yield stack


def _canaries(stack: LocalStack) -> list[str]:
    values = [v for fields in stack.credentials.values() for k, v in fields.items() if k != "api_key"]
    values += [v for fields in BROKEN.values() for k, v in fields.items() if k != "api_key"]
    values += [client.token for client in stack.clients.values()] + [stack.vault.root_token]
    for sim in stack.sims.values():
        for request in sim.recorder.requests:
            values += [v.removeprefix("Bearer ") for k, v in request.headers if k in SIGNATURE_HEADERS]
            if request.body.startswith(b"{"):
                body = json.loads(request.body)
                if isinstance(body, dict) and isinstance(body.get("signature"), str):
                    values.append(body["signature"])
            if "signature=" in request.query:
                values.append(request.query.rsplit("signature=", 1)[1])
    return [v for v in values if len(v) >= 8]


def _proxy_objects(root: Any) -> Iterator[Any]:
    """Every object reachable from ``root`` whose class the proxy defines."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, str | bytes | int | float | bool | type(None)):
            continue
        seen.add(id(obj))
        if type(obj).__module__.startswith("proxy."):
            yield obj
        if isinstance(obj, dict):
            stack.extend(obj.values())
        elif isinstance(obj, list | tuple | set | frozenset):
            stack.extend(obj)
        elif type(obj).__module__.startswith("proxy."):
            slots = [getattr(obj, s) for s in getattr(type(obj), "__slots__", ()) if hasattr(obj, s)]
            stack.extend([*vars(obj).values(), *slots] if hasattr(obj, "__dict__") else slots)


async def test_canaries_never_leak(canary_stack: LocalStack, captured_logs) -> None:
    stack = canary_stack
    evedex = stack.sims["evedex"]
    bodies: list[str] = []
    async with httpx.AsyncClient(timeout=20) as http:
        for scheme in READS:
            for account in ("main", "broken"):
                bodies.append(
                    (await http.get(stack.url(scheme, READS[scheme], account), headers=stack.headers())).text
                )
                path, order = ORDERS[scheme]
                bodies.append(
                    (
                        await http.post(stack.url(scheme, path, account), json=order, headers=stack.headers())
                    ).text
                )
        # EVEDEX: expired venue tokens force refresh + replay; then the login API fails outright.
        evedex.scripted += [SimResponse(401, b'{"message":"Unauthorized"}')]
        bodies.append((await http.get(stack.url("evedex", READS["evedex"]), headers=stack.headers())).text)
        # A bug-shaped failure whose exception text quotes a secret (the server would print
        # the traceback if the proxy let it escape).
        secret = stack.credentials["coinex"]["secret_key"]
        original = stack.app.pipeline.store.get

        async def exploding(venue: str, account: str) -> Any:
            raise RuntimeError(f"simulated bug holding {secret}")

        stack.app.pipeline.store.get = exploding  # type: ignore[method-assign]
        try:
            broken = await http.get(stack.url("coinex", READS["coinex"]), headers=stack.headers())
        finally:
            stack.app.pipeline.store.get = original  # type: ignore[method-assign]
        assert broken.status_code == 500 and broken.headers["x-signing-proxy-error"] == "internal_error"
        bodies.append(broken.text)
        bodies.append(
            (await http.get(stack.url("coinex", "/v2/x"), headers={"Proxy-Authorization": "Bearer no"})).text
        )
    await asyncio.sleep(0.05)
    # Refusals on venue routes come in each venue's envelope, which names the proxy's code.
    # The broken keys really did make signers fail (each venue's envelope names the code).
    assert sum("signing-proxy signing_failed: " in body for body in bodies) >= 5
    logs = captured_logs.getvalue()
    assert '"msg": "request"' in logs and '"level": "debug"' in logs  # really captured, at DEBUG
    metrics = stack.app.metrics.render().decode()
    reprs = "\n".join(repr(obj) for obj in _proxy_objects(stack.app))
    assert "Credentials" in reprs and "Signer" in reprs  # the walk reached the secret holders
    for canary in _canaries(stack):
        assert canary not in logs, "a secret reached the logs"
        assert canary not in metrics, "a secret reached the metrics"
        assert all(canary not in body for body in bodies), "a secret reached an error body"
        assert canary not in reprs, "a secret is visible in a repr"

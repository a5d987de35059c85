"""The policy step inside ``Pipeline.handle``: when the body is read, what reaches the venue,
and what the request audit records in report mode. In-process: a strict simulated CoinEx
behind an in-process upstream, credentials in memory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from proxy.errors import PolicyDenied, Unauthenticated
from proxy.messages import Incoming
from proxy.pipeline import Audit
from tests.factories import build_pipeline, simulated

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "policies"
ORIGIN = "http://coinex.sim"
ORDER = {
    "market": "BTCUSDT",
    "market_type": "SPOT",
    "side": "buy",
    "type": "limit",
    "amount": "1",
    "price": "1",
}


class Body:
    """A ``read_body`` that counts its calls."""

    def __init__(self, payload: object = None) -> None:
        self.data = b"" if payload is None else json.dumps(payload).encode()
        self.calls = 0

    async def __call__(self) -> bytes:
        self.calls += 1
        return self.data


@pytest.fixture
def world():
    world = simulated(["coinex"])
    return build_pipeline(FIXTURES / "trading", world.venues, world.store, world.upstream), world.upstream


def _request(method: str, path: str, token: str | None) -> Incoming:
    headers = (("content-type", "application/json"),)
    if token is not None:
        headers += (("proxy-authorization", f"Bearer {token}"),)
    target, _, query = path.partition("?")
    return Incoming(method, f"/coinex/main{target}".encode(), query.encode(), headers, "10.0.0.1")


async def test_unauthenticated_request_never_reads_the_body(world) -> None:
    pipeline, upstream = world
    body = Body(ORDER)
    with pytest.raises(Unauthenticated):
        await pipeline.handle(_request("POST", "/v2/spot/order", "wrong"), body, Audit())
    assert body.calls == 0 and not upstream.sent


async def test_path_denied_request_never_reads_the_body(world) -> None:
    pipeline, upstream = world
    body = Body(ORDER)
    audit = Audit()
    with pytest.raises(PolicyDenied, match=r"deny rule mm\.deny\[0\]"):
        await pipeline.handle(_request("POST", "/v2/assets/withdraw", "mm-trading"), body, audit)
    assert body.calls == 0 and not upstream.sent


async def test_field_rule_reads_the_body_once_and_forwards_it_unchanged(world) -> None:
    pipeline, upstream = world
    body = Body(ORDER)
    audit = Audit()
    reply = await pipeline.handle(_request("POST", "/v2/spot/order", "mm-trading"), body, audit)
    assert reply.status == 200 and json.loads(reply.body)["code"] == 0  # the strict venue verified it
    assert body.calls == 1
    assert upstream.sent[-1].body == body.data
    assert audit.decision is not None and audit.decision.startswith("allow rule mm.allow[1]")
    assert audit.would_deny is None


async def test_field_denial_is_403_and_nothing_is_sent(world) -> None:
    pipeline, upstream = world
    body = Body(ORDER | {"amount": "2", "price": "65000"})
    audit = Audit()
    with pytest.raises(PolicyDenied) as info:
        await pipeline.handle(_request("POST", "/v2/spot/order", "mm-trading"), body, audit)
    assert "notional 130000 (amount 2 * price 65000) is above max 50000" in info.value.message
    assert audit.decision == info.value.reason and audit.rule == "mm.allow[1] in desk.yaml"
    assert body.calls == 1 and not upstream.sent


async def test_report_mode_lets_it_through_and_audits_the_would_deny(world) -> None:
    pipeline, upstream = world
    body = Body(ORDER | {"market": "DOGEUSDT"})
    audit = Audit()
    reply = await pipeline.handle(_request("POST", "/v2/spot/order", "report-first-token"), body, audit)
    assert reply.status == 200 and len(upstream.sent) == 1
    assert audit.would_deny is not None
    assert "market 'DOGEUSDT' is not one of [BTCUSDT]" in audit.would_deny
    assert audit.rule == "report-first.allow[0] in desk.yaml"


async def test_query_constraint_needs_no_body(world) -> None:
    pipeline, upstream = world
    body = Body()
    reply = await pipeline.handle(
        _request("GET", "/v2/spot/pending-order?market=BTCUSDT", "mm-trading"), body, Audit()
    )
    assert reply.status == 200 and upstream.sent[-1].target == "/v2/spot/pending-order?market=BTCUSDT"
    assert body.calls == 1  # read by the policy step (empty), not a second time

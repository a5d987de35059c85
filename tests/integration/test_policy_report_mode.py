"""Report mode end to end: real OpenBao, strict simulated venues on sockets, the proxy started
from a real policy file. A report-mode rule lets an order it would refuse reach the venue
(which verifies the signature) and the request's log line records ``would_deny`` and why;
the same constraints in enforce mode refuse the order before anything is sent."""

from __future__ import annotations

import json
import secrets
from typing import Any

import httpx
import pytest
import pytest_asyncio

from proxy.dev.stack import LocalStack, StackClient
from proxy.identity import token_sha256

pytestmark = pytest.mark.asyncio(loop_scope="session")

COINEX_ORDER = {"market": "BTCUSDT", "market_type": "SPOT", "side": "buy", "type": "limit", "amount": "0.1"}
ICRYPEX_ORDER = {"symbol": "BTCTRY", "side": "BUY", "type": "LIMIT", "quantity": "0.001"}


class ReportStack(LocalStack):
    """The demo stack plus a ``desk`` client: CoinEx orders in report mode, Icrypex enforced."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.clients["desk"] = StackClient("desk", "desk-" + secrets.token_urlsafe(16))

    def policy(self) -> dict[str, Any]:
        document = super().policy()
        limits = {"notional": {"max": "50000"}}
        document["clients"]["desk"] = {
            "token_sha256": token_sha256(self.clients["desk"].token),
            "allow": [
                {
                    "venue": "coinex",
                    "methods": ["POST"],
                    "paths": ["/v2/spot/order"],
                    "fields": {"market": {"in": ["BTCUSDT", "ETHUSDT"]}},
                    **limits,
                    "mode": "report",
                },
                {
                    "venue": "icrypex",
                    "methods": ["POST"],
                    "paths": ["/sapi/v1/orders"],
                    "fields": {"symbol": {"in": ["BTCTRY"]}},
                    "notional": {"max": "100000"},
                },
            ],
            "deny": [{"venue": "*", "paths": ["**/withdraw*"]}],
        }
        return document


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def report_stack():
    async with ReportStack(schemes=("coinex", "icrypex")) as running:
        yield running


def _request_lines(logs: str) -> list[dict[str, Any]]:
    """The access log lines, once per request (the capture sees a record at two loggers)."""
    lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    return list({line["request_id"]: line for line in lines if line.get("msg") == "request"}.values())


async def _post(stack: LocalStack, venue: str, path: str, body: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.post(stack.url(venue, path), json=body, headers=stack.headers("desk"))


async def test_report_mode_order_reaches_the_venue_and_logs_would_deny(report_stack, captured_logs) -> None:
    sim = report_stack.sims["coinex"]
    before = len(sim.recorder.requests)
    body = COINEX_ORDER | {"market": "DOGEUSDT", "amount": "40", "price": "65000"}
    response = await _post(report_stack, "coinex", "/v2/spot/order", body)
    assert response.status_code == 200 and response.json()["code"] == 0, response.text  # signature verified
    assert len(sim.recorder.requests) == before + 1
    assert json.loads(sim.recorder.requests[-1].body)["market"] == "DOGEUSDT"
    [line] = _request_lines(captured_logs.getvalue())
    assert line["client"] == "desk" and line["status"] == 200
    assert line["decision"].startswith("allow rule desk.allow[0] in demo.yaml is in report mode")
    assert "market 'DOGEUSDT' is not one of [BTCUSDT, ETHUSDT]" in line["would_deny"]


async def test_report_mode_order_within_limits_logs_no_would_deny(report_stack, captured_logs) -> None:
    response = await _post(report_stack, "coinex", "/v2/spot/order", COINEX_ORDER | {"price": "30000"})
    assert response.status_code == 200 and response.json()["code"] == 0
    [line] = _request_lines(captured_logs.getvalue())
    assert line["would_deny"] is None and line["decision"].startswith("allow rule desk.allow[0]")


async def test_enforced_constraints_refuse_before_sending(report_stack, captured_logs) -> None:
    sim = report_stack.sims["icrypex"]
    before = len(sim.recorder.requests)
    body = ICRYPEX_ORDER | {"price": "2000000", "quantity": "1"}
    response = await _post(report_stack, "icrypex", "/sapi/v1/orders", body)
    assert response.status_code == 403
    assert response.headers["x-signing-proxy-error"] == "policy_denied"
    message = response.json()["error"]["message"]
    assert "notional 2000000 (quantity 1 * price 2000000) is above max 100000" in message
    assert len(sim.recorder.requests) == before
    [line] = _request_lines(captured_logs.getvalue())
    assert line["error"] == "policy_denied" and line["would_deny"] is None


async def test_enforced_order_within_limits_is_signed_and_accepted(report_stack) -> None:
    response = await _post(report_stack, "icrypex", "/sapi/v1/orders", ICRYPEX_ORDER | {"price": "2000000"})
    assert response.status_code == 200, response.text

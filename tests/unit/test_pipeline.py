"""The pipeline and the ASGI edge in-process: simulated venues behind an in-process
upstream, credentials in memory, no sockets."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from proxy.edge import ProxyApp
from proxy.messages import UpstreamReply
from tests.factories import build_pipeline, simulated
from tests.unit.inprocess import proxy_client

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "policies"
MM = {"Proxy-Authorization": "Bearer mm-token"}


@pytest.fixture
def world():
    world = simulated(("coinex", "icrypex", "haqqex"))
    pipeline = build_pipeline(FIXTURES / "basic", world.venues, world.store, world.upstream)
    return {
        "app": ProxyApp(pipeline, max_body_bytes=1024),
        "sims": world.sims,
        "upstream": world.upstream,
        "store": world.store,
    }


async def test_signed_request_accepted_by_strict_venue(world) -> None:
    async with proxy_client(world["app"]) as client:
        response = await client.get("/coinex/main/v2/spot/pending-order?market=BTCUSDT", headers=MM)
    assert response.status_code == 200 and response.json()["code"] == 0
    assert world["sims"]["coinex"].recorder.requests[-1].target == "/v2/spot/pending-order?market=BTCUSDT"


async def test_loopback_client_only_from_loopback(world) -> None:
    async with proxy_client(world["app"], peer="127.0.0.1") as client:
        ok = await client.get("/haqqex/main/api/v1/balances")
    async with proxy_client(world["app"], peer="10.9.9.9") as client:
        refused = await client.get("/haqqex/main/api/v1/balances")
    assert ok.status_code == 200
    assert refused.status_code == 401 and refused.headers["x-signing-proxy-error"] == "unauthenticated"


async def test_unsignable_body_is_bad_request_and_nothing_sent(world) -> None:
    async with proxy_client(world["app"], peer="127.0.0.1") as client:
        response = await client.post("/haqqex/main/api/v1/orders", content=b"{not json")
    assert response.status_code == 400 and response.headers["x-signing-proxy-error"] == "bad_request"
    assert world["upstream"].sent == []


async def test_body_cap_from_content_length(world) -> None:
    async with proxy_client(world["app"]) as client:
        response = await client.post("/coinex/main/v2/spot/order", content=b"x" * 2000, headers=MM)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"
    assert world["upstream"].sent == []


async def test_signer_failure_is_500_without_key_material(world) -> None:
    world["store"].put("icrypex", "main", {"api_key": "k", "secret_key": "not*base64*CANARY"})
    async with proxy_client(world["app"]) as client:
        response = await client.get("/icrypex/main/sapi/v1/wallet", headers=MM)
    assert response.status_code == 500
    assert response.headers["x-signing-proxy-error"] == "signing_failed"
    assert "CANARY" not in response.text
    assert world["upstream"].sent == []


async def test_account_bucket_shared_by_clients(world) -> None:
    # coinex/main allows burst 20 for every client of the key together.
    async with proxy_client(world["app"]) as client:
        statuses = [
            (await client.get("/coinex/main/v2/spot/pending-order", headers=MM)).status_code
            for _ in range(22)
        ]
    assert statuses.count(200) == 20 and statuses[-1] == 429
    assert len(world["upstream"].sent) == 20


async def test_error_body_shape(world) -> None:
    async with proxy_client(world["app"]) as client:
        response = await client.get("/coinex/main/v2/assets/withdraw", headers=MM)
    body = json.loads(response.content)
    assert set(body["error"]) == {"code", "message", "request_id"}
    assert body["error"]["request_id"] == response.headers["x-request-id"]
    assert body["error"]["message"].startswith("denied by policy: deny rule market-maker.deny[0]")


class _Answers:
    """A pipeline that answers every request with a venue reply carrying its own request id."""

    async def handle(self, request, read_body, audit) -> UpstreamReply:
        await read_body()
        return UpstreamReply(200, (("x-request-id", "venue-1"), ("content-type", "text/plain")), b"ok")


@pytest.mark.parametrize(("sent", "expect"), [("trace-7", "trace-7"), (None, None)])
async def test_one_request_id_header_ours_not_the_venues(sent: str | None, expect: str | None) -> None:
    app = ProxyApp(_Answers(), max_body_bytes=1024)  # type: ignore[arg-type]
    async with proxy_client(app) as client:
        response = await client.get("/coinex/main/x", headers={"X-Request-Id": sent} if sent else {})
    (ours,) = response.headers.get_list("x-request-id")
    assert ours == expect if expect else re.fullmatch(r"[0-9a-f]{32}", ours)
    assert [k for k, _ in response.headers.multi_items()] == [
        "content-type",
        "x-request-id",
        "content-length",
    ]

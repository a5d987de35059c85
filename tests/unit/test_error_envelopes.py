"""The proxy's refusals in each venue's error shape (``proxy.signers.envelopes``), in-process.

The CoinEx codes are checked against ccxt 4.5.85's own error table (an independent oracle:
the SDK a trader runs), the other shapes against the simulated venues' error bodies.
"""

from __future__ import annotations

import json
from pathlib import Path

import ccxt
import pytest

from proxy.credentials.memory import MemoryStore
from proxy.edge import ProxyApp
from proxy.errors import ERROR_HEADER, ProxyError, render_error
from proxy.settings import Settings
from proxy.signers import ENVELOPES, SIGNERS
from proxy.signers.envelopes import COINEX_CODES, ICRYPEX_CODES
from proxy.sim.credentials import demo_credentials
from tests.factories import build_pipeline, simulated
from tests.unit.inprocess import proxy_client

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "policies"
MM = {"Proxy-Authorization": "Bearer mm-token"}
CONFIGURED = ("coinex", "icrypex", "haqqex")


def _all_codes() -> set[str]:
    leaves, todo = set(), [ProxyError]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls is not ProxyError:
            leaves.add(cls.code)
    return leaves


def _app(envelopes=ENVELOPES) -> ProxyApp:
    world = simulated(CONFIGURED)
    pipeline = build_pipeline(FIXTURES / "basic", world.venues, world.store, world.upstream)
    return ProxyApp(pipeline, max_body_bytes=1024, envelopes=envelopes)


def test_every_scheme_has_an_envelope_and_every_code_a_venue_code() -> None:
    assert set(ENVELOPES) == set(SIGNERS)
    assert set(COINEX_CODES) == _all_codes()
    assert set(ICRYPEX_CODES) == _all_codes()


@pytest.mark.parametrize(
    ("proxy_code", "exception"),
    [
        ("unauthenticated", ccxt.AuthenticationError),
        ("policy_denied", ccxt.PermissionDenied),
        ("rate_limited", ccxt.RateLimitExceeded),
        ("bad_request", ccxt.BadRequest),
        ("body_too_large", ccxt.BadRequest),
        ("credentials_unavailable", ccxt.ExchangeNotAvailable),
        ("upstream_unreachable", ccxt.ExchangeNotAvailable),
        ("upstream_timeout", ccxt.RequestTimeout),
        ("signing_failed", ccxt.ExchangeError),
    ],
)
def test_coinex_codes_are_the_ones_ccxt_maps_to_the_right_exception(proxy_code: str, exception) -> None:
    table = ccxt.coinex().exceptions["exact"]
    assert table[str(COINEX_CODES[proxy_code])] is exception


def test_render_keeps_status_and_headers_and_reshapes_only_the_body() -> None:
    from proxy.errors import RateLimited

    error = RateLimited("client:mm", 1.2)
    plain = render_error(error, "rid-1")
    wrapped = render_error(error, "rid-1", ENVELOPES["coinex"])
    assert wrapped.status == plain.status == 429
    assert wrapped.headers == plain.headers
    assert (ERROR_HEADER, "rate_limited") in wrapped.headers and ("retry-after", "2") in wrapped.headers
    body = json.loads(wrapped.body)
    assert body["code"] == 4213 and body["data"] == {}
    reason = "rate limit exhausted: client:mm; retry after 1.200s"
    assert body["message"] == f"signing-proxy rate_limited: {reason}"
    assert body["error"] == json.loads(plain.body)["error"]


DENIED = "signing-proxy policy_denied: denied by policy: x"


@pytest.mark.parametrize(
    ("scheme", "expected"),
    [
        ("icrypex", {"code": "PERMISSION_DENIED", "message": DENIED}),
        ("invex", {"detail": DENIED}),
        ("haqqex", {"statusCode": 403, "message": DENIED, "error": "Forbidden"}),
        ("evedex", {"message": DENIED, "error": DENIED}),
    ],
)
def test_each_venue_shape(scheme: str, expected: dict) -> None:
    from proxy.errors import PolicyDenied

    body = json.loads(render_error(PolicyDenied("x"), "rid-2", ENVELOPES[scheme]).body)
    contract = {"code": "policy_denied", "message": "denied by policy: x", "request_id": "rid-2"}
    if scheme in ("icrypex", "invex"):
        expected = {**expected, "error": contract}  # the contract object rides along where it fits
    assert body == expected


async def test_policy_denial_on_coinex_route_is_coinex_shaped() -> None:
    async with proxy_client(_app()) as client:
        response = await client.get("/coinex/main/v2/assets/withdraw", headers=MM)
    assert response.status_code == 403
    assert response.headers[ERROR_HEADER] == "policy_denied"
    body = response.json()
    assert body["code"] == 4512
    assert body["message"].startswith("signing-proxy policy_denied: denied by policy: deny rule market-maker")
    assert body["error"]["request_id"] == response.headers["x-request-id"]


async def test_rate_limit_and_body_cap_on_venue_routes() -> None:
    app = _app()
    async with proxy_client(app) as client:
        big = await client.post("/coinex/main/v2/spot/order", content=b"x" * 2000, headers=MM)
        statuses = [await client.get("/coinex/main/v2/spot/pending-order", headers=MM) for _ in range(21)]
    assert big.status_code == 413 and big.json()["code"] == 4004
    limited = statuses[-1]
    assert limited.status_code == 429 and limited.json()["code"] == 4213
    assert limited.headers[ERROR_HEADER] == "rate_limited" and limited.headers["retry-after"]


async def test_icrypex_and_haqqex_routes_take_their_shapes() -> None:
    async with proxy_client(_app()) as client:
        icx = await client.post("/icrypex/main/sapi/v1/orders", json={}, headers=MM)
    async with proxy_client(_app(), peer="127.0.0.1") as client:
        haq = await client.post("/haqqex/main/api/v1/orders", content=b"{not json")
    assert icx.status_code == 403 and icx.json()["code"] == "PERMISSION_DENIED"
    assert haq.status_code == 400 and haq.json()["statusCode"] == 400 and haq.json()["error"] == "Bad Request"
    assert haq.json()["message"].startswith("signing-proxy bad_request: ")


async def test_unknown_venue_or_account_stays_plain_for_an_identified_client() -> None:
    async with proxy_client(_app()) as client:
        for path in ("/nope/main/v2/x", "/coinex/other/v2/x"):
            response = await client.get(path, headers=MM)
            assert response.status_code == 404 and set(response.json()) == {"error"}


async def test_401_shape_depends_on_the_path_text_only_never_on_what_is_configured() -> None:
    """A stranger cannot tell a configured venue or account from an unconfigured one."""
    async with proxy_client(_app()) as client:
        configured = await client.get("/coinex/main/v2/spot/pending-order")
        ghost_account = await client.get("/coinex/ghost/v2/spot/pending-order")
        unconfigured_scheme = await client.get("/invex/main/trading/v1/orders")  # invex is not configured
        others = ("/coinex-b/main/x", "/ghost/main/x", "/", "/COINEX/main/x")
        other_names = [await client.get(p) for p in others]
        wrong_token = await client.get("/coinex/main/v2/x", headers={"Proxy-Authorization": "Bearer nope"})

    def shape(response) -> dict:
        body = response.json()
        body.pop("error", None)  # carries the per-request id
        return body

    assert configured.status_code == ghost_account.status_code == wrong_token.status_code == 401
    assert shape(configured) == shape(ghost_account) == shape(wrong_token)
    assert configured.json()["code"] == 4005
    assert configured.json()["message"] == "signing-proxy unauthenticated: missing or unknown client token"
    assert unconfigured_scheme.status_code == 401
    assert unconfigured_scheme.json()["detail"].startswith("signing-proxy unauthenticated")
    for response in other_names:
        assert response.status_code == 401 and set(response.json()) == {"error"}


async def test_switched_off_every_refusal_is_the_plain_contract_body() -> None:
    async with proxy_client(_app(envelopes=None)) as client:
        denied = await client.get("/coinex/main/v2/assets/withdraw", headers=MM)
        stranger = await client.get("/coinex/main/v2/spot/pending-order")
    assert set(denied.json()) == {"error"} and set(stranger.json()) == {"error"}


def test_setting_defaults_on_and_rejects_unknown_keys() -> None:
    venues = {"coinex": {"scheme": "coinex", "upstream": "http://127.0.0.1:1", "accounts": ["main"]}}
    assert Settings.model_validate({"venues": venues}).errors.venue_envelope is True
    off = Settings.model_validate({"venues": venues, "errors": {"venue_envelope": False}})
    assert off.errors.venue_envelope is False
    with pytest.raises(ValueError):
        Settings.model_validate({"venues": venues, "errors": {"venue_envelopes": False}})


@pytest.mark.parametrize(("errors", "shaped"), [({}, True), ({"venue_envelope": False}, False)])
async def test_create_app_wires_the_setting(errors: dict, shaped: bool) -> None:
    from proxy.app import create_app

    venues = {
        scheme: {"scheme": scheme, "upstream": "http://127.0.0.1:1", "accounts": ["main"]}
        for scheme in CONFIGURED
    }
    settings = Settings.model_validate(
        {"venues": venues, "policies": str(FIXTURES / "basic"), "errors": errors}
    )
    store = MemoryStore({("coinex", "main"): demo_credentials("coinex")})
    app = create_app(settings, store=store)
    async with proxy_client(app) as client:
        denied = await client.get("/coinex/main/v2/assets/withdraw", headers=MM)
    assert denied.status_code == 403 and denied.headers[ERROR_HEADER] == "policy_denied"
    assert ("code" in denied.json() and denied.json()["code"] == 4512) is shaped
    assert set(denied.json()) == ({"code", "message", "data", "error"} if shaped else {"error"})


@pytest.mark.parametrize(
    ("status", "coinex", "icrypex"),
    [(429, 4213, "TOO_MANY_REQUESTS"), (418, 4004, "INVALID_REQUEST"), (507, 4003, "INTERNAL_ERROR")],
)
def test_a_refusal_code_without_a_mapping_still_renders(status: int, coinex: int, icrypex: str) -> None:
    refusal = {"code": "future_refusal", "message": "m", "request_id": "r"}  # added later, unmapped
    assert ENVELOPES["coinex"](status, refusal)["code"] == coinex
    assert ENVELOPES["icrypex"](status, refusal)["code"] == icrypex

"""Fuzzing the code that parses client bytes: whatever a client sends, each parser either
accepts it or refuses it with the contract's error; it never raises anything else (a 500,
or worse a crash). Bounded for CI; ``scripts/fuzz.sh`` runs the same properties longer."""

from __future__ import annotations

import contextlib
import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy import jsonjs
from proxy.errors import BadRequest, UnknownRoute
from proxy.messages import Credentials, OutgoingRequest
from proxy.policy.fields import parse_request_fields
from proxy.policy.routing import parse_route
from proxy.signers.base import SignContext
from proxy.signers.evedex.signer import EvedexSigner
from proxy.signers.haqqex import HaqqexSigner
from proxy.signers.invex import InvexSigner
from proxy.sim.credentials import demo_credentials

EXAMPLES = int(os.environ.get("SIGNING_PROXY_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CTX = SignContext("v", "main", 1_700_000_000_000)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
# Bytes that look like JSON often enough to get past the first character.
json_ish = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.text(alphabet='{}[]":,0123456789.eE+-tfnrulasx\\ ', max_size=200).map(str.encode),
    st.integers(min_value=1, max_value=5000).map(lambda n: b"[" * n + b"]" * n),
)

INVEX = InvexSigner()
INVEX_CREDS = Credentials(demo_credentials("invex"))
HAQQEX = HaqqexSigner()
HAQQEX_CREDS = Credentials(demo_credentials("haqqex"))
EVEDEX = EvedexSigner({"mode": "api_key"})
EVEDEX_CREDS = Credentials(demo_credentials("evedex"))
EVEDEX_PATHS = [
    "/api/v2/order/limit",
    "/api/v2/order/market",
    "/api/v2/order/stop-limit",
    "/api/v2/position/BTCUSDT/close",
    "/api/tpsl/BTCUSDT",
    "/api/order/1:ab/limit",
    "/api/v2/order/mass-limit/BTCUSDT",
    "/api/transfer/pf/withdraw",
]


@FUZZ
@given(body=json_ish)
def test_jsonjs_loads(body: bytes) -> None:
    with contextlib.suppress(jsonjs.JSONJSError):
        jsonjs.loads(body)


@FUZZ
@given(body=json_ish, query=st.text(alphabet="abc=&%2+0123456789_", max_size=40))
def test_invex_body_and_query(body: bytes, query: str) -> None:
    for method, target, payload in (
        ("POST", "/trading/v1/orders", body),
        ("GET", f"/trading/v1/orders?{query}", b""),
    ):
        with contextlib.suppress(BadRequest):
            INVEX.sign(OutgoingRequest(method, target, (), payload), INVEX_CREDS, CTX)


@FUZZ
@given(body=json_ish)
def test_haqqex_body(body: bytes) -> None:
    with contextlib.suppress(BadRequest):
        HAQQEX.sign(OutgoingRequest("POST", "/api/v1/orders", (), body), HAQQEX_CREDS, CTX)


@FUZZ
@given(order=json_values, path=st.sampled_from(EVEDEX_PATHS), raw=json_ish)
def test_evedex_order_bodies(order: object, path: str, raw: bytes) -> None:
    for body in (json.dumps(order).encode(), raw):
        with contextlib.suppress(BadRequest):
            EVEDEX.sign(OutgoingRequest("POST", path, (), body), EVEDEX_CREDS, CTX)


@FUZZ
@given(body=json_ish, query=st.text(max_size=40))
def test_policy_field_parser(body: bytes, query: str) -> None:
    parse_request_fields(query, body)  # problems are recorded for the decision, never raised


@FUZZ
@given(raw=st.binary(max_size=120), query=st.binary(max_size=40))
def test_route_parser(raw: bytes, query: bytes) -> None:
    try:
        route = parse_route(b"/" + raw, query)
    except (BadRequest, UnknownRoute):
        return
    assert route.upstream_path.startswith("/") and "/../" not in route.upstream_path + "/"

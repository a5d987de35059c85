"""Simulated HAQQEX, driven in-process with the vectors' headers (never with the proxy's signer).

Where no vector exists, the expected signature is an HMAC the test computes over a string
written out by hand from JavaScript semantics (what Node's ``JSON.stringify`` prints).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.clock import FakeClock
from proxy.messages import Credentials, OutgoingRequest
from proxy.signers.base import SignContext
from proxy.signers.haqqex import HaqqexSigner
from proxy.sim import SIMULATORS
from proxy.sim.base import ReceivedRequest, SimResponse, SimVenue
from proxy.sim.haqqex import create_app
from tests import vectors

VECTORS = vectors.load("haqqex")["vectors"]
INPUTS: dict[str, Any] = VECTORS[0]["inputs"]
SECRET: str = INPUTS["secret_key"]
KEYS = {INPUTS["api_key"]: {"api_key": INPUTS["api_key"], "secret_key": SECRET}}
TS: str = INPUTS["timestamp_ms"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=int(TS) / 1000)


@pytest.fixture
def sim(clock: FakeClock) -> SimVenue:
    return create_app(KEYS, clock)


def _headers(sign: str, **changes: str) -> dict[str, str]:
    return {**VECTORS[0]["headers"], "x-api-sign": sign, **changes}


def _hand_sign(js_params: str) -> str:
    return hmac.new(SECRET.encode(), f"{TS}.{js_params}".encode(), hashlib.sha256).hexdigest()


@pytest.mark.parametrize("vec", VECTORS, ids=lambda v: v["name"])
@pytest.mark.parametrize("spacing", ["compact", "python"])
async def test_vector_is_accepted_whatever_the_body_spacing(
    client: httpx.AsyncClient, sim: SimVenue, vec: dict[str, Any], spacing: str
) -> None:
    data = vec["inputs"]["data"]
    body = vec["signed_params_string"].encode() if spacing == "compact" else json.dumps(data).encode()
    response = await client.request(
        vec["inputs"]["method"], "/api/v1/x", headers=vec["headers"], content=body
    )
    assert response.status_code == 200
    assert response.json()["data"]["params"] == data
    assert sim.recorder.requests[-1].header("x-api-sign") == vec["x_api_sign"]


async def test_empty_body_is_signed_as_empty_object(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/balance?currency=USDT", headers=VECTORS[0]["headers"])
    assert response.status_code == 200
    assert response.json()["data"] == {"method": "GET", "path": "/api/v1/balance", "params": {}}


@pytest.mark.parametrize(
    ("body", "js_params"),
    [
        (b'{"b": 1.0, "2": 1e21, "a": 1.5e-7, "c": -0.0}', '{"2":1e+21,"b":1,"a":1.5e-7,"c":0}'),
        (b'{"p": 0.000001, "q": 123456789012345680000}', '{"p":0.000001,"q":123456789012345680000}'),
        (b'{"s": "\\u00e7\\ud800/\\u0001", "k": [1, 2]}', '{"s":"ç\\ud800/\\u0001","k":[1,2]}'),
        (b'[{"10": 1, "9": 2, "x": 3}]', '[{"9":2,"10":1,"x":3}]'),
    ],
)
async def test_server_signs_json_stringify_of_the_parsed_body(
    client: httpx.AsyncClient, body: bytes, js_params: str
) -> None:
    response = await client.post("/api/v1/x", headers=_headers(_hand_sign(js_params)), content=body)
    assert response.status_code == 200


async def test_signature_over_the_raw_python_spelling_is_rejected(client: httpx.AsyncClient) -> None:
    body = b'{"b": 1.0}'
    response = await client.post("/api/v1/x", headers=_headers(_hand_sign('{"b":1.0}')), content=body)
    assert response.status_code == 401


async def test_wrong_signature_is_401_invalid_signature(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/x", headers=_headers("0" * 64))
    assert response.status_code == 401
    assert response.json() == {"statusCode": 401, "message": "Invalid signature", "error": "Unauthorized"}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"x-api-key": "00000000-0000-0000-0000-000000000000"}, "Invalid api key"),
        ({"x-api-timestamp": "yesterday"}, "Invalid timestamp"),
    ],
)
async def test_unknown_key_or_bad_timestamp_is_401(
    client: httpx.AsyncClient, changes: dict[str, str], message: str
) -> None:
    response = await client.get("/api/v1/x", headers=_headers(VECTORS[0]["x_api_sign"], **changes))
    assert (response.status_code, response.json()["message"]) == (401, message)


@pytest.mark.parametrize(("skew_s", "status"), [(30.0, 200), (30.001, 401), (-30.0, 200), (-30.001, 401)])
async def test_clock_window_is_30_s_both_ways(
    client: httpx.AsyncClient, clock: FakeClock, skew_s: float, status: int
) -> None:
    clock.advance(skew_s)
    response = await client.get("/api/v1/x", headers=VECTORS[0]["headers"])
    assert response.status_code == status


@pytest.mark.parametrize("body", [b"not json", b'"scalar"', b'{"a": NaN}', b'{"a": "\xff"}'])
async def test_unparseable_body_is_400(client: httpx.AsyncClient, sim: SimVenue, body: bytes) -> None:
    response = await client.post("/api/v1/x", headers=VECTORS[0]["headers"], content=body)
    assert response.status_code == 400
    assert response.json()["error"] == "Bad Request"
    assert sim.recorder.requests[-1].body == body


def test_registered() -> None:
    assert SIMULATORS["haqqex"] is create_app


_KEYS = st.one_of(st.text(st.characters(exclude_categories=())), st.integers(0, 2**33).map(str))
_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(st.characters(exclude_categories=())),
)
_JSON = st.recursive(
    _LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(data=st.dictionaries(_KEYS, _JSON, max_size=6))
def test_the_proxy_signer_and_the_sim_agree_on_json_stringify(data: dict[str, Any]) -> None:
    # Two independent JSON.stringify emulations (proxy.jsonjs and the sim's) must agree.
    sim = create_app(KEYS, FakeClock(start=int(TS) / 1000))
    outgoing = HaqqexSigner().sign(
        OutgoingRequest("POST", "/api/v1/x", (), json.dumps(data).encode()),
        Credentials(KEYS[INPUTS["api_key"]]),
        SignContext(venue="haqqex", account="main", now_ms=int(TS)),
    )
    response = sim.handler(ReceivedRequest("POST", "/api/v1/x", outgoing.headers, outgoing.body))
    assert isinstance(response, SimResponse)
    assert response.status == 200, response.body

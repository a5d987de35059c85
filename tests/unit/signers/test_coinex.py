"""CoinEx v2 signer, pinned to ``tests/vectors/coinex.json`` (oracles: coinexlib, official demo)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from proxy.errors import BadRequest
from proxy.messages import Credentials, OutgoingRequest
from proxy.signers import SIGNERS
from proxy.signers.base import SignContext
from proxy.signers.coinex import (
    CoinexSigner,
    prepared_string,
    signature,
    ws_sign_request,
    ws_signed_str,
)
from tests import vectors

REST = [v for v in vectors.load("coinex")["vectors"] if "prepared_str" in v]
WS = vectors.vector("coinex", "ws_server_sign")


def _creds(inputs: dict[str, Any]) -> Credentials:
    return Credentials({"api_key": inputs["access_id"], "secret_key": inputs["secret_key"]})


def _ctx(inputs: dict[str, Any]) -> SignContext:
    return SignContext(venue="coinex", account="main", now_ms=inputs["timestamp_ms"])


def _request(inputs: dict[str, Any]) -> OutgoingRequest:
    return OutgoingRequest(
        inputs["method"],
        inputs["request_path_with_query"],
        (("accept", "application/json"),),
        inputs["body"].encode(),
    )


def _lower(headers: dict[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


@pytest.mark.parametrize("vec", REST, ids=lambda v: v["name"])
def test_prepared_string_matches_vector(vec: dict[str, Any]) -> None:
    i = vec["inputs"]
    got = prepared_string(i["method"], i["request_path_with_query"], i["body"], i["timestamp_ms"])
    assert got == vec["prepared_str"]


@pytest.mark.parametrize("vec", REST, ids=lambda v: v["name"])
def test_signature_matches_vector(vec: dict[str, Any]) -> None:
    assert signature(vec["inputs"]["secret_key"], vec["prepared_str"]) == vec["x_coinex_sign_hmac_sha256_hex"]


@pytest.mark.parametrize("vec", REST, ids=lambda v: v["name"])
def test_sign_appends_the_vector_headers_and_keeps_the_request(vec: dict[str, Any]) -> None:
    i = vec["inputs"]
    request = _request(i)
    signed = CoinexSigner().sign(request, _creds(i), _ctx(i))
    assert signed.headers[: len(request.headers)] == request.headers
    assert dict(signed.headers[len(request.headers) :]) == _lower(vec["headers"])
    assert (signed.method, signed.target, signed.body) == (request.method, request.target, request.body)


def test_hmac_of_the_legacy_ccxt_prepared_string_matches_its_recorded_value() -> None:
    # Pins the same HMAC over ccxt's key-sorted query, and shows ccxt's sha256 form is not ours.
    legacy = vectors.vector("coinex", "get_with_query_docs_example")["legacy_ccxt"]
    secret = REST[0]["inputs"]["secret_key"]
    assert signature(secret, legacy["prepared_str"]) == legacy["hmac_over_same_prepared_str"]
    assert signature(secret, legacy["prepared_str"]) != legacy["headers"]["X-COINEX-SIGN"]


def test_method_is_upper_cased_in_the_prepared_string() -> None:
    assert prepared_string("post", "/v2/spot/order", "{}", 1) == "POST/v2/spot/order{}1"


def test_window_option_adds_the_windowtime_header() -> None:
    i = REST[0]["inputs"]
    signed = CoinexSigner({"window_ms": 10_000}).sign(_request(i), _creds(i), _ctx(i))
    assert signed.header("x-coinex-windowtime") == "10000"
    assert signed.header("x-coinex-sign") == REST[0]["x_coinex_sign_hmac_sha256_hex"]


def test_no_windowtime_header_by_default() -> None:
    i = REST[0]["inputs"]
    signed = CoinexSigner().sign(_request(i), _creds(i), _ctx(i))
    assert signed.header("x-coinex-windowtime") is None


@pytest.mark.parametrize(
    "options", [{"window_ms": 0}, {"window_ms": 99}, {"window_ms": 60_001}, {"window": 5}]
)
def test_bad_options_are_rejected(options: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        CoinexSigner(options)


def test_non_utf8_body_is_a_bad_request() -> None:
    i = REST[0]["inputs"]
    request = OutgoingRequest("POST", "/v2/spot/order", (), b'{"note": "\xff"}')
    with pytest.raises(BadRequest, match="not valid UTF-8"):
        CoinexSigner().sign(request, _creds(i), _ctx(i))


def test_ws_signed_str_matches_vector() -> None:
    i = WS["inputs"]
    assert ws_signed_str(i["secret_key"], i["timestamp_ms"]) == WS["signed_str_hmac_sha256_hex_of_timestamp"]


def test_ws_sign_request_matches_vector_frame() -> None:
    i = WS["inputs"]
    assert ws_sign_request(i["access_id"], i["secret_key"], i["timestamp_ms"]) == WS["frame"]


def test_scheme_metadata_and_registry() -> None:
    assert SIGNERS["coinex"] is CoinexSigner
    assert CoinexSigner.owned_headers == frozenset({"x-coinex-"})
    assert CoinexSigner.required_fields == ("api_key", "secret_key")

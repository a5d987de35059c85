"""HAQQEX signer and ``proxy.jsonjs``, pinned to ``tests/vectors/haqqex.json`` (Node cross-check).

The JS formatting tables are written from JavaScript semantics (what Node prints), never
computed with the code under test.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from proxy import jsonjs
from proxy.errors import BadRequest
from proxy.messages import Credentials, OutgoingRequest
from proxy.signers import SIGNERS
from proxy.signers.base import SignContext
from proxy.signers.haqqex import HaqqexSigner, signature, signed_params, string_to_sign
from tests import vectors

VECTORS = vectors.load("haqqex")["vectors"]
INPUTS: dict[str, Any] = VECTORS[0]["inputs"]
CREDS = Credentials({"api_key": INPUTS["api_key"], "secret_key": INPUTS["secret_key"]})
CTX = SignContext(venue="haqqex", account="main", now_ms=int(INPUTS["timestamp_ms"]))


def _client_body(data: dict[str, Any]) -> bytes:
    # What a Python client sends: spaced separators and ASCII escapes, unlike JSON.stringify.
    return json.dumps(data).encode() if data else b""


@pytest.mark.parametrize("vec", VECTORS, ids=lambda v: v["name"])
def test_signed_params_match_vector(vec: dict[str, Any]) -> None:
    assert signed_params(_client_body(vec["inputs"]["data"])) == vec["signed_params_string"]


@pytest.mark.parametrize("vec", VECTORS, ids=lambda v: v["name"])
def test_string_to_sign_and_signature_match_vector(vec: dict[str, Any]) -> None:
    message = string_to_sign(vec["inputs"]["timestamp_ms"], vec["signed_params_string"])
    assert message == vec["string_to_sign"]
    assert signature(vec["inputs"]["secret_key"], message) == vec["x_api_sign"]


@pytest.mark.parametrize("vec", VECTORS, ids=lambda v: v["name"])
def test_sign_forwards_the_signed_bytes_with_vector_headers(vec: dict[str, Any]) -> None:
    request = OutgoingRequest(
        vec["inputs"]["method"], "/api/v1/order", (), _client_body(vec["inputs"]["data"])
    )
    signed = HaqqexSigner().sign(request, CREDS, CTX)
    assert signed.body == vec["signed_params_string"].encode()
    assert dict(signed.headers) == {name.lower(): value for name, value in vec["headers"].items()}


def test_empty_body_signs_and_sends_empty_object() -> None:
    signed = HaqqexSigner().sign(OutgoingRequest("GET", "/api/v1/balance"), CREDS, CTX)
    assert signed.body == b"{}"
    assert signed.header("x-api-sign") == VECTORS[0]["x_api_sign"]


def test_query_is_forwarded_unchanged_and_not_signed() -> None:
    with_query = OutgoingRequest("GET", "/api/v1/orders?pair=BTC_USDT&b=%20x")
    signed = HaqqexSigner().sign(with_query, CREDS, CTX)
    assert signed.target == with_query.target
    assert signed.header("x-api-sign") == VECTORS[0]["x_api_sign"]  # same as without a query


def test_client_content_type_and_length_are_replaced() -> None:
    headers = (("accept", "*/*"), ("content-type", "text/plain"), ("content-length", "9"))
    signed = HaqqexSigner().sign(OutgoingRequest("POST", "/x", headers, b'{"a": 1}'), CREDS, CTX)
    assert signed.headers[0] == ("accept", "*/*")
    assert [v for k, v in signed.headers if k == "content-type"] == ["application/json"]
    assert signed.header("content-length") is None
    assert signed.body == b'{"a":1}'


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"not json", "invalid JSON"),
        (b'"a string"', "object or an array"),
        (b"42", "object or an array"),
        (b"null", "object or an array"),
        (b'{"a": NaN}', "NaN"),
        (b'{"a": Infinity}', "Infinity"),
        (b'{"a": 1, "a": 2}', "duplicate object key 'a'"),
        (b'{"id": 12345678901234567891}', "cannot be represented exactly"),
        (b'{"p": 1e400}', "cannot be represented exactly"),
        (b'{"n": "\xff"}', "not valid UTF-8"),
        (b"\xef\xbb\xbf{}", "BOM"),
        (b"[" * 50_000 + b"]" * 50_000, "nested too deeply"),
    ],
)
def test_unsignable_bodies_are_bad_requests(body: bytes, problem: str) -> None:
    with pytest.raises(BadRequest, match="haqqex") as caught:
        HaqqexSigner().sign(OutgoingRequest("POST", "/x", (), body), CREDS, CTX)
    assert problem in caught.value.message


def test_scheme_metadata_and_registry() -> None:
    assert SIGNERS["haqqex"] is HaqqexSigner
    assert HaqqexSigner.owned_headers == frozenset({"x-api-"})
    assert HaqqexSigner.required_fields == ("api_key", "secret_key")


# ------------------------------------------------------------------------- proxy.jsonjs


@pytest.mark.parametrize(
    ("value", "js"),
    [
        (1.0, "1"),
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (0.1, "0.1"),
        (-0.0, "0"),
        (1.5e-7, "1.5e-7"),
        (1e-7, "1e-7"),
        (1e-6, "0.000001"),
        (0.000001234, "0.000001234"),
        (123456789012345680000.0, "123456789012345680000"),
        (1.2345e25, "1.2345e+25"),
        (-2.5, "-2.5"),
        (65000.5, "65000.5"),
        (0.30000000000000004, "0.30000000000000004"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (9007199254740992.0, "9007199254740992"),
        (float("nan"), "NaN"),
        (float("-inf"), "-Infinity"),
    ],
)
def test_format_number_is_js_number_to_string(value: float, js: str) -> None:
    assert jsonjs.format_number(value) == js


@pytest.mark.parametrize(
    ("value", "js"),
    [
        ({"b": 1, "a": [1.0, "x", True, None]}, '{"b":1,"a":[1,"x",true,null]}'),
        ({"b": 1, "10": 2, "2": 3, "01": 4, "-1": 5}, '{"2":3,"10":2,"b":1,"01":4,"-1":5}'),
        ({"4294967295": 1, "4294967294": 2}, '{"4294967294":2,"4294967295":1}'),
        ({"s": 'q"\\/\b\f\n\r\t\x01\x7f'}, '{"s":"q\\"\\\\/\\b\\f\\n\\r\\t\\u0001\x7f"}'),
        ({"s": "çé/✓\u2028😀"}, '{"s":"çé/✓\u2028😀"}'),
        ({"s": "\ud800"}, '{"s":"\\ud800"}'),
        ({"n": float("inf"), "e": {}, "l": []}, '{"n":null,"e":{},"l":[]}'),
        ([-0.0, 2**53], "[0,9007199254740992]"),
    ],
)
def test_stringify_matches_json_stringify(value: Any, js: str) -> None:
    assert jsonjs.stringify(value) == js


def test_stringify_refuses_what_js_cannot_hold() -> None:
    with pytest.raises(ValueError, match="represented exactly"):
        jsonjs.stringify(2**53 + 1)
    assert jsonjs.stringify(123456789012345680000) == "123456789012345680000"  # JS prints it back
    with pytest.raises(TypeError):
        jsonjs.stringify({1: "non-str key"})


@pytest.mark.parametrize(
    ("text", "js"),
    [
        (b'{ "a" : 0.10 , "b" : 1E2, "c": -0, "d": 1.50e-7 }', '{"a":0.1,"b":100,"c":0,"d":1.5e-7}'),
        (b'{"k": "\\u00e7\\ud83d\\ude00\\/"}', '{"k":"ç😀/"}'),
        (b"[123456789012345680000, 1e21]", "[123456789012345680000,1e+21]"),
    ],
)
def test_loads_then_stringify_is_json_stringify_of_json_parse(text: bytes, js: str) -> None:
    assert jsonjs.stringify(jsonjs.loads(text)) == js


def test_nesting_is_capped_but_brackets_inside_strings_do_not_count() -> None:
    limit = jsonjs.MAX_DEPTH
    assert jsonjs.loads(b"[" * limit + b"]" * limit) is not None
    assert jsonjs.loads(b'["' + b"[" * 10 * limit + b'"]') == ["[" * 10 * limit]
    with pytest.raises(jsonjs.JSONJSError, match="nested too deeply"):
        jsonjs.loads(b"[" * (limit + 1) + b"]" * (limit + 1))

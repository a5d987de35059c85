"""INVEX signer, pinned to ``tests/vectors/invex.json`` (oracle: the venue's own example code).

PSS is randomised, so signatures are checked by verification with the public key, never by
comparing bytes; the *message* is compared byte-for-byte with the vectors.
"""

from __future__ import annotations

import hashlib
import json
import traceback
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from pydantic import ValidationError

from proxy.errors import BadRequest, SigningFailed
from proxy.messages import Credentials, OutgoingRequest
from proxy.signers import SIGNERS
from proxy.signers.base import SignContext
from proxy.signers.invex import (
    InvexSigner,
    format_expire_at,
    load_private_key,
    message_to_sign,
    sign_message,
    split_query,
)
from tests import vectors

DATA = vectors.load("invex")
SECRET_HEX: str = DATA["test_secret_key_hex_der_pkcs8"]
SIGNED = [v for v in DATA["vectors"] if "message_to_sign" in v]
QUERY_VECTORS = [v for v in SIGNED if "request_query" in v]
API_KEY = "test-invex-api-key-0001"
CREDS = Credentials({"api_key": API_KEY, "private_key": SECRET_HEX}, version=1)
# The vectors' expire_at, 2024-06-18 12:00:00 in Tehran, minus the default 60 s lead.
EXPIRE_TS = datetime(2024, 6, 18, 12, 0, tzinfo=ZoneInfo("Asia/Tehran")).timestamp()
CTX = SignContext(venue="invex", account="main", now_ms=int((EXPIRE_TS - 60) * 1000))
# PSS.MAX_LENGTH is lenient when verifying (it accepts any salt), so pin the salt length
# the examples' MAX_LENGTH produces: emLen - hLen - 2 = 256 - 32 - 2 for this 2048-bit key.
VERIFY_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=256 - 32 - 2)


def _public_key() -> RSAPublicKey:
    key = serialization.load_der_private_key(bytes.fromhex(SECRET_HEX), password=None)
    public = key.public_key()
    assert isinstance(public, RSAPublicKey)
    return public


def _verifies(signature_hex: str, message: str) -> bool:
    try:
        _public_key().verify(bytes.fromhex(signature_hex), message.encode(), VERIFY_PSS, hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def _client_params(vec: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in vec["inputs"]["params_in_order"].items() if k != "expire_at"}


def _client_request(vec: dict[str, Any]) -> OutgoingRequest:
    """The vector's request as a client hands it to the proxy: no expire_at, no signature."""
    method, path = vec["inputs"]["method"], vec["inputs"]["path"]
    params = _client_params(vec)
    if method == "POST":
        return OutgoingRequest(method, path, body=json.dumps(params).encode())
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return OutgoingRequest(method, f"{path}?{query}" if query else path)


def _sign(request: OutgoingRequest, **options: Any) -> OutgoingRequest:
    return InvexSigner(options).sign(request, CREDS, CTX)


# --- pinned to the vectors -------------------------------------------------------------------


@pytest.mark.parametrize("vec", SIGNED, ids=lambda v: v["name"])
def test_message_matches_vector(vec: dict[str, Any]) -> None:
    message = message_to_sign(vec["inputs"]["params_in_order"])
    assert message == vec["message_to_sign"]
    assert hashlib.sha256(message.encode()).hexdigest() == vec["message_sha256"]


@pytest.mark.parametrize("vec", SIGNED, ids=lambda v: v["name"])
def test_vector_and_oracle_signatures_verify(vec: dict[str, Any]) -> None:
    assert _verifies(vec["example_signature_hex"], vec["message_to_sign"])
    for oracle in vec["oracles"].values():
        assert _verifies(oracle["signature_hex"], vec["message_to_sign"])


@pytest.mark.parametrize("vec", SIGNED, ids=lambda v: v["name"])
def test_signer_output_verifies_against_pinned_message(vec: dict[str, Any]) -> None:
    signed = _sign(_client_request(vec))
    if vec["inputs"]["method"] == "POST":
        params = json.loads(signed.body)
    else:
        params = dict(parse_qsl(signed.query, keep_blank_values=True))
    signature = params.pop("signature")
    assert json.dumps(params) == vec["message_to_sign"]
    assert len(bytes.fromhex(signature)) == vec["signature_len_bytes"]
    assert signature == signature.lower()
    assert _verifies(signature, vec["message_to_sign"])
    assert signed.header("x-api-key-invex") == vec["headers"]["X-API-Key-Invex"]


@pytest.mark.parametrize("vec", QUERY_VECTORS, ids=lambda v: v["name"])
def test_rebuilt_query_matches_vector_up_to_signature(vec: dict[str, Any]) -> None:
    signed = _sign(_client_request(vec))
    prefix, _, signature = signed.query.partition("signature=")
    assert prefix == vec["request_query"].partition("signature=")[0]
    assert signed.path == vec["inputs"]["path"]
    assert _verifies(signature, vec["message_to_sign"])


def test_post_body_is_the_signed_message_plus_signature() -> None:
    vec = vectors.vector("invex", "post_create_order_official_example")
    signed = _sign(_client_request(vec))
    expected_prefix = vec["request_body"].partition(', "signature": ')[0]
    assert signed.body.decode().partition(', "signature": ')[0] == expected_prefix
    assert signed.header("content-type") == "application/json"


def test_serialisation_sensitivity() -> None:
    vec = vectors.vector("invex", "serialisation_sensitivity")
    spaced = vectors.vector("invex", "post_create_order_official_example")["message_to_sign"]
    compact_sig = sign_message(load_private_key(SECRET_HEX), vec["compact_sorted_form"])
    assert _verifies(compact_sig, vec["compact_sorted_form"])
    assert not _verifies(compact_sig, spaced)
    assert _verifies(compact_sig, spaced) == vec["verifies_for_compact_sorted_form"]


# --- expire_at ----------------------------------------------------------------------------------


def test_expire_at_defaults_to_tehran_wall_time() -> None:
    assert format_expire_at(CTX.now_ms, 60, ZoneInfo("Asia/Tehran")) == "2024-06-18 12:00:00"


def test_expire_at_timezone_option() -> None:
    signed = _sign(OutgoingRequest("GET", "/trading/v1/markets"), expire_at_timezone="UTC", expire_after_s=5)
    assert dict(parse_qsl(signed.query))["expire_at"] == "2024-06-18 08:29:05"


@pytest.mark.parametrize(
    "options",
    [{"expire_after_s": 0}, {"expire_after_s": 3601}, {"expire_at_timezone": "Mars/Olympus"}, {"x": 1}],
)
def test_invalid_options_rejected_at_startup(options: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        InvexSigner(options)


# --- owned parameters, query and body shapes ---------------------------------------------------------


def test_client_expire_at_and_signature_replaced_in_query() -> None:
    forged = "/trading/v1/accounts?signature=forged&currency=USDT&expire_at=2099-01-01+00%3A00%3A00"
    signed = _sign(OutgoingRequest("GET", forged))
    pairs = parse_qsl(signed.query)
    assert [k for k, _ in pairs] == ["currency", "expire_at", "signature"]
    assert dict(pairs)["expire_at"] == "2024-06-18 12:00:00"
    assert _verifies(
        dict(pairs)["signature"], vectors.vector("invex", "get_accounts_query")["message_to_sign"]
    )


def test_client_expire_at_and_signature_replaced_in_body() -> None:
    body = b'{"signature": "forged", "quantity": "10", "expire_at": "2099-01-01 00:00:00", "price": "1"}'
    params = json.loads(_sign(OutgoingRequest("POST", "/trading/v1/orders", body=body)).body)
    assert list(params) == ["quantity", "price", "expire_at", "signature"]
    assert params["expire_at"] == "2024-06-18 12:00:00"
    signature = params.pop("signature")
    assert _verifies(signature, json.dumps(params))


def test_raw_query_pieces_forwarded_byte_for_byte() -> None:
    pieces, params = split_query("a=&b=x%20y+z&c&&d=%E2%9C%93")
    assert pieces == ["a=", "b=x%20y+z", "c", "d=%E2%9C%93"]
    assert params == {"a": "", "b": "x y z", "c": "", "d": "\u2713"}
    signed = _sign(OutgoingRequest("GET", "/trading/v1/orders?a=&b=x%20y+z"))
    assert signed.query.startswith("a=&b=x%20y+z&expire_at=")


def test_duplicate_query_keys_rejected() -> None:
    with pytest.raises(BadRequest, match="'side' appears more than once"):
        _sign(OutgoingRequest("GET", "/trading/v1/orders?side=BUYER&side=SELLER"))


@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b"1", b"null", b"{not json", b"\xff\xfe"])
def test_non_object_body_rejected(body: bytes) -> None:
    with pytest.raises(BadRequest, match="invex: body must be a JSON object"):
        _sign(OutgoingRequest("POST", "/trading/v1/orders", body=body))


def test_empty_post_body_is_an_empty_object() -> None:
    params = json.loads(_sign(OutgoingRequest("POST", "/trading/v1/crypto-withdrawals")).body)
    assert list(params) == ["expire_at", "signature"]
    assert _verifies(params["signature"], '{"expire_at": "2024-06-18 12:00:00"}')


def test_body_on_query_method_and_query_on_body_method_rejected() -> None:
    with pytest.raises(BadRequest, match="a body would be unsigned"):
        _sign(OutgoingRequest("DELETE", "/trading/v1/orders?order_id=1", body=b'{"x": 1}'))
    with pytest.raises(BadRequest, match="a query would be unsigned"):
        _sign(OutgoingRequest("POST", "/trading/v1/orders?x=1", body=b"{}"))


def test_headers_owned_and_body_framing_replaced() -> None:
    request = OutgoingRequest(
        "POST",
        "/trading/v1/orders",
        headers=(("x-api-key-invex", "forged"), ("content-type", "text/plain"), ("content-length", "2")),
        body=b"{}",
    )
    signed = _sign(request)
    assert [v for k, v in signed.headers if k == "x-api-key-invex"] == [API_KEY]
    assert [v for k, v in signed.headers if k == "content-type"] == ["application/json"]
    assert signed.header("content-length") is None


def test_registered_with_its_contract() -> None:
    assert SIGNERS["invex"] is InvexSigner
    assert InvexSigner.required_fields == ("api_key", "private_key")
    assert InvexSigner.owned_headers == frozenset({"x-api-key-invex"})


# --- the private key ---------------------------------------------------------------------------------


def test_key_parsed_once_per_credential() -> None:
    load_private_key.cache_clear()
    for _ in range(3):
        _sign(OutgoingRequest("GET", "/trading/v1/markets"))
    info = load_private_key.cache_info()
    assert (info.misses, info.hits) == (1, 2)


def _ec_pkcs8_hex() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return der.hex()


@pytest.mark.parametrize(
    "bad_hex",
    [SECRET_HEX[:-64], SECRET_HEX[:200] + "zz" + SECRET_HEX[202:], "00" + SECRET_HEX, _ec_pkcs8_hex()],
    ids=["truncated", "not-hex", "garbled-der", "ec-key"],
)
def test_bad_key_fails_without_key_material(bad_hex: str) -> None:
    creds = Credentials({"api_key": API_KEY, "private_key": bad_hex})
    with pytest.raises(SigningFailed) as caught:
        InvexSigner().sign(OutgoingRequest("GET", "/trading/v1/markets"), creds, CTX)
    exc = caught.value
    assert exc.message == "invex: private_key is not a hex PKCS#8 DER RSA key"
    assert exc.__cause__ is None and exc.__context__ is None
    rendered = "".join(traceback.format_exception(exc)) + repr(exc)
    for start in range(0, len(bad_hex) - 16, 16):
        assert bad_hex[start : start + 16] not in rendered

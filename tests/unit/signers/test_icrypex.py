"""ICRYPEX signer, pinned to ``tests/vectors/icrypex.json`` (oracle: icrypex-sdk 0.5.2)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from proxy.errors import SigningFailed
from proxy.messages import Credentials, OutgoingRequest
from proxy.signers import SIGNERS
from proxy.signers.base import SignContext
from proxy.signers.icrypex import (
    IcrypexSigner,
    decode_secret,
    signature,
    string_to_sign,
    ws_login_frame,
)
from tests import vectors

REST = vectors.vector("icrypex", "rest_headers")
WS = vectors.vector("icrypex", "ws_api_login")
INPUTS: dict[str, Any] = REST["inputs"]
CREDS = Credentials({"api_key": INPUTS["api_key"], "secret_key": INPUTS["secret_base64"]})
CTX = SignContext(venue="icrypex", account="main", now_ms=INPUTS["ts_ms"])


def test_string_to_sign_matches_vector() -> None:
    assert string_to_sign(INPUTS["api_key"], INPUTS["ts_ms"]) == REST["string_to_sign"]


def test_signature_matches_vector() -> None:
    assert signature(INPUTS["secret_base64"], REST["string_to_sign"]) == REST["icx_sign"]


def test_sign_appends_the_vector_headers() -> None:
    request = OutgoingRequest("DELETE", "/sapi/v1/orders?orderId=1541007", (("accept", "*/*"),))
    signed = IcrypexSigner({"tolerance_ms": INPUTS["nonce_tolerance_ms"]}).sign(request, CREDS, CTX)
    expected = {name.lower(): value for name, value in REST["headers"].items()}
    assert signed.headers == (("accept", "*/*"), *expected.items())


def test_method_path_and_body_are_neither_signed_nor_changed() -> None:
    a = OutgoingRequest("GET", "/sapi/v1/wallet")
    b = OutgoingRequest("POST", "/sapi/v1/orders?x=1", (), b'{"symbol": "BTCTRY"}')
    signed_a, signed_b = (IcrypexSigner().sign(r, CREDS, CTX) for r in (a, b))
    assert signed_a.header("icx-sign") == signed_b.header("icx-sign") == REST["icx_sign"]
    assert (signed_b.target, signed_b.body) == (b.target, b.body)


def test_default_tolerance_is_15000() -> None:
    signed = IcrypexSigner().sign(OutgoingRequest("GET", "/sapi/v1/wallet"), CREDS, CTX)
    assert signed.header("icx-nonce") == "15000"


def test_maximum_tolerance_is_accepted() -> None:
    signed = IcrypexSigner({"tolerance_ms": 60_000}).sign(OutgoingRequest("GET", "/"), CREDS, CTX)
    assert signed.header("icx-nonce") == "60000"


@pytest.mark.parametrize(
    "options", [{"tolerance_ms": 0}, {"tolerance_ms": -1}, {"tolerance_ms": 60_001}, {"nonce": 1}]
)
def test_bad_options_are_rejected(options: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        IcrypexSigner(options)


@pytest.mark.parametrize("secret", ["not base64!", "AAECAw", "AAEC\nAw==", "AAECAwQ=ü"])
def test_invalid_base64_secret_fails_without_echoing_it(secret: str) -> None:
    creds = Credentials({"api_key": INPUTS["api_key"], "secret_key": secret})
    with pytest.raises(SigningFailed) as caught:
        IcrypexSigner().sign(OutgoingRequest("GET", "/sapi/v1/wallet"), creds, CTX)
    assert caught.value.message == "icrypex: secret_key is not valid base64"
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_decoded_secret_is_cached() -> None:
    decode_secret.cache_clear()
    first = decode_secret(INPUTS["secret_base64"])
    second = decode_secret(INPUTS["secret_base64"])
    assert first is second
    assert first == bytes(range(32))  # the vector's secret is base64 of 0x00..0x1f
    assert decode_secret.cache_info().hits == 1


def test_ws_login_frame_matches_vector() -> None:
    i = WS["inputs"]
    frame = ws_login_frame(i["api_key"], i["secret_base64"], i["ts_ms"], i["nonce_tolerance_ms"])
    assert frame == WS["frame"]


def test_scheme_metadata_and_registry() -> None:
    assert SIGNERS["icrypex"] is IcrypexSigner
    assert IcrypexSigner.owned_headers == frozenset({"icx-"})
    assert IcrypexSigner.required_fields == ("api_key", "secret_key")

"""Key operations as yielded steps (``proxy.signers.keyops``): the step a signer yields is
exactly the vector's prehash, and driving the steps locally or through an async key
operator gives the vector's bytes. Expected values come from the vectors, never from the
code under test."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from proxy.messages import Credentials, OutgoingRequest
from proxy.signers import SIGNERS
from proxy.signers.base import SignContext, pad_hmac_key
from proxy.signers.coinex import CoinexSigner
from proxy.signers.haqqex import HaqqexSigner
from proxy.signers.icrypex import IcrypexSigner
from proxy.signers.invex import InvexSigner, load_private_key
from proxy.signers.keyops import Hmac, KeyOp, RsaPss, drive, drive_local
from tests import vectors

COINEX = next(v for v in vectors.load("coinex")["vectors"] if "prepared_str" in v)
ICRYPEX = vectors.vector("icrypex", "rest_headers")
HAQQEX = vectors.load("haqqex")["vectors"][0]
INVEX = vectors.load("invex")
INVEX_QUERY = next(v for v in INVEX["vectors"] if v["name"] == "get_accounts_query")


def _coinex() -> tuple[Any, OutgoingRequest, Credentials, SignContext, bytes, str]:
    i = COINEX["inputs"]
    request = OutgoingRequest(i["method"], i["request_path_with_query"], (), i["body"].encode())
    creds = Credentials({"api_key": i["access_id"], "secret_key": i["secret_key"]})
    ctx = SignContext("coinex", "main", i["timestamp_ms"])
    return (
        CoinexSigner(),
        request,
        creds,
        ctx,
        COINEX["prepared_str"].encode(),
        COINEX["x_coinex_sign_hmac_sha256_hex"],
    )


def _icrypex() -> tuple[Any, OutgoingRequest, Credentials, SignContext, bytes, str]:
    i = ICRYPEX["inputs"]
    creds = Credentials({"api_key": i["api_key"], "secret_key": i["secret_base64"]})
    ctx = SignContext("icrypex", "main", i["ts_ms"])
    request = OutgoingRequest("GET", "/sapi/v1/wallet")
    return IcrypexSigner(), request, creds, ctx, ICRYPEX["string_to_sign"].encode(), ICRYPEX["icx_sign"]


def _haqqex() -> tuple[Any, OutgoingRequest, Credentials, SignContext, bytes, str]:
    i = HAQQEX["inputs"]
    creds = Credentials({"api_key": i["api_key"], "secret_key": i["secret_key"]})
    ctx = SignContext("haqqex", "main", int(i["timestamp_ms"]))
    body = HAQQEX["signed_params_string"].encode() if i["data"] else b""
    request = OutgoingRequest(i["method"], "/api/v1/order", (), body)
    return HaqqexSigner(), request, creds, ctx, HAQQEX["string_to_sign"].encode(), HAQQEX["x_api_sign"]


HMAC_CASES = {"coinex": _coinex, "icrypex": _icrypex, "haqqex": _haqqex}
SIGN_HEADER = {"coinex": "x-coinex-sign", "icrypex": "icx-sign", "haqqex": "x-api-sign"}


@pytest.mark.parametrize("scheme", HMAC_CASES)
def test_the_yielded_step_is_the_vector_prehash(scheme: str) -> None:
    signer, request, creds, ctx, prehash, _ = HMAC_CASES[scheme]()
    public_only = Credentials({"api_key": creds["api_key"]})  # what a Transit account has
    op = next(signer.sign_steps(request, public_only, ctx))
    assert op == Hmac(prehash)


@pytest.mark.parametrize("scheme", HMAC_CASES)
def test_local_and_async_drivers_give_the_vector_signature(scheme: str) -> None:
    signer, request, creds, ctx, _, expected = HMAC_CASES[scheme]()
    local = drive_local(signer.sign_steps(request, creds, ctx), signer.local_key_op, creds)
    key = signer.hmac_key(creds)

    async def remote(op: KeyOp) -> bytes:  # stands in for Transit: an HMAC with the imported key
        assert isinstance(op, Hmac)
        return hmac.new(pad_hmac_key(key), op.message, hashlib.sha256).digest()

    remote_signed = asyncio.run(
        drive(signer.sign_steps(request, Credentials({"api_key": creds["api_key"]}), ctx), remote)
    )
    assert local == signer.sign(request, creds, ctx) == remote_signed
    assert local.header(SIGN_HEADER[scheme]) == expected


def test_invex_step_is_the_vector_message_and_the_signature_verifies() -> None:
    private_hex = INVEX["test_secret_key_hex_der_pkcs8"]
    creds = Credentials({"api_key": "k", "private_key": private_hex})
    # The vector's expire_at is 2024-06-18 12:00:00 Tehran time; the signer adds a 60 s lead.
    expire = datetime(2024, 6, 18, 12, 0, tzinfo=ZoneInfo("Asia/Tehran")).timestamp()
    ctx = SignContext("invex", "main", int((expire - 60) * 1000))
    steps = InvexSigner().sign_steps(OutgoingRequest("GET", "/trading/v1/accounts?currency=USDT"), creds, ctx)
    op = next(steps)
    assert op == RsaPss(INVEX_QUERY["message_to_sign"].encode())
    signature = InvexSigner().local_key_op(op, creds)
    salt = 256 - 32 - 2  # PSS.MAX_LENGTH for a 2048-bit key; pinned, since MAX_LENGTH verifies any salt
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=salt)
    load_private_key(private_hex).public_key().verify(signature, op.message, pss, hashes.SHA256())
    with pytest.raises(StopIteration) as done:
        steps.send(signature)
    prefix = INVEX_QUERY["request_query"].partition("signature=")[0]
    assert done.value.value.query == f"{prefix}signature={signature.hex()}"


def test_transit_support_and_public_fields_per_scheme() -> None:
    for scheme in ("coinex", "icrypex", "haqqex", "invex"):
        assert SIGNERS[scheme].supports_transit
        assert SIGNERS[scheme].public_fields() == ("api_key",)
    assert not SIGNERS["evedex"].supports_transit


@pytest.mark.parametrize("length", [1, 16, 31, 32, 64, 100])
def test_zero_padding_a_short_hmac_key_keeps_the_mac(length: int) -> None:
    key = bytes(range(1, length + 1))
    padded = pad_hmac_key(key)
    assert len(padded) >= 32 and padded.startswith(key)
    assert hmac.new(padded, b"msg", hashlib.sha256).digest() == hmac.new(key, b"msg", hashlib.sha256).digest()


def test_transit_key_material_per_scheme() -> None:
    icrypex = ICRYPEX["inputs"]
    kind, material = IcrypexSigner().transit_key(Credentials({"secret_key": icrypex["secret_base64"]}))
    assert kind == "hmac"
    assert material.startswith(base64.b64decode(icrypex["secret_base64"]))
    kind, material = CoinexSigner().transit_key(Credentials({"secret_key": "S" * 64}))
    assert (kind, material) == ("hmac", b"S" * 64)
    kind, material = InvexSigner().transit_key(
        Credentials({"private_key": INVEX["test_secret_key_hex_der_pkcs8"]})
    )
    assert kind == f"rsa-{load_private_key(INVEX['test_secret_key_hex_der_pkcs8']).key_size}"
    assert material == bytes.fromhex(INVEX["test_secret_key_hex_der_pkcs8"])


def test_a_key_op_never_shows_its_message() -> None:
    assert "secret-body" not in repr(Hmac(b"secret-body")) + repr(RsaPss(b"secret-body"))


def test_a_failed_remote_operation_closes_the_steps() -> None:
    signer, request, creds, ctx, _, _ = _coinex()
    steps = signer.sign_steps(request, creds, ctx)

    async def down(op: KeyOp) -> bytes:
        raise ConnectionError("vault down")

    with pytest.raises(ConnectionError):
        asyncio.run(drive(steps, down))
    assert steps.gi_frame is None  # closed, not left suspended

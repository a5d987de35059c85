"""Issue 14 item 10: key material is parsed as the signer reads it, when it is stored.

``Signer.validate_secret`` is what ``keys put|rotate|check`` and ``check --vault`` call; a
malformed secret is refused naming the field, never quoting the value (the canary).
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from proxy.errors import SigningFailed
from proxy.messages import Credentials
from proxy.signers import SIGNERS
from proxy.sim.credentials import demo_credentials

CANARY = "C4NARY7e57"


def _ec_der_hex() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return der.hex()


def _signer(scheme: str):  # type: ignore[no-untyped-def]
    options = {"auth_upstream": "https://auth.example"} if scheme == "evedex" else {}
    return SIGNERS[scheme](options)


BAD = [
    ("icrypex", "secret_key", f"{CANARY}!!not base64", "secret_key is not valid base64"),
    ("icrypex", "secret_key", "QUJD" + CANARY, "secret_key is not valid base64"),  # missing padding
    ("invex", "private_key", "c4fe" * 40 + "0bad", "private_key is not a hex PKCS#8 DER RSA key"),
    ("invex", "private_key", CANARY + "00", "private_key is not a hex PKCS#8 DER RSA key"),  # not hex
    ("invex", "private_key", _ec_der_hex(), "private_key is not a hex PKCS#8 DER RSA key"),  # DER, not RSA
    ("evedex", "wallet_private_key", "0x" + "c4" * 31, "wallet_private_key is not a 32-byte hex"),
    ("evedex", "wallet_private_key", "0x" + "00" * 32, "wallet_private_key is not a 32-byte hex"),  # zero
    ("evedex", "wallet_private_key", "0x" + "ff" * 32, "wallet_private_key is not a 32-byte hex"),  # >= n
    ("evedex", "wallet_private_key", f"0x{CANARY}", "wallet_private_key is not a 32-byte hex"),
    ("coinex", "secret_key", f"{CANARY}\n", "secret_key has leading or trailing whitespace"),
    ("haqqex", "secret_key", f" {CANARY}", "secret_key has leading or trailing whitespace"),
    ("coinex", "api_key", f"{CANARY}\r\nx-injected: 1", "api_key contains control characters"),
]


@pytest.mark.parametrize(("scheme", "field", "value", "message"), BAD)
def test_malformed_key_material_is_refused_naming_the_field_only(
    scheme: str, field: str, value: str, message: str
) -> None:
    fields = {**demo_credentials(scheme), field: value}
    with pytest.raises(SigningFailed) as refused:
        _signer(scheme).validate_secret(Credentials(fields))
    assert message in refused.value.message
    text = (
        f"{refused.value.message} {refused.value!r} {refused.value.__cause__!r} {refused.value.__context__!r}"
    )
    assert value.strip() not in text and CANARY not in text and "c4fe" not in text


@pytest.mark.parametrize("scheme", sorted(SIGNERS))
def test_well_formed_secrets_pass(scheme: str) -> None:
    _signer(scheme).validate_secret(Credentials(demo_credentials(scheme)))


@pytest.mark.parametrize("scheme", ["coinex", "icrypex", "invex"])
def test_transit_mode_public_fields_alone_pass(scheme: str) -> None:
    """In Transit mode KV holds no key material: only what is present is parsed."""
    signer = _signer(scheme)
    public = {k: v for k, v in demo_credentials(scheme).items() if k not in signer.key_fields}
    signer.validate_secret(
        Credentials({**public, "transit_key": "signing-proxy-x", "transit_key_version": "1"})
    )

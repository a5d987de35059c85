"""Fresh throwaway credentials per scheme, for the demo and the integration tests.

Each call makes new random keys, so nothing real or reusable is ever shipped.
``sim_keys`` turns the Vault fields into the key table a simulated venue verifies with.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import Callable, Mapping

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def _coinex() -> dict[str, str]:
    return {"api_key": secrets.token_hex(16).upper(), "secret_key": secrets.token_hex(32).upper()}


def _icrypex() -> dict[str, str]:
    return {
        "api_key": secrets.token_urlsafe(22),
        "secret_key": base64.b64encode(secrets.token_bytes(32)).decode(),
    }


def _haqqex() -> dict[str, str]:
    return {"api_key": str(uuid.uuid4()), "secret_key": secrets.token_urlsafe(24)[:32]}


def _invex() -> dict[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return {"api_key": "invex-" + secrets.token_hex(12), "private_key": der.hex()}


def _evedex() -> dict[str, str]:
    return {"wallet_private_key": "0x" + secrets.token_hex(32), "api_key": "evedex-" + secrets.token_hex(12)}


GENERATORS: dict[str, Callable[[], dict[str, str]]] = {
    "coinex": _coinex,
    "icrypex": _icrypex,
    "haqqex": _haqqex,
    "invex": _invex,
    "evedex": _evedex,
}


def demo_credentials(scheme: str) -> dict[str, str]:
    return GENERATORS[scheme]()


def sim_keys(fields: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """The simulated venue's key table: the venue knows each account by its API key."""
    return {fields["api_key"]: dict(fields)}

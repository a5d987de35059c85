"""Managing Transit keys for the security team: BYOK import, new versions, retirement.

Used by ``signing-proxy keys`` (``proxy.keys.provisioning``) and by the demo stack, never by the
proxy itself (its Vault policy should not allow any of these paths). Synchronous hvac:
these are one-off administrative calls.

Import ("bring your own key", Vault docs ``secrets/transit#bring-your-own-key-byok``):
Vault publishes an RSA-4096 wrapping key (``<mount>/wrapping_key``); we generate an
ephemeral AES-256 key, encrypt it to the wrapping key with RSA-OAEP (SHA-256), wrap the key
material with AES key wrap with padding (RFC 5649), and send ``base64(wrapped AES key ||
wrapped material)`` to ``<mount>/keys/<name>/import`` (a new key) or ``…/import_version``
(a new version of an imported key). Material: raw bytes for ``hmac`` keys, PKCS#8 DER for
``rsa-*`` keys. Keys are created with ``exportable: false`` and
``allow_plaintext_backup: false``; ``allow_rotation`` stays false, so Vault can never
replace the venue's key with one of its own.

What OpenBao 2.7 does with these (checked by ``tests/integration/test_transit.py``): HMAC
keys of 32..n bytes import; shorter ones are refused (``invalid key size``), which is why
``proxy.signers.base.pad_hmac_key`` pads them (same MAC); ``export/hmac-key``,
``export/signing-key`` and ``backup`` are refused for these keys; ``import`` on an
existing key is refused (use ``import_version``). ``exportable`` can be turned ON later by
anyone with ``update`` on ``<mount>/keys/<name>/config``: non-exportability holds only
while ACL policies deny that parameter (``docs/transit.md``).
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from typing import Any

import hvac
import hvac.exceptions
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding


class TransitAdminError(Exception):
    """A Transit administrative call failed; the message names the key and Vault's reason."""


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What ``<mount>/keys/<name>`` says about a key (no key material: Vault never sends it)."""

    name: str
    type: str
    latest_version: int
    exportable: bool
    allow_plaintext_backup: bool
    imported: bool
    min_encryption_version: int
    deletion_allowed: bool

    @classmethod
    def from_vault(cls, name: str, data: dict[str, Any]) -> KeyInfo:
        return cls(
            name=name,
            type=str(data.get("type")),
            latest_version=int(data.get("latest_version") or 0),
            exportable=bool(data.get("exportable")),
            allow_plaintext_backup=bool(data.get("allow_plaintext_backup")),
            imported=bool(data.get("imported_key")),
            min_encryption_version=int(data.get("min_encryption_version") or 0),
            deletion_allowed=bool(data.get("deletion_allowed")),
        )


def wrap_key_material(wrapping_key_pem: str, material: bytes) -> str:
    """The BYOK ``ciphertext``: RSA-OAEP(SHA-256) of an ephemeral AES-256 key || KWP(material)."""
    wrapping_key = serialization.load_pem_public_key(wrapping_key_pem.encode())
    if not isinstance(wrapping_key, RSAPublicKey):
        raise TransitAdminError("the Transit wrapping key is not an RSA public key")
    ephemeral = os.urandom(32)
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    wrapped = wrapping_key.encrypt(ephemeral, oaep) + aes_key_wrap_with_padding(ephemeral, material)
    return base64.b64encode(wrapped).decode("ascii")


class TransitAdmin:
    def __init__(self, client: hvac.Client, mount: str = "transit") -> None:
        self.client = client
        self.mount = mount.strip("/")

    def key(self, name: str) -> KeyInfo | None:
        try:
            response = self.client.adapter.get(f"/v1/{self.mount}/keys/{name}")
        except hvac.exceptions.InvalidPath:
            return None
        return KeyInfo.from_vault(name, response["data"])

    def import_key(self, name: str, key_type: str, material: bytes) -> KeyInfo:
        """A new non-exportable key holding ``material`` as its version 1."""
        body = {
            "ciphertext": self._wrap(material),
            "type": key_type,
            "hash_function": "SHA256",
            "exportable": False,
            "allow_plaintext_backup": False,
            "allow_rotation": False,
        }
        self._post(f"keys/{name}/import", body, f"importing Transit key {name}")
        return self._read(name)

    def import_version(self, name: str, material: bytes) -> KeyInfo:
        """A new latest version of an imported key; earlier versions stay usable."""
        body = {"ciphertext": self._wrap(material), "hash_function": "SHA256"}
        self._post(f"keys/{name}/import_version", body, f"importing a new version of Transit key {name}")
        return self._read(name)

    def retire_below(self, name: str, version: int) -> KeyInfo:
        """Versions below ``version`` can no longer sign (or verify)."""
        body = {"min_decryption_version": version, "min_encryption_version": version}
        self._post(f"keys/{name}/config", body, f"retiring versions of Transit key {name}")
        return self._read(name)

    def hmac(self, name: str, message: bytes, version: int | None = None) -> bytes:
        body: dict[str, Any] = {"input": base64.b64encode(message).decode()}
        if version is not None:
            body["key_version"] = version
        answer = self._post(f"hmac/{name}/sha2-256", body, f"HMAC with Transit key {name}")
        return _raw(answer["data"]["hmac"])

    def sign_pss(self, name: str, message: bytes, version: int | None = None) -> bytes:
        body: dict[str, Any] = {
            "input": base64.b64encode(message).decode(),
            "signature_algorithm": "pss",
            "salt_length": "auto",
            "prehashed": False,
        }
        if version is not None:
            body["key_version"] = version
        answer = self._post(f"sign/{name}/sha2-256", body, f"signing with Transit key {name}")
        return _raw(answer["data"]["signature"])

    def _read(self, name: str) -> KeyInfo:
        info = self.key(name)
        if info is None:
            raise TransitAdminError(f"Transit key {name} is missing right after it was written")
        return info

    def _wrap(self, material: bytes) -> str:
        answer = self._get("wrapping_key", "reading the Transit wrapping key")
        return wrap_key_material(answer["data"]["public_key"], material)

    def _get(self, path: str, what: str) -> Any:
        try:
            return self.client.adapter.get(f"/v1/{self.mount}/{path}")
        except hvac.exceptions.VaultError as error:
            raise TransitAdminError(f"{what} failed: {vault_reason(error)}") from None

    def _post(self, path: str, body: dict[str, Any], what: str) -> Any:
        try:
            return self.client.adapter.post(f"/v1/{self.mount}/{path}", json=body)
        except hvac.exceptions.VaultError as error:
            raise TransitAdminError(f"{what} failed: {vault_reason(error)}") from None


def _raw(value: str) -> bytes:
    return base64.b64decode(value.split(":", 2)[2])


def vault_reason(error: hvac.exceptions.VaultError) -> str:
    """Vault's own errors, one line, without the URL hvac appends (it names our address)."""
    errors = getattr(error, "errors", None) or [str(error)]
    text = " ".join(str(e) for e in errors).replace("\n", " ").replace("1 error occurred: ", "")
    text = " ".join(text.replace("*", " ").split())
    return f"{type(error).__name__}: {text.partition(', on ')[0]}"

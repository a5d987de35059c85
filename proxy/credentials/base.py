"""The store interface the pipeline reads credentials through (``Credentials`` itself is a
message type: ``proxy.messages``, so signers need nothing from this package).

A ``CredentialStore`` answers ``get(venue, account)`` with a ``Credentials`` object or
raises ``CredentialsUnavailable``. Implementations: ``memory.MemoryStore`` (tests,
benchmarks) and ``vault.VaultStore`` (hvac against Vault/OpenBao KV v2, cached).

``Credentials`` never shows its values: ``repr``/``str`` list field names only, so an
object that ends up in a log line or a traceback leaks nothing. ``version`` changes when
the secret is rotated; signers key derived material (parsed RSA keys) on it.
"""

from __future__ import annotations

from typing import Protocol

from proxy.messages import Credentials, require_fields

__all__ = ["CredentialStore", "Credentials", "require_fields"]


class CredentialStore(Protocol):
    async def get(self, venue: str, account: str) -> Credentials: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

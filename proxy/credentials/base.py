"""Credentials and the store interface the pipeline reads them through.

A ``CredentialStore`` answers ``get(venue, account)`` with a ``Credentials`` object or
raises ``CredentialsUnavailable``. Implementations: ``memory.MemoryStore`` (tests,
benchmarks) and ``vault.VaultStore`` (hvac against Vault/OpenBao KV v2, cached).

``Credentials`` never shows its values: ``repr``/``str`` list field names only, so an
object that ends up in a log line or a traceback leaks nothing. ``version`` changes when
the secret is rotated; signers key derived material (parsed RSA keys) on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from proxy.errors import CredentialsUnavailable


class Credentials:
    __slots__ = ("_fields", "version")

    def __init__(self, fields: Mapping[str, str], version: int | str = 0) -> None:
        self._fields = dict(fields)
        self.version = version

    def __getitem__(self, name: str) -> str:
        return self._fields[name]

    def get(self, name: str) -> str | None:
        return self._fields.get(name)

    def names(self) -> frozenset[str]:
        return frozenset(self._fields)

    def missing(self, required: Iterable[str]) -> list[str]:
        return [name for name in required if not self._fields.get(name)]

    def __repr__(self) -> str:
        return f"<Credentials fields={sorted(self._fields)} version={self.version!r}>"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Credentials) and (self._fields, self.version) == (
            other._fields,
            other.version,
        )

    def __hash__(self) -> int:
        return hash((tuple(sorted(self._fields.items())), self.version))


def require_fields(creds: Credentials, required: Iterable[str], venue: str, account: str) -> None:
    """Raise ``CredentialsUnavailable`` naming the missing fields (names only, never values)."""
    missing = creds.missing(required)
    if missing:
        raise CredentialsUnavailable(venue, account, f"secret is missing field(s) {', '.join(missing)}")


class CredentialStore(Protocol):
    async def get(self, venue: str, account: str) -> Credentials: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

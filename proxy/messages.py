"""The messages every floor passes around: what a client sent, what goes upstream, what
came back, and the credentials a store hands a signer. Plain data, no I/O, nothing from
the rest of the proxy but ``proxy.errors``: the bottom floor.

``Credentials`` never shows its values: ``repr``/``str`` list field names only, so an
object that ends up in a log line or a traceback leaks nothing. ``version`` changes when
the secret is rotated; signers key derived material (parsed RSA keys) on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from proxy.errors import CredentialsUnavailable


@dataclass(frozen=True, slots=True)
class Incoming:
    method: str
    raw_path: bytes
    query: bytes
    headers: tuple[tuple[str, str], ...]  # lower-case names
    peer: str | None

    def header(self, name: str) -> str | None:
        return header_value(self.headers, name)


@dataclass(frozen=True, slots=True)
class OutgoingRequest:
    """A request as it will be sent upstream.

    ``target`` is the upstream path plus ``?query`` exactly as the client sent it (what
    venues sign); a signer that must change the query builds a new target string.
    ``headers`` are lower-case names, already cleaned of hop-by-hop and venue-owned
    headers (``proxy.hygiene``). ``body`` is the exact bytes that will be forwarded.
    ``origin`` is ``None`` for the venue's configured upstream; a scheme that logs in
    elsewhere (EVEDEX's auth API) sets it from its *configured* options, never from
    anything the client sent.
    """

    method: str
    target: str
    # repr=False: signed headers, order bodies and login replies carry signatures and tokens.
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    body: bytes = field(default=b"", repr=False)
    origin: str | None = None

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]

    @property
    def query(self) -> str:
        return self.target.partition("?")[2]

    def with_headers(self, *extra: tuple[str, str]) -> OutgoingRequest:
        return replace(self, headers=self.headers + extra)

    def header(self, name: str) -> str | None:
        return header_value(self.headers, name)


def header_value(headers: tuple[tuple[str, str], ...], name: str) -> str | None:
    """The first value of header ``name`` (lower-case) in lower-case-named ``headers``."""
    for key, value in headers:
        if key == name:
            return value
    return None


@dataclass(frozen=True, slots=True)
class UpstreamReply:
    """What came back from the venue: relayed to the client unchanged."""

    status: int
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    body: bytes = field(default=b"", repr=False)
    extensions: dict[str, Any] = field(default_factory=dict)


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

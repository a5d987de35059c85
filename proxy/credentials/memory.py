"""In-memory credential store: for tests and benchmarks, never for production secrets."""

from __future__ import annotations

from collections.abc import Mapping

from proxy.errors import CredentialsUnavailable
from proxy.messages import Credentials


class MemoryStore:
    def __init__(self, secrets: Mapping[tuple[str, str], Mapping[str, str]] | None = None) -> None:
        self._creds: dict[tuple[str, str], Credentials] = {}
        for (venue, account), fields in (secrets or {}).items():
            self.put(venue, account, fields)

    def put(self, venue: str, account: str, fields: Mapping[str, str]) -> None:
        previous = self._creds.get((venue, account))
        version = 1 if previous is None else int(previous.version) + 1
        self._creds[(venue, account)] = Credentials(fields, version)

    async def get(self, venue: str, account: str) -> Credentials:
        try:
            return self._creds[(venue, account)]
        except KeyError:
            raise CredentialsUnavailable(venue, account, "no secret stored") from None

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

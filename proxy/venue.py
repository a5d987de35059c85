"""A configured venue at run time (built once per configuration by ``proxy.app.build_venues``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from proxy.signers.base import Signer


@dataclass(frozen=True, slots=True)
class Venue:
    """A configured venue at run time: its origin, accounts and the signer built once."""

    name: str
    origin: str
    accounts: frozenset[str]
    signer: Signer
    ws_origin: str | None = None  # WebSocket origin (ws:// or wss://); None: no streams (proxy.ws)
    # account -> Vault Transit key name for ``signing: transit`` accounts; others sign from KV.
    transit_keys: Mapping[str, str] = field(default_factory=dict, hash=False, compare=False)

    def required_fields(self, account: str) -> tuple[str, ...]:
        """The KV fields the account needs: public ones only when Transit holds the key."""
        if account in self.transit_keys:
            return self.signer.public_fields()
        return self.signer.required_fields

"""Concurrent streams per client and per venue account (``websocket:`` settings).

Counted in this process (a stream is pinned to the replica that holds its sockets). A
stream over either limit is refused *before* the upgrade with the contract's
``rate_limited`` (429, ``Retry-After: 1``): nothing reached the venue. The slot is taken
before the venue connection is opened and given back when the stream ends, however it ends.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from proxy.errors import RateLimited

RETRY_AFTER_S = 1.0  # a slot frees when any stream ends: there is no refill time to announce


@dataclass(slots=True)
class Lease:
    """One stream's slots. ``release`` is idempotent."""

    limits: ConnectionLimits
    client: str
    key: str
    released: bool = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.limits._give_back(self.client, self.key)


class ConnectionLimits:
    def __init__(self, per_client: int, per_key: int) -> None:
        self.per_client = per_client
        self.per_key = per_key
        self._clients: Counter[str] = Counter()
        self._keys: Counter[str] = Counter()

    def acquire(self, client: str, key: str) -> Lease:
        # Synchronous check-and-take: no await between them, so concurrent upgrades cannot both pass.
        if self._clients[client] >= self.per_client:
            raise RateLimited(f"streams of client {client} (max {self.per_client})", RETRY_AFTER_S)
        if self._keys[key] >= self.per_key:
            raise RateLimited(f"streams of account {key} (max {self.per_key})", RETRY_AFTER_S)
        self._clients[client] += 1
        self._keys[key] += 1
        return Lease(self, client, key)

    def open_streams(self, client: str | None = None, key: str | None = None) -> int:
        if client is not None:
            return self._clients[client]
        if key is not None:
            return self._keys[key]
        return sum(self._clients.values())

    def _give_back(self, client: str, key: str) -> None:
        self._clients[client] -= 1
        self._keys[key] -= 1
        if self._clients[client] <= 0:
            del self._clients[client]
        if self._keys[key] <= 0:
            del self._keys[key]

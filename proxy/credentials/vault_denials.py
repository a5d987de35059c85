"""Vault permission refusals, remembered briefly per path.

A 403 for a valid token means the proxy's Vault policy does not allow that path: asking
again on every request only loads Vault (and, before this existed, logged in each time).
``DenialCache`` remembers the refusal for ``ttl_s`` so requests for that account fail at
once with the same message, and a policy fix is picked up within ``ttl_s``. Paths come
from the configuration (KV paths, Transit keys), so the cache is bounded by it; the cap
below only guards against a bug.
"""

from __future__ import annotations

from proxy.clock import Clock

_MAX_PATHS = 10_000


class DenialCache:
    def __init__(self, clock: Clock, ttl_s: float) -> None:
        self._clock = clock
        self._ttl = ttl_s
        self._denied: dict[str, tuple[float, str]] = {}  # path -> (until, detail)

    def get(self, path: str) -> str | None:
        """The refusal's detail while it is remembered, else ``None``."""
        found = self._denied.get(path)
        if found is None:
            return None
        if self._clock.monotonic() >= found[0]:
            del self._denied[path]
            return None
        return found[1]

    def put(self, path: str, detail: str) -> None:
        if self._ttl <= 0:
            return
        if len(self._denied) >= _MAX_PATHS:
            self._denied.clear()
        self._denied[path] = (self._clock.monotonic() + self._ttl, detail)


def denial_detail(path: str, capability: str, policies: tuple[str, ...]) -> str:
    """What a refused request is told: the path, the capability and the token's policies
    (names, never the token)."""
    named = ", ".join(policies) if policies else "unknown"
    return (
        f"Vault permission denied: {capability} on {path} (token policies: {named}); "
        "the proxy's Vault policy must allow it"
    )

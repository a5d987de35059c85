"""Fresh throwaway credentials per scheme, for the demo and the integration tests.

Each call makes new random keys, so nothing real or reusable is ever shipped.
``sim_keys`` turns the Vault fields into the key table a simulated venue verifies with.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from proxy.sim import DEMOS

GENERATORS: dict[str, Callable[[], dict[str, str]]] = {
    scheme: demo.credentials for scheme, demo in DEMOS.items()
}


def demo_credentials(scheme: str) -> dict[str, str]:
    return GENERATORS[scheme]()


def sim_keys(fields: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """The simulated venue's key table: the venue knows each account by its API key."""
    return {fields["api_key"]: dict(fields)}

"""One plain request per scheme that its simulated venue accepts: a read and an order
(each simulator's ``DEMO``).

Shared by the demo tour, the soak script and the tests, so "what a trading bot sends" is
written once. Bodies are what a client sends: no credentials, no signature.
"""

from __future__ import annotations

from typing import Any

from proxy.sim import DEMOS

READS: dict[str, str] = {scheme: demo.read for scheme, demo in DEMOS.items()}
ORDERS: dict[str, tuple[str, dict[str, Any]]] = {scheme: demo.order for scheme, demo in DEMOS.items()}


def evedex_order(sequence: int) -> dict[str, Any]:
    """The EVEDEX sample order with a fresh, well-formed id."""
    return {**ORDERS["evedex"][1], "id": f"00123:{sequence:026x}"}

"""Simulated venues (one module per scheme) that verify signatures as the venue does.

``SIMULATORS`` maps a scheme name to its ``create_app(keys, clock=None) -> SimVenue``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from proxy.clock import Clock
from proxy.sim import coinex, evedex, haqqex, icrypex, invex
from proxy.sim.base import Demo, SimVenue

SimFactory = Callable[[Mapping[str, Mapping[str, str]], Clock | None], SimVenue]

# One line per simulated venue; every per-venue map below (and the demo's) derives from it.
# A test keeps the schemes equal to the signer registry (proxy.signers.SIGNERS).
SIMULATED = (coinex, icrypex, haqqex, invex, evedex)

SIMULATORS: dict[str, SimFactory] = {module.DEMO.scheme: module.create_app for module in SIMULATED}
DEMOS: dict[str, Demo] = {module.DEMO.scheme: module.DEMO for module in SIMULATED}

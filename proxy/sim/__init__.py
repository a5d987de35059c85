"""Simulated venues (one module per scheme) that verify signatures as the venue does.

``SIMULATORS`` maps a scheme name to its ``create_app(keys, clock=None) -> SimVenue``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from proxy.clock import Clock
from proxy.sim import coinex, evedex, haqqex, icrypex, invex
from proxy.sim.base import SimVenue

SimFactory = Callable[[Mapping[str, Mapping[str, str]], Clock | None], SimVenue]

SIMULATORS: dict[str, SimFactory] = {
    "coinex": coinex.create_app,
    "icrypex": icrypex.create_app,
    "haqqex": haqqex.create_app,
    "invex": invex.create_app,
    "evedex": evedex.create_app,
}

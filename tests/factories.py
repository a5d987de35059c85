"""Shared builders for the tests that assemble a pipeline by hand (no Vault, no sockets).

``build_pipeline`` is ``proxy.app.create_app``'s wiring without the I/O: policies, venues,
a credential store and an upstream, with the defaults a test usually wants (memory limiter,
the owned-header policy of every scheme, the system clock). ``simulated`` gives fresh
throwaway keys, the strict simulated venues that verify them, and the matching store,
upstream and venues (``http://<scheme>.sim``, account ``main``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proxy.clock import Clock, FakeClock, SystemClock
from proxy.credentials.base import CredentialStore
from proxy.credentials.memory import MemoryStore
from proxy.credentials.transit import TransitKeys
from proxy.forward import Upstream
from proxy.hygiene import HeaderPolicy
from proxy.pipeline import Pipeline
from proxy.policy.loader import load_policies
from proxy.policy.rules import PolicySet
from proxy.ratelimit.gate import RateGate
from proxy.ratelimit.limiter import Limiter, MemoryLimiter
from proxy.signers import SIGNERS, owned_headers
from proxy.signers.base import Signer
from proxy.sim import SIMULATORS
from proxy.sim.base import SimVenue
from proxy.sim.credentials import demo_credentials, sim_keys
from proxy.venue import Venue
from tests.unit.inprocess import InProcessUpstream


def origin(scheme: str) -> str:
    return f"http://{scheme}.sim"


def venue(
    scheme: str,
    *,
    name: str | None = None,
    url: str | None = None,
    accounts: Iterable[str] = ("main",),
    signer: Signer | None = None,
    **fields: Any,
) -> Venue:
    """A configured venue of ``scheme`` (its default signer unless ``signer``)."""
    built = signer if signer is not None else SIGNERS[scheme]()
    return Venue(name or scheme, url or origin(scheme), frozenset(accounts), built, **fields)


def build_pipeline(
    policies: PolicySet | Path,
    venues: Mapping[str, Venue] | Iterable[Venue],
    store: CredentialStore,
    upstream: Upstream,
    *,
    clock: Clock | None = None,
    limiter: Limiter | None = None,
    rate_gate: RateGate | None = None,
    transit: TransitKeys | None = None,
) -> Pipeline:
    clock = clock or SystemClock()
    if not isinstance(policies, PolicySet):
        policies = load_policies(policies)
    by_name = dict(venues) if isinstance(venues, Mapping) else {v.name: v for v in venues}
    return Pipeline(
        policies,
        by_name,
        store,
        limiter or MemoryLimiter(clock),
        upstream,
        clock,
        HeaderPolicy(owned_headers()),
        rate_gate=rate_gate,
        transit=transit,
    )


@dataclass
class Simulated:
    creds: dict[str, dict[str, str]]  # scheme -> the account's Vault fields
    sims: dict[str, SimVenue]
    store: MemoryStore
    upstream: InProcessUpstream
    venues: dict[str, Venue]


def simulated(schemes: Iterable[str], clock: Clock | None = None) -> Simulated:
    """Fresh keys per scheme, the simulated venue that verifies them, the store holding them."""
    creds = {scheme: demo_credentials(scheme) for scheme in schemes}
    sims = {scheme: SIMULATORS[scheme](sim_keys(fields), clock) for scheme, fields in creds.items()}
    store = MemoryStore({(scheme, "main"): fields for scheme, fields in creds.items()})
    upstream = InProcessUpstream({origin(scheme): sim for scheme, sim in sims.items()})
    return Simulated(creds, sims, store, upstream, {scheme: venue(scheme) for scheme in creds})


class FakeSleep:
    """``RateGate``'s ``sleep``: records each wait and moves the fake clock instead of waiting."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.slept: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.clock.advance(seconds)

"""One registry of venues (``proxy.signers.SIGNERS``): every per-venue list derives from it
or is checked against it here, so a sixth venue cannot be half-added (README "Adding a venue")."""

from __future__ import annotations

from proxy.dev import demo, stack
from proxy.policy.order_fields import load_order_fields
from proxy.ratelimit.profiles import SHIPPED_PROFILES, load_profiles
from proxy.signers import ENVELOPES, SIGNERS
from proxy.sim import DEMOS, SIMULATORS
from proxy.sim.credentials import GENERATORS
from proxy.sim.samples import ORDERS, READS
from proxy.ws.logins import LOGINS


def test_every_venue_has_a_simulator_with_demo_requests_and_keys() -> None:
    for per_venue in (SIMULATORS, DEMOS, READS, ORDERS, GENERATORS, stack.ORDER_PATHS):
        assert list(per_venue) == list(SIGNERS)
    assert tuple(SIGNERS) == stack.ALL_SCHEMES
    assert [step[0] for step in demo.VENUE_STEPS] == list(SIGNERS)


def test_every_venue_has_its_data_files_and_envelope() -> None:
    assert set(load_profiles(SHIPPED_PROFILES)) == set(SIGNERS)
    assert set(load_order_fields().schemes) == set(SIGNERS)
    assert set(ENVELOPES) == set(SIGNERS)


def test_fresh_keys_carry_every_field_the_signer_needs() -> None:
    for scheme, signer in SIGNERS.items():
        fields = GENERATORS[scheme]()
        assert set(signer.required_fields) <= set(fields), scheme
        assert "api_key" in fields  # how a simulated venue knows the account (sim_keys)


def test_transit_and_stream_lists_follow_what_the_signers_say() -> None:
    assert demo.TRANSIT_VENUES == ("coinex", "icrypex", "haqqex", "invex")  # not EVEDEX's secp256k1
    assert set(LOGINS) == {"coinex", "icrypex", "evedex"}
    assert set(LOGINS) <= set(SIGNERS)

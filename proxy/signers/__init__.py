"""The one registry of venue schemes: scheme name -> Signer class.

Adding a venue scheme is one module in this package and one line here (see
``proxy.signers.base`` for the interface). Every per-venue list derives from ``SIGNERS``:
the error envelopes and the schemes with streams (below), the demo stack's schemes and
Transit venues (``proxy.dev``), the simulators (``proxy.sim``, one module per scheme).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from proxy.errors import Envelope
from proxy.signers.base import Signer
from proxy.signers.coinex import CoinexSigner
from proxy.signers.evedex.signer import EvedexSigner
from proxy.signers.haqqex import HaqqexSigner
from proxy.signers.icrypex import IcrypexSigner
from proxy.signers.invex import InvexSigner

SIGNERS: dict[str, type[Signer]] = {
    signer.scheme: signer for signer in (CoinexSigner, IcrypexSigner, HaqqexSigner, InvexSigner, EvedexSigner)
}


ENVELOPES: Mapping[str, Envelope] = {scheme: signer.envelope for scheme, signer in SIGNERS.items()}


def stream_config_problem(scheme: str, options: Mapping[str, Any]) -> str | None:
    """Why a venue of ``scheme`` with these options cannot have streams; ``None`` when it can."""
    signer = SIGNERS[scheme]
    if not signer.streams:
        have = sorted(name for name, cls in SIGNERS.items() if cls.streams)
        return f"scheme {scheme} has no stream login (streams exist for: {', '.join(have)})"
    return signer.stream_problem(options)


def owned_headers() -> frozenset[str]:
    """Every header name/prefix any scheme owns: stripped from every client request."""
    return frozenset().union(*(signer.owned_headers for signer in SIGNERS.values()))

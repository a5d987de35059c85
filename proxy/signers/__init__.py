"""The one registry of venue schemes: scheme name -> Signer class.

Adding a venue scheme is one module in this package and one line here
(see ``proxy.signers.base`` for the interface).
"""

from __future__ import annotations

from proxy.signers.base import Signer
from proxy.signers.coinex import CoinexSigner
from proxy.signers.evedex.signer import EvedexSigner
from proxy.signers.haqqex import HaqqexSigner
from proxy.signers.icrypex import IcrypexSigner
from proxy.signers.invex import InvexSigner

SIGNERS: dict[str, type[Signer]] = {
    signer.scheme: signer for signer in (CoinexSigner, IcrypexSigner, HaqqexSigner, InvexSigner, EvedexSigner)
}


def owned_headers() -> frozenset[str]:
    """Every header name/prefix any scheme owns: stripped from every client request."""
    return frozenset().union(*(signer.owned_headers for signer in SIGNERS.values()))

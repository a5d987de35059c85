"""The one registry of stream logins: scheme name -> ``StreamLogin`` class.

Adding a venue's streams is one module in this package and one line here (see
``proxy.ws.base`` for the interface). The schemes listed are those whose signer says
``streams = True`` (a test keeps the two equal); a venue of another scheme cannot be given
a ``ws_upstream``: startup stops naming the field (``proxy.signers.stream_config_problem``).
"""

from __future__ import annotations

from proxy.signers import stream_config_problem
from proxy.ws.base import StreamLogin
from proxy.ws.coinex import CoinexLogin
from proxy.ws.evedex import EvedexLogin
from proxy.ws.icrypex import IcrypexLogin

__all__ = ["LOGINS", "stream_config_problem"]

LOGINS: dict[str, type[StreamLogin]] = {
    login.scheme: login for login in (CoinexLogin, IcrypexLogin, EvedexLogin)
}

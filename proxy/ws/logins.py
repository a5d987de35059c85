"""The one registry of stream logins: scheme name -> ``StreamLogin`` class.

Adding a venue's streams is one module in this package and one line here (see
``proxy.ws.base`` for the interface). A venue whose scheme is not listed cannot be
given a ``ws_upstream``: startup stops naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from proxy.ws.base import StreamLogin
from proxy.ws.coinex import CoinexLogin
from proxy.ws.evedex import EvedexLogin
from proxy.ws.icrypex import IcrypexLogin

LOGINS: dict[str, type[StreamLogin]] = {
    login.scheme: login for login in (CoinexLogin, IcrypexLogin, EvedexLogin)
}


def stream_config_problem(scheme: str, options: Mapping[str, Any]) -> str | None:
    """Why a venue of ``scheme`` with these options cannot have streams; ``None`` when it can."""
    login = LOGINS.get(scheme)
    if login is None:
        return f"scheme {scheme} has no stream login (streams exist for: {', '.join(sorted(LOGINS))})"
    return login.config_problem(options)

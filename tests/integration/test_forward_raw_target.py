"""The forwarding client sends the target byte for byte (issue 17, item 1).

What a venue verifies is the signature over the path and query it *received*: a client that
re-encodes (``'`` to ``%27``), decodes (``%7E`` to ``~``), normalises case (``%3a`` to
``%3A``) or turns ``+`` into ``%20`` breaks the signature or, worse, makes the venue read
another request than the one signed. The upstream is a raw socket server recording the
request line as read. (pyreqwest, measured as the alternative, sends ``%27`` for ``'``
in a query: the WHATWG URL parser it uses re-encodes it; README "Forwarding client".)
"""

from __future__ import annotations

import pytest

from proxy.forward import Forwarder
from proxy.signers.base import OutgoingRequest
from tests.integration.faultserver import FaultServer

TARGETS = [
    "/v2/spot/order?market=BTC%3AUSDT&x=%7E&y=~",
    "/v2/a%3ab?c=%7e%7E&d=%2B+%20&e=a+b",
    "/v2/x?q='quoted'&r=a|b&s={}&t=a^b&u=`",
    "/v2/x?empty=&&dup=1&dup=2&;semi=1",
    "/v2/x/%5Bbracket%5d?arr[]=1&arr%5B%5D=2",
    "/v2/trailing/?k=v=w",
]


@pytest.mark.parametrize("target", TARGETS)
async def test_target_reaches_the_venue_byte_for_byte(target: str) -> None:
    venue = await FaultServer().start()
    forwarder = Forwarder(connect_timeout_s=2, timeout_s=5)
    try:
        reply = await forwarder.send(venue.url, OutgoingRequest("GET", target, (), b""))
        assert reply.status == 200
        assert venue.seen == [f"GET {target} HTTP/1.1".encode()]
    finally:
        await forwarder.close()
        await venue.stop()

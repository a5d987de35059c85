"""The stream-login interface: how a venue's WebSocket authentication is done by the proxy.

A ``StreamLogin`` is built per connection, after the policy allowed the stream and the
account's credentials were read. It has two jobs:

* ``login(upstream)``: authenticate the fresh venue connection before any client frame
  is relayed (CoinEx ``server.sign``, Icrypex ``api-login``); returns the frames the venue
  sent meanwhile, which the relay hands to the client first, in order. Raises
  ``LoginFailed`` when the venue refuses (the client is closed with 4001).
* ``from_client(frame)``: look at each client frame before it goes upstream and return a
  ``Verdict``: forward it (possibly rewritten: EVEDEX injects its access token), or drop
  it (a client's own login never reaches the venue) with an optional answer to the client.

Venue frames are not inspected after the login: they are relayed byte for byte.

To add a venue's streams: one module in ``proxy/ws/`` with a ``StreamLogin`` subclass
(its login pinned to ``../shared/vectors`` where a vector exists), one line in
``proxy.ws.logins.LOGINS``, and a WebSocket handler in the venue's simulator.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from proxy.clock import Clock
from proxy.messages import Credentials
from proxy.signers.base import Send
from proxy.signers.keyops import KeyOp, KeyOperator
from proxy.venue import Venue
from proxy.ws.frames import Closed, Frame
from proxy.ws.upstream import UpstreamSocket

MAX_FRAMES_BEFORE_REPLY = 64  # a venue that chatters this long before answering the login is refused


@dataclass(frozen=True, slots=True)
class StreamContext:
    """What a login may use. ``http`` sends to the venue's configured origins (EVEDEX auth)."""

    venue: Venue
    account: str
    creds: Credentials
    clock: Clock
    http: Send
    reply_timeout_s: float  # how long the venue may take to answer the login
    keys: KeyOperator | None = None  # Vault Transit for a ``signing: transit`` account; None: KV

    def now_ms(self) -> int:
        return int(self.clock.now() * 1000)

    async def key_op(self, op: KeyOp) -> bytes:
        """The account's key operation: in Vault Transit, or with the KV secret in ``creds``."""
        if self.keys is not None:
            return await self.keys(op)
        return self.venue.signer.local_key_op(op, self.creds)

    def __repr__(self) -> str:  # ``Credentials`` hides its values already; nothing else to show
        return f"<StreamContext {self.venue.name}/{self.account}>"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What happens to one client frame: forwarded (maybe rewritten), answered, or both."""

    to_venue: Frame | None = None
    to_client: Frame | None = None
    dropped: str | None = None  # why it was not forwarded as sent (logged; never frame content)


class LoginFailed(Exception):
    """The venue refused the proxy's login. ``detail`` holds codes only, never venue text."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class StreamLogin:
    """Base class for a scheme's stream login. See the module docstring."""

    scheme: ClassVar[str]

    def __init__(self, ctx: StreamContext) -> None:
        self.ctx = ctx

    async def login(self, upstream: UpstreamSocket) -> list[Frame]:
        return []

    async def from_client(self, frame: Frame) -> Verdict:
        return Verdict(to_venue=frame)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.ctx.venue.name}/{self.ctx.account}>"


async def await_reply(
    upstream: UpstreamSocket, is_reply: Callable[[Frame], bool], timeout_s: float, what: str
) -> tuple[Frame, list[Frame]]:
    """The venue's answer to the login and the frames that came before it (kept in order)."""
    backlog: list[Frame] = []
    try:
        async with asyncio.timeout(timeout_s):
            while len(backlog) < MAX_FRAMES_BEFORE_REPLY:
                received = await upstream.receive()
                if isinstance(received, Closed):
                    raise LoginFailed(
                        f"the venue closed the connection ({received.code}) before answering {what}"
                    )
                if is_reply(received):
                    return received, backlog
                backlog.append(received)
    except TimeoutError:
        raise LoginFailed(f"no answer to {what} within {timeout_s:g} s") from None
    raise LoginFailed(f"no answer to {what} within {MAX_FRAMES_BEFORE_REPLY} frames")

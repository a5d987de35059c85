"""What a proxied stream carries: frames, close events and the proxy's close codes.

A ``Frame`` is one whole WebSocket message, text or binary; the relay keeps the type, so a
venue's compressed binary frames reach the client as the same bytes. ``repr`` never shows
content: frames carry login signatures, access tokens and account data.

Close codes the proxy itself sends after the upgrade (``docs/websockets.md``):

====  ==========================================================================
1000  normal: the other side closed cleanly (also sent upstream when the client leaves)
1001  ``idle_timeout``: no data frame either way for ``websocket.idle_timeout_s``
1009  ``frame_too_large``: a frame over ``websocket.max_frame_bytes``, either direction
1011  ``internal_error``: the proxy failed (logged by class, never by content)
1014  ``upstream_closed``: the venue went away without a close frame (RFC 6455 "bad gateway")
4001  ``login_failed``: the venue refused the proxy's login, or did not answer it in time
4xxx  4000 + contract status for a contract error after the upgrade, e.g. 4503
      ``credentials_unavailable`` when an EVEDEX token cannot be renewed
====  ==========================================================================

A close frame from the venue is passed on with its own code and reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from proxy.errors import ProxyError

NORMAL = 1000
IDLE = 1001
TOO_BIG = 1009
INTERNAL = 1011
BAD_GATEWAY = 1014
LOGIN_FAILED = 4001
_MAX_REASON_BYTES = 123  # RFC 6455 5.5: a control frame payload is <= 125 bytes, 2 for the code
# Codes an endpoint may put in a close frame (RFC 6455 7.4; 1004-1006 and 1015 never go on the wire).
_SENDABLE = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014})


@dataclass(frozen=True, slots=True)
class Frame:
    """One whole message; ``data`` is ``str`` for a text frame, ``bytes`` for a binary one."""

    data: str | bytes

    @property
    def is_text(self) -> bool:
        return isinstance(self.data, str)

    @property
    def size(self) -> int:
        return len(self.data.encode()) if isinstance(self.data, str) else len(self.data)

    def text(self) -> str | None:
        """The frame as text (a binary frame decoded as UTF-8), ``None`` when it is not text."""
        if isinstance(self.data, str):
            return self.data
        try:
            return self.data.decode("utf-8")
        except UnicodeDecodeError:
            return None

    def __repr__(self) -> str:
        return f"<Frame {'text' if self.is_text else 'binary'} {self.size} bytes>"


@dataclass(frozen=True, slots=True)
class Closed:
    """A close: received from one side, or to be sent to one."""

    code: int
    reason: str = ""

    @classmethod
    def of(cls, code: int, reason: str = "") -> Closed:
        """A close that can go on the wire: reserved codes become 1000/1014, the reason fits."""
        if code == 1005:  # "no status": the peer sent a close frame without a code
            code = NORMAL
        elif not (code in _SENDABLE or 3000 <= code <= 4999):
            code = BAD_GATEWAY
        return cls(code, fit_reason(reason))


def fit_reason(reason: str) -> str:
    """Cut a close reason to the 123 bytes a close frame can hold, on a character boundary."""
    encoded = reason.encode()
    if len(encoded) <= _MAX_REASON_BYTES:
        return reason
    return encoded[: _MAX_REASON_BYTES - 3].decode("utf-8", "ignore") + "..."


def for_error(error: ProxyError) -> Closed:
    """A contract error raised after the upgrade: ``4000 + status``, reason ``<code>: <message>``."""
    return Closed(4000 + error.status, fit_reason(f"{error.code}: {error.message}"))

"""Failures of the HTTP/1.1 client, split by what reached the venue.

* ``UnsafeRequest``: refused before any connection was chosen; nothing was sent.
* ``ConnectFailed``: the TCP connection or TLS handshake failed; nothing was sent (the
  only failure a caller may retry).
* ``ExchangeFailed`` and its subclasses: bytes were written, the venue may have acted on
  them; never re-send.

Messages name the failure class or limit only, never the request (target, headers, body)
or the answer's content.
"""

from __future__ import annotations


class UnsafeRequest(ValueError):
    """A request HTTP/1.1 cannot carry unambiguously (control characters, a space in the
    target, a non-token header name, framing headers of its own). ``part`` names which."""

    def __init__(self, part: str) -> None:
        super().__init__(f"refused to send: {part}")
        self.part = part


class ConnectFailed(Exception):
    """No connection: refused, unresolvable, timed out or TLS refused. Nothing was sent."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


class ExchangeFailed(Exception):
    """The request was (perhaps partly) written and no complete answer came back."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


class AnswerTooLarge(ExchangeFailed):
    """The answer's body (declared or as it arrived) is over ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        super().__init__("AnswerTooLarge")
        self.limit = limit


class HeadTooLarge(ExchangeFailed):
    """The answer's status line and headers are over ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        super().__init__("HeadTooLarge")
        self.limit = limit

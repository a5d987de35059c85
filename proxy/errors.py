"""The proxy's own refusals, and the one place that turns them into responses.

Every refusal the proxy makes (as opposed to a venue's answer, which passes through
untouched) is a ``ProxyError`` leaf. Each leaf carries its contract code and HTTP status
(``DESIGN.md``, "Proxy errors") and context fields, never key material::

    ProxyError                      (abstract root; .code, .status, .message)
    ├── Unauthenticated             401 unauthenticated
    ├── PolicyDenied                403 policy_denied          (.reason)
    ├── UnknownRoute                404 unknown_route
    ├── BadRequest                  400 bad_request
    ├── RequestTimeout              408 request_timeout        (.phase: headers or body)
    ├── BodyTooLarge                413 body_too_large         (.limit)
    ├── ExpectationFailed           417 expectation_failed     (an Expect other than 100-continue)
    ├── RateLimited                 429 rate_limited           (.limit_name, .retry_after_s)
    ├── RateLimitUnavailable        503 rate_limit_unavailable (.backend, .retry_after_s)
    ├── CredentialsUnavailable      503 credentials_unavailable (.venue, .account, .missing)
    ├── SigningFailed               500 signing_failed         (.scheme)
    ├── UpstreamUnreachable         502 upstream_unreachable
    ├── UpstreamTimeout             504 upstream_timeout
    └── InternalError               500 internal_error  (a bug: any other exception)

``render_error`` is the single renderer: JSON body
``{"error": {"code", "message", "request_id"}}`` plus ``X-Signing-Proxy-Error: <code>``;
on a venue route the edge may pass that venue's envelope (``proxy.signers.envelopes``),
which reshapes the body only: status and headers stay the contract's.
Messages are built from context the raising code chose to expose; an exception's
``__cause__`` (which may be a library exception quoting data) is never rendered.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

ERROR_HEADER = "x-signing-proxy-error"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class ProxyError(Exception):
    """Base of every refusal the proxy itself makes. Subclasses set ``code`` and ``status``."""

    code: str = "internal"
    status: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def extra_headers(self) -> list[tuple[str, str]]:
        return []


class Unauthenticated(ProxyError):
    code, status = "unauthenticated", 401

    def __init__(self, message: str = "missing or unknown client token") -> None:
        super().__init__(message)


class PolicyDenied(ProxyError):
    code, status = "policy_denied", 403

    def __init__(self, reason: str) -> None:
        super().__init__(f"denied by policy: {reason}")
        self.reason = reason


class UnknownRoute(ProxyError):
    code, status = "unknown_route", 404


class BadRequest(ProxyError):
    code, status = "bad_request", 400


class RequestTimeout(ProxyError):
    """The client did not send its request head or body within the listener's deadline
    (``listen.header_timeout_s`` / ``listen.body_timeout_s``); the connection is closed."""

    code, status = "request_timeout", 408

    def __init__(self, phase: str, limit_s: float) -> None:
        super().__init__(f"request {phase} not received within {limit_s:g}s")
        self.phase = phase


class BodyTooLarge(ProxyError):
    code, status = "body_too_large", 413

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body exceeds the {limit}-byte limit")
        self.limit = limit


class ExpectationFailed(ProxyError):
    """RFC 9110 §10.1.1: the only expectation is ``100-continue``, which the edge answers
    itself (``Expect`` never travels to the venue)."""

    code, status = "expectation_failed", 417

    def __init__(self) -> None:
        super().__init__("unsupported Expect: only 100-continue is understood")


class RateLimited(ProxyError):
    code, status = "rate_limited", 429

    def __init__(self, limit_name: str, retry_after_s: float) -> None:
        super().__init__(f"rate limit exhausted: {limit_name}; retry after {retry_after_s:.3f}s")
        self.limit_name = limit_name
        self.retry_after_s = retry_after_s

    def extra_headers(self) -> list[tuple[str, str]]:
        # DESIGN.md: Retry-After is whole seconds, rounded up (never 0: that invites a spin).
        return [("retry-after", str(max(1, math.ceil(self.retry_after_s))))]


class RateLimitUnavailable(ProxyError):
    """The shared rate-limit backend could not decide (down, or a script/data error), and
    ``on_redis_error: fail_closed`` refuses: the client is not over any limit, so this is a
    503 naming the backend, not a 429. A deviation from DESIGN.md's table (README lists it)."""

    code, status = "rate_limit_unavailable", 503

    def __init__(self, backend: str, detail: str, retry_after_s: float) -> None:
        super().__init__(f"rate-limit backend {backend} unavailable: {detail}")
        self.backend = backend
        self.retry_after_s = retry_after_s

    def extra_headers(self) -> list[tuple[str, str]]:
        return [("retry-after", str(max(1, math.ceil(self.retry_after_s))))]


class CredentialsUnavailable(ProxyError):
    code, status = "credentials_unavailable", 503

    def __init__(self, venue: str, account: str, detail: str) -> None:
        super().__init__(f"credentials for {venue}/{account} unavailable: {detail}")
        self.venue = venue
        self.account = account


class SigningFailed(ProxyError):
    code, status = "signing_failed", 500

    def __init__(self, scheme: str, detail: str = "the signer failed") -> None:
        super().__init__(f"{scheme}: {detail}")
        self.scheme = scheme


class UpstreamUnreachable(ProxyError):
    code, status = "upstream_unreachable", 502


class UpstreamTimeout(ProxyError):
    code, status = "upstream_timeout", 504


class InternalError(ProxyError):
    """Any exception that is not a ProxyError: a bug. Rendered with a fixed message, and
    logged by class only, because its text may quote request data or key bytes (a
    traceback printed by the server would)."""

    code, status = "internal_error", 500

    def __init__(self) -> None:
        super().__init__("internal error")


@dataclass(frozen=True, slots=True)
class ErrorResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def choose_request_id(supplied: str | None) -> str:
    """The client's ``X-Request-Id`` when it is short and plain (it lands in our logs), else a new one."""
    if supplied and _REQUEST_ID.match(supplied):
        return supplied
    # 128 random bits as 32 hex digits, the shape uuid4().hex had, at a quarter of its cost.
    return os.urandom(16).hex()


# (HTTP status, contract refusal {"code", "message", "request_id"}) -> a venue's error body.
Envelope = Callable[[int, Mapping[str, str]], dict[str, Any]]


def render_error(error: ProxyError, request_id: str, envelope: Envelope | None = None) -> ErrorResponse:
    refusal = {"code": error.code, "message": error.message, "request_id": request_id}
    body = json.dumps({"error": refusal} if envelope is None else envelope(error.status, refusal)).encode()
    headers = [
        ("content-type", "application/json"),
        (ERROR_HEADER, error.code),
        ("x-request-id", request_id),
        *error.extra_headers(),
    ]
    return ErrorResponse(error.status, headers, body)

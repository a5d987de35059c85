"""Each venue scheme's JSON error shape, for the proxy's own refusals on that venue's routes.

Trading SDKs read a venue's error envelope, not the proxy's ``{"error": {...}}``: ccxt's
CoinEx client raises ``ExchangeError('coinex ')`` with an empty message for the plain
contract body, because it looks for a non-zero ``code`` and a ``message``. So a refusal on
a venue route is rendered in that venue's shape (``proxy.errors.render_error``), with a
venue code chosen so the SDK raises the matching exception: authentication -> the venue's
auth-failure code, ``policy_denied`` -> "permission denied", ``rate_limited`` -> the venue's
rate-limit code. The HTTP status, ``X-Signing-Proxy-Error`` and ``X-Request-Id`` stay as in
the contract, so a client can always tell the proxy's refusal from the venue's; the message
always reads ``signing-proxy <code>: <message>``.

An envelope is a pure function of the contract refusal (``{"code", "message",
"request_id"}``) and the HTTP status. Where the venue's shape does not use the name
``error`` (CoinEx, Icrypex, Invex) the contract object is kept under it, so a client that
parses the plain contract body keeps working; Haqqex (NestJS) and EVEDEX (its SDK throws
``data.error`` as the message) use ``error`` for a string, which gets the message text.

Shapes and codes, per scheme (README, "Using it from CCXT", has the table):

* coinex: ``{"code": <int>, "message", "data": {}}``; codes from CoinEx's v2 error list as
  ccxt 4.5.85 maps them (``coinex.exceptions['exact']``).
* icrypex: ``{"code": "<UPPER_SNAKE>", "message"}`` (the docs' 400/422 body).
* invex: ``{"detail": "<message>"}`` (FastAPI's ``HTTPException``).
* haqqex: ``{"statusCode", "message", "error": "<reason phrase>"}`` (NestJS; undocumented,
  the simulated venue's choice).
* evedex: ``{"message", "error": "<message>"}`` (OpenAPI ``ErrorResponse`` plus the SDK's
  ``data.error``).
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

Refusal = Mapping[str, str]  # the contract's {"code", "message", "request_id"}

# proxy code -> CoinEx v2 code; ccxt 4.5.85 raises the exception in the comment.
COINEX_CODES: Mapping[str, int] = {
    "unauthenticated": 4005,  # AuthenticationError (abnormal access_id)
    "policy_denied": 4512,  # PermissionDenied (insufficient permissions)
    "rate_limited": 4213,  # RateLimitExceeded (request too frequent)
    "bad_request": 4004,  # BadRequest (parameter error)
    "body_too_large": 4004,  # BadRequest
    "unknown_route": 4004,  # BadRequest
    "credentials_unavailable": 4001,  # ExchangeNotAvailable (service unavailable)
    "upstream_unreachable": 4001,  # ExchangeNotAvailable
    "upstream_timeout": 4002,  # RequestTimeout: the order may have executed, as ccxt documents
    "signing_failed": 4003,  # ExchangeError (internal error)
    "internal_error": 4003,  # ExchangeError
    "request_timeout": 4004,  # BadRequest: the client's own request was too slow; nothing was sent
    "expectation_failed": 4004,  # BadRequest
    "rate_limit_unavailable": 4001,  # ExchangeNotAvailable: the limiter is down, nothing was sent
}

# proxy code -> Icrypex string code (the docs name none but INVALID_REQUEST-style codes;
# SDKs branch on the HTTP status, which is kept).
ICRYPEX_CODES: Mapping[str, str] = {
    "unauthenticated": "UNAUTHORIZED",
    "policy_denied": "PERMISSION_DENIED",
    "rate_limited": "TOO_MANY_REQUESTS",
    "bad_request": "INVALID_REQUEST",
    "body_too_large": "INVALID_REQUEST",
    "unknown_route": "NOT_FOUND",
    "credentials_unavailable": "SERVICE_UNAVAILABLE",
    "upstream_unreachable": "SERVICE_UNAVAILABLE",
    "upstream_timeout": "GATEWAY_TIMEOUT",
    "signing_failed": "INTERNAL_ERROR",
    "internal_error": "INTERNAL_ERROR",
    "request_timeout": "REQUEST_TIMEOUT",
    "expectation_failed": "INVALID_REQUEST",
    "rate_limit_unavailable": "SERVICE_UNAVAILABLE",
}


def _venue_code(codes: Mapping[str, Any], refusal: Refusal, status: int) -> Any:
    """The mapped code; a refusal code added later without a mapping (a test flags it) still
    renders, with the code of a mapped refusal of the same status class."""
    code = codes.get(refusal["code"])
    if code is not None:
        return code
    nearest = {401: "unauthenticated", 403: "policy_denied", 429: "rate_limited"}
    return codes[nearest.get(status, "internal_error" if status >= 500 else "bad_request")]


def text(refusal: Refusal) -> str:
    """The message every envelope carries: names the proxy, its code and its reason."""
    return f"signing-proxy {refusal['code']}: {refusal['message']}"


def coinex(status: int, refusal: Refusal) -> dict[str, Any]:
    code = _venue_code(COINEX_CODES, refusal, status)
    return {"code": code, "message": text(refusal), "data": {}, "error": dict(refusal)}


def icrypex(status: int, refusal: Refusal) -> dict[str, Any]:
    code = _venue_code(ICRYPEX_CODES, refusal, status)
    return {"code": code, "message": text(refusal), "error": dict(refusal)}


def invex(status: int, refusal: Refusal) -> dict[str, Any]:
    return {"detail": text(refusal), "error": dict(refusal)}


def haqqex(status: int, refusal: Refusal) -> dict[str, Any]:
    return {"statusCode": status, "message": text(refusal), "error": HTTPStatus(status).phrase}


def evedex(status: int, refusal: Refusal) -> dict[str, Any]:
    return {"message": text(refusal), "error": text(refusal)}


# Each signer names its envelope (``Signer.envelope``); ``proxy.signers.ENVELOPES`` derives
# the scheme -> envelope map from the registry.

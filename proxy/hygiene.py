"""Header hygiene: what of the client's request may travel to the venue.

Dropped (DESIGN.md, "Header hygiene"):

* hop-by-hop headers (RFC 9110 §7.6.1) and any header the ``Connection`` header names;
* ``Proxy-Authorization`` (the client's identity, for us only) and ``Authorization``
  (belongs to venues such as EVEDEX; a client may not bring its own);
* every header any venue scheme owns (``X-COINEX-*``, ``ICX-*``, ``x-api-*``, …): a
  client can neither inject credentials nor break a signature, and SDKs that insist on
  keys work with placeholders;
* ``Expect``: the edge answers ``100 Continue`` itself and forwards complete requests
  only; an ``Expect: 100-continue`` sent on makes the client library hold the body back
  until the venue says ``100 Continue``, which a venue waiting for the body never does;
* ``Host`` and ``Content-Length`` (recomputed for the upstream request) and headers that
  would tell the venue about our internal network (``Forwarded``, ``X-Forwarded-*``,
  ``X-Real-IP``).

On the way back, a venue answer loses its hop-by-hop headers and every header of the
proxy's own contract (``X-Signing-Proxy-*``, DESIGN.md "Proxy errors"): a venue (or a
box in front of it) must not make its answer look like a proxy refusal, which a client
reads as "nothing was sent" and may retry.

The set of names is computed once (``HeaderPolicy``), not per request.

Refused, not dropped (``refuse_method_override``): ``X-HTTP-Method-Override``,
``X-Method-Override``, ``X-HTTP-Method`` and a ``_method`` query key. Frameworks that honour
them run another method than the one the policy decided on (a GET-only rule would admit a
DELETE). Dropping them silently would hide a client bug; a 400 says what to fix.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from urllib.parse import unquote

from proxy.errors import BadRequest

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
ALWAYS_DROPPED = frozenset(
    {"host", "content-length", "authorization", "forwarded", "x-real-ip", "x-request-id", "expect"}
)
DROPPED_PREFIXES = ("x-forwarded-",)
METHOD_OVERRIDES = frozenset({"x-http-method-override", "x-method-override", "x-http-method"})
PROXY_OWNED_PREFIX = "x-signing-proxy-"  # proxy.errors.ERROR_HEADER and any future header of ours


class HeaderPolicy:
    def __init__(self, owned: Iterable[str]) -> None:
        owned = frozenset(name.lower() for name in owned)
        self.exact = HOP_BY_HOP | ALWAYS_DROPPED | {n for n in owned if not n.endswith("-")}
        self.prefixes = DROPPED_PREFIXES + tuple(sorted(n for n in owned if n.endswith("-")))

    def request_headers(self, headers: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
        """Client headers (lower-case names) fit to forward."""
        named = _connection_tokens(headers)
        exact, prefixes = (self.exact | named) if named else self.exact, self.prefixes
        return tuple([(k, v) for k, v in headers if k not in exact and not k.startswith(prefixes)])


def response_headers(headers: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Venue response headers (lower-case names) minus hop-by-hop ones (the body is re-framed
    by our server) and the proxy's own."""
    named = _connection_tokens(headers)
    dropped = (_RESPONSE_DROPPED | named) if named else _RESPONSE_DROPPED
    return [(k, v) for k, v in headers if k not in dropped and not k.startswith(PROXY_OWNED_PREFIX)]


_RESPONSE_DROPPED = HOP_BY_HOP | {"content-length"}


def _connection_tokens(headers: Sequence[tuple[str, str]]) -> frozenset[str]:
    """The header names the ``Connection`` header(s) list (empty: none, the usual case)."""
    tokens: set[str] = set()
    for name, value in headers:
        if name == "connection":
            tokens.update(t.strip().lower() for t in value.split(",") if t.strip())
    return frozenset(tokens)


def refuse_method_override(headers: Iterable[tuple[str, str]], query: str) -> None:
    """``BadRequest`` when the request asks a server to run another method than its own."""
    for name, _value in headers:
        if name in METHOD_OVERRIDES:
            raise BadRequest(f"method override header {name} is refused: send the method itself")
    if "_method" in query.lower() or "%" in query:  # cheap test first: most queries have neither
        for part in query.replace(";", "&").split("&"):
            key = unquote(part.partition("=")[0].replace("+", " ")).strip().casefold()
            if key == "_method":
                raise BadRequest("method override query parameter _method is refused: send the method itself")

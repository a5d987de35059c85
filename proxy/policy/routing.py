"""Proxy path -> route: ``/<venue>/<account>/<upstream path>?<query>``.

Paths are never normalised, they are refused (DESIGN.md, "Request path"): the policy
decides on exactly the bytes that are forwarded and signed, so anything a server or an
HTTP client might resolve differently from us gets ``bad_request``:

* a ``.`` or ``..`` segment, literal or percent-encoded (``%2e``, any case, also
  double-encoded ``%252e``);
* an empty segment (``//``; a trailing slash on the upstream path is kept);
* an encoded slash or backslash (``%2f``, ``%5c``, double-encoded ``%25…``) and a literal
  backslash;
* anything that is not printable ASCII (control bytes, raw non-ASCII);
* an absolute-form request target (``GET http://host/path``), flagged by ``proxy.server``;
* a spelling a venue's server may route as another path (``proxy.policy.path_spelling``): a
  percent-encoded unreserved character (``%64`` for ``d``), an encoded space, control or
  non-ASCII byte, ``;`` or ``+`` (raw or encoded), a ``#``, a malformed ``%``; and in the
  query a raw ``;``, a ``#`` or a malformed ``%``.

A target containing none of the characters or sequences these refusals look at is split
with one search and one match; any other runs every check in the order above, so a refused
target gets the same reason whichever way it came in.

What is left has one canonical spelling (``proxy.policy.path_spelling.canonical_path``), on which
deny rules and rate-limit groups decide.

Routing only splits; whether the venue and account exist is ``resolve``'s job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from proxy.errors import BadRequest, UnknownRoute
from proxy.policy.path_spelling import KEPT_ESCAPE, REFUSED_IN_QUERY, path_ambiguity, query_ambiguity

# Percent-encodings that decode to '.', '/', '\\' (and '%', which hides the others).
_DANGEROUS_ESCAPE = re.compile(rb"%(2e|2f|5c|25)", re.IGNORECASE)
_NOT_PRINTABLE = re.compile(rb"[^\x21-\x7e]")
_NAME_TEXT = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"
ROUTE_NAME = re.compile(rf"^{_NAME_TEXT}$")  # venue and account names
# Whatever any refusal below looks at: in the path a byte that is not printable ASCII, '\\',
# ';', '+', '#', a '%' that does not start an escape ``path_spelling`` keeps, an empty segment
# ('//') or a dot segment; in the query a byte that is not printable ASCII or what
# ``path_spelling.query_ambiguity`` refuses. A target without any takes the short way (one
# search each, one match); any of them sends it through every check in order (``_vet``).
_SUSPECT_PATH = re.compile(rf"[^\x21-\x7e]|[\\;+#]|%(?!(?i:{KEPT_ESCAPE}))|//|/\.\.?(?:/|\Z)".encode())
_SUSPECT_QUERY = re.compile(rf"[^\x21-\x7e]|{REFUSED_IN_QUERY}".encode())
_ROUTE = re.compile(rf"/({_NAME_TEXT})/({_NAME_TEXT})(/.*)", re.DOTALL)  # /<venue>/<account>/<upstream>
MAX_TARGET_BYTES = 8192


@dataclass(frozen=True, slots=True)
class Route:
    venue: str
    account: str
    upstream_path: str  # starts with '/', raw (still percent-encoded) bytes as text
    query: str  # raw query string without '?', '' when absent

    @property
    def target(self) -> str:
        return self.upstream_path + ("?" + self.query if self.query else "")


def parse_route(raw_path: bytes, query: bytes) -> Route:
    """Split and vet a raw proxy path. Raises ``BadRequest`` or ``UnknownRoute``."""
    if len(raw_path) + len(query) > MAX_TARGET_BYTES:
        raise BadRequest("request target too long")
    suspect = _SUSPECT_PATH.search(raw_path) or (query and _SUSPECT_QUERY.search(query))
    if suspect or not raw_path.startswith(b"/"):
        _vet(raw_path, query)  # raises the first refusal, in the order below; or finds none
    text = raw_path.decode("ascii")
    route = _ROUTE.fullmatch(text)
    if route is None:
        _segments(text)  # fewer than three: "must be /<venue>/<account>/..."
        raise UnknownRoute("unknown venue or account")
    return Route(route[1], route[2], route[3], query.decode("ascii"))


def _vet(raw_path: bytes, query: bytes) -> None:
    """Every refusal of a suspect target, first found first: bytes, form, spelling, segments."""
    _vet_bytes(raw_path, "path")
    _vet_bytes(query, "query")
    if not raw_path.startswith(b"/"):
        raise BadRequest("request target must be origin-form (/<venue>/<account>/<path>)")
    text = raw_path.decode("ascii")
    raw_query = query.decode("ascii")
    problem = path_ambiguity(text) or (query_ambiguity(raw_query) if raw_query else None)
    if problem is not None:
        raise BadRequest(problem)
    segments = _segments(text)
    # A trailing slash is kept (some venues route on it); any other empty segment is '//'.
    for index, segment in enumerate(segments):
        _vet_segment(segment, last=index == len(segments) - 1)


def _segments(text: str) -> list[str]:
    segments = text.split("/")[1:]
    if len(segments) < 3:
        raise UnknownRoute("proxy path must be /<venue>/<account>/<upstream path>")
    return segments


def _vet_bytes(raw: bytes, what: str) -> None:
    # Printable ASCII only: what a venue signs must be unambiguous text on the wire.
    if _NOT_PRINTABLE.search(raw):
        raise BadRequest(f"{what} contains bytes that are not printable ASCII")
    if b"\\" in raw and what == "path":
        raise BadRequest("path contains a backslash")
    if what == "path" and _DANGEROUS_ESCAPE.search(raw):
        raise BadRequest("path contains an encoded dot, slash, backslash or percent sign")


def _vet_segment(segment: str, last: bool) -> None:
    if segment == "" and not last:
        raise BadRequest("path contains an empty segment ('//')")
    if segment in (".", ".."):
        raise BadRequest("path contains a dot segment")

"""One canonical spelling of an upstream path, and the spellings refused because a venue's
server could read them as another path (``docs/policies.md``, "Paths").

Venues' web servers route many spellings of a path to one endpoint: another letter case
(ASP.NET, Express/NestJS), a trailing slash (Express, ASP.NET, Spring), percent-escapes
decoded before routing (all of them), ``;params`` cut off (Tomcat/Spring), ``+`` read as a
space and then trimmed (form decoders). The proxy forwards the client's bytes unchanged
(they are what the venue signs), so it decides on a reading at least as broad as any of
those servers':

* **Refused** (``proxy.policy.routing`` raises ``bad_request``), because two servers may read them
  differently and no canonical form can pick for the venue: a percent-escape of an
  unreserved character (``%64`` for ``d``), of a control, space or non-ASCII byte (overlong
  UTF-8 ``%c0%ae``), of ``;``, ``+``, ``?`` or ``#``, or a malformed ``%`` (IIS ``%u0064``); a raw ``;``,
  ``+`` or ``#``. (Dots, slashes, backslashes and ``%25`` were refused before.)
* **Canonical spelling** of what is left: the remaining escapes (``%3A`` for ``:`` and the
  other reserved characters, which every server decodes to the same character) decoded,
  ASCII lower case, and exactly one trailing slash: ``/v2/assets/WithDraw`` and
  ``/v2/assets/withdraw/`` are both ``/v2/assets/withdraw/``.

Deny rules and rate-limit groups match the canonical spelling (case- and trailing-slash-
insensitive); allow rules must *also* match the spelling as sent (``proxy.policy.rules``).
Everything here is precompiled; a path without ``%`` costs one ``lower()``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote

# The escapes a path may keep: reserved or otherwise printable characters that are not
# unreserved and not '%', '+', '.', '/', ';', '?', '#', '\' (those have their own refusal).
#   ! " $ & ' ( ) * ,   : < = >   @   [ ] ^   `   { | }
KEPT_ESCAPE = r"(?:2[1246-9ac]|3[ac-e]|40|5[bde]|60|7[b-d])"  # any case
_REFUSED_ESCAPE = re.compile(rf"%(?!{KEPT_ESCAPE})", re.IGNORECASE)
_HEX2 = re.compile(r"[0-9A-Fa-f]{2}")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_REFUSED_IN_PATH = re.compile(r"[;+#]")
REFUSED_IN_QUERY = r"[;#]|%(?![0-9A-Fa-f]{2})|%(?:[01][0-9A-Fa-f]|7[Ff])"
_REFUSED_IN_QUERY = re.compile(REFUSED_IN_QUERY)


def path_ambiguity(path: str) -> str | None:
    """Why ``path`` (raw, printable ASCII) is refused as ambiguous, or ``None``."""
    found = _REFUSED_IN_PATH.search(path)
    if found is not None:
        return _RAW_REASONS[found[0]]
    if "%" not in path:
        return None
    found = _REFUSED_ESCAPE.search(path)
    if found is None:
        return None
    return _escape_reason(path[found.start() : found.start() + 3])


def query_ambiguity(query: str) -> str | None:
    """Why ``query`` (raw, printable ASCII) is refused as ambiguous, or ``None``.

    Narrow on purpose: a raw ``;`` (one separator to some servers, part of a value to
    Python's ``parse_qsl``), a raw ``#`` (a fragment to a server, data to us), a ``%``
    that is not an escape (IIS reads ``%u0070`` as ``p``, ``parse_qsl`` keeps it literally)
    and an encoded control byte (a C-string parser ends ``price%00x`` at ``price``).
    Escapes of unreserved characters in the query are decoded the same by every parser
    (ours included) and pass.
    """
    found = _REFUSED_IN_QUERY.search(query)
    if found is None:
        return None
    if found[0] == ";":
        return "query contains ';', a parameter separator to some servers and not to others (send %3B)"
    if found[0] == "#":
        return "query contains '#', which a server reads as the start of a fragment"
    if _HEX2.fullmatch(found[0][1:]):
        return f"query contains {found[0]}, an encoded control byte (C-string parsers stop at %00)"
    return "query contains a '%' that is not a percent-escape (%XX), which servers decode differently"


def canonical_path(path: str) -> str:
    """The canonical spelling of an upstream path that ``path_ambiguity`` accepted."""
    if "%" in path:
        path = unquote(path)
    path = path.lower()
    return path if path.endswith("/") else path + "/"


@dataclass(frozen=True, slots=True)
class PathGlob:
    """A policy path glob, compiled twice: for the spelling as sent and for the canonical one.

    ``*`` matches within one segment, ``**`` across segments (DESIGN.md). ``canonical``
    matches ``canonical_path`` output: the glob's literal text decoded and lower-cased,
    with or without its trailing slash, so ``/v2/assets/**`` also covers ``/v2/assets``.
    """

    text: str
    exact: re.Pattern[str]
    canonical: re.Pattern[str]

    def match(self, path: str) -> re.Match[str] | None:
        """The spelling as sent, case-sensitive, trailing slash as written."""
        return self.exact.match(path)

    def matches_canonical(self, canonical: str) -> bool:
        return self.canonical.match(canonical) is not None


def glob_regex(pattern: str, literal: Callable[[str], str] = str) -> str:
    """The regular expression of a glob; ``literal`` rewrites each literal part first."""
    parts = re.split(r"(\*\*|\*)", pattern)
    return "".join(".*" if p == "**" else "[^/]*" if p == "*" else re.escape(literal(p)) for p in parts)


def canonical_glob_regex(pattern: str) -> str:
    """Regex source matching the canonical spellings of every path the glob names."""
    if pattern.endswith("/"):
        pattern = pattern[:-1]
    return glob_regex(pattern, _canonical_literal) + "/?"


def compile_path_glob(pattern: str) -> PathGlob:
    exact = re.compile(glob_regex(pattern) + r"\Z", re.DOTALL)
    canonical = re.compile(canonical_glob_regex(pattern) + r"\Z", re.DOTALL)
    return PathGlob(pattern, exact, canonical)


def _canonical_literal(text: str) -> str:
    return unquote(text).lower() if "%" in text else text.lower()


def _escape_reason(escape: str) -> str:
    if not _HEX2.fullmatch(escape[1:]):
        return f"path contains '%' not followed by two hex digits ({escape!r}): servers disagree on it"
    char = chr(int(escape[1:], 16))
    if char in _UNRESERVED:
        return (
            f"path contains {escape}, a percent-encoded {char!r}: a server routes it as {char!r}, "
            "so the policy cannot tell which path it names (send the character itself)"
        )
    if char in ";+":
        return f"path contains {escape} (an encoded {char!r}), which servers read differently"
    if char in "?#":
        return f"path contains {escape} (an encoded {char!r}): a hop that decodes it reads a delimiter"
    if ord(char) >= 0x80:
        return f"path contains {escape}, an encoded non-ASCII byte (servers fold or reject it differently)"
    return f"path contains {escape}, an encoded space or control character (servers trim or reject it)"


_RAW_REASONS = {
    ";": "path contains ';': some servers (Tomcat, Spring) cut ';params' off a segment before routing",
    "+": "path contains '+', which some servers read as a space",
    "#": "path contains '#', which a server reads as the start of a fragment",
}

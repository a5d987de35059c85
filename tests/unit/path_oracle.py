"""Independent oracles for path properties: how a venue's server reads a path, and a naive
glob matcher. Neither uses the proxy's code (``proxy.policy.path_spelling``, ``proxy.policy.rules``).

``venue_reading`` is the union of what common servers do before routing, so that "the
venue routes this spelling to a denied endpoint" is judged by the broadest reader:
``;params`` cut off each segment (Tomcat, Spring), ``+`` read as a space (form decoders),
percent-escapes decoded (all), segments trimmed (Spring's ``trimTokens``), letter case
ignored (ASP.NET Core, Express), a trailing slash ignored (ASP.NET Core, Express, Spring 5).
"""

from __future__ import annotations

from urllib.parse import unquote


def venue_reading(raw_path: str) -> str:
    segments = []
    for segment in raw_path.split("/")[1:]:
        segment = segment.split(";", 1)[0]
        segment = unquote(segment.replace("+", " ")).strip()
        segments.append(segment.lower())
    path = "/" + "/".join(segments)
    return path[:-1] if len(path) > 1 and path.endswith("/") else path


def _segment_match(pattern: str, text: str) -> bool:
    """'*' within one segment; literal otherwise."""
    if not pattern:
        return not text
    if pattern[0] == "*":
        return any(_segment_match(pattern[1:], text[i:]) for i in range(len(text) + 1))
    return bool(text) and text[0] == pattern[0] and _segment_match(pattern[1:], text[1:])


def _glob(pattern: list[str], path: list[str], least: int = 0) -> bool:
    if not pattern:
        return not path
    if pattern[0] == "**":  # any number of whole segments (at least ``least``)
        return any(_glob(pattern[1:], path[i:], least) for i in range(least, len(path) + 1))
    return bool(path) and _segment_match(pattern[0], path[0]) and _glob(pattern[1:], path[1:], least)


def glob_matches(glob: str, path: str, as_sent: bool = False) -> bool:
    """``*`` within a segment, ``**`` across segments; ``**/x``: any prefix, then x.

    ``as_sent``: an allow rule matching the spelling the client sent (docs/policies.md "The
    canonical spelling"): the ``/`` the rule writes before a ``**`` is literal, so
    ``/v2/spot/**`` needs a segment after ``/v2/spot/`` (``/v2/spot`` is another spelling).
    """
    if glob.startswith("**"):
        return _glob(["**", *glob[3:].split("/")], path.split("/")[1:])
    return _glob(glob.split("/")[1:], path.split("/")[1:], 1 if as_sent else 0)

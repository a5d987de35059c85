"""A configured origin (``scheme://host[:port]``) split into what the socket, TLS and the
``Host`` header need. Pure; origins come from the configuration, never from a client."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from proxy.http1.errors import ConnectFailed

DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST = re.compile(r"[0-9a-z.\-_:%]+")  # a lower-case name (IDNA), IPv4 or IPv6 (zone included)


@dataclass(frozen=True, slots=True)
class Origin:
    tls: bool
    host: str  # what the socket connects to and TLS verifies: a name (IDNA) or an IP, no brackets
    port: int
    host_header: str  # the ``Host`` value: the port only when it is not the scheme's default


def parse_origin(origin: str) -> Origin:
    """``ConnectFailed`` for what cannot be connected to (another scheme, no host, a bad port)."""
    parts = urlsplit(origin)
    if parts.scheme not in DEFAULT_PORTS:
        raise ConnectFailed("UnsupportedScheme")
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise ConnectFailed("InvalidPort") from None
    host = parts.hostname or ""
    if not host:
        raise ConnectFailed("NoHost")
    if not host.isascii():
        host = host.encode("idna").decode("ascii")
    if _HOST.fullmatch(host) is None:
        raise ConnectFailed("InvalidHost")
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if port == DEFAULT_PORTS[parts.scheme] else f"{shown}:{port}"
    return Origin(parts.scheme == "https", host, port, host_header)

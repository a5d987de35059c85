"""The request head, byte for byte, or a refusal. Pure.

``METHOD <target> HTTP/1.1``, then ``Host`` (the origin's, unless the request carries
its own), then the request's headers in their order and spelling, then
``Content-Length`` when there is a body or the method is not GET/HEAD (``0`` for an
empty POST or DELETE, as aiohttp sent). Nothing else is added: no ``User-Agent``,
``Accept``, ``Accept-Encoding`` or ``Connection``, and never ``Transfer-Encoding``.

The target goes out exactly as given: no re-encoding, no normalisation (a venue verifies
its signature over the bytes it receives).

Refused (``UnsafeRequest``), because two parsers could read them differently (request
smuggling, header injection):

* a method that is not a token;
* a target that is not origin-form (``/`` first) or holds anything but printable ASCII
  (``!`` to ``~``): no space, control character, CR, LF, NUL or non-ASCII;
* a header name that is not a token (RFC 9110 §5.1), a header value with a control
  character other than HTAB (CR, LF, NUL, DEL included) or a character over U+00FF;
* a second ``Host``, and any ``Content-Length`` or ``Transfer-Encoding`` of the request's
  own: the body's framing is ours alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from proxy.http1.errors import UnsafeRequest

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TARGET = re.compile(r"/[!-~]*")
_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
_FRAMING = frozenset({"content-length", "transfer-encoding"})
_NO_BODY_METHODS = frozenset({"GET", "HEAD"})


def encode_request(
    method: str, target: str, headers: Iterable[tuple[str, str]], body: bytes, host_header: str
) -> bytes:
    if _TOKEN.fullmatch(method) is None:
        raise UnsafeRequest("the method is not a token")
    if _TARGET.fullmatch(target) is None:
        raise UnsafeRequest("the target is not origin-form printable ASCII")
    lines = [f"{method} {target} HTTP/1.1\r\n"]
    carried_host = False
    for name, value in headers:
        if _TOKEN.fullmatch(name) is None:
            raise UnsafeRequest("a header name is not a token")
        if _VALUE.fullmatch(value) is None:
            raise UnsafeRequest("a header value holds a control character")
        lowered = name.lower()
        if lowered == "host":
            if carried_host:
                raise UnsafeRequest("a second Host header")
            carried_host = True
        elif lowered in _FRAMING:
            raise UnsafeRequest("a framing header of the request's own (Content-Length, Transfer-Encoding)")
        lines.append(f"{name}: {value}\r\n")
    if not carried_host:
        lines.insert(1, f"Host: {host_header}\r\n")
    if body or method not in _NO_BODY_METHODS:
        lines.append(f"Content-Length: {len(body)}\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("latin-1") + body

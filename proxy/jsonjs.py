"""JavaScript ``JSON.parse`` / ``JSON.stringify`` for schemes that sign what JS would print.

HAQQEX signs ``JSON.stringify(data)`` (``../shared/venues.md`` section 4), so the proxy must
produce exactly the bytes a Node client would. Python's ``json.dumps`` differs from JS in
ways that change the bytes:

* **numbers**: JS has one number type and prints it with ``Number::toString``
  (ECMA-262 section 6.1.6.1.20): ``1.0`` -> ``1``, ``1e21`` -> ``1e+21``, ``1.5e-7`` ->
  ``1.5e-7``, ``-0`` -> ``0``; Python prints ``1.0``, ``1e+21``, ``1.5e-07``, ``-0.0``;
* **key order**: JS objects list array-index keys (``"0"``, ``"7"``, ... < 2**32 - 1)
  first, in ascending numeric order, then the other keys in insertion order
  (``OrdinaryOwnPropertyKeys``), so ``{"b":1,"1":2}`` prints as ``{"1":2,"b":1}``;
* **lone surrogates**: JS escapes them as ``\\udxxx`` (ES2019 well-formed stringify);
  Python would emit them raw and fail to encode UTF-8.

Everything else matches ``json.dumps(separators=(",", ":"), ensure_ascii=False)``: no
whitespace, non-ASCII and ``/`` unescaped, control characters as ``\\b \\f \\n \\r \\t`` or
lowercase ``\\u00xx``. Non-finite floats print ``null`` (as in JS), though ``loads`` never
produces them.

``loads`` is ``JSON.parse`` with four deliberate refusals (``JSONJSError``), because a
signing proxy must not sign and forward something other than what the client meant:

* **duplicate object keys** (JS silently keeps the last value);
* **``NaN`` / ``Infinity``** literals (JS rejects them; Python's ``json`` accepts them);
* **nesting deeper than ``MAX_DEPTH`` (128)**: see ``check_depth``; no venue payload
  comes close, and the limit keeps both parsing and ``stringify``'s recursion safe;
* **numbers a JS double cannot print back as the same value** (``12345678901234567891``,
  ``1e400``, ``1.00000000000000000001``): JS would silently change them, the client should
  send them as strings. ``0.10`` or ``1E2`` are fine: only the spelling changes.

The input must be UTF-8 without a BOM (RFC 8259 section 8.1).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

_ARRAY_INDEX_LIMIT = 2**32 - 1  # ECMA-262 "array index": a canonical integer below 2**32 - 1
_ESCAPE = re.compile(r'[\x00-\x1f"\\\ud800-\udfff]')
_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_MAX_ECHO = 40  # how much of a client's literal an error message may quote
MAX_DEPTH = 128  # nesting levels ``loads`` accepts; ``stringify`` recurses twice per level
# A whole string literal (skipped, so brackets inside strings do not count) or one bracket.
_STRUCTURE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


class JSONJSError(ValueError):
    """The input is not JSON that JS would parse and print back unchanged in meaning."""


# ---------------------------------------------------------------------------- stringify


def stringify(value: Any) -> str:
    """``JSON.stringify(value)`` for JSON-compatible Python values (dict keys must be str)."""
    parts: list[str] = []
    _write(value, parts.append)
    return "".join(parts)


def _write(value: Any, out: Callable[[str], object]) -> None:
    if value is None:
        out("null")
    elif value is True or value is False:
        out("true" if value else "false")
    elif isinstance(value, str):
        out(quote(value))
    elif isinstance(value, int | float):
        out(_number_literal(value))
    elif isinstance(value, dict):
        _write_object(value, out)
    elif isinstance(value, list | tuple):
        _write_array(value, out)
    else:
        raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _write_object(obj: dict[Any, Any], out: Callable[[str], object]) -> None:
    out("{")
    for position, key in enumerate(js_key_order(obj)):
        out("," if position else "")
        out(quote(key))
        out(":")
        _write(obj[key], out)
    out("}")


def _write_array(items: list[Any] | tuple[Any, ...], out: Callable[[str], object]) -> None:
    out("[")
    for position, item in enumerate(items):
        out("," if position else "")
        _write(item, out)
    out("]")


def js_key_order(obj: dict[Any, Any]) -> list[str]:
    """The order in which JS enumerates the keys of an object built in ``obj``'s order."""
    for key in obj:
        if not isinstance(key, str):
            raise TypeError(f"object keys must be str, not {type(key).__name__}")
    indices = sorted((key for key in obj if _is_array_index(key)), key=int)
    return indices + [key for key in obj if not _is_array_index(key)]


def _is_array_index(key: str) -> bool:
    canonical = key.isascii() and key.isdigit() and (key == "0" or not key.startswith("0"))
    return canonical and int(key) < _ARRAY_INDEX_LIMIT


def quote(text: str) -> str:
    """A JS string literal as ``JSON.stringify`` writes it (``QuoteJSONString``)."""
    return '"' + _ESCAPE.sub(_escape_char, text) + '"'


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    return _SHORT_ESCAPES.get(char) or f"\\u{ord(char):04x}"


def _number_literal(value: int | float) -> str:
    if isinstance(value, int):
        value = _int_as_float(str(value), value)  # a Python int is a JS number too
    return format_number(value) if math.isfinite(value) else "null"


def format_number(value: float) -> str:
    """``Number.prototype.toString()`` in radix 10 (ECMA-262 ``Number::toString``)."""
    if math.isnan(value):
        return "NaN"
    if value == 0:
        return "0"  # both +0 and -0
    if value < 0:
        return "-" + format_number(-value)
    if math.isinf(value):
        return "Infinity"
    digits, n = _shortest_digits(value)
    return _place_point(digits, n)


def _shortest_digits(value: float) -> tuple[str, int]:
    """(s, n) of the spec: the fewest digits s with value == 0.s * 10**n.

    ``repr`` is the shortest round-tripping decimal (closest on ties), as JS requires.
    """
    _sign, digit_tuple, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)  # finite by construction
    digits = "".join(map(str, digit_tuple))
    return digits, exponent + len(digits)


def _place_point(digits: str, n: int) -> str:
    k = len(digits)
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return "0." + "0" * -n + digits
    exponent = n - 1
    mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
    return f"{mantissa}e{'+' if exponent >= 0 else '-'}{abs(exponent)}"


# ---------------------------------------------------------------------------- loads


def loads(data: bytes | str) -> Any:
    """``JSON.parse`` of UTF-8 JSON text, with the refusals listed in the module docstring."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError:
        raise JSONJSError("not valid UTF-8") from None
    check_depth(text)
    try:
        return json.loads(
            text,
            object_pairs_hook=_object,
            parse_constant=_reject_constant,
            parse_float=_float,
            parse_int=_int,
        )
    except JSONJSError:
        raise
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise JSONJSError(f"invalid JSON: {exc.msg.removesuffix(' at')} ({where})") from None
    except RecursionError:
        raise JSONJSError("JSON nested too deeply") from None
    except ValueError:  # e.g. an integer literal over Python's 4300-digit conversion limit
        raise JSONJSError("JSON number too long") from None


def check_depth(text: str) -> None:
    # json's C scanner recurses per nesting level up to the *recursion limit*, and py_ecc
    # (imported by eth-account for EVEDEX) raises that limit to 100000 process-wide: a
    # ~200 KB body of "[[[[..." then overflows the C stack and kills the process.
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return  # cannot be deeper than its bracket count: skip the scan (the usual case)
    depth = 0
    for match in _STRUCTURE.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            if depth > MAX_DEPTH:
                raise JSONJSError(f"JSON nested too deeply (more than {MAX_DEPTH} levels)")
        elif token in ("]", "}"):
            depth -= 1


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise JSONJSError(f"duplicate object key {_first_duplicate(pairs)[:_MAX_ECHO]!r}")
    return obj


def _first_duplicate(pairs: list[tuple[str, Any]]) -> str:
    seen: set[str] = set()
    for key, _value in pairs:
        if key in seen:
            return key
        seen.add(key)
    return ""


def _reject_constant(name: str) -> Any:
    raise JSONJSError(f"{name} is not valid JSON")


def _float(literal: str) -> float:
    value = float(literal)
    _check_exact(literal, value)
    return value


def _int(literal: str) -> int:
    value = int(literal)
    _int_as_float(literal, value)
    return value


def _int_as_float(literal: str, value: int) -> float:
    try:
        as_float = float(value)
    except OverflowError:
        as_float = math.inf
    _check_exact(literal, as_float)
    return as_float


def _check_exact(literal: str, value: float) -> None:
    # JS keeps a double; refuse when printing that double back would denote another value.
    if not math.isfinite(value) or Decimal(literal) != Decimal(format_number(value)):
        raise JSONJSError(
            f"number {literal[:_MAX_ECHO]} cannot be represented exactly as a JS number; send it as a string"
        )

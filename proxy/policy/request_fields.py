"""A request's fields as the *venue* reads them, and what two parsers could read differently.

The policy decides on the venue's reading of the exact bytes forwarded (``docs/policies.md``,
"Where fields are read"). This module reads the query and the body once, strictly, and hands
out the orders a venue would act on:

* **Where**: ``proxy/policy/order_fields.yaml`` says, per scheme and method, whether the venue reads
  order fields from the JSON body or the query string, and which path segments are fields
  (EVEDEX ``{instrument}``). A constrained field anywhere else is refused.
* **Ambiguous** (``Ambiguous``, a 400 in every mode): JSON keys equal after Unicode case
  folding (Go and .NET decoders match keys case-insensitively, last one wins), a query with
  ``;`` (a separator to some servers), ``+`` (space to form decoders, plus to RFC 3986 ones),
  percent-encoded, empty or repeated keys, malformed escapes; a body that is not declared as
  JSON; a body where the venue reads the query; a path field that disagrees with the body.
* **Unusable** (``FieldProblem``, a 403): a body that is not JSON at all, a missing field.

Pure and cheap: parsing happens once per request, in ``parse_request_fields``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

from proxy import jsonjs

BODY, QUERY = "body", "query"
# Keys a query may carry when field rules apply: what venues and SDKs use, nothing a decoder
# could read two ways: no '%', '+', ';', non-ASCII, and no '[', ']' or '.' (Rails, PHP and
# Spring read "orders[0][price]" or "order.price" as nested fields).
_QUERY_KEY = re.compile(r"[A-Za-z0-9_-]{1,128}\Z")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_JSON_TYPE = re.compile(r"application/json[ \t]*(?:;[ \t]*charset[ \t]*=[ \t]*\"?utf-8\"?[ \t]*)?\Z", re.I)
_ECHO = 40  # how much of a client's text a reason may quote


class FieldProblem(Exception):
    """A request does not satisfy a constraint, or cannot be checked; the text is the reason."""


class Ambiguous(FieldProblem):
    """Two reasonable parsers could read the request differently: refused (400) in every mode."""


@dataclass(frozen=True, slots=True)
class RequestFields:
    """The request's query and body, parsed once; problems are kept for the decision."""

    query: Mapping[str, str] = field(default_factory=dict)
    body: Any = None  # the parsed JSON body; None when the body is empty
    has_body: bool = False
    problem: str | None = None  # the body is not usable JSON (403)
    ambiguity: str | None = None  # the query can be read two ways (400)
    body_ambiguity: str | None = None  # the body or its Content-Type can be read two ways (400)

    def orders(
        self,
        where: Placement,
        names: Iterable[str],
        batch: str | None = None,
        path_values: Mapping[str, str] | None = None,
    ) -> list[Mapping[str, Any]]:
        """The orders the venue reads: one mapping each, path fields included.

        ``names`` are the fields the rule constrains; ``batch`` is the body key holding the
        list of orders (``$``: the body is the list). Raises ``Ambiguous`` or ``FieldProblem``.
        """
        if self.ambiguity is not None:
            raise Ambiguous(self.ambiguity)
        folded = {name.casefold() for name in names}
        if where.location == QUERY:
            if self.has_body:
                raise Ambiguous(
                    f"{where.scheme} reads fields from the query on {where.method}, "
                    "and this request has a body"
                )
            items: list[Mapping[str, Any]] = [self.query]
        elif where.location == BODY:
            if self.body_ambiguity is not None:
                raise Ambiguous(self.body_ambiguity)
            for key in self.query:
                if key.casefold() in folded:
                    raise Ambiguous(
                        f"{key} is in the query; {where.scheme} reads it from the JSON body on {where.method}"
                    )
            items = self._body_orders(batch, folded)
        else:
            raise FieldProblem(f"{where.scheme} reads no order fields on {where.method}")
        if path_values:
            items = [
                _with_path_values(item, path_values, f"order [{index}]: " if batch else "")
                for index, item in enumerate(items)
            ]
        return items

    def refuse_attached(self, keys: Iterable[str]) -> None:
        """``FieldProblem`` when the query or the body, at any depth, carries one of ``keys``.

        Attached orders (EVEDEX ``tpsl``) have their own quantity and price in a shape the
        venue does not document: no bound or cap can read them, so a constrained rule refuses
        them rather than let them through unchecked. Compared after case folding (a
        case-insensitive decoder reads ``TPSL`` as ``tpsl``); ``null`` and ``[]`` carry none.
        """
        folded = {key.casefold() for key in keys}
        for key in self.query:
            if key.casefold() in folded:
                raise FieldProblem(f"{key} in the query: attached orders are not checked by field rules")
        stack: list[tuple[str, Any]] = [("", self.body)]
        while stack:  # the depth is bounded by jsonjs.check_depth at parse time
            where, value = stack.pop()
            if isinstance(value, list):
                stack.extend((f"{where}[{index}]", item) for index, item in enumerate(value))
            elif isinstance(value, dict):
                for key, item in value.items():
                    here = f"{where}.{key}" if where else key
                    if key.casefold() in folded and item not in (None, []):
                        raise FieldProblem(
                            f"{here}: attached orders are not checked by field rules "
                            "(their quantity and price escape the rule's bounds and notional); "
                            "send them as separate orders, or allow them with an unconstrained rule"
                        )
                    stack.append((here, item))

    def _body_orders(self, batch: str | None, folded: set[str]) -> list[Mapping[str, Any]]:
        if not self.has_body:
            return [{}]
        if self.problem is not None:
            raise FieldProblem(self.problem)
        data = self.body
        orders: list[Any]
        if batch == "$":
            if not isinstance(data, list):
                raise FieldProblem("the body is not a JSON array of orders")
            orders = data
        elif not isinstance(data, dict):
            raise FieldProblem("the body is not a JSON object")
        elif batch is None:
            return [data]
        else:
            for key in data:
                if key != batch and key.casefold() in folded:
                    raise Ambiguous(f"{key} is beside the {batch} list: which applies is the venue's guess")
            found = data.get(batch)
            if not isinstance(found, list):
                raise FieldProblem(f"the batch ({batch}) is missing or not a JSON array")
            orders = found
        if not orders:
            raise FieldProblem("the batch is empty" if batch == "$" else f"the batch ({batch}) is empty")
        for index, item in enumerate(orders):
            if not isinstance(item, dict):
                raise FieldProblem(f"order [{index}] is not a JSON object")
        return orders


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a scheme reads order fields for one method: ``body``, ``query`` or ``None``."""

    scheme: str
    method: str
    location: str | None


def _with_path_values(
    item: Mapping[str, Any], path_values: Mapping[str, str], where: str
) -> Mapping[str, Any]:
    """The order with the path's fields; a body value of the same name must be the same."""
    merged = dict(item)
    for name, value in path_values.items():
        if "%" in value:
            raise Ambiguous(f"{name} in the path is percent-encoded: decoders disagree on it")
        for key in item:
            if key.casefold() == name.casefold() and item[key] != value:
                shown = f"{name} {show(item[key])} in the body differs from the path's {show(value)}"
                raise Ambiguous(where + shown)
        merged[name] = value
    return merged


# --------------------------------------------------------------------------- parsing


def joined_header(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    """A request header's value (lower-case names); several are joined with ``,``, which no
    JSON Content-Type matches: two Content-Types are ambiguous."""
    values = [value for key, value in headers if key == name]
    return ", ".join(values) if values else None


def parse_request_fields(
    query: str,
    body: bytes,
    content_type: str | None = "application/json",
    content_encoding: str | None = None,
) -> RequestFields:
    """Fields of a query string and a body. Never raises: problems are recorded.

    ``content_type`` is the request's Content-Type (``None``: absent; several headers joined
    with ``,``, which no JSON type matches). Defaults to JSON for hand-written requests.
    ``content_encoding``: a body the venue would decompress is not the body the policy read.
    """
    params, ambiguity = parse_query(query)
    if not body.strip():
        return RequestFields(params, None, bool(body), ambiguity=ambiguity)
    typed = None
    if content_type is None or not _JSON_TYPE.match(content_type.strip()):
        shown = "no Content-Type" if content_type is None else f"Content-Type {show(content_type)}"
        typed = f"{shown}: field rules read a JSON body, sent as application/json (charset utf-8 at most)"
    elif content_encoding is not None and content_encoding.strip().lower() != "identity":
        typed = f"Content-Encoding {show(content_encoding)}: field rules read the body as sent, uncompressed"
    try:
        data = _parse_json(body)
    except Ambiguous as exc:
        return RequestFields(params, None, True, ambiguity=ambiguity, body_ambiguity=typed or str(exc))
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONJSError too
        problem = f"the body is not usable JSON ({_brief(exc)})"
        return RequestFields(params, None, True, problem, ambiguity, typed)
    return RequestFields(params, data, True, ambiguity=ambiguity, body_ambiguity=typed)


def parse_query(query: str) -> tuple[dict[str, str], str | None]:
    """``key=value&...`` read strictly: ``(params, None)`` or ``(partial, why it is ambiguous)``."""
    params: dict[str, str] = {}
    if not query:
        return params, None
    for char, why in (
        (";", "a separator to some servers (send %3B)"),
        ("+", "a space to form decoders and '+' to others (send %20 or %2B)"),
    ):
        if char in query:
            return params, f"{char!r} in the query is {why}"
    folded: dict[str, str] = {}
    for part in query.split("&"):
        key, _, raw = part.partition("=")
        if not key:
            return params, "empty query key (or '&&'): servers disagree on what it means"
        if "%" in key:
            return params, f"percent-encoded query key {show(key)}: some servers do not decode keys"
        if not _QUERY_KEY.match(key):
            return params, f"query key {show(key)} has characters decoders read differently"
        if key.casefold() in folded:
            twice = "twice" if folded[key.casefold()] == key else "twice (letter case aside)"
            shown = show(key.lower())
            return params, f"query key {shown} appears {twice}: which one counts is the server's choice"
        if _BAD_ESCAPE.search(raw):
            return params, f"malformed percent escape in query value of {key}"
        try:
            value = unquote(raw, errors="strict")
        except UnicodeDecodeError:
            return params, f"query value of {key} is not UTF-8 once decoded"
        folded[key.casefold()] = key
        params[key] = value
    return params, None


def _parse_json(body: bytes) -> Any:
    text = body.decode("utf-8")
    jsonjs.check_depth(text)  # before json.loads: deep nesting can crash the process
    return json.loads(
        text,
        parse_float=Decimal,
        parse_int=Decimal,
        parse_constant=_reject_constant,
        object_pairs_hook=_unique_keys,
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        # Parsers disagree on which duplicate wins: the policy could check one, the venue use the other.
        raise Ambiguous("duplicate object key")
    seen: dict[str, str] = {}
    for key in obj:
        # Go's encoding/json and .NET match keys case-insensitively (Unicode folding: '\u017f' is 's').
        other = seen.setdefault(key.casefold(), key)
        if other != key:
            raise Ambiguous(f"keys {show(other)} and {show(key)} are the same to a case-insensitive decoder")
    return obj


def _brief(exc: BaseException) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    return str(exc)[:80]


def show(value: Any) -> str:
    """A client value as a reason may quote it: short, and never more than ``_ECHO`` chars."""
    if isinstance(value, str):
        return repr(value[:_ECHO] + ("..." if len(value) > _ECHO else ""))
    if isinstance(value, Decimal):
        text = str(value)
        return text if len(text) <= _ECHO else text[:_ECHO] + "..."
    names = {dict: "an object", list: "an array", bool: "a boolean", type(None): "null"}
    return names.get(type(value), type(value).__name__)

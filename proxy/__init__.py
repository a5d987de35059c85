"""signing-proxy: a signing reverse proxy between trading services and crypto venues."""

import sys as _sys

__version__ = "0.1.0"

# py_ecc (pulled in by eth-account for EVEDEX) raises the process-wide recursion limit
# to 100000 on import. With that limit, json's C parser recurses on a ~200 KB body of
# "[[[[…" until the C stack overflows and the process dies (segfault) instead of raising
# RecursionError. We never use py_ecc's pairing code, so import it here, first, and put
# the interpreter's limit back. (Parsers of client JSON also bound nesting themselves.)
_limit = _sys.getrecursionlimit()
import py_ecc  # noqa: E402, F401

_sys.setrecursionlimit(_limit)

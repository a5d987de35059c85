"""Data files that ship inside the package: the venue rate-limit profiles and order fields.

Found with ``importlib.resources`` (never relative to the source checkout), so an installed
wheel reads exactly what it carries. A wheel installs unpacked, so each resource is a real
file; the loaders take a ``Path`` because their errors name the file.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def shipped(*parts: str) -> Path:
    """The path of a data file (or directory) inside the installed ``proxy`` package."""
    return Path(str(files("proxy").joinpath(*parts)))


RATE_LIMIT_PROFILES = shipped("ratelimit", "data")
ORDER_FIELDS = shipped("policy", "order_fields.yaml")

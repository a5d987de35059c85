"""Access to the independent test vectors in ``tests/vectors/`` (see its README for sources)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

VECTORS = Path(__file__).resolve().parent / "vectors"


@cache
def load(venue: str) -> dict[str, Any]:
    with open(VECTORS / f"{venue}.json", encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def vector(venue: str, name: str) -> dict[str, Any]:
    for item in load(venue)["vectors"]:
        if item["name"] == name:
            return dict(item)
    raise KeyError(f"{venue}: no vector named {name}")

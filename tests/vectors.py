"""Access to the independent test vectors in ``../shared/vectors`` (beside the repo)."""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SIGNING_PROXY_SHARED", REPO.parent / "shared"))


@cache
def load(venue: str) -> dict[str, Any]:
    with open(SHARED / "vectors" / f"{venue}.json", encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def vector(venue: str, name: str) -> dict[str, Any]:
    for item in load(venue)["vectors"]:
        if item["name"] == name:
            return dict(item)
    raise KeyError(f"{venue}: no vector named {name}")

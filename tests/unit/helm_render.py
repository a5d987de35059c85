"""Render the chart with Helm's own engine (Helm v4's Go SDK through ``helm-python-sdk``;
no helm binary or cluster needed) and return the manifests as parsed documents."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python
import yaml

CHART = Path(__file__).resolve().parents[2] / "helm" / "signing-proxy"


def render(values: dict[str, Any] | None = None, release: str = "rel") -> list[dict[str, Any]]:
    """Every rendered object (``kind`` set), in template order."""
    with helm_python.Chart.load(str(CHART)) as chart:
        manifests = chart.render(values or {}, name=release, namespace="trading")
    documents = []
    for _, text in sorted(manifests.items()):
        documents += [doc for doc in yaml.safe_load_all(text) if isinstance(doc, dict) and doc.get("kind")]
    return documents


def one(documents: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in documents if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"{len(found)} {kind} {name or ''}"
    return found[0]


def render_error(values: dict[str, Any]) -> str:
    """The message of a template ``fail`` for these values."""
    try:
        render(values)
    except helm_python.HelmError as error:
        return str(error)
    raise AssertionError("the chart rendered")

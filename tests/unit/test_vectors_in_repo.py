"""The test vectors live in the clone (a fresh clone runs every test with nothing beside it)."""

from __future__ import annotations

from pathlib import Path

from tests import vectors

REPO = Path(__file__).resolve().parents[2]


def test_vectors_are_read_from_inside_the_repo() -> None:
    assert vectors.VECTORS.resolve().is_relative_to(REPO)
    assert vectors.load("coinex")["venue"] == "coinex"


def test_every_vector_file_says_where_it_came_from() -> None:
    readme = (vectors.VECTORS / "README.md").read_text()
    files = sorted(p.name for p in vectors.VECTORS.glob("*.json"))
    assert files == ["coinex.json", "evedex.json", "haqqex.json", "icrypex.json", "invex.json"]
    for name in files:
        assert f"`{name}`" in readme
        assert vectors.load(name.removesuffix(".json"))["generated_by"].startswith("make_")

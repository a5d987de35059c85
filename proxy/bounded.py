"""A bounded memo for pure per-request results (issue 17).

The hot path caches results that are a pure function of their key, so a cache hit gives
the very answer the function would. Keys come from client input (paths, methods), so the
cache has a hard size: when full, the oldest entry goes (first in, first out), and a client
that sprays distinct paths costs at most ``size`` entries and only slows its own hits.
Each cache lives on (or beside) the configuration it was computed from, so a reload drops it.
"""

from __future__ import annotations

from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")

DEFAULT_SIZE = 4096


class BoundedCache(Generic[K, V]):
    __slots__ = ("_entries", "size")

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        self.size = size
        self._entries: dict[K, V] = {}

    def get(self, key: K) -> V | None:
        return self._entries.get(key)

    def put(self, key: K, value: V) -> None:
        entries = self._entries
        if key not in entries and len(entries) >= self.size:
            del entries[next(iter(entries))]  # dicts keep insertion order: the oldest
        entries[key] = value

    def __len__(self) -> int:
        return len(self._entries)

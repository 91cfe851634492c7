"""``RecentCache``: the in-memory caches of compiled code, bounded by entry count.

``tj.compile``'s graph cache and the builds shared by ``tj.grad``-family functions keep
machine code that new function objects of the same code reuse. A process that compiles
many different graphs (a server building a model per request, a sweep over shapes) must
not keep all of them forever, so each cache keeps its most recently used entries only:
``TENSORJIT_MEMORY_CACHE_ENTRIES`` of them (default 256). An evicted function still works
for whoever holds it (a ``tj.jit`` function keeps its own); only reuse by new function
objects is lost, and the disk cache still spares the compile.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import Generic, TypeVar

from tensorjit.ir.errors import TensorJitError

K = TypeVar("K")
V = TypeVar("V")

ENTRIES_VARIABLE = "TENSORJIT_MEMORY_CACHE_ENTRIES"
DEFAULT_ENTRIES = 256


def configured_entries() -> int:
    """The capacity ``TENSORJIT_MEMORY_CACHE_ENTRIES`` asks for (default 256)."""
    raw = os.environ.get(ENTRIES_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_ENTRIES
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 1:
        raise TensorJitError(f"{ENTRIES_VARIABLE}: expected a positive integer, got {raw!r}")
    return value


class RecentCache(Generic[K, V]):
    """A thread-safe mapping that keeps the ``capacity`` most recently used entries
    (``None``: read ``TENSORJIT_MEMORY_CACHE_ENTRIES`` when the cache is made)."""

    def __init__(self, capacity: int | None = None) -> None:
        self.capacity = configured_entries() if capacity is None else capacity
        if self.capacity < 1:
            raise TensorJitError(f"RecentCache: capacity must be positive, got {capacity}")
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def add(self, key: K, value: V) -> V:
        """Keep ``value`` under ``key`` unless an entry is there already, and return the
        entry kept: two threads that built the same thing converge on one."""
        with self._lock:
            kept = self._entries.setdefault(key, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
            return kept

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

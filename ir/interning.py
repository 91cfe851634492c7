"""The intern table behind hash-consed IR objects (graph nodes, loop expressions).

It maps a structural key to the live object made for it and holds objects weakly: an
entry goes when its object dies. It does what ``weakref.WeakValueDictionary`` does for
these tables, at a third of its cost on a miss (no ``KeyError`` raised and caught inside
``get``): tracing and rewriting look up every node they build, most of them new.
"""

from __future__ import annotations

from _weakref import _remove_dead_weakref
from typing import Any
from weakref import KeyedRef


class InternTable:
    def __init__(self) -> None:
        refs: dict[Any, KeyedRef] = {}

        def forget(ref: KeyedRef) -> None:
            # (removes the entry only if it still holds this dead reference, not a newer
            # object interned under the same key)
            _remove_dead_weakref(refs, ref.key)

        self._refs = refs
        self._forget = forget

    def get(self, key: Any) -> Any:
        """The live object interned under ``key``, else None."""
        ref = self._refs.get(key)
        return None if ref is None else ref()

    def put(self, key: Any, obj: Any) -> None:
        self._refs[key] = KeyedRef(obj, self._forget, key)

    def __len__(self) -> int:
        return len(self._refs)

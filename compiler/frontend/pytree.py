"""Pytrees: nested tuples, lists and dicts of arrays (a model's parameters), flattened to a
list of leaves and rebuilt in the same structure (gradients come back shaped like the
arguments). Dict entries are ordered by sorted key, as in JAX; ``None`` is an empty node;
named tuples keep their type.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TreeDef:
    """The structure of a pytree (hashable: it is part of compile-cache keys)."""

    kind: str  # leaf | none | tuple | list | dict | namedtuple
    children: tuple[TreeDef, ...] = ()
    meta: Any = None  # dict keys (sorted) or the namedtuple class

    @property
    def num_leaves(self) -> int:
        if self.kind == "leaf":
            return 1
        return sum(c.num_leaves for c in self.children)


LEAF = TreeDef("leaf")


def _sorted_keys(d: dict) -> list[Any]:
    try:
        return sorted(d)
    except TypeError:
        return list(d)


def flatten(tree: Any) -> tuple[list[Any], TreeDef]:
    leaves: list[Any] = []
    return leaves, _flatten(tree, leaves)


def _flatten(tree: Any, leaves: list[Any]) -> TreeDef:
    if tree is None:
        return TreeDef("none")
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return TreeDef("namedtuple", tuple(_flatten(c, leaves) for c in tree), type(tree))
    if isinstance(tree, (tuple, list)):
        kind = "tuple" if isinstance(tree, tuple) else "list"
        return TreeDef(kind, tuple(_flatten(c, leaves) for c in tree))
    if isinstance(tree, dict):
        keys = _sorted_keys(tree)
        return TreeDef("dict", tuple(_flatten(tree[k], leaves) for k in keys), tuple(keys))
    leaves.append(tree)
    return LEAF


def unflatten(treedef: TreeDef, leaves: Sequence[Any]) -> Any:
    it = iter(leaves)
    out = _build(treedef, it)
    if next(it, _END) is not _END:
        raise ValueError("unflatten: more leaves than the tree has")
    return out


_END = object()


def _build(td: TreeDef, it: Iterator[Any]) -> Any:
    if td.kind == "leaf":
        value = next(it, _END)
        if value is _END:
            raise ValueError("unflatten: fewer leaves than the tree has")
        return value
    if td.kind == "none":
        return None
    children = [_build(c, it) for c in td.children]
    if td.kind == "tuple":
        return tuple(children)
    if td.kind == "list":
        return children
    if td.kind == "namedtuple":
        return td.meta(*children)
    return dict(zip(td.meta, children))


def tree_map(fn: Any, tree: Any) -> Any:
    leaves, td = flatten(tree)
    return unflatten(td, [fn(x) for x in leaves])

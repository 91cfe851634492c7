"""The graph IR: interned, immutable nodes of ops on whole tensors, and graphs of them.

Structurally identical nodes are the same Python object (hash-consing), so common
subexpressions are shared by construction and node identity is a cheap hash key.
A node's source location is kept beside its identity: the first creator's line wins.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tensorjit.ir.dtypes import DType
from tensorjit.ir.interning import InternTable
from tensorjit.ir.shapes import Shape


@dataclass(frozen=True)
class ConstArray:
    """A NumPy array held as an attribute; hashed by content so equal constants intern."""

    data: bytes
    dtype: str
    shape: tuple[int, ...]

    @staticmethod
    def of(array: np.ndarray) -> ConstArray:
        a = np.asarray(array)
        a = a if a.flags.c_contiguous else a.copy(order="C")  # (ascontiguousarray makes 0-d 1-d)
        return ConstArray(a.tobytes(), a.dtype.str, tuple(a.shape))

    def array(self) -> np.ndarray:
        return np.frombuffer(self.data, dtype=np.dtype(self.dtype)).reshape(self.shape)

    def __repr__(self) -> str:
        return f"array{list(self.shape)}"


Attrs = tuple[tuple[str, Any], ...]


@dataclass(frozen=True, eq=False, repr=False)
class Node:
    op: str
    inputs: tuple[Node, ...]
    attrs: Attrs
    shape: Shape
    dtype: DType
    loc: str | None = field(default=None, compare=False)

    def attr(self, name: str, default: Any = None) -> Any:
        for k, v in self.attrs:
            if k == name:
                return v
        return default

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        from tensorjit.ir.printer import format_node_short

        return format_node_short(self)


_table = InternTable()
_lock = threading.Lock()


def make_node(
    op: str,
    inputs: Iterable[Node],
    attrs: dict[str, Any] | Attrs,
    shape: Shape,
    dtype: DType,
    loc: str | None = None,
) -> Node:
    """The one way to create a node: returns the existing node if an identical one lives."""
    # (written for speed: a traced gradient makes thousands of nodes; 3.3 -> 2.4 us each)
    ins = inputs if type(inputs) is tuple else tuple(inputs)
    at = tuple(sorted(attrs.items())) if isinstance(attrs, dict) else tuple(attrs)
    key = (op, tuple(map(id, ins)), tuple([(k, _attr_key(v)) for k, v in at]) if at else (),
           shape, dtype)
    with _lock:
        node = _table.get(key)
        if node is None or node.inputs != ins:
            # (the fields set at once: a frozen dataclass's __init__ sets them one by one
            # through object.__setattr__, 0.7 -> 0.4 us per node)
            node = _new_node(Node)
            node.__dict__.update(op=op, inputs=ins, attrs=at, shape=shape, dtype=dtype,
                                 loc=loc)
            _table.put(key, node)
    return node


_new_node = object.__new__


def _attr_key(value: Any) -> Any:
    """Floats by bit pattern: 0.0 and -0.0 are different constants (1 and 1.0 too)."""
    if isinstance(value, float):
        return ("f", value.hex())
    if isinstance(value, tuple):
        return tuple(_attr_key(v) for v in value)
    return (type(value).__name__, value)


def toposort(roots: Iterable[Node]) -> list[Node]:
    """Nodes reachable from roots, inputs before users; iterative (deep graphs are fine)."""
    order: list[Node] = []
    seen: set[Node] = set()  # (nodes hash by identity)
    for root in roots:
        if root in seen:
            continue
        seen.add(root)
        # Each node on the stack with an iterator over its inputs: the next unseen input
        # goes on top; a node whose inputs are exhausted is emitted.
        stack: list[tuple[Node, Iterator[Node]]] = [(root, iter(root.inputs))]
        while stack:
            node, pending = stack[-1]
            for child in pending:
                if child not in seen:
                    seen.add(child)
                    stack.append((child, iter(child.inputs)))
                    break
            else:
                stack.pop()
                order.append(node)
    return order


@dataclass
class Graph:
    """A function: parameter nodes (op ``param``) in call order and output nodes."""

    params: tuple[Node, ...]
    outputs: tuple[Node, ...]
    name: str = "fn"
    # Output structure: False -> a single array is returned, True -> a tuple.
    returns_tuple: bool = False
    _order: list[Node] | None = field(default=None, repr=False, compare=False)
    # Set by the verifier once it has passed the graph (which, like ``_order``, assumes
    # params and outputs are not reassigned afterwards): a traced graph is not checked
    # again when compiled.
    _verified: bool = field(default=False, init=False, repr=False, compare=False)

    def nodes(self) -> list[Node]:
        if self._order is None:
            self._order = toposort(list(self.outputs) + list(self.params))
        return self._order

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes())

    def users(self) -> dict[Node, list[Node]]:
        out: dict[Node, list[Node]] = {n: [] for n in self.nodes()}
        for n in self.nodes():
            for i in n.inputs:
                out[i].append(n)
        return out

    def symbols(self) -> tuple[str, ...]:
        """Symbolic dim names of the parameters, in order of first appearance."""
        seen: dict[str, None] = {}
        for p in self.params:
            for d in p.shape:
                if isinstance(d, str):
                    seen.setdefault(d, None)
        return tuple(seen)

    def __str__(self) -> str:
        from tensorjit.ir.printer import format_graph

        return format_graph(self)

    def to_dot(self) -> str:
        from tensorjit.ir.printer import graph_to_dot

        return graph_to_dot(self)

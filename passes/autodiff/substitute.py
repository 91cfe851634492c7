"""Placeholders and substitution: how a differentiated function gets fresh inputs.

``tj.grad(f)(x)`` inside a trace must not confuse the ``x`` it differentiates with the
same node reaching ``f`` another way (a closure over ``x``, as in
``grad(lambda z: z * x)(x)``, whose answer is ``x``, not ``2x``). So ``f`` is traced on
placeholder nodes, differentiated with respect to them, and the placeholders are then
replaced by the actual argument nodes. Interning makes the rebuilt forward nodes the very
nodes the enclosing trace already has, so nothing is computed twice.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

from tensorjit.ir.dtypes import DType
from tensorjit.ir.graph import Node, make_node, toposort
from tensorjit.ir.shapes import Shape

_counter = itertools.count()
PLACEHOLDER_PREFIX = "%autodiff"


def placeholder(shape: Shape, dtype: DType, role: str = "arg") -> Node:
    """A fresh ``param`` node no graph has (the verifier rejects it if one survives)."""
    return make_node("param", (), {"index": -1, "name": f"{PLACEHOLDER_PREFIX}.{role}."
                                   f"{next(_counter)}"}, tuple(shape), dtype)


def substitute(roots: Sequence[Node], mapping: Mapping[Node, Node]) -> list[Node]:
    """``roots`` with every node in ``mapping`` replaced (same shapes and dtypes)."""
    if not mapping:
        return list(roots)
    for old, new in mapping.items():
        if (old.shape, old.dtype) != (new.shape, new.dtype):
            raise AssertionError(f"substitute: {old} and {new} differ in type")
    new_of: dict[Node, Node] = dict(mapping)
    for node in toposort(roots):
        if node in new_of:
            continue
        inputs = tuple(new_of.get(i, i) for i in node.inputs)
        if inputs != node.inputs:
            new_of[node] = make_node(node.op, inputs, node.attrs, node.shape, node.dtype,
                                     node.loc)
    return [new_of.get(r, r) for r in roots]

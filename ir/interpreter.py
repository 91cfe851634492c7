"""The NumPy reference interpreter: executes any graph and defines its semantics."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tensorjit.ir.graph import Graph, Node
from tensorjit.ir.ops import TypeInfo, get_op
from tensorjit.ir.shapes import Shape


def bind_shape(shape: Shape, bindings: dict[str, int]) -> tuple[int, ...]:
    return tuple(bindings[d] if isinstance(d, str) else d for d in shape)


def interpret(graph: Graph, args: Sequence[np.ndarray],
              bindings: dict[str, int] | None = None) -> tuple[np.ndarray, ...]:
    """Evaluate ``graph`` on arrays already checked to match its params.

    ``bindings`` gives the sizes of symbolic dims; they are taken from the arguments
    when omitted.
    """
    if bindings is None:
        bindings = {}
        for p, a in zip(graph.params, args):
            for d, n in zip(p.shape, np.shape(a)):
                if isinstance(d, str):
                    bindings[d] = n
    values: dict[Node, np.ndarray] = {}
    for p, a in zip(graph.params, args):
        values[p] = np.asarray(a, dtype=p.dtype.np)
    for node in graph.nodes():
        if node in values:
            continue
        opdef = get_op(node.op)
        out = TypeInfo(bind_shape(node.shape, bindings), node.dtype)
        if node.op == "broadcast_to":
            attrs = dict(node.attrs, shape=out.shape)
        elif node.op == "reshape":
            attrs = dict(node.attrs, shape=out.shape)
        else:
            attrs = dict(node.attrs)
        result = opdef.reference([values[i] for i in node.inputs], attrs, out)
        values[node] = _conform(result, out)
    return tuple(np.array(values[o], copy=True) for o in graph.outputs)


def _conform(value: np.ndarray, out: TypeInfo) -> np.ndarray:
    value = np.asarray(value)
    if value.dtype != out.dtype.np:
        value = value.astype(out.dtype.np)
    if value.shape != out.shape:
        value = np.broadcast_to(value, out.shape)
    return value


__all__ = ["interpret", "bind_shape"]

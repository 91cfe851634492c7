"""Small matchers and builders shared by the rewrite tables.

A *splat* is a tensor with one value everywhere: a scalar ``const``, or a view
(``broadcast_to``, ``reshape``, ``transpose``, ``slice``) of one. Python scalars in user
code become splats (``x * 2.0`` is ``mul(x, broadcast_to(const 2.0))``), so most
algebraic rules match "an operand that is the splat 1.0", whatever its shape.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tensorjit.ir.build import apply, const
from tensorjit.ir.dtypes import DType
from tensorjit.ir.graph import ConstArray, Node, make_node
from tensorjit.ir.ops import Category, all_ops
from tensorjit.ir.shapes import Shape

#: Movement ops that only re-index their input (a splat stays a splat through them).
VIEW_OPS = frozenset({"reshape", "transpose", "broadcast_to", "slice"})

def ops_of(category: Category) -> tuple[str, ...]:
    """The registered ops of a category (rule tables register rules for them by name)."""
    return tuple(sorted(name for name, op in all_ops().items() if op.category is category))


def splat_value(node: Node) -> Any:
    """The value of a splat (a Python bool, int or float), else None."""
    while node.op in VIEW_OPS:
        node = node.inputs[0]
    if node.op != "const":
        return None
    value = node.attr("value")
    return None if isinstance(value, ConstArray) else value


def is_splat(node: Node) -> bool:
    return splat_value(node) is not None


def is_constant(node: Node) -> bool:
    """A splat or a view of an array constant: known at compile time."""
    while node.op in VIEW_OPS:
        node = node.inputs[0]
    return node.op == "const"


def same_value(a: Any, b: Any) -> bool:
    """Equality that tells -0.0 from 0.0 and treats NaN as equal to NaN."""
    if isinstance(a, float) or isinstance(b, float):
        fa, fb = float(a), float(b)
        if math.isnan(fa) or math.isnan(fb):
            return math.isnan(fa) and math.isnan(fb)
        return fa == fb and math.copysign(1.0, fa) == math.copysign(1.0, fb)
    return bool(a == b)


def is_value(node: Node, value: float | int | bool) -> bool:
    v = splat_value(node)
    if v is None:
        return False
    if node.dtype.is_float:
        return same_value(float(v), float(value))
    return bool(v == value)


def splat(value: Any, dtype: DType, shape: Shape, loc: str | None = None) -> Node:
    """``value`` everywhere in ``shape``: a scalar const, broadcast if the shape is not ()."""
    if isinstance(value, np.generic):
        value = value.item()
    c = const(value, dtype, loc=loc)
    if shape == ():
        return c
    return make_node("broadcast_to", (c,), {"shape": tuple(shape)}, tuple(shape), dtype, loc)


def rebuild(node: Node, inputs: tuple[Node, ...]) -> Node:
    """``node`` on other inputs of the same types (shape and dtype stay)."""
    return make_node(node.op, inputs, node.attrs, node.shape, node.dtype, node.loc)


def build(op: str, inputs: list[Node] | tuple[Node, ...], attrs: dict[str, Any] | None = None,
          loc: str | None = None) -> Node:
    """A new, type-checked node (rules create nodes through this)."""
    return apply(op, list(inputs), attrs, loc=loc)


def strip_views(node: Node) -> Node:
    while node.op in VIEW_OPS:
        node = node.inputs[0]
    return node


def scalar_array(value: Any, dtype: DType) -> np.ndarray:
    return np.array(value, dtype=dtype.np)

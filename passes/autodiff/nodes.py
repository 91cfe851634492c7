"""Small node builders for the VJP rules: checked nodes (``ir.build.apply``) that carry the
source line of the forward node being differentiated, so that an error in a backward node
points at the user's line that created its forward counterpart.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from tensorjit.ir.build import apply, const, iota
from tensorjit.ir.dtypes import DType
from tensorjit.ir.graph import Node
from tensorjit.ir.shapes import Shape
from tensorjit.passes.patterns import splat_value

_state = threading.local()


@contextlib.contextmanager
def location(loc: str | None) -> Iterator[None]:
    """Nodes built inside take ``loc`` (the forward node's line)."""
    old = getattr(_state, "loc", None)
    _state.loc = loc
    try:
        yield
    finally:
        _state.loc = old


def op(name: str, inputs: Sequence[Node], attrs: dict[str, Any] | None = None) -> Node:
    return apply(name, inputs, attrs, loc=getattr(_state, "loc", None))


def full(value: float | int | bool, shape: Shape, dtype: DType) -> Node:
    """A scalar constant broadcast to ``shape`` (a view: nothing is materialized)."""
    c = const(value, dtype, loc=getattr(_state, "loc", None))
    return c if shape == () else op("broadcast_to", [c], {"shape": tuple(shape)})


def like(value: float | int | bool, node: Node) -> Node:
    return full(value, node.shape, node.dtype)


def zeros_like(node: Node) -> Node:
    return like(0, node)


def add(a: Node, b: Node) -> Node:
    return op("add", [a, b])


def sub(a: Node, b: Node) -> Node:
    return op("sub", [a, b])


def mul(a: Node, b: Node) -> Node:
    """``a * b``, or the other factor where one is a splat of exactly one that does not
    broadcast it (``x * 1`` is ``x`` bit for bit, -0.0 and NaN included): the seed 1.0
    times a cotangent would otherwise reach the passes, whose removing it changes every
    later node's structural digest and so re-sorts their commutative operands."""
    if b.dtype is a.dtype:
        if a.shape in ((), b.shape) and _is_one(a):
            return b
        if b.shape in ((), a.shape) and _is_one(b):
            return a
    return op("mul", [a, b])


def _is_one(node: Node) -> bool:
    value = splat_value(node)
    return value is not None and not isinstance(value, bool) and value == 1


def div(a: Node, b: Node) -> Node:
    return op("div", [a, b])


def neg(a: Node) -> Node:
    return op("neg", [a])


def select(cond: Node, a: Node, b: Node) -> Node:
    return op("select", [cond, a, b])


def cast(a: Node, dtype: DType) -> Node:
    return a if a.dtype is dtype else op("cast", [a], {"dtype": dtype})


def reshape(a: Node, shape: Shape) -> Node:
    return a if a.shape == tuple(shape) else op("reshape", [a], {"shape": tuple(shape)})


def broadcast(a: Node, shape: Shape) -> Node:
    return a if a.shape == tuple(shape) else op("broadcast_to", [a], {"shape": tuple(shape)})


def transpose(a: Node, perm: Sequence[int]) -> Node:
    perm = tuple(perm)
    return a if perm == tuple(range(a.ndim)) else op("transpose", [a], {"perm": perm})


def reduce_sum(a: Node, axes: Sequence[int]) -> Node:
    axes = tuple(sorted(axes))
    return op("reduce_sum", [a], {"axes": axes}) if axes else a


def keepdims_shape(shape: Shape, axes: Sequence[int]) -> Shape:
    return tuple(1 if k in axes else d for k, d in enumerate(shape))


def unreduce(g: Node, axes: Sequence[int], shape: Shape) -> Node:
    """A reduction's result (axes dropped) broadcast back over the reduced axes."""
    return broadcast(reshape(g, keepdims_shape(shape, axes)), shape)


def sum_to_shape(g: Node, shape: Shape) -> Node:
    """The adjoint of ``broadcast_to(x, g.shape)``: sum over the broadcast axes."""
    lead = g.ndim - len(shape)
    axes = list(range(lead)) + [lead + k for k, d in enumerate(shape)
                                if d == 1 and g.shape[lead + k] != 1]
    return reshape(reduce_sum(g, axes), shape)


def cast_value(value: float | int | bool, dtype: DType) -> float | int | bool:
    """A Python scalar of ``dtype``'s kind (an attribute value such as pad's fill)."""
    return bool(value) if dtype is DType.bool else float(value) if dtype.is_float else int(value)


def op_iota(shape: Shape, axis: int) -> Node:
    return iota(tuple(shape), axis, loc=getattr(_state, "loc", None))


def point_mask(shape: Shape, point: dict[int, int]) -> Node:
    """``index == point`` over ``shape`` (bool), one ``eq(iota, i)`` per axis."""
    mask: Node | None = None
    for axis, pos in sorted(point.items()):
        c = op("eq", [op_iota(shape, axis), full(pos, shape, DType.int64)])
        mask = c if mask is None else op("logical_and", [mask, c])
    assert mask is not None
    return mask


def point_scatter(g: Node, point: dict[int, int], shape: Shape) -> Node:
    """``g`` (size 1 along the axes of ``point``) placed at ``point`` in zeros of ``shape``."""
    return select(point_mask(shape, point), broadcast(g, shape), full(0, shape, g.dtype))

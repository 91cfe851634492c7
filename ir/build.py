"""Creating checked nodes: every node goes through its op's shape-and-dtype rule."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tensorjit.ir.dtypes import DType
from tensorjit.ir.errors import TensorJitError, with_location
from tensorjit.ir.graph import ConstArray, Node, make_node
from tensorjit.ir.ops import TypeInfo, get_op
from tensorjit.ir.shapes import Shape


def apply(op: str, inputs: Sequence[Node], attrs: dict[str, Any] | None = None,
          loc: str | None = None) -> Node:
    """Make the node ``op(inputs){attrs}`` after checking it; errors carry the source line."""
    attrs = attrs or {}
    opdef = get_op(op)
    if opdef.arity is not None and len(inputs) != opdef.arity:
        raise TensorJitError(with_location(
            f"{op}: expected {opdef.arity} operands, got {len(inputs)}", loc))
    try:
        t = opdef.infer([TypeInfo(i.shape, i.dtype) for i in inputs], attrs)
    except TensorJitError as exc:
        raise type(exc)(with_location(str(exc), loc)) from None
    return make_node(op, inputs, attrs, t.shape, t.dtype, loc)


def param(index: int, name: str, shape: Shape, dtype: DType) -> Node:
    return make_node("param", (), {"index": index, "name": name}, shape, dtype)


def const(value: Any, dtype: DType, shape: Shape = (), loc: str | None = None) -> Node:
    """A constant filled with a scalar (shape ``()`` unless given) or holding an array."""
    if isinstance(value, ConstArray):
        return make_node("const", (), {"value": value}, value.shape, dtype, loc)
    py = bool(value) if dtype is DType.bool else (
        float(value) if dtype.is_float else int(value))
    return make_node("const", (), {"value": py}, shape, dtype, loc)


def iota(shape: Shape, axis: int, loc: str | None = None) -> Node:
    return make_node("iota", (), {"axis": axis}, shape, DType.int64, loc)

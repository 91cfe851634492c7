"""Canonicalization: one spelling for each computation, so that interning merges them.

- commutative operands in a fixed order (constants on the right, the rest by a stable
  structural digest), so ``a*b`` and ``b*a`` become one node;
- ``x - c`` becomes ``x + (-c)`` (exact in IEEE arithmetic and in wrapping integers);
- a scalar constant of a non-scalar shape becomes ``broadcast_to`` of a scalar constant,
  an array constant holding one value everywhere too;
- chains of shape ops collapse: ``reshape(reshape(x))``, ``transpose(transpose(x))``,
  ``broadcast_to(broadcast_to(x))``, lossless ``cast(cast(x))``, identity reshapes,
  transposes, broadcasts, slices, pads, casts and one-operand concatenations vanish,
  and a view of a splat is a splat of the view's shape.

Every rule is exact: results are bit for bit those of the unrewritten graph.
"""

from __future__ import annotations

import numpy as np

from tensorjit.ir.dtypes import DType
from tensorjit.ir.graph import ConstArray, Node
from tensorjit.passes.patterns import (
    VIEW_OPS,
    build,
    is_constant,
    rebuild,
    same_value,
    splat,
    splat_value,
    strip_views,
)
from tensorjit.passes.rewrite import RewriteContext, RuleTable

TABLE = RuleTable("canonicalize")

COMMUTATIVE = frozenset({"add", "mul", "eq", "ne", "logical_and", "logical_or", "bitwise_and",
                         "bitwise_or", "bitwise_xor", "maximum", "minimum"})
# maximum(-0.0, 0.0) is -0.0 but maximum(0.0, -0.0) is 0.0 (NumPy keeps the first of two
# equal operands), so float maximum and minimum are not commutative bit for bit.
_ORDERED_FOR_FLOATS = frozenset({"maximum", "minimum"})

# Casts A -> B that keep every value, so that cast(cast(x, B), C) == cast(x, C).
_LOSSLESS = {
    (DType.int32, DType.int64), (DType.int32, DType.float64), (DType.float32, DType.float64),
    (DType.bool, DType.int32), (DType.bool, DType.int64), (DType.bool, DType.float32),
    (DType.bool, DType.float64),
}


def _product(node: Node) -> bool:
    """A multiplication that LLVM may contract with an addition into an FMA: ``mul``, and
    what becomes one (a division by a constant, a square; strength reduction or LLVM
    itself rewrite them), possibly negated, seen through views."""
    node = strip_views(node)
    if node.op == "neg":
        node = strip_views(node.inputs[0])
    if node.op in ("div", "pow"):
        return splat_value(node.inputs[1]) is not None
    return node.op == "mul"


@TABLE.rule(*COMMUTATIVE)
def commutative_order(node: Node, ctx: RewriteContext) -> Node | None:
    a, b = node.inputs
    if node.dtype.is_float or a.dtype.is_float:
        if node.op in _ORDERED_FOR_FLOATS:
            return None
        # a*b + c*d: LLVM fuses one of the products with the sum (an FMA rounds once), and
        # which one depends on the operand order; keep the user's order there.
        if node.op == "add" and _product(a) and _product(b):
            return None
    ka = (is_constant(a), ctx.digest(a))
    kb = (is_constant(b), ctx.digest(b))
    if kb < ka:
        return rebuild(node, (b, a))
    return None


@TABLE.rule("sub")
def subtract_constant(node: Node, ctx: RewriteContext) -> Node | None:
    """x - c -> x + (-c): IEEE subtraction is addition of the negation (also for -0.0)."""
    x, c = node.inputs
    v = splat_value(c)
    if v is None or node.dtype is DType.bool:
        return None
    with np.errstate(all="ignore"):
        negated = np.negative(np.array(v, dtype=node.dtype.np))
    return build("add", [x, splat(negated, node.dtype, node.shape, c.loc)], loc=node.loc)


@TABLE.rule("const")
def scalar_constant_shape(node: Node, ctx: RewriteContext) -> Node | None:
    value = node.attr("value")
    if isinstance(value, ConstArray):
        array = value.array()
        flat = array.reshape(-1)
        if flat.size == 0:
            return None
        bits = flat.view(np.uint8).reshape(flat.size, -1)
        if not (bits == bits[0]).all():
            return None
        return splat(flat[0].item(), node.dtype, node.shape, node.loc)
    if node.shape == ():
        return None
    return splat(value, node.dtype, node.shape, node.loc)


@TABLE.rule(*VIEW_OPS, "pad")
def view_of_splat(node: Node, ctx: RewriteContext) -> Node | None:
    x = node.inputs[0]
    v = splat_value(x)
    if v is None:
        return None
    if node.op == "pad":
        if not same_value(v, node.attr("value")):
            return None
    elif node.op == "broadcast_to" and x.op == "const":
        return None  # already the canonical splat
    return splat(v, node.dtype, node.shape, node.loc)


@TABLE.rule("reshape")
def reshape_chain(node: Node, ctx: RewriteContext) -> Node | None:
    x = node.inputs[0]
    if x.shape == node.shape:
        return x
    if x.op == "reshape":
        inner = x.inputs[0]
        if inner.shape == node.shape:
            return inner
        return build("reshape", [inner], {"shape": node.attr("shape")}, loc=node.loc)
    return None


@TABLE.rule("transpose")
def transpose_chain(node: Node, ctx: RewriteContext) -> Node | None:
    perm = node.attr("perm")
    x = node.inputs[0]
    if tuple(perm) == tuple(range(len(perm))):
        return x
    if x.op == "transpose":
        inner_perm = x.attr("perm")
        composed = tuple(inner_perm[p] for p in perm)
        if composed == tuple(range(len(composed))):
            return x.inputs[0]
        return build("transpose", [x.inputs[0]], {"perm": composed}, loc=node.loc)
    return None


@TABLE.rule("broadcast_to")
def broadcast_chain(node: Node, ctx: RewriteContext) -> Node | None:
    x = node.inputs[0]
    if x.shape == node.shape:
        return x
    if x.op == "broadcast_to":
        return build("broadcast_to", [x.inputs[0]], {"shape": node.attr("shape")},
                     loc=node.loc)
    return None


@TABLE.rule("slice")
def identity_slice(node: Node, ctx: RewriteContext) -> Node | None:
    x = node.inputs[0]
    for d, start, stop, step in zip(x.shape, node.attr("starts"), node.attr("stops"),
                                    node.attr("steps")):
        if (start, stop, step) != (0, d, 1):
            return None
    return x


@TABLE.rule("pad")
def identity_pad(node: Node, ctx: RewriteContext) -> Node | None:
    if all(tuple(p) == (0, 0) for p in node.attr("pads")):
        return node.inputs[0]
    return None


@TABLE.rule("concat")
def single_concat(node: Node, ctx: RewriteContext) -> Node | None:
    return node.inputs[0] if len(node.inputs) == 1 else None


@TABLE.rule("cast")
def cast_chain(node: Node, ctx: RewriteContext) -> Node | None:
    x = node.inputs[0]
    if x.dtype is node.dtype:
        return x
    if x.op == "cast" and (x.inputs[0].dtype, x.dtype) in _LOSSLESS:
        inner = x.inputs[0]
        if inner.dtype is node.dtype:
            return inner
        return build("cast", [inner], {"dtype": node.dtype}, loc=node.loc)
    return None

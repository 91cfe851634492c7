"""Algebraic simplification that keeps IEEE results unless ``fast_math`` allows more.

Always (exact for every input, NaN, Inf and -0.0 included):
``x * 1 -> x``, ``x + (-0.0) -> x`` (``x + 0.0`` is not: ``-0.0 + 0.0`` is ``+0.0``),
``x / 1 -> x``, ``-0.0 - x -> -x``, ``--x -> x``, ``abs(abs(x))`` and ``abs(-x) -> abs(x)``,
``select(c, x, x) -> x``, ``select`` on a constant condition, ``not not x -> x``,
``maximum(x, x)``, ``minimum(x, x)``, ``x & x``, ``x | x`` -> ``x``; and for integers,
where arithmetic is exact: ``x + 0``, ``0 - x -> -x``, ``x * 0 -> 0``, ``x - x -> 0``,
``x == x -> True``.

Only with ``fast_math`` (wrong for NaN, Inf or the sign of zero):
``x + 0.0 -> x``, ``0.0 - x -> -x``, ``x * 0 -> 0``, ``x - x -> 0``, ``x / x -> 1``.
"""

from __future__ import annotations

from tensorjit.ir.dtypes import DType
from tensorjit.ir.graph import Node
from tensorjit.passes.patterns import build, is_value, splat, splat_value
from tensorjit.passes.rewrite import RewriteContext, RuleTable

TABLE = RuleTable("simplify")


def _exact(node: Node, ctx: RewriteContext) -> bool:
    """Rules that are only right for exact (integer) arithmetic may fire."""
    return not node.dtype.is_float or ctx.fast_math


def _either(node: Node, value: float) -> Node | None:
    """The other operand when one operand of a commutative op is the splat ``value``."""
    a, b = node.inputs
    if is_value(b, value):
        return a
    if is_value(a, value):
        return b
    return None


@TABLE.rule("mul")
def multiply_by_one(node: Node, ctx: RewriteContext) -> Node | None:
    return _either(node, 1)


@TABLE.rule("mul")
def multiply_by_zero(node: Node, ctx: RewriteContext) -> Node | None:
    """x * 0 -> 0: NaN * 0 is NaN, Inf * 0 is NaN and -1 * 0 is -0.0, so floats need
    fast_math."""
    if _exact(node, ctx) and _either(node, 0) is not None:
        return splat(0, node.dtype, node.shape, node.loc)
    return None


@TABLE.rule("add")
def add_zero(node: Node, ctx: RewriteContext) -> Node | None:
    """x + (-0.0) is x for every x; x + 0.0 is not (-0.0 + 0.0 is +0.0) without fast_math."""
    if node.dtype.is_float:
        other = _either(node, -0.0)
        if other is None and ctx.fast_math:
            other = _either(node, 0.0)
        return other
    return _either(node, 0)


@TABLE.rule("sub")
def subtract_from_zero(node: Node, ctx: RewriteContext) -> Node | None:
    """-0.0 - x is -x exactly (0.0 - x is not for x = 0.0, without fast_math)."""
    a, x = node.inputs
    zero = -0.0 if node.dtype.is_float else 0
    if is_value(a, zero) or (ctx.fast_math and node.dtype.is_float and is_value(a, 0.0)):
        return build("neg", [x], loc=node.loc)
    return None


@TABLE.rule("sub")
def subtract_self(node: Node, ctx: RewriteContext) -> Node | None:
    """x - x -> 0 (NaN - NaN and Inf - Inf are NaN: floats need fast_math)."""
    a, b = node.inputs
    if a is b and _exact(node, ctx):
        return splat(0, node.dtype, node.shape, node.loc)
    return None


@TABLE.rule("div")
def divide_by_one(node: Node, ctx: RewriteContext) -> Node | None:
    return node.inputs[0] if is_value(node.inputs[1], 1.0) else None


@TABLE.rule("div")
def divide_self(node: Node, ctx: RewriteContext) -> Node | None:
    a, b = node.inputs
    if a is b and ctx.fast_math:
        return splat(1.0, node.dtype, node.shape, node.loc)
    return None


@TABLE.rule("neg")
def double_negation(node: Node, ctx: RewriteContext) -> Node | None:
    x = node.inputs[0]
    return x.inputs[0] if x.op == "neg" else None


@TABLE.rule("abs")
def absolute_of_sign_change(node: Node, ctx: RewriteContext) -> Node | None:
    x = node.inputs[0]
    if x.op == "abs":
        return x
    if x.op == "neg":
        return build("abs", [x.inputs[0]], loc=node.loc)
    return None


@TABLE.rule("select")
def select_same_or_known(node: Node, ctx: RewriteContext) -> Node | None:
    cond, a, b = node.inputs
    if a is b:
        return a
    v = splat_value(cond)
    if v is None:
        return None
    return a if v else b


@TABLE.rule("logical_not")
def double_logical_not(node: Node, ctx: RewriteContext) -> Node | None:
    x = node.inputs[0]
    return x.inputs[0] if x.op == "logical_not" else None


@TABLE.rule("maximum", "minimum", "logical_and", "logical_or", "bitwise_and", "bitwise_or")
def idempotent(node: Node, ctx: RewriteContext) -> Node | None:
    a, b = node.inputs
    return a if a is b else None


@TABLE.rule("eq", "ne", "le", "ge", "lt", "gt")
def compare_self(node: Node, ctx: RewriteContext) -> Node | None:
    """x == x is True except for NaN: folded for integers and bools only."""
    a, b = node.inputs
    if a is not b or a.dtype.is_float:
        return None
    return splat(node.op in ("eq", "le", "ge"), DType.bool, node.shape, node.loc)

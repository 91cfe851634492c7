"""Strength reduction: cheaper operations with the same results.

Always (bit for bit what the compiled ``pow`` and ``div`` give, checked on random bit
patterns and on NaN, Inf and -0.0): ``x**1 -> x``, ``x**0 -> 1`` (``pow(NaN, 0)`` is 1),
``x**-1 -> 1/x`` (floats), ``x**2 -> x*x`` for integers, and ``x / c -> x * (1/c)`` when
``c`` is a power of two whose reciprocal is representable (the product is then the same
real number, rounded once).

Only with ``fast_math``: ``x**2 -> x*x`` for floats (the same value, but a product may be
contracted with a sum into an FMA, which LLVM never does for the ``x*x`` it makes of
``pow(x, 2)`` itself: ``x - x**2`` would round once instead of twice), ``x**0.5 ->
sqrt(x)`` (``pow(-0.0, 0.5)`` is +0.0 and ``pow(-inf, 0.5)`` is +inf where ``sqrt`` gives
-0.0 and NaN, and libm's ``powf`` is not correctly rounded where ``sqrt`` is) and
``x / c -> x * (1/c)`` for any other constant.
"""

from __future__ import annotations

import math

import numpy as np

from tensorjit.ir.graph import Node
from tensorjit.passes.patterns import build, splat, splat_value
from tensorjit.passes.rewrite import RewriteContext, RuleTable

TABLE = RuleTable("strength-reduce")


def _exponent(node: Node) -> float | None:
    v = splat_value(node.inputs[1])
    return None if v is None or isinstance(v, bool) else float(v)


@TABLE.rule("pow")
def power_small_integer(node: Node, ctx: RewriteContext) -> Node | None:
    e = _exponent(node)
    x = node.inputs[0]
    if e == 2.0 and (ctx.fast_math or not node.dtype.is_float):
        return build("mul", [x, x], loc=node.loc)
    if e == 1.0:
        return x
    if e == 0.0:
        return splat(1, node.dtype, node.shape, node.loc)
    if e == -1.0 and node.dtype.is_float:
        return build("div", [splat(1.0, node.dtype, node.shape, node.loc), x], loc=node.loc)
    return None


@TABLE.rule("pow")
def power_half_to_sqrt(node: Node, ctx: RewriteContext) -> Node | None:
    if ctx.fast_math and node.dtype.is_float and _exponent(node) == 0.5:
        return build("sqrt", [node.inputs[0]], loc=node.loc)
    return None


def _exact_reciprocal(c: float, dtype: np.dtype) -> float | None:
    """1/c when c is +-2**k and 1/c is a finite nonzero value of the dtype."""
    value = np.array(c, dtype=dtype)
    if not np.isfinite(value) or value == 0:
        return None
    mantissa, _ = math.frexp(float(value))
    if abs(mantissa) != 0.5:
        return None
    with np.errstate(all="ignore"):
        inv = np.array(1, dtype=dtype) / value
    if not np.isfinite(inv) or inv == 0 or inv * value != 1:
        return None
    return float(inv)


@TABLE.rule("div")
def divide_by_constant(node: Node, ctx: RewriteContext) -> Node | None:
    x, c = node.inputs
    v = splat_value(c)
    if v is None or float(v) == 1.0:
        return None
    inv = _exact_reciprocal(float(v), node.dtype.np)
    if inv is None and ctx.fast_math:
        with np.errstate(all="ignore"):
            r = np.array(1, dtype=node.dtype.np) / np.array(v, dtype=node.dtype.np)
        inv = float(r) if np.isfinite(r) and r != 0 else None
    if inv is None:
        return None
    return build("mul", [x, splat(inv, node.dtype, node.shape, c.loc)], loc=node.loc)

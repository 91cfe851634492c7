"""The VJP table: one row per differentiable op, keyed by op name.

A rule ``rule(node, inputs, g)`` gets the forward node, its input nodes and the cotangent
``g`` of the node's output (same shape and dtype as the node) and returns one cotangent
per input (``None`` where an input takes none: a condition, indices, a constant fill).
Rules build ordinary graph nodes, so a backward graph is optimized, fused and compiled
like any other graph, and differentiating it again (grad of grad) just applies the
table once more.

Ops in ``NON_DIFFERENTIABLE`` have no rule: their inputs get no cotangent from them,
which is a zero gradient. That covers the sources (param, const, iota), ops with an
integer or bool result (comparisons, isnan, argmax, bitwise and logical ops) and
piecewise-constant float ops (sign, floor, ceil, float floor_divide), whose derivative
is 0 wherever it exists (JAX gives 0 there as well).

Subgradient conventions at kinks (``tests/passes/test_autodiff_rules.py`` checks each):

- ``maximum``/``minimum``: at a tie the cotangent is split 0.5/0.5 between the two
  operands, as JAX's ``lax.max``/``lax.min``. ``tj.clip`` is ``minimum(maximum(x, lo),
  hi)``, as ``jnp.clip``, so ``x == lo`` gets 0.5 there as in JAX.
- ``tj.nn.relu`` is ``where(x <= 0, 0, x)`` (a select, not ``maximum``), so relu'(0) = 0
  as in ``jax.nn.relu`` and PyTorch (and NaN still propagates).
- ``abs``: abs'(0) = 0 (``g * sign(x)``, PyTorch's convention). JAX gives 1 at 0 (its rule
  is ``select(x >= 0, g, -g)``); we take 0 because it makes the subgradient symmetric and
  keeps composites exact: the stable softplus ``max(x, 0) + log1p(exp(-|x|))`` then has
  derivative 0.5 + 0 = sigmoid(0) at 0.
- ``reduce_max``/``reduce_min``: the cotangent is divided equally among the elements that
  attain the extremum (JAX's rule).
- ``sign``, ``floor``, ``ceil``: zero gradient everywhere.
- ``pow(a, b)``: as JAX, d/da is 0 where b == 0 and d/db uses log(1) = 0 where a == 0.
- ``reduce_prod``: exact with zeros in the product (no division by a zero element).
- ``take``: the data cotangent is a scatter-add written as a one-hot product summed over
  the index axes (we have no scatter op), O(indices x axis length) work; indices clipped
  and wrapped as the forward ``take`` does.

Numerical stability: rules reuse the forward node's own output where that is the
stable form (exp: g*y; sigmoid: g*y*(1-y); tanh: g*(1-y^2); sqrt: g/(2y)); the frontend's
softmax, log_softmax, logsumexp and softplus are composites of stable primitives, and
their backward graphs inherit that stability (log_softmax's backward, for instance, works
with exp(x - max) / sum, which never overflows). There is no stop_gradient op, so the
max those composites subtract gets a cotangent too; it is zero up to rounding (the
functions are shift-invariant) and goes to the row's maximal elements.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from tensorjit.ir.dtypes import DType
from tensorjit.ir.graph import Node
from tensorjit.passes.autodiff import nodes as n
from tensorjit.passes.autodiff.accumulate import total

Cotangents = tuple[Node | None, ...]
VjpRule = Callable[[Node, tuple[Node, ...], Node], Cotangents]

VJP_RULES: dict[str, VjpRule] = {}

NON_DIFFERENTIABLE: dict[str, str] = {
    "param": "a leaf: its cotangent is the result",
    "const": "a constant",
    "iota": "an integer index",
    "sign": "piecewise constant: zero gradient",
    "floor": "piecewise constant: zero gradient",
    "ceil": "piecewise constant: zero gradient",
    "floordiv": "piecewise constant (floats) or integer: zero gradient",
    "isnan": "bool result",
    "isfinite": "bool result",
    "lt": "bool result", "le": "bool result", "gt": "bool result",
    "ge": "bool result", "eq": "bool result", "ne": "bool result",
    "logical_and": "bool operands", "logical_or": "bool operands",
    "logical_not": "bool operands",
    "bitwise_and": "integer operands", "bitwise_or": "integer operands",
    "bitwise_xor": "integer operands", "invert": "integer operands",
    "argmax": "integer result", "argmin": "integer result",
}


def rule(*names: str) -> Callable[[VjpRule], VjpRule]:
    def register(fn: VjpRule) -> VjpRule:
        for name in names:
            VJP_RULES[name] = fn
        return fn

    return register


# --- elementwise: unary ------------------------------------------------------------------
def _unary(name: str, derivative: Callable[[Node, Node, Node], Node]) -> None:
    """``derivative(g, x, y)`` -> the input cotangent of ``y = name(x)``."""

    def vjp(node: Node, inputs: tuple[Node, ...], g: Node) -> Cotangents:
        return (derivative(g, inputs[0], node),)

    VJP_RULES[name] = vjp


def _one(x: Node) -> Node:
    return n.like(1.0, x)


_unary("neg", lambda g, x, y: n.neg(g))
_unary("abs", lambda g, x, y: n.mul(g, n.op("sign", [x])))
_unary("exp", lambda g, x, y: n.mul(g, y))
_unary("expm1", lambda g, x, y: n.mul(g, n.add(y, _one(y))))
_unary("log", lambda g, x, y: n.div(g, x))
_unary("log1p", lambda g, x, y: n.div(g, n.add(x, _one(x))))
_unary("log2", lambda g, x, y: n.div(g, n.mul(x, n.like(math.log(2.0), x))))
_unary("sqrt", lambda g, x, y: n.div(n.mul(g, n.like(0.5, g)), y))
_unary("sin", lambda g, x, y: n.mul(g, n.op("cos", [x])))
_unary("cos", lambda g, x, y: n.neg(n.mul(g, n.op("sin", [x]))))
_unary("tan", lambda g, x, y: n.mul(g, n.add(_one(y), n.mul(y, y))))
_unary("tanh", lambda g, x, y: n.mul(g, n.sub(_one(y), n.mul(y, y))))
_unary("arctan", lambda g, x, y: n.div(g, n.add(_one(x), n.mul(x, x))))
_unary("sigmoid", lambda g, x, y: n.mul(n.mul(g, y), n.sub(_one(y), y)))
_unary("erf", lambda g, x, y: n.mul(
    g, n.mul(n.like(2.0 / math.sqrt(math.pi), x), n.op("exp", [n.neg(n.mul(x, x))]))))


@rule("cast")
def _cast(node: Node, inputs: tuple[Node, ...], g: Node) -> Cotangents:
    x = inputs[0]
    if not (x.dtype.is_float and node.dtype.is_float):
        return (None,)
    return (n.cast(g, x.dtype),)


# --- elementwise: binary and select ------------------------------------------------------
@rule("add")
def _add(node: Node, inputs: tuple[Node, ...], g: Node) -> Cotangents:
    return (g, g)


@rule("sub")
def _sub(node: Node, inputs: tuple[Node, ...], g: Node) -> Cotangents:
    return (g, n.neg(g))


@rule("mul")
def _mul(node: Node, inputs: tuple[Node, ...], g: Node) -> Cotangents:
    a, b = inputs
    return (n.mul(g, b), n.mul(g, a))


@rule("div")
def _div(node: Node, inputs: tuple[Node, ...], g: Node) -> Cotangents:
    a, b = inputs
    ga = n.div(g, b)
    # d(a/b)/db = -a/b^2 = -(a/b)/b: reuse g/b and the output.
    return (ga, n.neg(n.mul(ga, node)))


@rule("mod")
def _mod(node: Node, inputs: tuple[Node, ...], g: Node) -> Cotangents:
    a, b = inputs
    # a mod b = a - floor(a/b) * b away from the jumps.
    return (g, n.neg(n.mul(g, n.op("floor", [n.div(a, b)]))))


@rule("pow")
def _pow(node: Node, inputs: tuple[Node, ...], g: Node) -> Cotangents:
    a, b = inputs
    zero = n.zeros_like(a)
    da = n.select(n.op("eq", [b, zero]), zero,
                  n.mul(b, n.op("pow", [a, n.sub(b, _one(b))])))
    safe_a = n.select(n.op("eq", [a, zero]), _one(a), a)
    db = n.mul(node, n.op("log", [safe_a]))
    return (n.mul(g, da), n.mul(g, db))


def _extremum(node: Node, inputs: tuple[Node, ...], g: Node) -> Cotangents:
    """maximum/minimum: the operand equal to the result takes g; a tie splits it 0.5/0.5."""
    a, b = inputs
    at_a = n.op("eq", [a, node])
    at_b = n.op("eq", [b, node])
    half = n.mul(g, n.like(0.5, g))
    zero = n.zeros_like(g)
    return (n.select(at_a, n.select(at_b, half, g), zero),
            n.select(at_b, n.select(at_a, half, g), zero))


VJP_RULES["maximum"] = _extremum
VJP_RULES["minimum"] = _extremum


@rule("select")
def _select(node: Node, inputs: tuple[Node, ...], g: Node) -> Cotangents:
    cond = inputs[0]
    zero = n.zeros_like(g)
    return (None, n.select(cond, g, zero), n.select(cond, zero, g))


# --- reductions --------------------------------------------------------------------------
@rule("reduce_sum")
def _reduce_sum(node: Node, inputs: tuple[Node, ...], g: Node) -> Cotangents:
    x = inputs[0]
    return (n.unreduce(g, node.attr("axes"), x.shape),)


def _reduce_extremum(node: Node, inputs: tuple[Node, ...], g: Node) -> Cotangents:
    """reduce_max/min: the cotangent is shared equally by the elements attaining it."""
    x = inputs[0]
    axes = node.attr("axes")
    mask = n.op("eq", [x, n.unreduce(node, axes, x.shape)])
    count = n.reduce_sum(n.cast(mask, x.dtype), axes)
    share = n.unreduce(n.div(g, count), axes, x.shape)
    return (n.select(mask, share, n.zeros_like(x)),)


VJP_RULES["reduce_max"] = _reduce_extremum
VJP_RULES["reduce_min"] = _reduce_extremum


@rule("reduce_prod")
def _reduce_prod(node: Node, inputs: tuple[Node, ...], g: Node) -> Cotangents:
    """d prod / d x_i is the product of the other elements, computed without dividing by
    zero: with no zero it is prod / x_i; with one zero, the product of the non-zeros at
    that zero and 0 elsewhere; with more than one zero, 0."""
    x = inputs[0]
    axes = node.attr("axes")
    zero = n.zeros_like(x)
    is_zero = n.op("eq", [x, zero])
    zeros = n.reduce_sum(n.cast(is_zero, x.dtype), axes)
    nonzero_prod = n.op("reduce_prod", [n.select(is_zero, _one(x), x)], {"axes": axes})
    zeros_b = n.unreduce(zeros, axes, x.shape)
    prod_b = n.unreduce(nonzero_prod, axes, x.shape)
    none = n.op("eq", [zeros_b, zero])
    one_here = n.op("logical_and", [n.op("eq", [zeros_b, _one(x)]), is_zero])
    d = n.select(none, n.div(prod_b, x), n.select(one_here, prod_b, zero))
    return (n.mul(n.unreduce(g, axes, x.shape), d),)


# --- movement ----------------------------------------------------------------------------
@rule("reshape")
def _reshape(node: Node, inputs: tuple[Node, ...], g: Node) -> Cotangents:
    return (n.reshape(g, inputs[0].shape),)


@rule("transpose")
def _transpose(node: Node, inputs: tuple[Node, ...], g: Node) -> Cotangents:
    perm = node.attr("perm")
    inverse = [0] * len(perm)
    for out_axis, in_axis in enumerate(perm):
        inverse[in_axis] = out_axis
    return (n.transpose(g, inverse),)


@rule("broadcast_to")
def _broadcast_to(node: Node, inputs: tuple[Node, ...], g: Node) -> Cotangents:
    return (n.sum_to_shape(g, inputs[0].shape),)


def _axis_attrs(node: Node, axis: int, start: int, stop: int | str,
                step: int) -> dict[str, tuple]:
    starts = [0] * node.ndim
    stops: list[int | str] = list(node.shape)
    steps = [1] * node.ndim
    starts[axis], stops[axis], steps[axis] = start, stop, step
    return {"starts": tuple(starts), "stops": tuple(stops), "steps": tuple(steps)}


def _pad_axis(g: Node, axis: int, lo: int, hi: int) -> Node:
    if lo == 0 and hi == 0:
        return g
    pads = tuple((lo, hi) if k == axis else (0, 0) for k in range(g.ndim))
    return n.op("pad", [g], {"pads": pads, "value": n.cast_value(0, g.dtype)})


def _point(node: Node) -> dict[int, int] | None:
    """{axis: index} when the slice keeps exactly one position of every axis it narrows
    (``x[i]``, ``x[i, j]``), else None."""
    x = node.inputs[0]
    point: dict[int, int] = {}
    for axis, (start, stop, step) in enumerate(
            zip(node.attr("starts"), node.attr("stops"), node.attr("steps"))):
        if (start, stop, step) == (0, x.shape[axis], 1):
            continue
        if node.shape[axis] != 1:
            return None
        point[axis] = start
    return point or None


@rule("slice")
def _slice(node: Node, inputs: tuple[Node, ...], g: Node) -> Cotangents:
    """Scatter the slice back. One element per narrowed axis (scalar-style ``x[i]``):
    ``select(index == i, g, 0)``, whose ``g`` is read at a fixed position, so fusion keeps
    it a loop-invariant scalar and the cotangents of many ``x[i]`` combine into one
    select chain (``accumulate``). Otherwise see ``_unslice``."""
    x = inputs[0]
    point = _point(node)
    if point is not None:
        return (n.point_scatter(g, point, x.shape),)
    return (_unslice(g, x.shape, node.attr("starts"), node.attr("stops"),
                     node.attr("steps")),)


def _unslice(g: Node, shape: tuple, starts: tuple, stops: tuple, steps: tuple) -> Node:
    """The adjoint of slicing an array of ``shape``: flip negative steps, interleave zeros
    for steps > 1 and pad to the full extent, one axis at a time (pads and slices are
    index maps, so this fuses into whatever consumes the cotangent)."""
    for axis, (start, stop, step) in enumerate(zip(starts, stops, steps)):
        d = shape[axis]
        if (start, stop, step) == (0, d, 1):
            continue
        assert isinstance(d, int)
        m = g.shape[axis]
        assert isinstance(m, int)
        if m == 0:
            return n.full(0, shape, g.dtype)
        if step < 0:
            g = n.op("slice", [g], _axis_attrs(g, axis, m - 1, -1, -1))
            lo, s = start + (m - 1) * step, -step
        else:
            lo, s = start, step
        if s > 1:
            gshape = g.shape
            g = n.reshape(g, gshape[:axis + 1] + (1,) + gshape[axis + 1:])
            g = _pad_axis(g, axis + 1, 0, s - 1)
            g = n.reshape(g, gshape[:axis] + (m * s,) + gshape[axis + 1:])
        length = d - lo
        if m * s > length:
            g = n.op("slice", [g], _axis_attrs(g, axis, 0, length, 1))
        g = _pad_axis(g, axis, lo, max(length - m * s, 0))
    return g


@rule("window")
def _window(node: Node, inputs: tuple[Node, ...], g: Node) -> Cotangents:
    """col2im: window (kh, kw) is a strided slice of the padded input, so the input's
    cotangent is the sum over the KH*KW kernel positions of un-slices of g[..., kh, kw],
    with the padding cut off (KH*KW selects per input element, all fused)."""
    x = inputs[0]
    kh, kw = node.attr("kernel")
    (sh, sw), (ph, pw), (dh, dw) = (node.attr("stride"), node.attr("padding"),
                                    node.attr("dilation"))
    lead = x.shape[:-2]
    h, w = x.shape[-2:]
    oh, ow = node.shape[-4], node.shape[-3]
    assert isinstance(h, int) and isinstance(w, int)
    assert isinstance(oh, int) and isinstance(ow, int)
    padded = lead + (h + 2 * ph, w + 2 * pw)
    full = tuple(lead)
    terms = []
    for i in range(kh):
        for j in range(kw):
            gij = n.op("slice", [g], {
                "starts": (0,) * (len(lead) + 2) + (i, j),
                "stops": full + (oh, ow, i + 1, j + 1),
                "steps": (1,) * (len(lead) + 4)})
            gij = n.reshape(gij, lead + (oh, ow))
            starts = (0,) * len(lead) + (i * dh, j * dw)
            stops = full + (i * dh + sh * (oh - 1) + 1, j * dw + sw * (ow - 1) + 1)
            steps = (1,) * len(lead) + (sh, sw)
            terms.append(_unslice(gij, padded, starts, stops, steps))
    dpadded = total(terms)
    if ph == 0 and pw == 0:
        return (dpadded,)
    return (n.op("slice", [dpadded], {"starts": (0,) * len(lead) + (ph, pw),
                                      "stops": full + (ph + h, pw + w),
                                      "steps": (1,) * (len(lead) + 2)}),)


@rule("pad")
def _pad(node: Node, inputs: tuple[Node, ...], g: Node) -> Cotangents:
    x = inputs[0]
    starts = tuple(lo for lo, _ in node.attr("pads"))
    stops = tuple(d if lo == 0 and hi == 0 else lo + d
                  for (lo, hi), d in zip(node.attr("pads"), x.shape))
    if all(lo == 0 and hi == 0 for lo, hi in node.attr("pads")):
        return (g,)
    return (n.op("slice", [g], {"starts": starts, "stops": stops,
                                "steps": (1,) * x.ndim}),)


@rule("concat")
def _concat(node: Node, inputs: tuple[Node, ...], g: Node) -> Cotangents:
    axis = node.attr("axis")
    out: list[Node | None] = []
    offset = 0
    for x in inputs:
        size = x.shape[axis]
        assert isinstance(size, int)
        out.append(n.op("slice", [g], _axis_attrs(g, axis, offset, offset + size, 1)))
        offset += size
    return tuple(out)


@rule("take")
def _take(node: Node, inputs: tuple[Node, ...], g: Node) -> Cotangents:
    """Scatter-add as a one-hot product: d data[a, k, b] = sum_i [idx_i == k] g[a, i, b]."""
    data, idx = inputs
    axis = node.attr("axis")
    size = data.shape[axis]
    if not isinstance(size, int):
        from tensorjit.ir.errors import UnsupportedError

        raise UnsupportedError(f"gradient of take along symbolic dim {size!r}")
    ishape = idx.shape
    k = len(ishape)
    i64 = DType.int64
    wrapped = n.select(n.op("lt", [idx, n.zeros_like(idx)]),
                       n.add(idx, n.full(size, ishape, i64)), idx)
    clipped = n.op("minimum", [n.op("maximum", [wrapped, n.zeros_like(idx)]),
                               n.full(size - 1, ishape, i64)])
    hot_shape = ishape + (size,)
    positions = n.broadcast(n.reshape(clipped, ishape + (1,)), hot_shape)
    onehot = n.cast(n.op("eq", [positions, n.op_iota(hot_shape, k)]), g.dtype)
    before, after = data.shape[:axis], data.shape[axis + 1:]
    full_shape = before + ishape + (size,) + after
    gx = n.broadcast(n.reshape(g, before + ishape + (1,) + after), full_shape)
    hot = n.broadcast(n.reshape(onehot, (1,) * len(before) + hot_shape + (1,) * len(after)),
                      full_shape)
    summed = n.reduce_sum(n.mul(gx, hot), range(len(before), len(before) + k))
    return (summed, None)


# --- contraction -------------------------------------------------------------------------
def _swap_last(x: Node) -> Node:
    perm = list(range(x.ndim))
    perm[-1], perm[-2] = perm[-2], perm[-1]
    return n.transpose(x, perm)


@rule("matmul")
def _matmul(node: Node, inputs: tuple[Node, ...], g: Node) -> Cotangents:
    a, b = inputs
    return (n.op("matmul", [g, _swap_last(b)]), n.op("matmul", [_swap_last(a), g]))


def uncovered(names: Sequence[str]) -> list[str]:
    """Op names with neither a rule nor a non-differentiable declaration."""
    return [name for name in names if name not in VJP_RULES and name not in NON_DIFFERENTIABLE]

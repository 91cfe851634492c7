"""Constant folding with the reference interpreter's op semantics (NumPy is the spec).

A node whose inputs are all known at compile time (constants, ``iota`` index grids and
what is computed from them alone: computations that depend only on shapes) is evaluated
with its op's reference function, exactly as ``tj.interpret`` would, and replaced by

- a splat (``broadcast_to`` of a scalar constant) when the result holds one value, which
  works for symbolic shapes too: elementwise ops on splats are evaluated on scalars;
- an array constant when it is not larger than an array constant it was computed from
  (folding never turns cheap index arithmetic or a broadcast into a big array).

Folding keeps results bit for bit: without ``fast_math`` only ops whose result IEEE
arithmetic defines exactly are evaluated (integer and bool ops, movement, casts, +, -, *,
/, sqrt, comparisons, select, ...). Transcendental functions and ``pow`` are not (NumPy's
float32 ``exp(1.0)`` is an ULP away from the correctly rounded value the compiled code
gives), nor float reductions and matmuls, whose rounding depends on the summation order;
a sum of a splat folds when every partial sum is exact (``sum(ones(n))`` is ``n``).
With ``fast_math`` every op folds, to NumPy's value.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

import numpy as np

from tensorjit.ir.build import const
from tensorjit.ir.graph import ConstArray, Node
from tensorjit.ir.ops import Category, TypeInfo, get_op
from tensorjit.ir.shapes import Shape, numel
from tensorjit.passes.patterns import VIEW_OPS, ops_of, same_value, splat, splat_value
from tensorjit.passes.rewrite import RewriteContext, RuleTable

TABLE = RuleTable("fold")

#: Largest result (elements) folding evaluates, and largest input it reads.
RESULT_LIMIT = 1 << 16
INPUT_LIMIT = 1 << 20


#: Ops on floats that IEEE arithmetic defines exactly (correctly rounded or exact).
EXACT_FLOAT_OPS = frozenset({
    "neg", "abs", "sign", "floor", "ceil", "sqrt", "add", "sub", "mul", "div", "maximum",
    "minimum", "select", "cast", "lt", "le", "gt", "ge", "eq", "ne", "isnan", "isfinite",
}) | frozenset(ops_of(Category.MOVEMENT)) | frozenset(ops_of(Category.SOURCE))
_MANTISSA_BITS = {4: 24, 8: 53}


def exact(node: Node, ctx: RewriteContext) -> bool:
    """May folding evaluate this node with NumPy and keep the compiled code's bits?"""
    if ctx.fast_math or node.op in EXACT_FLOAT_OPS:
        return True
    return not node.dtype.is_float and not any(i.dtype.is_float for i in node.inputs)


def evaluate(node: Node, args: Sequence[np.ndarray], shape: Shape | None = None) -> np.ndarray:
    """``node`` on concrete inputs (at ``shape`` if given), as the interpreter computes it."""
    shape = node.shape if shape is None else shape
    out = TypeInfo(shape, node.dtype)
    with np.errstate(all="ignore"):
        value = np.asarray(get_op(node.op).reference(list(args), dict(node.attrs), out))
    if value.dtype != node.dtype.np:
        value = value.astype(node.dtype.np)
    if value.shape != tuple(shape):
        value = np.broadcast_to(value, shape)
    return value


def _uniform(value: np.ndarray) -> bool:
    flat = np.ascontiguousarray(value).reshape(-1)
    if flat.size == 0:
        return True
    bits = flat.view(np.uint8).reshape(flat.size, -1)
    return bool((bits == bits[0]).all())


def _size(node: Node) -> int | None:
    """The static element count, or None for a symbolic shape."""
    n = 1
    for d in node.shape:
        if not isinstance(d, int):
            return None
        n *= d
    return n


def _foldable(node: Node) -> bool:
    size = _size(node)
    return node.op != "param" and size is not None and size <= INPUT_LIMIT


def _known_leaf(node: Node, ctx: RewriteContext) -> bool:
    """Cheap test that an input may be a compile-time constant (see ``fold_known``)."""
    if node.op in ("const", "iota") or node.op in VIEW_OPS:
        return True
    return ctx.values.get(node) is not None


def known_value(node: Node, ctx: RewriteContext) -> np.ndarray | None:
    """The node's value if it is a compile-time constant of a static, foldable size
    (computed iteratively over its unknown inputs and cached in ``ctx.values``)."""
    stack = [node]
    while stack:
        n = stack[-1]
        if n in ctx.values:
            stack.pop()
            continue
        if not _foldable(n):
            ctx.values[n] = None
            stack.pop()
            continue
        pending = [i for i in n.inputs if i not in ctx.values]
        if pending:
            stack.extend(pending)
            continue
        stack.pop()
        args = [ctx.values[i] for i in n.inputs]
        ctx.values[n] = None if any(a is None for a in args) or not exact(n, ctx) else \
            evaluate(n, args)  # type: ignore[arg-type]
    return ctx.values[node]


def _array_inputs(node: Node) -> int:
    """The size of the largest array constant the node is computed from (0: none)."""
    best = 0
    stack = list(node.inputs)
    seen: set[Node] = set()
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        if n.op == "const" and isinstance(n.attr("value"), ConstArray):
            best = max(best, numel(n.shape).coef)
        stack.extend(n.inputs)
    return best


@TABLE.rule(*ops_of(Category.ELEMENTWISE))
def fold_splats(node: Node, ctx: RewriteContext) -> Node | None:
    """An elementwise op on splats is the op on their scalars (any shape, even symbolic)."""
    scalars = [splat_value(i) for i in node.inputs]
    if any(s is None for s in scalars) or not exact(node, ctx):
        return None
    # Stride-0 views of one element, as the interpreter's broadcast operands are: NumPy
    # picks some loops by stride (pow with a broadcast exponent 0.5 is sqrt).
    args = [np.broadcast_to(np.array(s, dtype=i.dtype.np), (1,))
            for s, i in zip(scalars, node.inputs)]
    value = evaluate(node, args, shape=(1,))
    return splat(value[0].item(), node.dtype, node.shape, node.loc)


@TABLE.rule("reduce_max", "reduce_min", "argmax", "argmin")
def fold_reduction_of_splat(node: Node, ctx: RewriteContext) -> Node | None:
    """max, min, argmax and argmin of one value everywhere need no evaluation."""
    v = splat_value(node.inputs[0])
    if v is None:
        return None
    return splat(0 if node.op.startswith("arg") else v, node.dtype, node.shape, node.loc)


@TABLE.rule("reduce_sum")
def fold_sum_of_splat(node: Node, ctx: RewriteContext) -> Node | None:
    """A float sum of n copies of c is n * c in any summation order when every partial sum
    k * c is exact: c's odd mantissa times n fits the precision (``sum(ones(n))``)."""
    c = splat_value(node.inputs[0])
    src = node.inputs[0]
    count = 1
    for a in node.attr("axes"):
        if not isinstance(src.shape[a], int):
            return None
        count *= src.shape[a]
    if c is None or not node.dtype.is_float or not np.isfinite(c) or \
            same_value(c, -0.0) and count > 0:
        return None
    odd = abs(Fraction(c).numerator)
    while odd and odd % 2 == 0:
        odd //= 2
    total = np.array(count * c, dtype=node.dtype.np)
    if odd * count >= 1 << _MANTISSA_BITS[node.dtype.itemsize] or not np.isfinite(total):
        return None
    return splat(total.item(), node.dtype, node.shape, node.loc)


@TABLE.rule(*(op for c in Category if c is not Category.SOURCE for op in ops_of(c)))
def fold_known(node: Node, ctx: RewriteContext) -> Node | None:
    """Evaluate a node whose inputs are all known (static shapes, bounded sizes)."""
    size = _size(node)
    if size is None or size > RESULT_LIMIT:
        return None
    if not all(_known_leaf(i, ctx) for i in node.inputs) or splat_value(node) is not None:
        return None
    value = known_value(node, ctx)
    if value is None:
        return None
    if _uniform(value):
        if value.size == 0:
            return None
        return splat(value.reshape(-1)[0].item(), node.dtype, node.shape, node.loc)
    if value.size > _array_inputs(node):
        return None
    return const(ConstArray.of(value), node.dtype, loc=node.loc)

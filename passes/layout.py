"""Layout: move shape ops toward consumers, where they fold into index arithmetic.

- elementwise work on broadcasts happens before the broadcast when that touches less
  data: ``exp(broadcast_to(b)) -> broadcast_to(exp(b))``; ``broadcast_to(a) +
  broadcast_to(b) -> broadcast_to(a' + b')`` over the operands' common shape;
- elementwise work on equally transposed (or equally reshaped) operands happens before
  the transpose (reshape): ``x.T + y.T -> (x + y).T``, so that transpose pairs cancel
  and the work runs over contiguous data;
- a reduction of a transpose reduces the untransposed input over the matching axes
  (``x.T.sum(0) -> x.sum(1)``): exact for integers, and for floats only with
  ``fast_math`` (the compiled summation order depends on which axes are reduced).

Splat operands (scalars) follow any of these moves. Matmul operands need no rule: the
lowering reads a transposed or sliced operand in place (its index map).
"""

from __future__ import annotations

from tensorjit.ir.errors import ShapeError
from tensorjit.ir.graph import Node
from tensorjit.ir.ops import Category
from tensorjit.ir.shapes import Shape, broadcast_shapes
from tensorjit.passes.patterns import build, ops_of, splat, splat_value
from tensorjit.passes.rewrite import RewriteContext, RuleTable

TABLE = RuleTable("layout")


ELEMENTWISE = ops_of(Category.ELEMENTWISE)


def _operand(node: Node, value: object, shape: Shape) -> Node:
    """A splat operand re-made at ``shape``."""
    return splat(value, node.dtype, shape, node.loc)


@TABLE.rule(*ELEMENTWISE)
def sink_broadcast(node: Node, ctx: RewriteContext) -> Node | None:
    sources: list[Node | None] = []
    for x in node.inputs:
        if splat_value(x) is not None:
            sources.append(None)
        elif x.op == "broadcast_to":
            sources.append(x.inputs[0])
        else:
            return None
    real = [s for s in sources if s is not None]
    if not real:
        return None  # all splats: folding's job
    try:
        common = broadcast_shapes(*(s.shape for s in real))
    except ShapeError:
        return None
    if common == node.shape:
        return None
    ins = []
    for x, s in zip(node.inputs, sources):
        if s is None:
            ins.append(_operand(x, splat_value(x), common))
        elif s.shape == common:
            ins.append(s)
        else:
            ins.append(build("broadcast_to", [s], {"shape": common}, loc=x.loc))
    inner = build(node.op, ins, dict(node.attrs), loc=node.loc)
    return build("broadcast_to", [inner], {"shape": node.shape}, loc=node.loc)


def _sink_view(node: Node, view: str, key: str) -> Node | None:
    """op(view(a), view(b), splat) -> view(op(a, b, splat')) for one view op and key."""
    attr = None
    source_shape: Shape | None = None
    for x in node.inputs:
        if splat_value(x) is not None:
            continue
        if x.op != view:
            return None
        if attr is None:
            attr, source_shape = x.attr(key), x.inputs[0].shape
        elif x.attr(key) != attr or x.inputs[0].shape != source_shape:
            return None
    if attr is None or source_shape is None:
        return None
    ins = [x.inputs[0] if splat_value(x) is None else
           _operand(x, splat_value(x), source_shape) for x in node.inputs]
    inner = build(node.op, ins, dict(node.attrs), loc=node.loc)
    return build(view, [inner], {key: attr}, loc=node.loc)


@TABLE.rule(*ELEMENTWISE)
def sink_transpose(node: Node, ctx: RewriteContext) -> Node | None:
    return _sink_view(node, "transpose", "perm")


@TABLE.rule(*ELEMENTWISE)
def sink_reshape(node: Node, ctx: RewriteContext) -> Node | None:
    if node.shape == () or all(d == 1 for d in node.shape):
        return None  # one element: no layout to gain, and scalar-style code has thousands
    return _sink_view(node, "reshape", "shape")


@TABLE.rule("reduce_sum", "reduce_prod", "reduce_max", "reduce_min", "argmax", "argmin")
def reduce_of_transpose(node: Node, ctx: RewriteContext) -> Node | None:
    x = node.inputs[0]
    if x.op != "transpose" or (node.inputs[0].dtype.is_float and not ctx.fast_math):
        return None
    perm = x.attr("perm")
    axes = node.attr("axes")
    source_axes = tuple(sorted(perm[a] for a in axes))
    kept_out = [perm[o] for o in range(len(perm)) if o not in axes]  # source axes, out order
    kept_src = [a for a in range(len(perm)) if a not in source_axes]  # reduce's out order
    reduced = build(node.op, [x.inputs[0]], {"axes": source_axes}, loc=node.loc)
    order = tuple(kept_src.index(a) for a in kept_out)
    if order == tuple(range(len(order))):
        return reduced
    return build("transpose", [reduced], {"perm": order}, loc=node.loc)

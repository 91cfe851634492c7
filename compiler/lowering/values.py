"""Expressions for graph values at an index: how fusion inlines ops into a loop body.

``ValueBuilder.at(node, index)`` returns a loop-IR expression for ``node[index]``:
elementwise ops become operations on their inputs' expressions, movement ops transform
the index (broadcast drops it, transpose permutes it, slice scales and shifts it, reshape
ravels and unravels it, pad and concat select between clamped loads), materialized nodes
become loads, and reductions of the kernel being built become accumulator reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from tensorjit.compiler.lowering import index as ix
from tensorjit.ir.dtypes import DType
from tensorjit.ir.errors import UnsupportedError, with_location
from tensorjit.ir.graph import ConstArray, Node
from tensorjit.ir.loops import AccRef, Cast, Const, Expr, Load, Op
from tensorjit.ir.ops import Category, get_op

BOOL = DType.bool


#: Ops inlined by index transformation (see ``ValueBuilder._compute``).
MOVEMENT_OPS = frozenset({"broadcast_to", "transpose", "slice", "reshape", "pad", "concat",
                          "take", "window"})
SOURCE_OPS = frozenset({"param", "const", "iota"})


class CannotFuse(Exception):
    """The value needs something this kernel cannot provide (raised to split kernels)."""


class NotFlat(Exception):
    """The value cannot be addressed by a flat index alone."""


@dataclass
class KernelScope:
    """What the kernel under construction provides beside buffers."""

    accumulators: dict[Node, str] = field(default_factory=dict)  # reductions in this kernel
    outer_index: Expr | None = None  # flat outer index at which accumulators are valid
    stored: set[Node] = field(default_factory=set)  # nodes this kernel writes itself


class ValueBuilder:
    def __init__(self, buffers: Mapping[Node, str], dims: Mapping[str, Expr],
                 extents: dict[str, Expr], scope: KernelScope) -> None:
        self.buffers = buffers  # materialized nodes -> buffer name
        self.dims = dims
        self.extents = extents
        self.scope = scope
        self.loads: set[str] = set()
        self._memo: dict[tuple, Expr] = {}
        self.mask: Expr | None = None  # loads made now may only touch lanes where it holds

    # --- entry points ----------------------------------------------------------------
    def at(self, node: Node, index: list[Expr]) -> Expr:
        key = (node, tuple(index), self.mask)
        hit = self._memo.get(key)
        if hit is None:
            hit = self._value(node, index)
            self._memo[key] = hit
        return hit

    def define(self, node: Node, index: list[Expr]) -> Expr:
        """The expression computing ``node`` itself (not loading it) at ``index``."""
        if node.op == "param":
            return self._load(node, index)
        return self._compute(node, index)

    def at_flat(self, node: Node, flat: Expr, define: bool = False) -> Expr:
        """``node`` at a flat (row-major) index; raises NotFlat where that needs unravelling."""
        if not define and node in self.scope.accumulators and flat is self.scope.outer_index:
            return AccRef(self.scope.accumulators[node], node.dtype)
        if not define and node in self.buffers:
            return self._load_flat(node, flat)
        op = get_op(node.op)
        if node.op == "param":
            return self._load_flat(node, flat)
        if node.op == "reshape":
            return self.at_flat(node.inputs[0], flat)
        if node.op == "broadcast_to" and all(d == 1 for d in node.inputs[0].shape):
            return self.at(node.inputs[0], [ix.const(0)] * node.inputs[0].ndim)
        if node.op == "const" and not isinstance(node.attr("value"), ConstArray):
            return Const(node.attr("value"), node.dtype)
        if op.category is Category.ELEMENTWISE:
            return self._elementwise(node, [self.at_flat(i, flat) for i in node.inputs])
        raise NotFlat(node.op)

    # --- internals --------------------------------------------------------------------
    def _value(self, node: Node, index: list[Expr]) -> Expr:
        if node in self.scope.accumulators:
            flat = ix.ravel(index, node.shape, self.dims)
            if flat is not self.scope.outer_index:
                raise CannotFuse(f"{node.op} read at another row")
            return AccRef(self.scope.accumulators[node], node.dtype)
        if node in self.scope.stored:
            raise CannotFuse(f"{node.op} is written by this kernel")
        if node in self.buffers:
            return self._load(node, index)
        return self._compute(node, index)

    def _load(self, node: Node, index: list[Expr]) -> Expr:
        return self._load_flat(node, ix.ravel(index, node.shape, self.dims))

    def _load_flat(self, node: Node, flat: Expr) -> Expr:
        if node in self.scope.accumulators or node in self.scope.stored:
            raise NotFlat(node.op)
        name = self.buffers[node]
        self.loads.add(name)
        return Load(name, flat, node.dtype, self.mask)

    def _masked(self, node: Node, index: list[Expr], inside: Expr) -> Expr:
        """``node[index]`` read only where ``inside`` holds (padding reads no memory)."""
        outer = self.mask
        self.mask = inside if outer is None else Op("logical_and", (outer, inside), BOOL)
        try:
            return self.at(node, index)
        finally:
            self.mask = outer

    def _elementwise(self, node: Node, args: list[Expr]) -> Expr:
        if node.op == "cast":
            return args[0] if args[0].dtype is node.dtype else Cast(args[0], node.dtype)
        return Op(node.op, tuple(args), node.dtype)

    def _compute(self, node: Node, index: list[Expr]) -> Expr:
        op = node.op
        category = get_op(op).category
        if category is Category.ELEMENTWISE:
            return self._elementwise(node, [self.at(i, index) for i in node.inputs])
        if op == "const":
            value = node.attr("value")
            if isinstance(value, ConstArray):
                return self._load(node, index)
            return Const(value, node.dtype)
        if op == "iota":
            return index[node.attr("axis")]
        if op == "broadcast_to":
            return self.at(node.inputs[0], self._unbroadcast(node, index))
        if op == "transpose":
            src: list[Expr] = [ix.const(0)] * node.ndim
            for out_axis, in_axis in enumerate(node.attr("perm")):
                src[in_axis] = index[out_axis]
            return self.at(node.inputs[0], src)
        if op == "slice":
            src = [ix.add(ix.mul(i, ix.const(step)), ix.const(start)) for i, start, step in
                   zip(index, node.attr("starts"), node.attr("steps"))]
            return self.at(node.inputs[0], src)
        if op == "reshape":
            inp = node.inputs[0]
            flat = ix.ravel(index, node.shape, self.dims)
            try:
                return self.at_flat(inp, flat)
            except NotFlat:
                return self.at(inp, ix.unravel(flat, inp.shape, self.dims, self.extents))
        if op == "pad":
            return self._pad(node, index)
        if op == "concat":
            return self._concat(node, index)
        if op == "take":
            return self._take(node, index)
        if op == "window":
            return self._window(node, index)
        raise UnsupportedError(with_location(f"lowering of {op} inside a fused kernel", node.loc))

    def _unbroadcast(self, node: Node, index: list[Expr]) -> list[Expr]:
        inp = node.inputs[0]
        offset = node.ndim - inp.ndim
        return [ix.const(0) if d == 1 and node.shape[k + offset] != 1 else index[k + offset]
                for k, d in enumerate(inp.shape)]

    def _pad(self, node: Node, index: list[Expr]) -> Expr:
        inp = node.inputs[0]
        inside: Expr | None = None
        src = []
        for i, (lo, _), d in zip(index, node.attr("pads"), inp.shape):
            if lo == 0 and node.shape[len(src)] == d:
                src.append(i)
                continue
            j = ix.sub(i, ix.const(lo))
            ok = _within(j, ix.dim_expr(d, self.dims))
            inside = ok if inside is None else Op("logical_and", (inside, ok), BOOL)
            src.append(j)
        if inside is None:
            return self.at(inp, src)
        value = self._masked(inp, src, inside)
        return Op("select", (inside, value, Const(node.attr("value"), node.dtype)), node.dtype)

    def _concat(self, node: Node, index: list[Expr]) -> Expr:
        axis = node.attr("axis")
        pieces = []
        start = 0
        for inp in node.inputs:
            n = inp.shape[axis]
            if n == 0:
                continue
            src = list(index)
            src[axis] = ix.clamp(ix.sub(index[axis], ix.const(start)), ix.const(n))
            pieces.append((start, self.at(inp, src)))
            start += n
        value = pieces[-1][1]
        for k in range(len(pieces) - 2, -1, -1):
            boundary = ix.const(pieces[k + 1][0])
            value = Op("select", (Op("lt", (index[axis], boundary), BOOL), pieces[k][1], value),
                       node.dtype)
        return value

    def _window(self, node: Node, index: list[Expr]) -> Expr:
        inp = node.inputs[0]
        lead = index[:-4]
        oh, ow, kh, kw = index[-4:]
        inside: Expr | None = None
        src = []
        for o, k, s, p, d, n in zip((oh, ow), (kh, kw), node.attr("stride"), node.attr("padding"),
                                    node.attr("dilation"), inp.shape[-2:]):
            pos = ix.add(ix.add(ix.mul(o, ix.const(s)), ix.mul(k, ix.const(d))), ix.const(-p))
            if p:
                ok = _within(pos, ix.const(n))
                inside = ok if inside is None else Op("logical_and", (inside, ok), BOOL)
            src.append(pos)
        if inside is None:
            return self.at(inp, lead + src)
        value = self._masked(inp, lead + src, inside)
        return Op("select", (inside, value, Const(node.attr("value"), node.dtype)), node.dtype)

    def _take(self, node: Node, index: list[Expr]) -> Expr:
        data, indices = node.inputs
        axis = node.attr("axis")
        k = indices.ndim
        position = self.at(indices, index[axis:axis + k])
        n = ix.dim_expr(data.shape[axis], self.dims)
        wrapped = Op("select", (Op("lt", (position, ix.const(0)), BOOL),
                                Op("add", (position, n), DType.int64), position), DType.int64)
        src = index[:axis] + [ix.clamp(wrapped, n)] + index[axis + k:]
        return self.at(data, src)


def _within(i: Expr, n: Expr) -> Expr:
    """0 <= i < n."""
    return Op("logical_and", (Op("ge", (i, ix.const(0)), BOOL), Op("lt", (i, n), BOOL)), BOOL)

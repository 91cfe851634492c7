"""Lowering: a graph becomes a loop-IR module of fused kernels.

Materialized nodes (``fusion``) are the *roots*; roots are visited in topological order
and each joins the kernel under construction when it can, else starts a new one:

- a *flat* kernel: same-size elementwise results whose every input is reachable by the
  same flat index (no broadcast or transpose on the way): one 1-D vector loop;
- a *row* kernel: outer loops over the kept dims ``O`` and, per row, a sequence of
  stages over the inner dims ``I``: reductions into accumulators (kept in registers,
  stored only if another kernel needs them) and stores of results of shape ``O + I``
  or ``O``. Softmax and layernorm over the last axis are one row kernel each; a
  subexpression computed in one stage and needed again in a later one is kept in a
  per-row scratch buffer, so each row of the input is read at most twice;
- a *columns* kernel for a reduction that keeps the innermost axis (``x.sum(0)``):
  whole rows are accumulated into the output, vectorized along them;
- a *matmul* kernel: ``out[b, m, :] += a[b, m, k] * B[b, k, :]``, vectorized over n.
"""

from __future__ import annotations

import os

from tensorjit.compiler.lowering import index as ix
from tensorjit.compiler.lowering.fusion import materialized_nodes
from tensorjit.compiler.lowering.gemm import GemmLowering
from tensorjit.compiler.lowering.groups import Group, Stage
from tensorjit.compiler.lowering.merge import merge_sharing_kernels
from tensorjit.compiler.lowering.scratch import share_across_stages
from tensorjit.compiler.lowering.select_chains import unroll_select_chains
from tensorjit.compiler.lowering.values import CannotFuse, KernelScope, NotFlat, ValueBuilder
from tensorjit.ir.graph import ConstArray, Graph, Node
from tensorjit.ir.loops import (
    AccInit,
    AccRef,
    AccUpdate,
    Buffer,
    BufferParam,
    Const,
    DimParam,
    Expr,
    Gemm,
    Kernel,
    Load,
    Loop,
    Module,
    Op,
    Stmt,
    Store,
    Var,
    accumulator_identity,
    walk,
)
from tensorjit.ir.ops import Category, get_op
from tensorjit.ir.shapes import Shape, numel

# Reductions whose accumulation is an elementwise op (so they can accumulate in place).
_COMBINE = {"reduce_sum": "add", "reduce_prod": "mul", "reduce_max": "maximum",
            "reduce_min": "minimum"}
ACCUMULATOR_KIND = {"reduce_sum": "sum", "reduce_prod": "prod", "reduce_max": "max",
             "reduce_min": "min", "argmax": "argmax", "argmin": "argmin"}


class Lowering(GemmLowering):
    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.dims = {s: DimParam(s, k) for k, s in enumerate(graph.symbols())}
        self.roots = materialized_nodes(graph)
        self.buffers: dict[Node, str] = {}
        self.module_buffers: list[Buffer] = []
        self.output_names: dict[Node, list[str]] = {}
        self.consts: list[ConstArray] = []
        self.groups: list[Group] = []
        # why a root did not join the kernel before it (read by lowering/report.py)
        self.split_reasons: dict[Node, str] = {}
        self.extra_temps: list[Buffer] = []  # packed matmul operands
        self._acc_count = 0
        self.readers = _readers(self.roots)
        self._name_buffers()

    # --- buffers ----------------------------------------------------------------------
    def _name_buffers(self) -> None:
        for p in self.graph.params:
            name = f"in{p.attr('index')}"
            self.buffers[p] = name
            self.module_buffers.append(Buffer(name, p.dtype, numel(p.shape), "input",
                                              p.attr("index")))
        for k, o in enumerate(self.graph.outputs):
            name = f"out{k}"
            self.output_names.setdefault(o, []).append(name)
            self.module_buffers.append(Buffer(name, o.dtype, numel(o.shape), "output", k))
        temps = 0
        for node in self.roots:
            if node in self.buffers:
                continue
            if node.op == "const" and isinstance(node.attr("value"), ConstArray):
                name = f"c{len(self.consts)}"
                self.module_buffers.append(Buffer(name, node.dtype, numel(node.shape),
                                                  "const", len(self.consts)))
                self.consts.append(node.attr("value"))
                self.buffers[node] = name
            elif node in self.output_names:
                self.buffers[node] = self.output_names[node][0]
            else:
                self.buffers[node] = f"t{temps}"
                temps += 1

    def _targets(self, node: Node) -> list[str]:
        """Buffers a root is stored to: its own and any further output slots it fills."""
        if node.op in ("param", "const"):
            return self.output_names[node]  # an argument or constant returned as is: copy
        return [self.buffers[node]] + self.output_names.get(node, [])[1:]

    # --- grouping ---------------------------------------------------------------------
    def run(self) -> Module:
        for root in self.roots:
            if root.op == "param" and root not in self.output_names:
                continue
            if root.op == "const" and root not in self.output_names:
                continue
            if root.op == "matmul":
                self.groups.extend(self._matmul(root))
                continue
            if self.groups and self.groups[-1].mode == "gemm" and \
                    self._fuse_epilogue(self.groups[-1], root):
                continue
            if self.groups and self.groups[-1].mode in ("flat", "rows") and self._join(root):
                continue
            self.groups.append(self._start(root))
        return self._module()

    def _builder(self, group: Group) -> ValueBuilder:
        extents = {f"i{k}": ix.dim_expr(d, self.dims) for k, d in enumerate(group.outer)}
        extents.update({f"j{k}": ix.dim_expr(d, self.dims) for k, d in enumerate(group.inner)})
        return ValueBuilder(self.buffers, self.dims, extents, group.scope)

    @staticmethod
    def _vars(prefix: str, shape: Shape) -> list[Expr]:
        return [Var(f"{prefix}{k}") for k in range(len(shape))]

    def _start(self, root: Node) -> Group:
        if get_op(root.op).category is Category.REDUCE and root.op in _COMBINE and \
                root.inputs[0].ndim - 1 not in root.attr("axes"):
            return self._columns(root)
        if get_op(root.op).category is Category.REDUCE:
            src = root.inputs[0]
            axes = root.attr("axes")
            outer = tuple(d for k, d in enumerate(src.shape) if k not in axes)
            inner = tuple(src.shape[a] for a in axes)
            group = Group("rows", outer, inner, KernelScope(), axes_key=(src.shape, axes))
            group.scope.outer_index = ix.ravel(self._vars("i", outer), outer, self.dims)
            if not self._add_reduce(group, root):
                raise AssertionError("a reduction always starts its own kernel")
            return group
        flat = Group("flat", (), (numel(root.shape),), KernelScope())
        if self._add_flat(flat, root):
            return flat
        shape = root.shape
        group = Group("rows", shape[:-1], shape[-1:], KernelScope())
        group.scope.outer_index = ix.ravel(self._vars("i", group.outer), group.outer, self.dims)
        if not self._add_store(group, root):
            raise AssertionError("an elementwise root always starts its own kernel")
        return group

    def _refuse(self, root: Node, reason: str) -> bool:
        self.split_reasons.setdefault(root, reason)
        return False

    def _join(self, root: Node) -> bool:
        group = self.groups[-1]
        if group.mode == "flat":
            return self._add_flat(group, root)
        if get_op(root.op).category is Category.REDUCE:
            return self._add_reduce(group, root)
        return self._add_store(group, root)

    def _add_flat(self, group: Group, root: Node) -> bool:
        if get_op(root.op).category is Category.REDUCE or numel(root.shape) != group.inner[0]:
            return self._refuse(root, "not an elementwise result of the flat kernel's size")
        builder = self._builder(group)
        flat = Var("j0")
        try:
            value = builder.at_flat(root, flat, define=True)
        except (NotFlat, CannotFuse) as exc:
            return self._refuse(root, f"not addressable by the flat index ({exc})")
        if not group.stages:
            group.stages.append(Stage("store", group.inner))
        group.stages[0].items.append((root, value, flat))
        group.scope.stored.add(root)
        group.loads |= builder.loads
        group.roots.append(root)
        return True

    def _add_reduce(self, group: Group, root: Node) -> bool:
        src = root.inputs[0]
        axes = root.attr("axes")
        if (src.shape, axes) != group.axes_key and not (
                group.axes_key == () and axes == tuple(range(src.ndim - len(group.inner),
                                                             src.ndim))
                and src.shape == group.outer + group.inner):
            return self._refuse(root, "reduces another shape or other axes than the kernel")
        outer, inner = self._vars("i", group.outer), self._vars("j", group.inner)
        index: list[Expr] = []
        o, i = iter(outer), iter(inner)
        for k in range(src.ndim):
            index.append(next(i) if k in axes else next(o))
        builder = self._builder(group)
        try:
            value = builder.at(src, index)
        except CannotFuse as exc:
            return self._refuse(root, str(exc))
        kind = ACCUMULATOR_KIND[root.op]
        position = None
        if kind in ("argmax", "argmin"):
            position = inner[0]
        name = f"acc{self._acc_count}"
        self._acc_count += 1
        last = group.stages[-1] if group.stages else None
        reads = _acc_reads(value)
        if last is None or last.kind != "reduce" or any(
                group.scope.accumulators.get(n) in reads for n, _, _ in last.items):
            last = Stage("reduce", group.inner)
            group.stages.append(last)
        last.items.append((root, value, position))
        group.scope.accumulators[root] = name
        group.loads |= builder.loads
        group.roots.append(root)
        return True

    def _add_store(self, group: Group, root: Node) -> bool:
        outer = self._vars("i", group.outer)
        if root.shape == group.outer + group.inner:
            inner_shape = group.inner
            index = outer + self._vars("j", group.inner)
        elif root.shape == group.outer and group.inner:
            inner_shape = ()
            index = outer
        else:
            return self._refuse(root, "its shape is neither the kernel's rows nor one per row")
        if group.axes_key and inner_shape and group.axes_key[1] != tuple(
                range(len(group.outer), len(group.outer) + len(group.inner))):
            return self._refuse(root, "rows of a non-trailing reduction are not rows of "
                                "the output")
        builder = self._builder(group)
        try:
            value = builder.define(root, index)
        except CannotFuse as exc:
            return self._refuse(root, str(exc))
        flat = ix.ravel(index, root.shape, self.dims)
        last = group.stages[-1] if group.stages else None
        if last is None or last.kind != "store" or last.inner != inner_shape:
            last = Stage("store", inner_shape)
            group.stages.append(last)
        last.items.append((root, value, flat))
        group.scope.stored.add(root)
        group.loads |= builder.loads
        group.roots.append(root)
        return True

    def _columns(self, root: Node) -> Group:
        """A reduction that keeps the innermost axis: accumulate whole rows into the
        output (``out[k] += x[r, k]``), vectorized over the kept axes, instead of striding
        through memory once per output element."""
        src = root.inputs[0]
        axes = root.attr("axes")
        kept = tuple(d for k, d in enumerate(src.shape) if k not in axes)
        reduced = tuple(src.shape[a] for a in axes)
        group = Group("columns", reduced, kept, KernelScope())
        builder = self._builder(group)
        r, k = iter(self._vars("i", reduced)), iter(self._vars("j", kept))
        index = [next(r) if a in axes else next(k) for a in range(src.ndim)]
        value = builder.at(src, index)
        out = self.buffers[root]
        flat = ix.ravel(self._vars("j", kept), kept, self.dims)
        kind = ACCUMULATOR_KIND[root.op]
        start = Const(accumulator_identity(kind, root.dtype), root.dtype)
        update = Op(_COMBINE[root.op], (Load(out, flat, root.dtype), value), root.dtype)
        body = self._inner_loops(kept, (Store(out, flat, start),), True)
        body += self._outer_loops(reduced, self._inner_loops(kept, (Store(out, flat, update),),
                                                             True))
        group.body = body + self._copies(root)
        group.loads = builder.loads | {out}
        group.roots.append(root)
        group.scope.stored.add(root)
        return group

    def _copies(self, root: Node) -> tuple[Stmt, ...]:
        """Loops copying a root computed in place to the further output slots it fills
        (a function that returns the same value twice)."""
        first, *rest = self._targets(root)
        j = Var("j0")
        extent = ix.size_expr(numel(root.shape), self.dims)
        return tuple(Loop("j0", extent, (Store(r, j, Load(first, j, root.dtype)),), "vector")
                     for r in rest)

    # --- loop IR ----------------------------------------------------------------------
    def _outer_loops(self, outer: Shape, body: tuple[Stmt, ...]) -> tuple[Stmt, ...]:
        for k in range(len(outer) - 1, -1, -1):
            body = (Loop(f"i{k}", ix.dim_expr(outer[k], self.dims), body),)
        return body

    def _inner_loops(self, inner: Shape, body: tuple[Stmt, ...], vector: bool) -> tuple[Stmt, ...]:
        for k in range(len(inner) - 1, -1, -1):
            kind = "vector" if vector and k == len(inner) - 1 else "serial"
            body = (Loop(f"j{k}", ix.dim_expr(inner[k], self.dims), body, kind),)
        return body

    def _group_body(self, group: Group, needed: set[Node], scratch: list[Buffer]) -> tuple:
        if group.mode in ("matmul", "columns", "pack"):
            return group.body
        if group.mode == "gemm":
            g = group.gemm
            blocks = ix.floordiv(ix.add(g["m"], ix.const(g["mc"] - 1)), ix.const(g["mc"]), {})
            body = (Loop("gb", blocks, (Gemm(block=Var("gb"), **g),)),)
            return self._outer_loops(group.outer, body) + self._copies(group.roots[-1])
        stage_extra = share_across_stages(group, scratch, self.dims)
        stmts: list[Stmt] = []
        for s, stage in enumerate(group.stages):
            extra = stage_extra.get(s, [])
            if stage.kind == "reduce":
                inits = []
                updates: list[Stmt] = list(extra)
                tail: list[Stmt] = []
                vector = True
                for node, value, position in stage.items:
                    name = group.scope.accumulators[node]
                    kind = ACCUMULATOR_KIND[node.op]
                    vector &= kind not in ("argmax", "argmin")
                    inits.append(AccInit(name, kind, value.dtype if position is None
                                         else value.dtype))
                    updates.append(AccUpdate(name, value, position))
                    if node in needed:
                        for buf in self._targets(node):
                            tail.append(Store(buf, group.scope.outer_index,
                                              AccRef(name, node.dtype)))
                stmts += inits
                stmts += self._inner_loops(stage.inner, tuple(updates), vector)
                stmts += tail
            else:
                body: list[Stmt] = list(extra)
                for node, value, flat in stage.items:
                    assert flat is not None
                    for buf in self._targets(node):
                        body.append(Store(buf, flat, value))
                stmts += self._inner_loops(stage.inner, tuple(body), True)
        return self._outer_loops(group.outer, tuple(stmts))

    def _module(self) -> Module:
        loaded: set[str] = set()
        for g in self.groups:
            loaded |= g.loads
        needed = {n for n in self.roots
                  if n in self.output_names or self.buffers.get(n) in loaded}
        temps: dict[str, Buffer] = {b.name: b for b in self.extra_temps}
        for node in self.roots:
            name = self.buffers[node]
            if name.startswith("t") and node in needed:
                temps[name] = Buffer(name, node.dtype, numel(node.shape), "temp")
        kernels = []
        scratch: list[Buffer] = []
        for k, group in enumerate(self.groups):
            body = self._group_body(group, needed, scratch)
            stored = _stored(body)
            params = tuple(
                BufferParam(b.name, b.dtype, "scratch", b.numel.coef) if b.kind == "scratch"
                else BufferParam(b.name, b.dtype, "out" if b.name in stored else "in")
                for b in self.module_buffers + list(temps.values()) + scratch
                if b.name in stored or b.name in group.loads or b.name in _loaded(body)
            )
            note = f"{group.mode} kernel for " + ", ".join(
                f"{r.op}{'' if r.loc is None else ' @ ' + os.path.basename(r.loc.split(' ')[0])}"
                for r in group.roots[:6]) + (" ..." if len(group.roots) > 6 else "")
            kernels.append(Kernel(f"k{k}", params, body, note))
        buffers = self.module_buffers + list(temps.values()) + scratch
        kernels = merge_sharing_kernels([unroll_select_chains(k) for k in kernels])
        return Module(self.graph.name, buffers, kernels, tuple(self.dims), list(self.consts))


def _acc_reads(e: Expr) -> set[str]:
    return {x.name for x in walk(e) if isinstance(x, AccRef)}


def _walk(body: tuple[Stmt, ...]):  # type: ignore[no-untyped-def]
    for s in body:
        yield s
        if isinstance(s, Loop):
            yield from _walk(s.body)


def _stored(body: tuple[Stmt, ...]) -> set[str]:
    return {s.out if isinstance(s, Gemm) else s.buffer for s in _walk(body)
            if isinstance(s, (Store, Gemm))}


def _loaded(body: tuple[Stmt, ...]) -> set[str]:
    out: set[str] = set()
    exprs: list[Expr] = []
    for s in _walk(body):
        if isinstance(s, Store):
            exprs += [s.index, s.value]
        elif isinstance(s, AccUpdate):
            exprs += [s.value] + ([s.position] if s.position is not None else [])
        elif isinstance(s, Gemm):
            out |= {s.a} if s.b_value is not None else {s.a, s.b_packed}
            exprs += [s.epilogue] + ([s.b_value] if s.b_value is not None else [])
    return out | {x.buffer for x in walk(*exprs) if isinstance(x, Load)}


def _readers(roots: dict[Node, str]) -> dict[Node, set[Node]]:
    """For each materialized node, the roots whose inlined expressions read it."""
    readers: dict[Node, set[Node]] = {}
    for root in roots:
        seen: set[Node] = set()
        stack = list(root.inputs)
        while stack:
            node = stack.pop()
            if node in seen:
                continue
            seen.add(node)
            if node in roots:
                readers.setdefault(node, set()).add(root)
            else:
                stack.extend(node.inputs)
    return readers


def lower(graph: Graph) -> Module:
    """Lower a graph to a loop-IR module (see the module docstring)."""
    return Lowering(graph).run()



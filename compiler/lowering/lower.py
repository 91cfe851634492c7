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
from dataclasses import dataclass, field

from tensorjit.compiler.lowering import index as ix
from tensorjit.compiler.lowering.fusion import materialized_nodes
from tensorjit.compiler.lowering.merge import merge_sharing_kernels
from tensorjit.compiler.lowering.scratch import share_across_stages
from tensorjit.compiler.lowering.select_chains import unroll_select_chains
from tensorjit.compiler.lowering.values import CannotFuse, KernelScope, NotFlat, ValueBuilder
from tensorjit.ir.dtypes import DType
from tensorjit.ir.graph import ConstArray, Graph, Node
from tensorjit.ir.loops import (
    GEMM_ACC,
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
from tensorjit.ir.shapes import Shape, Size, numel

# Reductions whose accumulation is an elementwise op (so they can accumulate in place).
_COMBINE = {"reduce_sum": "add", "reduce_prod": "mul", "reduce_max": "maximum",
            "reduce_min": "minimum"}
# (mc, kc, mr, nr) by element size: nr is two 64-byte vectors; the mr x nr accumulators,
# two B vectors and an A broadcast fit AVX-512's 32 registers; a kc x nr panel of B
# stays in L1 and an mc x kc block of A in L2.
GEMM_TILES = {4: (96, 256, 6, 32), 8: (96, 256, 6, 16)}
_GEMM_DTYPES = frozenset({DType.float32, DType.float64, DType.int32, DType.int64})
ACCUMULATOR_KIND = {"reduce_sum": "sum", "reduce_prod": "prod", "reduce_max": "max",
             "reduce_min": "min", "argmax": "argmax", "argmin": "argmin"}


@dataclass
class Stage:
    kind: str  # reduce | store
    inner: Shape
    items: list[tuple[Node, Expr, Expr | None]] = field(default_factory=list)
    # reduce items: (node, value, position); store items: (node, value, flat index)


@dataclass
class Group:
    mode: str  # flat | rows | matmul
    outer: Shape
    inner: Shape
    scope: KernelScope
    stages: list[Stage] = field(default_factory=list)
    roots: list[Node] = field(default_factory=list)
    loads: set[str] = field(default_factory=set)
    axes_key: tuple = ()
    body: tuple[Stmt, ...] = ()
    gemm: dict = field(default_factory=dict)  # the Gemm statement's fields (mode "gemm")


class Lowering:
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

    def _matmul(self, root: Node) -> list[Group]:
        """A blocked GEMM (a B-packing kernel, then the ``Gemm`` kernel) where the shapes
        allow, else a plain vectorized loop nest."""
        plan = self._gemm(root)
        return plan if plan is not None else [self._naive_matmul(root)]

    def _gemm(self, root: Node) -> list[Group] | None:
        a, b = root.inputs
        batch, m_dim, n_dim, k_dim = root.shape[:-2], root.shape[-2], root.shape[-1], \
            a.shape[-1]
        if not isinstance(n_dim, int) or root.dtype not in _GEMM_DTYPES:
            return None
        mc, kc, mr, nr = GEMM_TILES[root.dtype.itemsize]
        if isinstance(k_dim, int) and k_dim > kc:  # equal depth blocks: no thin last block
            kc = _ceil_div(k_dim, _ceil_div(k_dim, kc))
        if not batch and isinstance(m_dim, int) and m_dim > 0:
            # Row blocks are the threads' tasks: at least 4 of them (balanced over 2-4
            # threads), each still a whole number of micro-tiles.
            blocks = max(_ceil_div(m_dim, mc), min(4, _ceil_div(m_dim, mr)))
            mc = _ceil_div(_ceil_div(m_dim, blocks), mr) * mr
        bvars = self._vars("i", batch)
        m_e, k_e = ix.dim_expr(m_dim, self.dims), ix.dim_expr(k_dim, self.dims)
        group = Group("gemm", batch, (), KernelScope())
        extents = {f"i{k}": ix.dim_expr(d, self.dims) for k, d in enumerate(batch)}
        extents.update(gm=m_e, gk=k_e, gn=ix.const(n_dim), pk=k_e, pj=ix.const(nr))
        builder = ValueBuilder(self.buffers, self.dims, extents, group.scope)
        a_val = builder.at(a, bvars + [Var("gm"), Var("gk")])
        split_m = ix.linear_in(a_val.index, "gm") if isinstance(a_val, Load) else None
        split_k = ix.linear_in(split_m[1], "gk") if split_m else None
        if split_m is None or split_k is None:
            return None
        assert isinstance(a_val, Load)
        # Pack B into panels of nr columns: panel p, depth k at (p * K + k) * nr.
        panels, full = -(-n_dim // nr), n_dim // nr
        pack_builder = ValueBuilder(self.buffers, self.dims, dict(extents, pp=ix.const(panels)),
                                    KernelScope())

        def column(panel: Expr) -> Expr:
            return ix.add(ix.mul(panel, ix.const(nr)), Var("pj"))

        b_val = pack_builder.at(b, bvars + [Var("pk"), column(Var("pp"))])
        shared = not any(ix.mentions(b_val, f"i{k}") for k in range(len(batch)))
        if not shared and isinstance(m_dim, int) and m_dim <= mc:
            # One row block per product (a conv's GEMM per image): each B panel is used
            # once, so the GEMM packs it itself, from the source, into an L1-sized stack
            # buffer; a packed copy of every product's B would go to memory and back.
            col_builder = ValueBuilder(self.buffers, self.dims,
                                       dict(extents, pn=ix.const(n_dim)), KernelScope())
            b_value = col_builder.at(b, bvars + [Var("pk"), Var("pn")])
            group.gemm = self._gemm_fields(root, a_val, split_m, split_k, "", ix.const(0),
                                           (mc, kc, mr, nr), b_value)
            group.loads = builder.loads | col_builder.loads
            group.roots.append(root)
            group.scope.stored.add(root)
            return [group]
        per_batch = Size(panels * nr) * Size.product([k_dim])
        name = f"p{len(self.extra_temps)}"
        self.extra_temps.append(Buffer(name, root.dtype, per_batch if shared else
                                       per_batch * Size.product(batch), "temp"))
        b_base = ix.const(0) if shared else ix.mul(ix.ravel(bvars, batch, self.dims),
                                                    ix.size_expr(per_batch, self.dims))

        def pack(panel: Expr, value: Expr, panels: int = 0) -> tuple[Stmt, ...]:
            """Loops storing panel ``panel``'s rows, or ``panels`` panels from ``pp``."""
            slot = ix.add(b_base, ix.add(ix.mul(ix.add(ix.mul(panel, k_e), Var("pk")),
                                                ix.const(nr)), Var("pj")))
            store: tuple[Stmt, ...] = (Store(name, slot, value),)
            if _along_rows(value):  # B transposed: copy down its contiguous rows
                inner: tuple[Stmt, ...] = (Loop("pj", ix.const(nr), (Loop("pk", k_e, store),)),)
                return (Loop("pp", ix.const(panels), inner),) if panels else inner
            # Row by row, every panel's piece of it: the source is read in order (a
            # panel at a time would read 128 bytes per 4 KB row of a 1024-wide B).
            inner = (Loop("pj", ix.const(nr), store, "vector"),)
            if panels:
                inner = (Loop("pp", ix.const(panels), inner),)
            return (Loop("pk", k_e, inner),)

        parts: list[tuple[Stmt, ...]] = []  # full panels (split over threads), the last one
        if full:
            parts.append(pack(Var("pp"), b_val, full))
        if full != panels:  # the last, partial panel: zeros past column n
            last = ix.const(full)
            inside = Op("lt", (column(last), ix.const(n_dim)), DType.bool)
            tail = pack_builder.at(b, bvars + [Var("pk"),
                                               ix.clamp(column(last), ix.const(n_dim))])
            parts.append(pack(last, Op("select", (inside, tail, Const(0, root.dtype)),
                                       root.dtype)))
        if not shared:  # one kernel, split over the batch
            parts = [self._outer_loops(batch, tuple(s for part in parts for s in part))]
        packs = []
        for body in parts:
            pack_group = Group("pack", (), (), KernelScope())
            pack_group.body = body
            pack_group.loads = pack_builder.loads
            pack_group.roots.append(root)
            packs.append(pack_group)
        group.gemm = self._gemm_fields(root, a_val, split_m, split_k, name, b_base,
                                       (mc, kc, mr, nr), None)
        group.loads = builder.loads | {name}
        group.roots.append(root)
        group.scope.stored.add(root)
        return packs + [group]

    def _gemm_fields(self, root: Node, a_val: Load, split_m: tuple[Expr, Expr],
                     split_k: tuple[Expr, Expr], b_packed: str, b_base: Expr,
                     tiles: tuple[int, int, int, int], b_value: Expr | None) -> dict:
        """The ``Gemm`` statement's fields but the row block."""
        a, _ = root.inputs
        batch = root.shape[:-2]
        mc, kc, mr, nr = tiles
        return dict(
            m=ix.dim_expr(root.shape[-2], self.dims), n=ix.const(root.shape[-1]),
            k=ix.dim_expr(a.shape[-1], self.dims), a=a_val.buffer, a_base=split_k[1],
            a_sm=split_m[0], a_sk=split_k[0], b_packed=b_packed, b_base=b_base,
            out=self._targets(root)[0],
            out_base=ix.ravel(self._vars("i", batch) + [ix.const(0)] * 2, root.shape,
                              self.dims),
            epilogue=AccRef(GEMM_ACC, root.dtype), dtype=root.dtype, mc=mc, kc=kc, mr=mr,
            nr=nr, b_value=b_value)

    def _fuse_epilogue(self, group: Group, root: Node) -> bool:
        """Fold an elementwise consumer of a matmul (bias, activation, residual) into the
        GEMM's store, so the product is never written out on its own."""
        mm = group.roots[0]
        if len(group.roots) > 1 or numel(root.shape) != numel(mm.shape) \
                or mm in self.output_names or self.readers.get(mm) != {root} \
                or root.op in ("param", "const") or get_op(root.op).category is Category.REDUCE:
            return False
        batch = mm.shape[:-2]
        index = self._vars("i", batch) + [Var("gm"), Var("gn")]
        flat = ix.ravel(index, mm.shape, self.dims)  # the consumer may be a reshape (conv)
        scope = KernelScope({mm: GEMM_ACC}, flat)
        extents = {f"i{k}": ix.dim_expr(d, self.dims) for k, d in enumerate(batch)}
        extents.update(gm=group.gemm["m"], gn=group.gemm["n"])
        builder = ValueBuilder(self.buffers, self.dims, extents, scope)
        try:
            try:
                value = builder.at_flat(root, flat, define=True)
            except NotFlat:
                value = builder.define(root, ix.unravel(flat, root.shape, self.dims, extents))
        except (CannotFuse, NotFlat):
            return False
        group.gemm.update(epilogue=value, out=self._targets(root)[0])
        group.roots.append(root)
        group.loads |= builder.loads
        group.scope.stored.add(root)
        return True

    def _naive_matmul(self, root: Node) -> Group:
        a, b = root.inputs
        batch = root.shape[:-2]
        group = Group("matmul", batch + root.shape[-2:-1], (a.shape[-1], root.shape[-1]),
                      KernelScope())
        builder = self._builder(group)
        bvars = self._vars("i", batch)
        m, k, n = Var(f"i{len(batch)}"), Var("j0"), Var("j1")
        a_val = builder.at(a, bvars + [m, k])
        b_val = builder.at(b, bvars + [k, n])
        out = self.buffers[root]
        flat = ix.ravel(bvars + [m, n], root.shape, self.dims)
        zero = Const(0, root.dtype)
        current = Load(out, flat, root.dtype)
        update = Store(out, flat, Op("add", (current, Op("mul", (a_val, b_val), root.dtype)),
                                     root.dtype))
        extent_k = ix.dim_expr(a.shape[-1], self.dims)
        extent_n = ix.dim_expr(root.shape[-1], self.dims)
        inner = (
            Loop("j1", extent_n, (Store(out, flat, zero),), "vector"),
            Loop("j0", extent_k, (Loop("j1", extent_n, (update,), "vector"),)),
        )
        group.body = self._outer_loops(group.outer, inner) + self._copies(root)
        group.loads = builder.loads | {out}
        group.roots.append(root)
        group.scope.stored.add(root)
        return group

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


def _along_rows(value: Expr) -> bool:
    """Does B's element read memory contiguously down B's rows (``pk``) but not along
    them (``pj``), as for ``x @ w.T``? A vector along ``pj`` would then gather lane by
    lane; packing element by element down ``pk`` reads each source row in order."""
    loads = [x for x in walk(value) if isinstance(x, Load) and ix.mentions(x.index, "pk")]
    if not loads:
        return False
    for load in loads:
        along_k, along_j = ix.linear_in(load.index, "pk"), ix.linear_in(load.index, "pj")
        if along_k is None or along_j is None or along_k[0] != ix.const(1) \
                or along_j[0] == ix.const(1):
            return False
    return True


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


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



"""Lowering of matrix products: a blocked GEMM (``Gemm`` statement, see
``compiler/codegen/gemm.py``) with B packed into panels, either by kernels of its own
before the product or, when each product has a single row block, by the GEMM itself
panel by panel; elementwise consumers fuse into its store. Shapes the GEMM does not
cover get a plain vectorized loop nest.

``GemmLowering`` is a part of ``Lowering`` (``lower.py``), kept in its own file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from tensorjit.compiler.lowering import index as ix
from tensorjit.compiler.lowering.groups import Group
from tensorjit.compiler.lowering.values import (
    CannotFuse,
    KernelScope,
    NotFlat,
    ValueBuilder,
)
from tensorjit.ir.dtypes import DType
from tensorjit.ir.graph import Node
from tensorjit.ir.loops import (
    GEMM_ACC,
    AccRef,
    Buffer,
    Const,
    Expr,
    Load,
    Loop,
    Op,
    Stmt,
    Store,
    Var,
    walk,
)
from tensorjit.ir.ops import Category, get_op
from tensorjit.ir.shapes import Dim, Shape, Size, numel

if TYPE_CHECKING:
    from collections.abc import Mapping

# (mc, kc, mr, nr) by element size: nr is two 64-byte vectors; the mr x nr accumulators,
# two B vectors and an A broadcast fit AVX-512's 32 registers. With B packed beforehand,
# a depth block is up to 4 KiB per column (1024 floats, 512 doubles; a 64-128 KiB panel of
# B in L2 with the mc x kc block of A): K <= 1024 makes one float block, so every tile's
# sums stay in registers over the whole depth and are stored once. Measured against
# 256-deep blocks, which keep a panel of B in L1 but add partial sums back from the
# output per block: sgemm 256x1024x1024 5.40 -> 5.30 ms, 1024^3 24.7 -> 21.6 ms (best of
# 60 and 15); dgemm 256x1024x1024 13.8 -> 13.2 ms, 512^3 5.5 -> 5.2 ms (best of 12). The
# A transposed (h.T @ dh) is packed into an mc x kc buffer on the stack: 256-deep blocks
# keep it at 96-192 KiB (a row-major A is read in place, only its last panel packed).
GEMM_TILES = {4: (96, 1024, 6, 32), 8: (96, 512, 6, 16)}
TRANSPOSED_A_DEPTH = 256
#: Source rows of B a pack copies into every panel before moving on.
PACK_ROWS = 8
#: (mr, nr) for products at most half a wide tile across: one vector of B per depth step
#: (a 6 x 32 tile would compute 10 columns as 32).
NARROW_TILES = {4: (8, 16), 8: (8, 8)}
#: The depth of a B panel a GEMM packs itself into a stack buffer (a conv's): 32 KiB, L1.
L1_PANEL_BYTES = 32 * 1024
_GEMM_DTYPES = frozenset({DType.float32, DType.float64, DType.int32, DType.int64})


class GemmLowering:
    """The matrix-product part of ``Lowering``."""

    if TYPE_CHECKING:  # provided by Lowering
        buffers: dict[Node, str]
        dims: Mapping[str, Expr]
        output_names: dict[Node, list[str]]
        extra_temps: list[Buffer]
        readers: dict[Node, set[Node]]

        def _targets(self, node: Node) -> list[str]: ...
        @staticmethod
        def _vars(prefix: str, shape: Shape) -> list[Expr]: ...
        def _builder(self, group: Group) -> ValueBuilder: ...
        def _copies(self, root: Node) -> tuple[Stmt, ...]: ...
        def _outer_loops(self, outer: Shape, body: tuple[Stmt, ...]) -> tuple[Stmt, ...]: ...

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
        if n_dim <= nr // 2:  # narrow products (logits): one vector of columns, more rows
            mr, nr = NARROW_TILES[root.dtype.itemsize]
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
        step = PACK_ROWS if isinstance(k_dim, int) and k_dim >= PACK_ROWS else 0  # 0: by row
        pack_builder = ValueBuilder(self.buffers, self.dims, dict(
            extents, pp=ix.const(panels), pkb=ix.const(k_dim // step if step else 1),
            pki=ix.const(step or 1), pkt=ix.const(k_dim % step if step else 1)), KernelScope())

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
            kc = _depth_block(k_dim, L1_PANEL_BYTES // (nr * root.dtype.itemsize))
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

        def store_at(panel: Expr, pk: Expr, value: Expr) -> tuple[Stmt, ...]:
            slot = ix.add(b_base, ix.add(ix.mul(ix.add(ix.mul(panel, k_e), pk),
                                                ix.const(nr)), Var("pj")))
            return (Store(name, slot, value),)

        def pack(panel: Expr, value: Expr, panels: int = 0) -> tuple[Stmt, ...]:
            """Loops storing panel ``panel``'s rows, or ``panels`` panels from ``pp``."""
            store = store_at(panel, Var("pk"), value)
            if _along_rows(value):  # B transposed: a transposing copy of its rows
                inner: tuple[Stmt, ...] = (Loop("pj", ix.const(nr), (Loop("pk", k_e, store),),
                                                "transpose"),)
                return (Loop("pp", ix.const(panels), inner),) if panels else inner
            # Row by row, every panel's piece of it: the source is read in order (a
            # panel at a time would read 128 bytes per 4 KB row of a 1024-wide B).
            inner = (Loop("pj", ix.const(nr), store, "vector"),)
            if panels:
                inner = (Loop("pp", ix.const(panels), inner),)
            return (Loop("pk", k_e, inner),)

        def pack_by_rows(value_at: Callable[[Expr], Expr]) -> tuple[Stmt, ...]:
            """The full panels ``PACK_ROWS`` source rows at a time: each panel gets a
            contiguous run of rows (one write stream, not one per panel), the rows stay in
            L1 while every panel takes its piece; then the leftover rows one by one.
            Measured against one row at a time (median of 30 interleaved pairs): x @ W1
            and h @ W2 at batch 256 3% faster, sgemm 1024 and 2048 0.5%; the MLP forward
            and training step unchanged."""
            def rows_of(pk: Expr) -> tuple[Stmt, ...]:
                return (Loop("pj", ix.const(nr), store_at(Var("pp"), pk, value_at(pk)),
                             "vector"),)

            block = ix.add(ix.mul(Var("pkb"), ix.const(step)), Var("pki"))
            out: tuple[Stmt, ...] = (Loop("pkb", ix.const(k_dim // step), (Loop(
                "pp", ix.const(full), (Loop("pki", ix.const(step), rows_of(block)),)),)),)
            if k_dim % step:
                left = ix.add(ix.const(k_dim - k_dim % step), Var("pkt"))
                out += (Loop("pkt", ix.const(k_dim % step), (Loop("pp", ix.const(full),
                                                                  rows_of(left)),)),)
            return out

        parts: list[tuple[Stmt, ...]] = []  # full panels (split over threads), the last one
        if full and step and not _along_rows(b_val):
            parts.append(pack_by_rows(lambda pk: pack_builder.at(
                b, bvars + [pk, column(Var("pp"))])))
        elif full:
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
        if split_m[0] == ix.const(1):  # A transposed: packed on the stack, mc x kc
            kc = TRANSPOSED_A_DEPTH
        group.gemm = self._gemm_fields(root, a_val, split_m, split_k, name, b_base,
                                       (mc, _depth_block(k_dim, kc), mr, nr), None)
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


def _depth_block(k_dim: Dim, kc: int) -> int:
    """Equal depth blocks of at most ``kc`` (no thin last block) when K is known."""
    return _ceil_div(k_dim, _ceil_div(k_dim, kc)) if isinstance(k_dim, int) and k_dim > kc \
        else kc


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)

"""The blocked matrix-product template behind the loop IR's ``Gemm`` statement.

For one block of ``mc`` rows: for each block of ``kc`` depths, make the rows' slice of A
readable as ``mr``-row panels, then for every ``nr``-column panel of the pre-packed B and
every ``mr``-row panel run the register-blocked micro-kernel: ``mr x nr`` results held in
``mr * nr / lanes`` vector registers, per depth step ``nr / lanes`` vector loads of B,
``mr`` broadcasts of A and ``mr * nr / lanes`` FMAs. A is never copied as a whole: a
row-major A is read in place (each panel row is contiguous along the depth), a transposed
A is packed onto the stack by short vectors (eight depths per store), other strides and
the partial last panel element by element. Partial sums of earlier depth blocks (only when
K exceeds one block) are added back from the output; after the last block the epilogue
(bias, activation, residual, ...) is applied in registers and the result is stored once. Edge
tiles compute on zero padding and store only their valid rows and columns.

A ``Gemm`` with ``b_value`` packs each ``kc x nr`` panel of B itself, just before the
micro-kernels use it, into a stack buffer that stays in L1 (``gemm_pack.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llvmlite import ir

from tensorjit.compiler.codegen.gemm_pack import pack_b_panel, prefetch_row
from tensorjit.compiler.codegen.mathlib import splat
from tensorjit.compiler.codegen.ops import intrinsic
from tensorjit.compiler.codegen.types import I64, PTR, mem_type, opaque_alloca, reg_type
from tensorjit.ir.dtypes import DType
from tensorjit.ir.loops import Const, Gemm

if TYPE_CHECKING:
    from tensorjit.compiler.codegen.kernel import KernelEmitter

#: Depths a transposed A's pack copies per panel store.
PACK_DEPTHS = 8


def _i64(v: int) -> ir.Constant:
    return ir.Constant(I64, v)


def micro_kernel(module: ir.Module, dt: DType, mr: int, nr: int, lanes: int,
                 a_rows: bool = False) -> ir.Function:
    """``void(ptr a, ptr b, i64 depth, ptr tile)``: tile[mr x nr] = a[depth x mr]^T @
    b[depth x nr] from packed panels. Inlined into each GEMM: LLVM then keeps the tile in
    registers and stores it straight to the output (with the epilogue), instead of through
    the stack buffer (median of 30 interleaved rounds: h.T @ dh 1024x1024x256 and
    x.T @ dh 4% and 3% faster, the MLP training step 1-2%).

    ``a_rows``: ``void(ptr a, i64 lda, ptr b, i64 depth, ptr tile)`` reads A unpacked,
    row ``i`` at ``a + i * lda``, contiguous along the depth (a row-major A). One per
    module and tile shape, not inlined: every such GEMM of a module shares its machine
    code, which keeps compile time down (inlining it measured alike: x @ W1, h @ W2 and
    dh @ W2.T within 1%)."""
    name = f"tj.gemm.micro.{dt.short}.{mr}x{nr}" + (".rows" if a_rows else "")
    fn = module.globals.get(name)
    if fn is not None:
        return fn
    vty, mty = reg_type(dt, lanes), mem_type(dt)
    nvec = nr // lanes
    params = [PTR, I64, PTR, I64, PTR] if a_rows else [PTR, PTR, I64, PTR]
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), params), name)
    fn.linkage = "internal"
    fn.attributes.add("noinline" if a_rows else "alwaysinline")
    if a_rows:
        a, lda, bp, depth, tile = fn.args
    else:
        (a, bp, depth, tile), lda = fn.args, None
    for arg in (a, bp, tile):
        arg.add_attribute("noalias")
    entry = fn.append_basic_block("entry")
    loop = fn.append_basic_block("loop")
    done = fn.append_basic_block("done")
    b = ir.IRBuilder(entry)
    zero = splat(0, vty)
    b.cbranch(b.icmp_signed(">", depth, _i64(0)), loop, done)
    b.position_at_end(loop)
    d = b.phi(I64, "d")
    d.add_incoming(_i64(0), entry)
    accs = [[b.phi(vty) for _ in range(nvec)] for _ in range(mr)]
    for row in accs:
        for acc in row:
            acc.add_incoming(zero, entry)
    b_row = b.mul(d, _i64(nr))
    bv = [b.load(b.gep(bp, [b.add(b_row, _i64(h * lanes))], source_etype=mty), typ=vty,
                 align=64) for h in range(nvec)]
    a_row = d if lda is not None else b.mul(d, _i64(mr))
    new = []
    for i in range(mr):
        at = b.add(a_row, b.mul(_i64(i), lda) if lda is not None else _i64(i))
        av = b.load(b.gep(a, [at], source_etype=mty), typ=mty)
        undef = ir.Constant(vty, ir.Undefined)
        av = b.shuffle_vector(b.insert_element(undef, av, ir.Constant(ir.IntType(32), 0)),
                              undef, ir.Constant(ir.VectorType(ir.IntType(32), lanes),
                                                 [0] * lanes))
        row = []
        for h in range(nvec):
            if dt.is_float:
                row.append(intrinsic(b, "llvm.fma", [av, bv[h], accs[i][h]]))
            else:
                row.append(b.add(b.mul(av, bv[h]), accs[i][h]))
        new.append(row)
    nxt = b.add(d, _i64(1))
    for acc_row, new_row in zip(accs, new):
        for acc, value in zip(acc_row, new_row):
            acc.add_incoming(value, loop)
    d.add_incoming(nxt, loop)
    b.cbranch(b.icmp_signed("<", nxt, depth), loop, done)
    b.position_at_end(done)
    finals = []
    for i in range(mr):
        for h in range(nvec):
            final = b.phi(vty)
            final.add_incoming(zero, entry)
            final.add_incoming(new[i][h], loop)
            finals.append((i, h, final))
    for i, h, final in finals:
        b.store(final, b.gep(tile, [_i64(i * nr + h * lanes)], source_etype=mty), align=64)
    b.ret_void()
    return fn


def emit_gemm(k: KernelEmitter, g: Gemm) -> None:
    b = k.b
    dt = g.dtype
    lanes = 64 // dt.itemsize if k.max_lanes >= 16 else 32 // dt.itemsize
    ety, mty = reg_type(dt), mem_type(dt)
    m, n, kk = k.scalar(g.m), k.scalar(g.n), k.scalar(g.k)
    a_base, a_sm, a_sk = k.scalar(g.a_base), k.scalar(g.a_sm), k.scalar(g.a_sk)
    b_base, out_base = k.scalar(g.b_base), k.scalar(g.out_base)

    def smin(x: ir.Value, y: ir.Value) -> ir.Value:
        return b.select(b.icmp_signed("<", x, y), x, y)

    m0 = b.mul(k.scalar(g.block), _i64(g.mc))
    m1 = smin(m, b.add(m0, _i64(g.mc)))
    entry = ir.IRBuilder(k.entry)
    # A transposed (its rows adjacent) is packed by vectors; a row-major A is not packed:
    # the micro-kernel reads its full panels in place, mr rows each contiguous along the
    # depth (measured, best of 50: x @ W1 4.08 -> 4.06 ms, h @ W2 5.28 -> 5.23 ms, the
    # MLP forward 9.51 -> 9.32 ms).
    a_transposed = isinstance(g.a_sm, Const) and int(g.a_sm.value) == 1
    a_rows = not a_transposed and isinstance(g.a_sk, Const) and int(g.a_sk.value) == 1
    # (a_rows: only the partial last panel is packed, into the buffer's first panel)
    packed_a = opaque_alloca(entry, ir.ArrayType(mty, (g.mr if a_rows else g.mc) * g.kc), 64)
    packed_b = None if g.b_value is None else \
        opaque_alloca(entry, ir.ArrayType(mty, g.kc * g.nr), 64)
    tile = opaque_alloca(entry, ir.ArrayType(mty, g.mr * g.nr), 64)
    micro = micro_kernel(b.module, dt, g.mr, g.nr, lanes)
    n_kb = b.sdiv(b.add(kk, _i64(g.kc - 1)), _i64(g.kc))
    n_kb = b.select(b.icmp_signed("<", n_kb, _i64(1)), _i64(1), n_kb)  # K == 0: one empty block
    rows = b.sub(m1, m0)
    m_panels = b.sdiv(b.add(rows, _i64(g.mr - 1)), _i64(g.mr))
    n_panels = b.sdiv(b.add(n, _i64(g.nr - 1)), _i64(g.nr))
    zero = splat(0, ety)
    full_panels = b.sdiv(rows, _i64(g.mr))
    micro_rows = micro_kernel(b.module, dt, g.mr, g.nr, lanes, a_rows=True) if a_rows \
        else None

    def depth_block(kb: ir.Value) -> None:
        k0 = b.mul(kb, _i64(g.kc))
        depth = smin(_i64(g.kc), b.sub(kk, k0))
        depth = b.select(b.icmp_signed("<", depth, _i64(0)), _i64(0), depth)
        first = b.icmp_signed("==", kb, _i64(0))
        last = b.icmp_signed("==", kb, b.sub(n_kb, _i64(1)))

        def pack_step(p: ir.Value, d: ir.Value) -> None:
            """Panel ``p``'s ``mr`` values at depth ``d``, zeros past the last row."""
            slot = _i64(0) if a_rows else p
            col = b.mul(b.add(k0, d), a_sk)
            for i in range(g.mr):
                row = b.add(b.add(m0, b.mul(p, _i64(g.mr))), _i64(i))
                inside = b.icmp_signed("<", row, m1)
                safe = b.select(inside, row, m0)  # never read past A
                src = b.add(a_base, b.add(b.mul(safe, a_sm), col))
                value = b.select(inside, k.load(g.a, src, dt), zero)
                dst = b.add(b.mul(b.add(b.mul(slot, depth), d), _i64(g.mr)), _i64(i))
                k.store_ptr(packed_a, dst, value, dt)

        if a_transposed:
            # A's rows are adjacent in memory (A transposed): at one depth the block's rows
            # are one contiguous stretch of the source, copied into every full panel as a
            # short vector. Depth outside, panels inside: each source line is read once (a
            # panel at a time walks the source at a row's stride, 256+ lines in one L1 set;
            # measured, best of 60: h.T @ dh 5.43 -> 5.25 ms, x.T @ dh 4.22 -> 4.18 ms).
            # Eight depths at a time, so each panel gets one 8 x mr store (median of 50
            # interleaved pairs, against one depth at a time: h.T @ dh and x.T @ dh 2%
            # faster; 16 depths: 1.6% and 0.2%).
            def copy_depths(d: ir.Value, group: int) -> None:
                lines = [b.add(a_base, b.add(m0, b.mul(b.add(k0, b.add(d, _i64(j))), a_sk)))
                         for j in range(group)]

                def copy_panel(p: ir.Value) -> None:
                    parts = [k.load(g.a, b.add(line, b.mul(p, _i64(g.mr))), dt, g.mr)
                             for line in lines]
                    dst = b.mul(b.add(b.mul(p, depth), d), _i64(g.mr))
                    k.store_ptr(packed_a, dst, _concat(b, parts), dt)

                k.counted("gpa", _i64(0), full_panels, 1, copy_panel)

            grouped = b.mul(b.sdiv(depth, _i64(PACK_DEPTHS)), _i64(PACK_DEPTHS))
            k.counted("gpg", _i64(0), grouped, PACK_DEPTHS,
                      lambda d: copy_depths(d, PACK_DEPTHS))
            k.counted("gpd", grouped, depth, 1, lambda d: copy_depths(d, 1))
        if a_transposed or a_rows:  # (a_rows: only the last, partial panel is packed)
            with b.if_then(b.icmp_signed("<", full_panels, m_panels)):
                k.counted("gpt", _i64(0), depth, 1, lambda d: pack_step(full_panels, d))
        else:
            k.counted("gpa", _i64(0), m_panels, 1, lambda p: k.counted(
                "gpd", _i64(0), depth, 1, lambda d: pack_step(p, d)))

        def column_panel(p: ir.Value) -> None:
            n0 = b.mul(p, _i64(g.nr))
            cols = smin(_i64(g.nr), b.sub(n, n0))
            if packed_b is None:
                b_panel = b.add(b_base, b.mul(b.add(b.mul(p, kk), k0), _i64(g.nr)))
                b_ptr = b.gep(k.ptrs[g.b_packed], [b_panel], source_etype=mty)
            else:
                pack_b_panel(k, g, packed_b, n0, cols, k0, depth, lanes)
                b_ptr = packed_b

            # The next column panel's rows of the output, which the tile stores read and
            # write: one stream per row (64-96 of them) is more than the hardware
            # prefetcher follows (measured: conv block -4%, matmuls unchanged)
            k.counted("gpf", _i64(0), rows, 1, lambda r: prefetch_row(
                k, g.out, b.add(out_base, b.add(b.mul(b.add(m0, r), n), b.add(n0, _i64(g.nr)))),
                g.nr, dt, write=True))

            def packed_call(q: ir.Value) -> None:
                slot = _i64(0) if a_rows else q
                a_panel = b.gep(packed_a, [b.mul(b.mul(slot, depth), _i64(g.mr))],
                                source_etype=mty)
                b.call(micro, [a_panel, b_ptr, depth, tile])

            def row_panel(q: ir.Value) -> None:
                row0 = b.add(m0, b.mul(q, _i64(g.mr)))
                if micro_rows is None:
                    packed_call(q)
                else:
                    with b.if_else(b.icmp_signed("<", q, full_panels)) as (in_place, packed):
                        with in_place:
                            start = b.add(a_base, b.add(b.mul(row0, a_sm), k0))
                            b.call(micro_rows, [b.gep(k.ptrs[g.a], [start], source_etype=mty),
                                                a_sm, b_ptr, depth, tile])
                        with packed:
                            packed_call(q)
                valid_rows = smin(_i64(g.mr), b.sub(m1, row0))
                full = b.icmp_signed("==", cols, _i64(g.nr))
                with b.if_else(full) as (vector_store, lane_store):
                    with vector_store:
                        _store_tile(k, g, tile, row0, valid_rows, n0, None, first, last,
                                    out_base, n, lanes)
                    with lane_store:
                        _store_tile(k, g, tile, row0, valid_rows, n0, cols, first, last,
                                    out_base, n, lanes)

            k.counted("gmt", _i64(0), m_panels, 1, row_panel)

        k.counted("gnp", _i64(0), n_panels, 1, column_panel)

    k.counted("gkb", _i64(0), n_kb, 1, depth_block)


def _concat(b: ir.IRBuilder, parts: list[ir.Value]) -> ir.Value:
    """Equal-width vectors joined end to end into one."""
    while len(parts) > 1:
        width = parts[0].type.count
        both = ir.Constant(ir.VectorType(ir.IntType(32), 2 * width), list(range(2 * width)))
        parts = [b.shuffle_vector(parts[i], parts[i + 1], both) for i in range(0, len(parts), 2)]
    return parts[0]


def _store_tile(k: KernelEmitter, g: Gemm, tile: ir.Value, row0: ir.Value,
                valid_rows: ir.Value, n0: ir.Value, cols: ir.Value | None, first: ir.Value,
                last: ir.Value, out_base: ir.Value, n: ir.Value, lanes: int) -> None:
    """Add earlier depth blocks' partial sums, apply the epilogue after the last block,
    store. ``cols`` None: a full tile, whole vectors; else lane by lane, ``cols`` lanes."""
    b = k.b
    dt = g.dtype

    def row(r: ir.Value) -> None:
        gm = b.add(row0, r)
        row_base = b.add(out_base, b.mul(gm, n))
        tile_row = b.mul(r, _i64(g.nr))

        def part(j: ir.Value, width: int) -> None:
            gn = b.add(n0, j)
            index = b.add(row_base, gn)
            value = k.load_ptr(tile, b.add(tile_row, j), dt, width)
            earlier = k.load(g.out, index, dt, width)
            value = b.select(first, value, _add(b, dt, value, earlier))
            _finish(k, g, value, gm, gn, index, last, width)

        if cols is None:
            k.counted("gh", _i64(0), _i64(g.nr), lanes, lambda j: part(j, lanes))
        else:
            k.counted("gj", _i64(0), cols, 1, lambda j: part(j, 0))

    k.counted("gr", _i64(0), valid_rows, 1, row)


def _add(b: ir.IRBuilder, dt: DType, x: ir.Value, y: ir.Value) -> ir.Value:
    return b.fadd(x, y) if dt.is_float else b.add(x, y)


def _finish(k: KernelEmitter, g: Gemm, value: ir.Value, gm: ir.Value, gn: ir.Value,
            index: ir.Value, last: ir.Value, lanes: int) -> None:
    b = k.b
    with b.if_else(last) as (done, partial):
        with done:
            k.store(g.out, index, k.evaluate_at(g.epilogue, g.acc, value, gm, gn, lanes),
                    g.epilogue.dtype)
        with partial:
            k.store(g.out, index, value, g.dtype)

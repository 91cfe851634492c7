"""Transposing copies (``tfor`` loops), a square block of vector registers at a time.

Packing the B operand of ``x @ w.T`` reads each source row of ``w`` along the depth and
writes the packed panel across it. A vector along either loop is contiguous on one side
only: along the depth the stores scatter, across it the loads gather, one lane at a time.
Instead, ``L`` vectors of ``L`` lanes (a row of the source each) are loaded, transposed in
registers by log2(L) rounds of two-input shuffles, and stored as ``L`` contiguous vectors.

Transposing in place by rounds: with rows as vectors, swapping the off-diagonal blocks of
size ``b`` (b = L/2, L/4, ..., 1) inside every 2b x 2b block transposes the matrix; one
round pairs rows ``i`` and ``i + b`` and builds both new rows with one shuffle each.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llvmlite import ir

from tensorjit.compiler.codegen.types import I32, I64
from tensorjit.compiler.lowering import index as ix
from tensorjit.ir.loops import Const, Loop, Store

if TYPE_CHECKING:
    from tensorjit.compiler.codegen.kernel import KernelEmitter


def transpose_rows(b: ir.IRBuilder, rows: list[ir.Value]) -> list[ir.Value]:
    """The transpose of a square matrix held as ``len(rows)`` vectors (rows) of as many
    lanes: result vector ``c`` holds lane ``c`` of every row."""
    n = len(rows)
    rows = list(rows)
    half = n // 2
    while half >= 1:
        low = [j if (j // half) % 2 == 0 else n + j - half for j in range(n)]
        high = [j + half if (j // half) % 2 == 0 else n + j for j in range(n)]
        for i in range(n):
            if (i // half) % 2 == 0:
                a, c = rows[i], rows[i + half]
                rows[i] = b.shuffle_vector(a, c, ir.Constant(ir.VectorType(I32, n), low))
                rows[i + half] = b.shuffle_vector(a, c,
                                                  ir.Constant(ir.VectorType(I32, n), high))
        half //= 2
    return rows


def transpose_lanes(k: KernelEmitter, s: Loop) -> int | None:
    """Lanes per block for a ``tfor`` loop ``s`` this module can emit, else None: the
    store must move by one along ``s`` (contiguous after the transpose), and ``s``'s
    extent must be a whole number of blocks."""
    (inner,) = s.body
    assert isinstance(inner, Loop)
    (store,) = inner.body
    assert isinstance(store, Store)
    lanes = k.max_lanes * 4 // store.value.dtype.itemsize
    if lanes < 2 or not isinstance(s.extent, Const) or int(s.extent.value) % lanes:
        return None
    along = ix.linear_in(store.index, s.var)
    if along is None or along[0] is not ix.const(1):
        return None
    return lanes


def emit_transpose_loop(k: KernelEmitter, s: Loop, lanes: int) -> None:
    """Emit ``tfor j { for d { out[f(j, d)] = v(j, d) } }``: blocks of ``lanes`` x
    ``lanes`` (values read as vectors along ``d``, transposed, stored along ``j``), then
    the depths left over one element at a time."""
    b = k.b
    (inner,) = s.body
    assert isinstance(inner, Loop)
    (store,) = inner.body
    assert isinstance(store, Store)
    dtype = store.value.dtype
    depth = k.scalar(inner.extent)
    whole = b.and_(depth, ir.Constant(I64, ~(lanes - 1)))

    def block(j0: ir.Value, d0: ir.Value) -> None:
        rows = []
        for r in range(lanes):  # one row of the source per j, a vector along d
            k.memo.append({})
            k.vars[s.var] = b.add(j0, ir.Constant(I64, r))
            k.vars[inner.var] = d0
            k.vvar, k.lanes, k.vmemo = inner.var, lanes, {}
            try:
                rows.append(k.as_vector(k.vexpr(store.value), dtype))
            finally:
                k.vvar, k.lanes, k.vmemo = None, 0, {}
                k.memo.pop()
        for c, column in enumerate(transpose_rows(b, rows)):  # one depth per vector
            k.memo.append({})
            k.vars[s.var] = j0
            k.vars[inner.var] = b.add(d0, ir.Constant(I64, c))
            k.store(store.buffer, k.scalar(store.index), column, dtype)
            k.memo.pop()

    k.counted(f"{inner.var}.t", ir.Constant(I64, 0), whole, lanes,
              lambda d0: k.counted(f"{s.var}.t", ir.Constant(I64, 0), k.scalar(s.extent),
                                   lanes, lambda j0: block(j0, d0)))

    def leftover(j: ir.Value) -> None:
        k.vars[s.var] = j
        k.counted(inner.var, whole, depth, 1, lambda d: _scalar_store(k, inner.var, d, store))

    k.counted(s.var, ir.Constant(I64, 0), k.scalar(s.extent), 1, leftover)


def _scalar_store(k: KernelEmitter, var: str, d: ir.Value, store: Store) -> None:
    k.vars[var] = d
    k.stmt(store)


"""B panels packed inside the GEMM (``Gemm.b_value``): one ``kc x nr`` panel at a time.

``b_value`` is B's element as an expression of ``pk`` (row) and ``pn`` (column). For a
full panel it is evaluated on vectors of ``lanes`` columns, so a load that is contiguous
along B's rows is one vector load (a masked one where padding hides lanes). Two kinds
of work are moved out of the loop over the panel's rows, because that loop runs once per
element of B (a conv's im2col: 14M elements for the benchmark's block):

- parts that depend on the column only (a conv's output pixel ``pn // OW``, ``pn % OW``:
  vector integer divisions) are computed once per panel;
- a lane mask (padding: ``0 <= oh + kh - p < H and 0 <= ow + kw - p < W``) that depends
  on the row only through index parts with a few values each (``kh``, ``kw``) is
  computed for every combination of those values once per panel, into a small table of
  bit masks; each row then loads its mask instead of computing i64 vector compares.

Loads along B's rows also prefetch the rows of a panel further on (``PREFETCH_PANELS``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from llvmlite import ir

from tensorjit.compiler.codegen.mathlib import splat
from tensorjit.compiler.codegen.types import I32, I64, PTR, mem_type, opaque_alloca, reg_type
from tensorjit.compiler.lowering import index as ix
from tensorjit.ir.dtypes import DType
from tensorjit.ir.loops import Const, Expr, Gemm, Load, Var, walk

if TYPE_CHECKING:
    from tensorjit.compiler.codegen.kernel import KernelEmitter

T = TypeVar("T")
# Most row-value combinations a mask table holds (a 3x3 kernel needs 9, a 7x7 one 49).
MAX_MASK_COMBINATIONS = 64
# How many panels ahead loads along B's rows are prefetched (2-4 measured alike, 1 less).
PREFETCH_PANELS = 2


def _i64(v: int) -> ir.Constant:
    return ir.Constant(I64, v)


def _mentioned(e: Expr) -> dict[int, frozenset[str]]:
    """For every node of ``e`` (by id), the loop variables it mentions (iterative)."""
    names: dict[int, frozenset[str]] = {}
    stack: list[tuple[Expr, bool]] = [(e, False)]
    while stack:
        x, ready = stack.pop()
        if id(x) in names:
            continue
        if not ready:
            stack.append((x, True))
            stack.extend((c, False) for c in x.children() if id(c) not in names)
            continue
        here = frozenset({x.name}) if isinstance(x, Var) else frozenset()
        names[id(x)] = here.union(*(names[id(c)] for c in x.children()))
    return names


def _maximal(root: Expr, names: dict[int, frozenset[str]],
             take: Callable[[Expr], bool], descend: Callable[[Expr], bool]) -> list[Expr]:
    """The largest subexpressions for which ``take`` holds, looking inside nodes for which
    ``descend`` holds."""
    out: list[Expr] = []
    seen: set[int] = set()
    todo = [root]
    while todo:
        x = todo.pop()
        if id(x) in seen:
            continue
        seen.add(id(x))
        if take(x):
            out.append(x)
        elif descend(x):
            todo.extend(x.children())
    return out


@dataclass
class _MaskTable:
    """A lane mask ``cond`` that reads the row only through ``parts`` (each with values
    ``0..top``): one bit mask per combination of their values and per vector."""

    cond: Expr
    parts: list[Expr]
    sizes: list[int]

    @property
    def combinations(self) -> int:
        total = 1
        for s in self.sizes:
            total *= s
        return total


def _mask_tables(e: Expr, names: dict[int, frozenset[str]], k_extent: Expr) -> list[_MaskTable]:
    both = frozenset({"pk", "pn"})
    conds = _maximal(e, names,
                     lambda x: x.dtype is DType.bool and both <= names[id(x)],
                     lambda x: both <= names[id(x)])
    tables = []
    for cond in conds:
        parts = _maximal(cond, names,
                         lambda x: "pk" in names[id(x)] and "pn" not in names[id(x)]
                         and not isinstance(x, Const),
                         lambda x: "pk" in names[id(x)])
        tops = [ix.max_value(p, {"pk": k_extent}) for p in parts]
        if not parts or any(t is None for t in tops):
            continue
        table = _MaskTable(cond, parts, [int(t) + 1 for t in tops])  # type: ignore[arg-type]
        if table.combinations <= MAX_MASK_COMBINATIONS:
            tables.append(table)
    return tables


def pack_b_panel(k: KernelEmitter, g: Gemm, packed: ir.Value, n0: ir.Value, cols: ir.Value,
                 k0: ir.Value, depth: ir.Value, lanes: int) -> None:
    """packed[d * nr + j] = b_value at pk = k0 + d, pn = n0 + j for the panel's ``depth``
    rows: vectors of ``lanes`` columns for a full panel; lane by lane, zero past the last
    column, for the partial one."""
    b = k.b
    assert g.b_value is not None
    full = b.icmp_signed("==", cols, _i64(g.nr))
    with b.if_else(full) as (whole, edge):
        with whole:
            k.memo.append({})
            _vector_panel(k, g, g.b_value, packed, n0, k0, depth, lanes)
            k.memo.pop()
        with edge:
            k.memo.append({})
            _lane_panel(k, g, g.b_value, packed, n0, cols, k0, depth)
            k.memo.pop()


def _vector_panel(k: KernelEmitter, g: Gemm, value: Expr, packed: ir.Value, n0: ir.Value,
                  k0: ir.Value, depth: ir.Value, lanes: int) -> None:
    b = k.b
    dt = g.dtype
    nvec = g.nr // lanes
    names = _mentioned(value)
    columns = _maximal(value, names,
                       lambda x: "pk" not in names[id(x)] and "pn" in names[id(x)]
                       and not isinstance(x, Var),
                       lambda x: "pn" in names[id(x)])
    tables = _mask_tables(value, names, g.k) if isinstance(g.k, Const) else []
    mask_ty = ir.IntType(lanes)
    ahead = [x for x in walk(value) if isinstance(x, Load)
             and (along := ix.linear_in(x.index, "pn")) is not None and along[0] is ix.const(1)]

    def vector_mode(emit: Callable[[], T], seed: dict) -> T:
        k.vvar, k.lanes, k.vmemo = "pn", lanes, dict(seed)
        k.memo.append({})  # scalars that read pn differ from one vector to the next
        try:
            return emit()
        finally:
            k.memo.pop()
            k.vvar, k.lanes, k.vmemo = None, 0, {}

    def at_column(h: int) -> None:
        k.vars["pn"] = b.add(n0, _i64(h * lanes))

    hoisted = []
    for h in range(nvec):
        at_column(h)
        hoisted.append(vector_mode(lambda: {e: k.vexpr(e) for e in columns}, {}))
    entry = ir.IRBuilder(k.entry)
    slots = [opaque_alloca(entry, ir.ArrayType(mask_ty, t.combinations * nvec), 64)
             for t in tables]
    k.vars.pop("pk", None)  # the tables must not read the row
    for table, slot in zip(tables, slots):
        for combo in range(table.combinations):
            seed: dict = {}
            rest = combo
            for part, size in zip(reversed(table.parts), reversed(table.sizes)):
                seed[part] = (_i64(rest % size), False)
                rest //= size
            for h in range(nvec):
                at_column(h)
                mask = vector_mode(lambda c=table.cond: k.as_vector(k.vexpr(c), DType.bool),
                                   {**hoisted[h], **seed})
                b.store(b.bitcast(mask, mask_ty),
                        b.gep(slot, [_i64(combo * nvec + h)], source_etype=mask_ty))

    def row(d: ir.Value) -> None:
        k.vars["pk"] = b.add(k0, d)
        for h in range(nvec):
            at_column(h)
            seed = dict(hoisted[h])
            k.memo.append({})
            for table, slot in zip(tables, slots):
                combo: ir.Value = _i64(0)
                for part, size in zip(table.parts, table.sizes):
                    combo = b.add(b.mul(combo, _i64(size)), k.scalar(part))
                bits = b.load(b.gep(slot, [b.add(b.mul(combo, _i64(nvec)), _i64(h))],
                                    source_etype=mask_ty), typ=mask_ty)
                seed[table.cond] = (b.bitcast(bits, ir.VectorType(ir.IntType(1), lanes)), True)
            if h == 0:
                for load in ahead:
                    _prefetch_next_panels(k, g, load)
            k.memo.pop()
            out = vector_mode(lambda: k.as_vector(k.vexpr(value), dt), seed)
            k.store_ptr(packed, b.add(b.mul(d, _i64(g.nr)), _i64(h * lanes)), out, dt)

    k.counted("gbd", _i64(0), depth, 1, row)


def _prefetch_next_panels(k: KernelEmitter, g: Gemm, load: Load) -> None:
    """Prefetch the piece of this B row that the panel ``PREFETCH_PANELS`` further will
    read. A conv's panel reads ~3 rows of each of ~20 input channels per depth block:
    more streams than the hardware prefetcher follows, so the loads waited on L2
    (measured: conv block ~20.9 -> ~20.0 ms, 1 thread). Prefetches never fault."""
    first = k.b.add(k.scalar(load.index), _i64(PREFETCH_PANELS * g.nr))
    prefetch_row(k, load.buffer, first, g.nr, load.dtype, write=False)


def prefetch_row(k: KernelEmitter, buffer: str, first: ir.Value, count: int, dt: DType,
                 write: bool) -> None:
    """Prefetch elements ``first .. first + count`` of ``buffer`` (every cache line) into
    all cache levels; ``write``: for writing."""
    b = k.b
    fn = b.module.globals.get("llvm.prefetch.p0") or ir.Function(
        b.module, ir.FunctionType(ir.VoidType(), [PTR, I32, I32, I32]), "llvm.prefetch.p0")
    for byte in range(0, count * dt.itemsize, 64):
        ptr = b.gep(k.ptrs[buffer], [b.add(first, _i64(byte // dt.itemsize))],
                    source_etype=mem_type(dt))
        b.call(fn, [ptr, ir.Constant(I32, int(write)), ir.Constant(I32, 3), ir.Constant(I32, 1)])


def _lane_panel(k: KernelEmitter, g: Gemm, value: Expr, packed: ir.Value, n0: ir.Value,
                cols: ir.Value, k0: ir.Value, depth: ir.Value) -> None:
    b = k.b
    dt = g.dtype

    def row(d: ir.Value) -> None:
        k.vars["pk"] = b.add(k0, d)
        base = b.mul(d, _i64(g.nr))

        def lane(j: ir.Value) -> None:
            k.vars["pn"] = b.add(n0, j)
            k.store_ptr(packed, b.add(base, j), k.scalar(value), dt)

        k.counted("gbj", _i64(0), cols, 1, lane)
        k.counted("gbz", cols, _i64(g.nr), 1,
                  lambda j: k.store_ptr(packed, b.add(base, j), splat(0, reg_type(dt)), dt))

    k.counted("gbd", _i64(0), depth, 1, row)

"""One loop-IR kernel -> one LLVM function, with explicit vector code for ``vfor`` loops.

A ``vfor`` loop becomes a vector loop over ``lanes``-wide chunks followed by a scalar
tail. In the vector body every expression is either *uniform* (the same for all lanes,
kept scalar) or a vector: loads whose index moves by 1 with the loop variable become
vector loads, loads that do not move are scalar loads, and anything else is gathered
lane by lane. Accumulators live in stack slots (promoted to registers by LLVM); a vector
loop keeps a vector accumulator that is folded into the scalar one after the loop.
"""

from __future__ import annotations

from collections.abc import Callable

from llvmlite import ir

from tensorjit.compiler.codegen.batching import math_batches
from tensorjit.compiler.codegen.gemm import emit_gemm
from tensorjit.compiler.codegen.invariants import loop_invariants
from tensorjit.compiler.codegen.mathlib import splat
from tensorjit.compiler.codegen.ops import (
    CONTRACT,
    emit_cast,
    emit_op,
    mangle,
    math_call,
    maximum,
)
from tensorjit.compiler.codegen.transpose import emit_transpose_loop, transpose_lanes
from tensorjit.compiler.codegen.types import (
    I32,
    I64,
    PTR,
    lanes_of,
    mem_type,
    opaque_alloca,
    reg_type,
)
from tensorjit.compiler.lowering import index as ix
from tensorjit.ir.dtypes import DType
from tensorjit.ir.loops import (
    AccInit,
    AccRef,
    AccUpdate,
    Cast,
    Const,
    DimParam,
    Expr,
    Gemm,
    Kernel,
    Load,
    Loop,
    Op,
    Stmt,
    Store,
    Var,
    accumulator_identity,
    postorder,
)


def _in_dtype(e: Op) -> DType:
    if e.op == "select":
        return e.args[1].dtype
    return e.args[0].dtype


# Vectors per block of a vector reduction loop (see ``vector_loop``).
BLOCK = 128


class KernelEmitter:
    def __init__(self, module: ir.Module, kernel: Kernel, lanes: int = 16,
                 fast_math: bool = False, parallel: bool = False) -> None:
        """Emit ``kernel`` as ``void NAME(ptr bufs..., ptr dims, i64 begin, i64 end)``.

        With ``parallel``, the kernel's single top-level loop runs over [begin, end) only,
        so that a thread pool can split it; otherwise begin and end are ignored. Scratch
        buffers are not arguments: each call gets its own on the stack (per thread)."""
        self.kernel = kernel
        self.parallel = parallel
        self.flags: tuple[str, ...] = ("fast",) if fast_math else CONTRACT
        self.args = [p for p in kernel.params if p.role != "scratch"]
        fnty = ir.FunctionType(ir.VoidType(), [PTR] * (len(self.args) + 1) + [I64, I64])
        self.fn = ir.Function(module, fnty, name=kernel.name)
        self.fn.linkage = "internal"
        for arg, p in zip(self.fn.args, self.args):
            arg.name = p.name
            arg.add_attribute("noalias")
        dims, begin, end = self.fn.args[len(self.args):]
        dims.name, begin.name, end.name = "dims", "begin", "end"
        self.dims, self.begin, self.end = dims, begin, end
        self.ptrs = {p.name: a for p, a in zip(self.args, self.fn.args)}
        self.entry = self.fn.append_basic_block("entry")
        body = self.fn.append_basic_block("body")
        self.b = ir.IRBuilder(body)
        for p in kernel.params:
            if p.role == "scratch":
                self.ptrs[p.name] = opaque_alloca(ir.IRBuilder(self.entry),
                                                  ir.ArrayType(mem_type(p.dtype), p.numel), 64)
        self.max_lanes = lanes
        self.vars: dict[str, ir.Value] = {}
        self.accs: dict[str, tuple[str, DType, ir.Value, ir.Value | None]] = {}
        self.memo: list[dict[Expr, ir.Value]] = [{}]
        self.loaded: set[str] = set()  # buffers read by memoized values (see ``store``)
        # vector mode state
        self.vvar: str | None = None
        self.lanes = 0
        self.vmemo: dict[Expr, tuple[ir.Value, bool]] = {}
        self.vaccs: dict[str, ir.Value] = {}
        self.vleaf: Expr | None = None  # a leaf bound to a vector (matmul epilogues)
        self._mention_memo: dict[tuple, bool] = {}

    # --- driver -------------------------------------------------------------------
    def emit(self) -> ir.Function:
        if self.parallel:
            (top,) = self.kernel.body
            assert isinstance(top, Loop)
            self.loop(top, self.begin, self.end)
        else:
            self._emit_math_batches()
            for s in self.kernel.body:
                self.stmt(s)
        self.b.ret_void()
        ir.IRBuilder(self.entry).branch(self.fn.blocks[1])
        return self.fn

    def _emit_math_batches(self) -> None:
        """Compute the batchable scalar math calls (see ``batching``) at the kernel's
        entry, a vector register's worth per call; the spare lanes of the last vector
        repeat its last argument (a valid input)."""
        if self.max_lanes <= 1:
            return
        for group in math_batches(self.kernel):
            dtype = group[0].dtype
            lanes = self.max_lanes * 4 // dtype.itemsize
            args = [self.scalar(e.args[0]) for e in group]
            for first in range(0, len(group), lanes):
                chunk = args[first:first + lanes]
                vec = ir.Constant(reg_type(dtype, lanes), ir.Undefined)
                for k in range(lanes):
                    vec = self.b.insert_element(vec, chunk[min(k, len(chunk) - 1)],
                                                ir.Constant(I32, k))
                out = math_call(self.b, group[0].op, vec, dtype, outline=True)
                for k, e in enumerate(group[first:first + lanes]):
                    self.memo[0][e] = self.b.extract_element(out, ir.Constant(I32, k))

    def _alloca(self, ty: ir.Type) -> ir.Value:
        eb = ir.IRBuilder(self.entry)
        return eb.alloca(ty)

    # --- statements (scalar) --------------------------------------------------------
    def stmt(self, s: Stmt) -> None:
        if isinstance(s, Loop):
            self.loop(s)
        elif isinstance(s, Store):
            self.store(s.buffer, self.scalar(s.index), self.scalar(s.value), s.value.dtype)
        elif isinstance(s, AccInit):
            slot = self._alloca(reg_type(s.dtype))
            self.b.store(splat(accumulator_identity(s.kind, s.dtype), reg_type(s.dtype)), slot)
            pos = None
            if s.kind in ("argmax", "argmin"):
                pos = self._alloca(I64)
                self.b.store(ir.Constant(I64, 0), pos)
            self.accs[s.name] = (s.kind, s.dtype, slot, pos)
        elif isinstance(s, Gemm):
            emit_gemm(self, s)
        elif isinstance(s, AccUpdate):
            kind, dtype, slot, pos = self.accs[s.name]
            value = self.scalar(s.value)
            if pos is not None:
                assert s.position is not None
                self._arg_update(kind, dtype, slot, pos, value, self.scalar(s.position))
            else:
                self.b.store(self.combine(kind, dtype, self.b.load(slot), value), slot)
        else:
            raise TypeError(s)

    def _arg_update(self, kind: str, dtype: DType, slot: ir.Value, pos: ir.Value,
                    value: ir.Value, position: ir.Value) -> None:
        best = self.b.load(slot)
        if dtype.is_float:
            better = self.b.fcmp_ordered(">" if kind == "argmax" else "<", value, best)
            first_nan = self.b.and_(self.b.fcmp_unordered("uno", value, value),
                                    self.b.fcmp_ordered("ord", best, best))
            better = self.b.or_(better, first_nan)
        elif dtype is DType.bool:
            better = self.b.icmp_unsigned(">" if kind == "argmax" else "<", value, best)
        else:
            better = self.b.icmp_signed(">" if kind == "argmax" else "<", value, best)
        self.b.store(self.b.select(better, value, best), slot)
        self.b.store(self.b.select(better, position, self.b.load(pos)), pos)

    def combine(self, kind: str, dtype: DType, acc: ir.Value, value: ir.Value) -> ir.Value:
        if kind == "sum":
            return emit_op(self.b, "add", [acc, value], dtype, dtype, self.flags)
        if kind == "prod":
            return emit_op(self.b, "mul", [acc, value], dtype, dtype, self.flags)
        return maximum(self.b, acc, value, dtype, kind == "max")

    def store(self, buffer: str, index: ir.Value, value: ir.Value, dtype: DType) -> None:
        if buffer in self.loaded:
            self._forget_reads_of(buffer)
        self.store_ptr(self.ptrs[buffer], index, value, dtype)

    def _forget_reads_of(self, buffer: str) -> None:
        """Drop memoized values computed from loads of ``buffer``, which is about to be
        written: later reads must see the new contents (a kernel that reads back what
        it wrote: merged kernels, in-place results)."""
        tables: list[dict] = [*self.memo, self.vmemo]
        stale: set[int] = set()
        for e in postorder(*(e for table in tables for e in table)):
            if (isinstance(e, Load) and e.buffer == buffer) or \
                    any(id(c) in stale for c in e.children()):
                stale.add(id(e))
        for table in tables:
            for e in [e for e in table if id(e) in stale]:
                del table[e]
        self.loaded.discard(buffer)

    def store_ptr(self, base: ir.Value, index: ir.Value, value: ir.Value, dtype: DType) -> None:
        ptr = self.b.gep(base, [index], inbounds=True, source_etype=mem_type(dtype))
        if dtype is DType.bool:
            value = self.b.zext(value, mem_type(dtype, lanes_of(value)))
        self.b.store(value, ptr, align=dtype.itemsize)

    def load(self, buffer: str, index: ir.Value, dtype: DType, lanes: int = 0,
             align: int = 0) -> ir.Value:
        self.loaded.add(buffer)
        return self.load_ptr(self.ptrs[buffer], index, dtype, lanes, align)

    def load_ptr(self, base: ir.Value, index: ir.Value, dtype: DType, lanes: int = 0,
                 align: int = 0) -> ir.Value:
        ptr = self.b.gep(base, [index], inbounds=True, source_etype=mem_type(dtype))
        value = self.b.load(ptr, typ=mem_type(dtype, lanes), align=align or dtype.itemsize)
        if dtype is DType.bool:
            value = self.b.icmp_unsigned("!=", value, splat(0, value.type))
        return value

    def as_vector_of(self, value: ir.Value, dtype: DType, lanes: int) -> ir.Value:
        """Broadcast a scalar to ``lanes`` lanes."""
        ty = reg_type(dtype, lanes)
        undef = ir.Constant(ty, ir.Undefined)
        one = self.b.insert_element(undef, value, ir.Constant(I32, 0))
        return self.b.shuffle_vector(one, undef, ir.Constant(ir.VectorType(I32, lanes),
                                                               [0] * lanes))

    def evaluate_at(self, e: Expr, leaf: Expr, value: ir.Value, gm: ir.Value, gn: ir.Value,
                    lanes: int) -> ir.Value:
        """``e`` with ``leaf`` bound to ``value`` at row ``gm`` and column(s) ``gn`` (a
        vector of ``lanes`` columns from ``gn`` when lanes > 0): a matmul epilogue."""
        self.vars["gm"], self.vars["gn"] = gm, gn
        self.memo.append({leaf: value} if not lanes else {})
        try:
            if not lanes:
                return self.scalar(e)
            self.vvar, self.lanes, self.vmemo = "gn", lanes, {leaf: (value, True)}
            self.vleaf = leaf
            return self.as_vector(self.vexpr(e), e.dtype)
        finally:
            self.vvar, self.lanes, self.vmemo, self.vleaf = None, 0, {}, None
            self.memo.pop()

    # --- loops ----------------------------------------------------------------------
    def counted(self, var: str, start: ir.Value, stop: ir.Value, step: int,
                body: Callable[[ir.Value], None]) -> None:
        b = self.b
        pre = b.block
        header = self.fn.append_basic_block(f"{var}.head")
        loop = self.fn.append_basic_block(f"{var}.body")
        done = self.fn.append_basic_block(f"{var}.done")
        b.branch(header)
        b.position_at_end(header)
        i = b.phi(I64, name=var)
        i.add_incoming(start, pre)
        b.cbranch(b.icmp_signed("<", i, stop), loop, done)
        b.position_at_end(loop)
        self.memo.append({})
        body(i)
        self.memo.pop()
        nxt = b.add(i, ir.Constant(I64, step), flags=("nsw",))
        i.add_incoming(nxt, b.block)
        b.branch(header)
        b.position_at_end(done)

    def loop(self, s: Loop, start: ir.Value | None = None, stop: ir.Value | None = None) -> None:
        if start is None:  # (a parallel kernel's chunk of the top loop keeps them inside)
            for e in loop_invariants(s):
                self.scalar(e)
        if s.kind == "transpose" and start is None:
            lanes = transpose_lanes(self, s)
            if lanes is not None:
                emit_transpose_loop(self, s, lanes)
                return
        start = ir.Constant(I64, 0) if start is None else start
        stop = self.scalar(s.extent) if stop is None else stop
        if s.kind == "vector" and self.max_lanes > 1 and all(
                isinstance(x, Store) or (isinstance(x, AccUpdate) and x.position is None)
                for x in s.body):
            self.vector_loop(s, start, stop)
            return

        def body(i: ir.Value) -> None:
            self.vars[s.var] = i
            for x in s.body:
                self.stmt(x)

        self.counted(s.var, start, stop, 1, body)

    def vector_loop(self, s: Loop, start: ir.Value, extent: ir.Value) -> None:
        """Vector chunks, then a scalar tail. Accumulators are folded block by block
        (cascade summation): each block of ``BLOCK`` vectors sums into a fresh vector
        accumulator that is then added to a running total, which keeps long float sums
        accurate without giving up the vector loop."""
        lanes = self.max_lanes
        b = self.b
        n_vec = b.add(start, b.and_(b.sub(extent, start), ir.Constant(I64, ~(lanes - 1))))
        names = list(dict.fromkeys(x.name for x in s.body if isinstance(x, AccUpdate)))
        blocks: dict[str, ir.Value] = {}
        totals: dict[str, ir.Value] = {}
        for name in names:
            kind, dtype, _, _ = self.accs[name]
            vty = reg_type(dtype, lanes)
            blocks[name], totals[name] = self._alloca(vty), self._alloca(vty)
            b.store(splat(accumulator_identity(kind, dtype), vty), totals[name])

        def vbody(i: ir.Value) -> None:
            self.vars[s.var] = i
            self.vvar, self.lanes, self.vmemo, self.vaccs = s.var, lanes, {}, blocks
            try:
                for x in s.body:
                    self.vstmt(x)
            finally:
                self.vvar, self.lanes, self.vmemo = None, 0, {}

        def block(first: ir.Value) -> None:
            for name in names:
                kind, dtype, _, _ = self.accs[name]
                vty = reg_type(dtype, lanes)
                b.store(splat(accumulator_identity(kind, dtype), vty), blocks[name])
            end = b.add(first, ir.Constant(I64, lanes * BLOCK))
            end = b.select(b.icmp_signed("<", end, n_vec), end, n_vec)
            self.counted(s.var, first, end, lanes, vbody)
            for name in names:
                kind, dtype, _, _ = self.accs[name]
                b.store(self.combine(kind, dtype, b.load(totals[name]), b.load(blocks[name])),
                        totals[name])

        if names:
            self.counted(f"{s.var}.block", start, n_vec, lanes * BLOCK, block)
        else:
            self.counted(s.var, start, n_vec, lanes, vbody)
        for name in names:
            kind, dtype, slot, _ = self.accs[name]
            total = self.hreduce(kind, dtype, b.load(totals[name]))
            b.store(self.combine(kind, dtype, b.load(slot), total), slot)

        def tail(i: ir.Value) -> None:
            self.vars[s.var] = i
            for x in s.body:
                self.stmt(x)

        self.counted(s.var, n_vec, extent, 1, tail)

    def hreduce(self, kind: str, dtype: DType, v: ir.Value) -> ir.Value:
        width = lanes_of(v)
        while width > 1:
            half = width // 2
            lo = self.b.shuffle_vector(v, ir.Constant(v.type, ir.Undefined),
                                       ir.Constant(ir.VectorType(I32, half), list(range(half))))
            hi = self.b.shuffle_vector(v, ir.Constant(v.type, ir.Undefined),
                                       ir.Constant(ir.VectorType(I32, half),
                                                   list(range(half, width))))
            v = self.combine(kind, dtype, lo, hi)
            width = half
        return self.b.extract_element(v, ir.Constant(I32, 0))

    # --- statements (vector) ----------------------------------------------------------
    def vstmt(self, s: Stmt) -> None:
        if isinstance(s, Store):
            value = self.as_vector(self.vexpr(s.value), s.value.dtype)
            coef = self.coef(s.index)
            if coef == 1:
                self.store(s.buffer, self.scalar(s.index), value, s.value.dtype)
            else:
                idx = self.as_vector(self.vexpr(s.index), DType.int64)
                for lane in range(self.lanes):
                    k = ir.Constant(I32, lane)
                    self.store(s.buffer, self.b.extract_element(idx, k),
                               self.b.extract_element(value, k), s.value.dtype)
        elif isinstance(s, AccUpdate):
            kind, dtype, _, _ = self.accs[s.name]
            slot = self.vaccs[s.name]
            value = self.as_vector(self.vexpr(s.value), dtype)
            self.b.store(self.combine(kind, dtype, self.b.load(slot), value), slot)
        else:
            raise TypeError(s)

    def coef(self, index: Expr) -> int | None:
        """How far ``index`` moves per step of the vector variable (None: not affine)."""
        terms, _ = ix.affine(index)
        coef = 0
        for atom, c in terms.items():
            if isinstance(atom, Var) and atom.name == self.vvar:
                coef += c
            elif self._mentions(atom):
                return None
        return coef

    def _mentions(self, e: Expr) -> bool:
        """Does ``e`` vary across the lanes (the vector variable or a vector leaf)?
        Memoized per vector body: expressions are DAGs with much sharing (scalar-style
        code), so a tree walk would be exponential."""
        memo = self._mention_memo
        key = (e, self.vvar, self.vleaf)
        hit = memo.get(key)
        if hit is not None:
            return hit
        vvar, vleaf = self.vvar, self.vleaf
        for x in postorder(e, stop=lambda x: (x, vvar, vleaf) in memo):
            memo[(x, vvar, vleaf)] = (isinstance(x, Var) and x.name == vvar) or x is vleaf \
                or any(memo[(c, vvar, vleaf)] for c in x.children())
        return memo[key]

    def as_vector(self, ev: tuple[ir.Value, bool], dtype: DType) -> ir.Value:
        value, is_vec = ev
        if is_vec:
            return value
        ty = reg_type(dtype, self.lanes)
        undef = ir.Constant(ty, ir.Undefined)
        one = self.b.insert_element(undef, value, ir.Constant(I32, 0))
        return self.b.shuffle_vector(one, undef, ir.Constant(ir.VectorType(I32, self.lanes),
                                                               [0] * self.lanes))

    def vexpr(self, e: Expr) -> tuple[ir.Value, bool]:
        hit = self.vmemo.get(e)
        if hit is not None:
            return hit
        out = self._vexpr(e)
        self.vmemo[e] = out
        return out

    def _vexpr(self, e: Expr) -> tuple[ir.Value, bool]:
        if not self._mentions(e):
            return self.scalar(e), False
        if isinstance(e, Var):
            base = self.as_vector((self.vars[e.name], False), DType.int64)
            step = ir.Constant(ir.VectorType(I64, self.lanes), list(range(self.lanes)))
            return self.b.add(base, step), True
        if isinstance(e, Load):
            coef = self.coef(e.index)
            if e.mask is not None:
                return self._masked_vector_load(e, coef), True
            if coef == 1:
                return self.load(e.buffer, self.scalar(e.index), e.dtype, self.lanes), True
            idx = self.as_vector(self.vexpr(e.index), DType.int64)
            out = ir.Constant(reg_type(e.dtype, self.lanes), ir.Undefined)
            for lane in range(self.lanes):
                k = ir.Constant(I32, lane)
                v = self.load(e.buffer, self.b.extract_element(idx, k), e.dtype)
                out = self.b.insert_element(out, v, k)
            return out, True
        if isinstance(e, Cast):
            x = self.vexpr(e.x)
            return emit_cast(self.b, x[0], e.x.dtype, e.dtype), x[1]
        if isinstance(e, Op):
            args = [self.vexpr(a) for a in e.args]
            vec = [self.as_vector(a, x.dtype) for a, x in zip(args, e.args)]
            return emit_op(self.b, e.op, vec, _in_dtype(e), e.dtype, self.flags), True
        raise TypeError(e)

    def _masked_scalar_load(self, e: Load, index: ir.Value, mask: ir.Value) -> ir.Value:
        """Read only if the mask holds (the index may be out of bounds otherwise)."""
        b = self.b
        before = b.block
        with b.if_then(mask):
            value = self.load(e.buffer, index, e.dtype)
            then = b.block
        merged = b.phi(value.type)
        merged.add_incoming(splat(0, value.type), before)
        merged.add_incoming(value, then)
        return merged

    def _masked_vector_load(self, e: Load, coef: int | None) -> ir.Value:
        assert e.mask is not None
        mask = self.as_vector(self.vexpr(e.mask), DType.bool)
        lanes = self.lanes
        self.loaded.add(e.buffer)
        if coef == 1:  # contiguous: one masked vector load, no touch of masked-off lanes
            mty = mem_type(e.dtype, lanes)
            ptr = self.b.gep(self.ptrs[e.buffer], [self.scalar(e.index)], inbounds=False,
                             source_etype=mem_type(e.dtype))
            name = f"llvm.masked.load.v{lanes}{mangle(mem_type(e.dtype))}.p0"
            fn = self.b.module.globals.get(name) or ir.Function(
                self.b.module, ir.FunctionType(mty, [PTR, I32, mask.type, mty]), name)
            value = self.b.call(fn, [ptr, ir.Constant(I32, e.dtype.itemsize), mask,
                                     splat(0, mty)])
            if e.dtype is DType.bool:
                value = self.b.icmp_unsigned("!=", value, splat(0, mty))
            return value
        index = self.as_vector(self.vexpr(e.index), DType.int64)
        out = splat(0, reg_type(e.dtype, lanes))
        for lane in range(lanes):
            k = ir.Constant(I32, lane)
            value = self._masked_scalar_load(e, self.b.extract_element(index, k),
                                             self.b.extract_element(mask, k))
            out = self.b.insert_element(out, value, k)
        return out

    # --- expressions (scalar) ---------------------------------------------------------
    def _memoized(self, e: Expr) -> ir.Value | None:
        for level in reversed(self.memo):
            hit = level.get(e)
            if hit is not None:
                return hit
        return None

    def scalar(self, e: Expr) -> ir.Value:
        hit = self._memoized(e)
        if hit is not None:
            return hit
        # operands first, without recursion (deep expressions)
        for x in postorder(e, stop=lambda x: self._memoized(x) is not None):
            self.memo[-1][x] = self._scalar(x)
        value = self._memoized(e)
        assert value is not None
        return value

    def _scalar(self, e: Expr) -> ir.Value:
        if isinstance(e, Const):
            return splat(int(e.value) if e.dtype is DType.bool else e.value, reg_type(e.dtype))
        if isinstance(e, Var):
            return self.vars[e.name]
        if isinstance(e, DimParam):
            ptr = self.b.gep(self.dims, [ir.Constant(I64, e.index)], inbounds=True,
                             source_etype=I64)
            return self.b.load(ptr, typ=I64, align=8)
        if isinstance(e, AccRef):
            _, _, slot, _ = self.accs[e.name]
            kind = self.accs[e.name][0]
            if kind in ("argmax", "argmin"):
                return self.b.load(self.accs[e.name][3])
            return self.b.load(slot)
        if isinstance(e, Load):
            if e.mask is not None:
                return self._masked_scalar_load(e, self.scalar(e.index), self.scalar(e.mask))
            return self.load(e.buffer, self.scalar(e.index), e.dtype)
        if isinstance(e, Cast):
            return emit_cast(self.b, self.scalar(e.x), e.x.dtype, e.dtype)
        if isinstance(e, Op):
            return emit_op(self.b, e.op, [self.scalar(a) for a in e.args], _in_dtype(e), e.dtype,
                           self.flags)
        raise TypeError(e)



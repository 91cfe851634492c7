"""A loop-IR module -> an LLVM module with one entry function that runs every kernel.

Entry point (C)::

    int32_t <name>(void **buffers, const int64_t *dims, char *arena);

``buffers`` holds the inputs in call order, then the outputs, then the array constants;
``dims`` the sizes of the symbolic dims in ``Module.symbols`` order; ``arena`` a
64-byte-aligned block of ``arena_bytes(dims)`` bytes for the temporaries (may be NULL
when there are none). Returns 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from llvmlite import ir

from tensorjit.compiler.codegen.kernel import KernelEmitter
from tensorjit.compiler.codegen.types import I32, I64, PTR, opaque_alloca
from tensorjit.ir.loops import (
    AccUpdate,
    Buffer,
    Const,
    DimParam,
    Expr,
    Kernel,
    Loop,
    Module,
    Op,
    iterations,
)
from tensorjit.ir.shapes import Size

ALIGN = 64
# Work (innermost iterations) below which a task is not worth handing to another thread.
PARALLEL_GRAIN = 1 << 15


@dataclass(frozen=True)
class ArenaSlot:
    name: str
    numel: Size
    itemsize: int


def arena_slots(module: Module) -> list[ArenaSlot]:
    return [ArenaSlot(b.name, b.numel, b.dtype.itemsize)
            for b in module.buffers if b.kind == "temp"]


def arena_bytes(slots: list[ArenaSlot], bindings: dict[str, int]) -> int:
    total = 0
    for s in slots:
        total += -(-s.numel.evaluate(bindings) * s.itemsize // ALIGN) * ALIGN
    return total


def _slot_index(module: Module, buf: Buffer) -> int:
    n_in = sum(1 for b in module.buffers if b.kind == "input")
    n_out = sum(1 for b in module.buffers if b.kind == "output")
    if buf.kind == "input":
        return buf.position
    if buf.kind == "output":
        return n_in + buf.position
    return n_in + n_out + buf.position


def parallel_plan(kernel: Kernel) -> int | None:
    """The minimum chunk (iterations of the top loop per task) if the kernel can be split
    across threads, else None: it must be one top-level loop whose iterations are
    independent (no accumulator spans them) and whose buffers are its own per call."""
    if len(kernel.body) != 1 or not isinstance(kernel.body[0], Loop):
        return None
    top = kernel.body[0]
    if any(isinstance(s, AccUpdate) for s in top.body):
        return None
    # innermost iterations per iteration of the top loop (symbolic extents count 1024)
    work = iterations(top.body, symbolic=1024)
    if work is None:
        return 1  # a block of matrix rows is plenty of work
    return max(1, -(-PARALLEL_GRAIN // max(work, 1)))


def _index_value(b: ir.IRBuilder, e: Expr, dim: Callable[[str], ir.Value]) -> ir.Value:
    """An i64 size expression of the loop IR (constants, dims, + - * // %) in the entry."""
    if isinstance(e, Const):
        return ir.Constant(I64, int(e.value))
    if isinstance(e, DimParam):
        return dim(e.name)
    if isinstance(e, Op) and e.op in ("add", "sub", "mul", "idiv", "imod"):
        x, y = (_index_value(b, a, dim) for a in e.args)
        return {"add": b.add, "sub": b.sub, "mul": b.mul, "idiv": b.sdiv,
                "imod": b.srem}[e.op](x, y)
    raise TypeError(f"not a size expression: {e}")


def _runtime_parallel_for(m: ir.Module) -> ir.Function:
    task = ir.FunctionType(ir.VoidType(), [PTR, I64, I64])
    fn = m.globals.get("tj_parallel_for")
    if fn is None:
        fn = ir.Function(m, ir.FunctionType(I32, [I64, I64, task.as_pointer(), PTR]),
                         "tj_parallel_for")
    return fn


def _task(m: ir.Module, kernel_fn: ir.Function, n_args: int) -> ir.Function:
    """``void NAME.task(ptr ctx, i64 begin, i64 end)``: unpack ctx and call the kernel."""
    task = ir.Function(m, ir.FunctionType(ir.VoidType(), [PTR, I64, I64]),
                       f"{kernel_fn.name}.task")
    task.linkage = "internal"
    ctx, begin, end = task.args
    b = ir.IRBuilder(task.append_basic_block())
    args = [b.load(b.gep(ctx, [ir.Constant(I64, k)], source_etype=PTR), typ=PTR)
            for k in range(n_args)]
    b.call(kernel_fn, args + [begin, end])
    b.ret_void()
    return task


def emit_llvm(module: Module, entry_name: str, lanes: int = 16, fast_math: bool = False,
              threads: int | None = None,
              arena_offsets: dict[str, int] | None = None) -> ir.Module:
    """``arena_offsets``: each temp's byte offset in the arena (a memory plan, see
    ``passes/memory.py``); without it temps are bump-allocated in ``Module.buffers`` order."""
    m = ir.Module(name=module.name)
    plans = [None if threads == 1 else parallel_plan(k) for k in module.kernels]
    kernels = [KernelEmitter(m, k, lanes, fast_math, plan is not None).emit()
               for k, plan in zip(module.kernels, plans)]
    entry = ir.Function(m, ir.FunctionType(I32, [PTR, PTR, PTR]), name=entry_name)
    bufs, dims, arena = entry.args
    bufs.name, dims.name, arena.name = "buffers", "dims", "arena"
    b = ir.IRBuilder(entry.append_basic_block("entry"))

    def dim(sym: str) -> ir.Value:
        k = module.symbols.index(sym)
        return b.load(b.gep(dims, [ir.Constant(I64, k)], inbounds=True, source_etype=I64),
                      typ=I64, align=8)

    ptrs: dict[str, ir.Value] = {}
    offset: ir.Value = ir.Constant(I64, 0)
    for buf in module.buffers:
        if buf.kind == "temp" and arena_offsets is not None:
            ptrs[buf.name] = b.gep(arena, [ir.Constant(I64, arena_offsets[buf.name])],
                                   inbounds=True, source_etype=ir.IntType(8))
        elif buf.kind == "temp":
            ptrs[buf.name] = b.gep(arena, [offset], inbounds=True, source_etype=ir.IntType(8))
            nbytes: ir.Value = ir.Constant(I64, buf.numel.coef * buf.dtype.itemsize)
            for sym in buf.numel.syms:
                nbytes = b.mul(nbytes, dim(sym))
            rounded = b.and_(b.add(nbytes, ir.Constant(I64, ALIGN - 1)),
                             ir.Constant(I64, ~(ALIGN - 1)))
            offset = b.add(offset, rounded)
        else:
            slot = b.gep(bufs, [ir.Constant(I64, _slot_index(module, buf))], inbounds=True,
                         source_etype=PTR)
            ptrs[buf.name] = b.load(slot, typ=PTR, align=8)
    ctx = None
    for fn, kernel, plan in zip(kernels, module.kernels, plans):
        args = [ptrs[p.name] for p in kernel.params if p.role != "scratch"] + [dims]
        top = kernel.body[0] if kernel.body else None
        if plan is None or not isinstance(top, Loop):
            b.call(fn, args + [ir.Constant(I64, 0), ir.Constant(I64, 0)])
            continue
        if ctx is None:
            most = max(len(k.params) + 1 for k in module.kernels)
            with b.goto_entry_block():
                ctx = opaque_alloca(b, ir.ArrayType(PTR, most))
        for k, a in enumerate(args):
            b.store(a, b.gep(ctx, [ir.Constant(I64, k)], source_etype=PTR))
        extent = _index_value(b, top.extent, dim)
        b.call(_runtime_parallel_for(m), [extent, ir.Constant(I64, plan),
                                          _task(m, fn, len(args)), ctx])
    b.ret(ir.Constant(I32, 0))
    return m

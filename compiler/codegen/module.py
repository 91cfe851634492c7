"""A loop-IR module -> an LLVM module with one entry function that runs every kernel.

Entry point (C)::

    int32_t <name>(void **buffers, const int64_t *dims, char *arena);

``buffers`` holds the inputs in call order, then the outputs, then the array constants;
``dims`` the sizes of the symbolic dims in ``Module.symbols`` order; ``arena`` a
64-byte-aligned block of ``arena_bytes(dims)`` bytes for the temporaries (may be NULL
when there are none). Returns 0.
"""

from __future__ import annotations

from dataclasses import dataclass

from llvmlite import ir

from tensorjit.compiler.codegen.kernel import KernelEmitter
from tensorjit.compiler.codegen.types import I32, I64, PTR
from tensorjit.ir.loops import Buffer, Module
from tensorjit.ir.shapes import Size

ALIGN = 64


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


def emit_llvm(module: Module, entry_name: str, lanes: int = 16,
              fast_math: bool = False) -> ir.Module:
    m = ir.Module(name=module.name)
    kernels = [KernelEmitter(m, k, lanes, fast_math).emit() for k in module.kernels]
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
        if buf.kind == "temp":
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
    for fn, kernel in zip(kernels, module.kernels):
        b.call(fn, [ptrs[p.name] for p in kernel.params] + [dims])
    b.ret(ir.Constant(I32, 0))
    return m

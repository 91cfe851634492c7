"""LLVM types of tensorjit dtypes, in registers and in memory."""

from __future__ import annotations

from llvmlite import ir

from tensorjit.ir.dtypes import DType

_REG = {
    DType.float32: ir.FloatType(), DType.float64: ir.DoubleType(),
    DType.int32: ir.IntType(32), DType.int64: ir.IntType(64), DType.bool: ir.IntType(1),
}
# NumPy stores bool as one byte.
_MEM = {**_REG, DType.bool: ir.IntType(8)}

I1, I8, I32, I64 = ir.IntType(1), ir.IntType(8), ir.IntType(32), ir.IntType(64)
PTR = ir.PointerType()


def reg_type(dtype: DType, lanes: int = 0) -> ir.Type:
    """Register type; a vector of ``lanes`` lanes when lanes > 0."""
    t = _REG[dtype]
    return ir.VectorType(t, lanes) if lanes else t


def mem_type(dtype: DType, lanes: int = 0) -> ir.Type:
    t = _MEM[dtype]
    return ir.VectorType(t, lanes) if lanes else t


def lanes_of(value: ir.Value) -> int:
    return value.type.count if isinstance(value.type, ir.VectorType) else 0


def opaque_alloca(b: ir.IRBuilder, ty: ir.Type, align: int = 0) -> ir.Value:
    """An alloca typed as an opaque ``ptr`` (llvmlite otherwise types it ``T*``, which its
    builder then refuses to store vectors or other types through)."""
    slot = b.alloca(ty)
    if align:
        slot.align = align
    slot.type = PTR
    return slot

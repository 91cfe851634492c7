"""The emission layer of ``mathlib``: scalar/vector type helpers, overloaded-intrinsic
declarations, and ``_Emitter``, a small typed layer over IRBuilder that the math functions
(``mathlib.py``, ``mathlib_trig.py``) are written in."""

from __future__ import annotations

import struct
from collections.abc import Sequence

from llvmlite import ir

# ----------------------------------------------------------------------------
# Type helpers shared with the code generator
# ----------------------------------------------------------------------------


def is_vector(ty: ir.Type) -> bool:
    """True if ``ty`` is an LLVM vector type (``<n x T>``)."""
    return isinstance(ty, ir.VectorType)


def element_type(ty: ir.Type) -> ir.Type:
    """The lane type of a vector type, or ``ty`` itself for a scalar type."""
    return ty.element if isinstance(ty, ir.VectorType) else ty


def splat(value: float | int, ty: ir.Type) -> ir.Constant:
    """A constant of type ``ty`` (scalar or vector) with every lane equal to ``value``.

    Float constants are rounded to the lane precision (llvmlite requires float
    constants to be exactly representable)."""
    elem = element_type(ty)
    if isinstance(elem, ir.FloatType):
        value = struct.unpack("<f", struct.pack("<f", float(value)))[0]
    elif isinstance(elem, ir.DoubleType):
        value = float(value)
    else:
        value = int(value)
    if isinstance(ty, ir.VectorType):
        return ir.Constant(ty, [value] * ty.count)
    return ir.Constant(ty, value)


def mangle(ty: ir.Type) -> str:
    """LLVM's overloaded-intrinsic suffix for ``ty``: f32, f64, v16f32, v8i64..."""
    if isinstance(ty, ir.VectorType):
        return f"v{ty.count}{mangle(ty.element)}"
    if isinstance(ty, ir.FloatType):
        return "f32"
    if isinstance(ty, ir.DoubleType):
        return "f64"
    if isinstance(ty, ir.IntType):
        return f"i{ty.width}"
    raise TypeError(f"no intrinsic mangling for {ty}")


def declare_intrinsic(
    module: ir.Module,
    name: str,
    ret: ir.Type,
    args: Sequence[ir.Type],
    overloads: Sequence[ir.Type] | None = None,
) -> ir.Function:
    """Declare (once per module) the overloaded intrinsic ``name`` for these types.

    The name gets one mangled suffix per overloaded type: by default the return
    type, which is right for the elementwise intrinsics (``llvm.fma.v16f32``,
    ``llvm.fabs.f64``, ``llvm.fshl.v16i32``); pass ``overloads`` when LLVM
    overloads on other types, e.g. ``overloads=[v8i1]`` for
    ``llvm.vector.reduce.or.v8i1`` or ``[f32, i32]`` for ``llvm.powi.f32.i32``.
    llvmlite's ``Module.declare_intrinsic`` does not know vector types, hence
    this helper."""
    suffix = ".".join(mangle(t) for t in (overloads if overloads is not None else [ret]))
    full = f"{name}.{suffix}"
    existing = module.globals.get(full)
    if existing is not None:
        return existing
    return ir.Function(module, ir.FunctionType(ret, list(args)), name=full)


# ----------------------------------------------------------------------------
# Emission context
# ----------------------------------------------------------------------------


class _Emitter:
    """Small typed layer over IRBuilder for one scalar or vector float type."""

    def __init__(self, builder: ir.IRBuilder, ty: ir.Type) -> None:
        elem = element_type(ty)
        if not isinstance(elem, ir.FloatType | ir.DoubleType):
            raise TypeError(f"math functions need float/double (vector) values, got {ty}")
        self.b = builder
        self.ty = ty
        self.f64 = isinstance(elem, ir.DoubleType)
        self.bits = 64 if self.f64 else 32
        self.mant = 52 if self.f64 else 23  # explicit mantissa bits
        self.bias = 1023 if self.f64 else 127
        ielem = ir.IntType(self.bits)
        self.ity: ir.Type = ir.VectorType(ielem, ty.count) if is_vector(ty) else ielem
        self.bty: ir.Type = (
            ir.VectorType(ir.IntType(1), ty.count) if is_vector(ty) else ir.IntType(1)
        )

    # constants
    def c(self, v: float) -> ir.Constant:
        return splat(v, self.ty)

    def ic(self, v: int) -> ir.Constant:
        return splat(v, self.ity)

    # float arithmetic (IEEE, no fast-math flags)
    def add(self, a: ir.Value, b: ir.Value) -> ir.Value:
        return self.b.fadd(a, b)

    def sub(self, a: ir.Value, b: ir.Value) -> ir.Value:
        return self.b.fsub(a, b)

    def mul(self, a: ir.Value, b: ir.Value) -> ir.Value:
        return self.b.fmul(a, b)

    def div(self, a: ir.Value, b: ir.Value) -> ir.Value:
        return self.b.fdiv(a, b)

    def neg(self, a: ir.Value) -> ir.Value:
        return self.b.fneg(a)

    def intr(self, name: str, *args: ir.Value) -> ir.Value:
        fn = declare_intrinsic(self.b.module, name, self.ty, [self.ty] * len(args))
        return self.b.call(fn, list(args))

    def fma(self, a: ir.Value, b: ir.Value, c: ir.Value) -> ir.Value:
        return self.intr("llvm.fma", a, b, c)

    def fabs(self, a: ir.Value) -> ir.Value:
        return self.intr("llvm.fabs", a)

    def copysign(self, mag: ir.Value, sgn: ir.Value) -> ir.Value:
        return self.intr("llvm.copysign", mag, sgn)

    def poly(self, x: ir.Value, coeffs: Sequence[float]) -> ir.Value:
        """Horner evaluation of sum(coeffs[k] * x**k) with FMAs."""
        acc: ir.Value = self.c(coeffs[-1])
        for k in range(len(coeffs) - 2, -1, -1):
            acc = self.fma(acc, x, self.c(coeffs[k]))
        return acc

    # comparisons / selection
    def cmp(self, op: str, a: ir.Value, b: ir.Value) -> ir.Value:
        """Ordered comparison: false if either side is NaN."""
        return self.b.fcmp_ordered(op, a, b)

    def ucmp(self, op: str, a: ir.Value, b: ir.Value) -> ir.Value:
        """Unordered comparison: true if either side is NaN."""
        return self.b.fcmp_unordered(op, a, b)

    def isnan(self, a: ir.Value) -> ir.Value:
        return self.b.fcmp_unordered("uno", a, a)

    def sel(self, cond: ir.Value, a: ir.Value, b: ir.Value) -> ir.Value:
        return self.b.select(cond, a, b)

    # bit-level access
    def to_int(self, a: ir.Value) -> ir.Value:
        return self.b.bitcast(a, self.ity)

    def to_float(self, a: ir.Value) -> ir.Value:
        return self.b.bitcast(a, self.ty)

    def pow2(self, n: ir.Value) -> ir.Value:
        """2**n for an integer n with a normal result (no range check)."""
        biased = self.b.add(n, self.ic(self.bias))
        return self.to_float(self.b.shl(biased, self.ic(self.mant)))

    def round_shift(self, x: ir.Value, scale: float) -> tuple[ir.Value, ir.Value]:
        """Round ``x * scale`` to the nearest integer (ties to even) by adding
        1.5*2**p in the same FMA.

        Returns the integer as a float and as an int. Valid for |x*scale| < 2**(p-1)
        (p = 23 or 52 mantissa bits); callers clamp or select first. Cheaper than
        rint + fptosi and never poison (fptosi of NaN or out-of-range is)."""
        shifter = self.c(1.5 * 2.0**self.mant)
        s = self.fma(x, self.c(scale), shifter)
        nf = self.sub(s, shifter)
        ni = self.b.sub(self.to_int(s), self.to_int(shifter))
        return nf, ni

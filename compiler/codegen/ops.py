"""Elementwise semantics in LLVM IR, identical for scalars and vectors of any width.

Each graph-level elementwise op gets NumPy's meaning here: NaN-propagating maximum and
minimum, floor division and modulo with the sign rules of ``numpy.divmod``, integer
division by zero giving 0 instead of trapping, saturating float-to-int casts, and so on.
Transcendental functions come from ``mathlib`` (vectorizable polynomial IR) where it has
them, and from libm one lane at a time otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence

from llvmlite import ir

from tensorjit.compiler.codegen.mathlib import MATH_FUNCTIONS, declare_intrinsic, emit_math, splat
from tensorjit.compiler.codegen.types import lanes_of, reg_type
from tensorjit.ir.dtypes import DType
from tensorjit.ir.errors import UnsupportedError

CONTRACT = ("contract",)
_FCMP = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "=="}
_LIBM = {"exp", "expm1", "log", "log1p", "log2", "sin", "cos", "tan", "tanh", "arctan",
         "erf", "pow"}
_LIBM_NAME = {"arctan": "atan"}


def _const(dtype: DType, value: float | int | bool, like: ir.Value) -> ir.Value:
    return splat(int(value) if dtype is DType.bool else value, reg_type(dtype, lanes_of(like)))


def intrinsic(b: ir.IRBuilder, name: str, args: Sequence[ir.Value]) -> ir.Value:
    fn = declare_intrinsic(b.module, name, args[0].type, [a.type for a in args])
    return b.call(fn, list(args))


def _libm(b: ir.IRBuilder, name: str, args: Sequence[ir.Value], dtype: DType) -> ir.Value:
    """Call libm lane by lane (not vectorizable; used for functions mathlib lacks)."""
    base = _LIBM_NAME.get(name, name)
    cname = base + ("f" if dtype is DType.float32 else "")
    scalar_t = reg_type(dtype)
    fn = b.module.globals.get(cname)
    if fn is None:
        fn = ir.Function(b.module, ir.FunctionType(scalar_t, [scalar_t] * len(args)), cname)
    n = lanes_of(args[0])
    if not n:
        return b.call(fn, list(args))
    out = ir.Constant(args[0].type, ir.Undefined)
    for lane in range(n):
        idx = ir.Constant(ir.IntType(32), lane)
        out = b.insert_element(out, b.call(fn, [b.extract_element(a, idx) for a in args]), idx)
    return out


def _isnan(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    return b.fcmp_unordered("uno", x, x)


def _float_max(b: ir.IRBuilder, x: ir.Value, y: ir.Value, is_max: bool) -> ir.Value:
    # NumPy: (x >= y || isnan(x)) ? x : y  (keeps NaN from either side; -0.0 vs 0.0 as NumPy)
    keep = b.fcmp_unordered(">=" if is_max else "<=", x, y)
    return b.select(keep, x, y)


def maximum(b: ir.IRBuilder, x: ir.Value, y: ir.Value, dtype: DType, is_max: bool) -> ir.Value:
    if dtype.is_float:
        return _float_max(b, x, y, is_max)
    if dtype is DType.bool:
        return b.or_(x, y) if is_max else b.and_(x, y)
    return b.select(b.icmp_signed(">" if is_max else "<", x, y), x, y)


def _int_divmod(b: ir.IRBuilder, x: ir.Value, y: ir.Value, dtype: DType,
                want_mod: bool) -> ir.Value:
    """Floor division / modulo on signed ints; y == 0 gives 0 (NumPy warns and gives 0)."""
    zero, one, minus = _const(dtype, 0, x), _const(dtype, 1, x), _const(dtype, -1, x)
    lowest = _const(dtype, -(1 << (reg_type(dtype).width - 1)), x)
    bad = b.or_(b.icmp_signed("==", y, zero),
                b.and_(b.icmp_signed("==", y, minus), b.icmp_signed("==", x, lowest)))
    safe = b.select(bad, one, y)  # never trap in sdiv/srem
    q = b.sdiv(x, safe)
    r = b.srem(x, safe)
    adjust = b.and_(b.icmp_signed("!=", r, zero),
                    b.icmp_signed("!=", b.icmp_signed("<", r, zero), b.icmp_signed("<", y, zero)))
    if want_mod:
        r = b.select(adjust, b.add(r, y), r)
        return b.select(b.icmp_signed("==", y, zero), zero, r)
    q = b.select(adjust, b.sub(q, one), q)
    # x // -1 for the lowest value wraps to itself, as NumPy.
    q = b.select(b.icmp_signed("==", y, minus), b.sub(zero, x), q)
    return b.select(b.icmp_signed("==", y, zero), zero, q)


def _float_divmod(b: ir.IRBuilder, x: ir.Value, y: ir.Value, dtype: DType,
                  want_mod: bool) -> ir.Value:
    """numpy.divmod for floats (npy_divmod): fmod, then sign and rounding fixes."""
    zero = _const(dtype, 0.0, x)
    mod = b.frem(x, y)
    div = b.fdiv(b.fsub(x, mod), y)
    nonzero = b.fcmp_ordered("!=", mod, zero)
    wrong_sign = b.icmp_unsigned("!=", b.fcmp_ordered("<", y, zero), b.fcmp_ordered("<", mod, zero))
    fix = b.and_(nonzero, wrong_sign)
    if want_mod:
        fixed = b.select(fix, b.fadd(mod, y), mod)
        signed_zero = intrinsic(b, "llvm.copysign", [zero, y])
        out = b.select(b.fcmp_unordered("==", mod, zero), signed_zero, fixed)
        # y == 0: fmod gives NaN already.
        return out
    div = b.select(fix, b.fsub(div, _const(dtype, 1.0, x)), div)
    floordiv = intrinsic(b, "llvm.floor", [div])
    floordiv = b.select(b.fcmp_ordered(">", b.fsub(div, floordiv), _const(dtype, 0.5, x)),
                        b.fadd(floordiv, _const(dtype, 1.0, x)), floordiv)
    zero_div = intrinsic(b, "llvm.copysign", [zero, b.fdiv(x, y)])
    out = b.select(b.fcmp_ordered("!=", div, zero), floordiv, zero_div)
    # y == 0: NumPy returns x / y (inf or nan).
    return b.select(b.fcmp_ordered("==", y, zero), b.fdiv(x, y), out)


def _int_pow(b: ir.IRBuilder, x: ir.Value, y: ir.Value, dtype: DType) -> ir.Value:
    """Branch-free exponentiation by squaring; negative exponents as in the reference."""
    width = reg_type(dtype).width
    zero, one = _const(dtype, 0, x), _const(dtype, 1, x)
    result, base, e = one, x, y
    for _ in range(width - 1):
        bit = b.icmp_signed("!=", b.and_(e, one), zero)
        result = b.select(bit, b.mul(result, base), result)
        base = b.mul(base, base)
        e = b.ashr(e, one)
    neg = b.icmp_signed("<", y, zero)
    is_one = b.icmp_signed("==", x, one)
    is_minus = b.icmp_signed("==", x, _const(dtype, -1, x))
    odd = b.icmp_signed("!=", b.and_(y, one), zero)
    inverse = b.select(is_one, one, b.select(is_minus, b.select(odd, _const(dtype, -1, x), one),
                                             zero))
    return b.select(neg, inverse, result)


def _sigmoid_fallback(b: ir.IRBuilder, x: ir.Value, dtype: DType) -> ir.Value:
    one = _const(dtype, 1.0, x)
    e = _libm(b, "exp", [b.fneg(intrinsic(b, "llvm.fabs", [x]))], dtype)
    pos = b.fdiv(one, b.fadd(one, e))
    return b.select(b.fcmp_ordered(">=", x, _const(dtype, 0.0, x)), pos, b.fsub(one, pos))


def emit_op(b: ir.IRBuilder, op: str, args: Sequence[ir.Value], in_dtype: DType,
            out_dtype: DType, flags: tuple[str, ...] = CONTRACT) -> ir.Value:
    """The value of elementwise ``op`` on operands of ``in_dtype``; ``flags`` are the
    fast-math flags of float arithmetic (``contract`` only, unless fast_math)."""
    x = args[0]
    y = args[1] if len(args) > 1 else None
    f = in_dtype.is_float
    if op == "add":
        return b.fadd(x, y, flags=flags) if f else b.add(x, y)
    if op == "sub":
        return b.fsub(x, y, flags=flags) if f else b.sub(x, y)
    if op == "mul":
        return b.fmul(x, y, flags=flags) if f else b.mul(x, y)
    if op == "div":
        return b.fdiv(x, y, flags=flags)
    if op in ("floordiv", "mod"):
        fn = _float_divmod if f else _int_divmod
        return fn(b, x, y, in_dtype, op == "mod")
    if op == "pow":
        return _libm(b, "pow", [x, y], in_dtype) if f else _int_pow(b, x, y, in_dtype)
    if op in ("maximum", "minimum"):
        return maximum(b, x, y, in_dtype, op == "maximum")
    if op in ("lt", "le", "gt", "ge", "eq", "ne"):
        if f:
            return b.fcmp_unordered("!=", x, y) if op == "ne" else b.fcmp_ordered(_FCMP[op], x, y)
        sym = "!=" if op == "ne" else _FCMP[op]
        if in_dtype is DType.bool:
            return b.icmp_unsigned(sym, x, y)
        return b.icmp_signed(sym, x, y)
    if op in ("logical_and", "bitwise_and"):
        return b.and_(x, y)
    if op in ("logical_or", "bitwise_or"):
        return b.or_(x, y)
    if op == "bitwise_xor":
        return b.xor(x, y)
    if op in ("logical_not", "invert"):
        return b.xor(x, _const(in_dtype, -1 if in_dtype.is_int else 1, x))
    if op == "select":
        return b.select(x, y, args[2])
    if op == "neg":
        return b.fneg(x) if f else b.sub(_const(in_dtype, 0, x), x)
    if op == "abs":
        if f:
            return intrinsic(b, "llvm.fabs", [x])
        return b.select(b.icmp_signed("<", x, _const(in_dtype, 0, x)),
                        b.sub(_const(in_dtype, 0, x), x), x)
    if op == "sign":
        zero = _const(in_dtype, 0, x)
        one, minus = _const(in_dtype, 1, x), _const(in_dtype, -1, x)
        if f:
            return b.select(b.fcmp_ordered(">", x, zero), one,
                            b.select(b.fcmp_ordered("<", x, zero), minus, x))
        return b.select(b.icmp_signed(">", x, zero), one,
                        b.select(b.icmp_signed("<", x, zero), minus, zero))
    if op in ("floor", "ceil", "sqrt"):
        return intrinsic(b, f"llvm.{op}", [x])
    if op == "isnan":
        return _isnan(b, x) if f else splat(0, reg_type(DType.bool, lanes_of(x)))
    if op == "isfinite":
        if not f:
            return splat(1, reg_type(DType.bool, lanes_of(x)))
        return b.fcmp_ordered("!=", intrinsic(b, "llvm.fabs", [x]),
                              _const(in_dtype, float("inf"), x))
    if op in ("idiv", "imod"):
        return b.sdiv(x, y) if op == "idiv" else b.srem(x, y)
    if op in ("imin", "imax"):
        return b.select(b.icmp_signed("<" if op == "imin" else ">", x, y), x, y)
    if op in MATH_FUNCTIONS and f:
        return emit_math(b, op, x)
    if op == "sigmoid":
        return _sigmoid_fallback(b, x, in_dtype)
    if op in _LIBM and f:
        return _libm(b, op, args, in_dtype)
    raise UnsupportedError(f"code generation for elementwise op {op!r} on {in_dtype}")


def emit_cast(b: ir.IRBuilder, x: ir.Value, src: DType, dst: DType) -> ir.Value:
    if src is dst:
        return x
    lanes = lanes_of(x)
    to = reg_type(dst, lanes)
    if dst is DType.bool:
        zero = splat(0, x.type)
        return b.fcmp_unordered("!=", x, zero) if src.is_float else b.icmp_unsigned("!=", x, zero)
    if src is DType.bool:
        return b.uitofp(x, to) if dst.is_float else b.zext(x, to)
    if src.is_float and dst.is_float:
        return b.fpext(x, to) if dst.itemsize > src.itemsize else b.fptrunc(x, to)
    if src.is_float:
        # Saturating: NaN -> 0 and out-of-range values clamp, where plain fptosi is poison.
        name = f"llvm.fptosi.sat.{_suffix(to)}.{_suffix(x.type)}"
        fn = b.module.globals.get(name) or ir.Function(b.module, ir.FunctionType(to, [x.type]),
                                                       name)
        return b.call(fn, [x])
    if dst.is_float:
        return b.sitofp(x, to)
    return b.sext(x, to) if dst.itemsize > src.itemsize else b.trunc(x, to)


def _suffix(t: ir.Type) -> str:
    if isinstance(t, ir.VectorType):
        return f"v{t.count}{_suffix(t.element)}"
    if isinstance(t, ir.FloatType):
        return "f32"
    if isinstance(t, ir.DoubleType):
        return "f64"
    return f"i{t.width}"



"""Elementwise semantics in LLVM IR, identical for scalars and vectors of any width.

Each graph-level elementwise op gets NumPy's meaning here: NaN-propagating maximum and
minimum, floor division and modulo with the sign rules of ``numpy.divmod``, integer
division by zero giving 0 instead of trapping, saturating float-to-int casts, and so on.
Transcendental functions come from ``mathlib`` (vectorizable polynomial IR) where it has
them, and from libm one lane at a time otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from llvmlite import ir

from tensorjit.compiler.codegen.mathlib import (
    MATH_FUNCTIONS,
    TRIG_MAX_ARG_F64,
    declare_intrinsic,
    emit_math,
    mangle,
    splat,
)
from tensorjit.compiler.codegen.types import I1, lanes_of, reg_type
from tensorjit.ir.dtypes import DType
from tensorjit.ir.errors import UnsupportedError

CONTRACT = ("contract",)
_FCMP = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "=="}
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


def _float_max(b: ir.IRBuilder, x: ir.Value, y: ir.Value, is_max: bool) -> ir.Value:
    # NumPy: (x >= y || isnan(x)) ? x : y  (keeps NaN from either side; -0.0 vs 0.0 as NumPy)
    keep = b.or_(b.fcmp_ordered(">=" if is_max else "<=", x, y), b.fcmp_unordered("uno", x, x))
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
        # NaN (from NaN or Inf operands, or y == 0) stays NaN.
        return b.select(b.fcmp_ordered("==", mod, zero), signed_zero, fixed)
    div = b.select(fix, b.fsub(div, _const(dtype, 1.0, x)), div)
    floordiv = intrinsic(b, "llvm.floor", [div])
    floordiv = b.select(b.fcmp_ordered(">", b.fsub(div, floordiv), _const(dtype, 0.5, x)),
                        b.fadd(floordiv, _const(dtype, 1.0, x)), floordiv)
    zero_div = intrinsic(b, "llvm.copysign", [zero, b.fdiv(x, y)])
    out = b.select(b.fcmp_unordered("!=", div, zero), floordiv, zero_div)  # NaN -> floor(NaN)
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


Emitter = Callable[[ir.IRBuilder, Sequence[ir.Value], DType, tuple[str, ...]], ir.Value]


def _arith(float_op: str, int_op: str) -> Emitter:
    def emit(b: ir.IRBuilder, a: Sequence[ir.Value], dt: DType, flags: tuple[str, ...]) -> ir.Value:
        if dt.is_float:
            return getattr(b, float_op)(a[0], a[1], flags=flags)
        return getattr(b, int_op)(a[0], a[1])

    return emit


def _compare(op: str) -> Emitter:
    sym = "!=" if op == "ne" else _FCMP[op]

    def emit(b: ir.IRBuilder, a: Sequence[ir.Value], dt: DType, flags: tuple[str, ...]) -> ir.Value:
        if dt.is_float:  # ordered, except != which is true for NaN (IEEE, NumPy)
            return b.fcmp_unordered(sym, a[0], a[1]) if op == "ne" else \
                b.fcmp_ordered(sym, a[0], a[1])
        if dt is DType.bool:
            return b.icmp_unsigned(sym, a[0], a[1])
        return b.icmp_signed(sym, a[0], a[1])

    return emit


def _trig_huge_fallback(b: ir.IRBuilder, name: str, x: ir.Value, fast: ir.Value) -> ir.Value:
    """Lanes with |x| beyond mathlib's float64 range take libm's exact reduction, on a
    branch that only runs when some lane needs it (huge arguments are rare)."""
    huge = b.fcmp_ordered(">", intrinsic(b, "llvm.fabs", [x]),
                          _const(DType.float64, TRIG_MAX_ARG_F64, x))
    n = lanes_of(x)
    any_huge = huge
    if n:
        name_or = f"llvm.vector.reduce.or.v{n}i1"
        reduce_or = b.module.globals.get(name_or) or ir.Function(
            b.module, ir.FunctionType(I1, [huge.type]), name_or)
        any_huge = b.call(reduce_or, [huge])
    before = b.block
    with b.if_then(any_huge, likely=False):
        slow = b.select(huge, _libm(b, name, [x], DType.float64), fast)
        then = b.block
    merged = b.phi(fast.type)
    merged.add_incoming(fast, before)
    merged.add_incoming(slow, then)
    return merged


def _math_body(b: ir.IRBuilder, name: str, x: ir.Value, dt: DType) -> ir.Value:
    fast = emit_math(b, name, x)
    if name in ("sin", "cos", "tan") and dt is DType.float64:
        return _trig_huge_fallback(b, name, x, fast)
    return fast


def math_call(b: ir.IRBuilder, name: str, x: ir.Value, dt: DType,
              outline: bool = False) -> ir.Value:
    """``name(x)`` for a function of ``MATH_FUNCTIONS``. Vector math is emitted inline
    unless ``outline`` (it sits in hot loops, and a call would spill every live vector
    register). Scalar math calls one internal function per function and type in the
    module: scalar-style code (a chain of joints) makes hundreds of scalar calls, and
    inlining each polynomial body made LLVM's time grow with their number."""
    if lanes_of(x) and not outline:
        return _math_body(b, name, x, dt)
    fname = f"tj.math.{name}.{mangle(x.type)}"
    fn = b.module.globals.get(fname)
    if fn is None:
        fn = ir.Function(b.module, ir.FunctionType(x.type, [x.type]), fname)
        fn.linkage = "internal"
        fn.attributes.add("nounwind")
        fn.attributes.add("noinline")
        body = ir.IRBuilder(fn.append_basic_block("entry"))
        body.ret(_math_body(body, name, fn.args[0], dt))
    return b.call(fn, [x])


def _transcendental(name: str) -> Emitter:
    def emit(b: ir.IRBuilder, a: Sequence[ir.Value], dt: DType, flags: tuple[str, ...]) -> ir.Value:
        if name in MATH_FUNCTIONS:
            return math_call(b, name, a[0], dt)
        if name == "sigmoid":
            return _sigmoid_fallback(b, a[0], dt)
        return _libm(b, name, a, dt)

    return emit


def _abs(b: ir.IRBuilder, a: Sequence[ir.Value], dt: DType, flags: tuple[str, ...]) -> ir.Value:
    x = a[0]
    if dt.is_float:
        return intrinsic(b, "llvm.fabs", [x])
    zero = _const(dt, 0, x)
    return b.select(b.icmp_signed("<", x, zero), b.sub(zero, x), x)


def _sign(b: ir.IRBuilder, a: Sequence[ir.Value], dt: DType, flags: tuple[str, ...]) -> ir.Value:
    x = a[0]
    zero, one, minus = _const(dt, 0, x), _const(dt, 1, x), _const(dt, -1, x)
    if dt.is_float:  # NaN passes through; -0.0 gives 0.0, as in NumPy
        rest = b.select(b.fcmp_ordered("==", x, zero), zero, x)
        return b.select(b.fcmp_ordered(">", x, zero), one,
                        b.select(b.fcmp_ordered("<", x, zero), minus, rest))
    return b.select(b.icmp_signed(">", x, zero), one,
                    b.select(b.icmp_signed("<", x, zero), minus, zero))


def _isnan(b: ir.IRBuilder, a: Sequence[ir.Value], dt: DType, flags: tuple[str, ...]) -> ir.Value:
    if dt.is_float:
        return b.fcmp_unordered("uno", a[0], a[0])
    return splat(0, reg_type(DType.bool, lanes_of(a[0])))


def _isfinite(b: ir.IRBuilder, a: Sequence[ir.Value], dt: DType,
              flags: tuple[str, ...]) -> ir.Value:
    if not dt.is_float:
        return splat(1, reg_type(DType.bool, lanes_of(a[0])))
    return b.fcmp_ordered("!=", intrinsic(b, "llvm.fabs", [a[0]]), _const(dt, float("inf"), a[0]))


def _not(b: ir.IRBuilder, a: Sequence[ir.Value], dt: DType, flags: tuple[str, ...]) -> ir.Value:
    return b.xor(a[0], _const(dt, -1 if dt.is_int else 1, a[0]))


def _pow(b: ir.IRBuilder, a: Sequence[ir.Value], dt: DType, flags: tuple[str, ...]) -> ir.Value:
    return _libm(b, "pow", a, dt) if dt.is_float else _int_pow(b, a[0], a[1], dt)


def _divmod(want_mod: bool) -> Emitter:
    def emit(b: ir.IRBuilder, a: Sequence[ir.Value], dt: DType, flags: tuple[str, ...]) -> ir.Value:
        fn = _float_divmod if dt.is_float else _int_divmod
        return fn(b, a[0], a[1], dt, want_mod)

    return emit


def _intrinsic(name: str) -> Emitter:
    return lambda b, a, dt, flags: intrinsic(b, name, [a[0]])


#: Code generation of every elementwise graph op (and the index ops of the loop IR).
ELEMENTWISE: dict[str, Emitter] = {
    "add": _arith("fadd", "add"),
    "sub": _arith("fsub", "sub"),
    "mul": _arith("fmul", "mul"),
    "div": lambda b, a, dt, flags: b.fdiv(a[0], a[1], flags=flags),
    "floordiv": _divmod(False),
    "mod": _divmod(True),
    "pow": _pow,
    "maximum": lambda b, a, dt, flags: maximum(b, a[0], a[1], dt, True),
    "minimum": lambda b, a, dt, flags: maximum(b, a[0], a[1], dt, False),
    **{op: _compare(op) for op in ("lt", "le", "gt", "ge", "eq", "ne")},
    "logical_and": lambda b, a, dt, flags: b.and_(a[0], a[1]),
    "bitwise_and": lambda b, a, dt, flags: b.and_(a[0], a[1]),
    "logical_or": lambda b, a, dt, flags: b.or_(a[0], a[1]),
    "bitwise_or": lambda b, a, dt, flags: b.or_(a[0], a[1]),
    "bitwise_xor": lambda b, a, dt, flags: b.xor(a[0], a[1]),
    "logical_not": _not,
    "invert": _not,
    "select": lambda b, a, dt, flags: b.select(a[0], a[1], a[2]),
    "neg": lambda b, a, dt, flags: b.fneg(a[0]) if dt.is_float else
    b.sub(_const(dt, 0, a[0]), a[0]),
    "abs": _abs,
    "sign": _sign,
    "floor": _intrinsic("llvm.floor"),
    "ceil": _intrinsic("llvm.ceil"),
    "sqrt": _intrinsic("llvm.sqrt"),
    "isnan": _isnan,
    "isfinite": _isfinite,
    **{name: _transcendental(name) for name in (
        "exp", "expm1", "log", "log1p", "log2", "sin", "cos", "tan", "tanh", "arctan",
        "sigmoid", "erf")},
    # index arithmetic of the loop IR (non-negative operands, nonzero divisors)
    "idiv": lambda b, a, dt, flags: b.sdiv(a[0], a[1]),
    "imod": lambda b, a, dt, flags: b.srem(a[0], a[1]),
    "imin": lambda b, a, dt, flags: b.select(b.icmp_signed("<", a[0], a[1]), a[0], a[1]),
    "imax": lambda b, a, dt, flags: b.select(b.icmp_signed(">", a[0], a[1]), a[0], a[1]),
}


def emit_op(b: ir.IRBuilder, op: str, args: Sequence[ir.Value], in_dtype: DType,
            out_dtype: DType, flags: tuple[str, ...] = CONTRACT) -> ir.Value:
    """The value of elementwise ``op`` on operands of ``in_dtype``; ``flags`` are the
    fast-math flags of float arithmetic (``contract`` only, unless fast_math)."""
    try:
        emit = ELEMENTWISE[op]
    except KeyError:
        raise UnsupportedError(f"code generation for elementwise op {op!r}") from None
    return emit(b, args, in_dtype, flags)


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
        name = f"llvm.fptosi.sat.{mangle(to)}.{mangle(x.type)}"
        fn = b.module.globals.get(name) or ir.Function(b.module, ir.FunctionType(to, [x.type]),
                                                       name)
        return b.call(fn, [x])
    if dst.is_float:
        return b.sitofp(x, to)
    return b.sext(x, to) if dst.itemsize > src.itemsize else b.trunc(x, to)



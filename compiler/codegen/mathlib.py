"""Vectorizable math functions written as straight-line LLVM IR.

LLVM cannot vectorize calls into libm, so tensorjit emits its transcendental
functions itself: range reduction, a polynomial, reconstruction, and ``select``
for the special cases. Everything here is branch-free, loop-free and call-free
(apart from vectorizable LLVM intrinsics such as ``llvm.fma``), so the same code
works for a scalar ``float``/``double`` and for any ``<n x float>``/``<n x double>``.

Only IEEE-exact operations are emitted: no fast-math flags, so NaN, infinities,
signed zeros and denormals behave like NumPy. Polynomials are evaluated with
explicit ``llvm.fma`` so that results do not depend on contraction decisions.

Polynomial coefficients are minimax fits computed by a Remez exchange in 60-digit
arithmetic (mpmath) on the stated interval with relative weighting (absolute for
log(erfc)), then rounded to the working precision.

Measured maximum errors, in ULP of the exact result (fractions: 0.5 would be
correctly rounded). float32: all 2^32 inputs of every function, against NumPy's
(SciPy's for erf) float64 result. float64: ~4e6 sampled inputs per function, the 3000
worst against NumPy re-checked with mpmath. The tests assert <= 4 ULP
(float32, integer distance to the correctly rounded value) and <= 4 ULP to
NumPy (float64), i.e. far inside the 1e-13 relative budget::

    function  float32  float64   notes
    exp       0.91     0.82      overflow -> inf; denormal results rounded once
    log       0.94     1.13      0 -> -inf, x < 0 -> NaN
    tanh      1.04     1.33      +-inf -> +-1, sign of zero kept
    sigmoid   2.4      2.1       1/(1+exp(-x)), no overflow, denormal tails kept
    erf       2.0      1.0
    sin, cos  2.17     2.10      float32: every finite x; float64: |x| <= 2^50
    tan       2.91     2.26      same ranges as sin; worst next to the poles
    expm1     1.45     1.78
    log1p     1.44     1.58
    log2      1.54     1.61      exact for powers of two
    arctan    1.88     1.77

sin/cos/tan argument reduction: Cody-Waite (pi/2 in four parts, FMA) for
moderate arguments; float32 lanes with |x| >= 2^16 use a table-free Payne-Hanek
reduction (96 bits of 2/pi picked by selects, 32x32->64 integer products), so
float32 is accurate for every finite argument, including the worst cases next
to multiples of pi/2. float64 is reduced by Cody-Waite only and is accurate up
to |x| <= 2^50 (``TRIG_MAX_ARG_F64``); beyond that the result is NaN rather than
a wrong number, and callers that need NumPy's value there must handle those
lanes themselves (the code generator branches to libm for them).

Cost (AMD Zen 4, in-cache loop over float32 x16 / float64 x8, ns per element):
exp 0.32 / 0.76, log 0.41 / 0.98, tanh 0.53 / 1.44, sigmoid 0.41 / 0.98,
erf 0.73 / 2.7, sin 1.05 / 0.72, cos 1.03 / 0.76, tan 1.14 / 1.31,
expm1 0.42 / 0.93, log1p 0.50 / 1.19, log2 0.43 / 1.02, arctan 0.36 / 0.99.
About 0.7 ns of float32 sin/cos/tan is the full-range reduction (Cody-Waite
alone: ~0.3 ns). NumPy 2.4 on the same machine: exp 0.50 / 0.87, log 0.42 / 0.85,
tanh 0.41 / 1.75, sin 0.57 / 9.0.

The type helpers and the emission layer live in ``mathlib_emitter.py``, sin/cos/tan in
``mathlib_trig.py``; this module holds the exp/log family, tanh, sigmoid, erf, arctan and
the dispatch table.

Public interface::

    MATH_FUNCTIONS                      # names emit_math understands
    emit_math(builder, name, x, y=None) # value of the same type as x
    splat(value, ty), is_vector(ty), element_type(ty)   # scalar/vector-agnostic helpers
    declare_intrinsic(module, name, ret, args, overloads=None)
    TRIG_MAX_ARG_F64                    # float64 sin/cos/tan are NaN beyond this
"""

from __future__ import annotations

import math
from collections.abc import Callable

from llvmlite import ir

from tensorjit.compiler.codegen.mathlib_emitter import (
    _Emitter,
    declare_intrinsic,
    element_type,
    is_vector,
    mangle,
    splat,
)
from tensorjit.compiler.codegen.mathlib_trig import TRIG_MAX_ARG_F64, _cos, _sin, _tan

__all__ = [
    "MATH_FUNCTIONS",
    "TRIG_MAX_ARG_F64",
    "declare_intrinsic",
    "element_type",
    "emit_math",
    "is_vector",
    "mangle",
    "splat",
]

# ----------------------------------------------------------------------------
# exp
# ----------------------------------------------------------------------------

# ln2 = HI + LO to twice the working precision (FMA makes x - n*HI exact).
_LN2_F32 = (float.fromhex("0x1.62e430p-1"), float.fromhex("-0x1.05c610p-29"))
_LN2_F64 = (float.fromhex("0x1.62e42fefa39efp-1"), float.fromhex("0x1.abc9e3b39803fp-56"))
_LOG2E = float.fromhex("0x1.71547652b82fep+0")

# exp(r) on |r| <= ln2/2 as a polynomial in r (coefficients of 1, r, r^2, ...):
# 1 + r + r^2 * P(r) with P minimax for the relative error of exp.
# float32: degree 6, fit error 3.1e-9; float64: degree 11, fit error 3.6e-18.
_EXP_F32 = (
    1.0,
    1.0,
    0.4999999403953552,
    0.1666652113199234,
    0.04166838899254799,
    0.008368710055947304,
    0.0013814611593261361,
)
_EXP_F64 = (
    1.0,
    1.0,
    0.5000000000000011,
    0.16666666666666413,
    0.041666666666530267,
    0.008333333333494345,
    0.0013888888943597941,
    0.00019841269506757083,
    2.4801493135887145e-05,
    2.7557586283760337e-06,
    2.7630234038621613e-07,
    2.5000067516183563e-08,
)

# Clamp bounds for exp's argument: beyond them the result is inf / 0 anyway.
_EXP_HI = {False: 89.0, True: 710.0}
_EXP_LO = {False: -110.0, True: -746.0}


def _exp_reduce(m: _Emitter, x: ir.Value) -> tuple[ir.Value, ir.Value, ir.Value]:
    """Cody-Waite reduction x = n*ln2 + r, |r| <= ln2/2 (x already clamped, not NaN).

    Returns (r, n as float, n as int)."""
    hi, lo = _LN2_F64 if m.f64 else _LN2_F32
    nf, ni = m.round_shift(x, _LOG2E)
    r = m.fma(nf, m.c(-hi), x)  # exact: |r| < 1 and both terms are multiples of ulp(hi)
    r = m.fma(nf, m.c(-lo), r)
    return r, nf, ni


def _scale(m: _Emitter, p: ir.Value, n: ir.Value) -> ir.Value:
    """p * 2**n for |n| up to ~2*(bias+mant), rounding once (so denormal results are
    correctly rounded from p) and overflowing to inf: two factors 2**(n//2) and
    2**(n - n//2) are both normal; the first product is exact."""
    n1 = m.b.ashr(n, m.ic(1))
    n2 = m.b.sub(n, n1)
    return m.mul(m.mul(p, m.pow2(n1)), m.pow2(n2))


def _clamp(m: _Emitter, x: ir.Value, lo: float, hi: float) -> ir.Value:
    """Clamp to [lo, hi]; NaN becomes hi (callers patch NaN lanes afterwards)."""
    x = m.sel(m.cmp("<", x, m.c(hi)), x, m.c(hi))
    return m.sel(m.cmp(">", x, m.c(lo)), x, m.c(lo))


def _exp_nonan(m: _Emitter, x: ir.Value) -> ir.Value:
    """exp(x) for non-NaN x (NaN gives inf)."""
    xc = _clamp(m, x, _EXP_LO[m.f64], _EXP_HI[m.f64])
    r, _, n = _exp_reduce(m, xc)
    p = m.poly(r, _EXP_F64 if m.f64 else _EXP_F32)
    return _scale(m, p, n)


def _exp(m: _Emitter, x: ir.Value) -> ir.Value:
    """exp(x); overflow gives inf, underflow gradual (denormals) then 0.
    Max error: float32 0.91 ULP, float64 0.82 ULP."""
    return m.sel(m.isnan(x), x, _exp_nonan(m, x))


# ----------------------------------------------------------------------------
# log
# ----------------------------------------------------------------------------

# log1p(f) on f in [sqrt(1/2)-1, sqrt(2)-1]: f - f^2/2 + f^3 * P(f), minimax
# relative, degree 10, fit error 5.8e-9.
_LOG_F32 = (
    0.3333333134651184,
    -0.2500081956386566,
    0.20001226663589478,
    -0.16623356938362122,
    0.14201758801937103,
    -0.13160185515880585,
    0.1276157647371292,
    -0.07634487003087997,
)
# float64: with s = f/(2+f), z = s^2 <= 0.0295, log1p(f) = 2*atanh(s) =
# 2s + s*z*R(z); R minimax relative, 7 terms, fit error 1.2e-18.
_LOG_F64 = (
    0.6666666666666734,
    0.3999999999941636,
    0.285714287420185,
    0.22222198610467953,
    0.1818356242209614,
    0.15314098384949199,
    0.14795479847924728,
)


def _log_parts(m: _Emitter, x: ir.Value) -> tuple[ir.Value, ir.Value]:
    """Split finite positive x (denormals included) into x = 2**e * (1 + f) with
    1 + f in [sqrt(1/2), sqrt(2)). Returns (f, e as float)."""
    tiny = m.cmp("<", x, m.c(2.0 ** (1 - m.bias)))
    xs = m.sel(tiny, m.mul(x, m.c(2.0**m.mant)), x)  # normalize denormals exactly
    eadj = m.sel(tiny, m.ic(-m.mant), m.ic(0))
    sqrt_half = m.ic(0x3FE6A09E667F3BCD if m.f64 else 0x3F3504F3)  # bits of sqrt(0.5)
    ix = m.b.sub(m.to_int(xs), sqrt_half)
    e = m.b.add(m.b.ashr(ix, m.ic(m.mant)), eadj)
    mbits = m.b.add(m.b.and_(ix, m.ic((1 << m.mant) - 1)), sqrt_half)
    f = m.sub(m.to_float(mbits), m.c(1.0))  # exact (Sterbenz)
    return f, m.b.sitofp(e, m.ty)


def _log1p_reduced(m: _Emitter, f: ir.Value) -> ir.Value:
    """log1p(f) for f in [sqrt(1/2)-1, sqrt(2)-1]."""
    if not m.f64:
        q = m.poly(f, (-0.5,) + _LOG_F32)
        return m.fma(m.mul(f, f), q, f)
    # fdlibm-style: log1p(f) = f - hfsq + s*(hfsq + z*R(z)), hfsq = f^2/2; the
    # rounding error of s only touches the small correction term.
    s = m.div(f, m.add(f, m.c(2.0)))
    z = m.mul(s, s)
    hfsq = m.mul(m.mul(f, f), m.c(0.5))
    corr = m.mul(s, m.fma(z, m.poly(z, _LOG_F64), hfsq))
    return m.add(m.sub(corr, hfsq), f)


def _log_special(m: _Emitter, x: ir.Value, res: ir.Value) -> ir.Value:
    """Patch log-like results: x<0 or NaN -> NaN, 0 -> -inf, +inf -> +inf."""
    res = m.sel(m.cmp("==", x, m.c(0.0)), m.c(-math.inf), res)
    res = m.sel(m.cmp("==", x, m.c(math.inf)), x, res)
    return m.sel(m.ucmp("<", x, m.c(0.0)), m.c(math.nan), res)


def _log(m: _Emitter, x: ir.Value) -> ir.Value:
    """log(x); log(0) = -inf, log(x<0) = NaN, denormals normalized exactly.
    Max error: float32 0.94 ULP, float64 1.13 ULP."""
    f, e = _log_parts(m, x)
    y = _log1p_reduced(m, f)
    hi, lo = _LN2_F64 if m.f64 else _LN2_F32
    y = m.fma(e, m.c(lo), y)
    return _log_special(m, x, m.fma(e, m.c(hi), y))


# ----------------------------------------------------------------------------
# sigmoid, tanh
# ----------------------------------------------------------------------------


def _sigmoid(m: _Emitter, x: ir.Value) -> ir.Value:
    """1 / (1 + exp(-x)), stable for both signs: with e = exp(-|x|) <= 1 it is
    1/(1+e) for x >= 0 and e/(1+e) for x < 0, so nothing overflows and tiny
    results (down to denormals) keep full relative accuracy.
    Max error: float32 2.4 ULP, float64 2.1 ULP."""
    e = _exp_nonan(m, m.neg(m.fabs(x)))
    num = m.sel(m.cmp("<", x, m.c(0.0)), e, m.c(1.0))
    res = m.div(num, m.add(e, m.c(1.0)))
    return m.sel(m.isnan(x), x, res)


# tanh(x) = x + x^3 * P(x^2) for |x| < _TANH_CUT, minimax relative.
# float32: |x| < 0.8, 6 terms, fit error 3.7e-9; float64: |x| < 0.625, 11 terms, 1.0e-17.
_TANH_CUT = {False: 0.8, True: 0.625}
_TANH_F32 = (
    -0.33333298563957214,
    0.13332220911979675,
    -0.05385233089327812,
    0.02130298875272274,
    -0.007409555371850729,
    0.0015847550239413977,
)
_TANH_F64 = (
    -0.33333333333332854,
    0.13333333333262093,
    -0.053968253931268036,
    0.021869487576098436,
    -0.00886322100264764,
    0.003591989173751717,
    -0.0014549588768491154,
    0.000586316534488463,
    -0.00022856419588646067,
    7.714434628467317e-05,
    -1.60725585689023e-05,
)


def _tanh(m: _Emitter, x: ir.Value) -> ir.Value:
    """tanh(x): odd polynomial near 0; 1 - 2/(exp(2|x|) + 1) elsewhere (there
    2/(e+1) <= 0.34 (f32) / 0.45 (f64), so its rounding errors are damped),
    with the sign of x. exp overflow gives exactly +-1.
    Max error: float32 1.04 ULP, float64 1.33 ULP."""
    a = m.fabs(x)
    z = m.mul(a, a)
    # on |x| so that -0 keeps its sign through copysign below
    small = m.fma(m.mul(a, z), m.poly(z, _TANH_F64 if m.f64 else _TANH_F32), a)
    e = _exp_nonan(m, m.add(a, a))
    big = m.sub(m.c(1.0), m.div(m.c(2.0), m.add(e, m.c(1.0))))
    # unordered: NaN takes the polynomial path and stays NaN
    use_small = m.ucmp("<", a, m.c(_TANH_CUT[m.f64]))
    return m.copysign(m.sel(use_small, small, big), x)


# ----------------------------------------------------------------------------
# erf
# ----------------------------------------------------------------------------

# erf(x) = x + x * P(x^2) for |x| < 1, minimax relative (P(0) = 2/sqrt(pi) - 1:
# keeping the leading 1 exact avoids rounding 2/sqrt(pi) to working precision).
# float32: 7 terms, fit error 1.2e-9; float64: 13 terms, 1.3e-19.
_ERF_F32 = (
    0.12837916612625122,
    -0.3761262595653534,
    0.1128358542919159,
    -0.026853810995817184,
    0.005188327748328447,
    -0.0008010192541405559,
    7.853857823647559e-05,
)
_ERF_F64 = (
    0.1283791670955126,
    -0.3761263890318375,
    0.11283791670954857,
    -0.026866170645072893,
    0.005223977624780855,
    -0.0008548326978741372,
    0.00012055331036865464,
    -1.4925593506013821e-05,
    1.6460972802454308e-06,
    -1.6350025065570372e-07,
    1.4657878781418371e-08,
    -1.1365661881463798e-09,
    5.945254923851086e-11,
)
# For |x| >= 1: erf(x) = 1 - exp(Q(|x|)) with Q ~ log(erfc) (smooth, no
# Gaussian factor to split off), minimax for absolute error in t = |x| - mid.
# float32: one piece on [1, 4] (erf rounds to 1 beyond 3.92), mid 2.5, 9 terms,
# fit error 1.2e-8.
_ERFC_F32 = (
    -7.806815147399902,
    -5.352680683135986,
    -0.9438936114311218,
    -0.010858487337827682,
    0.0021650814451277256,
    -0.00042017310624942183,
    7.745493348920718e-05,
    -1.3301710168889258e-05,
    1.5998157323338091e-06,
)
# float64: pieces [1,2] (mid 1.5), [2,3.5] (mid 2.75), [3.5,6] (mid 4.75), 13
# terms each; fit errors 6.6e-17, 2.6e-15, 1.1e-14, i.e. <= 1.2e-17 absolute in erf.
# The lanes pick their piece's coefficients with selects (one polynomial).
_ERFC_F64 = (
    (
        1.5,
        (
            -3.3844920895515527,
            -3.5088008017795262,
            -0.8926403306150498,
            -0.02582414063380302,
            0.0060067463871852685,
            -0.0012572166817870476,
            0.00021596328894969333,
            -2.2473755858206947e-05,
            -2.646668429706986e-06,
            2.3712741750133345e-06,
            -8.196551685657285e-07,
            1.9132935382144958e-07,
            -2.5492090449274037e-08,
        ),
    ),
    (
        2.75,
        (
            -9.204140410324296,
            -5.826535955025074,
            -0.9512867412808234,
            -0.008933257048934521,
            0.0017050157898318254,
            -0.0003206593551458721,
            5.759298804485198e-05,
            -9.580560029579996e-06,
            1.4048634332048292e-06,
            -1.6048558371534634e-07,
            6.315622301770481e-09,
            4.475421955412707e-09,
            -1.7378456087575595e-09,
        ),
    ),
    (
        4.75,
        (
            -24.714058941910324,
            -9.702088576972347,
            -0.9803406370905714,
            -0.002459587996478596,
            0.0003342419808916903,
            -4.678567070373509e-05,
            6.582851865973225e-06,
            -9.177484025310145e-07,
            1.2541818533424193e-07,
            -1.6606733515047064e-08,
            2.1121886227074146e-09,
            -2.650208747986984e-10,
            2.8068932512262042e-11,
        ),
    ),
)
_ERFC_F64_BREAKS = (2.0, 3.5)


def _erf(m: _Emitter, x: ir.Value) -> ir.Value:
    """erf(x) = x + x*P(x^2) for |x| < 1, else sign(x) * (1 - exp(Q(|x|))) with Q
    the log(erfc) fit above; both are computed and selected per lane.
    Max error: float32 2.0 ULP, float64 1.0 ULP."""
    z = m.mul(x, x)
    small = m.fma(x, m.poly(z, _ERF_F64 if m.f64 else _ERF_F32), x)
    # |x| clamped to where erf rounds to 1 anyway (inf included; NaN -> small path)
    a = m.fabs(x)
    a = m.sel(m.cmp("<", a, m.c(6.0 if m.f64 else 4.0)), a, m.c(6.0 if m.f64 else 4.0))
    if m.f64:
        in1 = m.cmp(">=", a, m.c(_ERFC_F64_BREAKS[0]))
        in2 = m.cmp(">=", a, m.c(_ERFC_F64_BREAKS[1]))

        def pick(v0: float, v1: float, v2: float) -> ir.Value:
            return m.sel(in2, m.c(v2), m.sel(in1, m.c(v1), m.c(v0)))

        (m0, c0), (m1, c1), (m2, c2) = _ERFC_F64
        t = m.sub(a, pick(m0, m1, m2))
        q: ir.Value = pick(c0[-1], c1[-1], c2[-1])
        for k in range(len(c0) - 2, -1, -1):
            q = m.fma(q, t, pick(c0[k], c1[k], c2[k]))
    else:
        q = m.poly(m.sub(a, m.c(2.5)), _ERFC_F32)
    big = m.sub(m.c(1.0), _exp_nonan(m, q))
    use_small = m.ucmp("<", m.fabs(x), m.c(1.0))
    return m.sel(use_small, small, m.copysign(big, x))


# ----------------------------------------------------------------------------
# expm1, log1p, log2
# ----------------------------------------------------------------------------

# expm1(r) = r + r^2/2 + r^3 * P(r) on |r| <= ln2/2, minimax relative.
# float32: 5 terms, fit error 3.9e-10; float64: 10 terms, 2.7e-19.
_EXPM1_F32 = (
    0.1666666567325592,
    0.041666481643915176,
    0.0083334194496274,
    0.00139332446269691,
    0.00019824138144031167,
)
_EXPM1_F64 = (
    0.16666666666666677,
    0.04166666666666658,
    0.008333333333322167,
    0.001388888888894263,
    0.00019841269884918772,
    2.4801587198268635e-05,
    2.7557245321083056e-06,
    2.755738703047379e-07,
    2.5108676139267598e-08,
    2.087890757878019e-09,
)
# Below this expm1 rounds to -1 (-18 > ln(2^-25), -38 > ln(2^-54)).
_EXPM1_LO = {False: -18.0, True: -38.0}


def _expm1(m: _Emitter, x: ir.Value) -> ir.Value:
    """expm1(x) = 2^n * (expm1(r) + (1 - 2^-n)) with x = n*ln2 + r; for |x| < ln2/2
    n = 0 and r = x, so small arguments keep full relative accuracy.
    Max error: float32 1.45 ULP, float64 1.78 ULP."""
    xc = _clamp(m, x, _EXPM1_LO[m.f64], _EXP_HI[m.f64])
    r, _, n = _exp_reduce(m, xc)
    u = m.fma(m.mul(r, r), m.poly(r, (0.5,) + (_EXPM1_F64 if m.f64 else _EXPM1_F32)), r)
    # 1 - 2^-n is exact; clamp n so 2^-n stays a normal number (beyond, 2^-n is negligible)
    nneg = m.b.sub(m.ic(0), n)
    nneg = m.b.select(m.b.icmp_signed(">", nneg, m.ic(-60)), nneg, m.ic(-60))
    res = _scale(m, m.add(u, m.sub(m.c(1.0), m.pow2(nneg))), n)
    res = m.sel(m.cmp("<", x, m.c(_EXPM1_LO[m.f64])), m.c(-1.0), res)
    # x itself for NaN and +-0 (keeps the sign of zero)
    return m.sel(m.ucmp("==", x, m.c(0.0)), x, res)


def _log1p(m: _Emitter, x: ir.Value) -> ir.Value:
    """log1p(x) = log(u) + c with u = fl(1 + x) and c = (x - (u - 1)) / u correcting
    the rounding of 1 + x to first order (so tiny x gives exactly x).
    Max error: float32 1.44 ULP, float64 1.58 ULP."""
    u = m.add(x, m.c(1.0))
    c = m.div(m.sub(x, m.sub(u, m.c(1.0))), u)
    f, e = _log_parts(m, u)
    y = m.add(_log1p_reduced(m, f), c)
    hi, lo = _LN2_F64 if m.f64 else _LN2_F32
    res = m.fma(e, m.c(hi), m.fma(e, m.c(lo), y))
    res = _log_special(m, u, res)
    return m.sel(m.ucmp("==", x, m.c(0.0)), x, res)  # NaN, +-0


_LOG2E_F32 = (float.fromhex("0x1.715476p+0"), float.fromhex("0x1.4ae0c0p-26"))
_LOG2E_F64 = (float.fromhex("0x1.71547652b82fep+0"), float.fromhex("0x1.777d0ffda0d24p-56"))


def _log2(m: _Emitter, x: ir.Value) -> ir.Value:
    """log2(x) = e + log1p(f) * log2(e) with log2(e) in two parts; exact for powers
    of two. Max error: float32 1.54 ULP, float64 1.61 ULP."""
    f, e = _log_parts(m, x)
    y = _log1p_reduced(m, f)
    hi, lo = _LOG2E_F64 if m.f64 else _LOG2E_F32
    y = m.fma(y, m.c(hi), m.mul(y, m.c(lo)))
    return _log_special(m, x, m.add(e, y))



# atan(t) = t + t^3 * P(t^2) on |t| <= tan(pi/8), minimax relative.
# float32: 5 terms, fit error 6.7e-10; float64: 12 terms, 4.7e-20.
_ATAN_F32 = (
    -0.33333316445350647,
    0.19998471438884735,
    -0.14243532717227936,
    0.10593810677528381,
    -0.06078213080763817,
)
_ATAN_F64 = (
    -0.33333333333333326,
    0.1999999999999765,
    -0.14285714285385986,
    0.11111111088071107,
    -0.09090908141300794,
    0.07692282698215198,
    -0.06666226030717282,
    0.05877016146011281,
    -0.05218376531099761,
    0.04503467665237402,
    -0.03347322337643746,
    0.01519452446262579,
)
_PIO4_F32 = (float.fromhex("0x1.921fb6p-1"), float.fromhex("-0x1.777a5cp-26"))
_PIO4_F64 = (float.fromhex("0x1.921fb54442d18p-1"), float.fromhex("0x1.1a62633145c07p-55"))


def _arctan(m: _Emitter, x: ir.Value) -> ir.Value:
    """arctan(x) for a = |x| reduced to |t| <= tan(pi/8) by one division:
    a <= tan(pi/8): t = a; a <= tan(3pi/8): pi/4 + atan((a-1)/(a+1));
    beyond: pi/2 + atan(-1/a). The offset is added in two parts; sign of x restored.
    Max error: float32 1.88 ULP, float64 1.77 ULP."""
    a = m.fabs(x)
    lo_rng = m.cmp("<=", a, m.c(0.41421356237309503))
    mid_rng = m.cmp("<=", a, m.c(2.414213562373095))
    one = m.c(1.0)
    num = m.sel(lo_rng, a, m.sel(mid_rng, m.sub(a, one), m.c(-1.0)))
    den = m.sel(lo_rng, one, m.sel(mid_rng, m.add(a, one), a))
    t = m.div(num, den)
    z = m.mul(t, t)
    p = m.mul(m.mul(t, z), m.poly(z, _ATAN_F64 if m.f64 else _ATAN_F32))
    hi, lo = _PIO4_F64 if m.f64 else _PIO4_F32
    k = m.sel(lo_rng, m.c(0.0), m.sel(mid_rng, one, m.c(2.0)))  # offset = k*pi/4
    res = m.fma(k, m.c(hi), m.add(t, m.fma(k, m.c(lo), p)))
    return m.copysign(res, x)  # NaN stays NaN (a NaN takes the -1/a branch)


# ----------------------------------------------------------------------------
# Dispatch
# ----------------------------------------------------------------------------

_UNARY: dict[str, Callable[[_Emitter, ir.Value], ir.Value]] = {
    "exp": _exp,
    "log": _log,
    "tanh": _tanh,
    "sigmoid": _sigmoid,
    "erf": _erf,
    "sin": _sin,
    "cos": _cos,
    "expm1": _expm1,
    "log1p": _log1p,
    "log2": _log2,
    "tan": _tan,
    "arctan": _arctan,
}

MATH_FUNCTIONS: frozenset[str] = frozenset(_UNARY)


def emit_math(builder: ir.IRBuilder, name: str, x: ir.Value, y: ir.Value | None = None) -> ir.Value:
    """Emit ``name(x)`` at the builder's position and return the result.

    ``x`` is a float/double scalar or vector; the result has the same type. ``y``
    is reserved for binary functions (none yet) and must be None."""
    fn = _UNARY.get(name)
    if fn is None:
        raise ValueError(f"unknown math function {name!r}; supported: {sorted(MATH_FUNCTIONS)}")
    if y is not None:
        raise ValueError(f"{name} takes one argument")
    return fn(_Emitter(builder, x.type), x)

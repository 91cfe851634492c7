"""sin, cos and tan as straight-line LLVM IR (part of ``mathlib``; bounds and method in
its module docstring): Cody-Waite reduction by pi/2 for moderate arguments, a table-free
Payne-Hanek reduction for huge float32 ones, odd/even polynomials on [-pi/4, pi/4]."""

from __future__ import annotations

import math

from llvmlite import ir

from tensorjit.compiler.codegen.mathlib_emitter import _Emitter, declare_intrinsic, is_vector, splat

# ----------------------------------------------------------------------------
# sin, cos
# ----------------------------------------------------------------------------

# pi/2 as a sum of four working-precision numbers (~96 / ~212 bits).
_PIO2_F32 = (
    float.fromhex("0x1.921fb6p+0"),
    float.fromhex("-0x1.777a5cp-25"),
    float.fromhex("-0x1.ee59dap-50"),
    float.fromhex("0x1.98a2e0p-77"),
)
_PIO2_F64 = (
    float.fromhex("0x1.921fb54442d18p+0"),
    float.fromhex("0x1.1a62633145c07p-54"),
    float.fromhex("-0x1.f1976b7ed8fbcp-110"),
    float.fromhex("0x1.4cf98e804177dp-164"),
)
_INV_PI = 0.3183098861837907
_TWO_OVER_PI = 0.6366197723675814
# sin(r) = r + r^3 * P(r^2) (one polynomial for sin and cos), minimax relative.
# The interval is a little wider than |r| <= pi/2 because n = rint(x/pi) is
# computed from a rounded x/pi and can be off by one near half-integers:
# float32 |r| <= pi/2 + 0.01 (|x| < 2^16 on this path), 4 terms, fit error 6.5e-9;
# float64 |r| <= 1.83 (|x| <= 2^50), 8 terms, fit error 4.7e-18.
_SIN_F32 = (
    -0.16666659712791443,
    0.008333055302500725,
    -0.00019808781507890671,
    2.6038710529974196e-06,
)
_SIN_F64 = (
    -0.16666666666666655,
    0.0083333333333321,
    -0.00019841269840878133,
    2.755731916340453e-06,
    -2.505210317296974e-08,
    1.605878123772221e-10,
    -7.639453733083108e-13,
    2.6889959917053915e-15,
)


def _reduce_pio2(m: _Emitter, x: ir.Value, k: ir.Value) -> ir.Value:
    """x - k*pi/2 for an integer-valued float k (four-part Cody-Waite with FMAs)."""
    r = x
    for part in _PIO2_F64 if m.f64 else _PIO2_F32:
        r = m.fma(k, m.c(-part), r)
    return r


# Bits of 2/pi as 32-bit words, starting 9 zero bits before the binary point
# (bit i of the table has weight 2^(-i + 8)); enough for every float32 exponent.
_TWO_OVER_PI_WORDS = (
    0x00517CC1,
    0xB727220A,
    0x94FE13AB,
    0xE8FA9A6E,
    0xE06DB14A,
    0xCC9E21C8,
    0x20FF28B1,
)
_BIG_F32_SMIN = -7  # the float32 large path handles |x| >= 2^16, i.e. x = M * 2^s, s >= -7
_BIG_F32 = 2.0**16


def _reduce_big_f32(m: _Emitter, x: ir.Value, mode: str) -> tuple[ir.Value, ir.Value]:
    """(r, n) as in _reduce, for float32 lanes with |x| >= 2^16 (others: garbage
    that the caller does not select).

    Payne-Hanek without tables in memory: with |x| = M * 2^s (M the 24-bit
    significand), bits of 2/pi worth 4 or more after scaling by 2^s contribute
    multiples of 4 and are skipped, so only a 96-bit window W starting at bit
    s-1 matters: U = |x|*2/pi mod 4 = M*W / 2^94 mod 4 (error < 2^-70), kept as a
    2.62 fixed-point 64-bit integer. The window is picked from seven constant
    words with selects and funnel shifts; M*W takes three 32x32->64 multiplies.
    For vectors the 64-bit work runs on the even and odd lanes separately
    (pmuludq-shaped), which avoids widening shuffles."""
    b = m.b
    i32 = m.ity

    def c32(v: int) -> ir.Constant:
        return splat(v, i32)

    bits = m.to_int(x)
    mant = b.or_(b.and_(bits, c32(0x7FFFFF)), c32(0x800000))
    s = b.sub(b.and_(b.lshr(bits, c32(23)), c32(0xFF)), c32(150))
    s = b.select(b.icmp_signed(">", s, c32(_BIG_F32_SMIN)), s, c32(_BIG_F32_SMIN))
    pos = b.sub(s, c32(_BIG_F32_SMIN))  # window start in the table, 0..111
    word = b.lshr(pos, c32(5))  # 0..3
    off = b.and_(pos, c32(31))
    odd = b.icmp_unsigned("!=", b.and_(word, c32(1)), c32(0))
    high = b.icmp_unsigned("!=", b.and_(word, c32(2)), c32(0))
    t = _TWO_OVER_PI_WORDS

    def pick(k: int) -> ir.Value:  # table word (word + k)
        lo = b.select(odd, c32(t[k + 1]), c32(t[k]))
        hi = b.select(odd, c32(t[k + 3]), c32(t[k + 2]))
        return b.select(high, hi, lo)

    w = [pick(k) for k in range(4)]
    fshl = declare_intrinsic(b.module, "llvm.fshl", i32, [i32] * 3)
    win = [b.call(fshl, [w[k], w[k + 1], off]) for k in range(3)]
    p0 = b.mul(mant, win[0])  # only its low 32 bits survive the shift below
    sign = b.and_(bits, c32(-(1 << 31)))

    top = 62 if mode == "tan" else 63  # period pi: 2^63 units of U, pi/2: 2^62
    half_up = {"sin": 1 << 62, "cos": 0, "tan": 1 << 61}[mode]

    def finish(p0s: ir.Value, p1: ir.Value, p2: ir.Value) -> tuple[ir.Value, ir.Value]:
        """From the products (i64 lanes, p0 already shifted) to (r as double, n)."""
        ty = p1.type
        u = b.add(b.add(p0s, p1), b.lshr(p2, splat(32, ty)))  # floor(M*W / 2^32) mod 2^64
        # round to the nearest multiple of the period; keep parity and the signed rest
        v = b.add(u, splat(half_up, ty))
        n = b.lshr(v, splat(top, ty))
        d = b.sub(b.and_(v, splat((1 << top) - 1, ty)), splat(1 << (top - 1), ty))
        fty = ir.VectorType(ir.DoubleType(), ty.count) if is_vector(ty) else ir.DoubleType()
        r = b.fmul(b.sitofp(d, fty), splat(math.pi * 2.0**-63, fty))
        return b.fptrunc(r, ir.VectorType(m.ty.element, ty.count) if is_vector(ty) else m.ty), n

    if is_vector(m.ty) and m.ty.count % 2 == 0:
        half = m.ty.count // 2
        i64 = ir.VectorType(ir.IntType(64), half)
        low = splat(0xFFFFFFFF, i64)
        mant64 = b.bitcast(mant, i64)
        w1, w2 = (b.bitcast(v, i64) for v in win[1:])
        p0_64 = b.bitcast(p0, i64)
        r_ev, n_ev = finish(
            b.shl(p0_64, splat(32, i64)),
            b.mul(b.and_(mant64, low), b.and_(w1, low)),
            b.mul(b.and_(mant64, low), b.and_(w2, low)),
        )
        c32h = splat(32, i64)
        r_od, n_od = finish(
            b.and_(p0_64, splat(0xFFFFFFFF00000000, i64)),
            b.mul(b.lshr(mant64, c32h), b.lshr(w1, c32h)),
            b.mul(b.lshr(mant64, c32h), b.lshr(w2, c32h)),
        )
        mask = ir.Constant(
            ir.VectorType(ir.IntType(32), m.ty.count),
            [v for k in range(half) for v in (k, k + half)],
        )
        r_big = b.shuffle_vector(r_ev, r_od, mask)
        n_i32 = ir.VectorType(ir.IntType(32), half)
        n_big = b.shuffle_vector(b.trunc(n_ev, n_i32), b.trunc(n_od, n_i32), mask)
    else:
        i64 = ir.VectorType(ir.IntType(64), m.ty.count) if is_vector(m.ty) else ir.IntType(64)
        m64 = b.zext(mant, i64)
        r_big, n64 = finish(
            b.shl(b.zext(p0, i64), splat(32, i64)),
            b.mul(m64, b.zext(win[1], i64)),
            b.mul(m64, b.zext(win[2], i64)),
        )
        n_big = b.trunc(n64, i32)
    if mode == "cos":
        n_big = b.add(n_big, c32(1))
    else:  # odd functions: f(x) = -f(|x|) for negative x
        r_big = m.to_float(b.xor(m.to_int(r_big), sign))
    return r_big, n_big


def _reduce(m: _Emitter, x: ir.Value, mode: str) -> tuple[ir.Value, ir.Value]:
    """Reduce x for sin ("sin"), cos ("cos") or tan ("tan"); returns (r, n) with
    n an integer whose parity selects the sign / branch:

    sin: x = n*pi + r,        sin(x) = (-1)^n sin(r),      |r| <= pi/2
    cos: x = (n+1/2)*pi + r,  cos(x) = (-1)^(n+1) sin(r),  |r| <= pi/2
    tan: x = n*pi/2 + r,      tan(x) = tan(r) or -1/tan(r), |r| <= pi/4

    Moderate |x|: Cody-Waite, subtracting k*pi/2 with pi/2 in four parts and
    FMAs (the first step is exact), so r is accurate even next to multiples of
    pi/2. float32 lanes with |x| >= 2^16 use the Payne-Hanek path above instead
    (exact to the last bit for every float32). float64 is Cody-Waite only."""
    if mode == "tan":
        kf, n = m.round_shift(x, _TWO_OVER_PI)
    elif mode == "sin":
        nf, n = m.round_shift(x, _INV_PI)
    else:
        nf, n = m.round_shift(m.fma(x, m.c(_INV_PI), m.c(-0.5)), 1.0)
    if mode != "tan":
        kf = m.add(nf, nf)
        if mode == "cos":
            kf = m.add(kf, m.c(1.0))
            n = m.b.add(n, m.ic(1))
    r = _reduce_pio2(m, x, kf)
    if m.f64:
        return r, n
    r_big, n_big = _reduce_big_f32(m, x, mode)
    big = m.cmp(">=", m.fabs(x), m.c(_BIG_F32))
    return m.sel(big, r_big, r), m.b.select(big, n_big, n)


# float64 sin/cos/tan are computed for |x| <= 2^50 only (Cody-Waite reduction);
# larger arguments give NaN rather than a wrong number. float32 covers all finite x.
TRIG_MAX_ARG_F64 = 2.0**50


def _trig_invalid(m: _Emitter, x: ir.Value) -> ir.Value:
    """Lanes whose sin/cos/tan is NaN: NaN, +-inf, and (float64) |x| > 2^50."""
    limit = TRIG_MAX_ARG_F64 if m.f64 else math.inf
    return m.ucmp(">=" if not m.f64 else ">", m.fabs(x), m.c(limit))


def _sincos(m: _Emitter, x: ir.Value, cos: bool) -> ir.Value:
    """sin/cos from one odd polynomial for sin on [-pi/2, pi/2] after _reduce."""
    r, n = _reduce(m, x, "cos" if cos else "sin")
    z = m.mul(r, r)
    s = m.fma(m.mul(r, z), m.poly(z, _SIN_F64 if m.f64 else _SIN_F32), r)
    # negate when n is odd: move its low bit to the sign bit
    s = m.to_float(m.b.xor(m.to_int(s), m.b.shl(n, m.ic(m.bits - 1))))
    if cos:  # cos(x) rounds to 1 here; exact 1 also where the polynomial is 1 ulp low
        s = m.sel(m.cmp("<", m.fabs(x), m.c(2.0**-27 if m.f64 else 2.0**-12)), m.c(1.0), s)
    else:
        s = m.sel(m.cmp("==", x, m.c(0.0)), x, s)  # sin(-0) = -0
    return m.sel(_trig_invalid(m, x), m.c(math.nan), s)


def _sin(m: _Emitter, x: ir.Value) -> ir.Value:
    """sin(x). Max error: float32 2.17 ULP for every finite x;
    float64 2.05 ULP for |x| <= 2^50, NaN beyond (see TRIG_MAX_ARG_F64)."""
    return _sincos(m, x, cos=False)


def _cos(m: _Emitter, x: ir.Value) -> ir.Value:
    """cos(x). Max error: float32 2.17 ULP for every finite x;
    float64 2.10 ULP for |x| <= 2^50, NaN beyond (see TRIG_MAX_ARG_F64)."""
    return _sincos(m, x, cos=True)


# ----------------------------------------------------------------------------
# tan, arctan
# ----------------------------------------------------------------------------

# tan(r) = r + r^3 * P(r^2), minimax relative, on |r| <= pi/4 plus a margin for
# an off-by-one quadrant (see _SIN_F32): float32 |r| <= pi/4 + 0.005, 7 terms, fit
# error 1.4e-9; float64 |r| <= 0.92, 17 terms, fit error 3.9e-18.
_TAN_F32 = (
    0.3333335220813751,
    0.13332599401474,
    0.054067451506853104,
    0.021242210641503334,
    0.010942043736577034,
    -4.8254645662382245e-05,
    0.004445703234523535,
)
_TAN_F64 = (
    0.33333333333333526,
    0.13333333333304148,
    0.05396825398401038,
    0.02186948810398411,
    0.008863242615518846,
    0.0035920519649510385,
    0.0014564004205036226,
    0.0005869986824280835,
    0.00025106460287862626,
    6.17843058849844e-05,
    0.00011696513006965867,
    -0.00011284030192058738,
    0.00016449697907719758,
    -0.00013744336515140117,
    8.64554228421908e-05,
    -3.2103379649304176e-05,
    6.242813877094814e-06,
)


def _tan(m: _Emitter, x: ir.Value) -> ir.Value:
    """tan(x) with q = rint(2x/pi), r = x - q*pi/2 (same Cody-Waite reduction and
    range as sin/cos): tan(r) for even q, -1/tan(r) for odd q.
    Max error: float32 2.91 ULP, float64 2.26 ULP;
    float64 NaN for |x| > 2^50 (see TRIG_MAX_ARG_F64)."""
    r, qi = _reduce(m, x, "tan")
    z = m.mul(r, r)
    t = m.fma(m.mul(r, z), m.poly(z, _TAN_F64 if m.f64 else _TAN_F32), r)
    odd = m.b.trunc(qi, m.bty)
    res = m.sel(odd, m.div(m.c(-1.0), t), t)
    res = m.sel(m.cmp("==", x, m.c(0.0)), x, res)  # tan(-0) = -0
    return m.sel(_trig_invalid(m, x), m.c(math.nan), res)

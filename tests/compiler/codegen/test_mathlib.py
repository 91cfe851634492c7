"""Accuracy and code-shape tests for ``tensorjit.compiler.codegen.mathlib``.

Each (dtype, vector width) gets one tiny LLVM module with a kernel
``void k_<name>(T* in, T* out, i64 n)`` per function: it applies ``emit_math``
to width-sized chunks and finishes with a scalar tail (width 1: scalar only).
The kernels are JIT-compiled for the host CPU and compared with NumPy:

* float32: integer ULP distance to the correctly rounded result
  ``np.f(x.astype(float64)).astype(float32)`` (float64 is accurate enough that
  double rounding never matters at the bounds tested);
* float64: ULP distance to NumPy's float64 result (itself within ~1 ULP);
  mpmath supplies the reference where NumPy/SciPy are not accurate enough.

Sweeps: log-spaced magnitudes of both signs over the whole range, random bit
patterns, dense ranges where each function is interesting, values next to the
overflow/underflow thresholds, and the IEEE specials (NaN, +-inf, +-0,
denormals, the largest and smallest normals).
"""

from __future__ import annotations

import ctypes
import re
from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np
import pytest
from llvmlite import binding as llvm
from llvmlite import ir

from tensorjit.compiler.codegen.mathlib import (
    MATH_FUNCTIONS,
    TRIG_MAX_ARG_F64,
    declare_intrinsic,
    element_type,
    emit_math,
    is_vector,
    splat,
)

REQUIRED = ("exp", "log", "tanh", "sigmoid", "erf", "sin", "cos")
EXTRA = ("expm1", "log1p", "log2", "tan", "arctan")
NAMES = tuple(n for n in REQUIRED + EXTRA if n in MATH_FUNCTIONS)
WIDTHS: dict[Any, tuple[int, int]] = {np.float32: (1, 16), np.float64: (1, 8)}
CASES = [(dt, w) for dt in (np.float32, np.float64) for w in WIDTHS[dt]]

# Max ULP distance asserted (float32: to the correctly rounded result; float64: to
# NumPy, which is itself up to ~1 ULP off). The docstrings in mathlib state the
# measured bounds; the brief's contract is 4 ULP (float32) / 1e-13 relative (float64).
ULP_BOUND: dict[Any, int] = {np.float32: 4, np.float64: 4}

# Arguments of sin/cos/tan for which the documented accuracy holds: every finite
# float32; float64 up to 2^50 (beyond: NaN, tested below).
TRIG_RANGE: dict[Any, float] = {np.float32: np.inf, np.float64: TRIG_MAX_ARG_F64}

# Arguments closest to multiples of pi/2 (continued-fraction search per binade):
# the reduced argument is ~1e-9 (float32) / ~1e-18 (float64) of pi/2 there.
HARD_TRIG_F32 = [
    21999384576.0,
    43998769152.0,
    1522788990976.0,
    87997538304.0,
    42781604.0,
    175995076608.0,
    52516.43359375,
    2709675.5,
    620046656.0,
    85563208.0,
    351990153216.0,
    105032.8671875,
    2023.1856689453125,
    267058.9375,
    5419351.0,
    1240093312.0,
    171126416.0,
    8129026.5,
    2238.384765625,
    703980306432.0,
]
HARD_TRIG_F64 = [
    45.553093477052,
    91.106186954104,
    14461176.67027838,
    182.212373908208,
    28922353.34055676,
    364.424747816416,
    57844706.68111352,
    728.849495632832,
    115689413.36222704,
    563416747700.2246,
    205097628711448.4,
    1457.698991265664,
    231378826.72445408,
    1126833495400.4492,
    410195257422896.8,
    2915.397982531328,
    321307.9594422229,
    1690250243100.6738,
    1698673.2849629424,
    462757653.44890815,
]


# ----------------------------------------------------------------------------------
# JIT harness
# ----------------------------------------------------------------------------------


def _kernel(module: ir.Module, name: str, st: ir.Type, width: int) -> None:
    i64 = ir.IntType(64)
    fn = ir.Function(
        module, ir.FunctionType(ir.VoidType(), [st.as_pointer(), st.as_pointer(), i64]), f"k_{name}"
    )
    src, dst, n = fn.args
    entry = fn.append_basic_block("entry")
    vloop, vdone = fn.append_basic_block("vloop"), fn.append_basic_block("vdone")
    sloop, done = fn.append_basic_block("sloop"), fn.append_basic_block("done")
    b = ir.IRBuilder(entry)
    zero, w = ir.Constant(i64, 0), ir.Constant(i64, width)
    nvec = b.mul(b.udiv(n, w), w) if width > 1 else zero
    b.cbranch(b.icmp_unsigned(">", nvec, zero), vloop, vdone)

    b.position_at_end(vloop)  # width-sized chunks
    i = b.phi(i64)
    i.add_incoming(zero, entry)
    if width > 1:
        vt = ir.VectorType(st, width)
        v = b.load(b.bitcast(b.gep(src, [i]), vt.as_pointer()), align=1)
        b.store(emit_math(b, name, v), b.bitcast(b.gep(dst, [i]), vt.as_pointer()), align=1)
    i_next = b.add(i, w)
    i.add_incoming(i_next, b.block)
    b.cbranch(b.icmp_unsigned("<", i_next, nvec), vloop, vdone)

    b.position_at_end(vdone)
    b.cbranch(b.icmp_unsigned("<", nvec, n), sloop, done)

    b.position_at_end(sloop)  # scalar tail
    j = b.phi(i64)
    j.add_incoming(nvec, vdone)
    b.store(emit_math(b, name, b.load(b.gep(src, [j]))), b.gep(dst, [j]))
    j_next = b.add(j, ir.Constant(i64, 1))
    j.add_incoming(j_next, b.block)
    b.cbranch(b.icmp_unsigned("<", j_next, n), sloop, done)

    b.position_at_end(done)
    b.ret_void()


def _target_machine() -> llvm.TargetMachine:
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    return llvm.Target.from_default_triple().create_target_machine(
        cpu=llvm.get_host_cpu_name(), features=llvm.get_host_cpu_features().flatten(), opt=3
    )


class Kernels:
    """All math kernels for one dtype and vector width, JIT-compiled."""

    def __init__(self, dtype: Any, width: int, names: tuple[str, ...] = NAMES) -> None:
        st = ir.DoubleType() if dtype is np.float64 else ir.FloatType()
        module = ir.Module(name=f"mathlib_{np.dtype(dtype).name}_{width}")
        module.triple = llvm.get_default_triple()
        for name in names:
            _kernel(module, name, st, width)
        self.ir_text = str(module)
        self.llmod = llvm.parse_assembly(self.ir_text)
        self.llmod.verify()
        tm = _target_machine()  # owned by the engine below
        pto = llvm.create_pipeline_tuning_options(speed_level=3)
        pb = llvm.create_pass_builder(tm, pto)
        pb.getModulePassManager().run(self.llmod, pb)
        self.engine = llvm.create_mcjit_compiler(self.llmod, tm)
        self.engine.finalize_object()
        self.dtype = dtype
        proto = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)
        self.fns = {n: proto(self.engine.get_function_address(f"k_{n}")) for n in names}

    def __call__(self, name: str, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=self.dtype)
        out = np.empty_like(x)
        self.fns[name](x.ctypes.data, out.ctypes.data, x.size)
        return out

    def asm(self) -> str:
        return _target_machine().emit_assembly(self.llmod)


@cache
def kernels(dtype: Any, width: int) -> Kernels:
    return Kernels(dtype, width)


# ----------------------------------------------------------------------------------
# References and error measures
# ----------------------------------------------------------------------------------


def _sigmoid_ref(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))  # same stable split as the definition (denormals kept)
    return np.where(x < 0, e, 1.0) / (1.0 + e)


def _erf_ref(x: np.ndarray) -> np.ndarray:
    special = pytest.importorskip("scipy.special")
    return special.erf(x)


REFS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "exp": np.exp,
    "log": np.log,
    "tanh": np.tanh,
    "sigmoid": _sigmoid_ref,
    "erf": _erf_ref,
    "sin": np.sin,
    "cos": np.cos,
    "expm1": np.expm1,
    "log1p": np.log1p,
    "log2": np.log2,
    "tan": np.tan,
    "arctan": np.arctan,
}


def reference(name: str, x: np.ndarray) -> np.ndarray:
    """NumPy's result in float64, rounded to x's dtype."""
    with np.errstate(all="ignore"):
        return REFS[name](x.astype(np.float64)).astype(x.dtype)


def ulp_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Number of representable values between a and b (0 if both NaN, huge if one is)."""
    ibits = np.int32 if a.dtype == np.float32 else np.int64
    sign = np.iinfo(ibits).min

    def ordered(v: np.ndarray) -> np.ndarray:  # integers monotone in v, -0 == +0
        i = v.view(ibits).astype(np.int64)
        return np.where(i < 0, sign - i, i)

    ia, ib = ordered(a), ordered(b)
    same_sign = (ia >= 0) == (ib >= 0)  # then ia - ib cannot overflow
    with np.errstate(over="ignore"):
        d = np.where(
            same_sign,
            np.abs(ia - ib).astype(np.float64),
            np.abs(ia).astype(np.float64) + np.abs(ib).astype(np.float64),
        )
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    return np.where(nan_a & nan_b, 0.0, np.where(nan_a | nan_b, np.inf, d))


def assert_close(name: str, x: np.ndarray, got: np.ndarray, want: np.ndarray, bound: float) -> None:
    d = ulp_distance(got, want)
    worst = int(np.argmax(d))
    assert d[worst] <= bound, (
        f"{name}[{x.dtype}]({x[worst]!r}) = {got[worst]!r}, want {want[worst]!r}: "
        f"{d[worst]:g} ULP > {bound}; {np.count_nonzero(d > bound)} of {x.size} inputs off"
    )


# ----------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------

# Intervals swept densely per function (beyond the whole-range log sweep).
DENSE: dict[str, tuple[float, float]] = {
    "exp": (-760.0, 720.0),
    "log": (0.0, 4.0),
    "tanh": (-25.0, 25.0),
    "sigmoid": (-760.0, 60.0),
    "erf": (-7.0, 7.0),
    "sin": (-50.0, 50.0),
    "cos": (-50.0, 50.0),
    "expm1": (-45.0, 720.0),
    "log1p": (-1.0, 4.0),
    "log2": (0.0, 4.0),
    "tan": (-50.0, 50.0),
    "arctan": (-6.0, 6.0),
}


def special_values(dtype: Any) -> np.ndarray:
    fi = np.finfo(dtype)
    tiny_denormal = fi.smallest_subnormal
    vals = [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 0.5, 2.0, fi.max, -fi.max]
    vals += [fi.tiny, -fi.tiny, tiny_denormal, -tiny_denormal, fi.tiny / 3, -fi.tiny / 7]
    vals += [fi.eps, -fi.eps, fi.eps / 2, 1.0 - fi.eps / 2, 1.0 + fi.eps]
    return np.array(vals, dtype)


def sweep(name: str, dtype: Any, n: int = 400_000) -> np.ndarray:
    rng = np.random.default_rng(1234)
    fi = np.finfo(dtype)
    lo = np.log10(float(fi.smallest_subnormal))
    hi = np.log10(float(fi.max))
    with np.errstate(over="ignore"):
        mag = np.logspace(lo, hi, n, dtype=np.float64)
    ibits = np.uint32 if dtype is np.float32 else np.uint64
    bits = rng.integers(0, np.iinfo(ibits).max, n, dtype=ibits, endpoint=True).view(dtype)
    a, b = DENSE[name]
    dense = np.linspace(a, b, n)
    with np.errstate(over="ignore"):
        parts = [mag.astype(dtype), -mag.astype(dtype), bits, dense.astype(dtype)]
    parts.append(special_values(dtype))
    parts.append(thresholds(name, dtype))
    x = np.concatenate(parts)
    if name in ("sin", "cos", "tan"):
        x = x[~(np.abs(x) > TRIG_RANGE[dtype])]  # keeps NaN and inf
    return x


def _around(values: list[float], dtype: Any, k: int = 40) -> np.ndarray:
    """Each value and its k neighbours on both sides in dtype."""
    out = []
    for v in np.array(values, dtype):
        lo = hi = v
        out.append(v)
        for _ in range(k):
            lo, hi = np.nextafter(lo, dtype(-np.inf)), np.nextafter(hi, dtype(np.inf))
            out += [lo, hi]
    return np.array(out, dtype)


def thresholds(name: str, dtype: Any) -> np.ndarray:
    """Arguments next to overflow/underflow/rounding thresholds and branch points."""
    f64 = dtype is np.float64
    pts: dict[str, list[float]] = {
        "exp": [709.782712893384, -708.3964185322641, -745.1332191019411, -744.44]
        if f64
        else [88.72283, -87.33655, -103.27893, -103.97208, -104.0],
        "log": [1.0, 0.7071067811865476, 1.4142135623730951, 0.5, 2.0],
        "tanh": [0.625 if f64 else 0.8, 19.06 if f64 else 9.01, -1.0],
        "sigmoid": [0.0, -745.0 if f64 else -103.9, 36.7 if f64 else 16.6],
        "erf": [1.0, 2.0, 3.5, 6.0, 5.93, 3.92, 1e-8],
        "sin": [np.pi, np.pi / 2, 1e-4, 100 * np.pi],
        "cos": [np.pi / 2, 3 * np.pi / 2, 0.0, 101 * np.pi / 2],
        "expm1": [0.0, 0.3465735902799727, -18.0, -38.0, 709.78 if f64 else 88.72],
        "log1p": [-1.0, 0.0, 1e-5, -0.2928932188134524, 0.41421356237309515],
        "log2": [1.0, 0.7071067811865476, 1.4142135623730951, 0.5, 2.0],
        "tan": [np.pi / 4, np.pi / 2, 3 * np.pi / 2, -np.pi / 4],
        "arctan": [0.41421356237309503, 2.414213562373095, 1.0, -1.0, 1e10],
    }
    return _around(pts[name], dtype)


# ----------------------------------------------------------------------------------
# Tests
# ----------------------------------------------------------------------------------


def test_required_functions_present() -> None:
    assert set(REQUIRED) <= MATH_FUNCTIONS
    assert all(isinstance(n, str) for n in MATH_FUNCTIONS)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("dtype", "width"), CASES)
def test_accuracy_sweep(name: str, dtype: Any, width: int) -> None:
    x = sweep(name, dtype)
    assert_close(name, x, kernels(dtype, width)(name, x), reference(name, x), ULP_BOUND[dtype])


@pytest.mark.parametrize(
    ("dtype", "width"), [(np.float32, 16), (np.float32, 5), (np.float64, 8), (np.float64, 3)]
)
def test_vector_and_scalar_agree_bitwise(dtype: Any, width: int) -> None:
    """The same IR per lane: every vector width must reproduce the scalar results
    exactly (odd widths take the non-paired integer path in the float32 trig code)."""
    for name in NAMES:
        x = sweep(name, dtype, n=20_000)
        scalar = kernels(dtype, 1)(name, x)
        vector = kernels(dtype, width)(name, x)
        same = scalar.view(f"u{scalar.itemsize}") == vector.view(f"u{vector.itemsize}")
        assert same.all(), f"{name} x{width}: {x[~same][:5]}"


EXACT: dict[str, list[tuple[float, float]]] = {
    # (x, f(x)) that must hold exactly, including the sign of zero
    "exp": [
        (0.0, 1.0),
        (-0.0, 1.0),
        (np.inf, np.inf),
        (-np.inf, 0.0),
        (1e30, np.inf),
        (-1e30, 0.0),
    ],
    "log": [
        (1.0, 0.0),
        (0.0, -np.inf),
        (-0.0, -np.inf),
        (-1.0, np.nan),
        (-np.inf, np.nan),
        (np.inf, np.inf),
        (-1e-30, np.nan),
    ],
    "tanh": [(0.0, 0.0), (-0.0, -0.0), (np.inf, 1.0), (-np.inf, -1.0), (1e30, 1.0), (-30.0, -1.0)],
    "sigmoid": [(0.0, 0.5), (-0.0, 0.5), (np.inf, 1.0), (-np.inf, 0.0), (1e30, 1.0), (-1e30, 0.0)],
    "erf": [(0.0, 0.0), (-0.0, -0.0), (np.inf, 1.0), (-np.inf, -1.0), (10.0, 1.0), (-1e30, -1.0)],
    "sin": [(0.0, 0.0), (-0.0, -0.0), (np.inf, np.nan), (-np.inf, np.nan)],
    "cos": [(0.0, 1.0), (-0.0, 1.0), (np.inf, np.nan), (-np.inf, np.nan)],
    "expm1": [(0.0, 0.0), (-0.0, -0.0), (np.inf, np.inf), (-np.inf, -1.0), (-1e30, -1.0)],
    "log1p": [
        (0.0, 0.0),
        (-0.0, -0.0),
        (-1.0, -np.inf),
        (-2.0, np.nan),
        (np.inf, np.inf),
        (-np.inf, np.nan),
    ],
    "log2": [
        (1.0, 0.0),
        (0.0, -np.inf),
        (8.0, 3.0),
        (0.125, -3.0),
        (-1.0, np.nan),
        (np.inf, np.inf),
    ],
    "tan": [(0.0, 0.0), (-0.0, -0.0), (np.inf, np.nan), (-np.inf, np.nan)],
    "arctan": [(0.0, 0.0), (-0.0, -0.0), (np.inf, np.pi / 2), (-np.inf, -np.pi / 2)],
}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("dtype", "width"), CASES)
def test_special_values_exact(name: str, dtype: Any, width: int) -> None:
    pairs = EXACT[name] + [(np.nan, np.nan), (-np.nan, np.nan)]
    x = np.array([p[0] for p in pairs] * 3, dtype)  # 3 copies: vector body and tail
    want = np.array([p[1] for p in pairs] * 3, dtype)
    got = kernels(dtype, width)(name, x)
    for xi, g, w in zip(x, got, want, strict=True):
        ok = (np.isnan(g) and np.isnan(w)) or (g == w and np.signbit(g) == np.signbit(w))
        assert ok, f"{name}[{np.dtype(dtype).name}]({xi!r}) = {g!r}, want {w!r}"


@pytest.mark.parametrize("name", [n for n in ("exp", "sigmoid", "expm1") if n in NAMES])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_denormal_results(name: str, dtype: Any) -> None:
    """Results in the denormal range are rounded from the full-precision value."""
    fi = np.finfo(dtype)
    lo, hi = np.log(float(fi.smallest_subnormal)), np.log(float(fi.tiny))
    x = np.linspace(lo - 1.0, hi + 1.0, 50_001).astype(dtype)
    if name == "expm1":
        x = x[x < -1e-3]
    want = reference(name, x)
    assert_close(name, x, kernels(dtype, WIDTHS[dtype][1])(name, x), want, 1)
    if name != "expm1":
        assert np.count_nonzero((want > 0) & (want < fi.tiny)) > 1000  # really denormal


def _mp_reference(name: str, x: np.ndarray) -> np.ndarray:
    mp = pytest.importorskip("mpmath")
    fn = {"sin": mp.sin, "cos": mp.cos, "tan": mp.tan}[name]
    with mp.workdps(60):
        return np.array([float(fn(mp.mpf(float(v)))) for v in x]).astype(x.dtype)


def _near_multiples_of_pio2(dtype: Any, limit: float, count: int, seed: int) -> np.ndarray:
    """Floats closest to k*pi/2 (and their neighbours): the reduced argument is tiny
    there, so any error in the reduction shows up as a large relative error."""
    mp = pytest.importorskip("mpmath")
    rng = np.random.default_rng(seed)
    kmax = int(min(limit, 2.0**60) / (np.pi / 2))
    k = np.unique(np.concatenate([np.arange(1, 200), rng.integers(1, kmax, count)]))
    with mp.workdps(60):
        centre = np.array([float(mp.mpf(int(v)) * mp.pi / 2) for v in k]).astype(dtype)
    hard = HARD_TRIG_F64 if dtype is np.float64 else HARD_TRIG_F32
    centre = np.concatenate([centre, np.array(hard, dtype)])
    x = np.concatenate(
        [centre, np.nextafter(centre, dtype(0)), np.nextafter(centre, dtype(np.inf))]
    )
    x = np.concatenate([x, -x])
    return x[np.abs(x) <= limit]


@pytest.mark.parametrize("name", [n for n in ("sin", "cos", "tan") if n in NAMES])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_trig_near_multiples_of_pi_over_2(name: str, dtype: Any) -> None:
    """Relative accuracy holds even where the result is close to zero (or, for tan,
    close to a pole): no absolute-error escape hatch is needed."""
    x = _near_multiples_of_pio2(dtype, TRIG_RANGE[dtype], 300, seed=7)
    got = kernels(dtype, WIDTHS[dtype][1])(name, x)
    assert_close(name, x, got, _mp_reference(name, x), ULP_BOUND[dtype])


@pytest.mark.parametrize("name", [n for n in ("sin", "cos", "tan") if n in NAMES])
@pytest.mark.parametrize("width", WIDTHS[np.float32])
def test_trig_float32_huge_arguments(name: str, width: int) -> None:
    """float32 reduces exactly for every finite argument (Payne-Hanek path)."""
    rng = np.random.default_rng(99)
    lo, hi = np.float32(2.0**15).view(np.uint32), np.finfo(np.float32).max.view(np.uint32)
    x = rng.integers(lo, hi, 300_000, dtype=np.uint32, endpoint=True).view(np.float32)
    extra = np.array([65536.0, 65535.996, 1e10, 1e20, 1e30, -1e38], np.float32)
    x = np.concatenate([x, -x, extra])
    want = reference(name, x)
    assert_close(name, x, kernels(np.float32, width)(name, x), want, ULP_BOUND[np.float32])


@pytest.mark.parametrize("name", [n for n in ("sin", "cos", "tan") if n in NAMES])
def test_trig_float64_range_limit(name: str) -> None:
    """float64: accurate up to 2^50, NaN beyond (documented, not silently wrong)."""
    top = TRIG_MAX_ARG_F64
    inside = np.array([top, -top, np.nextafter(top, 0), top * 0.75, 1e15, -1e15])
    outside = np.array(
        [np.nextafter(top, np.inf), 2.0 * top, 1e16, 1e20, 1e300, -1e300, np.finfo(np.float64).max]
    )
    k = kernels(np.float64, 8)
    assert_close(name, inside, k(name, inside), _mp_reference(name, inside), ULP_BOUND[np.float64])
    assert np.isnan(k(name, outside)).all()


@pytest.mark.parametrize("name", ["exp", "tanh"])
def test_float32_x16_uses_zmm_and_calls_nothing(name: str) -> None:
    asm = Kernels(np.float32, 16, (name,)).asm()
    assert "zmm" in asm
    assert not re.search(r"\bcall", asm), "math code must not call out (libm)"


def test_no_calls_for_any_function() -> None:
    for dtype, width in CASES:
        asm = kernels(dtype, width).asm()
        assert not re.search(r"\bcall", asm), f"{np.dtype(dtype).name} x{width} calls out"


def test_ir_uses_no_fast_math_flags() -> None:
    text = kernels(np.float32, 16).ir_text + kernels(np.float64, 8).ir_text
    for flag in ("fast", "nnan", "ninf", "nsz", "arcp", "afn", "reassoc"):
        assert not re.search(rf"\b{flag}\b", text), flag


def test_helpers() -> None:
    f32x8 = ir.VectorType(ir.FloatType(), 8)
    assert is_vector(f32x8) and not is_vector(ir.DoubleType())
    assert (
        element_type(f32x8) == ir.FloatType() and element_type(ir.DoubleType()) == ir.DoubleType()
    )
    c = splat(0.1, f32x8)
    assert c.type == f32x8 and str(c).lower().count("0x3fb99999a0000000") == 8
    assert splat(3, ir.IntType(32)).constant == 3
    assert splat(2.5, ir.DoubleType()).type == ir.DoubleType()


def test_declare_intrinsic_mangling() -> None:
    module = ir.Module()
    f32x16 = ir.VectorType(ir.FloatType(), 16)
    fma = declare_intrinsic(module, "llvm.fma", f32x16, [f32x16] * 3)
    assert fma.name == "llvm.fma.v16f32"
    assert declare_intrinsic(module, "llvm.fma", f32x16, [f32x16] * 3) is fma  # once per module
    assert declare_intrinsic(module, "llvm.fabs", ir.DoubleType(), [ir.DoubleType()]).name == (
        "llvm.fabs.f64"
    )
    v8i1 = ir.VectorType(ir.IntType(1), 8)
    red = declare_intrinsic(module, "llvm.vector.reduce.or", ir.IntType(1), [v8i1], [v8i1])
    assert red.name == "llvm.vector.reduce.or.v8i1"


def test_rejects_bad_input() -> None:
    module = ir.Module()
    fn = ir.Function(module, ir.FunctionType(ir.IntType(32), [ir.IntType(32)]), "f")
    b = ir.IRBuilder(fn.append_basic_block())
    with pytest.raises(ValueError, match="unknown math function"):
        emit_math(b, "nope", fn.args[0])
    with pytest.raises(TypeError):
        emit_math(b, "exp", fn.args[0])

"""Checking tensorjit ops against NumPy itself: inputs, running, comparing.

The tests in ``tests/ops`` build ONE graph per (op, dtype) that returns several outputs
(one per input shape or broadcasting case), so a handful of compiles covers scalars,
size-1 dims, empty arrays, odd sizes (vector body + scalar tail) and arrays holding NaN,
+-Inf, -0.0, denormals, huge and tiny values. Each graph runs through the reference
interpreter AND the compiled path. Results must have exactly NumPy's dtype and shape;
values are exact for integers, bools, comparisons and movement ops, within a few ULP for
float transcendental functions and within ~1e-5 relative for float32 reductions.

``tests/conftest.py`` puts this folder on ``sys.path`` (the suite runs in importlib mode),
so test files import it as ``opcheck``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import tensorjit as tj

FLOATS = ("float32", "float64")
INTS = ("int32", "int64")
ALL_DTYPES = FLOATS + INTS + ("bool",)

# (rtol, atol) for results that are not exact.
ULP_TOL = {"float32": (2e-6, 1e-6), "float64": (1e-13, 1e-14)}  # a few ULP, or near zero
REDUCE_TOL = {"float32": (1e-5, 1e-6), "float64": (1e-12, 1e-13)}
COMPOSITE_TOL = {"float32": (1e-5, 2e-6), "float64": (1e-12, 1e-13)}  # chains of ops (nn)


# --------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------

def float_specials(dtype: str, huge: bool = True) -> np.ndarray:
    fi = np.finfo(dtype)
    vals = [np.nan, np.inf, -np.inf, 0.0, -0.0, fi.smallest_subnormal,
            -fi.smallest_subnormal, fi.smallest_subnormal * 1000, fi.tiny, -fi.tiny,
            1.0, -1.0, 0.5, -0.5, 2.0, 3.0, -3.0, 100.0, -100.0, 88.5, -104.0, 1e-20]
    if huge:
        vals += [fi.max, -fi.max, 1e30, -1e30]
    return np.array(vals, dtype=dtype)


def int_specials(dtype: str, huge: bool = True) -> np.ndarray:
    ii = np.iinfo(dtype)
    vals = [0, 1, -1, 2, -2, 3, 7, -7, 100]
    if huge:
        vals += [ii.min, ii.max, ii.min + 1, ii.max - 1]
    return np.array(vals, dtype=dtype)


def specials(dtype: str, huge: bool = True) -> np.ndarray:
    if dtype == "bool":
        return np.array([False, True])
    if dtype in INTS:
        return int_specials(dtype, huge)
    return float_specials(dtype, huge)


def random_values(rng: np.random.Generator, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype in INTS:
        return rng.integers(-1000, 1000, size=shape).astype(dtype)
    # magnitudes spread over 1e-4 .. 1e4, both signs
    mag = 10.0 ** rng.uniform(-4, 4, size=shape)
    return (np.where(rng.random(shape) < 0.5, -mag, mag)).astype(dtype)


def make_input(rng: np.random.Generator, dtype: str, shape: tuple[int, ...],
               huge: bool = True) -> np.ndarray:
    """Random values; arrays with room for them get every special value too."""
    a = random_values(rng, dtype, shape)
    sp = specials(dtype, huge)
    if a.size >= 4 * len(sp):
        flat = a.reshape(-1)
        flat[: len(sp)] = sp
        flat[-len(sp):] = sp[::-1]
    return a


def special_pairs(dtype: str, huge: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Two flat arrays that together hold every pair of special values."""
    sp = specials(dtype, huge)
    return np.repeat(sp, len(sp)), np.tile(sp, len(sp))


# --------------------------------------------------------------------------------------
# running and comparing
# --------------------------------------------------------------------------------------

def run_both(fn: Callable[..., Any], args: Sequence[np.ndarray]
             ) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """(interpreter outputs, compiled outputs) of ``fn`` traced on ``args``."""
    g = tj.trace(fn, *args)
    interp = tj.interpret(g, list(args))
    out = tj.compile(g)(*args)
    compiled = out if isinstance(out, tuple) else (out,)
    return interp, compiled


def assert_same(actual: Any, expected: Any, kind: str, what: str,
                signed_zeros: bool = True) -> None:
    """``actual`` equals NumPy's ``expected``: same type, dtype, shape; values per ``kind``."""
    expected = np.asarray(expected)
    assert isinstance(actual, np.ndarray), f"{what}: got {type(actual).__name__}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    if kind == "exact" or expected.dtype.kind in "biu":
        np.testing.assert_array_equal(actual, expected, err_msg=what, strict=True)
        if signed_zeros and expected.dtype.kind == "f":
            keep = ~np.isnan(expected)
            np.testing.assert_array_equal(np.signbit(actual[keep]), np.signbit(expected[keep]),
                                          err_msg=f"{what}: signs of zeros differ")
        return
    table = {"ulp": ULP_TOL, "reduce": REDUCE_TOL, "composite": COMPOSITE_TOL}[kind]
    rtol, atol = table[str(expected.dtype)]
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True,
                               err_msg=what)


def check(fn: Callable[..., Any], args: Sequence[np.ndarray], expected: Sequence[Any],
          kind: str, what: str, signed_zeros: bool = True) -> None:
    """Run ``fn`` (returning a tuple) both ways and compare every output with NumPy's."""
    interp, compiled = run_both(fn, args)
    assert len(interp) == len(compiled) == len(expected)
    for k, (e, i, c) in enumerate(zip(expected, interp, compiled)):
        assert_same(i, e, kind, f"{what} output {k} [interpreter]", signed_zeros)
        assert_same(c, e, kind, f"{what} output {k} [compiled]", signed_zeros)


def np_quiet(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    with np.errstate(all="ignore"):
        return fn(*args, **kwargs)


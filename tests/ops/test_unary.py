"""Unary elementwise ops (and NumPy ufuncs called on traced tensors) against NumPy."""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import pytest
from opcheck import ALL_DTYPES, FLOATS, INTS, assert_same, check, make_input, np_quiet, run_both

import tensorjit as tj

# Shapes run through every unary op: scalar, size-1, empty, odd sizes, a long array
# (vector loop + scalar tail) and a rank-3 array with a size-1 middle dim.
UNARY_SHAPES = [(), (1,), (0, 3), (17,), (4, 33), (1037,), (2, 1, 3)]

# name -> (kind, dtypes NumPy and tensorjit both support)
FLOAT_FUNCS = ("exp", "expm1", "log", "log1p", "log2", "sqrt", "sin", "cos", "tan", "tanh",
               "arctan")
UNARY: dict[str, tuple[str, tuple[str, ...]]] = {
    **{f: ("ulp", ALL_DTYPES) for f in FLOAT_FUNCS},
    "sqrt": ("exact", ALL_DTYPES),  # IEEE: correctly rounded
    "negative": ("exact", FLOATS + INTS),
    "abs": ("exact", ALL_DTYPES),
    "absolute": ("exact", FLOATS + INTS),
    "sign": ("exact", FLOATS + INTS),  # sign of zero results: test_sign_of_negative_zero
    "floor": ("exact", FLOATS + INTS),
    "ceil": ("exact", FLOATS + INTS),
    "square": ("exact", FLOATS + INTS),
    "reciprocal": ("exact", FLOATS),
    "isnan": ("exact", ALL_DTYPES),
    "isfinite": ("exact", ALL_DTYPES),
    "logical_not": ("exact", ALL_DTYPES),
    "invert": ("exact", INTS + ("bool",)),
}
# sin/cos/tan of huge finite arguments are tested separately (test_trig_huge_arguments).
NO_HUGE = {"sin", "cos", "tan"}


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary(name: str, dtype: str) -> None:
    kind, dtypes = UNARY[name]
    if dtype not in dtypes:
        pytest.skip(f"numpy.{name} has no {dtype} loop that tensorjit mirrors")
    rng = np.random.default_rng(zlib.crc32(f"{name}/{dtype}".encode()))
    huge = name not in NO_HUGE
    args = [make_input(rng, dtype, s, huge) for s in UNARY_SHAPES]
    tj_fn, np_fn = getattr(tj, name), getattr(np, name)

    def fn(*xs: Any) -> tuple[Any, ...]:
        return tuple(tj_fn(x) for x in xs)

    if name in FLOAT_FUNCS and dtype not in FLOATS:
        # Documented: integer and bool inputs compute in float64 (NumPy: float16 for bool).
        expected = [np_quiet(np_fn, a.astype(np.float64)) for a in args]
    else:
        expected = [np_quiet(np_fn, a) for a in args]
    check(fn, args, expected, kind, f"{name}[{dtype}]", signed_zeros=name != "sign")


@pytest.mark.parametrize("dtype", FLOATS)
def test_sign_of_negative_zero(dtype: str) -> None:
    x = np.array([-0.0, 0.0, -1.0, np.nan], dtype)
    check(lambda x: (tj.sign(x),), [x], [np.sign(x)], "exact", f"sign(-0.0) [{dtype}]")


def test_unary_bool_to_float_is_documented_float64() -> None:
    """NumPy computes exp(bool) in float16; tensorjit documents float64 instead."""
    x = np.array([True, False, True])
    assert np.exp(x).dtype == np.float16
    interp, compiled = run_both(lambda x: (tj.exp(x), tj.sqrt(x)), [x])
    for out in (*interp, *compiled):
        assert out.dtype == np.float64
    np.testing.assert_allclose(compiled[0], np.exp(x.astype(np.float64)), rtol=1e-15)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", ["sin", "cos", "tan"])
def test_trig_huge_arguments(name: str, dtype: str) -> None:
    fi = np.finfo(dtype)
    x = np.array([1e10, -1e12, 1e20, 1e30, -1e30, fi.max, -fi.max, 12345.678, 2.0**60,
                  np.iinfo(np.int64).max], dtype)
    fn = getattr(tj, name)
    check(lambda x: (fn(x),), [x], [getattr(np, name)(x)], "ulp", f"{name} huge [{dtype}]")


def test_numpy_ufuncs_on_tensors_trace() -> None:
    """np.exp(t), np.add(t, 1), np.sum(t) inside a traced function mean tj.*."""
    x = make_input(np.random.default_rng(0), "float32", (33,), huge=False)

    def fn(x: Any) -> tuple[Any, ...]:
        return np.exp(x), np.add(x, 1), np.sum(x), np.maximum(x, 0.5), np.transpose(x)

    expected = [np_quiet(np.exp, x), x + 1, np.sum(x), np.maximum(x, 0.5), x]
    interp, compiled = run_both(fn, [x])
    for k in (1, 3, 4):
        assert_same(interp[k], expected[k], "exact", f"out {k}")
        assert_same(compiled[k], expected[k], "exact", f"out {k}")
    assert_same(compiled[0], expected[0], "ulp", "exp")
    assert_same(compiled[2], expected[2], "reduce", "sum")

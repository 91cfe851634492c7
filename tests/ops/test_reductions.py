"""Reductions (sum, prod, max, min, mean, var, std, argmax, argmin) against NumPy."""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import pytest
from opcheck import ALL_DTYPES, FLOATS, check, np_quiet, random_values, run_both

import tensorjit as tj

REDUCE_AXES: list[tuple[Any, bool]] = [(None, False), (0, False), (-1, True), ((0, 2), False),
                                       ((-1, 0), True), (1, False), ((), False)]


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("name", ["sum", "prod", "max", "min", "mean", "var", "std"])
def test_reductions(name: str, dtype: str) -> None:
    if name in ("var", "std") and dtype == "bool":
        pytest.skip("numpy.var of bool is not a NumPy loop tensorjit mirrors")
    rng = np.random.default_rng(zlib.crc32(f"{name}/{dtype}".encode()))
    if name == "prod":  # values near 1 so that products neither overflow nor vanish
        base = rng.uniform(0.8, 1.25, (3, 4, 5)) if dtype in FLOATS else \
            rng.integers(-2, 3, (3, 4, 5))
        cube = base.astype(dtype)
    else:
        cube = random_values(rng, dtype, (3, 4, 5))
        if dtype in FLOATS:
            cube = (cube / 100).astype(dtype)
    long = random_values(rng, dtype, (1037,))
    if name == "prod":
        long = (rng.uniform(0.99, 1.01, 1037) if dtype in FLOATS else
                rng.choice([-1, 1, 1, 1], 1037)).astype(dtype)
    col = random_values(rng, dtype, (33, 1))
    empty = np.zeros((0, 3), dtype)
    scalar = np.asarray(random_values(rng, dtype, ()))
    tj_fn, np_fn = getattr(tj, name), getattr(np, name)
    calls: list[tuple[int, dict[str, Any]]] = []  # (argument index, kwargs)
    for axis, keep in REDUCE_AXES:
        calls.append((0, {"axis": axis, "keepdims": keep}))
    calls += [(1, {}), (1, {"axis": 0}), (1, {"axis": -1, "keepdims": True}),
              (2, {"axis": 1}), (2, {"axis": 0, "keepdims": True}), (2, {}),
              (4, {}), (4, {"keepdims": True})]
    if name in ("sum", "prod"):
        calls += [(3, {"axis": 0}), (3, {}), (3, {"axis": 1, "keepdims": True})]
    elif name in ("max", "min"):
        calls += [(3, {"axis": 1})]  # reduces the size-3 axis only: defined
    if name in ("var", "std"):
        calls += [(0, {"axis": 1, "ddof": 1}), (1, {"ddof": 1})]
    args = [cube, long, col, empty, scalar]

    def fn(*xs: Any) -> tuple[Any, ...]:
        return tuple(tj_fn(xs[i], **kw) for i, kw in calls)

    expected = [np_quiet(np_fn, args[i], **kw) for i, kw in calls]
    kind = "reduce" if name not in ("max", "min") else "exact"  # ints are always exact
    check(fn, args, expected, kind, f"{name}[{dtype}]")


@pytest.mark.parametrize("dtype", FLOATS)
def test_reductions_nan_inf(dtype: str) -> None:
    """NaN propagates through sum/mean/prod; argmax/argmin point at the first NaN;
    +-Inf sums to NaN; ties pick the first index (max/min: test_reduce_max_min_nan)."""
    x = np.array([[1.0, np.nan, 3.0, -np.inf],
                  [2.0, 5.0, 5.0, 1.0],
                  [np.inf, -np.inf, 0.0, -0.0],
                  [-1.0, -1.0, -1.0, -1.0]], dtype)

    def fn(x: Any) -> tuple[Any, ...]:
        return (tj.sum(x, axis=1), tj.mean(x, axis=1), tj.argmax(x, axis=1),
                tj.argmin(x, axis=1), tj.argmax(x), tj.prod(x, axis=1), tj.sum(x, axis=0))

    exp = [np_quiet(f, x, axis=1) for f in (np.sum, np.mean, np.argmax, np.argmin)]
    exp += [np.argmax(x), np_quiet(np.prod, x, axis=1), np_quiet(np.sum, x, axis=0)]
    check(fn, [x], exp, "exact", f"nan reductions {dtype}", signed_zeros=False)


@pytest.mark.parametrize("dtype", FLOATS)
def test_reduce_max_min_nan(dtype: str) -> None:
    x = np.array([[1.0, np.nan, 3.0], [np.nan, 2.0, 0.0], [4.0, 5.0, np.nan]], dtype)
    check(lambda x: (tj.max(x, axis=1), tj.min(x, axis=1), tj.max(x), tj.min(x, axis=0)),
          [x], [np.max(x, axis=1), np.min(x, axis=1), np.max(x), np.min(x, axis=0)],
          "exact", f"max/min NaN reductions {dtype}")


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_argmax_argmin(dtype: str) -> None:
    rng = np.random.default_rng(9)
    x = random_values(rng, dtype, (7, 33, 5))
    if dtype in FLOATS:  # ties: first index wins
        x[2, 3:9, 1] = x.max() + 1
    v = random_values(rng, dtype, (1037,))
    calls = [(0, None, False), (0, 0, False), (0, 1, False), (0, -1, True), (1, None, False),
             (1, 0, True), (0, None, True)]

    def fn(x: Any, v: Any) -> tuple[Any, ...]:
        xs = (x, v)
        return tuple(f(xs[i], axis=a, keepdims=k) for i, a, k in calls
                     for f in (tj.argmax, tj.argmin))

    exp = [f(((x, v))[i], axis=a, keepdims=k) for i, a, k in calls
           for f in (np.argmax, np.argmin)]
    check(fn, [x, v], exp, "exact", f"argmax/argmin[{dtype}]")
    # the method forms
    check(lambda x: (x.argmax(axis=1), x.argmin()), [x], [x.argmax(axis=1), x.argmin()],
          "exact", "argmax methods")


def test_reduction_methods_and_dtype_argument() -> None:
    rng = np.random.default_rng(2)
    x = random_values(rng, "float32", (6, 7))
    i = random_values(rng, "int32", (6, 7))
    b = random_values(rng, "bool", (6, 7))

    def fn(x: Any, i: Any, b: Any) -> tuple[Any, ...]:
        return (x.sum(axis=0), x.mean(axis=1, keepdims=True), x.max(), x.min(axis=-1),
                x.prod(axis=0), x.var(), x.std(axis=0, ddof=1), i.sum(), i.sum(dtype="int32"),
                b.sum(axis=1), i.mean(), b.max(axis=0), tj.sum(x, dtype="float64"),
                tj.amax(i, axis=1), tj.amin(x, axis=0))

    exp = [x.sum(axis=0), x.mean(axis=1, keepdims=True), x.max(), x.min(axis=-1),
           x.prod(axis=0), x.var(), x.std(axis=0, ddof=1), i.sum(), i.sum(dtype="int32"),
           b.sum(axis=1), i.mean(), b.max(axis=0), np.sum(x, dtype="float64"),
           np.amax(i, axis=1), np.amin(x, axis=0)]
    check(fn, [x, i, b], exp, "reduce", "reduction methods")


def test_sum_of_long_float32_is_accurate() -> None:
    """Pairwise/cascade summation: a long float32 sum stays within ~1e-5 of the exact sum."""
    rng = np.random.default_rng(4)
    x = rng.uniform(0, 1, (1 << 18) + 13).astype(np.float32)
    interp, compiled = run_both(lambda x: (tj.sum(x), tj.mean(x)), [x])
    exact = np.sum(x.astype(np.float64))
    assert compiled[0].dtype == np.float32
    assert abs(float(compiled[0]) - exact) <= 1e-5 * exact
    assert abs(float(compiled[1]) - exact / x.size) <= 1e-5 * exact / x.size

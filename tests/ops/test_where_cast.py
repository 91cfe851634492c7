"""where, clip and dtype casts against NumPy."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from opcheck import ALL_DTYPES, FLOATS, check, make_input

import tensorjit as tj


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_where_and_clip(dtype: str) -> None:
    rng = np.random.default_rng(11)
    x = make_input(rng, dtype, (1037,))
    y = make_input(rng, dtype, (1037,))
    c = rng.random((33, 1)) < 0.5
    m = make_input(rng, dtype, (33, 17))
    row = make_input(rng, dtype, (17,))
    lo, hi = (0, 1) if dtype == "bool" else (-3, 50)

    def fn(x: Any, y: Any, c: Any, m: Any, row: Any) -> tuple[Any, ...]:
        outs = (tj.where(x > y, x, y), tj.where(c, m, row), tj.where(c, m, 0),
                tj.where(x, 1, 2), tj.where(c, 1.5, row))
        if dtype != "bool":
            outs += (tj.clip(x, lo, hi), tj.clip(m, row, None), tj.clip(x, None, hi),
                     x.clip(lo, hi))
        return outs

    exp = [np.where(x > y, x, y), np.where(c, m, row), np.where(c, m, 0), np.where(x, 1, 2),
           np.where(c, 1.5, row)]
    if dtype != "bool":
        exp += [np.clip(x, lo, hi), np.clip(m, row, None), np.clip(x, None, hi),
                x.clip(lo, hi)]
    check(fn, [x, y, c, m, row], exp, "exact", f"where/clip[{dtype}]", signed_zeros=False)


@pytest.mark.parametrize("src", ALL_DTYPES)
def test_cast_in_range(src: str) -> None:
    """astype to every dtype is exact wherever NumPy defines the result."""
    rng = np.random.default_rng(5)
    x = make_input(rng, src, (1037,))
    if src in FLOATS:
        # in range of every integer type: NaN/Inf/out-of-range are tested separately
        x = np.where(np.isfinite(x) & (np.abs(x) < 2e9), x, 1.25).astype(src)
    targets = ALL_DTYPES

    def fn(x: Any) -> tuple[Any, ...]:
        return tuple(x.astype(t) for t in targets) + (tj.astype(x, "float32"),
                                                       tj.cast(x, tj.int64))

    exp = [x.astype(t) for t in targets] + [x.astype(np.float32), x.astype(np.int64)]
    check(fn, [x], exp, "exact", f"cast from {src}")


@pytest.mark.parametrize("dtype", FLOATS)
def test_cast_float_to_int_saturates(dtype: str) -> None:
    """Documented: float->int of NaN gives 0, of +-Inf and out-of-range values the
    nearest representable integer (NumPy leaves these undefined)."""
    x = np.array([np.nan, np.inf, -np.inf, 3e9, -3e9, 1e20, -1e20, 2.7, -2.7, -0.0], dtype)
    i32, i64 = np.iinfo(np.int32), np.iinfo(np.int64)
    want32 = np.array([0, i32.max, i32.min, i32.max, i32.min, i32.max, i32.min, 2, -2, 0],
                      np.int32)
    want64 = np.array([0, i64.max, i64.min, 3_000_000_000, -3_000_000_000, i64.max, i64.min,
                       2, -2, 0], np.int64)
    check(lambda x: (x.astype("int32"), x.astype("int64")), [x], [want32, want64], "exact",
          f"saturating cast {dtype}")

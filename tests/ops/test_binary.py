"""Binary elementwise ops, Python operators and NEP 50 dtype promotion against NumPy."""

from __future__ import annotations

import operator
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from opcheck import (
    ALL_DTYPES,
    FLOATS,
    INTS,
    check,
    make_input,
    np_quiet,
    random_values,
    special_pairs,
)

import tensorjit as tj

BINARY: dict[str, tuple[str, tuple[str, ...]]] = {
    "add": ("exact", ALL_DTYPES),
    "subtract": ("exact", FLOATS + INTS),
    "multiply": ("exact", ALL_DTYPES),
    "divide": ("exact", ALL_DTYPES),
    "true_divide": ("exact", ALL_DTYPES),
    "floor_divide": ("exact", FLOATS + INTS),
    "mod": ("exact", FLOATS + INTS),
    "remainder": ("exact", FLOATS + INTS),
    "power": ("ulp", FLOATS + INTS),
    "maximum": ("exact", ALL_DTYPES),
    "minimum": ("exact", ALL_DTYPES),
    "less": ("exact", ALL_DTYPES),
    "less_equal": ("exact", ALL_DTYPES),
    "greater": ("exact", ALL_DTYPES),
    "greater_equal": ("exact", ALL_DTYPES),
    "equal": ("exact", ALL_DTYPES),
    "not_equal": ("exact", ALL_DTYPES),
    "logical_and": ("exact", ALL_DTYPES),
    "logical_or": ("exact", ALL_DTYPES),
    "bitwise_and": ("exact", INTS + ("bool",)),
    "bitwise_or": ("exact", INTS + ("bool",)),
    "bitwise_xor": ("exact", INTS + ("bool",)),
}
# NumPy does not specify which zero max/min(-0.0, 0.0) returns.
UNSIGNED_ZERO_OPS = {"maximum", "minimum"}
# NaN/Inf (and zero-divisor) operands of these ops are checked by their own tests,
# test_float_max_min_nan and test_float_divmod_nonfinite; test_binary keeps them finite.
NAN_BUG_OPS = {"maximum", "minimum"}
DIVMOD_BUG_OPS = {"floor_divide", "mod", "remainder"}

# (shape a, shape b): same, row, column, scalar, rank extension, size-1 both ways, empty.
BROADCAST_CASES = [
    ((17,), (17,)),
    ((33, 17), (17,)),
    ((33, 1), (33, 17)),
    ((), (1037,)),
    ((1037,), ()),
    ((5, 1, 7), (3, 7)),
    ((4, 1), (1, 9)),
    ((0, 3), (3,)),
    ((), ()),
]


def _binary_inputs(rng: np.random.Generator, name: str, dtype: str
                   ) -> list[tuple[np.ndarray, np.ndarray]]:
    pairs = []
    for sa, sb in BROADCAST_CASES:
        a, b = make_input(rng, dtype, sa), make_input(rng, dtype, sb)
        pairs.append((a, b))
    a, b = special_pairs(dtype)
    if dtype in FLOATS and name in NAN_BUG_OPS:
        keep = ~(np.isnan(a) | np.isnan(b))
        a, b = a[keep], b[keep]
    if dtype in FLOATS and name in DIVMOD_BUG_OPS:
        keep = np.isfinite(a) & np.isfinite(b) & (b != 0)
        a, b = a[keep], b[keep]
    pairs.append((a, b))
    if dtype in FLOATS and name in NAN_BUG_OPS | DIVMOD_BUG_OPS:
        pairs = [(np.where(np.isfinite(a), a, 1.0).astype(dtype),
                  np.where(np.isfinite(b) & (b != 0), b, 1.0).astype(dtype)) for a, b in pairs]
    if name == "power" and dtype in INTS:  # NumPy raises on negative integer exponents
        # (and integer power compiles slowly, ~1 s per output: keep three cases)
        pairs = [(a, np.abs(b) % 5) for a, b in pairs[2:4] + pairs[-1:]]
    if name == "power" and dtype in FLOATS:
        # keep finite results in a range where a few-ULP comparison means something
        with np.errstate(invalid="ignore"):
            pairs = [(np.abs(a) % 8, np.where(np.isfinite(b), b % 9, b)) if a.size > 400
                     else (a, b) for a, b in pairs]
    return pairs


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary(name: str, dtype: str) -> None:
    kind, dtypes = BINARY[name]
    if dtype not in dtypes:
        pytest.skip(f"numpy.{name} has no {dtype} loop that tensorjit mirrors")
    rng = np.random.default_rng(zlib.crc32(f"{name}/{dtype}".encode()))
    pairs = _binary_inputs(rng, name, dtype)
    args = [x for pair in pairs for x in pair]
    tj_fn, np_fn = getattr(tj, name), getattr(np, name)

    def fn(*xs: Any) -> tuple[Any, ...]:
        return tuple(tj_fn(xs[k], xs[k + 1]) for k in range(0, len(xs), 2))

    expected = [np_quiet(np_fn, a, b) for a, b in pairs]
    check(fn, args, expected, kind, f"{name}[{dtype}]",
          signed_zeros=name not in UNSIGNED_ZERO_OPS)


@pytest.mark.parametrize("dtype", FLOATS)
def test_float_max_min_nan(dtype: str) -> None:
    a, b = special_pairs(dtype)
    check(lambda a, b: (tj.maximum(a, b), tj.minimum(a, b)), [a, b],
          [np.maximum(a, b), np.minimum(a, b)], "exact", f"max/min NaN [{dtype}]",
          signed_zeros=False)


@pytest.mark.parametrize("dtype", FLOATS)
def test_float_divmod_nonfinite(dtype: str) -> None:
    a, b = special_pairs(dtype)
    check(lambda a, b: (a // b, a % b), [a, b],
          [np_quiet(np.floor_divide, a, b), np_quiet(np.mod, a, b)], "exact",
          f"divmod non-finite [{dtype}]")


MIXED_PAIRS = [("int32", "float32"), ("int32", "int64"), ("float32", "float64"),
               ("bool", "int32"), ("int64", "float32"), ("bool", "float32"),
               ("int32", "float64")]


@pytest.mark.parametrize("da,db", MIXED_PAIRS)
def test_binary_mixed_dtype_promotion(da: str, db: str) -> None:
    """Strong operands of two dtypes promote as np.result_type says."""
    rng = np.random.default_rng(7)
    a = random_values(rng, da, (33, 1))
    b = random_values(rng, db, (17,))
    ops = [operator.add, operator.mul, np.maximum, np.less, np.true_divide]
    tj_ops = [operator.add, operator.mul, tj.maximum, tj.less, tj.true_divide]

    def fn(a: Any, b: Any) -> tuple[Any, ...]:
        return tuple(op(a, b) for op in tj_ops) + (tj.where(a > 0, a, b),)

    expected = [np_quiet(op, a, b) for op in ops] + [np.where(a > 0, a, b)]
    check(fn, [a, b], expected, "exact", f"{da} op {db}")


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_operators_and_weak_python_scalars(dtype: str) -> None:
    """Python operators and NEP 50: a Python scalar never widens a tensor's dtype within
    its kind (f32 * 2.0 stays f32; i32 + 2 stays i32), but i32 * 1.5 is f64."""
    rng = np.random.default_rng(3)
    x = make_input(rng, dtype, (1037,))
    y = make_input(rng, dtype, (1037,))
    if dtype in FLOATS:  # float // and % of non-finite values: test_float_divmod_nonfinite
        y = np.where(np.isfinite(y), y, 1.0).astype(dtype)
    if dtype == "bool":
        cases: list[Callable[[Any, Any], Any]] = [
            lambda x, y: x + 1, lambda x, y: x * 2.5, lambda x, y: x & y, lambda x, y: x | y,
            lambda x, y: x ^ y, lambda x, y: ~x, lambda x, y: x == y, lambda x, y: x != True,  # noqa: E712
            lambda x, y: x + True, lambda x, y: x / 2,
        ]
    elif dtype in INTS:
        cases = [
            lambda x, y: x + 2, lambda x, y: 3 - x, lambda x, y: x * 2.0, lambda x, y: x / 4,
            lambda x, y: x // 3, lambda x, y: x % 5, lambda x, y: -x, lambda x, y: abs(x),
            lambda x, y: x ** 2, lambda x, y: x < 3, lambda x, y: 2 >= x, lambda x, y: x & 6,
            lambda x, y: x | y, lambda x, y: ~x, lambda x, y: x + True, lambda x, y: x * 1.5,
            lambda x, y: x == y, lambda x, y: (x > 0) & (y > 0),
        ]
    else:
        cases = [
            lambda x, y: x * 2.0, lambda x, y: x + 2, lambda x, y: 1.5 - x, lambda x, y: x / 3,
            lambda x, y: 2.0 / x, lambda x, y: y // 0.75, lambda x, y: y % 2.5, lambda x, y: -x,
            lambda x, y: abs(x), lambda x, y: x ** 2, lambda x, y: x ** 1, lambda x, y: x < y,
            lambda x, y: x >= 0.5, lambda x, y: x == y, lambda x, y: x != 0, lambda x, y: x + True,
            lambda x, y: +x, lambda x, y: x - y,
        ]

    def fn(x: Any, y: Any) -> tuple[Any, ...]:
        return tuple(c(x, y) for c in cases)

    expected = [np_quiet(c, x, y) for c in cases]
    check(fn, [x, y], expected, "exact", f"operators[{dtype}]")


@pytest.mark.parametrize("dtype", FLOATS)
def test_fma_contraction_is_the_documented_difference(dtype: str) -> None:
    """Documented: a*b + c may round once (an FMA) where NumPy rounds twice. Each result
    is NumPy's or the single-rounded one, never anything else."""
    big = np.finfo(dtype).max / 1.5
    x = np.array([1.0, -big, 0.1, 1 / 3] * 9, dtype)
    y = np.array([big, big, 0.7, 3.0 + np.finfo(dtype).eps * 4] * 9, dtype)
    f = tj.compile(tj.trace(lambda x, y: (x - y * 2, x * y + x), x, y))
    got = f(x, y)
    wide = np.longdouble if dtype == "float64" else np.float64
    xw, yw = x.astype(wide), y.astype(wide)
    fused = [np_quiet(lambda: (xw - yw * 2).astype(dtype)),
             np_quiet(lambda: (xw * yw + xw).astype(dtype))]
    unfused = [np_quiet(lambda: x - y * 2), np_quiet(lambda: x * y + x)]
    for g, a, b in zip(got, fused, unfused):
        assert np.all((g == a) | (g == b) | (np.isnan(g) & (np.isnan(a) | np.isnan(b))))


def test_nep50_result_dtypes() -> None:
    f32 = np.ones(3, np.float32)
    i32 = np.ones(3, np.int32)
    b = np.ones(3, bool)
    cases = [(f32, lambda x: x * 2.0), (f32, lambda x: x + 2), (f32, lambda x: x / 7),
             (i32, lambda x: x + 2), (i32, lambda x: x * 1.5), (i32, lambda x: x / 2),
             (b, lambda x: x + 1), (b, lambda x: x * 1.5), (b, lambda x: x & True),
             (i32, lambda x: tj.maximum(x, 2.5)), (f32, lambda x: tj.where(x > 0, x, 0.0)),
             (i32, lambda x: tj.where(x > 0, x, 0)), (f32, lambda x: tj.clip(x, 0, 1))]
    for x, c in cases:
        g = tj.trace(c, x)
        (out,) = tj.interpret(g, [x])
        want = np_quiet(c, x)
        assert out.dtype == want.dtype, (g, want.dtype)
        assert tj.compile(g)(x).dtype == want.dtype


def test_out_of_range_python_int_matches_numpy() -> None:
    """An int32 tensor plus a Python int that does not fit int32: NumPy raises
    OverflowError; comparisons with it are well defined (NumPy 2)."""
    x = np.array([-5, 0, 7, np.iinfo(np.int32).max], np.int32)
    with pytest.raises(OverflowError):
        _ = x + 2**40
    with pytest.raises(OverflowError):
        tj.trace(lambda x: x + 2**40, x)
    check(lambda x: (x < 2**40, x == 2**40, x > -(2**40), x != -(2**40)), [x],
          [x < 2**40, x == 2**40, x > -(2**40), x != -(2**40)], "exact", "cmp huge int")

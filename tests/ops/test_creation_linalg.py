"""Creation functions and linear algebra (matmul, dot, einsum) against NumPy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from opcheck import FLOATS, INTS, check

import tensorjit as tj

# --------------------------------------------------------------------------------------
# creation
# --------------------------------------------------------------------------------------

def test_creation_ops() -> None:
    x = np.ones((3, 4), np.float32)
    i = np.ones((2, 5), np.int32)
    makers: list[Callable[[Any, Any, Any], Any]] = [
        lambda m, x, i: m.zeros((3, 4)),
        lambda m, x, i: m.ones((2, 3), dtype="int32"),
        lambda m, x, i: m.zeros(5, dtype=bool),
        lambda m, x, i: m.full((2, 2), 7),
        lambda m, x, i: m.full((2, 2), 7.5, dtype="float32"),
        lambda m, x, i: m.full((3,), True),
        lambda m, x, i: m.arange(5),
        lambda m, x, i: m.arange(2, 11, 3),
        lambda m, x, i: m.arange(0.0, 1.0, 0.1),
        lambda m, x, i: m.arange(10, 0, -3),
        lambda m, x, i: m.arange(5, dtype="float32"),
        lambda m, x, i: m.arange(1037),
        lambda m, x, i: m.eye(3),
        lambda m, x, i: m.eye(3, 5, k=1),
        lambda m, x, i: m.eye(4, 2, k=-1, dtype="int64"),
        lambda m, x, i: m.zeros_like(x),
        lambda m, x, i: m.ones_like(i),
        lambda m, x, i: m.full_like(i, 2.7),
        lambda m, x, i: m.full_like(x, 2.7),
        lambda m, x, i: m.zeros_like(x, dtype="int64"),
        lambda m, x, i: x + m.arange(4, dtype="float32"),
        lambda m, x, i: i * m.ones((2, 5), dtype="int32"),
    ]

    def fn(x: Any, i: Any) -> tuple[Any, ...]:
        return tuple(mk(tj, x, i) for mk in makers)

    expected = [mk(np, x, i) for mk in makers]
    check(fn, [x, i], expected, "exact", "creation")
    # outside tracing, creation functions are NumPy's
    for mk, e in zip(makers[:15], expected[:15]):
        out = mk(tj, x, i)
        assert isinstance(out, np.ndarray) and out.dtype == e.dtype
        np.testing.assert_array_equal(out, e)


# --------------------------------------------------------------------------------------
# linear algebra
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", FLOATS + INTS)
def test_matmul_dot_einsum(dtype: str) -> None:
    rng = np.random.default_rng(17)

    def r(*shape: int) -> np.ndarray:
        if dtype in INTS:
            return rng.integers(-9, 10, shape).astype(dtype)
        return rng.standard_normal(shape).astype(dtype)

    # Every output uses different inputs, so that no two outputs are the same graph node
    # (that case is test_same_contraction_returned_twice).
    names = ["a", "b", "a2", "a3", "a4", "v", "v2", "v3", "v4", "w", "ba", "bb", "bc", "sq"]
    shapes = {"a": (17, 33), "b": (33, 9), "a2": (17, 33), "a3": (17, 33), "a4": (17, 33),
              "v": (33,), "v2": (33,), "v3": (33,), "v4": (33,), "w": (9,), "ba": (3, 5, 7),
              "bb": (3, 7, 4), "bc": (7, 2), "sq": (16, 16)}
    arrays = {n: r(*shapes[n]) for n in names}
    ops: list[Callable[[Any, dict[str, Any]], Any]] = [
        lambda m, d: m.matmul(d["a"], d["b"]),
        lambda m, d: d["a2"] @ d["b"],
        lambda m, d: m.matmul(d["v"], d["b"]),
        lambda m, d: m.matmul(d["a"], d["v"]),
        lambda m, d: m.matmul(d["v"], d["v2"]),
        lambda m, d: m.matmul(d["ba"], d["bb"]),
        lambda m, d: m.matmul(d["ba"], d["bc"]),
        lambda m, d: m.matmul(d["sq"], d["sq"].T),
        lambda m, d: m.dot(d["a3"], d["b"]),
        lambda m, d: m.dot(d["v3"], d["v"]),
        lambda m, d: m.dot(d["b"], d["w"]),
        lambda m, d: m.einsum("ij,jk->ik", d["a4"], d["b"]),
        lambda m, d: m.einsum("bij,bjk->bik", d["ba"], d["bb"] * 2),
        lambda m, d: m.einsum("ij->ji", d["a"]),
        lambda m, d: m.einsum("i,i->", d["v4"], d["v"]),
        lambda m, d: m.einsum("ij,j->i", d["a2"], d["v2"]),
        lambda m, d: m.einsum("ij->i", d["a3"]),
    ]
    args = [arrays[n] for n in names]

    def fn(*xs: Any) -> tuple[Any, ...]:
        d = dict(zip(names, xs))
        return tuple(op(tj, d) for op in ops)

    expected = [op(np, arrays) for op in ops]
    check(fn, args, expected, "reduce" if dtype in FLOATS else "exact", f"linalg[{dtype}]")


def test_same_contraction_returned_twice() -> None:
    a = np.ones((3, 4), np.float32)
    b = np.ones((4, 2), np.float32)
    f = tj.compile(tj.trace(lambda a, b: (a @ b, tj.dot(a, b)), a, b))
    outs = (np.full((3, 2), np.nan, np.float32), np.full((3, 2), np.nan, np.float32))
    f(a, b, out=outs)
    np.testing.assert_array_equal(outs[0], a @ b)
    np.testing.assert_array_equal(outs[1], a @ b)


def test_matmul_mixed_dtypes_promote() -> None:
    a = np.arange(12, dtype=np.int32).reshape(3, 4)
    b = np.linspace(-1, 1, 8, dtype=np.float32).reshape(4, 2)
    check(lambda a, b: (a @ b, tj.dot(b.T, a.T)), [a, b], [a @ b, np.dot(b.T, a.T)],
          "reduce", "mixed matmul")

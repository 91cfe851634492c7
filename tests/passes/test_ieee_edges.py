"""NaN, Inf and -0.0 go through the optimizer unchanged without fast_math.

Each expression below is one that a rule matches (or must refuse to match); it is
compiled with and without the pass pipeline and run on every special value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from passes_off import passes_disabled

import tensorjit as tj
from tensorjit.passes.pipeline import optimize

SPECIALS = [0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 1.0, -1.0, 5e-324, -1e-310,
            1.7e308, 3.0, 0.1]

EXPRESSIONS: dict[str, Callable[[Any], Any]] = {
    "x*1": lambda x: x * 1.0,
    "1*x": lambda x: 1.0 * x,
    "x+0": lambda x: x + 0.0,
    "x+(-0)": lambda x: x + -0.0,
    "x-0": lambda x: x - 0.0,
    "x-(-0)": lambda x: x - -0.0,
    "0-x": lambda x: 0.0 - x,
    "(-0)-x": lambda x: -0.0 - x,
    "--x": lambda x: tj.negative(tj.negative(x)),
    "x/1": lambda x: x / 1.0,
    "x*0": lambda x: x * 0.0,
    "x-x": lambda x: x - x,
    "x/x": lambda x: x / x,
    "x**2": lambda x: tj.power(x, tj.full((), 2.0, dtype=x.dtype)),
    "x**-1": lambda x: tj.power(x, tj.full((), -1.0, dtype=x.dtype)),
    "x**0.5": lambda x: x ** 0.5,
    "x**0": lambda x: tj.power(x, tj.full((), 0.0, dtype=x.dtype)),
    "x/4": lambda x: x / 4.0,
    "x/3": lambda x: x / 3.0,
    "x/2**-1000": lambda x: x / 2.0 ** -1000,
    "max(x,x)": lambda x: tj.maximum(x, x),
    "max(x,-x)": lambda x: tj.maximum(x, -x),
    "x==x": lambda x: x == x,
    "where(x>0,x,x)": lambda x: tj.where(x > 0, x, x),
    "abs(-x)": lambda x: tj.abs(-x),
    "x.T.T+x": lambda x: x.T.T + x,
    "exp(bcast)": lambda x: tj.exp(tj.broadcast_to(x, (3,) + x.shape)),
    "f32(f64(x))": lambda x: x.astype("float64").astype(x.dtype),
}


def bits(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind != "f":
        return a
    view = {4: np.uint32, 8: np.uint64}[a.dtype.itemsize]
    return np.where(np.isnan(a), 0, a.view(view))  # NaN sign and payload are unspecified


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(EXPRESSIONS))
def test_special_values_unchanged(name: str, dtype: type) -> None:
    with np.errstate(all="ignore"):
        x = np.array(SPECIALS, dtype=dtype).reshape(1, -1)
    g = tj.trace(EXPRESSIONS[name], x)
    with np.errstate(all="ignore"):
        assert np.array_equal(bits(tj.interpret(optimize(g), [x])[0]),
                              bits(tj.interpret(g, [x])[0])), name
    optimized = tj.compile(g, cache=False)
    with passes_disabled():
        plain = tj.compile(g, cache=False)
    assert np.array_equal(bits(optimized(x)), bits(plain(x))), \
        f"{name}: {optimized(x)} != {plain(x)}\n{optimized.ir('optimized')}"


def test_fast_math_is_what_changes_them() -> None:
    """The same rules with fast_math: x+0 -> x keeps -0.0 (IEEE gives +0.0), x*0 -> 0
    turns NaN and Inf into 0 (IEEE gives NaN)."""
    x = np.array([[-0.0, np.nan, np.inf]], np.float32)
    g = tj.trace(lambda x: (x + 0.0, x * 0.0), x)
    exact = tj.compile(g, cache=False)(x)
    fast = tj.compile(g, fast_math=True, cache=False)(x)
    assert np.signbit(exact[0][0, 0]) == np.False_ and np.signbit(fast[0][0, 0])
    assert np.isnan(exact[1][0, 1:]).all() and (fast[1] == 0).all()
    assert "mul" not in tj.compile(g, fast_math=True, cache=False).ir("optimized")

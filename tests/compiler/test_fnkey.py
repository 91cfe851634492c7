"""Function keys: new function objects of the same code share traces; anything that
could make them trace differently gives a different key or none."""

from __future__ import annotations

import types
from typing import Any

import numpy as np

import tensorjit as tj
from tensorjit.compiler.frontend.fnkey import function_key

SCALE = 2.0
TABLE = np.arange(3.0)


def _make(n: int, scale: Any = 1.0):  # noqa: ANN202
    def f(x):  # noqa: ANN001, ANN202
        return tj.sum(x[:n] * scale)
    return f


def test_same_code_and_closure_values_share_a_key() -> None:
    assert function_key(_make(2)) == function_key(_make(2))
    assert function_key(_make(2)) != function_key(_make(3))
    assert function_key(_make(2, 1.0)) != function_key(_make(2, 1))  # int vs float
    assert function_key(_make(2, (1, "a"))) == function_key(_make(2, (1, "a")))


def test_mutable_or_unknown_state_has_no_key() -> None:
    assert function_key(_make(2, np.ones(2))) is None  # an array in the closure
    assert function_key(_make(2, [1.0])) is None
    assert function_key(np.sin) is None  # not a Python function
    assert function_key(lambda x: x * TABLE) is None  # a global array

    def empty_cell():  # noqa: ANN202
        return later  # noqa: F821
    assert function_key(empty_cell) is None
    later = 1  # noqa: F841


def test_globals_and_defaults_are_part_of_the_key() -> None:
    def g(x, k=1):  # noqa: ANN001, ANN202
        return x * SCALE * k

    def rebind(fn: types.FunctionType, **glob: Any) -> types.FunctionType:
        return types.FunctionType(fn.__code__, {**fn.__globals__, **glob}, fn.__name__,
                                  fn.__defaults__, fn.__closure__)

    assert function_key(g) == function_key(rebind(g))
    assert function_key(g) != function_key(rebind(g, SCALE=3.0))
    other = rebind(g)
    other.__defaults__ = (2,)
    assert function_key(g) != function_key(other)


def test_new_function_objects_reuse_the_compiled_gradient() -> None:
    x = np.linspace(0.0, 1.0, 5)
    first = tj.grad(_make(4, 3.0))
    np.testing.assert_allclose(first(x), [3, 3, 3, 3, 0])
    built = first._program.compiled((x,))[0]  # noqa: SLF001
    again = tj.grad(_make(4, 3.0))
    assert again._program.compiled((x,))[0] is built  # noqa: SLF001
    other = tj.grad(_make(4, 5.0))
    np.testing.assert_allclose(other(x), [5, 5, 5, 5, 0])
    assert other._program.compiled((x,))[0] is not built  # noqa: SLF001

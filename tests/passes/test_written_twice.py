"""Nothing computed twice that a user wrote twice, as the optimized IR shows."""

from __future__ import annotations

from collections import Counter

import numpy as np

import tensorjit as tj


def ops(text: str) -> Counter[str]:
    out: Counter[str] = Counter()
    for line in text.splitlines():
        if " = " in line:
            out[line.split(" = ")[1].split("(")[0]] += 1
    return out


def optimized(fn, *args) -> str:  # type: ignore[no-untyped-def]
    return tj.compile(tj.trace(fn, *args), cache=False).ir("optimized")


def test_the_same_expression_twice_is_one_node() -> None:
    x = np.zeros((8, 16), np.float32)
    y = np.zeros((8, 16), np.float32)

    def fn(x, y):  # type: ignore[no-untyped-def]
        a = tj.exp(x * y + 1.0) / tj.sum(tj.exp(x * y + 1.0), axis=-1, keepdims=True)
        b = tj.exp(y * x + 1.0)  # operands swapped: the same product
        c = tj.exp(1.0 + x * y)  # constant on the other side
        return a + b + c

    counts = ops(optimized(fn, x, y))
    assert counts["exp"] == 1 and counts["mul"] == 1 and counts["reduce_sum"] == 1


def test_shape_spellings_of_one_value_are_one_node() -> None:
    x = np.zeros((4, 6), np.float32)

    def fn(x):  # type: ignore[no-untyped-def]
        a = tj.tanh(x.T.T)  # a transpose pair is no transpose
        b = tj.tanh(x.reshape(24).reshape(4, 6))  # nor a reshape pair
        c = tj.tanh(x - 0.0)  # x - 0.0 is x for every x, -0.0 included
        return a * b * c

    counts = ops(optimized(fn, x))
    assert counts["tanh"] == 1 and "transpose" not in counts and "reshape" not in counts


def test_mean_written_twice_and_variance_share_their_sums() -> None:
    x = np.zeros((32, 64), np.float32)

    def fn(x):  # type: ignore[no-untyped-def]
        m1 = tj.mean(x, axis=1, keepdims=True)
        m2 = x.mean(axis=1, keepdims=True)
        return (x - m1) / tj.sqrt(tj.var(x, axis=1, keepdims=True) + 1e-5) + m2

    counts = ops(optimized(fn, x))
    assert counts["reduce_sum"] == 2  # one for the mean, one for the variance

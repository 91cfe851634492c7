"""Symbolic dims: one compiled function, many sizes (0, 1, odd, long), against NumPy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from opcheck import assert_same

import tensorjit as tj


def test_symbolic_batch_dim() -> None:
    def fn(x: Any, w: Any) -> tuple[Any, ...]:
        h = tj.tanh(x * w + 1.0)
        return h, tj.sum(h, axis=1), tj.max(x, axis=-1, keepdims=True), x[:, ::2] * 2, x.T

    g = tj.trace(fn, tj.TensorSpec(("batch", 17), "float32"), np.zeros(17, np.float32))
    f = tj.compile(g)
    rng = np.random.default_rng(31)
    w = rng.standard_normal(17).astype(np.float32)
    for n in (1, 0, 5, 1031):
        x = rng.standard_normal((n, 17)).astype(np.float32)
        h = np.tanh(x * w + np.float32(1.0))
        expected = [h, np.sum(h, axis=1), np.max(x, axis=-1, keepdims=True), x[:, ::2] * 2,
                    x.T]
        kinds = ["ulp", "reduce", "exact", "exact", "exact"]
        interp = tj.interpret(g, [x, w])
        compiled = f(x, w)
        for k, (e, kind) in enumerate(zip(expected, kinds)):
            assert_same(interp[k], e, kind, f"symbolic n={n} output {k} [interpreter]")
            assert_same(compiled[k], e, kind, f"symbolic n={n} output {k} [compiled]")


SYMBOLIC_CASES: dict[str, Callable[[Any], Any]] = {
    "concat": lambda x: tj.concatenate([x, x * 2], axis=1),
    "pad": lambda x: tj.pad(x, ((0, 0), (1, 2))),
    "flip": lambda x: tj.flip(x, 1),
    "expand": lambda x: tj.expand_dims(x, 1) + tj.zeros((1, 3, 1), "float32"),
    "reshape": lambda x: x.reshape(-1, 2, 3),
    "take": lambda x: tj.take(x, np.array([0, 5, 2]), axis=1),
    "argmax": lambda x: tj.argmax(x, axis=1),
    "stack": lambda x: tj.stack([x, x], axis=1),
    "split": lambda x: tj.split(x, 2, axis=1)[1],
    "matmul": lambda x: x @ np.arange(12, dtype=np.float32).reshape(6, 2),
    "softmax": lambda x: tj.nn.softmax(x, dim=-1),
    "column broadcast": lambda x: x[:, :1] + x,
    "sum over batch": lambda x: x.sum(0),
    "int index": lambda x: x[:, 2],
}


def test_symbolic_batch_dim_movement() -> None:
    names = sorted(SYMBOLIC_CASES)
    g = tj.trace(lambda x: tuple(SYMBOLIC_CASES[k](x) for k in names),
                 tj.TensorSpec(("n", 6), "float32"))
    f = tj.compile(g)
    rng = np.random.default_rng(32)
    for n in (0, 1, 7):
        x = rng.standard_normal((n, 6)).astype(np.float32)
        interp, compiled = tj.interpret(g, [x]), f(x)
        for k, name in enumerate(names):
            want = np.asarray(SYMBOLIC_CASES[name](x))
            kind = "reduce" if name in ("matmul", "softmax", "sum over batch") else "exact"
            assert_same(interp[k], want, kind, f"{name} n={n} [interpreter]")
            assert_same(compiled[k], want, kind, f"{name} n={n} [compiled]")

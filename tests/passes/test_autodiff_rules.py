"""Every VJP rule against central differences in float64 (compiled and interpreted), the
coverage of the rule table, and the documented subgradient conventions at kinks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

import tensorjit as tj
from tensorjit.ir.ops import all_ops
from tensorjit.passes.autodiff import NON_DIFFERENTIABLE, VJP_RULES
from tensorjit.passes.autodiff.rules import uncovered

RNG = np.random.default_rng(1234)


def numeric_grad(f: Callable[..., float], args: list[np.ndarray], k: int,
                 eps: float = 1e-6) -> np.ndarray:
    """Central differences of ``f`` with respect to ``args[k]``."""
    x = args[k]
    out = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + eps
        hi = f(*args)
        x[idx] = old - eps
        lo = f(*args)
        x[idx] = old
        out[idx] = (hi - lo) / (2 * eps)
    return out


def check_grad(fn: Callable[..., Any], args: Sequence[Any], rtol: float = 1e-5,
               atol: float = 1e-7, eps: float = 1e-6) -> None:
    """d sum(fn(*args) * w) / d (float args), for random weights w: compiled, interpreted
    and by central differences on the reference interpreter."""
    args = [np.array(a) for a in args]
    floats = tuple(k for k, a in enumerate(args) if a.dtype.kind == "f")
    forward = tj.trace(fn, *args)
    shape = tj.interpret(forward, args)[0].shape
    w = RNG.uniform(0.5, 1.5, size=shape)

    def loss(*a: Any) -> Any:
        return tj.sum(fn(*a) * w)

    loss_graph = tj.trace(loss, *args)

    def loss_value(*a: np.ndarray) -> float:
        return float(tj.interpret(loss_graph, list(a))[0])

    compiled = tj.grad(loss, argnums=floats)(*args)
    interpreted = tj.interpret(tj.trace(tj.grad(loss, argnums=floats), *args), args)
    for j, k in enumerate(floats):
        want = numeric_grad(loss_value, [a.copy() for a in args], k, eps)
        scale = max(1.0, float(np.max(np.abs(want))))
        for got, how in ((compiled[j], "compiled"), (interpreted[j], "interpreted")):
            assert got.shape == args[k].shape and got.dtype == args[k].dtype, how
            np.testing.assert_allclose(got, want, rtol=rtol, atol=atol * scale,
                                       err_msg=f"argument {k}, {how}")


def u(*shape: int, lo: float = -2.0, hi: float = 2.0) -> np.ndarray:
    return RNG.uniform(lo, hi, size=shape)


def away(*shape: int, gap: float = 0.2) -> np.ndarray:
    """Values whose magnitude is at least ``gap`` (away from kinks at 0)."""
    x = u(*shape)
    return np.where(x >= 0, x + gap, x - gap)


def distinct(*shape: int) -> np.ndarray:
    """All different, spaced by >= 0.05 (no ties for max/min)."""
    n = int(np.prod(shape))
    return (RNG.permutation(n) * 0.05 - n * 0.025).reshape(shape)


# name -> list of (function, arguments); names are op names of the rule table, and each
# case exercises that op (several shapes and broadcasts where the op allows them).
Case = tuple[Callable[..., Any], list[Any]] | tuple[Callable[..., Any], list[Any], dict]
CASES: dict[str, list[Case]] = {
    "neg": [(lambda x: -x, [u(3, 4)])],
    "abs": [(tj.abs, [away(5)])],
    "exp": [(tj.exp, [u(2, 3)])],
    "expm1": [(tj.expm1, [u(4)])],
    "log": [(tj.log, [u(2, 3, lo=0.2)])],
    "log1p": [(tj.log1p, [u(5, lo=-0.5)])],
    "log2": [(tj.log2, [u(5, lo=0.3)])],
    "sqrt": [(tj.sqrt, [u(3, 2, lo=0.2)])],
    "sin": [(tj.sin, [u(6)])],
    "cos": [(tj.cos, [u(6)])],
    "tan": [(tj.tan, [u(6, lo=-1.2, hi=1.2)])],
    "tanh": [(tj.tanh, [u(2, 5)])],
    "arctan": [(tj.arctan, [u(7, lo=-4, hi=4)])],
    "sigmoid": [(tj.nn.sigmoid, [u(9, lo=-8, hi=8)])],
    "erf": [(tj.nn.erf, [u(5)])],
    # through float32: differences of float32 values need a wide step and tolerance
    "cast": [(lambda x: tj.astype(tj.astype(x, "float32"), "float64") * 2.0, [u(4)],
              {"eps": 1e-3, "rtol": 1e-3}),
             (lambda x, i: x * tj.astype(i, "float64"), [u(3), np.array([1, 2, 3])])],
    "add": [(lambda a, b: a + b, [u(3, 4), u(4)]), (lambda a, b: a + b, [u(2, 1), u(1, 3)])],
    "sub": [(lambda a, b: a - b, [u(3, 4), u(3, 1)]), (lambda a: 1.5 - a, [u(3)])],
    "mul": [(lambda a, b: a * b, [u(3, 4), u(4)]), (lambda a: a * a, [u(2, 3)])],
    "div": [(lambda a, b: a / b, [u(3, 4), away(3, 1)]), (lambda b: 2.0 / b, [away(4)])],
    "mod": [(lambda a, b: tj.mod(a, b), [np.array([2.3, -1.7, 5.25, 0.4]),
                                         np.array([1.1, 0.9, -2.0, 1.5])])],
    "pow": [(lambda a, b: a ** b, [u(3, 4, lo=0.3), u(4, lo=-1.5, hi=2.5)]),
            (lambda a: a ** 3.5, [u(3, lo=0.2)]), (lambda b: 2.0 ** b, [u(3)])],
    "maximum": [(tj.maximum, [distinct(3, 4), distinct(3, 4)[::-1].copy()]),
                (lambda a: tj.maximum(a, 0.1), [away(6)])],
    "minimum": [(tj.minimum, [distinct(3, 4), distinct(4) + 0.0123]),
                (lambda a: tj.clip(a, -0.5, 0.5), [np.array([-1.0, -0.3, 0.2, 0.9])])],
    "select": [(lambda a, b: tj.where(a > b, a * 2.0, b * b), [distinct(2, 3), u(3) + 0.013])],
    "reduce_sum": [(lambda a: tj.sum(a, axis=1), [u(3, 4)]),
                   (lambda a: tj.mean(a, axis=(0, 2), keepdims=True), [u(2, 3, 4)]),
                   (lambda a: tj.var(a, axis=0), [u(5, 2)])],
    "reduce_prod": [(lambda a: tj.prod(a, axis=1), [away(3, 4)]),
                    (lambda a: tj.prod(a, axis=0),
                     [np.array([[0.0, 0.0, 1.5], [2.0, 0.0, -1.0], [0.5, 3.0, 2.0]])])],
    "reduce_max": [(lambda a: tj.max(a, axis=0), [distinct(4, 3)]),
                   (lambda a: tj.max(a), [distinct(2, 3)])],
    "reduce_min": [(lambda a: tj.min(a, axis=(0, 1)), [distinct(2, 3, 2)])],
    "reshape": [(lambda a: tj.reshape(a, (4, 3)).T, [u(2, 6)])],
    "transpose": [(lambda a: tj.transpose(a, (2, 0, 1)) * 1.0, [u(2, 3, 4)])],
    "broadcast_to": [(lambda a: tj.broadcast_to(a, (2, 3, 4)), [u(3, 1)]),
                     (lambda a: tj.broadcast_to(a, (3, 2)), [u(2)])],
    "slice": [(lambda a: a[1:4], [u(6)]), (lambda a: a[::2, ::-1], [u(5, 4)]),
              (lambda a: a[5:0:-3], [u(7)]), (lambda a: a[1] * a[2, 0], [u(3, 2)]),
              (lambda a: tj.flip(a, 0), [u(4)])],
    "pad": [(lambda a: tj.pad(a, ((1, 2), (0, 3)), constant_values=1.5), [u(2, 3)])],
    "concat": [(lambda a, b: tj.concatenate([a, b, a], axis=1), [u(2, 3), u(2, 1)]),
               (lambda a, b: tj.stack([a, b]), [u(3), u(3)])],
    "take": [(lambda a, i: tj.take(a, i, axis=0), [u(4, 3), np.array([[3, 0], [0, -1]])]),
             (lambda a, i: tj.take(a, i, axis=1), [u(2, 3), np.array([2, 2, 0, 7])])],
    "window": [
        (lambda x, w: tj.nn.conv2d(x, w, padding=1), [u(2, 2, 4, 5), u(3, 2, 3, 3)]),
        (lambda x, w: tj.nn.conv2d(x, w, stride=2, dilation=(1, 2)),
         [u(1, 1, 6, 7), u(2, 1, 2, 2)]),
        (lambda x: tj.nn.max_pool2d(x, 2), [distinct(1, 2, 4, 4)]),
        (lambda x: tj.nn.avg_pool2d(x, 3, stride=2, padding=1), [u(1, 2, 5, 5)])],
    "matmul": [(lambda a, b: a @ b, [u(3, 4), u(4, 2)]), (lambda a, b: a @ b, [u(4), u(2, 4, 3)]),
               (lambda a, b: tj.einsum("ij,kj->ik", a, b), [u(2, 3), u(4, 3)])],
}


def test_every_op_has_a_rule_or_is_declared_non_differentiable() -> None:
    assert uncovered(list(all_ops())) == []
    assert not set(VJP_RULES) & set(NON_DIFFERENTIABLE)
    assert set(VJP_RULES) <= set(all_ops()) and set(NON_DIFFERENTIABLE) <= set(all_ops())


def test_every_rule_is_checked_here() -> None:
    assert set(CASES) == set(VJP_RULES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_rule_against_central_differences(name: str) -> None:
    for case in CASES[name]:
        check_grad(case[0], case[1], **(case[2] if len(case) > 2 else {}))  # type: ignore[misc]


# --- subgradient conventions (JAX's, except abs: see passes/autodiff/rules.py) --------
def _g(fn: Callable[..., Any], *args: Any, argnums: Any = 0) -> Any:
    return tj.grad(lambda *a: tj.sum(fn(*a)), argnums=argnums)(*[np.asarray(a) for a in args])


def test_relu_at_zero_is_zero_and_nan_propagates() -> None:
    x = np.array([-1.0, 0.0, 2.0, -0.0])
    np.testing.assert_array_equal(_g(tj.nn.relu, x), [0.0, 0.0, 1.0, 0.0])
    y = tj.jit(tj.nn.relu)(np.array([np.nan, -np.inf, np.inf, -2.0]))
    np.testing.assert_array_equal(y, [np.nan, 0.0, np.inf, 0.0])


def test_maximum_and_minimum_split_ties() -> None:
    a = np.array([1.0, 2.0, 3.0])
    b = np.array([1.0, 5.0, 0.0])
    ga, gb = _g(tj.maximum, a, b, argnums=(0, 1))
    np.testing.assert_array_equal(ga, [0.5, 0.0, 1.0])
    np.testing.assert_array_equal(gb, [0.5, 1.0, 0.0])
    ga, gb = _g(tj.minimum, a, b, argnums=(0, 1))
    np.testing.assert_array_equal(ga, [0.5, 1.0, 0.0])
    np.testing.assert_array_equal(gb, [0.5, 0.0, 1.0])


def test_clip_boundary_gets_half_as_in_jax() -> None:
    x = np.array([-1.0, 0.0, 0.5, 1.0, 2.0])
    np.testing.assert_array_equal(_g(lambda x: tj.clip(x, 0.0, 1.0), x),
                                  [0.0, 0.5, 1.0, 0.5, 0.0])


def test_abs_sign_floor_ceil_at_kinks() -> None:
    x = np.array([-2.0, 0.0, 3.0])
    np.testing.assert_array_equal(_g(tj.abs, x), [-1.0, 0.0, 1.0])
    for fn in (tj.sign, tj.floor, tj.ceil, lambda x: x // 0.7):
        np.testing.assert_array_equal(_g(lambda x, f=fn: f(x) * x, x), fn(x))


def test_max_reduction_splits_among_ties() -> None:
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    np.testing.assert_allclose(_g(lambda x: tj.max(x, axis=1), x),
                               [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    np.testing.assert_allclose(_g(lambda x: tj.min(x), x), [[1, 0, 0], [0, 0, 0]])


def test_pow_and_prod_at_zero() -> None:
    np.testing.assert_array_equal(_g(lambda a: a ** 0.0, np.array([0.0, 2.0])), [0.0, 0.0])
    np.testing.assert_array_equal(
        _g(lambda b: np.float64(0.0) ** b, np.array([1.5])), [0.0])
    x = np.array([0.0, 2.0, 3.0])
    np.testing.assert_array_equal(_g(tj.prod, x), [6.0, 0.0, 0.0])
    np.testing.assert_array_equal(_g(tj.prod, np.array([0.0, 0.0, 3.0])), [0.0, 0.0, 0.0])


def test_float32_gradients_stay_float32() -> None:
    x = u(3, 4).astype(np.float32)
    g = tj.grad(lambda x: tj.sum(tj.nn.softmax(x, axis=-1) ** 2))(x)
    assert g.dtype == np.float32
    g64 = tj.grad(lambda x: tj.sum(tj.nn.softmax(x, axis=-1) ** 2))(x.astype(np.float64))
    np.testing.assert_allclose(g, g64, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "logsumexp", "sigmoid",
                                  "softplus", "tanh", "logsigmoid"])
def test_stable_composites_have_finite_gradients_at_extremes(name: str) -> None:
    x = np.array([[-1000.0, 0.0, 1000.0], [50.0, -50.0, 1e-3]])
    fn = getattr(tj.nn, name)
    call = (lambda x: fn(x, dim=-1)) if name in ("softmax", "log_softmax", "logsumexp") \
        else fn
    g = _g(call, x)
    assert np.all(np.isfinite(g)), g
    x2 = u(2, 3)
    check_grad(call, [x2])

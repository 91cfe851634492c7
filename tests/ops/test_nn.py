"""tj.nn against NumPy formulas (and torch when it is installed)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from opcheck import COMPOSITE_TOL, FLOATS, REDUCE_TOL, np_quiet, run_both

import tensorjit as tj


def _softplus_np(x: np.ndarray, beta: float = 1.0, threshold: float = 20.0) -> np.ndarray:
    bx = beta * x
    soft = (np.maximum(bx, 0) + np.log1p(np.exp(-np.abs(bx)))) / beta
    return np.where(bx > threshold, x, soft)


def _softmax_np(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _erf_np(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf, otypes=[np.float64])(x)


SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946

# name -> (tj call, NumPy formula computed in float64)
NN_ELEMENTWISE: dict[str, tuple[Callable[[Any], Any], Callable[[np.ndarray], np.ndarray]]] = {
    "relu": (lambda x: tj.nn.relu(x), lambda x: np.maximum(x, 0)),
    "leaky_relu": (lambda x: tj.nn.leaky_relu(x, 0.1), lambda x: np.where(x > 0, x, 0.1 * x)),
    "elu": (lambda x: tj.nn.elu(x, alpha=0.7), lambda x: np.where(x > 0, x, 0.7 * np.expm1(x))),
    "selu": (lambda x: tj.nn.selu(x),
             lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(x))),
    "celu": (lambda x: tj.nn.celu(x, alpha=1.5),
             lambda x: np.maximum(x, 0) + np.minimum(1.5 * np.expm1(x / 1.5), 0)),
    "gelu": (lambda x: tj.nn.gelu(x), lambda x: 0.5 * x * (1 + _erf_np(x / np.sqrt(2)))),
    "gelu_tanh": (lambda x: tj.nn.gelu(x, approximate="tanh"),
                  lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) *
                                                   (x + 0.044715 * x ** 3)))),
    "sigmoid": (lambda x: tj.nn.sigmoid(x), lambda x: 1 / (1 + np.exp(-x))),
    "hardsigmoid": (lambda x: tj.nn.hardsigmoid(x), lambda x: np.clip(x / 6 + 0.5, 0, 1)),
    "silu": (lambda x: tj.nn.silu(x), lambda x: x / (1 + np.exp(-x))),
    "mish": (lambda x: tj.nn.mish(x), lambda x: x * np.tanh(_softplus_np(x))),
    "softplus": (lambda x: tj.nn.softplus(x), _softplus_np),
    "softplus_beta": (lambda x: tj.nn.softplus(x, beta=2.0, threshold=10.0),
                      lambda x: _softplus_np(x, 2.0, 10.0)),
    "softsign": (lambda x: tj.nn.softsign(x), lambda x: x / (1 + np.abs(x))),
    "hardtanh": (lambda x: tj.nn.hardtanh(x, -2.0, 3.0), lambda x: np.clip(x, -2.0, 3.0)),
    "tanhshrink": (lambda x: tj.nn.tanhshrink(x), lambda x: x - np.tanh(x)),
    "logsigmoid": (lambda x: tj.nn.logsigmoid(x), lambda x: -_softplus_np(-x)),
}


def _nn_input(dtype: str) -> np.ndarray:
    rng = np.random.default_rng(21)
    x = np.concatenate([np.linspace(-30, 30, 1001), rng.standard_normal(64) * 3,
                        [0.0, -0.0, 1e-30, -1e-30, 50.0, -50.0, 100.0, -100.0, np.inf,
                         -np.inf, np.nan]])
    return x.astype(dtype)


def _nn_close(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    """Composite functions: relative tolerance, plus an absolute one scaled by the
    magnitudes that cancel inside (x - tanh(x), x * sigmoid(x), ...)."""
    assert actual.dtype == expected.dtype and actual.shape == expected.shape, what
    rtol, atol = COMPOSITE_TOL[str(expected.dtype)]
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True,
                               err_msg=what)


@pytest.mark.parametrize("dtype", FLOATS)
def test_nn_activations(dtype: str) -> None:
    x = _nn_input(dtype)
    names = sorted(NN_ELEMENTWISE)
    interp, compiled = run_both(lambda x: tuple(NN_ELEMENTWISE[n][0](x) for n in names), [x])
    for n, i, c in zip(names, interp, compiled):
        want = np_quiet(NN_ELEMENTWISE[n][1], x.astype(np.float64)).astype(dtype)
        _nn_close(i, want, f"nn.{n}[{dtype}] interpreter")
        _nn_close(c, want, f"nn.{n}[{dtype}] compiled")
        # outside tracing tj.nn falls back to NumPy with the same meaning
        _nn_close(np.asarray(np_quiet(NN_ELEMENTWISE[n][0], x)).astype(dtype), want,
                  f"nn.{n}[{dtype}] numpy fallback")


@pytest.mark.parametrize("dtype", FLOATS)
def test_nn_softmax_family(dtype: str) -> None:
    rng = np.random.default_rng(22)
    x = (rng.standard_normal((7, 33, 5)) * 4).astype(dtype)
    row = (rng.standard_normal((3, 1037)) * 10).astype(dtype)
    # softmax of a row holding +inf is NaN somewhere in NumPy, PyTorch and tj, but not in
    # the same places; -inf entries and logsumexp of +inf are well defined.
    inf_row = np.array([[1.0, -np.inf, 2.0], [-np.inf, 0.0, 1.0], [-np.inf, -np.inf, 3.0]],
                       dtype)

    def fn(x: Any, row: Any, inf_row: Any) -> tuple[Any, ...]:
        return (tj.nn.softmax(x, dim=-1), tj.nn.softmax(x, axis=1), tj.nn.softmax(row, dim=1),
                tj.nn.log_softmax(x, dim=0), tj.nn.log_softmax(row, axis=-1),
                tj.nn.logsumexp(x, dim=1), tj.nn.logsumexp(x, dim=(0, 2), keepdim=True),
                tj.nn.logsumexp(row), tj.nn.softmax(inf_row, dim=1),
                tj.nn.logsumexp(inf_row, dim=1), tj.nn.logsumexp(-inf_row, dim=1))

    x64, r64, i64 = (a.astype(np.float64) for a in (x, row, inf_row))

    def lse(a: np.ndarray, axis: Any, keep: bool = False) -> np.ndarray:
        m = np.max(a, axis=axis, keepdims=True)
        m = np.where(np.isfinite(m), m, 0)
        out = np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True)) + m
        return out if keep else np.squeeze(out, axis=axis)

    want = [_softmax_np(x64, -1), _softmax_np(x64, 1), _softmax_np(r64, 1),
            x64 - lse(x64, 0, True), r64 - lse(r64, -1, True), lse(x64, 1),
            lse(x64, (0, 2), True), lse(r64, (0, 1)),
            np_quiet(_softmax_np, i64, 1), np_quiet(lse, i64, 1), np_quiet(lse, -i64, 1)]
    interp, compiled = run_both(fn, [x, row, inf_row])
    for k, w in enumerate(want):
        w = np.asarray(w).astype(dtype)
        _nn_close(interp[k], w, f"softmax family {k} interpreter")
        _nn_close(compiled[k], w, f"softmax family {k} compiled")


@pytest.mark.parametrize("dtype", FLOATS)
def test_nn_linear_layer_norm_mse(dtype: str) -> None:
    rng = np.random.default_rng(23)
    x = rng.standard_normal((8, 33)).astype(dtype)
    w = rng.standard_normal((5, 33)).astype(dtype)
    b = rng.standard_normal(5).astype(dtype)
    g = rng.standard_normal(33).astype(dtype)
    t = rng.standard_normal((8, 33)).astype(dtype)

    def fn(x: Any, w: Any, b: Any, g: Any, t: Any) -> tuple[Any, ...]:
        return (tj.nn.linear(x, w, b), tj.nn.linear(x, w), tj.nn.layer_norm(x, (33,)),
                tj.nn.layer_norm(x, 33, weight=g, bias=t[0], eps=1e-3),
                tj.nn.mse_loss(x, t), tj.nn.mse_loss(x, t, reduction="sum"),
                tj.nn.mse_loss(x, t, reduction="none"))

    x64, w64, b64, g64, t64 = (a.astype(np.float64) for a in (x, w, b, g, t))

    def ln(a: np.ndarray, eps: float) -> np.ndarray:
        mu = a.mean(axis=-1, keepdims=True)
        return (a - mu) / np.sqrt(a.var(axis=-1, keepdims=True) + eps)

    want = [x64 @ w64.T + b64, x64 @ w64.T, ln(x64, 1e-5), ln(x64, 1e-3) * g64 + t64[0],
            np.mean((x64 - t64) ** 2), np.sum((x64 - t64) ** 2), (x64 - t64) ** 2]
    interp, compiled = run_both(fn, [x, w, b, g, t])
    for k, wnt in enumerate(want):
        wnt = np.asarray(wnt).astype(dtype)
        rtol, atol = REDUCE_TOL[dtype]
        for got, how in ((interp[k], "interpreter"), (compiled[k], "compiled")):
            assert got.dtype == wnt.dtype and got.shape == wnt.shape, (k, how)
            np.testing.assert_allclose(got, wnt, rtol=rtol * 10, atol=atol * 10,
                                       err_msg=f"nn output {k} {how}")


def test_nn_against_torch() -> None:
    torch = pytest.importorskip("torch")
    F = torch.nn.functional  # noqa: N806
    x = _nn_input("float32")[:-3]  # torch and tj agree on finite values
    pairs = {
        "relu": F.relu, "sigmoid": torch.sigmoid, "silu": F.silu, "gelu": F.gelu,
        "mish": F.mish, "softplus": F.softplus, "softsign": F.softsign,
        "logsigmoid": F.logsigmoid, "tanhshrink": F.tanhshrink, "selu": F.selu,
    }
    names = sorted(pairs)
    compiled = tj.compile(tj.trace(
        lambda x: tuple(getattr(tj.nn, n)(x) for n in names), x))(x)
    for n, c in zip(names, compiled):
        want = pairs[n](torch.from_numpy(x.copy())).numpy()
        np.testing.assert_allclose(c, want, rtol=1e-5, atol=1e-6, err_msg=n)

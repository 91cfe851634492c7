"""tj.grad, value_and_grad, vjp, jvp and hessian: argnums, pytrees, composition with jit
and with each other, caching, and the errors."""

from __future__ import annotations

from collections import namedtuple
from typing import Any

import numpy as np
import pytest

import tensorjit as tj
from tensorjit.passes.patterns import splat_value
from tensorjit.runtime.compiled import PROBE_MISS

RNG = np.random.default_rng(7)


def fd_grad(f: Any, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    out = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        out[idx] = (f(xp) - f(xm)) / (2 * eps)
    return out


def loss(w: Any, x: Any) -> Any:
    return tj.sum(tj.tanh(x @ w) ** 2) + 0.1 * tj.sum(tj.exp(w))


def loss_np(w: np.ndarray, x: np.ndarray) -> float:
    return float(np.sum(np.tanh(x @ w) ** 2) + 0.1 * np.sum(np.exp(w)))


W, X = RNG.standard_normal((3, 2)), RNG.standard_normal((4, 3))


def test_grad_argnums_int_and_tuple() -> None:
    gw = tj.grad(loss)(W, X)
    np.testing.assert_allclose(gw, fd_grad(lambda w: loss_np(w, X), W), rtol=1e-6, atol=1e-8)
    gw2, gx = tj.grad(loss, argnums=(0, 1))(W, X)
    np.testing.assert_allclose(gw2, gw, rtol=1e-12)
    np.testing.assert_allclose(gx, fd_grad(lambda x: loss_np(W, x), X), rtol=1e-6, atol=1e-8)
    (gx_only,) = tj.grad(loss, argnums=(1,))(W, X)
    np.testing.assert_allclose(gx_only, gx, rtol=1e-12)
    np.testing.assert_allclose(tj.grad(loss, argnums=-1)(W, X), gx, rtol=1e-12)


def test_value_and_grad_and_has_aux() -> None:
    value, g = tj.value_and_grad(loss)(W, X)
    assert value.shape == () and np.isclose(value, loss_np(W, X))
    np.testing.assert_allclose(g, tj.grad(loss)(W, X), rtol=1e-12)

    def with_aux(w: Any, x: Any) -> Any:
        y = x @ w
        return tj.sum(y * y), {"y": y, "n": 3}

    (v, aux), g2 = tj.value_and_grad(with_aux, has_aux=True)(W, X)
    np.testing.assert_allclose(aux["y"], X @ W, rtol=1e-12)
    np.testing.assert_allclose(g2, 2 * X.T @ (X @ W), rtol=1e-12)
    g3, aux3 = tj.grad(with_aux, has_aux=True)(W, X)
    np.testing.assert_allclose(g3, g2, rtol=1e-12)
    assert int(aux3["n"]) == 3


Point = namedtuple("Point", "a b")


def test_pytree_arguments_and_structure() -> None:
    params = {"w": [RNG.standard_normal(3), (RNG.standard_normal((2, 3)),)],
              "b": Point(RNG.standard_normal(2), np.float64(1.5))}

    def f(p: Any, x: Any) -> Any:
        h = tj.tanh(p["w"][1][0] @ (x * p["w"][0]) + p["b"].a)
        return tj.sum(h * p["b"].b)

    x = RNG.standard_normal(3)
    g = tj.grad(f)(params, x)
    assert isinstance(g, dict) and isinstance(g["w"], list) and isinstance(g["w"][1], tuple)
    assert isinstance(g["b"], Point)
    assert g["w"][1][0].shape == (2, 3) and np.shape(g["b"].b) == ()
    a0 = params["w"][1][0]

    def f_np(w0: np.ndarray) -> float:
        return float(np.sum(np.tanh(a0 @ (x * w0) + params["b"].a) * 1.5))

    np.testing.assert_allclose(g["w"][0], fd_grad(f_np, params["w"][0]), rtol=1e-6, atol=1e-8)
    gp, gx = tj.grad(f, argnums=(0, 1))(params, x)
    np.testing.assert_allclose(gp["b"].a, g["b"].a, rtol=1e-12)
    assert gx.shape == (3,)


def test_compiled_once_per_signature() -> None:
    vg = tj.value_and_grad(loss)
    for _ in range(3):
        vg(W, X)
    vg(W.astype(np.float32), X.astype(np.float32))
    assert len(vg._program.entries) == 2  # noqa: SLF001 (the cache under test)


def test_grad_inside_jit_and_trace() -> None:
    step = tj.jit(lambda w, x: w - 0.1 * tj.grad(loss)(w, x))
    np.testing.assert_allclose(step(W, X), W - 0.1 * tj.grad(loss)(W, X), rtol=1e-12)
    graph = tj.trace(lambda w, x: tj.grad(loss)(w, x), W, X)
    np.testing.assert_allclose(tj.interpret(graph, [W, X])[0], tj.grad(loss)(W, X),
                               rtol=1e-10)


def test_closure_over_the_argument_is_a_constant() -> None:
    # d/dz (z * x) at z = x is x (not 2x): the differentiated argument is a fresh input.
    f = tj.jit(lambda x: tj.grad(lambda z: tj.sum(z * x))(x))
    x = np.array([1.0, -2.0, 3.0])
    np.testing.assert_array_equal(f(x), x)


def test_grad_of_grad() -> None:
    def f(x: Any) -> Any:
        return tj.sum(tj.sin(x) * x ** 3)

    def g_sum(x: Any) -> Any:
        return tj.sum(tj.grad(f)(x) * np.array([1.0, 2.0, -1.0]))

    x = np.array([0.3, -1.2, 2.0])
    gg = tj.grad(g_sum)(x)

    def g_np(x: np.ndarray) -> float:
        return float(np.sum((np.cos(x) * x ** 3 + 3 * x ** 2 * np.sin(x)) * [1.0, 2.0, -1.0]))

    np.testing.assert_allclose(gg, fd_grad(g_np, x), rtol=1e-6)
    # third order, scalar
    d3 = tj.grad(tj.grad(tj.grad(lambda t: tj.sin(t) * t)))(np.float64(0.7))
    np.testing.assert_allclose(d3, -3 * np.sin(0.7) - 0.7 * np.cos(0.7), rtol=1e-10)


def test_hessian_against_differences_of_gradients() -> None:
    def f(x: Any) -> Any:
        return tj.sum(tj.exp(x[:-1] * x[1:])) + tj.sum(x ** 4) * x[0]

    x = np.array([0.2, -0.5, 0.7, 1.1])
    h = tj.hessian(f)(x)
    grad = tj.grad(f)
    fd = np.stack([fd_grad(lambda v, i=i: float(grad(v)[i]), x) for i in range(4)])
    np.testing.assert_allclose(h, fd, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(h, h.T, rtol=1e-12)
    h_traced = tj.jit(tj.hessian(f))(x)
    np.testing.assert_allclose(h_traced, h, rtol=1e-10)


def test_hessian_blocks_for_several_arguments() -> None:
    def f(a: Any, b: Any) -> Any:
        return tj.sum(a * a * b[0]) + tj.sum(tj.sin(b))

    a, b = np.array([1.0, 2.0]), np.array([0.5, -0.3])
    (haa, hab), (hba, hbb) = tj.hessian(f, argnums=(0, 1))(a, b)
    np.testing.assert_allclose(haa, 2 * b[0] * np.eye(2))
    np.testing.assert_allclose(hab, [[2 * a[0], 0], [2 * a[1], 0]])
    np.testing.assert_allclose(hba, hab.T)
    np.testing.assert_allclose(hbb, np.diag(-np.sin(b)))
    traced = tj.jit(lambda a, b: tj.hessian(f, argnums=(0, 1))(a, b)[0][1])(a, b)
    np.testing.assert_allclose(traced, hab)


def test_vjp_and_jvp_against_the_jacobian() -> None:
    def f(x: Any, y: Any) -> Any:
        return (tj.sin(x) * y[0], tj.sum(x * x) + y)

    x, y = RNG.standard_normal(3), RNG.standard_normal(2)
    (o1, o2), vjp_fn = tj.vjp(f, x, y)
    np.testing.assert_allclose(o1, np.sin(x) * y[0])
    c1, c2 = RNG.standard_normal(3), RNG.standard_normal(2)
    gx, gy = vjp_fn((c1, c2))
    np.testing.assert_allclose(gx, np.cos(x) * y[0] * c1 + 2 * x * c2.sum(), rtol=1e-12)
    np.testing.assert_allclose(gy, [np.sum(np.sin(x) * c1) + c2[0], c2[1]], rtol=1e-12)
    tx, ty = RNG.standard_normal(3), RNG.standard_normal(2)
    (p1, p2), (t1, t2) = tj.jvp(f, (x, y), (tx, ty))
    np.testing.assert_allclose(p2, np.sum(x * x) + y)
    np.testing.assert_allclose(t1, np.cos(x) * y[0] * tx + np.sin(x) * ty[0], rtol=1e-12)
    np.testing.assert_allclose(t2, 2 * np.dot(x, tx) + ty, rtol=1e-12)
    # <vjp(c), t> == <c, jvp(t)>
    lhs = np.dot(gx, tx) + np.dot(gy, ty)
    rhs = np.dot(c1, t1) + np.dot(c2, t2)
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12)


def test_jvp_and_vjp_inside_jit() -> None:
    f = tj.jit(lambda x, t: tj.jvp(lambda v: tj.exp(v) * v, (x,), (t,))[1])
    x, t = RNG.standard_normal(4), RNG.standard_normal(4)
    np.testing.assert_allclose(f(x, t), (np.exp(x) * x + np.exp(x)) * t, rtol=1e-12)

    def pulled(x: Any, c: Any) -> Any:
        _, back = tj.vjp(lambda v: tj.tanh(v) * 2.0, x)
        return back(c)[0]

    np.testing.assert_allclose(tj.jit(pulled)(x, t), 2 * (1 - np.tanh(x) ** 2) * t,
                               rtol=1e-12)


def test_integer_arguments_outside_argnums_and_zero_gradients() -> None:
    def f(x: Any, i: Any, c: Any) -> Any:
        return tj.sum(tj.take(x, i) ** 2)

    x = np.array([1.0, 2.0, 3.0])
    g = tj.grad(f)(x, np.array([2, 2, 0]), np.ones(2))
    np.testing.assert_allclose(g, [2.0, 0.0, 12.0])
    np.testing.assert_array_equal(tj.grad(f, argnums=2)(x, np.array([0]), np.ones(2)),
                                  [0.0, 0.0])
    assert tj.grad(lambda x: 3.0)(x).tolist() == [0.0, 0.0, 0.0]


def test_errors_are_clear() -> None:
    with pytest.raises(tj.ShapeError, match="must return a scalar"):
        tj.grad(lambda x: x * 2)(np.ones(3))
    with pytest.raises(tj.DTypeError, match="float"):
        tj.grad(lambda x: tj.sum(x))(np.ones(3, np.int64))
    with pytest.raises(tj.DTypeError, match="float scalar"):
        tj.grad(lambda x: tj.argmax(x))(np.ones(3))
    with pytest.raises(tj.TensorJitError, match="argnums"):
        tj.grad(loss, argnums=2)(W, X)
    with pytest.raises(tj.TensorJitError, match="unknown option"):
        tj.grad(loss, thread=1)
    _, back = tj.vjp(lambda x: x * 2, np.ones(3))
    with pytest.raises(tj.ShapeError, match="cotangent"):
        back(np.ones(4))


def test_float32_training_step_is_float32() -> None:
    w = RNG.standard_normal((5, 3)).astype(np.float32)
    x = RNG.standard_normal((8, 5)).astype(np.float32)
    y = RNG.integers(0, 3, 8)
    vg = tj.value_and_grad(lambda w, x, y: tj.nn.cross_entropy(x @ w, y), threads=1)
    value, g = vg(w, x, y)
    assert value.dtype == np.float32 and g.dtype == np.float32
    p = np.exp(x @ w) / np.exp(x @ w).sum(1, keepdims=True)
    np.testing.assert_allclose(g, x.T @ (p - np.eye(3)[y]) / 8, rtol=1e-4, atol=1e-6)


def test_jit_of_the_returned_callables() -> None:
    # tj.jit(obj) must compile obj itself (it once copied obj.__dict__ over its own fields)
    x = np.array([0.5, -1.0])
    np.testing.assert_allclose(tj.jit(tj.grad(lambda x: tj.sum(x ** 3)))(x), 3 * x ** 2)
    np.testing.assert_allclose(tj.jit(tj.hessian(lambda x: tj.sum(x ** 3)))(x),
                               np.diag(6 * x))

    class Doubler:
        def __init__(self) -> None:
            self.fn = lambda v: v + 100.0

        def __call__(self, v: Any) -> Any:
            return v * 2.0

    np.testing.assert_array_equal(tj.jit(Doubler())(x), 2 * x)


def test_array_fast_path_falls_back_for_any_other_signature():
    def f(x):
        return tj.sum(tj.sin(x) * x)

    def want(x):
        return np.sin(x) + x * np.cos(x)

    g = tj.grad(f, cache=False)
    x64 = np.linspace(-1.0, 1.0, 12)
    for x in (x64, x64, x64.astype(np.float32), x64[::2].copy(), x64.reshape(3, 4)[:, 1],
              x64, np.float64(0.5)):
        got = g(x)
        np.testing.assert_allclose(got, want(np.asarray(x)), rtol=1e-5)
        assert got.dtype == np.asarray(x).dtype
    fn = g._program.compiled((x64,))[0]  # noqa: SLF001
    probe = fn.probe()
    assert probe(x64.astype(np.float32)) is PROBE_MISS
    assert probe(x64[::-1]) is PROBE_MISS  # not contiguous: the checked call copies it
    np.testing.assert_allclose(probe(x64)[0], want(x64))  # the flat outputs


def test_backward_graphs_hold_no_multiplication_by_one() -> None:
    """The seed 1.0 times a cotangent is the cotangent: left to the passes, removing it
    changes the structural digest of every later node, re-sorting their operands."""
    def loss(a: Any, t: Any) -> Any:
        return (a[0] * a[1] - t[0]) ** 2 + tj.sum(tj.sin(a) * 1.0)

    a, t = np.array([0.3, -1.2]), np.array([0.5])
    g = tj.trace(lambda a, t: tj.value_and_grad(loss)(a, t), a, t)
    ones = [n for n in g.nodes()
            if n.op == "mul" and any(splat_value(i) == 1.0 for i in n.inputs)]
    assert len(ones) == 1  # the user's own sin(a) * 1.0
    value, grad = tj.value_and_grad(loss, cache=False)(a, t)
    r = a[0] * a[1] - t[0]
    np.testing.assert_allclose(grad, 2 * r * a[::-1] + np.cos(a), rtol=1e-14)


def test_clear_caches_makes_the_next_build_compile_again() -> None:
    def loss(a: Any) -> Any:
        return tj.sum(tj.sin(a) * a)

    a = np.array([0.1, 0.2, 0.3])
    first = tj.grad(loss)
    want = first(a)
    compiled = first._program.compiled((a,))[0]  # noqa: SLF001
    assert tj.grad(loss)._program.compiled((a,))[0] is compiled  # noqa: SLF001 (shared)
    g = tj.trace(loss, a)
    graph_fn = tj.compile(g)
    assert tj.compile(g) is graph_fn
    tj.clear_caches()
    again = tj.grad(loss)
    assert again._program.compiled((a,))[0] is not compiled  # noqa: SLF001
    assert tj.compile(g) is not graph_fn
    np.testing.assert_array_equal(again(a), want)
    np.testing.assert_array_equal(first(a), want)  # a function already called keeps its code

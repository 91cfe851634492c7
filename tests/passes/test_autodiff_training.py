"""Training-shaped uses of autodiff: the examples' losses fall, an MLP step's backward
recomputes its activations instead of storing them, the nn training pieces (cross
entropy, embedding, batch norm, dropout) and their gradients, scalar-style code."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

import tensorjit as tj

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RNG = np.random.default_rng(11)


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"tj_example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_train_mlp_example_loss_decreases() -> None:
    example = load_example("train_mlp")
    history = example.train(epochs=3, verbose=False)
    assert history[0] > history[1] > history[2], history
    assert history[-1] < 0.8 * history[0]


def test_ik_example_distance_falls() -> None:
    example = load_example("ik")
    distances = example.solve(6, steps=100, report=25, verbose=False)
    assert distances[-1] < 1e-2 * distances[0], distances
    assert all(b <= a for a, b in zip(distances, distances[1:]))


def test_scalar_style_gradient_matches_the_vectorized_one() -> None:
    n = 9
    ik = load_example("ik")
    angles = RNG.uniform(-0.5, 0.5, n)
    value, grad = tj.value_and_grad(ik.make_loss(n))(angles, ik.TARGET)
    theta = np.cumsum(angles)
    px, py = np.cos(theta).sum() / n, np.sin(theta).sum() / n
    dx, dy = px - ik.TARGET[0], py - ik.TARGET[1]
    # d/d angle_i: every link from i on turns
    gx = -np.sin(theta)[::-1].cumsum()[::-1] / n
    gy = np.cos(theta)[::-1].cumsum()[::-1] / n
    np.testing.assert_allclose(value, dx * dx + dy * dy, rtol=1e-12)
    np.testing.assert_allclose(grad, 2 * dx * gx + 2 * dy * gy, rtol=1e-10, atol=1e-14)


def _mlp_step_fusion_report() -> str:
    params = {"w1": np.zeros((12, 16), np.float32), "b1": np.zeros(16, np.float32),
              "w2": np.zeros((16, 16), np.float32), "b2": np.zeros(16, np.float32),
              "w3": np.zeros((16, 3), np.float32), "b3": np.zeros(3, np.float32)}
    x, y = np.zeros((8, 12), np.float32), np.zeros(8, np.int64)
    example = load_example("train_mlp")
    step = tj.value_and_grad(example.loss, threads=1)
    compiled, _, _ = step._program.compiled((params, x, y))  # noqa: SLF001
    return compiled.ir("fusion")


def test_mlp_step_recomputes_elementwise_forward_values() -> None:
    """Fusion materializes reductions, contractions (and their operands) and outputs only:
    no forward elementwise value gets a buffer because backward needs it. The relu masks
    (``le``) and the softmax probabilities are recomputed inside the backward kernels."""
    report = _mlp_step_fusion_report()
    materialized = re.findall(r"^\s*%\d+ = (\w+)\(.*# (k[\d, k]+) \(([^)]*)\)", report,
                              re.MULTILINE)
    assert materialized, report
    for op, _, reason in materialized:
        assert reason.split(";")[0] in ("reduce", "contraction", "contraction operand",
                                        "output", "parameter", "array constant"), \
            (op, reason, report)
    for line in report.splitlines():
        if re.search(r"= (le|exp)\(", line):
            assert "inlined" in line, line


def test_cross_entropy_matches_a_numpy_formula_and_its_gradient() -> None:
    x = RNG.standard_normal((6, 5))
    t = np.array([0, 4, 1, 1, 3, -100])
    w = RNG.uniform(0.5, 2.0, 5)

    def reference(x: np.ndarray, smoothing: float, weight: np.ndarray | None) -> float:
        lp = x - x.max(1, keepdims=True)
        lp = lp - np.log(np.exp(lp).sum(1, keepdims=True))
        ww = np.ones(5) if weight is None else weight
        valid = t != -100
        tt = np.where(valid, t, 0)
        nll = -(lp[np.arange(6), tt] * ww[tt] * valid).sum() / (ww[tt] * valid).sum()
        smooth = -((lp * ww).sum(1) * valid).sum() / (ww[tt] * valid).sum()
        return (1 - smoothing) * nll + smoothing / 5 * smooth

    for smoothing, weight in ((0.0, None), (0.1, w), (0.2, None)):
        def f(x: Any, smoothing: float = smoothing, weight: Any = weight) -> Any:
            return tj.nn.cross_entropy(x, t, weight=weight, label_smoothing=smoothing)

        np.testing.assert_allclose(tj.jit(f)(x), reference(x, smoothing, weight), rtol=1e-12)
        np.testing.assert_allclose(f(x), reference(x, smoothing, weight), rtol=1e-12)
        g = tj.grad(f)(x)
        eps = 1e-6
        for idx in [(0, 0), (2, 1), (5, 3), (4, 4)]:
            xp, xm = x.copy(), x.copy()
            xp[idx] += eps
            xm[idx] -= eps
            fd = (reference(xp, smoothing, weight) - reference(xm, smoothing, weight)) / 2 / eps
            np.testing.assert_allclose(g[idx], fd, rtol=1e-6, atol=1e-9)
    # probability targets, per-element losses over (N, C, d)
    probs = RNG.dirichlet(np.ones(5), size=6)
    got = tj.jit(lambda x, p: tj.nn.cross_entropy(x, p))(x, probs)
    lp = x - np.log(np.exp(x).sum(1, keepdims=True))
    np.testing.assert_allclose(got, -(probs * lp).sum(1).mean(), rtol=1e-12)
    x3 = RNG.standard_normal((2, 4, 3))
    t3 = np.array([[0, 3, 1], [2, 2, 0]])
    got3 = tj.jit(lambda x, t: tj.nn.cross_entropy(x, t, reduction="none"))(x3, t3)
    lp3 = x3 - np.log(np.exp(x3).sum(1, keepdims=True))
    want3 = -np.take_along_axis(lp3, t3[:, None, :], 1)[:, 0, :]
    np.testing.assert_allclose(got3, want3, rtol=1e-12)


def test_embedding_and_its_scatter_add_gradient() -> None:
    weight = RNG.standard_normal((7, 3))
    idx = np.array([[1, 6, 1], [0, 1, 5]])
    out = tj.jit(tj.nn.embedding)(idx, weight)
    np.testing.assert_array_equal(out, weight[idx])
    c = RNG.standard_normal((2, 3, 3))
    g = tj.grad(lambda w: tj.sum(tj.nn.embedding(idx, w) * c))(weight)
    want = np.zeros_like(weight)
    np.add.at(want, idx, c)
    np.testing.assert_allclose(g, want, rtol=1e-12)


def test_batch_norm_training_and_inference() -> None:
    x = RNG.standard_normal((5, 3, 2, 2))
    w, b = RNG.standard_normal(3), RNG.standard_normal(3)
    rm, rv = RNG.standard_normal(3), RNG.uniform(0.5, 2, 3)
    axes = (0, 2, 3)
    train = tj.jit(lambda x, w, b: tj.nn.batch_norm(x, None, None, w, b, training=True))(x, w, b)
    mu, var = x.mean(axes, keepdims=True), x.var(axes, keepdims=True)
    c = (slice(None), None, None)
    np.testing.assert_allclose(train, (x - mu) / np.sqrt(var + 1e-5) * w[c] + b[c], rtol=1e-12)
    infer = tj.jit(lambda x, m, v: tj.nn.batch_norm(x, m, v, eps=1e-3))(x, rm, rv)
    np.testing.assert_allclose(infer, (x - rm[c]) / np.sqrt(rv[c] + 1e-3), rtol=1e-12)
    new_m, new_v = tj.nn.batch_norm_update_stats(x, rm, rv, momentum=0.2)
    np.testing.assert_allclose(new_m, 0.8 * rm + 0.2 * x.mean(axes), rtol=1e-12)
    np.testing.assert_allclose(new_v, 0.8 * rv + 0.2 * x.var(axes, ddof=1), rtol=1e-12)
    g = tj.grad(lambda x: tj.sum(tj.nn.batch_norm(x, None, None, training=True) ** 3))(x)
    assert np.all(np.isfinite(g)) and np.allclose(g.sum(axis=axes), 0, atol=1e-9)


def test_dropout_is_seeded_and_deterministic() -> None:
    x = np.ones((64, 50), np.float32)
    f = tj.jit(lambda x, s: tj.nn.dropout(x, 0.25, seed=s))
    a, b = f(x, np.int64(5)), f(x, np.int64(5))
    np.testing.assert_array_equal(a, b)
    assert 0.2 < np.mean(a == 0) < 0.3
    np.testing.assert_array_equal(np.unique(a), np.array([0.0, 1 / 0.75], np.float32))
    assert np.mean(f(x, np.int64(6)) != a) > 0.2
    np.testing.assert_array_equal(tj.nn.dropout(x, 0.25, seed=5), a)  # NumPy fallback
    graph = tj.trace(lambda x: tj.nn.dropout(x, 0.25, seed=5), x)
    np.testing.assert_array_equal(tj.interpret(graph, [x])[0], a)
    np.testing.assert_array_equal(tj.jit(lambda x: tj.nn.dropout(x, 0.5, training=False))(x), x)
    g = tj.grad(lambda x: tj.sum(tj.nn.dropout(x, 0.25, seed=5)))(x.astype(np.float64))
    np.testing.assert_allclose(g, a.astype(np.float64), rtol=1e-7)
    with pytest.raises(tj.ShapeError):
        tj.nn.dropout(x, 1.5)

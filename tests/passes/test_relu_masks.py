"""relu-masks: other uses of a ReLU's mask test the ReLU's output."""

from __future__ import annotations

import numpy as np
import pytest

import tensorjit as tj
from tensorjit.ir.parser import parse_graph
from tensorjit.passes.relu_masks import relu_masks

EDGES = np.array([-np.inf, -3.0, -0.0, 0.0, 1e-45, 2.5, np.inf, np.nan], np.float32)


def test_the_gradients_mask_reads_the_relu_output(filecheck) -> None:
    g = parse_graph("""
    graph f(%0: f32[8], %1: f32[8]) {
      %2 = const() {value=0.0} : f32[]
      %3 = broadcast_to(%2) {shape=(8,)} : f32[8]
      %4 = le(%0, %3) : bool[8]
      %5 = select(%4, %3, %0) : f32[8]
      %6 = select(%4, %3, %1) : f32[8]
      return (%5, %6)
    }""")
    out, rewired = relu_masks(g)
    assert rewired == 1
    filecheck(str(out), """
    CHECK: [[M:%\\d+]] = le(%0, [[Z:%\\d+]])
    CHECK: [[R:%\\d+]] = select([[M]], [[Z]], %0)
    CHECK: [[N:%\\d+]] = le([[R]], [[Z]])
    CHECK: select([[N]], [[Z]], %1)
    """)


def test_a_use_before_the_relu_in_graph_order_is_rewired() -> None:
    g = parse_graph("""
    graph f(%0: f32[8], %1: f32[8]) {
      %2 = const() {value=0.0} : f32[]
      %3 = broadcast_to(%2) {shape=(8,)} : f32[8]
      %4 = gt(%0, %3) : bool[8]
      %5 = select(%4, %1, %3) : f32[8]
      %6 = select(%4, %0, %3) : f32[8]
      return (%5, %6)
    }""")
    out, rewired = relu_masks(g)
    assert rewired == 1
    grad, relu = out.outputs
    assert grad.inputs[0].op == "gt" and grad.inputs[0].inputs[0] is relu


@pytest.mark.parametrize("mask", ["lt", "ge"])
def test_masks_the_output_cannot_tell_apart_are_left(mask) -> None:
    # x < 0 and x == 0 both give a ReLU output of 0
    g = parse_graph(f"""
    graph f(%0: f32[8], %1: f32[8]) {{
      %2 = const() {{value=0.0}} : f32[]
      %3 = broadcast_to(%2) {{shape=(8,)}} : f32[8]
      %4 = {mask}(%0, %3) : bool[8]
      %5 = select(%4, %3, %0) : f32[8]
      %6 = select(%4, %3, %1) : f32[8]
      return (%5, %6)
    }}""")
    assert relu_masks(g) == (g, 0)


def test_relu_gradient_is_unchanged_on_edge_values() -> None:
    def f(x, g):
        return tj.vjp(tj.nn.relu, x)[1](g)[0]

    g = np.arange(1, 9, dtype=np.float32)
    got = tj.compile(tj.trace(f, EDGES, g))(EDGES, g)
    # relu'(x) is 1 for x > 0 and 0 at and below 0; NaN is not <= 0: the gradient passes
    want = np.where(EDGES <= 0, 0, g)
    np.testing.assert_array_equal(got, want)


def test_mlp_layer_gradient_stores_only_the_activation() -> None:
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((40, 30), np.float32), rng.standard_normal((30, 50), np.float32)
    b, v = rng.standard_normal(50).astype(np.float32), rng.standard_normal((50, 3), np.float32)

    def loss(w, b, v, x):
        return (tj.nn.relu(x @ w + b) @ v).sum()

    def step(w, b, v, x):
        value, (gw, gb) = tj.value_and_grad(loss, argnums=(0, 1))(w, b, v, x)
        return value, gw, gb

    f = tj.compile(tj.trace(step, w, b, v, x))
    # bias and ReLU are the first GEMM's epilogue: x @ w + b is never stored
    first_gemm = f.ir("loops").split("gemm kernel")[1]
    assert "select(le(add(" in first_gemm.split("}")[0]
    a = x @ w + b
    dh = np.ones((40, 3), np.float32) @ v.T * (a > 0)
    value, gw, gb = f(w, b, v, x)
    np.testing.assert_allclose(value, (np.maximum(a, 0) @ v).sum(), rtol=1e-4)
    np.testing.assert_allclose(gw, x.T @ dh, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(gb, dh.sum(0), rtol=1e-4, atol=1e-4)

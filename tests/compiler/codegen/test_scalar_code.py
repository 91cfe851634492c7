"""Scalar-style code: scalar math is one function per module, loop invariants are
computed once before their loop, and small kernels that share work are merged."""

from __future__ import annotations

import re

import numpy as np
import pytest

import tensorjit as tj
from tensorjit.compiler.codegen.invariants import loop_invariants
from tensorjit.compiler.lowering.merge import merge_sharing_kernels
from tensorjit.compiler.lowering.select_chains import unroll_select_chains
from tensorjit.ir.dtypes import DType
from tensorjit.ir.loops import (
    AccInit,
    AccRef,
    AccUpdate,
    BufferParam,
    Const,
    Kernel,
    Load,
    Loop,
    Op,
    Store,
    Var,
)
from tensorjit.runtime.engine import Target

F64 = DType.float64
I64 = DType.int64


def _chain(n: int):  # noqa: ANN202
    def f(a):  # noqa: ANN001, ANN202
        theta, x = 0.0, 0.0
        for i in range(n):
            theta = theta + a[i]
            x = x + tj.cos(theta) * tj.sin(theta)
        return x
    return f


def _chain_numpy(a: np.ndarray) -> tuple[float, np.ndarray]:
    theta = np.cumsum(a)
    value = np.sum(np.cos(theta) * np.sin(theta))
    d = np.cos(2 * theta)  # d/dtheta cos*sin
    return value, np.cumsum(d[::-1])[::-1]


def test_scalar_math_is_batched_into_vector_calls() -> None:
    n = 24
    a = np.linspace(-2.0, 3.0, n)
    step = tj.value_and_grad(_chain(n), threads=1, cache=False)
    value, grad = step(a)
    want_value, want_grad = _chain_numpy(a)
    np.testing.assert_allclose(value, want_value, rtol=1e-12)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-10, atol=1e-12)
    fn = step._program.compiled((a,))[0]  # noqa: SLF001
    llvm = fn.ir("llvm")
    lanes = Target.host().vector_bytes() // 8
    vec = rf"<{lanes} x double>"
    assert len(re.findall(rf"define internal {vec} @\"tj\.math\.sin\.v{lanes}f64\"", llvm)) == 1
    calls = len(re.findall(rf"call {vec} @\"tj\.math\.(sin|cos)\.v{lanes}f64\"", llvm))
    # each sine and cosine once, a vector at a time: the value and the gradient share
    # them (one kernel), the gradient's loop reads them as invariants, and the 24 sines
    # (cosines) do not depend on each other
    assert calls == 2 * -(-n // lanes), calls
    assert 'call double @"tj.math.' not in llvm  # (libm's only on the huge-argument branch)
    assert fn.stats["kernels"] == 1


def test_batched_math_matches_scalar_math_bit_for_bit() -> None:
    x = np.concatenate([np.linspace(-40.0, 40.0, 37), [0.0, -0.0, 1e-300, 3e5, 1e300,
                                                      np.inf, np.nan]])

    def f(v):  # noqa: ANN001, ANN202
        return [fn(v[k]) for k in range(len(x)) for fn in (tj.sin, tj.cos, tj.exp, tj.tanh)]

    f_batched = tj.compile(tj.trace(lambda v: tuple(f(v)), x), threads=1, cache=False)
    one = tj.compile(tj.trace(lambda v: (tj.sin(v), tj.cos(v), tj.exp(v), tj.tanh(v)), x),
                     threads=1, cache=False)
    got = np.array(f_batched(x)).reshape(len(x), 4).T
    want = np.array(one(x))  # vector loop and scalar tail
    np.testing.assert_array_equal(got, want)
    with np.errstate(all="ignore"):
        np.testing.assert_allclose(got[:2], [np.sin(x), np.cos(x)], rtol=1e-15, atol=1e-300)


def test_huge_arguments_still_take_the_exact_branch_out_of_line() -> None:
    f = tj.compile(tj.trace(lambda x: tj.sin(x[0]) + tj.cos(x[1]), np.zeros(2)), threads=1,
                   cache=False)
    x = np.array([1e300, -3e22])
    np.testing.assert_allclose(f(x), np.sin(x[0]) + np.cos(x[1]), rtol=1e-15)


def _loop(var: str, extent: int | str, body: tuple, kind: str = "serial") -> Loop:
    return Loop(var, Const(extent, I64) if isinstance(extent, int) else Var(extent), body, kind)


def test_invariants_are_the_largest_unchanging_subexpressions() -> None:
    x0 = Load("x", Const(0, I64), F64)
    sin0 = Op("sin", (x0,), F64)
    xi = Load("x", Var("i"), F64)
    body = (Store("y", Var("i"), Op("mul", (Op("add", (sin0, Const(1.0, F64)), F64), xi), F64)),)
    (inv,) = loop_invariants(_loop("i", 8, body))
    assert inv is Op("add", (sin0, Const(1.0, F64)), F64)


def test_invariants_exclude_what_the_loop_changes() -> None:
    i, j = Var("i"), Var("j")
    x_j = Load("x", j, F64)
    t_0 = Load("t", Const(0, I64), F64)  # t is written in the loop
    acc = AccRef("a", F64)  # updated in the loop
    body = (AccInit("a", "sum", F64),
            _loop("j", 4, (AccUpdate("a", Op("mul", (x_j, Load("w", Const(2, I64), F64)),
                                                F64)),)),
            Store("t", i, Op("add", (acc, t_0), F64)))
    (inv,) = loop_invariants(_loop("i", 8, body))
    assert inv is Load("w", Const(2, I64), F64)


@pytest.mark.parametrize("extent", [0, "n"])
def test_no_hoisting_from_a_loop_that_may_not_run(extent: int | str) -> None:
    body = (Store("y", Var("i"), Op("sin", (Load("x", Const(5, I64), F64),), F64)),)
    assert loop_invariants(_loop("i", extent, body)) == []
    # nor from a nested loop that may not run
    inner = _loop("j", extent, body)
    assert loop_invariants(_loop("i", 3, (inner,))) == []


def test_empty_loops_with_invariant_loads_of_empty_buffers_run() -> None:
    # y = x[:, :1] broadcast over 0 columns: the load of x would be out of bounds
    f = tj.compile(tj.trace(lambda x: x[:, :1] * np.ones((3, 0)), np.zeros((3, 1))),
                   threads=1, cache=False)
    assert f(np.ones((3, 1))).shape == (3, 0)


def _kernel(name: str, body: tuple, params: tuple[BufferParam, ...]) -> Kernel:
    return Kernel(name, params, body, name)


def test_merge_only_small_kernels_that_share_work() -> None:
    s = Op("sin", (Load("x", Const(0, I64), F64),), F64)
    x_in = BufferParam("x", F64, "in")
    k0 = _kernel("k0", (Store("y", Const(0, I64), s),), (x_in, BufferParam("y", F64, "out")))
    k1 = _kernel("k1", (_loop("i", 8, (Store("z", Var("i"), Op("mul", (s, Load("x", Var("i"),
                                                                             F64)), F64)),),
                              "vector"),),
                 (x_in, BufferParam("z", F64, "out")))
    other = _kernel("k2", (Store("w", Const(0, I64), Load("x", Const(1, I64), F64)),),
                    (x_in, BufferParam("w", F64, "out")))
    big = _kernel("k3", (_loop("i", 1 << 20, (Store("v", Var("i"), s),), "vector"),),
                  (x_in, BufferParam("v", F64, "out")))
    merged = merge_sharing_kernels([k0, k1, other, big])
    assert [k.name for k in merged] == ["k0", "k1", "k2"]
    assert merged[0].body == k0.body + k1.body
    assert {p.name: p.role for p in merged[0].params} == {"x": "in", "y": "out", "z": "out"}
    assert merged[1].body == other.body and merged[2].body == big.body


def test_select_chain_on_the_loop_variable_becomes_stores() -> None:
    i = Var("i")
    g = [Op("sin", (Load("x", Const(k, I64), F64),), F64) for k in range(3)]
    chain = Const(0.0, F64)
    for k in (0, 2, 1, 0):  # the outermost case for a position wins (k=0 here)
        chain = Op("select", (Op("eq", (i, Const(k, I64)), DType.bool), g[k] if k else
                              Op("neg", (g[0],), F64), chain), F64)
    params = (BufferParam("x", F64, "in"), BufferParam("y", F64, "out"))
    kernel = _kernel("k0", (_loop("i", 5, (Store("y", i, chain),), "vector"),), params)
    body = unroll_select_chains(kernel).body
    default, *stores = body
    assert isinstance(default, Loop) and default.body == (Store("y", i, Const(0.0, F64)),)
    assert stores == [Store("y", Const(0, I64), Op("neg", (g[0],), F64)),
                      Store("y", Const(1, I64), g[1]), Store("y", Const(2, I64), g[2])]
    # every position covered: no loop is left
    full = _kernel("k0", (_loop("i", 3, (Store("y", i, chain),), "vector"),), params)
    assert not any(isinstance(s, Loop) for s in unroll_select_chains(full).body)


def test_gradient_of_some_elements_is_zero_elsewhere() -> None:
    def f(a):  # noqa: ANN001, ANN202
        return tj.sin(a[0]) * a[3] + a[3] ** 2

    a = np.array([0.3, 1.0, 2.0, -0.7, 5.0, 6.0])
    got = tj.grad(f, threads=1, cache=False)(a)
    want = np.zeros_like(a)
    want[0] = np.cos(a[0]) * a[3]
    want[3] = np.sin(a[0]) + 2 * a[3]
    np.testing.assert_allclose(got, want, rtol=1e-14)


def test_chains_deeper_than_pythons_recursion_limit_compile() -> None:
    def f(a):  # noqa: ANN001, ANN202
        x = a[0]
        for i in range(1200):  # each step nests the expression two levels deeper
            x = x * 0.999 + tj.sin(a[i % 3])
        return x

    a = np.array([0.1, 0.2, 0.3])
    want = float(a[0])
    for i in range(1200):
        want = want * 0.999 + np.sin(a[i % 3])
    value, grad = tj.value_and_grad(f, threads=1, cache=False)(a)
    np.testing.assert_allclose(value, want, rtol=1e-12)
    assert np.all(np.isfinite(grad))



def test_loop_free_modules_skip_the_llvm_ir_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    import tensorjit.compiler.api as api

    levels: list[tuple[int, int | None]] = []
    real = api.jit_compile

    def spy(text, opt_level=3, target=None, ir_opt_level=None):  # noqa: ANN001, ANN202
        levels.append((opt_level, ir_opt_level))
        return real(text, opt_level, target, ir_opt_level=ir_opt_level)

    monkeypatch.setattr(api, "jit_compile", spy)
    a = np.linspace(-2.0, 3.0, 12)
    value, grad = tj.value_and_grad(_chain(12), threads=1, cache=False)(a)
    want_value, want_grad = _chain_numpy(a)
    np.testing.assert_allclose(value, want_value, rtol=1e-12)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-10, atol=1e-12)
    tj.jit(lambda x: tj.exp(x) * 2.0, cache=False)(np.ones(1000))
    assert levels == [(1, 0), (3, None)]


def test_ir_opt_level_zero_leaves_the_ir_alone() -> None:
    from tensorjit.runtime.engine import jit_compile

    ir = "\n".join([
        "define double @f(double %x) {",
        "  %p = alloca double",
        "  store double %x, ptr %p",
        "  %v = load double, ptr %p",
        "  ret double %v",
        "}",
    ])
    assert "alloca" in jit_compile(ir, 1, ir_opt_level=0).optimized_ir()
    assert "alloca" not in jit_compile(ir, 1).optimized_ir()

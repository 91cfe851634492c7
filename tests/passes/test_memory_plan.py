"""Memory planning: liveness-based arena offsets with reuse, in-place elementwise results,
64-byte alignment; the arena of an MLP training step is at most half the naive total.

Figures (run with ``-s``): ``pytest -s tests/passes/test_memory_plan.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import tensorjit as tj
from tensorjit.compiler.lowering.lower import lower
from tensorjit.ir.dtypes import DType
from tensorjit.ir.loops import (
    AccInit,
    AccRef,
    AccUpdate,
    Buffer,
    BufferParam,
    Kernel,
    Load,
    Loop,
    Module,
    Op,
    Store,
    Var,
)
from tensorjit.ir.shapes import Size
from tensorjit.passes.memory import ALIGN, MemoryPlan, in_place_ok, plan_memory
from tensorjit.passes.pipeline import optimize

F32 = DType.float32
B, D, H, C = 64, 784, 256, 10


def check_plan(module: Module, plan: MemoryPlan) -> None:
    """Every offset aligned; no two temporaries used by one kernel overlap in memory."""
    where = {p.name: p for p in plan.placements}
    for p in plan.placements:
        assert p.offset % ALIGN == 0 and p.nbytes % ALIGN == 0
        assert p.offset + p.nbytes <= plan.arena_bytes
    for kernel in module.kernels:
        used = sorted({q.name for q in kernel.params if q.name in where})
        for i, a in enumerate(used):
            for b in used[i + 1:]:
                pa, pb = where[a], where[b]
                assert pa.offset + pa.nbytes <= pb.offset or pb.offset + pb.nbytes <= pa.offset, \
                    f"{a} and {b} overlap in {kernel.name}"
    assert plan.peak_bytes <= plan.arena_bytes <= plan.naive_bytes


def mlp(x: Any, w1: Any, b1: Any, w2: Any, b2: Any, w3: Any, b3: Any) -> Any:
    h = tj.nn.relu(x @ w1 + b1)
    h = tj.nn.relu(h @ w2 + b2)
    return h @ w3 + b3


def loss(w1: Any, b1: Any, w2: Any, b2: Any, w3: Any, b3: Any, x: Any, y: Any) -> Any:
    """Cross-entropy of a 3-layer MLP (mean over the batch)."""
    z = tj.nn.log_softmax(mlp(x, w1, b1, w2, b2, w3, b3), axis=-1)
    onehot = (tj.reshape(y, (-1, 1)) == tj.arange(C)).astype("float32")
    return -tj.sum(z * onehot) / z.shape[0]


def training_step(w1: Any, b1: Any, w2: Any, b2: Any, w3: Any, b3: Any, x: Any,
                  y: Any) -> Any:
    value, grads = tj.value_and_grad(loss, argnums=(0, 1, 2, 3, 4, 5))(
        w1, b1, w2, b2, w3, b3, x, y)
    return (value,) + tuple(w - 0.1 * g for w, g in zip((w1, b1, w2, b2, w3, b3), grads))


def mlp_args() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.standard_normal((B, D), dtype=np.float32),
            rng.standard_normal((D, H), dtype=np.float32) * 0.05, np.zeros(H, np.float32),
            rng.standard_normal((H, H), dtype=np.float32) * 0.05, np.zeros(H, np.float32),
            rng.standard_normal((H, C), dtype=np.float32) * 0.05, np.zeros(C, np.float32)]


def test_forward_mlp_arena_is_the_peak_live_set() -> None:
    args = mlp_args()
    f = tj.compile(tj.trace(mlp, *args), cache=False)
    module, plan = plan_memory(lower(optimize(tj.trace(mlp, *args))))
    assert plan is not None
    check_plan(module, plan)
    ratio = plan.arena_bytes / plan.naive_bytes
    print(f"\nforward MLP {B}x{D}-{H}-{H}-{C}: arena {plan.arena_bytes} of naive "
          f"{plan.naive_bytes} bytes ({ratio:.1%}); peak live {plan.peak_bytes}")
    # A GEMM's packed B operand and its input activation are live together: no plan can
    # go below that peak, and this one reaches it.
    assert plan.arena_bytes == plan.peak_bytes
    assert f.stats["arena_bytes"] == plan.arena_bytes
    assert f.stats["arena_naive_bytes"] == plan.naive_bytes
    np.testing.assert_allclose(f(*args), tj.interpret(tj.trace(mlp, *args), args)[0],
                               rtol=1e-4, atol=1e-4)


def test_training_step_arena_is_at_most_half_the_naive_total() -> None:
    x, w1, b1, w2, b2, w3, b3 = mlp_args()
    y = np.random.default_rng(1).integers(0, C, B)
    args = [w1, b1, w2, b2, w3, b3, x, y]
    g = tj.trace(training_step, *args)
    module, plan = plan_memory(lower(optimize(g)))
    assert plan is not None
    check_plan(module, plan)
    ratio = plan.arena_bytes / plan.naive_bytes
    print(f"\nMLP training step ({len(g.nodes())} nodes, {len(module.kernels)} kernels, "
          f"{sum(1 for b in module.buffers if b.kind == 'temp')} temporaries): arena "
          f"{plan.arena_bytes} of naive {plan.naive_bytes} bytes ({ratio:.1%}); "
          f"peak live {plan.peak_bytes}")
    assert ratio <= 0.5
    f = tj.compile(g, cache=False)
    assert f.stats["arena_bytes"] == plan.arena_bytes
    for got, want in zip(f(*args), tj.interpret(g, args)):
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-5)


def test_an_elementwise_result_is_computed_in_place() -> None:
    """tanh(h) is written over h: the row kernel that sums h is h's last reader."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 128)).astype(np.float32)
    w = (rng.standard_normal((128, 32)) * 0.1).astype(np.float32)
    w2 = rng.standard_normal((32, 16)).astype(np.float32)

    def fn(x: Any, w: Any, w2: Any) -> Any:
        h = x @ w
        return h.sum(), tj.tanh(h) @ w2

    g = tj.trace(fn, x, w, w2)
    f = tj.compile(g, cache=False)
    assert "computed in place of" in f.ir("memory")
    assert "t0[((j0 * 32) + j1)] = tanh(t0[((j0 * 32) + j1)])" in f.ir("loops")
    for got, want in zip(f(x, w, w2), tj.interpret(g, [x, w, w2])):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_symbolic_sizes_keep_the_bump_allocation() -> None:
    spec = tj.TensorSpec(("n", 64), "float32")
    w = np.ones((64, 8), np.float32)
    g = tj.trace(lambda x, w: tj.exp(x @ w).sum(axis=0), spec, w)
    f = tj.compile(g, cache=False)
    assert f.stats["arena_bytes"] is None and "no plan" in f.ir("memory")
    x = np.ones((5, 64), np.float32)
    np.testing.assert_allclose(f(x, w), tj.interpret(g, [x, w])[0], rtol=1e-5)


# --- in_place_ok on hand-written kernels ------------------------------------------------

def _kernel(*body: Any) -> Kernel:
    return Kernel("k", (BufferParam("a", F32, "in"), BufferParam("b", F32, "out")), body)


I0, J0 = Var("i0"), Var("j0")
ROW = Op("add", (Op("mul", (I0, Var("n")), DType.int64), J0), DType.int64)


@pytest.mark.parametrize("body,ok", [
    # b[r] = exp(a[r]) over all rows r: in place
    ((Loop("i0", Var("n"), (Loop("j0", Var("m"), (
        Store("b", ROW, Op("exp", (Load("a", ROW, F32),), F32)),), "vector"),)),), True),
    # a row reduction of a, then b = a - max: still in place (reads precede the write)
    ((Loop("i0", Var("n"), (
        AccInit("m", "max", F32),
        Loop("j0", Var("m"), (AccUpdate("m", Load("a", ROW, F32)),), "vector"),
        Loop("j0", Var("m"), (Store("b", ROW, Op("sub", (Load("a", ROW, F32),
                                                         AccRef("m", F32)), F32)),),
             "vector"))),), True),
    # reading a after writing b in the same row: not in place
    ((Loop("i0", Var("n"), (
        Loop("j0", Var("m"), (Store("b", ROW, Load("a", ROW, F32)),), "vector"),
        AccInit("s", "sum", F32),
        Loop("j0", Var("m"), (AccUpdate("s", Load("a", ROW, F32)),), "vector"))),), False),
    # reading a at another position (a transpose): not in place
    ((Loop("i0", Var("n"), (Loop("j0", Var("m"), (
        Store("b", ROW, Load("a", Op("add", (Op("mul", (J0, Var("n")), DType.int64), I0),
                                     DType.int64), F32)),), "vector"),)),), False),
    # b written at one position for every row (it does not name i0): not in place
    ((Loop("i0", Var("n"), (Loop("j0", Var("m"), (
        Store("b", J0, Load("a", J0, F32)),), "vector"),)),), False),
])
def test_in_place_conditions(body: tuple, ok: bool) -> None:
    assert in_place_ok(_kernel(*body), "a", "b") is ok


def test_plan_reuses_a_dead_slot_and_renames_in_place_results() -> None:
    def temp(name: str, n: int) -> Buffer:
        return Buffer(name, F32, Size(n), "temp")

    def copy(src: str, dst: str) -> Kernel:
        v = Var("j0")
        return Kernel(f"{src}->{dst}", (BufferParam(src, F32, "in"),
                                        BufferParam(dst, F32, "out")),
                      (Loop("j0", Var("n"), (Store(dst, v, Load(src, v, F32)),), "vector"),))

    module = Module("m", [Buffer("in0", F32, Size(1000), "input"),
                          Buffer("out0", F32, Size(1000), "output"),
                          temp("t0", 1000), temp("t1", 1000), temp("t2", 1000),
                          temp("t3", 100)],
                    [copy("in0", "t0"), copy("t0", "t1"), copy("t1", "t3"),
                     copy("t3", "t2"), copy("t2", "out0")], ())
    renamed, plan = plan_memory(module)
    assert plan is not None
    # t1 is computed in place of t0; t3 is smaller than t1 and t2 larger than t3 (not in
    # place); t2 reuses the slot of t0 and t1, dead by then
    assert [(ip.result, ip.into) for ip in plan.in_place] == [("t1", "t0")]
    assert plan.naive_bytes == 3 * 4032 + 448
    assert plan.arena_bytes == 4032 + 448
    check_plan(renamed, plan)
    assert {b.name for b in renamed.buffers if b.kind == "temp"} == {"t0", "t2", "t3"}
    assert "t0[j0] = t0[j0]" in str(renamed)

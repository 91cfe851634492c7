"""How kernels are split over the thread pool: chunks count the work of nested loops."""

from __future__ import annotations

from tensorjit.compiler.codegen.module import PARALLEL_GRAIN, parallel_plan
from tensorjit.ir.dtypes import DType
from tensorjit.ir.loops import AccInit, AccUpdate, Const, Kernel, Load, Loop, Store, Var

F64, I64 = DType.float64, DType.int64
STORE = Store("p", Var("k"), Load("w", Var("k"), F64))


def _loop(var: str, extent: int, body: tuple, kind: str = "serial") -> Loop:
    return Loop(var, Const(extent, I64), body, kind)


def _plan(*body: object) -> int | None:
    return parallel_plan(Kernel("k0", (), tuple(body)))


def test_a_packing_nest_is_split_by_its_rows() -> None:
    # 784 rows x 32 panels x 32 lanes = 800K stores: each row is 1024 of them
    nest = _loop("k", 784, (_loop("p", 32, (_loop("j", 32, (STORE,), "vector"),)),))
    chunk = _plan(nest)
    assert chunk == -(-PARALLEL_GRAIN // 1024)
    assert chunk < 784 // 2  # both threads get a share


def test_flat_loops_and_stages_one_after_the_other() -> None:
    assert _plan(_loop("i", 1 << 20, (STORE,), "vector")) == PARALLEL_GRAIN
    # three passes over a row of 1024 add up
    row = _loop("i", 4096, tuple(_loop(f"j{s}", 1024, (STORE,), "vector") for s in range(3)))
    assert _plan(row) == -(-PARALLEL_GRAIN // 3072)


def test_kernels_that_cannot_be_split() -> None:
    assert _plan(STORE) is None  # no loop
    assert _plan(_loop("i", 8, (STORE,)), _loop("j", 8, (STORE,))) is None  # two loops
    spanning = _loop("i", 1 << 20, (AccUpdate("a", Load("w", Var("i"), F64)),))
    assert _plan(AccInit("a", "sum", F64), spanning) is None  # a sum across iterations
    assert _plan(spanning) is None

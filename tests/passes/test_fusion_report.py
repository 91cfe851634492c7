"""The fusion stage: the optimized graph annotated with kernels and boundary reasons."""

from __future__ import annotations

from typing import Any

import numpy as np

import tensorjit as tj


def fusion(fn: Any, *args: Any) -> str:
    return tj.compile(tj.trace(fn, *args), cache=False).ir("fusion")


def test_softmax_is_one_kernel_with_its_reductions_in_registers(filecheck: Any) -> None:
    text = fusion(lambda x: tj.nn.softmax(x, axis=-1), np.zeros((16, 32), np.float32))
    filecheck(text, """
    CHECK: # 1 kernels
    CHECK-NEXT: # k0 rows kernel: [[M:%\\d+]] [[S:%\\d+]] [[D:%\\d+]] -- first kernel
    CHECK: [[M]] = reduce_max(%0) {axes=(1,)} : f32[16]    # k0 (reduce; kept in a register)
    CHECK: exp([[E:%\\d+]]) : f32[16,32]    # inlined into k0
    CHECK: [[S]] = reduce_sum(
    CHECK-SAME: # k0 (reduce; kept in a register)
    CHECK: [[D]] = div(
    CHECK-SAME: # k0 (output)
    """)


def test_a_value_needed_at_another_row_splits_the_kernel(filecheck: Any) -> None:
    def fn(x: Any) -> Any:
        m = x.max(axis=1)
        return x - m[:, None], tj.flip(m, 0)

    filecheck(fusion(fn, np.zeros((16, 32), np.float32)), """
    CHECK: # k0 rows kernel: [[M:%\\d+]] [[Y:%\\d+]] -- first kernel
    CHECK-NEXT: # k1 rows kernel: [[F:%\\d+]] -- could not join k0: reduce_max read at another row
    CHECK: [[M]] = reduce_max(%0) {axes=(1,)} : f32[16]    # k0 (reduce)
    CHECK: [[F]] = slice([[M]])
    CHECK-SAME: # k1 (output)
    """)


def test_matmul_operands_and_recomputation_are_explained(filecheck: Any) -> None:
    x = np.zeros((32, 64), np.float32)
    w = np.zeros((64, 16), np.float32)

    def fn(x: Any, w: Any) -> Any:
        e = tj.exp(x) + 1.0
        return e @ w, tj.sum(e, axis=0)

    filecheck(fusion(fn, x, w), """
    CHECK: pack kernel
    CHECK: gemm kernel
    CHECK: columns kernel
    CHECK: exp(%0) : f32[32,64]    # inlined into k0
    CHECK: add(
    CHECK-SAME: # k0 (contraction operand)
    CHECK: matmul(
    CHECK-SAME: # k1, k2 (output)
    """)


def test_an_inlined_value_read_by_two_kernels_is_computed_in_each(filecheck: Any) -> None:
    x = np.zeros((32, 64), np.float32)
    filecheck(fusion(lambda x: (tj.exp(x).sum(axis=1), tj.exp(x).sum(axis=0)), x), """
    CHECK: exp(%0) : f32[32,64]    # inlined into k0, k1 (computed in each)
    """)

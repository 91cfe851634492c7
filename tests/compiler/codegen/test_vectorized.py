"""Key kernels vectorize and fuse: vector registers and no calls in the vector loop of a
fused transcendental kernel; softmax and layer norm over rows are ONE kernel each."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

import tensorjit as tj

_LABEL = re.compile(r"^(\.?[\w.$]+):")
_JUMP = re.compile(r"^\s+j[a-z]+\s+(\.?[\w.$]+)\s*$")
_VECTOR_FP = re.compile(r"^\s+v\w+ps\s.*%[yz]mm")  # packed float32 op on ymm/zmm


def loops(asm: str) -> list[list[str]]:
    """The bodies of the loops in an assembly listing: the lines from a label to a later
    jump back to it (a backward branch)."""
    lines = asm.splitlines()
    where: dict[str, int] = {}
    bodies = []
    for n, line in enumerate(lines):
        m = _LABEL.match(line)
        if m:
            where[m.group(1)] = n
            continue
        j = _JUMP.match(line)
        if j and j.group(1) in where:
            bodies.append(lines[where[j.group(1)]: n + 1])
    return bodies


def _is_call(line: str) -> bool:
    return re.match(r"^\s+call", line) is not None


def test_loop_finder_on_a_tiny_listing() -> None:
    asm = ".LBB0_1:\n\tvaddps\t%zmm0, %zmm1, %zmm1\n\tcallq\tfoo\n\tjne\t.LBB0_1\n" \
          ".LBB0_2:\n\tretq\n"
    (body,) = loops(asm)
    assert any(_VECTOR_FP.match(x) for x in body) and any(_is_call(x) for x in body)


@pytest.fixture(scope="module")
def fused() -> tj.CompiledFunction:
    def kernel(x: Any, a: Any, b: Any) -> Any:
        return tj.tanh(x * a + b) * tj.nn.sigmoid(x) + 0.5 * x * x

    spec = np.zeros(4099, np.float32)  # a vector body and a scalar tail
    return tj.compile(tj.trace(kernel, spec, spec, spec))


def test_fused_kernel_is_correct(fused: tj.CompiledFunction) -> None:
    rng = np.random.default_rng(0)
    x, a, b = (rng.standard_normal(4099).astype(np.float32) for _ in range(3))
    want = np.tanh(x * a + b) * (1 / (1 + np.exp(-x))) + 0.5 * x * x
    np.testing.assert_allclose(fused(x, a, b), want, rtol=1e-5, atol=1e-6)


def test_fused_elementwise_is_one_kernel(fused: tj.CompiledFunction) -> None:
    assert fused.stats["kernels"] == 1
    assert fused.ir("loops").count("\nkernel ") == 1


def test_fused_kernel_uses_vector_registers_and_no_calls(fused: tj.CompiledFunction) -> None:
    asm = fused.ir("asm")
    assert re.search(r"%[yz]mm\d", asm), "no ymm/zmm register in the assembly"
    vector_loops = [body for body in loops(asm) if any(_VECTOR_FP.match(x) for x in body)]
    assert vector_loops, "no loop with packed float32 ops on ymm/zmm registers"
    for body in vector_loops:
        calls = [x.strip() for x in body if _is_call(x)]
        assert not calls, f"call in a vector loop: {calls}"
    # the vector loop is the wide one the target offers
    if "512-bit" in str(fused.stats.get("target", "")):
        assert any("%zmm" in x for body in vector_loops for x in body)


@pytest.mark.parametrize("case", ["softmax", "log_softmax", "layer_norm", "layer_norm_affine"])
def test_row_kernels_are_one_kernel(case: str) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 1024)).astype(np.float32)
    w = rng.standard_normal(1024).astype(np.float32)
    b = rng.standard_normal(1024).astype(np.float32)
    fns = {
        "softmax": (lambda x, w, b: tj.nn.softmax(x, dim=-1)),
        "log_softmax": (lambda x, w, b: tj.nn.log_softmax(x, dim=-1)),
        "layer_norm": (lambda x, w, b: tj.nn.layer_norm(x, (1024,))),
        "layer_norm_affine": (lambda x, w, b: tj.nn.layer_norm(x, (1024,), w, b)),
    }
    f = tj.compile(tj.trace(fns[case], x, w, b))
    assert f.stats["kernels"] == 1, f.ir("loops")
    assert f.ir("loops").count("\nkernel ") == 1
    x64 = x.astype(np.float64)
    if case == "softmax":
        e = np.exp(x64 - x64.max(axis=-1, keepdims=True))
        want = e / e.sum(axis=-1, keepdims=True)
    elif case == "log_softmax":
        s = x64 - x64.max(axis=-1, keepdims=True)
        want = s - np.log(np.exp(s).sum(axis=-1, keepdims=True))
    else:
        want = (x64 - x64.mean(-1, keepdims=True)) / np.sqrt(x64.var(-1, keepdims=True) + 1e-5)
        if case == "layer_norm_affine":
            want = want * w + b
    np.testing.assert_allclose(f(x, w, b), want.astype(np.float32), rtol=2e-5, atol=2e-6)

"""The optimizer keeps results bit for bit (without fast_math), on hypothesis-generated
graphs built to trigger its rules, with inputs full of NaN, Inf, -0.0 and subnormals.

Two comparisons: the reference interpreter on the graph before and after the pipeline
(many examples; cheap), and the compiled code with and without the pipeline (fewer
examples; each compiles twice). The interpreter's graphs have no ``pow``: NumPy's own
``power`` is not correctly rounded (on AVX-512 it is SVML's) and depends on the operands'
strides (a broadcast exponent of -1 or 0.5 takes an exact fast path only in 1-D), so it
is not a bit-exact reference; the compiled code's is, and the compiled comparison has it.
NaNs compare equal whatever their sign and payload, which IEEE arithmetic leaves
unspecified; everything else, the sign of zero included, must be identical.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from passes_off import passes_disabled

import tensorjit as tj
from tensorjit.passes.pipeline import optimize

SPECIALS = [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 1e-40, -3e38, 0.5, 2.0, 4.0]
CONSTS = [0.0, -0.0, 1.0, -1.0, 2.0, 0.5, 0.25, 4.0, 3.0, np.inf, np.nan]
BINARY = ["add", "subtract", "multiply", "divide", "maximum", "minimum"]
UNARY = ["negative", "abs", "exp", "sqrt", "tanh", "negneg", "square"]
Step = tuple[Any, ...]


def apply_step(step: Step, vals: list[Any]) -> Any:
    kind = step[0]
    if kind == "binary":
        _, name, i, j = step
        return getattr(tj, name)(vals[i], vals[j])
    if kind == "const":
        _, name, i, c, left = step
        return getattr(tj, name)(c, vals[i]) if left else getattr(tj, name)(vals[i], c)
    if kind == "power":
        _, i, e = step
        return tj.power(vals[i], tj.full((), e, dtype=vals[i].dtype))
    if kind == "unary":
        _, name, i = step
        if name == "negneg":
            return tj.negative(tj.negative(vals[i]))
        return getattr(tj, name)(vals[i])
    if kind == "transpose2":
        x = vals[step[1]]
        return tj.transpose(tj.transpose(x) * 1.0)
    if kind == "reshape2":
        x = vals[step[1]]
        return tj.reshape(tj.reshape(x, (-1,)), x.shape)
    if kind == "broadcast":  # elementwise work on a broadcast, then back to the shape
        x = vals[step[1]]
        return tj.sum(tj.exp(tj.broadcast_to(x, (2,) + tuple(x.shape))) * 0.5, axis=0)
    if kind == "reduce":
        _, name, i = step
        x = vals[i]
        return tj.broadcast_to(getattr(tj, name)(x, axis=-1, keepdims=True), x.shape) \
            if x.ndim else x
    if kind == "where":
        _, i, j = step
        return tj.where(vals[i] > vals[j], vals[i], vals[j] * 2.0)
    if kind == "twice":  # the user writes the same expression twice
        x = vals[step[1]]
        return tj.tanh(x * 3.0) + tj.tanh(x * 3.0)
    if kind == "commute":
        _, i, j = step
        return vals[i] * vals[j] - vals[j] * vals[i]
    raise AssertionError(kind)


def run_program(steps: Sequence[Step], outputs: Sequence[int], *inputs: Any) -> tuple:
    vals = list(inputs)
    for step in steps:
        vals.append(apply_step(step, vals))
    return tuple(vals[k] for k in outputs)


@st.composite
def programs(draw: Any, power: bool = True) -> tuple[list[np.ndarray], list[Step], list[int]]:
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    shape = tuple(draw(st.lists(st.sampled_from([1, 2, 3, 5]), min_size=1, max_size=2)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    inputs = []
    for _ in range(draw(st.integers(1, 2))):
        a = rng.standard_normal(shape) * 3
        special = rng.random(shape) < 0.4
        a[special] = rng.choice(SPECIALS, size=int(special.sum()))
        inputs.append(a.astype(dtype))
    n = len(inputs)
    steps: list[Step] = []
    for _ in range(draw(st.integers(1, 8))):
        i = draw(st.integers(0, n - 1))
        j = draw(st.integers(0, n - 1))
        kind = draw(st.sampled_from(["binary", "const", "const", "unary", "transpose2",
                                     "reshape2", "broadcast", "reduce", "where", "twice",
                                     "commute"] + ["power"] * power))
        if kind == "binary":
            steps.append(("binary", draw(st.sampled_from(BINARY)), i, j))
        elif kind == "const":
            steps.append(("const", draw(st.sampled_from(BINARY)), i,
                          draw(st.sampled_from(CONSTS)), draw(st.booleans())))
        elif kind == "power":
            steps.append(("power", i, draw(st.sampled_from([2.0, -1.0, 0.5, 1.0, 0.0]))))
        elif kind == "unary":
            steps.append(("unary", draw(st.sampled_from(UNARY)), i))
        elif kind == "reduce":
            steps.append(("reduce", draw(st.sampled_from(["max", "min", "sum"])), i))
        elif kind in ("where", "commute"):
            steps.append((kind, i, j))
        else:
            steps.append((kind, i))
        n += 1
    outputs = sorted({n - 1, draw(st.integers(len(inputs), n - 1))})
    return inputs, steps, outputs


def assert_same_bits(got: np.ndarray, want: np.ndarray, what: str) -> None:
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape, what
    if got.dtype.kind == "f":
        both_nan = np.isnan(got) & np.isnan(want)
        view = {4: np.uint32, 8: np.uint64}[got.dtype.itemsize]
        same = (got.view(view) == want.view(view)) | both_nan
    else:
        same = got == want
    if not same.all():
        k = np.argwhere(~same)[0]
        raise AssertionError(f"{what}: at {tuple(k)} got {got[tuple(k)]!r}, "
                             f"want {want[tuple(k)]!r}")


def _trace(program: tuple[list[np.ndarray], list[Step], list[int]]) -> tuple:
    inputs, steps, outputs = program

    def fn(*xs: Any) -> tuple:
        return run_program(steps, outputs, *xs)

    return inputs, steps, tj.trace(fn, *inputs)


SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                     HealthCheck.data_too_large])


@settings(max_examples=300, **SETTINGS)
@given(programs(power=False))
def test_interpreted_results_are_unchanged(program: tuple) -> None:
    inputs, steps, g = _trace(program)
    opt = optimize(g)
    with np.errstate(all="ignore"):
        before = tj.interpret(g, inputs)
        after = tj.interpret(opt, inputs)
    for k, (a, b) in enumerate(zip(after, before)):
        assert_same_bits(a, b, f"output {k}, steps={steps}\n{g}\n{opt}")


@settings(max_examples=25, **SETTINGS)
@given(programs())
def test_compiled_results_are_unchanged(program: tuple) -> None:
    inputs, steps, g = _trace(program)
    optimized = tj.compile(g, cache=False)
    with passes_disabled():
        plain = tj.compile(g, cache=False)
    assert plain.ir("optimized") == plain.ir("graph")
    for k, (a, b) in enumerate(zip(optimized(*inputs), plain(*inputs))):
        assert_same_bits(a, b, f"output {k}, steps={steps}\n{optimized.ir('optimized')}")

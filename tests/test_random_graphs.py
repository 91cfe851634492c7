"""Hypothesis-generated graphs: random compositions of elementwise ops, broadcasting,
reductions, casts and movement (reshape, transpose, strided slices, expand_dims,
broadcast_to, flip, pad, concatenate), compiled and compared with the reference interpreter AND with
NumPy running the very same Python function (tj functions fall back to NumPy on arrays).

A program is a list of steps over a growing list of values (the inputs first); each step
is drawn so that it is valid for the shapes at hand, which the generator tracks by running
the program on NumPy arrays while drawing it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tensorjit as tj

SETTINGS = settings(max_examples=50, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
DIMS = [1, 2, 3, 5, 7, 17]
FLOAT_UNARY = ["tanh", "sin", "abs", "negative", "sigmoid", "softsign", "cos"]
INT_UNARY = ["abs", "negative", "square_mod"]
BINARY = ["add", "subtract", "mul_tanh", "maximum", "minimum", "where_gt"]
INT_BINARY = ["add", "subtract", "multiply", "maximum", "minimum", "where_gt"]
REDUCE = ["sum", "max", "min", "mean"]
Step = tuple[Any, ...]


# --------------------------------------------------------------------------------------
# applying a step (to Tensors while tracing, to arrays for the NumPy evaluation)
# --------------------------------------------------------------------------------------

def apply_step(step: Step, vals: list[Any]) -> Any:
    kind = step[0]
    if kind == "unary":
        _, name, i = step
        x = vals[i]
        if name == "sigmoid":
            return tj.nn.sigmoid(x)
        if name == "softsign":
            return tj.nn.softsign(x)
        if name == "square_mod":  # integers: keep magnitudes bounded
            return (x * x) % 1009
        return getattr(tj, name)(x)
    if kind == "binary":
        _, name, i, j = step
        a = vals[i]
        b = vals[j] if isinstance(j, int) else j[1]  # ("const", value)
        if name == "mul_tanh":
            return a * tj.tanh(b)
        if name == "where_gt":
            return tj.where(a > b, a, b * 2)
        return getattr(tj, name)(a, b)
    if kind == "reduce":
        _, name, i, axis, keep = step
        return getattr(tj, name)(vals[i], axis=axis, keepdims=keep)
    if kind == "center":  # x - max(x, axis, keepdims=True): a reduction broadcast back
        _, i, axis = step
        return vals[i] - tj.max(vals[i], axis=axis, keepdims=True)
    if kind == "reshape":
        return tj.reshape(vals[step[1]], step[2])
    if kind == "transpose":
        return tj.transpose(vals[step[1]], step[2])
    if kind == "slice":
        return vals[step[1]][step[2]]
    if kind == "expand_dims":
        return tj.expand_dims(vals[step[1]], step[2])
    if kind == "broadcast_to":
        return tj.broadcast_to(vals[step[1]], step[2])
    if kind == "astype":
        return vals[step[1]].astype(step[2])
    if kind == "flip":
        return tj.flip(vals[step[1]], step[2])
    if kind == "pad":
        return tj.pad(vals[step[1]], step[2])
    if kind == "concat":
        _, i, j, axis = step
        return tj.concatenate([vals[i], vals[j]], axis=axis)
    raise AssertionError(kind)


def run_program(steps: Sequence[Step], outputs: Sequence[int], *inputs: Any
                ) -> tuple[Any, ...]:
    vals = list(inputs)
    for step in steps:
        vals.append(apply_step(step, vals))
    return tuple(vals[k] for k in outputs)


# --------------------------------------------------------------------------------------
# drawing a program
# --------------------------------------------------------------------------------------

def _draw_step(draw: Any, vals: list[np.ndarray], is_float: bool) -> Step | None:
    i = draw(st.integers(0, len(vals) - 1))
    x = vals[i]
    kind = draw(st.sampled_from(["unary", "binary", "binary", "reduce", "center", "reshape",
                                 "transpose", "slice", "expand_dims", "broadcast_to",
                                 "astype", "flip", "pad", "concat"]))
    if kind == "unary":
        return ("unary", draw(st.sampled_from(FLOAT_UNARY if is_float else INT_UNARY)), i)
    if kind == "binary":
        name = draw(st.sampled_from(BINARY if is_float else INT_BINARY))
        partners = [j for j, v in enumerate(vals) if _broadcastable(x.shape, v.shape)]
        if draw(st.booleans()) or not partners:
            value = draw(st.sampled_from([0.5, -1.5, 2.0, 3]) if is_float else
                         st.sampled_from([1, -2, 3, 0]))
            return ("binary", name, i, ("const", value))
        return ("binary", name, i, draw(st.sampled_from(partners)))
    if kind in ("reduce", "center"):
        if x.ndim == 0:
            return None
        axes = draw(st.lists(st.integers(-x.ndim, x.ndim - 1), min_size=1, max_size=x.ndim,
                             unique_by=lambda a: a % x.ndim))
        axis: Any = axes[0] if len(axes) == 1 and draw(st.booleans()) else tuple(axes)
        if draw(st.integers(0, 5)) == 0:
            axis = None
        if kind == "center":
            return ("center", i, axis)
        return ("reduce", draw(st.sampled_from(REDUCE)), i, axis, draw(st.booleans()))
    if kind == "reshape":
        return ("reshape", i, _draw_reshape(draw, x.shape))
    if kind == "transpose":
        return ("transpose", i, tuple(draw(st.permutations(range(x.ndim)))))
    if kind == "slice":
        if x.ndim == 0:
            return None
        index = []
        for n in x.shape:
            start = draw(st.one_of(st.none(), st.integers(-n, n)))
            stop = draw(st.one_of(st.none(), st.integers(-n, n)))
            step = draw(st.sampled_from([None, 1, 2, 3, -1, -2]))
            index.append(slice(start, stop, step))
            if len(range(*index[-1].indices(n))) == 0:
                return None  # keep non-empty (empty shapes are covered elsewhere)
        return ("slice", i, tuple(index))
    if kind == "expand_dims":
        return ("expand_dims", i, draw(st.integers(-x.ndim - 1, x.ndim)))
    if kind == "broadcast_to":
        if x.ndim >= 4:
            return None
        lead = draw(st.sampled_from([(), (2,), (3,)]))
        shape = lead + tuple(draw(st.sampled_from([d, 3])) if d == 1 else d for d in x.shape)
        return ("broadcast_to", i, shape)
    if kind == "astype":
        targets = ["float32", "float64"] if is_float else ["int32", "int64", "float64"]
        return ("astype", i, draw(st.sampled_from(targets)))
    if kind in ("flip", "pad", "concat") and x.ndim == 0:
        return None
    if kind == "flip":
        return ("flip", i, draw(st.integers(-x.ndim, x.ndim - 1)))
    if kind == "pad":
        return ("pad", i, tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2)))
                                for _ in range(x.ndim)))
    if kind == "concat":
        axis = draw(st.integers(-x.ndim, x.ndim - 1))
        same = [j for j, v in enumerate(vals) if v.ndim == x.ndim and v.dtype == x.dtype and
                all(a == b for k, (a, b) in enumerate(zip(v.shape, x.shape))
                    if k != axis % x.ndim)]
        return ("concat", i, draw(st.sampled_from(same)), axis)
    raise AssertionError(kind)


def _broadcastable(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    try:
        return np.broadcast_shapes(a, b) == a  # keep the left operand's shape
    except ValueError:
        return False


def _draw_reshape(draw: Any, shape: tuple[int, ...]) -> tuple[int, ...]:
    n = math.prod(shape)
    choice = draw(st.integers(0, 3))
    if choice == 0 or len(shape) < 2:
        return (n,) if draw(st.booleans()) else (-1,) + (1,) * draw(st.integers(0, 1))
    if choice == 1:  # merge two adjacent axes
        k = draw(st.integers(0, len(shape) - 2))
        return shape[:k] + (shape[k] * shape[k + 1],) + shape[k + 2:]
    if choice == 2:  # split an axis by a divisor
        k = draw(st.integers(0, len(shape) - 1))
        divisors = [d for d in range(1, shape[k] + 1) if shape[k] % d == 0]
        d = draw(st.sampled_from(divisors))
        return shape[:k] + (d, shape[k] // d) + shape[k + 1:]
    return (shape[0], -1)


@st.composite
def programs(draw: Any, is_float: bool) -> tuple[list[np.ndarray], list[Step], list[int]]:
    dtype = draw(st.sampled_from(["float32", "float64"] if is_float else ["int32", "int64"]))
    rank = draw(st.integers(0, 3))
    base = tuple(draw(st.sampled_from(DIMS)) for _ in range(rank))
    n_inputs = draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    inputs = []
    for k in range(n_inputs):
        # later inputs may drop leading dims or have size-1 dims: they broadcast
        shape = base[draw(st.integers(0, rank)):] if k else base
        shape = tuple(1 if draw(st.integers(0, 3)) == 0 else d for d in shape)
        if is_float:
            inputs.append(rng.uniform(-2, 2, shape).astype(dtype))
        else:
            inputs.append(rng.integers(-20, 21, shape).astype(dtype))
    vals = list(inputs)
    steps: list[Step] = []
    for _ in range(draw(st.integers(1, 10))):
        step = _draw_step(draw, vals, is_float)
        if step is None:
            continue
        with np.errstate(all="ignore"):
            vals.append(np.asarray(apply_step(step, vals)))
        steps.append(step)
    n = len(vals)
    extra = draw(st.lists(st.integers(0, n - 1), max_size=2))
    outputs = [n - 1] + [k for k in extra if k != n - 1]
    return inputs, steps, outputs


# --------------------------------------------------------------------------------------
# the tests
# --------------------------------------------------------------------------------------

def _compare(inputs: list[np.ndarray], steps: list[Step], outputs: list[int]) -> None:
    def fn(*xs: Any) -> tuple[Any, ...]:
        return run_program(steps, outputs, *xs)

    with np.errstate(all="ignore"):
        reference = [np.asarray(r) for r in fn(*inputs)]  # NumPy itself
    g = tj.trace(fn, *inputs)
    interp = tj.interpret(g, inputs)
    compiled = tj.compile(g)(*inputs)
    assert isinstance(compiled, tuple) and len(compiled) == len(reference)
    scale = max([1.0] + [float(np.max(np.abs(r))) for r in reference if r.size])
    for k, (r, i, c) in enumerate(zip(reference, interp, compiled)):
        what = f"output {k} of\n{g}\nsteps={steps}"
        for got, how in ((i, "interpreter"), (c, "compiled")):
            assert got.dtype == r.dtype, f"{how} dtype {got.dtype} != {r.dtype}: {what}"
            assert got.shape == r.shape, f"{how} shape {got.shape} != {r.shape}: {what}"
            if r.dtype.kind == "f":
                tol = 2e-5 if r.dtype == np.float32 else 1e-11
                np.testing.assert_allclose(got, r, rtol=tol, atol=tol * scale,
                                           err_msg=f"{how}: {what}")
            else:
                np.testing.assert_array_equal(got, r, err_msg=f"{how}: {what}")


@SETTINGS
@given(programs(is_float=True))
def test_random_float_graphs(program: tuple[list[np.ndarray], list[Step], list[int]]) -> None:
    _compare(*program)


@SETTINGS
@given(programs(is_float=False))
def test_random_int_graphs(program: tuple[list[np.ndarray], list[Step], list[int]]) -> None:
    _compare(*program)


@pytest.mark.parametrize("steps,outputs", [
    # hand-picked programs that mix every category, as regression anchors
    ([("center", 0, -1), ("unary", "tanh", 1), ("reduce", "sum", 2, (0,), True),
      ("binary", "mul_tanh", 2, 3)], [4]),
    ([("transpose", 0, (1, 0)), ("slice", 1, (slice(None, None, -2), slice(1, None))),
      ("binary", "add", 2, ("const", 0.5)), ("reduce", "mean", 3, None, False)], [4, 3]),
    ([("expand_dims", 0, 1), ("broadcast_to", 1, (5, 3, 7)), ("reshape", 2, (15, 7)),
      ("reduce", "max", 3, 0, False), ("binary", "where_gt", 4, ("const", 0.0))], [5]),
])
def test_fixed_programs(steps: list[Step], outputs: list[int]) -> None:
    x = np.random.default_rng(0).uniform(-2, 2, (5, 7)).astype(np.float32)
    _compare([x], steps, outputs)

"""Calling compiled code wrongly, unsupported code, and the call-path guarantees.

Wrong arguments raise tj.ShapeError (a ValueError) or tj.DTypeError (a TypeError) whose
message names the argument, what was expected and what was given; unsupported code raises
tj.UnsupportedError naming the op and the user's line. Also: non-contiguous inputs,
``out=`` (and aliasing it with an input), concurrent calls, and the compile caches.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np
import pytest

import tensorjit as tj

HERE = os.path.basename(__file__)


def _message(exc: pytest.ExceptionInfo[BaseException]) -> str:
    return str(exc.value)


def assert_mentions(message: str, *parts: str) -> None:
    for p in parts:
        assert p in message, f"{p!r} not in error message:\n{message}"


def shape_text(shape: tuple[int, ...]) -> list[str]:
    """The dims of a shape as they must appear in a message (in order)."""
    return [str(d) for d in shape]


def assert_shape_in(message: str, shape: tuple[int, ...]) -> None:
    """Every dim appears, in order (the separator style is the printer's business)."""
    pos = 0
    for d in shape_text(shape):
        found = message.find(d, pos)
        assert found >= 0, f"shape {shape} not in error message:\n{message}"
        pos = found + len(d)


@pytest.fixture(scope="module")
def add2() -> tj.CompiledFunction:
    def add2(x: Any, w: Any) -> Any:
        return x * 2.0 + w

    spec = np.zeros((3, 4), np.float32)
    return tj.compile(tj.trace(add2, spec, np.zeros(4, np.float32)))


@pytest.fixture(scope="module")
def symbolic() -> tj.CompiledFunction:
    def sym(x: Any, y: Any) -> Any:
        return x + y[:, None]

    return tj.compile(tj.trace(sym, tj.TensorSpec(("n", 3), "float64"),
                               tj.TensorSpec(("n",), "float64")))


# --------------------------------------------------------------------------------------
# the error classes
# --------------------------------------------------------------------------------------

def test_error_class_hierarchy() -> None:
    assert issubclass(tj.ShapeError, ValueError)
    assert issubclass(tj.DTypeError, TypeError)
    for cls in (tj.ShapeError, tj.DTypeError, tj.UnsupportedError, tj.VerificationError):
        assert issubclass(cls, tj.TensorJitError)
    assert issubclass(tj.TensorJitError, Exception)


# --------------------------------------------------------------------------------------
# wrong arguments to a compiled function
# --------------------------------------------------------------------------------------

def test_wrong_argument_count(add2: tj.CompiledFunction) -> None:
    x = np.ones((3, 4), np.float32)
    for args in [(x,), (x, x[0], x)]:
        with pytest.raises(tj.ShapeError) as exc:
            add2(*args)
        assert_mentions(_message(exc), "2", str(len(args)), "x", "w")


def test_wrong_dtype(add2: tj.CompiledFunction) -> None:
    with pytest.raises(tj.DTypeError) as exc:
        add2(np.ones((3, 4), np.float64), np.ones(4, np.float32))
    assert isinstance(exc.value, TypeError)
    assert_mentions(_message(exc), "x", "float32", "float64")
    with pytest.raises(tj.DTypeError) as exc:
        add2(np.ones((3, 4), np.float32), np.ones(4, np.int32))
    assert_mentions(_message(exc), "argument 1", "w", "float32", "int32")


def test_wrong_rank(add2: tj.CompiledFunction) -> None:
    with pytest.raises(tj.ShapeError) as exc:
        add2(np.ones((3, 4, 1), np.float32), np.ones(4, np.float32))
    assert isinstance(exc.value, ValueError)
    msg = _message(exc)
    assert_mentions(msg, "x")
    assert_shape_in(msg, (3, 4))
    assert_shape_in(msg, (3, 4, 1))


def test_wrong_shape(add2: tj.CompiledFunction) -> None:
    with pytest.raises(tj.ShapeError) as exc:
        add2(np.ones((3, 4), np.float32), np.ones(5, np.float32))
    msg = _message(exc)
    assert_mentions(msg, "argument 1", "w", "4", "5")


def test_symbolic_dims_bind_per_call(symbolic: tj.CompiledFunction) -> None:
    for n in (1, 4, 37):
        x = np.arange(3 * n, dtype=np.float64).reshape(n, 3)
        y = np.arange(n, dtype=np.float64)
        np.testing.assert_array_equal(symbolic(x, y), x + y[:, None])


def test_symbolic_dim_bound_to_two_sizes(symbolic: tj.CompiledFunction) -> None:
    with pytest.raises(tj.ShapeError) as exc:
        symbolic(np.ones((4, 3)), np.ones(5))
    assert_mentions(_message(exc), "y", "'n'", "4", "5")


def test_symbolic_wrong_rank_and_static_dim(symbolic: tj.CompiledFunction) -> None:
    with pytest.raises(tj.ShapeError) as exc:
        symbolic(np.ones(4), np.ones(4))
    assert_mentions(_message(exc), "x", "rank", "2", "1")
    with pytest.raises(tj.ShapeError) as exc:
        symbolic(np.ones((4, 2)), np.ones(4))
    msg = _message(exc)
    assert_mentions(msg, "x", "3")
    assert_shape_in(msg, (4, 2))


@pytest.mark.parametrize("bad", [[[1.0] * 4] * 3, "abc", None, 3.0, {"x": 1}])
def test_non_array_argument(add2: tj.CompiledFunction, bad: Any) -> None:
    with pytest.raises(tj.DTypeError) as exc:
        add2(bad, np.ones(4, np.float32))
    assert_mentions(_message(exc), "argument 0", "x", type(bad).__name__, "float32")


def test_python_scalar_for_a_0d_argument() -> None:
    f = tj.compile(tj.trace(lambda a, s: a * s, np.ones(5, np.float64), np.float64(0)))
    np.testing.assert_array_equal(f(np.ones(5), 2.5), np.full(5, 2.5))
    np.testing.assert_array_equal(f(np.ones(5), np.float64(3)), np.full(5, 3.0))


# --------------------------------------------------------------------------------------
# out=
# --------------------------------------------------------------------------------------

def test_out_returns_the_callers_buffer(add2: tj.CompiledFunction) -> None:
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    w = np.arange(4, dtype=np.float32)
    out = np.full((3, 4), np.nan, np.float32)
    result = add2(x, w, out=out)
    assert result is out
    np.testing.assert_array_equal(out, x * 2 + w)


def test_out_for_several_outputs() -> None:
    x = np.linspace(-1, 1, 33).astype(np.float64)
    f = tj.compile(tj.trace(lambda x: (x + 1, tj.sum(x), x > 0), x))
    outs = (np.empty(33), np.empty(()), np.empty(33, bool))
    result = f(x, out=outs)
    assert all(r is o for r, o in zip(result, outs))
    np.testing.assert_array_equal(outs[0], x + 1)
    np.testing.assert_allclose(outs[1], np.sum(x), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(outs[2], x > 0)
    with pytest.raises(tj.ShapeError) as exc:
        f(x, out=outs[:2])
    assert_mentions(_message(exc), "3", "2")


@pytest.mark.parametrize("out,error,parts", [
    (np.empty((3, 5), np.float32), tj.ShapeError, ["out", "4", "5"]),
    (np.empty((4, 3), np.float32), tj.ShapeError, ["out", "3", "4"]),
    (np.empty((3, 4), np.float64), tj.DTypeError, ["out", "float32", "float64"]),
    (np.empty((3, 4), np.int32), tj.DTypeError, ["out", "float32", "int32"]),
    (3.0, tj.DTypeError, ["out", "float"]),
    (np.empty((4, 3), np.float32).T, tj.ShapeError, ["out", "contiguous"]),
])
def test_out_checked_like_inputs(add2: tj.CompiledFunction, out: Any,
                                 error: type[Exception], parts: list[str]) -> None:
    with pytest.raises(error) as exc:
        add2(np.ones((3, 4), np.float32), np.ones(4, np.float32), out=out)
    assert_mentions(_message(exc), *parts)


def test_out_read_only_rejected(add2: tj.CompiledFunction) -> None:
    out = np.empty((3, 4), np.float32)
    out.flags.writeable = False
    with pytest.raises(tj.ShapeError):
        add2(np.ones((3, 4), np.float32), np.ones(4, np.float32), out=out)


@pytest.mark.parametrize("fn", [
    lambda x: tj.flip(x) * 2 + x,              # reads elements the output overwrites
    lambda x: x[::-1, ::-1].T * x,             # transposed read
    lambda x: x - tj.mean(x, axis=0, keepdims=True),  # a reduction over the input
    lambda x: tj.nn.softmax(x, dim=-1),
])
def test_out_aliasing_an_input(fn: Any) -> None:
    x = np.random.default_rng(1).standard_normal((17, 17)).astype(np.float32)
    with np.errstate(all="ignore"):
        want = np.asarray(fn(x.copy()))
    f = tj.compile(tj.trace(fn, x))
    result = f(x, out=x)
    assert result is x
    np.testing.assert_allclose(x, want, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------------------
# non-contiguous inputs, threads, caches
# --------------------------------------------------------------------------------------

def test_non_contiguous_inputs_are_accepted() -> None:
    base = np.arange(2 * 6 * 10, dtype=np.float64).reshape(2, 6, 10)
    f = tj.compile(tj.trace(lambda x, y: x * 2 + y, np.zeros((6, 5)), np.zeros(5)))
    views = [base[1, :, ::2], base[0, :, 1::2], base[1, ::-1, :5], base[0].T[:5].T,
             np.asfortranarray(base[0, :, :5])]
    for v in views:
        assert v.shape == (6, 5)
        y = base[0, 0, 3:8]
        np.testing.assert_array_equal(f(v, y), v * 2 + y)
        assert not v.flags.c_contiguous or v.base is not None


def test_calls_from_two_threads() -> None:
    def fn(x: Any) -> Any:
        return tj.tanh(x) * 3 + tj.sum(x, axis=1, keepdims=True)

    f = tj.compile(tj.trace(fn, np.zeros((64, 129), np.float32)))
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        try:
            rng = np.random.default_rng(seed)
            for _ in range(200):
                x = rng.standard_normal((64, 129)).astype(np.float32)
                got = f(x)
                want = np.tanh(x) * 3 + np.sum(x, axis=1, keepdims=True)
                np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(s,)) for s in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    assert f.stats["calls"] >= 400


def test_compile_is_cached() -> None:
    def fn(x: Any) -> Any:
        return tj.exp(x) + 1.0

    g = tj.trace(fn, np.zeros(7, np.float32))
    assert tj.compile(g) is tj.compile(g)
    # the same function traced again is the same graph, hence the same compiled code
    assert tj.compile(tj.trace(fn, np.zeros(7, np.float32))) is tj.compile(g)
    # other shapes or options are other entries
    assert tj.compile(tj.trace(fn, np.zeros(8, np.float32))) is not tj.compile(g)
    assert tj.compile(g, opt_level=1) is not tj.compile(g)
    assert tj.compile(g, cache=False) is not tj.compile(g)


def test_jit_compiles_once_per_signature() -> None:
    calls = []

    @tj.jit
    def f(x: Any, y: Any) -> Any:
        calls.append(1)  # runs only while tracing
        return x * y + 1

    a32, b32 = np.ones(5, np.float32), np.full(5, 2, np.float32)
    for _ in range(3):
        np.testing.assert_array_equal(f(a32, b32), np.full(5, 3, np.float32))
    assert len(f.signatures) == 1 and len(calls) == 1
    f(np.ones(6, np.float32), np.ones(6, np.float32))
    assert len(f.signatures) == 2
    out = f(np.ones(5), np.ones(5))
    assert out.dtype == np.float64 and len(f.signatures) == 3
    f(a32, b32)
    assert len(f.signatures) == 3 and len(calls) == 3


def test_jit_out_and_options() -> None:
    f = tj.jit(lambda x: x + 1, threads=1)
    x = np.arange(4, dtype=np.int64)
    out = np.empty(4, np.int64)
    assert f(x, out=out) is out
    np.testing.assert_array_equal(out, x + 1)
    with pytest.raises(tj.TensorJitError):
        tj.jit(lambda x: x, bogus=1)
    with pytest.raises(tj.TensorJitError):
        tj.compile(tj.trace(lambda x: x + 1, x), opt_level=7)


# --------------------------------------------------------------------------------------
# unsupported code and trace-time errors
# --------------------------------------------------------------------------------------

def test_boolean_mask_indexing_is_unsupported() -> None:
    def fn(x: Any) -> Any:
        return x[np.array([True, False, True])]

    with pytest.raises(tj.UnsupportedError) as exc:
        tj.trace(fn, np.ones(3, np.float32))
    assert isinstance(exc.value, NotImplementedError)
    assert_mentions(_message(exc), "mask", HERE)


def test_if_on_a_tensor_is_unsupported() -> None:
    def fn(x: Any) -> Any:
        if x.sum() > 0:
            return x
        return -x

    with pytest.raises(tj.UnsupportedError) as exc:
        tj.trace(fn, np.ones(3, np.float32))
    assert_mentions(_message(exc), "tj.where", HERE)


def test_tensor_to_numpy_is_unsupported() -> None:
    with pytest.raises(tj.UnsupportedError) as exc:
        tj.trace(lambda x: np.asarray(x) + 1, np.ones(3))
    assert_mentions(_message(exc), HERE)
    with pytest.raises(tj.UnsupportedError):
        tj.trace(lambda x: float(x[0]), np.ones(3))


# Each bad op raises at trace time a tj error that is ALSO the exception type NumPy raises
# for the same call, and whose message carries the user's line.
BAD_OPS: list[tuple[str, Any, type[Exception], type[Exception]]] = [
    ("broadcast", lambda x: x + np.ones(4), ValueError, tj.ShapeError),
    ("reshape", lambda x: x.reshape(4, 2), ValueError, tj.ShapeError),
    ("matmul", lambda x: tj.matmul(x, np.ones((4, 2))), ValueError, tj.ShapeError),
    ("axis", lambda x: tj.sum(x, axis=2), ValueError, tj.ShapeError),
    ("transpose", lambda x: tj.transpose(x, (0, 0)), ValueError, tj.ShapeError),
    ("empty max", lambda x: tj.max(x[:0], axis=0), ValueError, tj.ShapeError),
    ("index", lambda x: x[3], IndexError, tj.ShapeError),
    ("bitwise float", lambda x: x & x, TypeError, tj.DTypeError),
    ("invert float", lambda x: ~x, TypeError, tj.DTypeError),
    ("concat rank", lambda x: tj.concatenate([x, x[0]]), ValueError, tj.ShapeError),
]


@pytest.mark.parametrize("name,fn,np_error,tj_error", BAD_OPS, ids=[b[0] for b in BAD_OPS])
def test_trace_errors_mirror_numpy(name: str, fn: Any, np_error: type[Exception],
                                   tj_error: type[Exception]) -> None:
    x = np.ones((3, 3), np.float64)
    with pytest.raises(np_error):
        fn(x)
    with pytest.raises(tj_error) as exc:
        tj.trace(fn, x)
    if not isinstance(exc.value, np_error):
        pytest.fail(f"{name}: {type(exc.value).__name__} is not a {np_error.__name__}, "
                    "which NumPy raises")
    assert_mentions(_message(exc), HERE)


def test_bad_specs() -> None:
    with pytest.raises(tj.DTypeError) as exc:
        tj.trace(lambda x: x, np.ones(3, np.float16))
    assert_mentions(_message(exc), "float16")
    with pytest.raises(tj.DTypeError):
        tj.TensorSpec((3,), "complex64")
    with pytest.raises(tj.DTypeError) as exc:
        tj.trace(lambda x: x, [1, 2, 3])
    assert_mentions(_message(exc), "list")
    with pytest.raises(tj.TensorJitError):
        tj.trace(42)

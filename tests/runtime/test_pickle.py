"""Pickling a CompiledFunction ships its machine code: another process runs it without
tracing or compiling."""

from __future__ import annotations

import multiprocessing as mp
import pickle
import sys
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

import tensorjit as tj

# Evaluated in the pool worker (builtins pickle by name; test functions would not).
_IMPORTED_COMPILER = "[m for m in __import__('sys').modules if m.startswith('tensorjit.compiler')]"


def _fn(x, w):
    return tj.nn.relu(x @ w + np.array([0.5, -0.5, 1.0], np.float32))


def test_round_trip_in_process():
    x = np.linspace(-1, 1, 8 * 4, dtype=np.float32).reshape(8, 4)
    w = np.ones((4, 3), np.float32)
    f = tj.compile(tj.trace(_fn, tj.TensorSpec(("b", 4), "float32"), w))
    g = pickle.loads(pickle.dumps(f))
    assert g.stats["origin"] == "unpickled"
    np.testing.assert_array_equal(g(x, w), f(x, w))
    np.testing.assert_array_equal(g(x[:3], w), f(x[:3], w))
    assert g.ir("graph") == f.ir("graph")
    with pytest.raises(tj.ShapeError, match="argument 1"):
        g(x, np.ones((5, 3), np.float32))
    with pytest.raises(tj.DTypeError):
        g(x.astype(np.float64), w)


@pytest.mark.skipif(sys.platform == "win32", reason="spawn start method only")
def test_runs_in_a_process_pool_without_compiling():
    x = np.arange(12, dtype=np.float32).reshape(4, 3) / 7
    f = tj.compile(tj.trace(lambda a: tj.exp(a) * 2.0 + 1.0, x))
    ctx = mp.get_context("spawn")  # a fresh interpreter: nothing inherited from this one
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        out = pool.submit(f, x).result(timeout=120)
        imported = pool.submit(eval, _IMPORTED_COMPILER).result(timeout=60)
    np.testing.assert_allclose(out, np.exp(x) * 2.0 + 1.0, rtol=1e-6)
    # tensorjit/__init__ imports the tracing frontend (llvmlite-free); nothing that lowers,
    # generates code or compiles may have run
    assert not [m for m in imported if not m.startswith("tensorjit.compiler.frontend")
                and m != "tensorjit.compiler"], imported


def test_jit_functions_pickle_their_compiled_code():
    jf = tj.jit(lambda a: a * a - 1.0)
    x = np.arange(5, dtype=np.float64)
    jf(x)
    (compiled,) = jf._compiled.values()
    g = pickle.loads(pickle.dumps(compiled))
    np.testing.assert_array_equal(g(x), x * x - 1.0)


def test_code_for_a_missing_cpu_feature_is_refused(monkeypatch):
    from tensorjit.runtime import serialize

    f = tj.compile(tj.trace(lambda a: a + 1.0, np.ones(3, np.float32)))
    func, args = serialize.reduce_compiled(f)
    data = dict(args[5], features=args[5]["features"] + ",+amx-tile")
    monkeypatch.setattr("tensorjit.runtime.cpu.host_features",
                        lambda: frozenset({"sse", "sse2", "avx", "avx2", "fma"}))
    with pytest.raises(tj.TensorJitError, match="lacks"):
        func(*args[:5], data, *args[6:])

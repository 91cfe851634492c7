"""Compile time, cache off: from tracing to the first result, for each benchmarked function.

Functions (the same code and shapes as the other benchmarks): the elementwise chain on 16M
and on 64 float32 elements, row-wise softmax and layer norm on (4096, 1024). Each round
traces the Python function, compiles the graph with ``cache=False`` (with
``TENSORJIT_DISABLE_CACHE=1`` set, which also covers ``@tj.jit``), and calls the result once;
the first call is part of "to first result" (for the 16M chain it includes running the
kernel on 64 MiB). The table shows the median over rounds and ``f.stats["compile_seconds"]``
per stage (median). Also: the first call of a fresh ``@tj.jit`` wrapper (64 elements).

Target: < 200 ms from trace to first result for each function.
Run: ``python bench/bench_compile.py`` (table) or
``pytest bench/bench_compile.py --benchmark-only``.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from _harness import F32_ATOL, environment, print_table, verdict
from _workloads import (
    DISPATCH_N,
    ELEMENTWISE_N,
    chain,
    chain_numpy,
    layer_norm,
    layer_norm_numpy,
    rows_inputs,
    softmax,
    softmax_numpy,
    vector,
)

import tensorjit as tj

TARGET_SECONDS = 0.200
STAGES = ("lower", "codegen", "parse", "optimize", "machine_code")


def cases() -> dict[str, tuple[Callable, tuple[np.ndarray, ...], Callable]]:
    """name -> (tensorjit function, example arguments, NumPy reference)."""
    x16m = vector(ELEMENTWISE_N)
    x64 = vector(DISPATCH_N)
    rx, g, b = rows_inputs()
    return {
        "chain 16M": (chain, (x16m,), chain_numpy),
        "chain 64": (chain, (x64,), chain_numpy),
        "softmax 4096x1024": (softmax, (rx,), softmax_numpy),
        "layer_norm 4096x1024": (layer_norm, (rx, g, b), layer_norm_numpy),
    }


@contextlib.contextmanager
def cache_disabled() -> Iterator[None]:
    """``TENSORJIT_DISABLE_CACHE=1`` while building (tj.compile reads it on each call)."""
    old = os.environ.get("TENSORJIT_DISABLE_CACHE")
    os.environ["TENSORJIT_DISABLE_CACHE"] = "1"
    try:
        yield
    finally:
        if old is None:
            del os.environ["TENSORJIT_DISABLE_CACHE"]
        else:
            os.environ["TENSORJIT_DISABLE_CACHE"] = old


def trace_compile_run(fn: Callable, args: tuple[np.ndarray, ...]) -> dict[str, object]:
    """One cold build: trace, compile (cache off), first call. Returns times and result."""
    with cache_disabled():
        t0 = time.perf_counter()
        graph = tj.trace(fn, *args)
        t1 = time.perf_counter()
        f = tj.compile(graph, cache=False, threads=1)
        t2 = time.perf_counter()
        y = f(*args)
        t3 = time.perf_counter()
    return {"trace": t1 - t0, "compile": t2 - t1, "first_call": t3 - t2, "total": t3 - t0,
            "stages": dict(f.stats["compile_seconds"]), "result": y}


def jit_first_call(args: tuple[np.ndarray, ...]) -> float:
    with cache_disabled():
        jf = tj.jit(chain, threads=1)
        t0 = time.perf_counter()
        jf(*args)
        return time.perf_counter() - t0


def check(name: str, y: np.ndarray, ref: np.ndarray) -> None:
    tol = {"rtol": 1e-4, "atol": 1e-7 if name.startswith("softmax") else 10 * F32_ATOL}
    np.testing.assert_allclose(y, ref, **tol, err_msg=name)


# --- pytest-benchmark ------------------------------------------------------------------
@pytest.fixture(scope="module")
def all_cases() -> dict[str, tuple[Callable, tuple[np.ndarray, ...], Callable]]:
    return cases()


@pytest.mark.benchmark(group="compile (trace to first result, cache off)")
@pytest.mark.parametrize("name", ["chain 16M", "chain 64", "softmax 4096x1024",
                                  "layer_norm 4096x1024"])
def test_compile(benchmark, record, all_cases, name) -> None:
    fn, args, ref = all_cases[name]
    check(name, trace_compile_run(fn, args)["result"], ref(*args))
    benchmark.pedantic(lambda: trace_compile_run(fn, args), rounds=5, iterations=1,
                       warmup_rounds=1)
    record(name)


# --- script ----------------------------------------------------------------------------
def main(rounds: int = 7) -> None:
    print(environment())
    all_cases = cases()
    runs: dict[str, list[dict[str, object]]] = {name: [] for name in all_cases}
    for name, (fn, args, ref) in all_cases.items():
        first = trace_compile_run(fn, args)  # includes one-time warm-up (imports, pool)
        check(name, first["result"], ref(*args))
    for _ in range(rounds):
        for name, (fn, args, _ref) in all_cases.items():
            r = trace_compile_run(fn, args)
            del r["result"]  # return the output to the pool before the next build
            runs[name].append(r)
    jit_times = [jit_first_call(all_cases["chain 64"][1]) for _ in range(rounds)]

    def med(values: list[float]) -> str:
        return f"{statistics.median(values) * 1e3:.1f}"

    print(f"\ncompile time, cache off, 1 thread, median of {rounds} cold builds per function "
          "(ms)\n")
    rows, stage_rows = [], []
    for name, rs in runs.items():
        total = statistics.median(r["total"] for r in rs)
        rows.append([name, med([r["trace"] for r in rs]), med([r["compile"] for r in rs]),
                     med([r["first_call"] for r in rs]), f"{total * 1e3:.1f}",
                     f"{max(r['total'] for r in rs) * 1e3:.1f}",
                     f"< {TARGET_SECONDS * 1e3:.0f}", verdict(total < TARGET_SECONDS)])
        stage_rows.append([name] + [med([r["stages"].get(s, float("nan")) for r in rs])
                                    for s in STAGES]
                          + [med([r["stages"].get("total", float("nan")) for r in rs])])
    jit_med = statistics.median(jit_times)
    rows.append(["chain 64 @tj.jit 1st call", "", "", "", f"{jit_med * 1e3:.1f}",
                 f"{max(jit_times) * 1e3:.1f}", f"< {TARGET_SECONDS * 1e3:.0f}",
                 verdict(jit_med < TARGET_SECONDS)])
    print_table(["function", "trace", "compile", "first call", "to 1st result", "worst",
                 "target", "verdict"], rows)
    print('\nf.stats["compile_seconds"] by stage (ms, median; "total" is compile() alone)\n')
    print_table(["function", *STAGES, "total"], stage_rows)


if __name__ == "__main__":
    main()

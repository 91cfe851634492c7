"""Start-up with the persistent cache: a NEW process calling a ``tj.jit`` function.

Workload: the MLP forward pass (batch 256, 784 -> 1024 -> 1024 -> 10, relu, relu,
softmax; ``_workloads.mlp``). Each round starts two fresh Python processes:

* cold: an empty ``TENSORJIT_CACHE_DIR``: the first call traces, compiles (lower, LLVM
  optimize, machine code) and runs; the entry is written to the cache;
* warm: the same cache directory: the first call traces, finds the entry, loads its
  object file into MCJIT (no lowering, no LLVM IR) and runs.

Each child reports, measured inside it: ``import tensorjit`` time, time from the
``tj.jit`` call to its first result, the compile (or cache-load) part of that as
``f.stats["compile_seconds"]["total"]``, and a second call (the kernels alone).

Target: warm first result <= 10% of the cold compile time. The table also shows the
warm start-up cost without the kernels' own run time (first result minus a steady call),
because the forward pass itself (tens of ms at this size on 2 cores) is the same work in
both processes and no cache can remove it.

Run: ``python bench/bench_startup.py`` (table; ~30 s) or
``pytest bench/bench_startup.py --benchmark-only``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap

import pytest
from _harness import environment, print_table, verdict

TARGET_FRACTION = 0.10

CHILD = textwrap.dedent("""
    import json, time
    t0 = time.perf_counter()
    import numpy as np
    import tensorjit as tj
    from tensorjit.compiler.bench.workloads import mlp, mlp_inputs
    t1 = time.perf_counter()
    args = mlp_inputs()
    f = tj.jit(mlp)
    t2 = time.perf_counter()
    y = f(*args)
    t3 = time.perf_counter()
    f(*args)
    t4 = time.perf_counter()
    (cf,) = f._compiled.values()
    print(json.dumps({"import": t1 - t0, "first": t3 - t2, "second": t4 - t3,
                      "compile": cf.stats["compile_seconds"]["total"],
                      "cache": cf.stats.get("cache"), "sum": float(y.sum())}))
""")


def child(cache_dir: str) -> dict[str, float]:
    env = dict(os.environ, TENSORJIT_CACHE_DIR=cache_dir)
    env.pop("TENSORJIT_DISABLE_CACHE", None)
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True,
                         text=True, check=True, timeout=600)
    return json.loads(out.stdout)


def one_round() -> tuple[dict[str, float], dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix="tensorjit-startup-") as d:
        cold = child(d)
        warm = child(d)
    assert cold["cache"] == "miss" and warm["cache"] == "hit", (cold, warm)
    assert abs(cold["sum"] - warm["sum"]) < 1e-3
    return cold, warm


# --- pytest-benchmark ------------------------------------------------------------------
@pytest.mark.benchmark(group="startup (new process, MLP forward)")
def test_warm_start(benchmark, record) -> None:
    with tempfile.TemporaryDirectory(prefix="tensorjit-startup-") as d:
        child(d)
        benchmark.pedantic(lambda: child(d), rounds=3, iterations=1)
    record("warm process")


# --- script ----------------------------------------------------------------------------
def main(rounds: int = 5) -> None:
    print(environment())
    runs = [one_round() for _ in range(rounds)]

    def med(which: int, key: str) -> float:
        return statistics.median(r[which][key] for r in runs)

    print(f"\nMLP forward 256x784-1024-1024-10, new process per measurement, median of "
          f"{rounds} rounds (ms)\n")
    rows = []
    for label, k in (("cold (empty cache)", 0), ("warm (cache hit)", 1)):
        rows.append([label, f"{med(k, 'import') * 1e3:.0f}", f"{med(k, 'compile') * 1e3:.1f}",
                     f"{med(k, 'first') * 1e3:.1f}", f"{med(k, 'second') * 1e3:.1f}",
                     f"{(med(k, 'first') - med(k, 'second')) * 1e3:.1f}"])
    print_table(["process", "import tensorjit", "compile/load", "1st result",
                 "2nd call", "1st - 2nd"], rows)
    cold_compile = med(0, "compile")
    ratios = [w["first"] / c["compile"] for c, w in runs]
    overhead = [(w["first"] - w["second"]) / c["compile"] for c, w in runs]
    ratio, over = statistics.median(ratios), statistics.median(overhead)
    print()
    print_table(["target", "measured", "target", "verdict"], [
        ["warm 1st result / cold compile", f"{ratio:.1%}", f"<= {TARGET_FRACTION:.0%}",
         verdict(ratio <= TARGET_FRACTION)],
        ["(warm 1st result - kernels) / cold compile", f"{over:.1%}", "(diagnostic)", ""],
    ])
    print(f"\ncold compile {cold_compile * 1e3:.0f} ms; warm cache load "
          f"{med(1, 'compile') * 1e3:.1f} ms ({med(1, 'compile') / cold_compile:.1%} of it)")


if __name__ == "__main__":
    main()

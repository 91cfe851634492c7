"""Fused elementwise chain on 16M float32 elements vs NumPy, and vs memory bandwidth.

Kernel: ``tanh(x*1.3 + 0.2) * sigmoid(x) + 0.5*x*x`` (one read and one write per element
when fused: 64 MiB in + 64 MiB out per call). Compared with

* NumPy's expression as written (``np.tanh(x*a+b) * (1/(1+np.exp(-x))) + 0.5*x*x``);
* the machine's STREAM triad bandwidth (``a = b + 2.0*c``), the best of a tensorjit triad
  kernel (2 reads + 1 write = 3 x 64 MiB per call) and NumPy's two-pass triad with
  ``out=`` (``multiply(c, s, out=a)`` then ``add(a, b, out=a)``: 5 x 64 MiB moved).

Bytes are counted the STREAM way: each array read or written once counts its size once
(write-allocate traffic is not counted, for the triad and the kernel alike).
Targets: >= 10x NumPy, and >= 60% of triad bandwidth; with the thread pool (2 threads
here), >= 1.3x the one-thread kernel.

Run: ``python bench/bench_elementwise.py`` (ratio table) or
``pytest bench/bench_elementwise.py --benchmark-only``.
"""

from __future__ import annotations

import statistics

import numpy as np
import pytest
from _harness import (
    F32_ATOL,
    F32_RTOL,
    environment,
    fmt_seconds,
    interleaved,
    loop_profile,
    paired_ratio,
    print_table,
    verdict,
)
from _workloads import ELEMENTWISE_N, chain, chain_numpy, triad, triad_numpy, vector

import tensorjit as tj

N = ELEMENTWISE_N
ARRAY_BYTES = N * 4
CHAIN_BYTES = 2 * ARRAY_BYTES        # read x, write y
TRIAD_TJ_BYTES = 3 * ARRAY_BYTES     # read b, c; write a
TRIAD_NP_BYTES = 5 * ARRAY_BYTES     # pass 1: read c, write a; pass 2: read a, b, write a
TARGET_SPEEDUP = 10.0
IN_CACHE_N = 64 * 1024
TARGET_BW_FRACTION = 0.60
TARGET_THREAD_SCALING = 1.3


def build() -> dict[str, object]:
    """Inputs, compiled functions, and a check that each compiled kernel matches NumPy."""
    x = vector(N, seed=0)
    b = vector(N, seed=1)
    c = vector(N, seed=2)
    f_chain = tj.compile(tj.trace(chain, x), threads=1)
    f_triad = tj.compile(tj.trace(triad, b, c), threads=1)
    np.testing.assert_allclose(f_chain(x), chain_numpy(x), rtol=F32_RTOL, atol=F32_ATOL)
    a = np.empty_like(b)
    triad_numpy(a, b, c)
    np.testing.assert_allclose(f_triad(b, c), a, rtol=F32_RTOL, atol=F32_ATOL)
    return {"x": x, "b": b, "c": c, "a": a, "f_chain": f_chain, "f_triad": f_triad}


# --- pytest-benchmark ------------------------------------------------------------------
@pytest.fixture(scope="module")
def env() -> dict[str, object]:
    return build()


@pytest.mark.benchmark(group="elementwise-16M")
def test_elementwise_tensorjit(benchmark, record, env) -> None:
    f, x = env["f_chain"], env["x"]
    benchmark.extra_info["GB/s"] = None
    benchmark(f, x)
    record("tensorjit")
    if benchmark.stats is not None:
        benchmark.extra_info["GB/s"] = CHAIN_BYTES / benchmark.stats.stats.median / 1e9


@pytest.mark.benchmark(group="elementwise-16M")
def test_elementwise_numpy(benchmark, record, env) -> None:
    benchmark(chain_numpy, env["x"])
    record("numpy")


@pytest.mark.benchmark(group="triad-16M")
def test_triad_tensorjit(benchmark, record, env) -> None:
    f, b, c, a = env["f_triad"], env["b"], env["c"], env["a"]
    benchmark(f, b, c, out=a)
    record("tensorjit")
    if benchmark.stats is not None:
        benchmark.extra_info["GB/s"] = TRIAD_TJ_BYTES / benchmark.stats.stats.median / 1e9


@pytest.mark.benchmark(group="triad-16M")
def test_triad_numpy(benchmark, record, env) -> None:
    benchmark(triad_numpy, env["a"], env["b"], env["c"])
    record("numpy")
    if benchmark.stats is not None:
        benchmark.extra_info["GB/s"] = TRIAD_NP_BYTES / benchmark.stats.stats.median / 1e9


# --- script ----------------------------------------------------------------------------
def main(rounds: int = 15) -> None:
    print(environment())
    e = build()
    x, b, c, a = e["x"], e["b"], e["c"], e["a"]
    f_chain, f_triad = e["f_chain"], e["f_triad"]
    y = np.empty_like(x)
    t = interleaved({
        "tensorjit": lambda: f_chain(x),
        "tensorjit out=": lambda: f_chain(x, out=y),
        "numpy": lambda: chain_numpy(x),
        "triad tensorjit": lambda: f_triad(b, c, out=a),
        "triad numpy": lambda: triad_numpy(a, b, c),
    }, rounds=rounds)

    def gbs(name: str, nbytes: int, best: bool = False) -> float:
        s = t[name].best if best else t[name].median
        return nbytes / s / 1e9

    triad_bw = max(gbs("triad tensorjit", TRIAD_TJ_BYTES), gbs("triad numpy", TRIAD_NP_BYTES))
    triad_bw_best = max(gbs("triad tensorjit", TRIAD_TJ_BYTES, True),
                        gbs("triad numpy", TRIAD_NP_BYTES, True))
    print(f"\nelementwise chain, {N:,} float32, 1 thread, {rounds} interleaved rounds "
          "(median per call; best round in brackets)\n")
    rows = []
    for name, nbytes in [("tensorjit", CHAIN_BYTES), ("tensorjit out=", CHAIN_BYTES),
                         ("numpy", None), ("triad tensorjit", TRIAD_TJ_BYTES),
                         ("triad numpy", TRIAD_NP_BYTES)]:
        bw = f"{gbs(name, nbytes):.1f} [{gbs(name, nbytes, True):.1f}]" if nbytes else "-"
        rows.append([name, f"{fmt_seconds(t[name].median)} [{fmt_seconds(t[name].best)}]",
                     f"{(nbytes or 0) / 2**20:.0f} MiB" if nbytes else "-", bw])
    print_table(["case", "time/call", "bytes counted", "GB/s"], rows)
    print(f"\ntriad bandwidth (best of tensorjit and numpy triad): {triad_bw:.1f} GB/s median, "
          f"{triad_bw_best:.1f} GB/s best round")

    # Ratios: median over rounds of the ratio within a round (candidates alternate, so a
    # noisy moment hits both sides of the ratio), and the ratio of the best rounds.
    speedup = paired_ratio(t["numpy"], t["tensorjit"])
    speedup_best = t["numpy"].best / t["tensorjit"].best
    per_round_triad = [max(TRIAD_TJ_BYTES / s1, TRIAD_NP_BYTES / s2) for s1, s2 in
                       zip(t["triad tensorjit"].per_call, t["triad numpy"].per_call)]

    def bw_fraction(name: str) -> float:
        return statistics.median(CHAIN_BYTES / s / bw
                                 for s, bw in zip(t[name].per_call, per_round_triad))

    frac = bw_fraction("tensorjit")
    frac_best = gbs("tensorjit", CHAIN_BYTES, True) / triad_bw_best
    frac_out = bw_fraction("tensorjit out=")
    print()
    print_table(["ratio", "paired median", "best/best", "target", "verdict"], [
        ["speedup vs NumPy", f"{speedup:.1f}x", f"{speedup_best:.1f}x",
         f">= {TARGET_SPEEDUP:.0f}x", verdict(speedup >= TARGET_SPEEDUP)],
        ["bandwidth / triad bandwidth", f"{frac:.0%}", f"{frac_best:.0%}",
         f">= {TARGET_BW_FRACTION:.0%}", verdict(frac >= TARGET_BW_FRACTION)],
        ["  (same, tensorjit out=)", f"{frac_out:.0%}",
         f"{gbs('tensorjit out=', CHAIN_BYTES, True) / triad_bw_best:.0%}", "", ""],
    ])

    # Is the kernel memory-bound? Time it on an input that stays in L2 (64K elements:
    # 256 KiB in + 256 KiB out); if ns/element is about the same as at 16M elements, the
    # kernel is limited by its instructions, not by memory bandwidth.
    small = x[:IN_CACHE_N].copy()
    small_out = np.empty_like(small)
    f_small = tj.compile(tj.trace(chain, small), threads=1)
    tc = interleaved({"in-cache": lambda: f_small(small, out=small_out),
                      "16M out=": lambda: f_chain(x, out=y)}, rounds=rounds)
    per_elem_cache = tc["in-cache"].best / IN_CACHE_N * 1e9
    per_elem_big = tc["16M out="].best / N * 1e9
    at_triad = CHAIN_BYTES / (triad_bw_best * 1e9) / N * 1e9
    print(f"\nprofile: {f_chain.stats['kernels']} kernel(s); "
          f"asm: {loop_profile(f_chain.ir('asm'))}")
    print(f"profile: best ns/element: in L2 (64K elements) {per_elem_cache:.2f}, 16M elements "
          f"{per_elem_big:.2f}, at best triad bandwidth {at_triad:.2f} "
          f"-> {'compute' if per_elem_cache > 0.8 * per_elem_big else 'memory'}-bound")

    # Two threads (issue 3): the same chain compiled for the thread pool, against the
    # one-thread kernel, alternating in one process; the results must be bitwise equal.
    f_pool = tj.compile(tj.trace(chain, x))
    np.testing.assert_array_equal(f_pool(x), f_chain(x))
    tt = interleaved({"1 thread": lambda: f_chain(x, out=y),
                      "pool": lambda: f_pool(x, out=y)}, rounds=rounds)
    scaling = paired_ratio(tt["1 thread"], tt["pool"])
    print(f"\nthread pool ({tj_threads()} threads): {fmt_seconds(tt['pool'].median)} vs "
          f"1 thread {fmt_seconds(tt['1 thread'].median)} = {scaling:.2f}x (target >= "
          f"{TARGET_THREAD_SCALING}x at 2 threads: "
          f"{verdict(scaling >= TARGET_THREAD_SCALING)})")


def tj_threads() -> int:
    from tensorjit.runtime.native import lib

    return int(lib.tj_get_num_threads())

if __name__ == "__main__":
    main()

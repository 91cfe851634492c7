"""Matrix products, the MLP forward pass and the conv block, at 1 and 2 threads.

tensorjit against NumPy's OpenBLAS twice: as configured in this environment (the default
here may be a 256-bit kernel: ``OPENBLAS_CORETYPE``) and with
``OPENBLAS_CORETYPE=SkylakeX`` (its AVX-512 kernels). NumPy's timings run in child
processes because OpenBLAS reads ``OPENBLAS_CORETYPE`` and ``OPENBLAS_NUM_THREADS`` when
it loads; the children stay up and time one case per request, so that every round times
tensorjit and both NumPys back to back (this machine is shared: load from other processes
then falls on all three alike). Times are medians over rounds, ratios medians of the
per-round ratios. GFLOP/s count 2 flops per multiply-add; "of peak" divides by the machine's FMA
peak measured by ``tensorjit.compiler.bench.machine`` (vector FMA chains on each thread).

Targets (issue 3): sgemm >= 0.9x SkylakeX OpenBLAS at 1 thread; MLP forward >= 1.1x
SkylakeX NumPy at 1 and 2 threads; conv block >= 2x the NumPy im2col reference.

Run: ``python bench/bench_gemm.py [--quick]``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import numpy as np

import tensorjit as tj
from tensorjit.compiler.bench.harness import ChildTimer, best_of, set_openblas_threads
from tensorjit.compiler.bench.machine import measure_fma_peak
from tensorjit.compiler.bench.workloads import (
    CONV_INPUT,
    CONV_WEIGHT,
    mlp,
    mlp_flops,
    mlp_inputs,
    mlp_numpy,
)

CONV_EPS = 1e-5


def conv_block(x, w, b, mean, var, gamma, beta):
    """3x3 conv (padding 1) + bias + inference batch norm + relu."""
    y = tj.nn.conv2d(x, w, b, padding=1)
    scale = gamma / tj.sqrt(var + CONV_EPS)
    y = y * scale.reshape(1, -1, 1, 1) + (beta - mean * scale).reshape(1, -1, 1, 1)
    return tj.nn.relu(y)


def conv_block_numpy(x, w, b, mean, var, gamma, beta):
    """im2col with a strided view, one matmul per image, then the epilogue as NumPy ops."""
    n, c, h, wd = x.shape
    o = w.shape[0]
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    cols = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(2, 3))
    cols = cols.transpose(0, 1, 4, 5, 2, 3).reshape(n, c * 9, h * wd)
    y = (w.reshape(o, -1) @ cols).reshape(n, o, h, wd) + b.reshape(1, -1, 1, 1)
    scale = gamma / np.sqrt(var + CONV_EPS)
    y = y * scale.reshape(1, -1, 1, 1) + (beta - mean * scale).reshape(1, -1, 1, 1)
    return np.maximum(y, 0)


def conv_direct(x, w, b):
    """Direct loops (float64): the correctness reference for the conv block."""
    n, c, h, wd = x.shape
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros((n, w.shape[0], h, wd))
    for i in range(3):
        for j in range(3):
            out += np.einsum("nchw,oc->nohw", xp[:, :, i:i + h, j:j + wd], w[:, :, i, j])
    return out + b.reshape(1, -1, 1, 1)


def conv_inputs(seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(CONV_INPUT, dtype=np.float32)
    w = rng.standard_normal(CONV_WEIGHT, dtype=np.float32) / np.float32(24)
    o = CONV_WEIGHT[0]
    b, mean, beta = (rng.standard_normal(o, dtype=np.float32) for _ in range(3))
    var = rng.random(o, dtype=np.float32) + np.float32(0.5)
    gamma = rng.random(o, dtype=np.float32) + np.float32(0.5)
    return x, w, b, mean, var, gamma, beta


_SETUP = """
import numpy as np
from bench_gemm import conv_block_numpy, conv_inputs
from tensorjit.compiler.bench.workloads import mlp_inputs, mlp_numpy
rng = np.random.default_rng(0)
cases = {{}}
for n in {sizes!r}:
    a = rng.standard_normal((n, n), dtype=np.float32)
    cases[f"sgemm{{n}}"] = lambda a=a: a @ a
args, cargs = mlp_inputs(), conv_inputs()
cases["mlp"] = lambda: mlp_numpy(*args)
cases["conv"] = lambda: conv_block_numpy(*cargs)
"""


def numpy_child(coretype: str | None, threads: int, sizes: tuple[int, ...]) -> ChildTimer:
    """NumPy's cases in a child process with OpenBLAS set up as asked."""
    env = {"OPENBLAS_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}
    if coretype:
        env["OPENBLAS_CORETYPE"] = coretype
    return ChildTimer(_SETUP.format(sizes=sizes), env,
                      [os.path.dirname(os.path.abspath(__file__))])


def tensorjit_cases(threads: int, sizes: tuple[int, ...]) -> dict[str, Callable[[], object]]:
    """The compiled cases, checked against NumPy, for a thread pool of ``threads`` (its
    size is process-wide: set before timing).

    The NumPy references checked here run on one OpenBLAS thread: after a multi-threaded
    OpenBLAS call its workers spin for ~60 ms (measured: 0.03 s of CPU in the 0.05 s after
    a 1024^2 ``a @ a``), which took the second core from the 2-thread timings."""
    set_openblas_threads(1)
    opt = {"threads": 1} if threads == 1 else {}
    cases: dict[str, Callable[[], object]] = {}
    rng = np.random.default_rng(0)
    for n in sizes:
        a = rng.standard_normal((n, n), dtype=np.float32)
        f = tj.compile(tj.trace(lambda a, b: a @ b, a, a), **opt)
        np.testing.assert_allclose(f(a, a), a @ a, rtol=1e-3, atol=1e-3 * np.sqrt(n))
        cases[f"sgemm{n}"] = lambda f=f, a=a: f(a, a)
    args = mlp_inputs()
    fm = tj.compile(tj.trace(mlp, *args), **opt)
    np.testing.assert_allclose(fm(*args), mlp_numpy(*args), rtol=1e-4, atol=1e-5)
    cases["mlp"] = lambda: fm(*args)
    cargs = conv_inputs()
    fc = tj.compile(tj.trace(conv_block, *cargs), **opt)
    got = fc(*cargs)
    np.testing.assert_allclose(got, conv_block_numpy(*cargs), rtol=1e-4, atol=1e-4)
    x, w, b, mean, var, gamma, beta = cargs
    scale = gamma / np.sqrt(var + CONV_EPS)
    direct = np.maximum(conv_direct(x, w, b) * scale.reshape(1, -1, 1, 1)
                        + (beta - mean * scale).reshape(1, -1, 1, 1), 0)
    np.testing.assert_allclose(got, direct, rtol=1e-4, atol=1e-4)
    cases["conv"] = lambda: fc(*cargs)
    return cases


def interleaved_times(threads: int, sizes: tuple[int, ...], repeat: int,
                      rounds: int) -> dict[str, dict[str, list[float]]]:
    """Per case, per contender (tensorjit, NumPy default, NumPy SkylakeX), the best-of-
    ``repeat`` time of each round; the contenders alternate within a round, so that load
    from other processes falls on all of them alike."""
    from tensorjit.runtime.native import lib

    lib.tj_set_num_threads(threads)
    ours = tensorjit_cases(threads, sizes)
    children = {"default": numpy_child(None, threads, sizes),
                "SkylakeX": numpy_child("SkylakeX", threads, sizes)}
    out: dict[str, dict[str, list[float]]] = {
        case: {"tensorjit": [], **{name: [] for name in children}} for case in ours}
    try:
        for _ in range(rounds):
            for case, fn in ours.items():
                reps = min(repeat, 3) if case == "conv" else repeat
                out[case]["tensorjit"].append(best_of(fn, reps))
                for name, child in children.items():
                    out[case][name].append(child.time(case, reps))
    finally:
        for child in children.values():
            child.close()
        lib.tj_set_num_threads(0)
    return out


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def main() -> None:
    quick = "--quick" in sys.argv
    sizes = (1024,) if quick else (1024, 2048)
    repeat = 3 if quick else 5
    rounds = 5 if quick else 9
    flops = {f"sgemm{n}": 2.0 * n ** 3 for n in sizes}
    flops["mlp"] = mlp_flops()
    n, c, h, w = CONV_INPUT
    flops["conv"] = 2.0 * n * CONV_WEIGHT[0] * h * w * c * 9
    env_core = os.environ.get("OPENBLAS_CORETYPE", "(unset)")
    print(f"OPENBLAS_CORETYPE in this environment: {env_core}; load average "
          f"{os.getloadavg()[0]:.2f}; medians of {rounds} interleaved rounds (ratios: median "
          f"of the per-round ratios)")
    for threads in (1, 2):
        peak = measure_fma_peak(1) * threads
        times = interleaved_times(threads, sizes, repeat, rounds)
        print(f"\n{threads} thread(s); FMA peak {peak / 1e9:.0f} GFLOP/s")
        print(f"{'case':10s} {'tensorjit':>22s} {'NumPy default':>15s} {'NumPy SkylakeX':>15s}"
              f" {'vs default':>10s} {'vs SkylakeX':>11s}")
        for case, t in times.items():
            ours = _median(t["tensorjit"])
            rate = flops[case] / ours
            ratio = {name: _median([a / b for a, b in zip(t[name], t["tensorjit"])])
                     for name in ("default", "SkylakeX")}
            print(f"{case:10s} {ours * 1e3:7.2f} ms {rate / 1e9:5.0f} GF/s "
                  f"{100 * rate / peak:3.0f}%"
                  f" {_median(t['default']) * 1e3:12.2f} ms"
                  f" {_median(t['SkylakeX']) * 1e3:12.2f} ms"
                  f" {ratio['default']:9.2f}x {ratio['SkylakeX']:10.2f}x")
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

"""Timing and table helpers shared by ``tensorjit bench`` and the scripts in ``bench/``.

The scripts run two ways: under pytest-benchmark (``pytest bench/ --benchmark-only``;
``bench/conftest.py`` collects ``bench_*.py`` and puts that folder on ``sys.path``, where
``_harness.py`` re-exports this module) and as plain scripts
(``python bench/bench_elementwise.py``), which print a table of RATIOS measured in one
run. The machine is shared and noisy, so candidates are interleaved round by round (noise
then hits all of them alike) and the median and the best round are reported; nothing
here asserts an absolute time.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import tensorjit as tj

__all__ = [
    "F32_ATOL", "F32_RTOL", "ChildTimer", "Timing", "best_of", "calls_per_round",
    "environment", "fmt_seconds",
    "interleaved", "loop_profile", "openblas_core", "paired_ratio", "print_table",
    "set_openblas_threads", "verdict",
]

#: Tolerances for comparing float32 results with NumPy's float32 results: tensorjit's
#: exp/tanh/sigmoid are polynomial approximations within a few ULP, and its reductions
#: sum in a different order from NumPy's pairwise sums.
F32_RTOL = 1e-5
F32_ATOL = 1e-6


@dataclass
class Timing:
    """Per-call seconds of one candidate, one entry per round."""

    name: str
    per_call: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.per_call)

    @property
    def best(self) -> float:
        return min(self.per_call)


def paired_ratio(num: Timing, den: Timing) -> float:
    """Median over rounds of ``num/den`` within the same round (noise is paired)."""
    return statistics.median(a / b for a, b in zip(num.per_call, den.per_call))


def calls_per_round(fn: Callable[[], object], target_seconds: float) -> int:
    """How many calls of ``fn`` take about ``target_seconds`` (at least 1)."""
    fn()
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        dt = time.perf_counter() - t0
        if dt >= target_seconds / 4 or n >= 1 << 22:
            return max(1, int(n * target_seconds / max(dt, 1e-9)))
        n *= 4


def interleaved(candidates: dict[str, Callable[[], object]], rounds: int,
                round_seconds: float = 0.05) -> dict[str, Timing]:
    """Time each candidate for ``rounds`` rounds, alternating candidates within a round.

    Each round runs every candidate in a tight loop of ``number`` calls (calibrated so a
    round takes about ``round_seconds``; 1 call for slow candidates) and records the
    mean time per call in that round.
    """
    numbers = {name: calls_per_round(fn, round_seconds) for name, fn in candidates.items()}
    result = {name: Timing(name, []) for name in candidates}
    perf = time.perf_counter
    for _ in range(rounds):
        for name, fn in candidates.items():
            n = numbers[name]
            loop = range(n)
            t0 = perf()
            for _ in loop:
                fn()
            result[name].per_call.append((perf() - t0) / n)
    return result


def fmt_seconds(s: float) -> str:
    if s < 1e-3:
        return f"{s * 1e6:.2f} us"
    if s < 1.0:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.3f} s"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A plain-text table (right-aligned except the first column)."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[k]) for r in cells) for k in range(len(headers))]

    def line(r: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if k == 0 else c.rjust(w)
                         for k, (c, w) in enumerate(zip(r, widths)))

    print(line(cells[0]))
    print("  ".join("-" * w for w in widths))
    for r in cells[1:]:
        print(line(r))


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def loop_profile(asm: str) -> str:
    """A cheap look at the assembly: vector registers used, and the size of the largest
    self-looping block (normally the vectorized inner loop)."""
    import re

    regs = ("zmm (16 x f32)" if "zmm" in asm else "ymm (8 x f32)" if "ymm" in asm
            else "xmm/scalar only")
    best: list[str] = []
    label: str | None = None
    body: list[str] = []
    for raw in asm.splitlines():
        line = raw.split("#")[0].strip()
        if not line or line.startswith("."):
            if line.endswith(":"):
                label, body = line[:-1], []
            continue
        body.append(line)
        m = re.match(r"j\w+\s+(\S+)$", line)
        if m and m.group(1) == label and len(body) > len(best):
            best = list(body)
    if not best:
        return f"{regs}; no self-looping block found"
    ops = [b.split()[0] for b in best]
    return (f"{regs}; largest inner loop: {len(best)} instructions ({ops.count('vdivps')} vdivps, "
            f"{sum(o.startswith('vmovnt') for o in ops)} non-temporal stores, "
            f"{sum('(%rsp)' in b for b in best)} stack accesses)")


def _openblas_libs() -> list[Any]:
    """The OpenBLAS libraries loaded in this process (NumPy's), as ctypes handles."""
    import ctypes

    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps
                     if "openblas" in line.lower() and ".so" in line.split()[-1]}
    except OSError:
        return []
    libs = []
    for path in sorted(paths):
        try:
            libs.append(ctypes.CDLL(path))
        except OSError:
            continue
    return libs


def best_of(fn: Callable[[], object], repeat: int) -> float:
    """The fastest of ``repeat`` calls (after one call to warm up), in seconds."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


_CHILD = r"""
import sys, time
sys.path[:0] = {path!r}
from tensorjit.compiler.bench.harness import best_of, openblas_core
{setup}
print("ready", openblas_core(), flush=True)
for line in sys.stdin:
    case, repeat = line.split()
    t = best_of(cases[case], int(repeat))
    time.sleep(0.1)  # OpenBLAS workers spin ~60 ms after a call: not into the next timing
    print(t, flush=True)
"""


class ChildTimer:
    """A child process that times named cases on request, one per request, so that its
    timings alternate with this process's round by round (load from other processes then
    falls on every contender alike). NumPy runs in children because OpenBLAS reads
    ``OPENBLAS_CORETYPE`` and ``OPENBLAS_NUM_THREADS`` when it loads.

    ``setup`` is Python code that defines ``cases``, a dict of name -> callable; ``path``
    goes in front of the child's ``sys.path``; ``env`` is added to this environment.
    ``core`` is the OpenBLAS kernel family in effect in the child."""

    def __init__(self, setup: str, env: dict[str, str], path: Sequence[str] = ()) -> None:
        code = _CHILD.format(path=list(path), setup=setup)
        self.proc = subprocess.Popen([sys.executable, "-c", code], env=dict(os.environ, **env),
                                     text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.proc.stdout is not None
        ready = self.proc.stdout.readline().split()
        if not ready or ready[0] != "ready":
            raise RuntimeError("the timing child process did not start")
        self.core = ready[1] if len(ready) > 1 else "?"

    def time(self, case: str, repeat: int) -> float:
        """Best of ``repeat`` calls of ``case`` in the child, in seconds."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{case} {repeat}\n")
        self.proc.stdin.flush()
        return float(self.proc.stdout.readline())

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait()


def openblas_core() -> str:
    """The OpenBLAS kernel family NumPy's OpenBLAS picked at run time (``?`` if unknown).

    ``np.show_config()`` shows the build machine's core, not this one, so ask the loaded
    library itself (``*_get_corename*``)."""
    import ctypes

    for lib in _openblas_libs():
        for sym in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename",
                    "openblas_get_corename64_", "openblas_get_corename"):
            fn = getattr(lib, sym, None)
            if fn is not None:
                fn.restype = ctypes.c_char_p
                return fn().decode()
    return "?"


def set_openblas_threads(n: int) -> bool:
    """Set the thread count of NumPy's OpenBLAS (as threadpoolctl does); False if unknown."""
    import ctypes

    for lib in _openblas_libs():
        for sym in ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
                    "openblas_set_num_threads64_", "openblas_set_num_threads"):
            fn = getattr(lib, sym, None)
            if fn is not None:
                fn(ctypes.c_int(n))
                return True
    return False


def environment() -> str:
    """One line describing what the numbers were measured on."""
    target = "?"
    try:
        f = tj.compile(tj.trace(lambda x: x + 1.0, np.zeros(1, np.float32)), threads=1)
        target = f.stats.get("target", "?")
    except tj.TensorJitError:
        pass
    return (f"tensorjit {tj.__version__} target {target}; NumPy {np.__version__}; "
            f"Python {platform.python_version()}; {os.cpu_count()} cores; "
            f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}, OpenBLAS core "
            f"in effect {openblas_core()} (no BLAS call is timed here)")

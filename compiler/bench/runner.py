"""Runs ``tensorjit bench`` suites: machine yardsticks, progress on stderr, the table, JSON
and the plot."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, TextIO

import numpy as np

import tensorjit as tj
from tensorjit.compiler.bench import suites as S
from tensorjit.compiler.bench.harness import (
    fmt_seconds,
    interleaved,
    openblas_core,
    set_openblas_threads,
)
from tensorjit.compiler.bench.machine import Machine, measure


class Progress:
    """One status line on stderr (rewritten in place on a terminal, one line per step
    otherwise)."""

    def __init__(self, stream: TextIO, total: int) -> None:
        self.stream = stream
        self.total = total
        self.done = 0
        self.tty = stream.isatty()
        self.t0 = time.perf_counter()
        self._width = 0

    def show(self, text: str) -> None:
        line = (f"[{self.done}/{self.total} {time.perf_counter() - self.t0:5.1f}s] "
                f"{text}")
        if self.tty:
            pad = max(0, self._width - len(line))
            self.stream.write("\r" + line + " " * pad)
            self._width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def step(self) -> None:
        self.done += 1

    def close(self) -> None:
        if self.tty:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()


@dataclass
class Result:
    suite: str
    case: str
    unit: str
    work: float
    seconds: dict[str, float] = field(default_factory=dict)  # median per call
    errors: dict[str, str] = field(default_factory=dict)  # system -> why not timed

    @property
    def tj_seconds(self) -> float | None:
        return self.seconds.get("tensorjit")

    def rate(self) -> float | None:
        t = self.tj_seconds
        return self.work / t if t and self.work else None

    def fraction(self, machine: Machine) -> float | None:
        r = self.rate()
        if r is None:
            return None
        peak = machine.bandwidth if self.unit == "bytes" else machine.fma_peak
        return r / peak if peak else None

    def speedup(self, system: str) -> float | None:
        t, other = self.tj_seconds, self.seconds.get(system)
        return other / t if t and other else None

    def as_dict(self, machine: Machine) -> dict[str, Any]:
        return {"suite": self.suite, "case": self.case, "unit": self.unit, "work": self.work,
                "seconds": self.seconds, "rate": self.rate(),
                "fraction_of_peak": self.fraction(machine),
                "speedup": {s: self.speedup(s) for s in self.seconds if s != "tensorjit"},
                "errors": self.errors}


@dataclass
class Report:
    machine: Machine
    results: list[Result]
    skipped: list[tuple[str, str]]
    systems: list[str]
    unavailable: dict[str, str]
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "tensorjit": tj.__version__, "python": platform.python_version(),
            "numpy": np.__version__, "openblas_core": openblas_core(),
            "cpu_count": os.cpu_count(), "machine": self.machine.as_dict(),
            "systems": self.systems, "unavailable": self.unavailable,
            "results": [r.as_dict(self.machine) for r in self.results],
            "skipped": [{"suite": s, "reason": r} for s, r in self.skipped],
            "wall_seconds": self.seconds,
        }


def _check(case: S.Case, system: str, got: Any, ref: Any) -> str | None:
    gs = got if isinstance(got, tuple) else (got,)
    rs = ref if isinstance(ref, tuple) else (ref,)
    try:
        for g, r in zip(gs, rs, strict=True):
            np.testing.assert_allclose(np.asarray(g, dtype=np.float64),
                                       np.asarray(r, dtype=np.float64),
                                       rtol=case.rtol, atol=case.atol)
    except (AssertionError, ValueError) as exc:
        first = str(exc).strip().splitlines()
        return f"{system} differs from NumPy: {first[-1] if first else exc}"
    return None


def run_case(case: S.Case, opts: S.Options, rounds: int, progress: Progress) -> Result:
    result = Result(case.suite, case.name, case.unit, case.work)
    progress.show(f"{case.suite}: {case.name}: compiling")
    candidates = case.setup(opts)
    if case.check:
        progress.show(f"{case.suite}: {case.name}: checking against NumPy")
        ref = candidates["numpy"]()
        for system in list(candidates):
            if system == "numpy":
                continue
            try:
                why = _check(case, system, candidates[system](), ref)
            except Exception as exc:  # noqa: BLE001 - report, do not abort the run
                why = f"{system} failed: {type(exc).__name__}: {exc}"
            if why:
                result.errors[system] = why
                del candidates[system]
    if "tensorjit" not in candidates:
        return result
    progress.show(f"{case.suite}: {case.name}: timing {', '.join(candidates)}")
    timings = interleaved(candidates, rounds=case.rounds or rounds, round_seconds=0.04)
    result.seconds = {name: t.median for name, t in timings.items()}
    return result


def run(names: list[str], opts: S.Options, rounds: int = 5, stream: TextIO | None = None
        ) -> Report:
    """Run the named suites; progress goes to ``stream`` (default: the current stderr)."""
    t0 = time.perf_counter()
    stream = stream if stream is not None else sys.stderr
    suites = [S.BUILDERS[n]() for n in names]
    total = sum(len(s.cases) for s in suites) + 1
    progress = Progress(stream, total)
    _set_threads(opts.threads)
    progress.show("measuring the machine: triad bandwidth, FMA peak")
    machine = measure(opts.threads)
    progress.step()
    results: list[Result] = []
    skipped = [(s.name, s.skipped) for s in suites if s.skipped]
    for suite in suites:
        for case in suite.cases:
            try:
                results.append(run_case(case, opts, rounds, progress))
            except Exception as exc:  # noqa: BLE001 - one broken case must not end the run
                tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
                skipped.append((suite.name, f"{case.name}: {tb}"))
            progress.step()
    progress.close()
    unavailable = {}
    for system in ("torch", "jax"):
        if system not in opts.compare:
            unavailable[system] = "not requested"
        elif opts.module(system) is None:
            unavailable[system] = "not installed"
    systems = [s for s in S.SYSTEMS if s in opts.compare and s not in unavailable]
    return Report(machine, results, skipped, systems, unavailable, time.perf_counter() - t0)


def _set_threads(n: int) -> None:
    """tensorjit's pool and NumPy's OpenBLAS get the same number of threads."""
    from tensorjit.runtime import native

    native.lib.tj_set_num_threads(n)
    np.ones((2, 2)) @ np.ones((2, 2))  # make sure OpenBLAS is loaded
    set_openblas_threads(n)


def _cell(x: float | None, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def format_table(report: Report) -> str:
    m = report.machine
    lines = [
        f"tensorjit {tj.__version__} on {m.target}, {m.threads} thread(s); NumPy "
        f"{np.__version__} (OpenBLAS core {openblas_core()}, {m.threads} thread(s), "
        f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')})",
        f"machine: triad bandwidth {m.bandwidth / 1e9:.1f} GB/s; FMA peak "
        f"{m.fma_peak / 1e9:.0f} GFLOP/s ({m.fma_one_thread / 1e9:.0f} per thread x "
        f"{m.threads}; all threads at once measured {m.fma_all_threads / 1e9:.0f})",
        "speedup = other system's time / tensorjit's time (> 1: tensorjit is faster); "
        "times are medians per call;",
        "of peak = rate / triad bandwidth (GB/s cases) or / FMA peak (GFLOP/s cases); "
        "read-only kernels can exceed 100% (the triad also pays for write-allocates)",
        "",
    ]
    headers = ["suite", "case", "tensorjit", "rate", "of peak",
               *[f"vs {s}" for s in report.systems]]
    rows: list[list[str]] = []
    for r in report.results:
        t = r.tj_seconds
        rate = r.rate()
        if r.unit == "bytes":
            rate_s = _cell(rate and rate / 1e9, ".1f") + " GB/s"
        elif r.unit == "flops":
            rate_s = _cell(rate and rate / 1e9, ".1f") + " GFLOP/s"
        else:
            rate_s = "-"
        frac = r.fraction(m) if r.unit in ("bytes", "flops") else None
        rows.append([r.suite, r.case, fmt_seconds(t) if t else "failed", rate_s,
                     _cell(frac and 100 * frac, ".0f") + ("%" if frac else ""),
                     *[_speedup_cell(r, s) for s in report.systems]])
    widths = [max(len(x) for x in col) for col in zip(headers, *rows)]

    def fmt(row: list[str]) -> str:
        return "  ".join(c.ljust(wd) if k < 2 else c.rjust(wd)
                         for k, (c, wd) in enumerate(zip(row, widths)))

    lines.append(fmt(headers))
    lines.append("  ".join("-" * wd for wd in widths))
    lines += [fmt(row) for row in rows]
    notes = [f"{r.case}: {why}" for r in report.results for why in r.errors.values()]
    notes += [f"{suite}: skipped: {why}" for suite, why in report.skipped]
    notes += [f"{system}: {why}" for system, why in report.unavailable.items()]
    if notes:
        lines += ["", "notes:"] + [f"  {n}" for n in notes]
    lines.append(f"\n{len(report.results)} case(s) in {report.seconds:.0f} s")
    return "\n".join(lines)


def _speedup_cell(r: Result, system: str) -> str:
    if system in r.errors:
        return "error"
    s = r.speedup(system)
    return "-" if s is None else (f"{s:.2f}x" if s < 10 else f"{s:.0f}x")


def write_json(report: Report, path: str) -> None:
    with open(path, "w") as f:
        json.dump(report.as_dict(), f, indent=2)
        f.write("\n")


def write_plot(report: Report, path: str) -> None:
    """Horizontal bars: tensorjit's speedup over each compared system, per case (log)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = [r for r in report.results if any(r.speedup(s) for s in report.systems)]
    systems = [s for s in report.systems if any(r.speedup(s) for r in results)]
    fig, ax = plt.subplots(figsize=(9, 0.45 * max(len(results), 2) * max(len(systems), 1)
                                    + 1.5))
    height = 0.8 / max(len(systems), 1)
    for k, system in enumerate(systems):
        ys = [i + k * height for i in range(len(results))]
        ax.barh(ys, [r.speedup(system) or 0 for r in results], height, label=f"vs {system}")
    ax.set_yticks([i + 0.4 - height / 2 for i in range(len(results))])
    ax.set_yticklabels([f"{r.suite}: {r.case}" for r in results], fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xlabel("speedup of tensorjit (other system's time / tensorjit's time)")
    ax.set_title(f"tensorjit bench ({report.machine.target}, {report.machine.threads} "
                 "thread(s))")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)

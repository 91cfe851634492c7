"""Per-call overhead: the elementwise chain on a 64-element float32 vector.

At 64 elements the kernel itself takes tens of nanoseconds, so this measures the call
path: argument checks, output allocation, one native call. Candidates:

* the ``CompiledFunction`` from ``tj.compile(tj.trace(chain, x))``, called directly;
* the ``@tj.jit`` wrapper (``tj.jit(chain)``): signature lookup, then the same call;
* NumPy's expression as written.

Diagnostics (no target): the compiled call with ``out=``; a trivial compiled kernel
(``x + 1.0`` on 64 elements: the dispatch floor); the bare native entry point called
through cffi with a prepared argument array (private attributes; skipped if they change);
an empty Python call (the timing loop's own floor).

Targets: <= 3 us per call for the compiled function and faster than NumPy.
Run: ``python bench/bench_dispatch.py`` (table) or
``pytest bench/bench_dispatch.py --benchmark-only``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from _harness import F32_ATOL, F32_RTOL, environment, interleaved, paired_ratio, print_table
from _harness import verdict as _verdict
from _workloads import DISPATCH_N, chain, chain_numpy, vector

import tensorjit as tj

TARGET_US = 3.0


def build() -> dict[str, object]:
    """Inputs, compiled functions, and a check that each matches NumPy."""
    x = vector(DISPATCH_N, seed=0)
    f = tj.compile(tj.trace(chain, x), threads=1)
    jf = tj.jit(chain, threads=1)
    trivial = tj.compile(tj.trace(lambda v: v + 1.0, x), threads=1)
    ref = chain_numpy(x)
    np.testing.assert_allclose(f(x), ref, rtol=F32_RTOL, atol=F32_ATOL)
    np.testing.assert_allclose(jf(x), ref, rtol=F32_RTOL, atol=F32_ATOL)
    np.testing.assert_allclose(trivial(x), x + np.float32(1.0), rtol=F32_RTOL)
    return {"x": x, "f": f, "jf": jf, "trivial": trivial}


def native_entry_only(f: tj.CompiledFunction, x: np.ndarray) -> Callable[[], object] | None:
    """The native entry called with a prepared argument array, bypassing the Python call
    path (uses CompiledFunction internals; returns None if they are not as expected)."""
    try:
        from tensorjit.runtime.native import ffi

        entry = f._entry
        out = np.empty_like(x)
        keep = [ffi.from_buffer(x), ffi.from_buffer(out)]
        bufs = ffi.new("void *[]", keep)
        if f.stats.get("arena_bytes"):
            return None
        null = ffi.NULL
    except (AttributeError, ImportError, TypeError):
        return None

    def call() -> object:
        return entry(bufs, null, null), keep

    call()
    np.testing.assert_allclose(out, chain_numpy(x), rtol=F32_RTOL, atol=F32_ATOL)
    return call


# --- pytest-benchmark ------------------------------------------------------------------
@pytest.fixture(scope="module")
def env() -> dict[str, object]:
    return build()


@pytest.mark.benchmark(group="dispatch-64")
def test_dispatch_compiled(benchmark, record, env) -> None:
    benchmark(env["f"], env["x"])
    record("tensorjit compiled")


@pytest.mark.benchmark(group="dispatch-64")
def test_dispatch_jit(benchmark, record, env) -> None:
    benchmark(env["jf"], env["x"])
    record("tensorjit @jit")


@pytest.mark.benchmark(group="dispatch-64")
def test_dispatch_trivial_kernel(benchmark, record, env) -> None:
    benchmark(env["trivial"], env["x"])
    record("tensorjit trivial x+1")


@pytest.mark.benchmark(group="dispatch-64")
def test_dispatch_numpy(benchmark, record, env) -> None:
    benchmark(chain_numpy, env["x"])
    record("numpy")


# --- script ----------------------------------------------------------------------------
def main(rounds: int = 30) -> None:
    print(environment())
    e = build()
    x, f, jf, trivial = e["x"], e["f"], e["jf"], e["trivial"]
    out = np.empty_like(x)
    candidates: dict[str, Callable[[], object]] = {
        "compiled f(x)": lambda: f(x),
        "@tj.jit jf(x)": lambda: jf(x),
        "numpy": lambda: chain_numpy(x),
        "compiled f(x, out=)": lambda: f(x, out=out),
        "trivial kernel x+1.0": lambda: trivial(x),
        "empty Python call": lambda: None,
    }
    native = native_entry_only(f, x)
    if native is not None:
        candidates["native entry only"] = native
    t = interleaved(candidates, rounds=rounds)
    np_t = t["numpy"]
    print(f"\nchain on {DISPATCH_N} float32, 1 thread, {rounds} interleaved rounds of ~50 ms "
          "(median per call over rounds [best round])\n")
    rows = []
    for name, timing in t.items():
        no_ratio = name in ("numpy", "empty Python call", "native entry only")
        vs_np = "" if no_ratio else f"{paired_ratio(np_t, timing):.2f}x"
        rows.append([name, f"{timing.median * 1e6:.2f}", f"{timing.best * 1e6:.2f}", vs_np])
    print_table(["case", "us/call (median)", "best round", "numpy time / this"], rows)

    print()
    targets = []
    for name in ("compiled f(x)", "@tj.jit jf(x)"):
        us = t[name].median * 1e6
        faster = paired_ratio(np_t, t[name])
        targets.append([name, f"{us:.2f} us", f"<= {TARGET_US:.0f} us", _verdict(us <= TARGET_US),
                        f"{faster:.2f}x", _verdict(faster > 1.0)])
    print_table(["target", "median", "target", "verdict", "vs numpy (>1 = faster)", "verdict"],
                targets)

    call_us = t["compiled f(x)"].median * 1e6
    floor_us = t["trivial kernel x+1.0"].median * 1e6
    native_us = t["native entry only"].median * 1e6 if native is not None else None
    print(f"\nprofile: trivial kernel {floor_us:.2f} us vs chain {call_us:.2f} us: the call "
          f"path, not the kernel, is {min(floor_us / call_us, 1.0):.0%} of a call", end="")
    if native_us is not None:
        print(f"; bare native entry {native_us:.2f} us, so Python-side dispatch is "
              f"~{call_us - native_us:.2f} us per call")
    else:
        print()
    jit_extra = (t["@tj.jit jf(x)"].median - t["compiled f(x)"].median) * 1e6
    out_extra = (t["compiled f(x, out=)"].median - t["compiled f(x)"].median) * 1e6
    print(f"profile: @tj.jit adds {jit_extra:.2f} us (signature lookup) to the compiled call; "
          f"out= adds {out_extra:.2f} us rather than saving the output "
          "allocation")


if __name__ == "__main__":
    main()

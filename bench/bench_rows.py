"""Row-wise softmax and layer norm over the last axis of a (4096, 1024) float32 array.

tensorjit: ``tj.nn.softmax(x, axis=-1)`` and ``tj.nn.layer_norm(x, (1024,), g, b, eps=1e-5)``,
each compiled to one row kernel. NumPy, written the straightforward way:

* softmax: ``e = np.exp(x - x.max(-1, keepdims=True)); e / e.sum(-1, keepdims=True)``
* layer norm: ``m = x.mean(-1, keepdims=True); v = x.var(-1, keepdims=True);
  (x - m) / np.sqrt(v + eps) * g + b``

Target: >= 4x NumPy for each.

Run: ``python bench/bench_rows.py`` (ratio table) or
``pytest bench/bench_rows.py --benchmark-only``.
"""

from __future__ import annotations

import numpy as np
import pytest
from _harness import (
    F32_ATOL,
    environment,
    fmt_seconds,
    interleaved,
    loop_profile,
    paired_ratio,
    print_table,
    verdict,
)
from _workloads import ROWS, layer_norm, layer_norm_numpy, rows_inputs, softmax, softmax_numpy

import tensorjit as tj

TARGET_SPEEDUP = 4.0
ARRAY_BYTES = ROWS[0] * ROWS[1] * 4
# Row sums are accumulated in another order than NumPy's pairwise sums; softmax outputs
# are ~1e-3 on average, layer-norm outputs O(1).
SOFTMAX_TOL = {"rtol": 1e-4, "atol": 1e-7}
LAYER_NORM_TOL = {"rtol": 1e-4, "atol": 10 * F32_ATOL}


def build() -> dict[str, object]:
    """Inputs, compiled functions, and a check that each compiled kernel matches NumPy."""
    x, g, b = rows_inputs()
    f_softmax = tj.compile(tj.trace(softmax, x), threads=1)
    f_layer_norm = tj.compile(tj.trace(layer_norm, x, g, b), threads=1)
    y = f_softmax(x)
    np.testing.assert_allclose(y, softmax_numpy(x), **SOFTMAX_TOL)
    np.testing.assert_allclose(y.sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(f_layer_norm(x, g, b), layer_norm_numpy(x, g, b),
                               **LAYER_NORM_TOL)
    return {"x": x, "g": g, "b": b, "f_softmax": f_softmax, "f_layer_norm": f_layer_norm}


# --- pytest-benchmark ------------------------------------------------------------------
@pytest.fixture(scope="module")
def env() -> dict[str, object]:
    return build()


@pytest.mark.benchmark(group="softmax-4096x1024")
def test_softmax_tensorjit(benchmark, record, env) -> None:
    benchmark(env["f_softmax"], env["x"])
    record("tensorjit")


@pytest.mark.benchmark(group="softmax-4096x1024")
def test_softmax_numpy(benchmark, record, env) -> None:
    benchmark(softmax_numpy, env["x"])
    record("numpy")


@pytest.mark.benchmark(group="layer_norm-4096x1024")
def test_layer_norm_tensorjit(benchmark, record, env) -> None:
    benchmark(env["f_layer_norm"], env["x"], env["g"], env["b"])
    record("tensorjit")


@pytest.mark.benchmark(group="layer_norm-4096x1024")
def test_layer_norm_numpy(benchmark, record, env) -> None:
    benchmark(layer_norm_numpy, env["x"], env["g"], env["b"])
    record("numpy")


# --- script ----------------------------------------------------------------------------
def main(rounds: int = 25) -> None:
    print(environment())
    e = build()
    x, g, b = e["x"], e["g"], e["b"]
    f_sm, f_ln = e["f_softmax"], e["f_layer_norm"]
    t = interleaved({
        "softmax tensorjit": lambda: f_sm(x),
        "softmax numpy": lambda: softmax_numpy(x),
        "layer_norm tensorjit": lambda: f_ln(x, g, b),
        "layer_norm numpy": lambda: layer_norm_numpy(x, g, b),
    }, rounds=rounds)
    print(f"\nrow-wise ops over the last axis of {ROWS} float32, 1 thread, {rounds} interleaved "
          "rounds\n(time: median per call [best round]; GB/s counts 1 read + 1 write of x)\n")
    rows = []
    for op in ("softmax", "layer_norm"):
        tj_t, np_t = t[f"{op} tensorjit"], t[f"{op} numpy"]
        speedup = paired_ratio(np_t, tj_t)
        rows.append([
            op,
            f"{fmt_seconds(tj_t.median)} [{fmt_seconds(tj_t.best)}]",
            f"{2 * ARRAY_BYTES / tj_t.median / 1e9:.1f}",
            f"{fmt_seconds(np_t.median)} [{fmt_seconds(np_t.best)}]",
            f"{speedup:.1f}x",
            f"{np_t.best / tj_t.best:.1f}x",
            f">= {TARGET_SPEEDUP:.0f}x",
            verdict(speedup >= TARGET_SPEEDUP),
        ])
    print_table(["op", "tensorjit", "GB/s", "numpy", "speedup (paired median)", "best/best",
                 "target", "verdict"], rows)
    print()
    for name, f in (("softmax", f_sm), ("layer_norm", f_ln)):
        print(f"profile: {name}: {f.stats['kernels']} kernel(s), arena "
              f"{f.stats['arena_bytes']} bytes; asm: {loop_profile(f.ir('asm'))}")


if __name__ == "__main__":
    main()

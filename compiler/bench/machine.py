"""The machine's yardsticks, measured once per ``tensorjit bench`` run.

- Memory bandwidth: the STREAM triad ``a = b + 2c`` on 16M float32 (64 MiB per array), the
  best of a tensorjit kernel (2 reads + 1 write per element) and NumPy with ``out=`` (two
  passes, 5 arrays moved), counted the STREAM way (write-allocate traffic not counted).
- FMA peak: a JIT-compiled loop of independent vector FMA chains (12 accumulators of the
  widest vector, enough to cover FMA latency times the FMA ports of current x86 cores);
  2 flops per lane per FMA. The peak is one thread's rate times ``threads`` (running the
  loop on all threads at once measures the same on a quiet machine, and on a shared one
  measures the neighbours instead); the all-threads figure is recorded too.
"""

from __future__ import annotations

import struct
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

import tensorjit as tj
from tensorjit.compiler.bench.harness import interleaved
from tensorjit.compiler.bench.workloads import triad, triad_numpy, vector

TRIAD_N = 16 * 2**20
FMA_CHAINS = 12


@dataclass
class Machine:
    bandwidth: float  # bytes/s (triad)
    fma_peak: float  # flop/s: one thread's rate times threads
    fma_one_thread: float  # flop/s
    fma_all_threads: float  # flop/s, all threads at once
    threads: int
    target: str

    def as_dict(self) -> dict[str, Any]:
        return {"triad_GBps": self.bandwidth / 1e9, "fma_peak_GFLOPs": self.fma_peak / 1e9,
                "fma_one_thread_GFLOPs": self.fma_one_thread / 1e9,
                "fma_all_threads_GFLOPs": self.fma_all_threads / 1e9,
                "threads": self.threads, "target": self.target}


def measure_bandwidth(threads: int, rounds: int = 3) -> float:
    b, c = vector(TRIAD_N, 1), vector(TRIAD_N, 2)
    a = np.empty_like(b)
    f = tj.compile(tj.trace(triad, b, c), threads=threads)
    out = np.empty_like(b)
    t = interleaved({"tj": lambda: f(b, c, out=out), "np": lambda: triad_numpy(a, b, c)},
                    rounds=rounds)
    array = TRIAD_N * 4
    return max(3 * array / t["tj"].best, 5 * array / t["np"].best)


def _fma_ir(lanes: int) -> str:
    vec = f"<{lanes} x float>"

    def splat(v: float) -> str:
        # LLVM spells float constants as the hex of the double holding the float32 value
        bits = struct.unpack("<Q", struct.pack("<d", float(np.float32(v))))[0]
        return "<" + ", ".join([f"float 0x{bits:016X}"] * lanes) + ">"

    lines = [
        f"declare {vec} @llvm.fma.v{lanes}f32({vec}, {vec}, {vec})",
        "define void @tj_fma_peak(i64 %n, ptr %out) {",
        "entry:",
        "  br label %loop",
        "loop:",
        "  %i = phi i64 [0, %entry], [%i.next, %loop]",
    ]
    for k in range(FMA_CHAINS):
        lines.append(f"  %a{k} = phi {vec} [{splat(1.0 + k / 64)}, %entry], [%n{k}, %loop]")
    for k in range(FMA_CHAINS):
        lines.append(f"  %n{k} = call {vec} @llvm.fma.v{lanes}f32({vec} %a{k}, "
                     f"{vec} {splat(0.999999)}, {vec} {splat(1e-07)})")
    lines += ["  %i.next = add i64 %i, 1", "  %done = icmp eq i64 %i.next, %n",
              "  br i1 %done, label %exit, label %loop", "exit:"]
    acc = "%n0"
    for k in range(1, FMA_CHAINS):
        lines.append(f"  %s{k} = fadd {vec} {acc}, %n{k}")
        acc = f"%s{k}"
    lines += [f"  store {vec} {acc}, ptr %out, align 4", "  ret void", "}"]
    return "\n".join(lines)


def measure_fma_peak(threads: int, seconds: float = 0.15) -> float:
    from tensorjit.runtime.engine import Target, jit_compile
    from tensorjit.runtime.native import ffi

    target = Target.host()
    lanes = target.vector_bytes() // 4
    code = jit_compile(_fma_ir(lanes), 2, target)
    fn = ffi.cast("void(*)(int64_t, void *)", code.address("tj_fma_peak"))
    outs = [np.empty(lanes, np.float32) for _ in range(threads)]
    n = 1 << 16
    while True:  # calibrate on one thread
        t0 = time.perf_counter()
        fn(n, ffi.from_buffer(outs[0]))
        dt = time.perf_counter() - t0
        if dt > seconds / 5 or n > 1 << 32:
            break
        n *= 4
    n = max(1, int(n * seconds / 5 / max(dt, 1e-9)))
    best = 0.0
    for _ in range(3):
        barrier = threading.Barrier(threads + 1)
        ptrs = [ffi.from_buffer(o) for o in outs]

        def work(p: Any, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            fn(n, p)  # cffi releases the GIL during the call

        pool = [threading.Thread(target=work, args=(p,)) for p in ptrs]
        for t in pool:
            t.start()
        barrier.wait()
        t0 = time.perf_counter()
        for t in pool:
            t.join()
        dt = time.perf_counter() - t0
        best = max(best, threads * n * FMA_CHAINS * lanes * 2 / dt)
    return best


def measure(threads: int) -> Machine:
    target = tj.compile(tj.trace(lambda x: x + 1.0, np.zeros(1, np.float32)), threads=1)
    one = measure_fma_peak(1)
    every = measure_fma_peak(threads) if threads > 1 else one
    return Machine(measure_bandwidth(threads), one * threads, one, every, threads,
                   str(target.stats.get("target", "?")))

"""Merging small kernels that compute the same subexpressions.

Fusion gives each group of outputs its own kernel, and a kernel recomputes whatever
inlined expression it needs. When two neighbouring kernels are small and share work —
the value and the gradient of scalar-style code both evaluate the same hundreds of
sines and cosines — running their statements one after the other in one kernel lets the
code generator compute each shared expression once (it memoizes values across a
kernel's top-level statements and hoists loop invariants). Kernels big enough to be
split across threads are left alone: a merged kernel has several top-level statements,
and only a single top-level loop can be split.
"""

from __future__ import annotations

from tensorjit.ir.dtypes import DType
from tensorjit.ir.loops import (
    BufferParam,
    Cast,
    Kernel,
    Load,
    Op,
    iterations,
    statement_exprs,
    walk,
    walk_statements,
)

# Iterations (innermost work) up to which a kernel counts as small; kernels above it may
# be split across threads (compiler/codegen/module.py PARALLEL_GRAIN).
SMALL_WORK = 1 << 15


def _computed(kernel: Kernel) -> set[int]:
    """Ids of the loads and operations on values (not index arithmetic) a kernel
    evaluates; expressions are interned, so the same id in two kernels is the same
    computation."""
    exprs = [e for s in walk_statements(kernel.body) for e in statement_exprs(s)]
    return {id(x) for x in walk(*exprs)
            if isinstance(x, (Load, Op, Cast)) and x.dtype is not DType.int64}


def _merge(a: Kernel, b: Kernel) -> Kernel:
    params: dict[str, BufferParam] = {p.name: p for p in a.params}
    for p in b.params:
        had = params.get(p.name)
        if had is None or (had.role == "in" and p.role == "out"):
            params[p.name] = p
    return Kernel(a.name, tuple(params.values()), a.body + b.body, f"{a.note}; {b.note}")


def merge_sharing_kernels(kernels: list[Kernel]) -> list[Kernel]:
    """Merge each run of neighbouring small kernels whose expressions overlap; the result
    is renamed ``k0, k1, ...`` in order."""
    out: list[Kernel] = []
    computed: set[int] = set()  # what out[-1] evaluates, if it is small
    for k in kernels:
        mine = _computed(k) if _small(k) else set()
        if out and computed & mine:
            out[-1] = _merge(out[-1], k)
            computed |= mine
        else:
            out.append(k)
            computed = mine
    return [Kernel(f"k{n}", k.params, k.body, k.note) for n, k in enumerate(out)]


def _small(kernel: Kernel) -> bool:
    work = iterations(kernel.body)
    return work is not None and work <= SMALL_WORK

"""Batching a kernel's scalar math calls into vector calls.

Straight-line scalar code (a kernel's top-level statements: the value and gradient of
scalar-style code) can call the same function hundreds of times on independent
arguments (the sine and cosine of every joint angle). One vector call computes as many
of them as a vector register holds for about the price of one scalar call, so calls of
one function whose arguments do not depend on each other are computed together.

Only calls whose argument is a pure function of the kernel's inputs are batched (no loop
variable, no accumulator, no load of a buffer the kernel writes): the emitter computes
every batch once at the kernel's entry, before any statement runs.
"""

from __future__ import annotations

from tensorjit.compiler.codegen.mathlib import MATH_FUNCTIONS
from tensorjit.ir.loops import (
    AccRef,
    Gemm,
    Kernel,
    Load,
    Op,
    Store,
    Var,
    postorder,
    walk_statements,
)

# fewer calls than this of one function stay scalar
MIN_BATCH = 2


def math_batches(kernel: Kernel) -> list[list[Op]]:
    """Groups of the math calls of ``kernel``'s top-level stores that can be computed
    together: one function and dtype, none depending on another of its group. Groups
    come in an order where a group's arguments only use earlier groups' results."""
    written = {s.buffer if isinstance(s, Store) else s.out
               for s in walk_statements(kernel.body) if isinstance(s, (Store, Gemm))}
    roots = [e for s in kernel.body if isinstance(s, Store) for e in (s.index, s.value)]
    pure: dict[int, bool] = {}
    depth: dict[int, int] = {}  # math calls on the longest path below, the node included
    groups: dict[tuple[int, str, str], list[Op]] = {}
    for e in postorder(*roots):
        kids = e.children()
        pure[id(e)] = not isinstance(e, (Var, AccRef)) and all(pure[id(c)] for c in kids) \
            and not (isinstance(e, Load) and e.buffer in written)
        depth[id(e)] = max((depth[id(c)] for c in kids), default=0)
        if isinstance(e, Op) and e.op in MATH_FUNCTIONS and e.dtype.is_float:
            depth[id(e)] += 1
            if pure[id(e)]:
                groups.setdefault((depth[id(e)], e.op, e.dtype.name), []).append(e)
    return [g for _, g in sorted(groups.items()) if len(g) >= MIN_BATCH]

"""Memory planning: where each temporary lives in the arena.

The loop-IR module runs its kernels in order; a temporary (a buffer of kind ``temp``) is
live from the first kernel that touches it to the last one, both included (a kernel's
params say which buffers it reads and writes). The planner

1. computes elementwise results *in place*: when a kernel writes a temporary ``B`` at
   exactly the positions where it reads a temporary ``A`` of the same dtype and size
   whose last reader it is, and reads no ``A`` element after writing that position,
   ``B`` is renamed to ``A`` in this and every later kernel, so one buffer holds both
   (renaming, rather than aliasing two names, keeps the kernels' ``noalias`` promises);
2. gives every temporary a 64-byte-aligned offset such that temporaries live in the same
   kernel never overlap, placing the largest first at the lowest offset that fits
   (a slot is reused once its last reading kernel has run).

Sizes must be static; a module with a symbolic-size temporary keeps the codegen's bump
allocation (``plan_memory`` returns no plan). Scratch buffers (kind ``scratch``) live on
each kernel call's stack and are not planned.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from tensorjit.ir.loops import (
    AccInit,
    AccUpdate,
    BufferParam,
    Expr,
    Kernel,
    Load,
    Loop,
    Module,
    Stmt,
    Store,
    mentions,
    rebuild,
    statement_exprs,
    walk,
)

ALIGN = 64


def _aligned(nbytes: int) -> int:
    return -(-nbytes // ALIGN) * ALIGN


@dataclass(frozen=True)
class Placement:
    name: str
    offset: int
    nbytes: int  # rounded up to ALIGN
    first: int  # index of the first kernel that uses it (-1: none)
    last: int


@dataclass(frozen=True)
class InPlace:
    result: str  # the temporary that was renamed away
    into: str  # the temporary whose storage it took
    kernel: str


@dataclass(frozen=True)
class MemoryPlan:
    placements: tuple[Placement, ...]
    in_place: tuple[InPlace, ...]
    arena_bytes: int  # the planned arena
    naive_bytes: int  # every temporary in its own slot (the bump allocation)
    peak_bytes: int  # the most bytes live during one kernel: no plan can do better

    @property
    def offsets(self) -> dict[str, int]:
        return {p.name: p.offset for p in self.placements}

    def format(self) -> str:
        ratio = self.arena_bytes / self.naive_bytes if self.naive_bytes else 1.0
        lines = [f"arena {self.arena_bytes} bytes (naive {self.naive_bytes}, "
                 f"{ratio:.1%}; peak live {self.peak_bytes})"]
        for p in sorted(self.placements, key=lambda p: (p.offset, p.first)):
            live = f"k{p.first}..k{p.last}" if p.first >= 0 else "unused"
            lines.append(f"  {p.name:>6} @ {p.offset:>10} + {p.nbytes:<10} live {live}")
        for ip in self.in_place:
            lines.append(f"  {ip.result} computed in place of {ip.into} in {ip.kernel}")
        return "\n".join(lines)


# --- walking and renaming loop IR -------------------------------------------------------

def _loads(e: Expr) -> list[Load]:
    return [x for x in walk(e) if isinstance(x, Load)]


def in_place_ok(kernel: Kernel, a: str, b: str) -> bool:
    """May ``kernel`` write ``b`` into ``a``'s storage? Every store to ``b`` and every load
    of ``a`` use one index expression that names every loop around the store (so each
    position is written once, where it was read), no load of ``a`` comes after the first
    store to ``b`` in program order (except inside that store's own value), and ``b`` is
    never read. Kernels with statements other than loops, stores and accumulators
    (a GEMM) are never in place."""
    index: Expr | None = None
    stored = False
    a_indices: list[Expr] = []
    stack: list[tuple[Stmt, tuple[str, ...]]] = [(s, ()) for s in reversed(kernel.body)]
    while stack:
        s, loops = stack.pop()
        if not isinstance(s, (Loop, Store, AccInit, AccUpdate)):
            return False
        loads = [ld for e in statement_exprs(s) for ld in _loads(e)]
        if any(ld.buffer == b for ld in loads):
            return False
        a_loads = [ld.index for ld in loads if ld.buffer == a]
        if a_loads and stored:
            return False
        a_indices += a_loads
        if isinstance(s, Store) and s.buffer == b:
            if index is None:
                index = s.index
            if s.index is not index or not all(mentions(index, v) for v in loops):
                return False
            stored = True
        if isinstance(s, Loop):
            stack.extend((c, loops + (s.var,)) for c in reversed(s.body))
    return index is not None and all(i is index for i in a_indices)


def _rename_expr(e: Expr, old: str, new: str, memo: dict[int, Expr]) -> Expr:
    """``e`` with loads of buffer ``old`` reading ``new`` (iterative: deep expressions)."""
    stack: list[tuple[Expr, bool]] = [(e, False)]
    while stack:
        x, ready = stack.pop()
        if id(x) in memo:
            continue
        kids = x.children()
        if not ready and kids:
            stack.append((x, True))
            stack.extend((k, False) for k in kids if id(k) not in memo)
            continue
        new_kids = tuple(memo[id(k)] for k in kids)
        y = x if all(n is k for n, k in zip(new_kids, kids)) else rebuild(x, new_kids)
        if isinstance(y, Load) and y.buffer == old:
            y = Load(new, y.index, y.dtype)
        memo[id(x)] = y
    return memo[id(e)]


_BUFFER_FIELDS = frozenset({"buffer", "a", "b_packed", "out"})


def _rename_stmt(s: Stmt, old: str, new: str, memo: dict[int, Expr]) -> Stmt:
    changes = {}
    for f in dataclasses.fields(s):  # type: ignore[arg-type]
        value = getattr(s, f.name)
        if f.name in _BUFFER_FIELDS and value == old:
            changes[f.name] = new
        elif isinstance(value, Expr):
            renamed = _rename_expr(value, old, new, memo)
            if renamed is not value:
                changes[f.name] = renamed
        elif isinstance(value, tuple) and value and not isinstance(value[0], (int, str)):
            changes[f.name] = tuple(_rename_stmt(c, old, new, memo) for c in value)
    return dataclasses.replace(s, **changes) if changes else s  # type: ignore[type-var]


def _rename_kernel(k: Kernel, old: str, new: str) -> Kernel:
    names = [p.name for p in k.params]
    if old not in names:
        return k
    params: list[BufferParam] = []
    for p in k.params:
        if p.name == old:
            p = dataclasses.replace(p, name=new)
        if p.name == new and any(q.name == new for q in params):
            if p.role == "out":
                params = [dataclasses.replace(q, role="out") if q.name == new else q
                          for q in params]
            continue
        params.append(p)
    memo: dict[int, Expr] = {}
    body = tuple(_rename_stmt(s, old, new, memo) for s in k.body)
    return dataclasses.replace(k, params=tuple(params), body=body)


# --- liveness and placement -------------------------------------------------------------

def _lifetimes(module: Module, temps: set[str]) -> dict[str, tuple[int, int]]:
    live: dict[str, tuple[int, int]] = {}
    for k, kernel in enumerate(module.kernels):
        for p in kernel.params:
            if p.name in temps:
                first, _ = live.get(p.name, (k, k))
                live[p.name] = (first, k)
    return live


def compute_in_place(module: Module) -> tuple[Module, list[InPlace]]:
    """Rename elementwise results into the storage of a same-sized input that dies in the
    same kernel (see the module docstring)."""
    sizes = {b.name: (b.dtype, b.numel) for b in module.buffers if b.kind == "temp"}
    done: list[InPlace] = []
    k = 0
    while k < len(module.kernels):
        live = _lifetimes(module, set(sizes))
        kernel = module.kernels[k]
        renamed = False
        for out in (p for p in kernel.params if p.role == "out" and p.name in sizes):
            if live[out.name][0] != k:
                continue
            for inp in (p for p in kernel.params if p.role == "in" and p.name in sizes):
                if live[inp.name][1] != k or sizes[inp.name] != sizes[out.name]:
                    continue
                if not in_place_ok(kernel, inp.name, out.name):
                    continue
                kernels = module.kernels[:k] + [_rename_kernel(kk, out.name, inp.name)
                                                for kk in module.kernels[k:]]
                buffers = [b for b in module.buffers if b.name != out.name]
                module = dataclasses.replace(module, kernels=kernels, buffers=buffers)
                del sizes[out.name]
                done.append(InPlace(out.name, inp.name, kernel.name))
                renamed = True
                break
            if renamed:
                break
        if not renamed:
            k += 1
    return module, done


def _place(sizes: dict[str, int], live: dict[str, tuple[int, int]]) -> dict[str, int]:
    """Largest first, each at the lowest aligned offset clear of every placed temporary
    whose lifetime overlaps its own."""
    order = sorted(sizes, key=lambda n: (-sizes[n], live.get(n, (-1, -1)), n))
    placed: list[tuple[int, int, int, int]] = []  # offset, end, first, last
    offsets: dict[str, int] = {}
    for name in order:
        first, last = live.get(name, (-1, -1))
        clash = sorted((o, e) for o, e, f, la in placed
                       if first >= 0 and f >= 0 and f <= last and first <= la)
        offset = 0
        for o, e in clash:
            if offset + sizes[name] <= o:
                break
            offset = max(offset, e)
        offsets[name] = offset
        placed.append((offset, offset + sizes[name], first, last))
    return offsets


def plan_memory(module: Module) -> tuple[Module, MemoryPlan | None]:
    """The module with in-place results renamed, and the arena plan (None when a
    temporary has a symbolic size: then the bump allocation stays)."""
    temps = [b for b in module.buffers if b.kind == "temp"]
    if any(not b.numel.is_static for b in temps):
        return module, None
    naive = sum(_aligned(b.numel.coef * b.dtype.itemsize) for b in temps)
    module, in_place = compute_in_place(module)
    sizes = {b.name: _aligned(b.numel.coef * b.dtype.itemsize)
             for b in module.buffers if b.kind == "temp"}
    live = _lifetimes(module, set(sizes))
    offsets = _place(sizes, live)
    placements = tuple(Placement(n, offsets[n], sizes[n], *live.get(n, (-1, -1)))
                       for n in sizes)
    arena = max((p.offset + p.nbytes for p in placements), default=0)
    peak = max((sum(p.nbytes for p in placements if p.first <= k <= p.last)
                for k in range(len(module.kernels))), default=0)
    return module, MemoryPlan(placements, tuple(in_place), arena, naive, peak)

"""Loop-invariant subexpressions: what a loop body computes that is the same in every
iteration, so that the emitter computes it once before the loop.

LLVM's LICM would hoist much of this from the vector body, but not from the scalar tail
(a second copy), and not calls; and in scalar-style code (a gradient whose every element
reads the same hundreds of sines and cosines) the invariant part is nearly all the work.
"""

from __future__ import annotations

from tensorjit.ir.loops import (
    AccInit,
    AccRef,
    AccUpdate,
    Const,
    DimParam,
    Expr,
    Gemm,
    Load,
    Loop,
    Stmt,
    Store,
    Var,
    statement_exprs,
)


def _runs(loop: Loop) -> bool:
    """Does ``loop`` certainly run at least once? Only then is evaluating its invariants
    before it as safe as its first iteration (a load in a loop that never runs may point
    outside its buffer)."""
    return isinstance(loop.extent, Const) and int(loop.extent.value) > 0


def _defined_inside(body: tuple[Stmt, ...], names: set[str], accs: set[str],
                    stored: set[str]) -> bool:
    """Collect loop variables, accumulators and buffers written in ``body``; False when
    the body holds a statement the analysis does not cover."""
    for s in body:
        if isinstance(s, Loop):
            names.add(s.var)
            if not _defined_inside(s.body, names, accs, stored):
                return False
        elif isinstance(s, Store):
            stored.add(s.buffer)
        elif isinstance(s, (AccInit, AccUpdate)):
            accs.add(s.name)
        elif isinstance(s, Gemm):
            return False
    return True


def _roots(body: tuple[Stmt, ...]) -> list[Expr]:
    """The expressions a body evaluates, skipping loops that may not run."""
    out: list[Expr] = []
    for s in body:
        out += statement_exprs(s)
        if isinstance(s, Loop) and _runs(s):
            out += _roots(s.body)
    return out


def loop_invariants(loop: Loop) -> list[Expr]:
    """The largest subexpressions of ``loop``'s body that no iteration changes: they
    read no variable of the loop or of a loop inside it, no accumulator it updates and no
    buffer it writes. Constants, variables and dims are left out (nothing to save)."""
    names, accs, stored = {loop.var}, set[str](), set[str]()
    if not _runs(loop) or not _defined_inside(loop.body, names, accs, stored):
        return []
    variant: dict[int, bool] = {}

    def varies(e: Expr) -> bool:
        hit = variant.get(id(e))
        if hit is None:
            if isinstance(e, Var):
                hit = e.name in names
            elif isinstance(e, AccRef):
                hit = e.name in accs
            elif isinstance(e, Load) and e.buffer in stored:
                hit = True
            else:
                hit = any(varies(c) for c in e.children())
            variant[id(e)] = hit
        return hit

    out: list[Expr] = []
    seen: set[int] = set()
    stack = _roots(loop.body)
    while stack:
        e = stack.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if varies(e):
            stack.extend(e.children())
        elif not isinstance(e, (Const, Var, DimParam)):
            out.append(e)
    return out

"""Per-row scratch buffers: compute a subexpression once per row, reuse it in later stages.

In a row kernel, softmax's ``exp(x - max)`` is needed by the sum stage and again by the
output stage, and layernorm's ``x - mean`` by the variance stage and the output stage.
Expressions are interned and inner loop variables are named by position, so the same
subexpression in two stages is the same object. The first stage that computes it stores
it into a row-sized scratch buffer (hot in L1/L2); later stages load it from there
instead of recomputing it and re-reading their inputs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tensorjit.compiler.lowering import index as ix
from tensorjit.ir.loops import (
    AccRef,
    Buffer,
    Const,
    DimParam,
    Expr,
    Load,
    Stmt,
    Store,
    Var,
    rebuild,
)
from tensorjit.ir.shapes import numel

if TYPE_CHECKING:
    from tensorjit.compiler.lowering.lower import Group

_LEAVES = (Load, Const, Var, AccRef, DimParam)
SCRATCH_STACK_BYTES = 256 * 1024


def share_across_stages(group: Group, scratch: list[Buffer],
                        dims: dict[str, Expr]) -> dict[int, list[Stmt]]:
    """Rewrite the group's stage values in place; return extra stores per stage index."""
    if group.mode != "rows" or len(group.stages) < 2 or not group.inner:
        return {}
    inner_vars = {f"j{k}" for k in range(len(group.inner))}
    flat = ix.ravel([Var(f"j{k}") for k in range(len(group.inner))], group.inner, dims)
    depends: dict[Expr, bool] = {}

    def varies(e: Expr) -> bool:
        hit = depends.get(e)
        if hit is None:
            hit = (isinstance(e, Var) and e.name in inner_vars) or any(
                varies(c) for c in e.children())
            depends[e] = hit
        return hit

    seen: dict[Expr, int] = {}
    slots: dict[Expr, str] = {}
    extra: dict[int, list[Stmt]] = {}

    def replace(e: Expr, stage: int) -> Expr:
        first = seen.get(e)
        if first is not None and first != stage:
            name = slots.get(e)
            if name is None:
                name = f"s{len(scratch)}"
                slots[e] = name
                size = numel(group.inner)
                # Small rows live on each kernel call's stack (private per thread); larger
                # or symbolic ones in the arena, and then the kernel runs serially.
                small = size.is_static and size.coef * e.dtype.itemsize <= SCRATCH_STACK_BYTES
                scratch.append(Buffer(name, e.dtype, size, "scratch" if small else "temp"))
                extra.setdefault(first, []).append(Store(name, flat, e))
            return Load(name, flat, e.dtype)
        if isinstance(e, _LEAVES) or not e.children():
            return e
        kids = tuple(replace(c, stage) for c in e.children())
        return e if kids == e.children() else rebuild(e, kids)

    for s, stage in enumerate(group.stages):
        if stage.inner != group.inner:
            continue
        stage.items = [(node, replace(value, s), pos) for node, value, pos in stage.items]
        for _, value, _ in stage.items:
            stack = [value]
            while stack:
                e = stack.pop()
                if isinstance(e, _LEAVES) or not e.dtype.is_float or not varies(e):
                    continue
                if e not in seen:
                    seen[e] = s
                    stack.extend(e.children())
    return extra

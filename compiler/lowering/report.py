"""The fusion report: the optimized graph annotated with the kernel each node went to.

Read-only: it reads what ``Lowering`` decided (the materialized nodes and why, the kernel
groups in order, and why a root could not join the kernel before it) and prints the
graph with a note per node, after a summary of the kernels:

    k1 rows kernel: %7 %9 -- could not join k0: reduce_max read at another row
    ...
      %7 = reduce_max(%6) {axes=(1,)} : f32[64]    # k1 (reduction; kept in a register)
      %8 = sub(%0, %7) : f32[64,128]              # inlined into k1, k2 (computed in each)

This is the ``fusion`` stage of ``CompiledFunction.ir`` and of ``TENSORJIT_DUMP``.
"""

from __future__ import annotations

from tensorjit.compiler.lowering.lower import Group, Lowering
from tensorjit.ir.graph import Node
from tensorjit.ir.loops import Module
from tensorjit.ir.printer import format_graph

_OWN_KERNEL = {
    "matmul": "a matmul is a kernel of its own",
    "pack": "a GEMM packs its B operand first",
    "gemm": "the GEMM itself (elementwise consumers fuse into its store)",
    "columns": "a reduction keeping the innermost axis accumulates whole rows",
}


def _names(lowering: Lowering) -> dict[Node, str]:
    """The ``%N`` names ``format_graph`` gives."""
    names: dict[Node, str] = {}
    for p in lowering.graph.params:
        names[p] = f"%{len(names)}"
    for n in lowering.graph.nodes():
        if n not in names:
            names[n] = f"%{len(names)}"
    return names


def _why_start(lowering: Lowering, k: int, group: Group) -> str:
    if group.mode in _OWN_KERNEL:
        return _OWN_KERNEL[group.mode]
    if k == 0:
        return "first kernel"
    before = lowering.groups[k - 1]
    if before.mode not in ("flat", "rows"):
        return f"k{k - 1} is a {before.mode} kernel"
    first = group.roots[0]
    reason = lowering.split_reasons.get(first, "")
    return f"could not join k{k - 1}: {reason}" if reason else f"after k{k - 1}"


def fusion_report(lowering: Lowering, module: Module) -> str:
    names = _names(lowering)
    stored = {b.name for b in module.buffers}
    kernels_of: dict[Node, list[int]] = {}
    inlined: dict[Node, list[int]] = {}
    lines = [f"# {len(lowering.groups)} kernels; materialized nodes get buffers, the rest "
             "is inlined (recomputed in every kernel that reads it)"]
    for k, group in enumerate(lowering.groups):
        roots = " ".join(names[r] for r in group.roots)
        lines.append(f"# k{k} {group.mode} kernel: {roots} -- {_why_start(lowering, k, group)}")
        for r in group.roots:
            kernels_of.setdefault(r, []).append(k)
        seen: set[Node] = set()
        stack = [i for r in group.roots for i in r.inputs]
        while stack:
            n = stack.pop()
            if n in seen or n in lowering.roots:
                continue
            seen.add(n)
            inlined.setdefault(n, []).append(k)
            stack.extend(n.inputs)
    notes: dict[Node, str] = {}
    for n in lowering.graph.nodes():
        if n in kernels_of:
            ks = ", ".join(f"k{k}" for k in dict.fromkeys(kernels_of[n]))
            why = lowering.roots.get(n, "")
            buffer = lowering.buffers.get(n)
            kept = "" if buffer is None or buffer in stored else "; kept in a register"
            notes[n] = f"{ks} ({why}{kept})" if why else ks
        elif n in inlined:
            ks = inlined[n]
            again = " (computed in each)" if len(ks) > 1 else ""
            notes[n] = "inlined into " + ", ".join(f"k{k}" for k in ks) + again
        elif n in lowering.roots:
            notes[n] = lowering.roots[n]
    return "\n".join(lines) + "\n" + format_graph(lowering.graph, notes=notes)

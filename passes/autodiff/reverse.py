"""Reverse mode: cotangents of a set of nodes from cotangents of some outputs.

The walk is iterative over the topological order (deep scalar-style graphs are fine):
only *active* nodes (float nodes that depend on a ``wrt`` node) are visited, each node's
cotangent is the sum of its users' contributions, and each op's contribution comes from
its row in ``rules.VJP_RULES``. The result is ordinary graph nodes.

Saved versus recomputed: the backward nodes refer to forward nodes directly (a rule for
``exp`` uses the forward ``exp`` node), and interning makes a forward value used by both
passes one node. What is stored is then decided by fusion, as for any graph: reductions,
matmuls (and their operands) and outputs get buffers, while elementwise and movement
nodes are inlined into the kernels that read them. So cheap elementwise forward values
(an activation, a sigmoid, ``x - max``) are recomputed inside the backward kernels rather
than written to memory and read back, and a training step's temporaries are about those
of the forward pass plus the gradients' matmuls (checked on an MLP step in
``tests/passes/test_autodiff_training.py``). The flip side: in scalar-style code a
recomputed value can be a whole chain of scalar ops, which each kernel reading it repeats.
"""

from __future__ import annotations

from collections.abc import Sequence

from tensorjit.ir.errors import UnsupportedError, with_location
from tensorjit.ir.graph import Node, toposort
from tensorjit.passes.autodiff import nodes as n
from tensorjit.passes.autodiff.accumulate import total
from tensorjit.passes.autodiff.rules import NON_DIFFERENTIABLE, VJP_RULES


def vjp(outputs: Sequence[Node], cotangents: Sequence[Node | None],
        wrt: Sequence[Node]) -> list[Node | None]:
    """Cotangent of each ``wrt`` node (``None``: no path, a zero gradient) given the
    cotangent of each output (``None``: zero)."""
    order = toposort(outputs)
    targets = set(wrt)
    active: set[Node] = set()
    for node in order:
        if node.dtype.is_float and (node in targets or any(i in active for i in node.inputs)):
            active.add(node)
    pending: dict[Node, list[Node]] = {}
    for out, ct in zip(outputs, cotangents):
        if ct is None or out not in active:
            continue
        if (ct.shape, ct.dtype) != (out.shape, out.dtype):
            raise AssertionError(f"cotangent {ct} does not match output {out}")
        pending.setdefault(out, []).append(ct)
    found: dict[Node, Node] = {}
    for node in reversed(order):
        contributions = pending.pop(node, None)
        if contributions is None:
            continue
        with n.location(node.loc):
            g = total(contributions)
            if node in targets:
                found[node] = g
            if node.op in NON_DIFFERENTIABLE:
                continue
            rule = VJP_RULES.get(node.op)
            if rule is None:
                raise UnsupportedError(with_location(f"no VJP rule for op {node.op}", node.loc))
            cts = rule(node, node.inputs, g)
        for inp, ct in zip(node.inputs, cts):
            if ct is not None and inp in active:
                if (ct.shape, ct.dtype) != (inp.shape, inp.dtype):
                    raise AssertionError(f"VJP rule of {node.op} gave {ct} for input {inp}")
                pending.setdefault(inp, []).append(ct)
    return [found.get(w) for w in wrt]

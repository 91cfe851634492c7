"""Fusion decisions: which graph nodes get a buffer of their own (are materialized).

Everything else is inlined into the kernels that read it. Materialized are: parameters,
outputs, array constants, reductions (a kernel may still keep one in a register, see
``lower``), contractions, and operands of contractions that are more than a view of a
buffer (a matmul reads each operand element many times, so computing it inline would
repeat the work).
"""

from __future__ import annotations

from tensorjit.ir.graph import ConstArray, Graph, Node
from tensorjit.ir.ops import Category, get_op

# Index maps cheap enough to evaluate while packing an operand (window: a fused im2col).
_VIEW_OPS = frozenset({"reshape", "transpose", "broadcast_to", "slice", "window"})


def materialized_nodes(graph: Graph) -> dict[Node, str]:
    """Materialized nodes in topological order, each with the reason it has a buffer."""
    chosen: dict[Node, str] = {}
    for p in graph.params:
        chosen[p] = "parameter"
    for o in graph.outputs:
        chosen.setdefault(o, "output")
    for node in graph.nodes():
        category = get_op(node.op).category
        if node.op == "const" and isinstance(node.attr("value"), ConstArray):
            chosen.setdefault(node, "array constant")
        elif category in (Category.REDUCE, Category.CONTRACTION):
            chosen.setdefault(node, category.value)
            if category is Category.CONTRACTION:
                for operand in node.inputs:
                    base = operand
                    while base.op in _VIEW_OPS and base not in chosen:
                        base = base.inputs[0]
                    if base not in chosen and base.op != "const":
                        chosen[base] = "contraction operand"
    return {n: chosen[n] for n in graph.nodes() if n in chosen}

"""Common subexpression elimination: every node re-interned bottom-up.

Structurally identical nodes are one node (``ir.graph.make_node`` interns them), so the
tracer and every rewrite already share what is computed twice; canonicalization makes
``a*b`` and ``b*a`` identical first. This pass re-interns a graph whose nodes may have
been made another way (copied, unpickled), so that the invariant holds for the graph the
lowering sees, and reports how many nodes merged.
"""

from __future__ import annotations

from tensorjit.ir.graph import Graph, Node, make_node


def cse(graph: Graph) -> tuple[Graph, int]:
    """The graph with structurally equal nodes merged, and how many nodes went away."""
    mapping: dict[Node, Node] = {}
    for node in graph.nodes():
        if node.op == "param":
            mapping[node] = node
            continue
        ins = tuple(mapping[i] for i in node.inputs)
        mapping[node] = make_node(node.op, ins, node.attrs, node.shape, node.dtype, node.loc)
    out = Graph(graph.params, tuple(mapping[o] for o in graph.outputs), graph.name,
                graph.returns_tuple)
    return out, len(graph.nodes()) - len(out.nodes())

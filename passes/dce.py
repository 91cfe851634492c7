"""Dead code elimination: keep what the outputs need (and every parameter).

A graph is its outputs and what they reach (``Graph.nodes`` walks back from them), so a
node that a rewrite bypassed is not in the rewritten graph's node list: the rewriter's
sweeps already drop dead code. This pass makes that a named stage (in the dump and the
stats): it rebuilds the node list, keeps every parameter (the function's signature) even
when unused, and reports how many nodes went away.
"""

from __future__ import annotations

from tensorjit.ir.graph import Graph


def dce(graph: Graph) -> tuple[Graph, int]:
    out = Graph(graph.params, graph.outputs, graph.name, graph.returns_tuple)
    return out, len(graph.nodes()) - len(out.nodes())

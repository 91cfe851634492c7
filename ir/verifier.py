"""The graph verifier: runs between stages and explains what is wrong, in context."""

from __future__ import annotations

from tensorjit.ir.errors import TensorJitError, VerificationError
from tensorjit.ir.graph import Graph, Node
from tensorjit.ir.ops import Category, TypeInfo, get_op
from tensorjit.ir.printer import format_graph


def verify_graph(graph: Graph, stage: str = "") -> None:
    """Raise VerificationError (with the graph printed and the node marked) on any defect.
    A graph that passed once is not checked again (nodes are immutable)."""
    if graph._verified:
        return
    for node in graph.nodes():
        problem = _check_node(graph, node)
        if problem:
            where = f" after {stage}" if stage else ""
            raise VerificationError(
                f"graph verification failed{where}: {problem}\n"
                + format_graph(graph, highlight=node)
            )
    indices = [p.attr("index") for p in graph.params]
    if indices != list(range(len(graph.params))):
        raise VerificationError(f"param indices {indices} are not 0..{len(indices) - 1}")
    if not graph.outputs:
        raise VerificationError("graph has no outputs")
    graph._verified = True


def _check_node(graph: Graph, node: Node) -> str | None:
    try:
        opdef = get_op(node.op)
    except TensorJitError as exc:
        return str(exc)
    if opdef.category is Category.SOURCE:
        if node.inputs:
            return f"source op {node.op} has inputs"
        if node.op == "param" and node not in graph.params:
            return "param node is not among the graph's params"
        return None
    if opdef.arity is not None and len(node.inputs) != opdef.arity:
        return f"{node.op} takes {opdef.arity} operands, has {len(node.inputs)}"
    try:
        t = opdef.infer([TypeInfo(i.shape, i.dtype) for i in node.inputs], dict(node.attrs))
    except TensorJitError as exc:
        return f"type rule rejects the node: {exc}"
    if (t.shape, t.dtype) != (node.shape, node.dtype):
        return (f"node says {node.dtype.short}{list(node.shape)} but its rule gives "
                f"{t.dtype.short}{list(t.shape)}")
    return None

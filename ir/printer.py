"""The text form of the graph IR.

Grammar (one node per line, inputs before users)::

    graph   := "graph" NAME "(" params ")" "{" line* "return" "(" ids ")" "}"
    params  := (ID ":" type ("," ID ":" type)*)?
    line    := ID "=" OP "(" ids ")" attrs? ":" type
    attrs   := "{" NAME "=" VALUE ("," NAME "=" VALUE)* "}"
    type    := DTYPE "[" (DIM ("," DIM)*)? "]"       DTYPE: f32 f64 i32 i64 bool
    ID      := "%" INT                                DIM: an int or a symbolic name

Example::

    graph f(%0: f32[batch,4]) {
      %1 = const() {value=2.0} : f32[]
      %2 = broadcast_to(%1) {shape=(batch, 4)} : f32[batch,4]
      %3 = mul(%0, %2) : f32[batch,4]
      return (%3)
    }
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tensorjit.ir.shapes import format_shape

if TYPE_CHECKING:
    from tensorjit.ir.graph import Graph, Node


def format_type(node: Node) -> str:
    return f"{node.dtype.short}{format_shape(node.shape)}"


def format_attrs(node: Node) -> str:
    shown = [(k, v) for k, v in node.attrs if not (node.op == "param" and k == "index")]
    if not shown:
        return ""
    return " {" + ", ".join(f"{k}={_value(v)}" for k, v in shown) + "}"


def _value(v: object) -> str:
    from tensorjit.ir.dtypes import DType

    if isinstance(v, DType):
        return v.short
    if isinstance(v, float):
        return repr(v)
    return str(v)


def format_node_short(node: Node) -> str:
    return f"<{node.op}{format_attrs(node)} : {format_type(node)}>"


def format_graph(graph: Graph, highlight: Node | None = None,
                 notes: dict[Node, str] | None = None) -> str:
    names: dict[Node, str] = {}
    for p in graph.params:
        names[p] = f"%{len(names)}"
    head = ", ".join(f"{names[p]}: {format_type(p)}" for p in graph.params)
    lines = [f"graph {graph.name}({head}) {{"]
    types: dict[tuple, str] = {}  # (a large graph has few distinct types)
    for node in graph.nodes():
        if node in names:
            continue
        name = names[node] = f"%{len(names)}"
        args = ", ".join([names[i] for i in node.inputs])
        t = types.get((node.dtype, node.shape))
        if t is None:
            t = types[node.dtype, node.shape] = format_type(node)
        line = f"  {name} = {node.op}({args}){format_attrs(node) if node.attrs else ''} : {t}"
        if notes and node in notes:
            line += f"    # {notes[node]}"
        if node is highlight:
            line += "    <-- here"
        lines.append(line)
    outs = ", ".join(names[o] for o in graph.outputs)
    lines.append(f"  return ({outs})")
    lines.append("}")
    return "\n".join(lines)


def graph_to_dot(graph: Graph) -> str:
    ids = {n: f"n{k}" for k, n in enumerate(graph.nodes())}
    lines = [f'digraph "{graph.name}" {{', "  node [shape=box, fontname=monospace];"]
    for n, i in ids.items():
        label = f"{n.op}{format_attrs(n)}\\n{format_type(n)}".replace('"', "'")
        lines.append(f'  {i} [label="{label}"];')
        for inp in n.inputs:
            lines.append(f"  {ids[inp]} -> {i};")
    lines.append("}")
    return "\n".join(lines)

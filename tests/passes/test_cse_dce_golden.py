"""CSE and DCE: golden text and counts."""

from __future__ import annotations

from tensorjit.ir.graph import Graph, Node
from tensorjit.ir.parser import parse_graph
from tensorjit.passes.cse import cse
from tensorjit.passes.dce import dce
from tensorjit.passes.manager import PassContext
from tensorjit.passes.pipeline import DEFAULT


def test_cse_merges_structurally_equal_nodes_made_without_interning(filecheck) -> None:
    g = parse_graph("""
    graph f(%0: f32[4]) {
      %1 = exp(%0) : f32[4]
      return (%1)
    }""")
    x = g.params[0]
    # two copies of exp(x) made around the interning table (as a deserializer might)
    a = Node("exp", (x,), (), x.shape, x.dtype)
    b = Node("exp", (x,), (), x.shape, x.dtype)
    s = Node("add", (a, b), (), x.shape, x.dtype)
    out, merged = cse(Graph(g.params, (s,), "f"))
    assert merged == 1
    filecheck(str(out), """
    CHECK: [[E:%\\d+]] = exp(%0)
    CHECK-NEXT: add([[E]], [[E]])
    """)
    assert out.outputs[0].inputs[0] is g.outputs[0]  # the interned exp(x)


def test_dce_reports_what_the_pipeline_made_dead(filecheck) -> None:
    g = parse_graph("""
    graph f(%0: f32[4], %1: f32[4]) {
      %2 = const() {value=0.0} : f32[]
      %3 = broadcast_to(%2) {shape=(4,)} : f32[4]
      %4 = const() {value=True} : bool[]
      %5 = broadcast_to(%4) {shape=(4,)} : bool[4]
      %6 = exp(%1) : f32[4]
      %7 = select(%5, %0, %6) : f32[4]
      return (%7)
    }""")
    ctx = PassContext()
    out = DEFAULT.run(g, ctx)
    assert str(out).count("=") == 0 and out.outputs[0] is g.params[0]
    assert len(out.params) == 2  # an unused parameter stays: it is the signature
    assert ctx.changes["simplify"] == 1
    same, removed = dce(out)
    assert removed == 0 and same.outputs == out.outputs

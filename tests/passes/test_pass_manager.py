"""The pass manager and the rewriter: named passes, timings in stats, verification,
disabling by name, loud non-convergence, the dump of every pass."""

from __future__ import annotations

import difflib
from pathlib import Path

import numpy as np
import pytest

import tensorjit as tj
from tensorjit.ir.build import apply
from tensorjit.ir.errors import TensorJitError, VerificationError
from tensorjit.ir.graph import Graph, Node
from tensorjit.ir.parser import parse_graph
from tensorjit.passes.manager import Pass, PassContext, Pipeline, rewrite_pass
from tensorjit.passes.pipeline import DEFAULT
from tensorjit.passes.rewrite import (
    RewriteContext,
    RewriteDidNotConverge,
    RewriteError,
    RuleTable,
    rewrite,
)

SMALL = """
graph f(%0: f32[4], %1: f32[4]) {
  %2 = add(%0, %1) : f32[4]
  %3 = neg(%2) : f32[4]
  return (%3)
}"""


def test_the_default_pipeline_reads_like_a_script() -> None:
    assert DEFAULT.names == ["canonicalize", "fold", "simplify", "strength-reduce", "layout",
                             "cleanup", "relu-masks", "cse", "dce", "constant-outputs"]
    assert all(line.split()[0] in DEFAULT.names for line in DEFAULT.describe().splitlines())


def test_compile_records_every_pass_time_and_the_optimized_stage() -> None:
    x = np.ones((4, 4), np.float32)
    f = tj.compile(tj.trace(lambda x: tj.negative(-x) * 1.0, x), cache=False)
    assert list(f.stats["pass_seconds"]) == DEFAULT.names
    assert all(t >= 0 for t in f.stats["pass_seconds"].values())
    assert f.stats["compile_seconds"]["passes"] >= sum(f.stats["pass_seconds"].values())
    assert f.stats["pass_changes"]["simplify"] >= 2
    assert "neg" in f.ir("graph") and "neg" not in f.ir("optimized")
    assert np.array_equal(f(x), x)


def test_rules_that_undo_each_other_fail_loudly() -> None:
    table = RuleTable("ping-pong")

    @table.rule("neg")
    def to_sub(node: Node, ctx: RewriteContext) -> Node:
        return apply("abs", [node.inputs[0]])

    @table.rule("abs")
    def to_neg(node: Node, ctx: RewriteContext) -> Node:
        return apply("neg", [node.inputs[0]])

    with pytest.raises(RewriteDidNotConverge, match="to-sub, to-neg"):
        rewrite(parse_graph(SMALL), [table], RewriteContext())


def test_a_rule_that_grows_the_graph_forever_fails_loudly() -> None:
    table = RuleTable("grow")

    @table.rule("neg")
    def wrap(node: Node, ctx: RewriteContext) -> Node | None:
        x = node.inputs[0]
        return apply("neg", [apply("neg", [apply("neg", [x])])]) if x.op != "neg" else None

    @table.rule("neg")
    def unwrap(node: Node, ctx: RewriteContext) -> Node | None:
        x = node.inputs[0]
        return x.inputs[0] if x.op == "neg" else None

    with pytest.raises(RewriteDidNotConverge):
        rewrite(parse_graph(SMALL), [table], RewriteContext())


def test_a_rule_changing_the_type_is_named() -> None:
    table = RuleTable("bad")

    @table.rule("neg")
    def widen(node: Node, ctx: RewriteContext) -> Node:
        return apply("cast", [node], {"dtype": tj.float64})

    with pytest.raises(RewriteError, match="widen"):
        rewrite(parse_graph(SMALL), [table], RewriteContext())


def test_the_verifier_runs_between_passes_and_names_the_pass() -> None:
    def breaks(graph: Graph, ctx: PassContext) -> Graph:
        x = graph.outputs[0]
        bad = Node("exp", (x,), (), x.shape, tj.int32)  # not interned, wrong dtype
        return Graph(graph.params, (bad,), graph.name)

    pipeline = Pipeline([Pass("fine", lambda g, c: g), Pass("breaks", breaks)])
    with pytest.raises(VerificationError, match="after pass breaks"):
        pipeline.run(parse_graph(SMALL), PassContext(verify=True))
    pipeline.run(parse_graph(SMALL), PassContext(verify=False))  # not checked when off


def test_a_pass_changing_the_signature_is_caught() -> None:
    def widens(graph: Graph, ctx: PassContext) -> Graph:
        out = apply("cast", [graph.outputs[0]], {"dtype": tj.float64})
        return Graph(graph.params, (out,), graph.name)

    with pytest.raises(VerificationError, match="widens changed the function's signature"):
        Pipeline([Pass("widens", widens)]).run(parse_graph(SMALL), PassContext(verify=True))
    with pytest.raises(TensorJitError, match="unique"):
        Pipeline([Pass("a", widens), Pass("a", widens)])


def test_passes_are_disabled_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    x = np.ones(4, np.float32)
    g = tj.trace(lambda x: tj.negative(-x) + x / 4.0, x)
    monkeypatch.setenv("TENSORJIT_DISABLE_PASSES", "simplify,cleanup")
    f = tj.compile(g, cache=False)
    assert "simplify" not in f.stats["pass_seconds"]
    assert "neg" in f.ir("optimized") and "div" not in f.ir("optimized")
    monkeypatch.setenv("TENSORJIT_DISABLE_PASSES", "simplfy")
    with pytest.raises(TensorJitError, match="unknown pass"):
        tj.compile(g, cache=False)
    monkeypatch.setenv("TENSORJIT_DISABLE_PASSES", "all")
    assert tj.compile(g, cache=False).ir("optimized") == str(g)


def test_verification_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TENSORJIT_VERIFY_PASSES", "1")
    assert PassContext.from_env().verify
    monkeypatch.setenv("TENSORJIT_VERIFY_PASSES", "0")
    assert not PassContext.from_env().verify


def test_a_custom_pipeline_of_rewrite_passes() -> None:
    table = RuleTable("double-neg")

    @table.rule("neg")
    def cancel(node: Node, ctx: RewriteContext) -> Node | None:
        x = node.inputs[0]
        return x.inputs[0] if x.op == "neg" else None

    g = parse_graph(SMALL.replace("%3 = neg(%2) : f32[4]",
                                  "%4 = neg(%2) : f32[4]\n  %3 = neg(%4) : f32[4]"))
    ctx = PassContext(keep_text=True)
    out = Pipeline([rewrite_pass("cancel", table)]).run(g, ctx)
    assert out.outputs[0].op == "add" and ctx.changes == {"cancel": 1}
    assert ctx.snapshots[0][0] == "cancel" and "neg" not in ctx.snapshots[0][1]


def test_a_later_pass_skips_nodes_an_earlier_pass_settled_under_the_same_table() -> None:
    table, other = RuleTable("counted"), RuleTable("other")
    tried: list[str] = []

    @table.rule()
    def count(node: Node, ctx: RewriteContext) -> Node | None:
        tried.append(node.op)
        return None

    @other.rule("neg")
    def never(node: Node, ctx: RewriteContext) -> Node | None:
        return None

    g = parse_graph(SMALL)
    settled: dict[RuleTable, set[Node]] = {}
    rewrite(g, [table], RewriteContext(), settled_by_table=settled)
    assert sorted(tried) == ["add", "neg"]
    tried.clear()
    rewrite(g, [other, table], RewriteContext(), settled_by_table=settled)
    assert tried == []  # both nodes already settled under "counted"
    assert settled[other] == {n for n in g.nodes() if n.op != "param"}
    rewrite(g, [table], RewriteContext())  # a fresh memory tries them again
    assert sorted(tried) == ["add", "neg"]


def test_sharing_settled_nodes_between_passes_changes_no_result() -> None:
    def ik(angles: tj.Tensor) -> tj.Tensor:
        theta, x = 0.0, 0.0
        for i in range(12):
            theta = theta + angles[i] * 1.0
            x = x + tj.cos(theta).reshape(1, 1).T.reshape(()) / 2.0
        return x * x

    g = tj.trace(tj.grad(ik), np.linspace(0.1, 0.3, 12))
    shared, fresh = PassContext(), PassContext(settled=None)
    assert str(DEFAULT.run(g, shared)) == str(DEFAULT.run(g, fresh))
    assert shared.changes == fresh.changes and shared.changes["layout"] > 0


def test_dump_writes_every_pass_so_consecutive_files_diff(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    monkeypatch.setenv("TENSORJIT_DUMP", str(tmp_path))
    x = np.ones((4, 3), np.float32)
    tj.compile(tj.trace(lambda x: tj.exp(x.T.T) * 1.0 + x / 2.0, x), cache=False)
    files = sorted(tmp_path.iterdir())
    stages = [f.name.split(".", 2)[2][:-4] for f in files]
    assert stages[:len(DEFAULT.names) + 1] == ["graph"] + [f"pass-{n}" for n in DEFAULT.names]
    for stage in ("optimized", "fusion", "loops", "memory", "llvm", "llvm-opt", "asm"):
        assert stage in stages
    prefix = {f.name.split(".")[0] for f in files}
    assert len(prefix) == 1 and prefix.pop().startswith("lambda-")
    texts = [f.read_text().splitlines() for f in files]
    diff = list(difflib.unified_diff(texts[0], texts[1], lineterm=""))
    assert any(line.startswith("-") and "transpose" in line for line in diff)  # canonicalize
    simplify = stages.index("pass-simplify")
    diff = "\n".join(difflib.unified_diff(texts[simplify - 1], texts[simplify], lineterm=""))
    assert "-" in diff and "mul" in diff  # x * 1.0 went away

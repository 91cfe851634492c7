"""The graph IR's text form (golden) and the verifier's explanations."""

import numpy as np
import pytest

import tensorjit as tj
from tensorjit.ir.build import const
from tensorjit.ir.dtypes import DType
from tensorjit.ir.graph import Graph, make_node, toposort
from tensorjit.ir.verifier import verify_graph


def test_graph_text_is_stable():
    def f(x):
        return tj.exp(x * 2.0).sum(axis=1)

    g = tj.trace(f, tj.TensorSpec(("batch", 4), "float32"))
    assert str(g) == "\n".join([
        "graph f(%0: f32[batch,4]) {",
        "  %1 = const() {value=2.0} : f32[]",
        "  %2 = broadcast_to(%1) {shape=('batch', 4)} : f32[batch,4]",
        "  %3 = mul(%0, %2) : f32[batch,4]",
        "  %4 = exp(%3) : f32[batch,4]",
        "  %5 = reduce_sum(%4) {axes=(1,)} : f32[batch]",
        "  return (%5)",
        "}",
    ])
    assert "digraph" in g.to_dot()


def test_identical_nodes_are_one_node():
    x = np.zeros(3, np.float32)
    g = tj.trace(lambda x: (tj.exp(x) + 1.0, tj.exp(x) + 1.0), x)
    assert g.outputs[0] is g.outputs[1]
    assert const(0.0, DType.float32) is not const(-0.0, DType.float32)


def test_verifier_points_at_the_offending_node():
    g = tj.trace(lambda x: x + 1.0, np.zeros(3, np.float32))
    x = g.params[0]
    bad = make_node("exp", (x,), {}, (4,), DType.float32)  # shape contradicts the rule
    with pytest.raises(tj.VerificationError) as info:
        verify_graph(Graph(g.params, (bad,), "bad"), "a test")
    text = str(info.value)
    assert "after a test" in text and "<-- here" in text
    assert "f32[4] but its rule gives f32[3]" in text


def test_a_graph_is_verified_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import tensorjit.ir.verifier as verifier

    checked: list[str] = []
    real = verifier._check_node
    monkeypatch.setattr(verifier, "_check_node",
                        lambda g, n: checked.append(n.op) or real(g, n))
    g = tj.trace(lambda x: tj.exp(x) + 1.0, np.zeros(3, np.float32))  # verified by trace
    assert len(checked) == len(g.nodes())
    verify_graph(g, "again")
    tj.compile(g, cache=False)
    assert len(checked) == len(g.nodes())
    fresh = Graph(g.params, g.outputs, "fresh")  # a new graph object is checked
    verify_graph(fresh)
    assert len(checked) == 2 * len(g.nodes())


def test_toposort_visits_inputs_in_order_depth_first():
    x = make_node("param", (), {"index": 0, "name": "x"}, (3,), DType.float32)
    e = make_node("exp", (x,), {}, (3,), DType.float32)
    s = make_node("sin", (e,), {}, (3,), DType.float32)
    both = make_node("add", (s, e), {}, (3,), DType.float32)  # e is reached through s
    out = make_node("mul", (both, x), {}, (3,), DType.float32)
    assert toposort([out]) == [x, e, s, both, out]
    assert toposort([e, out]) == [x, e, s, both, out]
    assert toposort([x, s]) == [x, e, s]


def test_errors_name_the_user_line():
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(tj.ShapeError) as info:
        tj.trace(lambda x: x + np.zeros(4, np.float32), x)
    assert "do not broadcast" in str(info.value)
    assert "test_printer_verifier.py" in str(info.value)
    with pytest.raises(tj.ShapeError) as info:
        tj.trace(lambda x: x.reshape(7), x)
    assert "test_printer_verifier.py" in str(info.value)


def test_transposing_loops_print_as_tfor_and_must_hold_one_loop_of_one_store():
    from tensorjit.ir.errors import VerificationError
    from tensorjit.ir.loops import (
        Buffer,
        BufferParam,
        Const,
        Kernel,
        Load,
        Loop,
        Module,
        Store,
        Var,
        format_module,
        verify_module,
    )

    f32, i64 = DType.float32, DType.int64
    store = Store("y", Var("j"), Load("x", Var("d"), f32))
    params = (BufferParam("x", f32, "in"), BufferParam("y", f32, "out"))
    buffers = [Buffer("x", f32, 64, "input", 0), Buffer("y", f32, 64, "output", 0)]

    def module(body):
        return Module("m", buffers, [Kernel("k0", params, (body,))], (), [])

    good = Loop("j", Const(4, i64), (Loop("d", Const(4, i64), (store,)),), "transpose")
    verify_module(module(good))
    assert "tfor j in 0..4" in format_module(module(good))
    bad = Loop("j", Const(4, i64), (Store("y", Var("j"), Load("x", Var("j"), f32)),),
               "transpose")
    with pytest.raises(VerificationError, match="transposing loop j"):
        verify_module(module(bad))

"""The default graph optimization pipeline, one line per pass, and ``optimize``.

``tj.compile`` runs it between verification and lowering; ``f.ir("optimized")`` is its
output and ``TENSORJIT_DUMP=DIR`` writes the graph after every pass
(``NAME.NN.pass-PASS.txt``), so ``diff`` of two consecutive files shows what a pass did.
"""

from __future__ import annotations

import numpy as np

from tensorjit.ir.build import const
from tensorjit.ir.graph import ConstArray, Graph, Node
from tensorjit.passes import canonicalize, fold, layout, simplify, strength
from tensorjit.passes.cse import cse
from tensorjit.passes.dce import dce
from tensorjit.passes.manager import Pass, PassContext, Pipeline, rewrite_pass
from tensorjit.passes.relu_masks import relu_masks


def _cse(graph: Graph, ctx: PassContext) -> Graph:
    out, merged = cse(graph)
    ctx.changes["cse"] = merged
    return out


def _relu_masks(graph: Graph, ctx: PassContext) -> Graph:
    out, rewired = relu_masks(graph)
    ctx.changes["relu-masks"] = rewired
    return out


def _dce(graph: Graph, ctx: PassContext) -> Graph:
    out, removed = dce(graph)
    ctx.changes["dce"] = removed
    return out


def _constant_outputs(graph: Graph, ctx: PassContext) -> Graph:
    """An output that folded to a bare scalar constant becomes an array constant (the
    lowering copies array constants into outputs; it has no buffer for scalar ones)."""
    outputs: list[Node] = []
    for o in graph.outputs:
        value = o.attr("value") if o.op == "const" else None
        if value is not None and not isinstance(value, ConstArray):
            array = np.full(o.shape, value, dtype=o.dtype.np)
            # (ConstArray.of would make a 0-d array 1-d: np.ascontiguousarray does)
            o = const(ConstArray(array.tobytes(), array.dtype.str, tuple(o.shape)), o.dtype,
                      loc=o.loc)
            ctx.changes["constant-outputs"] = ctx.changes.get("constant-outputs", 0) + 1
        outputs.append(o)
    return Graph(graph.params, tuple(outputs), graph.name, graph.returns_tuple)


DEFAULT = Pipeline([
    rewrite_pass("canonicalize", canonicalize.TABLE,
                 doc="operand order, x-c -> x+(-c), shape-op chains collapsed"),
    rewrite_pass("fold", fold.TABLE, doc="evaluate what depends on constants and shapes only"),
    rewrite_pass("simplify", simplify.TABLE,
                 doc="x*1, x+(-0.0), --x, x/1, ... (IEEE-exact unless fast_math)"),
    rewrite_pass("strength-reduce", strength.TABLE,
                 doc="x**2 -> x*x, x**-1 -> 1/x, x/2**k -> x*2**-k"),
    rewrite_pass("layout", layout.TABLE, canonicalize.TABLE,
                 doc="elementwise work before broadcasts, transposes and reshapes (which then "
                     "cancel)"),
    rewrite_pass("cleanup", canonicalize.TABLE, fold.TABLE, simplify.TABLE, strength.TABLE,
                 doc="the first four tables together, to one fixed point"),
    Pass("relu-masks", _relu_masks, "other uses of a ReLU's mask x <= 0 test its output"),
    Pass("cse", _cse, "re-intern every node (merges structurally equal ones)"),
    Pass("dce", _dce, "drop what no output needs"),
    Pass("constant-outputs", _constant_outputs, "scalar constant outputs become arrays"),
])


def optimize(graph: Graph, fast_math: bool = False, verify: bool = True,
             pipeline: Pipeline = DEFAULT) -> Graph:
    """Run the pipeline on a graph (verifying between passes by default)."""
    return pipeline.run(graph, PassContext(fast_math=fast_math, verify=verify))

"""The pass manager: named graph passes run in order, timed, optionally verified and dumped.

A :class:`Pass` is a name and a function ``(graph, ctx) -> graph``. A :class:`Pipeline`
runs its passes in order and records, in the :class:`PassContext`, each pass's time
(``ctx.seconds``), how many rewrites it made (``ctx.changes``) and, when asked
(``ctx.keep_text``), the graph's text after it (``ctx.snapshots``, what
``TENSORJIT_DUMP`` writes). With ``ctx.verify`` the graph verifier runs before the first
pass and after every pass, and a pass that changes the function's signature (parameter
or output types) is reported by name.

Environment: ``TENSORJIT_VERIFY_PASSES=1`` turns verification on;
``TENSORJIT_DISABLE_PASSES=fold,layout`` (or ``all``) skips passes by name, to bisect a
miscompilation to one pass.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tensorjit.ir.errors import TensorJitError, VerificationError
from tensorjit.ir.graph import Graph
from tensorjit.ir.printer import format_type
from tensorjit.ir.verifier import verify_graph
from tensorjit.passes.rewrite import RewriteContext, RuleTable, rewrite

PassFn = Callable[[Graph, "PassContext"], Graph]


@dataclass
class PassContext:
    fast_math: bool = False
    verify: bool = False
    keep_text: bool = False
    disabled: frozenset[str] = frozenset()
    seconds: dict[str, float] = field(default_factory=dict)
    changes: dict[str, int] = field(default_factory=dict)
    snapshots: list[tuple[str, str]] = field(default_factory=list)
    input_graph: Graph | None = None
    digests: dict = field(default_factory=dict)  # structural digests, shared by the passes
    # rule table -> nodes none of its rules matches (see passes/rewrite.py); None: every
    # rewrite pass starts afresh
    settled: dict | None = field(default_factory=dict)

    @staticmethod
    def from_env(fast_math: bool = False, keep_text: bool = False) -> PassContext:
        return PassContext(fast_math=fast_math, verify=verify_from_env(),
                           keep_text=keep_text, disabled=disabled_from_env())


def verify_from_env() -> bool:
    return os.environ.get("TENSORJIT_VERIFY_PASSES", "") not in ("", "0")


def disabled_from_env() -> frozenset[str]:
    names = os.environ.get("TENSORJIT_DISABLE_PASSES", "")
    return frozenset(n.strip() for n in names.split(",") if n.strip())


@dataclass(frozen=True)
class Pass:
    name: str
    run: PassFn
    doc: str = ""


def rewrite_pass(name: str, *tables: RuleTable, doc: str = "") -> Pass:
    """A pass that runs the fixed-point rewriter over ``tables``."""

    def run(graph: Graph, ctx: PassContext) -> Graph:
        rctx = RewriteContext(fast_math=ctx.fast_math, _digests=ctx.digests)
        out = rewrite(graph, tables, rctx, settled_by_table=ctx.settled)
        ctx.changes[name] = ctx.changes.get(name, 0) + sum(rctx.fired.values())
        return out

    return Pass(name, run, doc or " + ".join(t.name for t in tables))


def _signature(graph: Graph) -> list[str]:
    return [format_type(n) for n in graph.params + graph.outputs]


class Pipeline:
    """An ordered list of uniquely named passes."""

    def __init__(self, passes: Sequence[Pass]) -> None:
        names = [p.name for p in passes]
        dup = {n for n in names if names.count(n) > 1 or n == "all"}
        if dup:
            raise TensorJitError(f"pipeline: pass names must be unique, repeated: {sorted(dup)}")
        self.passes = list(passes)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.passes]

    def __getitem__(self, name: str) -> Pass:
        for p in self.passes:
            if p.name == name:
                return p
        raise KeyError(f"no pass {name!r}; passes are {', '.join(self.names)}")

    def describe(self) -> str:
        """The pipeline as a script: one line per pass."""
        return "\n".join(f"{p.name:<16} {p.doc}" for p in self.passes)

    def run(self, graph: Graph, ctx: PassContext) -> Graph:
        unknown = ctx.disabled - set(self.names) - {"all"}
        if unknown:
            raise TensorJitError(f"TENSORJIT_DISABLE_PASSES: unknown pass(es) {sorted(unknown)}; "
                                 f"passes are {', '.join(self.names)}")
        ctx.input_graph = graph
        if ctx.verify:
            verify_graph(graph, "the pass pipeline's input")
        signature = _signature(graph)
        for p in self.passes:
            if p.name in ctx.disabled or "all" in ctx.disabled:
                continue
            t = time.perf_counter()
            out = p.run(graph, ctx)
            ctx.seconds[p.name] = ctx.seconds.get(p.name, 0.0) + time.perf_counter() - t
            if ctx.verify:
                verify_graph(out, f"pass {p.name}")
                if _signature(out) != signature:
                    raise VerificationError(
                        f"pass {p.name} changed the function's signature from "
                        f"{signature} to {_signature(out)}")
            if ctx.keep_text:
                ctx.snapshots.append((p.name, str(out)))
            graph = out
        return graph

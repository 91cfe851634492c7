"""The one fixed-point rewriter that drives every graph rewrite table.

A rewrite pass is data: a :class:`RuleTable` of named rules, each a function
``(node, ctx) -> Node | None`` registered for the ops it matches (``None``: no match).
:func:`rewrite` sweeps the graph in topological order, rebuilds every node on its
rewritten inputs (re-interning it, so common subexpressions merge as they appear) and
applies the rules to each node until none matches; then it sweeps again, until a sweep
changes nothing. It stops loudly (:class:`RewriteDidNotConverge`) when a node keeps being
rewritten or the sweeps do not settle, naming the rules that were firing, and it checks
that every replacement has the replaced node's shape and dtype.

A node on which no rule matched is remembered: interned nodes with the same identity have
the same inputs and attributes, so the rules would fail on it again. ``settled``, shared
by the passes of one pipeline run, remembers it per table, so that a later pass that runs
the same table again (``cleanup``) tries only the nodes an earlier pass has not seen.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from tensorjit.ir.errors import TensorJitError
from tensorjit.ir.graph import Graph, Node, make_node
from tensorjit.ir.printer import format_node_short

RuleFn = Callable[[Node, "RewriteContext"], "Node | None"]

MAX_SWEEPS = 32
MAX_STEPS_PER_NODE = 64


class RewriteDidNotConverge(TensorJitError):
    """A rewrite table keeps changing the graph (two rules undo each other, or one grows)."""


class RewriteError(TensorJitError):
    """A rule produced a node of another shape or dtype than the one it replaces."""


@dataclass(frozen=True)
class Rule:
    name: str
    ops: frozenset[str] | None  # None: every op
    fn: RuleFn


class RuleTable:
    """A named, ordered list of rules; ``@table.rule("add", "mul")`` registers one."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.rules: list[Rule] = []

    def rule(self, *ops: str, name: str | None = None) -> Callable[[RuleFn], RuleFn]:
        def register(fn: RuleFn) -> RuleFn:
            rule_name = name or fn.__name__.strip("_").replace("_", "-")
            if any(r.name == rule_name for r in self.rules):
                raise TensorJitError(f"rule {rule_name!r} registered twice in {self.name}")
            self.rules.append(Rule(rule_name, frozenset(ops) if ops else None, fn))
            return fn

        return register

    def __iter__(self) -> Iterator[Rule]:
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)


@dataclass
class RewriteContext:
    """What rules may consult: options, a structural digest and a value cache for folding."""

    fast_math: bool = False
    fired: Counter[str] = field(default_factory=Counter)
    values: dict[Node, np.ndarray | None] = field(default_factory=dict)
    _digests: dict[Node, bytes] = field(default_factory=dict)

    def digest(self, node: Node) -> bytes:
        """A structural hash, equal for structurally equal nodes and stable across runs
        (unlike ``hash``), used to order commutative operands canonically; parameters hash
        to their index, so ``add(%1, %0)`` becomes ``add(%0, %1)``."""
        known = self._digests.get(node)
        if known is not None:
            return known
        stack = [node]
        while stack:
            n = stack[-1]
            missing = [i for i in n.inputs if i not in self._digests]
            if missing:
                stack.extend(missing)
                continue
            stack.pop()
            if n in self._digests:
                continue
            if n.op == "param":  # parameters in call order (a graph has one per index)
                self._digests[n] = int(n.attr("index")).to_bytes(8, "big")
                continue
            h = hashlib.blake2b(repr((n.op, n.attrs, n.shape, n.dtype.value)).encode(),
                                digest_size=8)
            for _, value in n.attrs:
                data = getattr(value, "data", None)  # an array constant's contents
                if isinstance(data, bytes):
                    h.update(data)
            for i in n.inputs:
                h.update(self._digests[i])
            self._digests[n] = h.digest()
        return self._digests[node]


def _index(tables: Iterable[RuleTable]) -> tuple[dict[str, list[Rule]], list[Rule]]:
    by_op: dict[str, list[Rule]] = {}
    anywhere: list[Rule] = []
    ordered = [r for t in tables for r in t]
    for r in ordered:
        if r.ops is None:
            anywhere.append(r)
    for r in ordered:
        for op in r.ops or ():
            by_op.setdefault(op, [])
    for op, rules in by_op.items():
        rules.extend(r for r in ordered if r.ops is None or op in r.ops)
    return by_op, anywhere


def rewrite(graph: Graph, tables: Iterable[RuleTable], ctx: RewriteContext,
            max_sweeps: int = MAX_SWEEPS, max_steps: int = MAX_STEPS_PER_NODE,
            settled_by_table: dict[RuleTable, set[Node]] | None = None) -> Graph:
    """Apply the tables' rules to a fixed point; see the module docstring.
    ``settled_by_table``: table -> nodes none of its rules matches, read and extended (a
    fresh one when not given)."""
    tables = list(tables)
    known = settled_by_table if settled_by_table is not None else {}
    indexed = [(known.setdefault(t, set()), *_index([t])) for t in tables]
    settled: set[Node] = set()  # no rule of any of the tables matches
    what = "+".join(t.name for t in tables)

    def candidates(node: Node) -> Iterator[Rule]:
        """The rules of the tables not known to leave the node alone, in table order."""
        for done, by_op, anywhere in indexed:
            if node not in done:
                yield from by_op.get(node.op, anywhere)

    def settle(node: Node) -> None:
        settled.add(node)
        for done, _, _ in indexed:
            done.add(node)

    def simplify(node: Node) -> Node:
        history: list[str] = []
        while node not in settled:
            for rule in candidates(node):
                out = rule.fn(node, ctx)
                if out is None or out is node:
                    continue
                if out.shape != node.shape or out.dtype != node.dtype:
                    raise RewriteError(
                        f"{what}: rule {rule.name} replaced {format_node_short(node)} by "
                        f"{format_node_short(out)} (shape or dtype differs)")
                ctx.fired[rule.name] += 1
                history.append(rule.name)
                if len(history) > max_steps:
                    raise RewriteDidNotConverge(
                        f"{what}: a node was rewritten {max_steps} times; the rules firing "
                        f"last were {', '.join(history[-8:])} on {format_node_short(out)}")
                node = out
                break
            else:
                settle(node)
        return node

    sweeps: list[Counter[str]] = []
    for _ in range(max_sweeps):
        snapshot = Counter(ctx.fired)
        mapping: dict[Node, Node] = {}
        for old in graph.nodes():
            if old.op == "param":
                mapping[old] = old
                continue
            ins = tuple([mapping[i] for i in old.inputs])
            node = old if ins == old.inputs else make_node(
                old.op, ins, old.attrs, old.shape, old.dtype, old.loc)
            mapping[old] = simplify(node)
        outputs = tuple([mapping[o] for o in graph.outputs])
        if outputs != graph.outputs:
            graph = Graph(graph.params, outputs, graph.name, graph.returns_tuple)
        # A fixed point: no rule matches any node of the graph (settled nodes were tried).
        if all(n in settled or n.op == "param" for n in graph.nodes()):
            return graph
        sweeps.append(ctx.fired - snapshot)
    last = ", ".join(f"{k} x{v}" for k, v in sweeps[-1].most_common(6))
    raise RewriteDidNotConverge(f"{what}: no fixed point after {max_sweeps} sweeps; the last "
                                f"sweep still fired {last}")

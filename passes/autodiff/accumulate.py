"""Summing the cotangent contributions of a node that has several users.

Scalar-style code (``x[0]``, ``x[1]``, ... each used once) gives ``x`` one contribution per
element, each a point scatter ``select(index == i, g_i, 0)`` (see the ``slice`` rule).
Adding n of them would cost n adds per element of ``x``; instead contributions at
distinct points of the same axes become one select chain
``select(index == i, g_i, select(index == j, g_j, ... 0))``, and contributions at the same
point are added first. Everything else is summed as a balanced tree of adds.
"""

from __future__ import annotations

from collections.abc import Sequence

from tensorjit.ir.graph import Node
from tensorjit.passes.autodiff import nodes as n

Point = tuple[tuple[int, int], ...]  # ((axis, index), ...) sorted by axis


def total(contributions: Sequence[Node]) -> Node:
    """The sum of the contributions (see the module docstring)."""
    points: dict[tuple[int, ...], dict[Point, list[Node]]] = {}
    masks: dict[Point, Node] = {}
    zeros: dict[tuple[int, ...], Node] = {}
    others: list[Node] = []
    for c in contributions:
        found = _point_scatter(c)
        if found is None:
            others.append(c)
            continue
        point, value = found
        axes = tuple(a for a, _ in point)
        points.setdefault(axes, {}).setdefault(point, []).append(value)
        masks.setdefault(point, c.inputs[0])
        zeros.setdefault(axes, c.inputs[2])
    terms = list(others)
    for axes, by_point in points.items():
        chain = zeros[axes]
        for point, values in reversed(list(by_point.items())):
            chain = n.select(masks[point], _sum(values), chain)
        terms.append(chain)
    return _sum(terms)


def _sum(terms: Sequence[Node]) -> Node:
    """A balanced tree of adds (shallow expressions)."""
    items = list(terms)
    while len(items) > 1:
        paired = [n.add(items[k], items[k + 1]) for k in range(0, len(items) - 1, 2)]
        if len(items) % 2:
            paired.append(items[-1])
        items = paired
    return items[0]


def _point_scatter(node: Node) -> tuple[Point, Node] | None:
    """``(point, value)`` if ``node`` is ``select(index == point, value, 0)``."""
    if node.op != "select" or not _is_zero(node.inputs[2]):
        return None
    point = _mask_point(node.inputs[0])
    if point is None:
        return None
    return tuple(sorted(point.items())), node.inputs[1]


def _mask_point(cond: Node) -> dict[int, int] | None:
    if cond.op == "eq":
        iota, pos = cond.inputs
        value = _scalar_const(pos)
        if iota.op == "iota" and isinstance(value, int):
            return {iota.attr("axis"): value}
        return None
    if cond.op == "logical_and":
        a, b = (_mask_point(i) for i in cond.inputs)
        if a is None or b is None or set(a) & set(b):
            return None
        return {**a, **b}
    return None


def _scalar_const(node: Node) -> object:
    while node.op == "broadcast_to":
        node = node.inputs[0]
    if node.op == "const" and node.shape == ():
        return node.attr("value")
    return None


def _is_zero(node: Node) -> bool:
    value = _scalar_const(node)
    return value is not None and not isinstance(value, bool) and value == 0

"""Summing the cotangent contributions of a node that has several users."""

from __future__ import annotations

from collections.abc import Sequence

from tensorjit.ir.graph import Node
from tensorjit.passes.autodiff import nodes as n


def total(contributions: Sequence[Node]) -> Node:
    """The sum of the contributions, as a balanced tree of adds (shallow expressions)."""
    terms = list(contributions)
    while len(terms) > 1:
        paired = [n.add(terms[k], terms[k + 1]) for k in range(0, len(terms) - 1, 2)]
        if len(terms) % 2:
            paired.append(terms[-1])
        terms = paired
    return terms[0]

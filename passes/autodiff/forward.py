"""Forward mode (JVP) by the transpose trick: no second rule table.

For ``y = f(x)`` the reverse pass builds ``x_bar = J^T u`` for a placeholder cotangent
``u``; that is linear in ``u``, so differentiating ``<J^T u, t>`` with respect to ``u``
(reverse mode again, on the backward nodes) gives ``J t``. Every backward node is an
ordinary op with a VJP rule, so forward mode costs one more reverse pass over the
backward graph (about the work of a JVP rule table, plus the backward pass whose
placeholder-dependent parts fusion then mostly inlines) and stays correct whenever the
VJP table is.
"""

from __future__ import annotations

from collections.abc import Sequence

from tensorjit.ir.graph import Node
from tensorjit.passes.autodiff import nodes as n
from tensorjit.passes.autodiff.reverse import vjp
from tensorjit.passes.autodiff.substitute import placeholder, substitute


def jvp(outputs: Sequence[Node], wrt: Sequence[Node],
        tangents: Sequence[Node | None]) -> list[Node | None]:
    """Tangent of each output (``None``: zero) given a tangent per ``wrt`` node."""
    dummies = {k: placeholder(o.shape, o.dtype, "cotangent")
               for k, o in enumerate(outputs) if o.dtype.is_float}
    grads = vjp(outputs, [dummies.get(k) for k in range(len(outputs))], wrt)
    pairs = [(g, t) for g, t in zip(grads, tangents) if g is not None and t is not None]
    if not pairs or not dummies:
        return [None] * len(outputs)
    keys = sorted(dummies)
    found = vjp([g for g, _ in pairs], [t for _, t in pairs], [dummies[k] for k in keys])
    # J t does not depend on u; replacing u by 0 removes any syntactic leftover.
    zeros = {u: n.zeros_like(u) for u in dummies.values()}
    results: list[Node | None] = [None] * len(outputs)
    present = [(k, f) for k, f in zip(keys, found) if f is not None]
    for (k, _), value in zip(present, substitute([f for _, f in present], zeros)):
        results[k] = value
    return results

"""ReLU masks read the ReLU's output, not its input.

``r = select(x <= 0, 0, x)`` (``tj.nn.relu``) satisfies ``x <= 0  ==  r <= 0`` for every
``x``: a positive ``x`` gives ``r = x > 0``, anything else ``r = 0``, and NaN gives NaN on
both sides (false). The same holds for ``select(x > 0, x, 0)`` with ``>``. So every other
use of the mask ``x <= 0`` (the ReLU's gradient ``select(x <= 0, 0, g)`` in a backward
pass) may test ``r`` instead. Then ``x`` has one reader, the ReLU, and the producer of
``x`` (a matmul plus bias) can write ``r`` directly from its epilogue, while ``x`` itself
is never stored: in an MLP training step this removes one pass over each hidden layer's
activations. ``r`` is kept for the next layer's product and its weight gradient anyway.

Only these two forms qualify: for ``x < 0`` (or ``x >= 0``) the output ``0`` does not tell
``x = 0`` from ``x < 0``.
"""

from __future__ import annotations

from tensorjit.ir.graph import Graph, Node, make_node
from tensorjit.passes.patterns import is_value

#: Comparison against zero -> whether the ReLU's ``select`` takes 0 when it is true.
_MASKS = {"le": True, "gt": False}


def _relu_mask(node: Node) -> Node | None:
    """The mask when ``node`` is ``select(x <= 0, 0, x)`` or ``select(x > 0, x, 0)``."""
    if node.op != "select" or not (node.dtype.is_float or node.dtype.is_int):
        return None
    mask, on_true, on_false = node.inputs
    zero_when_true = _MASKS.get(mask.op)
    if zero_when_true is None:
        return None
    x, bound = mask.inputs
    zero, kept = (on_true, on_false) if zero_when_true else (on_false, on_true)
    if kept is not x or not is_value(bound, 0) or not is_value(zero, 0) \
            or x.shape != node.shape or bound.shape != node.shape:
        return None
    return mask


def relu_masks(graph: Graph) -> tuple[Graph, int]:
    """Rewire every use of a ReLU's mask other than the ReLU itself to test its output."""
    relus: dict[Node, Node] = {}  # mask -> the ReLU's output
    for node in graph.nodes():
        found = _relu_mask(node)
        if found is not None:
            relus.setdefault(found, node)
    if not relus:
        return graph, 0
    mapping: dict[Node, Node] = {}
    changed = 0

    def needs(node: Node) -> list[Node]:
        """What must be rebuilt before ``node``: its inputs and the ReLUs it will read."""
        deps = [i for i in node.inputs if i not in mapping]
        deps += [r for i in node.inputs
                 if (r := relus.get(i)) is not None and r is not node and r not in mapping]
        return deps

    # A node may use a mask before the ReLU comes in graph order: rebuild depth first.
    # (No cycle: a ReLU reads its mask, the mask's input and a constant zero, none of
    # which can depend on another reader of the mask.)
    for root in graph.nodes():
        stack = [root]
        while stack:
            old = stack[-1]
            if old in mapping:
                stack.pop()
                continue
            deps = needs(old)
            if deps:
                stack.extend(deps)
                continue
            stack.pop()
            ins = []
            for i in old.inputs:
                relu = relus.get(i)
                if relu is not None and relu is not old:
                    ins.append(make_node(i.op, (mapping[relu], mapping[i.inputs[1]]), i.attrs,
                                         i.shape, i.dtype, i.loc))
                    changed += 1
                else:
                    ins.append(mapping[i])
            new = tuple(ins)
            mapping[old] = old if new == old.inputs else make_node(
                old.op, new, old.attrs, old.shape, old.dtype, old.loc)
    outputs = tuple(mapping[o] for o in graph.outputs)
    return Graph(graph.params, outputs, graph.name, graph.returns_tuple), changed

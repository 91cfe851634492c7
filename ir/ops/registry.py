"""The op registry: one row per op, defined once, read by every later stage.

A row gives the op's name, its category (which drives fusion), its attribute schema,
its shape-and-dtype rule and its NumPy reference semantics. Later stages keep their own
tables keyed by op name (VJP rules, lowerings) and tests check they cover this registry.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from tensorjit.ir.dtypes import DType
from tensorjit.ir.errors import TensorJitError
from tensorjit.ir.shapes import Shape


class Category(enum.Enum):
    SOURCE = "source"  # params and constants: no inputs
    ELEMENTWISE = "elementwise"
    REDUCE = "reduce"
    MOVEMENT = "movement"
    CONTRACTION = "contraction"
    OPAQUE = "opaque"


class TypeInfo(NamedTuple):
    """An operand's or result's type (a named tuple: one is made per operand of every node
    created, and a frozen dataclass takes twice as long to make)."""

    shape: Shape
    dtype: DType


# infer(inputs, attrs) -> (shape, dtype); raises ShapeError / DTypeError with a clear message.
InferFn = Callable[[Sequence[TypeInfo], dict[str, Any]], TypeInfo]
# reference(arrays, attrs, out) -> np.ndarray, with NumPy semantics; `out` gives shape and dtype.
ReferenceFn = Callable[[Sequence[np.ndarray], dict[str, Any], TypeInfo], np.ndarray]


@dataclass(frozen=True)
class OpDef:
    name: str
    category: Category
    arity: int | None  # None: variadic
    infer: InferFn
    reference: ReferenceFn
    attrs: dict[str, str] = field(default_factory=dict)  # name -> description (the schema)
    doc: str = ""


_REGISTRY: dict[str, OpDef] = {}


def register(op: OpDef) -> OpDef:
    if op.name in _REGISTRY:
        raise TensorJitError(f"op {op.name!r} registered twice")
    _REGISTRY[op.name] = op
    return op


def get_op(name: str) -> OpDef:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise TensorJitError(f"unknown op {name!r}") from None


def all_ops() -> dict[str, OpDef]:
    return dict(_REGISTRY)

"""Source ops: parameters, constants and index generators (no tensor inputs)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tensorjit.ir.graph import ConstArray
from tensorjit.ir.ops.registry import Category, OpDef, TypeInfo, register


def _infer_given(inputs: Sequence[TypeInfo], attrs: dict[str, Any]) -> TypeInfo:
    # The node's own shape and dtype are the rule; the verifier checks consistency.
    raise AssertionError("source ops are created with their type; nothing to infer")


def _ref_param(args: Sequence[np.ndarray], attrs: dict, out: TypeInfo) -> np.ndarray:
    raise AssertionError("the interpreter binds params itself")


def _ref_const(args: Sequence[np.ndarray], attrs: dict, out: TypeInfo) -> np.ndarray:
    value = attrs["value"]
    if isinstance(value, ConstArray):
        return value.array().astype(out.dtype.np)
    return np.full(out.shape, value, dtype=out.dtype.np)


def _ref_iota(args: Sequence[np.ndarray], attrs: dict, out: TypeInfo) -> np.ndarray:
    axis = attrs["axis"]
    n = out.shape[axis]
    view = [1] * len(out.shape)
    view[axis] = n
    return np.broadcast_to(np.arange(n, dtype=np.int64).reshape(view), out.shape).copy()


register(OpDef("param", Category.SOURCE, 0, _infer_given, _ref_param,
               attrs={"index": "position in the call", "name": "argument name"}))
register(OpDef("const", Category.SOURCE, 0, _infer_given, _ref_const,
               attrs={"value": "a Python scalar (filled) or a ConstArray"}))
register(OpDef("iota", Category.SOURCE, 0, _infer_given, _ref_iota,
               attrs={"axis": "the axis whose index is the value (int64)"}))


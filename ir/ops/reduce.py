"""Reductions over a set of axes; the reduced axes are dropped (keepdims is a reshape)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tensorjit.ir.dtypes import DType
from tensorjit.ir.errors import DTypeError, ShapeError
from tensorjit.ir.ops.registry import Category, OpDef, TypeInfo, register
from tensorjit.ir.shapes import format_shape


def _reduced_shape(name: str, t: TypeInfo, attrs: dict[str, Any], empty_ok: bool) -> tuple:
    axes = attrs["axes"]
    if any(not 0 <= a < len(t.shape) for a in axes) or list(axes) != sorted(set(axes)):
        raise ShapeError(f"{name}: bad axes {axes} for shape {format_shape(t.shape)}")
    if not empty_ok and any(t.shape[a] == 0 for a in axes):
        raise ShapeError(
            f"{name}: zero-size reduction over axes {axes} of shape {format_shape(t.shape)} "
            "has no identity"
        )
    return tuple(d for i, d in enumerate(t.shape) if i not in axes)


def _reduction(name: str, fn: Any, empty_ok: bool, index: bool = False) -> None:
    def infer(inputs: Sequence[TypeInfo], attrs: dict[str, Any]) -> TypeInfo:
        t = inputs[0]
        if index and len(attrs["axes"]) != 1:
            raise ShapeError(f"{name}: reduces exactly one axis, got {attrs['axes']}")
        if not index and name in ("reduce_sum", "reduce_prod") and t.dtype is DType.bool:
            raise DTypeError(f"{name}: cast bool to an integer type first")
        shape = _reduced_shape(name, t, attrs, empty_ok)
        return TypeInfo(shape, DType.int64 if index else t.dtype)

    def reference(args: Sequence[np.ndarray], attrs: dict[str, Any], out: TypeInfo) -> np.ndarray:
        axes = attrs["axes"]
        with np.errstate(all="ignore"):
            if index:
                r = fn(args[0], axis=axes[0])
            else:
                r = fn(args[0], axis=axes)
        return np.asarray(r).astype(out.dtype.np, copy=False)

    register(OpDef(name, Category.REDUCE, 1, infer, reference,
                   attrs={"axes": "sorted tuple of reduced axes"}))


_reduction("reduce_sum", np.sum, empty_ok=True)
_reduction("reduce_prod", np.prod, empty_ok=True)
_reduction("reduce_max", np.max, empty_ok=False)
_reduction("reduce_min", np.min, empty_ok=False)
_reduction("argmax", np.argmax, empty_ok=False, index=True)
_reduction("argmin", np.argmin, empty_ok=False, index=True)

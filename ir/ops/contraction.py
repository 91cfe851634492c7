"""Contractions: anchor ops with kernels of their own."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tensorjit.ir.errors import DTypeError, ShapeError
from tensorjit.ir.ops.elementwise import NUMERIC
from tensorjit.ir.ops.registry import Category, OpDef, TypeInfo, register
from tensorjit.ir.shapes import format_shape


def _infer_matmul(inputs: Sequence[TypeInfo], attrs: dict[str, Any]) -> TypeInfo:
    """a[*B, M, K] @ b[*B, K, N] -> [*B, M, N]; batch dims equal (the frontend broadcasts)."""
    a, b = inputs
    if a.dtype != b.dtype or a.dtype not in NUMERIC:
        raise DTypeError(f"matmul: operands must share a numeric dtype, got {a.dtype}, {b.dtype}")
    if len(a.shape) < 2 or len(a.shape) != len(b.shape) or a.shape[:-2] != b.shape[:-2] \
            or a.shape[-1] != b.shape[-2]:
        raise ShapeError(f"matmul: shapes {format_shape(a.shape)} and {format_shape(b.shape)} "
                         "do not match (expected [*B,M,K] and [*B,K,N])")
    return TypeInfo(a.shape[:-1] + b.shape[-1:], a.dtype)


def _ref_matmul(args: Sequence[np.ndarray], attrs: dict, out: TypeInfo) -> np.ndarray:
    return np.matmul(args[0], args[1]).astype(out.dtype.np, copy=False)


register(OpDef("matmul", Category.CONTRACTION, 2, _infer_matmul, _ref_matmul))

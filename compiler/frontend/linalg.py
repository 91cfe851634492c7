"""matmul, dot and einsum with NumPy's shape rules."""

from __future__ import annotations

from typing import Any

import numpy as np

from tensorjit.compiler.frontend import shape_ops
from tensorjit.compiler.frontend.lift import (
    any_tensor,
    broadcast,
    cast,
    emit,
    result_dtype,
    to_tensor,
)
from tensorjit.compiler.frontend.tensor import Tensor, user_location
from tensorjit.ir.dtypes import DType
from tensorjit.ir.errors import DTypeError, ShapeError, UnsupportedError
from tensorjit.ir.shapes import broadcast_shapes, format_shape


def matmul(a: Any, b: Any) -> Any:
    if not any_tensor(a, b):
        return np.matmul(a, b)
    x, y = to_tensor(a), to_tensor(b)
    if x.ndim == 0 or y.ndim == 0:
        raise ShapeError(f"matmul: operands must be at least 1-D (at {user_location()})")
    dt = result_dtype([x, y])
    if dt is DType.bool:
        raise DTypeError(f"matmul of bool tensors is not supported (at {user_location()})")
    x, y = cast(x, dt), cast(y, dt)
    x_vector, y_vector = x.ndim == 1, y.ndim == 1
    if x_vector:
        x = shape_ops.reshape(x, (1,) + x.shape)
    if y_vector:
        y = shape_ops.reshape(y, y.shape + (1,))
    if x.shape[-1] != y.shape[-2]:
        raise ShapeError(f"matmul: inner dims differ: {format_shape(x.shape)} @ "
                         f"{format_shape(y.shape)} (at {user_location()})")
    batch = broadcast_shapes(x.shape[:-2], y.shape[:-2])
    x = broadcast(x, batch + x.shape[-2:])
    y = broadcast(y, batch + y.shape[-2:])
    out = emit("matmul", [x, y])
    if x_vector or y_vector:
        final = batch + (() if x_vector else x.shape[-2:-1]) + (() if y_vector else y.shape[-1:])
        out = shape_ops.reshape(out, final)
    return out


def dot(a: Any, b: Any) -> Any:
    """numpy.dot: a product for scalars, matmul for 1-D/2-D, a sum over a's last axis and
    b's second-to-last axis otherwise."""
    if not any_tensor(a, b):
        return np.dot(a, b)
    x, y = to_tensor(a), to_tensor(b)
    if x.ndim == 0 or y.ndim == 0:
        from tensorjit.compiler.frontend.ufuncs import multiply

        return multiply(x, y)
    if y.ndim <= 2:
        return matmul(x, y)
    # dot(x[..., K], y[..., K, N]) == tensordot over (x: -1, y: -2)
    yt = shape_ops.moveaxis(y, -2, 0)  # [K, *rest, N]
    k = yt.shape[0]
    rest = yt.shape[1:]
    flat = shape_ops.reshape(yt, (k, -1))
    out = matmul(x, flat)
    return shape_ops.reshape(out, x.shape[:-1] + rest)


def einsum(subscripts: str, *operands: Any) -> Any:
    """numpy.einsum for explicit or implicit output, without '...' or repeated indices
    within one operand. Computed as one fused broadcast-multiply-reduce."""
    if not any_tensor(*operands):
        return np.einsum(subscripts, *operands)
    spec = subscripts.replace(" ", "")
    if "." in spec:
        raise UnsupportedError("einsum with '...' is not supported")
    if "->" in spec:
        ins, out = spec.split("->")
    else:
        ins = spec
        letters = ins.replace(",", "")
        out = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    terms = ins.split(",")
    if len(terms) != len(operands):
        raise ShapeError(f"einsum: {len(terms)} subscripts for {len(operands)} operands")
    ts = [to_tensor(o) for o in operands]
    sizes: dict[str, Any] = {}
    for term, t in zip(terms, ts):
        if len(term) != t.ndim:
            raise ShapeError(f"einsum: subscript {term!r} does not match shape "
                             f"{format_shape(t.shape)}")
        if len(set(term)) != len(term):
            raise UnsupportedError(f"einsum: repeated index in {term!r} (diagonals)")
        for c, d in zip(term, t.shape):
            if c in sizes and sizes[c] != d and d != 1 and sizes[c] != 1:
                raise ShapeError(f"einsum: index {c!r} has sizes {sizes[c]} and {d}")
            if c not in sizes or sizes[c] == 1:
                sizes[c] = d
    for c in out:
        if c not in sizes:
            raise ShapeError(f"einsum: output index {c!r} appears in no input")
    order = list(out) + sorted(c for c in sizes if c not in out)
    full_shape = tuple(sizes[c] for c in order)
    dt = result_dtype(ts)
    product = None
    for term, t in zip(terms, ts):
        perm = sorted(range(len(term)), key=lambda i: order.index(term[i]))
        t = shape_ops.transpose(cast(t, dt), perm)
        placed = [c for c in order if c in term]
        t = shape_ops.reshape(t, tuple(sizes[c] if c in placed else 1 for c in order)) \
            if len(placed) != len(order) else t
        t = broadcast(t, full_shape)
        product = t if product is None else emit("mul", [product, t])
    assert isinstance(product, Tensor)
    contracted = tuple(range(len(out), len(order)))
    if dt is DType.bool:
        raise DTypeError("einsum of bool tensors is not supported")
    if contracted:
        product = emit("reduce_sum", [product], {"axes": contracted})
    return product

"""Shape functions: reshape, transpose, expand_dims, squeeze, concatenate, pad, take, ..."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

import numpy as np

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
from tensorjit.ir.errors import ShapeError, UnsupportedError
from tensorjit.ir.shapes import Shape, Size, as_shape, format_shape, normalize_axis, numel


def _axis(axis: int, ndim: int) -> int:
    try:
        return normalize_axis(axis, ndim)
    except ShapeError as exc:
        raise ShapeError(f"{exc} (at {user_location()})") from None


def _infer_minus_one(shape: Sequence[Any], total: Size, source: Shape) -> Shape:
    dims = list(shape)
    holes = [i for i, d in enumerate(dims) if isinstance(d, int) and d == -1]
    if len(holes) > 1:
        raise ShapeError(f"reshape: only one -1 allowed, got {tuple(shape)}")
    if holes:
        known = Size.product(d for d in dims if not (isinstance(d, int) and d == -1))
        rest = list(total.syms)
        for s in known.syms:
            if s not in rest:
                raise ShapeError(f"reshape: cannot infer -1 in {tuple(shape)} from "
                                 f"{format_shape(source)}")
            rest.remove(s)
        if known.coef == 0 or total.coef % known.coef:
            raise ShapeError(f"reshape: cannot reshape {format_shape(source)} into "
                             f"{tuple(shape)}")
        coef = total.coef // known.coef
        if not rest:
            dims[holes[0]] = coef
        elif coef == 1 and len(rest) == 1:
            dims[holes[0]] = rest[0]
        else:
            raise UnsupportedError(f"reshape: the -1 in {tuple(shape)} would be a product of "
                                   "symbolic dims; name that dim instead")
    return as_shape(dims, "reshape")


def reshape(x: Any, shape: Any, order: str = "C") -> Any:
    if not any_tensor(x):
        return np.reshape(x, shape, order=order)
    if order != "C":
        raise UnsupportedError(f"reshape(order={order!r}): only C order")
    t = to_tensor(x)
    if isinstance(shape, (int, str)):
        shape = (shape,)
    new = _infer_minus_one(tuple(shape), numel(t.shape), t.shape)
    if numel(new) != numel(t.shape):
        raise ShapeError(f"reshape: cannot reshape {format_shape(t.shape)} into "
                         f"{format_shape(new)} (at {user_location()})")
    if new == t.shape:
        return t
    return emit("reshape", [t], {"shape": new})


def transpose(x: Any, axes: Sequence[int] | None = None) -> Any:
    if not any_tensor(x):
        return np.transpose(x, axes)
    t = to_tensor(x)
    perm = tuple(reversed(range(t.ndim))) if axes is None else \
        tuple(_axis(a, t.ndim) for a in axes)
    if sorted(perm) != list(range(t.ndim)):
        raise ShapeError(f"transpose: axes {tuple(axes or ())} do not match an array of rank "
                         f"{t.ndim} (at {user_location()})")
    if perm == tuple(range(t.ndim)):
        return t
    return emit("transpose", [t], {"perm": perm})


def swapaxes(x: Any, axis1: int, axis2: int) -> Any:
    if not any_tensor(x):
        return np.swapaxes(x, axis1, axis2)
    t = to_tensor(x)
    perm = list(range(t.ndim))
    a, b = _axis(axis1, t.ndim), _axis(axis2, t.ndim)
    perm[a], perm[b] = perm[b], perm[a]
    return transpose(t, perm)


def moveaxis(x: Any, source: int, destination: int) -> Any:
    if not any_tensor(x):
        return np.moveaxis(x, source, destination)
    t = to_tensor(x)
    s, d = _axis(source, t.ndim), _axis(destination, t.ndim)
    perm = [i for i in range(t.ndim) if i != s]
    perm.insert(d, s)
    return transpose(t, perm)


def expand_dims(x: Any, axis: int | Sequence[int]) -> Any:
    if not any_tensor(x):
        return np.expand_dims(x, axis)
    t = to_tensor(x)
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    ndim = t.ndim + len(axes)
    norm = sorted(_axis(a, ndim) for a in axes)
    if len(set(norm)) != len(norm):
        raise ShapeError(f"expand_dims: repeated axis in {axes}")
    dims = iter(t.shape)
    shape = tuple(1 if i in norm else next(dims) for i in range(ndim))
    return reshape(t, shape)


def squeeze(x: Any, axis: int | Sequence[int] | None = None) -> Any:
    if not any_tensor(x):
        return np.squeeze(x, axis)
    t = to_tensor(x)
    if axis is None:
        axes = {i for i, d in enumerate(t.shape) if d == 1}
    else:
        axes = {_axis(a, t.ndim) for a in ((axis,) if isinstance(axis, int) else axis)}
        for a in axes:
            if t.shape[a] != 1:
                raise ShapeError(f"squeeze: axis {a} has size {t.shape[a]}, not 1 "
                                 f"(at {user_location()})")
    return reshape(t, tuple(d for i, d in enumerate(t.shape) if i not in axes))


def broadcast_to(x: Any, shape: Any) -> Any:
    if not any_tensor(x):
        return np.broadcast_to(x, shape)
    return broadcast(to_tensor(x), as_shape(shape))


def concatenate(arrays: Sequence[Any], axis: int | None = 0) -> Any:
    if not any_tensor(*arrays):
        return np.concatenate(arrays, axis=axis)
    if not arrays:
        raise ShapeError("concatenate: need at least one array")
    ts = [to_tensor(a) for a in arrays]
    if axis is None:
        ts = [reshape(t, (-1,)) for t in ts]
        axis = 0
    dt = result_dtype(ts)
    ts = [cast(t, dt) for t in ts]
    if any(t.ndim == 0 for t in ts):
        raise ShapeError("concatenate: zero-dimensional arrays cannot be concatenated")
    a = _axis(axis, ts[0].ndim)
    if len(ts) == 1:
        return ts[0]
    return emit("concat", ts, {"axis": a})


def stack(arrays: Sequence[Any], axis: int = 0) -> Any:
    if not any_tensor(*arrays):
        return np.stack(arrays, axis=axis)
    ts = [to_tensor(a) for a in arrays]
    shapes = {t.shape for t in ts}
    if len(shapes) != 1:
        raise ShapeError(f"stack: all inputs must have the same shape, got "
                         f"{[format_shape(s) for s in shapes]}")
    a = _axis(axis, ts[0].ndim + 1)
    return concatenate([expand_dims(t, a) for t in ts], axis=a)


def _slice_axis(t: Tensor, axis: int, start: int, stop: int, step: int = 1) -> Tensor:
    starts = [0] * t.ndim
    stops = list(t.shape)
    steps = [1] * t.ndim
    starts[axis], stops[axis], steps[axis] = start, stop, step
    if (start, stop, step) == (0, t.shape[axis], 1):
        return t
    return emit("slice", [t], {"starts": tuple(starts), "stops": tuple(stops),
                               "steps": tuple(steps)})


def split(x: Any, indices_or_sections: Any, axis: int = 0) -> Any:
    if not any_tensor(x):
        return np.split(x, indices_or_sections, axis=axis)
    t = to_tensor(x)
    a = _axis(axis, t.ndim)
    n = t.shape[a]
    if isinstance(n, str):
        raise UnsupportedError(f"split along symbolic dim {n!r}")
    if isinstance(indices_or_sections, int):
        k = indices_or_sections
        if k <= 0 or n % k:
            raise ShapeError(f"split: array split does not result in an equal division "
                             f"({n} into {k}) (at {user_location()})")
        bounds = [i * (n // k) for i in range(k + 1)]
    else:
        bounds = [0] + [builtins.min(builtins.max(int(i), 0), n)
                        for i in indices_or_sections] + [n]
    return [_slice_axis(t, a, lo, builtins.max(lo, hi)) for lo, hi in zip(bounds, bounds[1:])]


def flip(x: Any, axis: int | Sequence[int] | None = None) -> Any:
    if not any_tensor(x):
        return np.flip(x, axis)
    t = to_tensor(x)
    axes = range(t.ndim) if axis is None else \
        [_axis(a, t.ndim) for a in ((axis,) if isinstance(axis, int) else axis)]
    for a in axes:
        n = t.shape[a]
        if isinstance(n, str):
            raise UnsupportedError(f"flip along symbolic dim {n!r}")
        t = _slice_axis(t, a, n - 1, -1, -1) if n > 1 else t
    return t


def pad(x: Any, pad_width: Any, mode: str = "constant", constant_values: Any = 0) -> Any:
    if not any_tensor(x):
        return np.pad(x, pad_width, mode=mode, constant_values=constant_values)
    if mode != "constant":
        raise UnsupportedError(f"pad(mode={mode!r}): only mode='constant'")
    t = to_tensor(x)
    widths = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (t.ndim, 2))
    if (widths < 0).any():
        raise ShapeError(f"pad: widths must be >= 0, got {pad_width}")
    if np.ndim(constant_values) != 0:
        raise UnsupportedError("pad: constant_values must be a scalar")
    value = np.asarray(constant_values).astype(t.dtype.np).item()
    pads = tuple((int(lo), int(hi)) for lo, hi in widths)
    if all(p == (0, 0) for p in pads):
        return t
    return emit("pad", [t], {"pads": pads, "value": value})


def take(a: Any, indices: Any, axis: int | None = None) -> Any:
    """numpy.take; compiled code clips out-of-range indices (NumPy raises IndexError)."""
    if not any_tensor(a, indices):
        return np.take(a, indices, axis=axis)
    t = to_tensor(a)
    if axis is None:
        t = reshape(t, (-1,))
        axis = 0
    ax = _axis(axis, t.ndim)
    idx = to_tensor(indices)
    if not idx.dtype.is_int:
        raise ShapeError(f"take: indices must be integers, got {idx.dtype}")
    return emit("take", [t, cast(idx, DType.int64)], {"axis": ax})



"""Reductions with NumPy's conventions: ``axis=None|int|tuple``, ``keepdims``, dtypes."""

from __future__ import annotations

import builtins
from typing import Any

import numpy as np

from tensorjit.compiler.frontend.lift import any_tensor, cast, emit, operand, to_tensor
from tensorjit.compiler.frontend.tensor import Tensor, user_location
from tensorjit.ir.dtypes import DType, as_dtype, float_of
from tensorjit.ir.errors import ShapeError, UnsupportedError
from tensorjit.ir.shapes import Size, normalize_axes, normalize_axis


def _keep(t: Tensor, reduced: Tensor, axes: tuple[int, ...], keepdims: bool) -> Tensor:
    if not keepdims:
        return reduced
    shape = tuple(1 if i in axes else d for i, d in enumerate(t.shape))
    return emit("reshape", [reduced], {"shape": shape})


def _axes(t: Tensor, axis: Any) -> tuple[int, ...]:
    try:
        return normalize_axes(axis, t.ndim)
    except ShapeError as exc:
        raise ShapeError(f"{exc} (at {user_location()})") from None


def _accumulate_dtype(dt: DType) -> DType:
    # NumPy sums and multiplies bool and int32 in the default integer, int64.
    return DType.int64 if dt in (DType.bool, DType.int32) else dt


def sum(x: Any, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Any:  # noqa: A001
    if not any_tensor(x):
        return np.sum(x, axis=axis, dtype=dtype, keepdims=keepdims)
    t = to_tensor(x)
    dt = as_dtype(dtype) if dtype is not None else _accumulate_dtype(t.dtype)
    axes = _axes(t, axis)
    return _keep(t, emit("reduce_sum", [cast(t, dt)], {"axes": axes}), axes, keepdims)


def prod(x: Any, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Any:
    if not any_tensor(x):
        return np.prod(x, axis=axis, dtype=dtype, keepdims=keepdims)
    t = to_tensor(x)
    dt = as_dtype(dtype) if dtype is not None else _accumulate_dtype(t.dtype)
    axes = _axes(t, axis)
    return _keep(t, emit("reduce_prod", [cast(t, dt)], {"axes": axes}), axes, keepdims)


def _extremum(op: str, np_fn: Any) -> Any:
    def fn(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        if not any_tensor(x):
            return np_fn(x, axis=axis, keepdims=keepdims)
        t = to_tensor(x)
        axes = _axes(t, axis)
        return _keep(t, emit(op, [t], {"axes": axes}), axes, keepdims)

    return fn


max = _extremum("reduce_max", np.max)  # noqa: A001
min = _extremum("reduce_min", np.min)  # noqa: A001
amax, amin = max, min


def _count(t: Tensor, axes: tuple[int, ...]) -> Size:
    return Size.product(t.shape[a] for a in axes)


def _count_tensor(t: Tensor, axes: tuple[int, ...], dtype: DType) -> Tensor:
    n = _count(t, axes)
    if not n.is_static:
        raise UnsupportedError(f"mean/var over symbolic dims {n} (at {user_location()})")
    return operand(float(n.coef), dtype)


def mean(x: Any, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Any:
    """numpy.mean: the sum in the result dtype divided by the count (NaN when empty)."""
    if not any_tensor(x):
        return np.mean(x, axis=axis, dtype=dtype, keepdims=keepdims)
    t = to_tensor(x)
    dt = as_dtype(dtype) if dtype is not None else float_of(t.dtype)
    axes = _axes(t, axis)
    total = emit("reduce_sum", [cast(t, dt)], {"axes": axes})
    n = _count_tensor(t, axes, dt)
    out = emit("div", [total, emit("broadcast_to", [n], {"shape": total.shape})])
    return _keep(t, out, axes, keepdims)


def var(x: Any, axis: Any = None, dtype: Any = None, ddof: int = 0,
        keepdims: bool = False) -> Any:
    """numpy.var: mean of squared deviations from the mean, over ``n - ddof``."""
    if not any_tensor(x):
        return np.var(x, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims)
    from tensorjit.compiler.frontend import ufuncs

    t = to_tensor(x)
    dt = as_dtype(dtype) if dtype is not None else float_of(t.dtype)
    t = cast(t, dt)
    axes = _axes(t, axis)
    m = mean(t, axis=axes, keepdims=True)
    d = ufuncs.subtract(t, m)
    total = emit("reduce_sum", [ufuncs.multiply(d, d)], {"axes": axes})
    n = _count(t, axes)
    if not n.is_static:
        raise UnsupportedError(f"var over symbolic dims {n} (at {user_location()})")
    denom = operand(float(builtins.max(n.coef - ddof, 0)), dt, total.shape)
    return _keep(t, emit("div", [total, denom]), axes, keepdims)


def std(x: Any, axis: Any = None, dtype: Any = None, ddof: int = 0,
        keepdims: bool = False) -> Any:
    if not any_tensor(x):
        return np.std(x, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims)
    from tensorjit.compiler.frontend import ufuncs

    return ufuncs.sqrt(var(x, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims))


def _arg(op: str, np_fn: Any) -> Any:
    def fn(x: Any, axis: int | None = None, keepdims: bool = False) -> Any:
        if not any_tensor(x):
            return np_fn(x, axis=axis, keepdims=keepdims)
        t = to_tensor(x)
        if axis is None:
            flat = emit("reshape", [t], {"shape": (Size.product(t.shape).coef,)}) \
                if all(isinstance(d, int) for d in t.shape) else None
            if flat is None:
                raise UnsupportedError(f"{op} with axis=None over symbolic dims "
                                       f"(at {user_location()})")
            out = emit(op, [flat], {"axes": (0,)})
            if keepdims:
                out = emit("reshape", [out], {"shape": (1,) * t.ndim})
            return out
        try:
            a = normalize_axis(axis, t.ndim)
        except ShapeError as exc:
            raise ShapeError(f"{exc} (at {user_location()})") from None
        return _keep(t, emit(op, [t], {"axes": (a,)}), (a,), keepdims)

    return fn


argmax = _arg("argmax", np.argmax)
argmin = _arg("argmin", np.argmin)

"""Array creation: inside a traced function these make graph constants; outside, NumPy arrays."""

from __future__ import annotations

from typing import Any

import numpy as np

from tensorjit.compiler.frontend.lift import any_tensor, broadcast, cast, emit, tracing
from tensorjit.compiler.frontend.tensor import Tensor, user_location
from tensorjit.ir.build import const, iota
from tensorjit.ir.dtypes import DType, as_dtype
from tensorjit.ir.errors import UnsupportedError
from tensorjit.ir.shapes import as_shape


def full(shape: Any, fill_value: Any, dtype: Any = None) -> Any:
    if not tracing() and not any_tensor(fill_value):
        return np.full(shape, fill_value, dtype=None if dtype is None else as_dtype(dtype).np)
    shp = as_shape(shape)
    if isinstance(fill_value, Tensor):
        dt = as_dtype(dtype) if dtype is not None else fill_value.dtype
        return broadcast(cast(fill_value, dt), shp)
    dt = as_dtype(dtype) if dtype is not None else as_dtype(np.asarray(fill_value).dtype)
    return broadcast(Tensor(const(fill_value, dt, loc=user_location())), shp)


def zeros(shape: Any, dtype: Any = float) -> Any:
    return full(shape, 0, dtype)


def ones(shape: Any, dtype: Any = float) -> Any:
    return full(shape, 1, dtype)


def _like(a: Any, dtype: Any) -> tuple[Any, Any]:
    if isinstance(a, Tensor):
        return a.shape, (a.dtype if dtype is None else dtype)
    arr = np.asarray(a)
    return arr.shape, (arr.dtype if dtype is None else dtype)


def full_like(a: Any, fill_value: Any, dtype: Any = None) -> Any:
    if not any_tensor(a) and not tracing():
        return np.full_like(a, fill_value, dtype=dtype)
    shape, dt = _like(a, dtype)
    return full(shape, np.asarray(fill_value).astype(as_dtype(dt).np).item(), dt)


def zeros_like(a: Any, dtype: Any = None) -> Any:
    return full_like(a, 0, dtype)


def ones_like(a: Any, dtype: Any = None) -> Any:
    return full_like(a, 1, dtype)


def arange(start: Any, stop: Any = None, step: Any = 1, dtype: Any = None) -> Any:
    """numpy.arange with static bounds: ``start + i * step`` for i in range(n)."""
    if not tracing():
        return np.arange(start, stop, step, dtype=None if dtype is None else as_dtype(dtype).np)
    if stop is None:
        start, stop = 0, start
    if any(isinstance(v, Tensor) for v in (start, stop, step)):
        raise UnsupportedError("arange bounds must be Python numbers (the length is static)")
    ref = np.arange(start, stop, step)  # NumPy decides the length and the dtype
    dt = as_dtype(dtype) if dtype is not None else as_dtype(ref.dtype)
    n = len(ref)
    index = Tensor(iota((n,), 0, loc=user_location()))
    compute = DType.float64 if (dt.is_float or ref.dtype.kind == "f") else DType.int64
    values = cast(index, compute)
    if step != 1:
        values = emit("mul", [values, broadcast(Tensor(const(step, compute)), (n,))])
    if start != 0:
        values = emit("add", [values, broadcast(Tensor(const(start, compute)), (n,))])
    return cast(values, dt)


def eye(N: int, M: int | None = None, k: int = 0, dtype: Any = float) -> Any:  # noqa: N803
    if not tracing():
        return np.eye(N, M, k, dtype=as_dtype(dtype).np)
    M = N if M is None else M  # noqa: N806
    rows = Tensor(iota((N, M), 0, loc=user_location()))
    cols = Tensor(iota((N, M), 1, loc=user_location()))
    if k:
        rows = emit("add", [rows, broadcast(Tensor(const(k, DType.int64)), (N, M))])
    return cast(emit("eq", [rows, cols]), as_dtype(dtype))



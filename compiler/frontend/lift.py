"""Turning Python and NumPy values into graph nodes, and the helpers every frontend op uses."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from tensorjit.compiler.frontend.tensor import Tensor, user_location
from tensorjit.ir.build import apply, const
from tensorjit.ir.dtypes import DType, as_dtype, promote, promote_with_scalar, scalar_dtype
from tensorjit.ir.errors import DTypeError, ShapeError
from tensorjit.ir.graph import ConstArray
from tensorjit.ir.shapes import Shape, broadcast_shapes, format_shape

Scalar = bool | int | float
_state = threading.local()


def tracing() -> bool:
    """True while a function is being traced on this thread."""
    return getattr(_state, "depth", 0) > 0


class tracing_scope:  # noqa: N801 (used as a context manager, reads like a statement)
    def __enter__(self) -> None:
        _state.depth = getattr(_state, "depth", 0) + 1

    def __exit__(self, *exc: object) -> None:
        _state.depth -= 1


def is_scalar(value: Any) -> bool:
    return isinstance(value, (bool, int, float)) and not isinstance(value, np.generic)


def any_tensor(*values: Any) -> bool:
    return any(isinstance(v, Tensor) for v in values)


def to_tensor(value: Any, what: str = "operand") -> Tensor:
    """A Tensor for a Tensor, a NumPy array or scalar (a constant with its own dtype)."""
    if isinstance(value, Tensor):
        return value
    if is_scalar(value):
        dt = scalar_dtype(value)
        return Tensor(const(value, dt, loc=user_location()))
    try:
        array = np.asarray(value)
    except Exception as exc:  # noqa: BLE001 - report what came, whatever it was
        raise DTypeError(f"{what}: expected an array or tensor, got {type(value).__name__}") \
            from exc
    if array.dtype == object:
        raise DTypeError(f"{what}: expected an array or tensor, got {type(value).__name__}")
    dt = as_dtype(array.dtype, what)
    if array.ndim == 0:
        return Tensor(const(array.item(), dt, loc=user_location()))
    return Tensor(const(ConstArray.of(array), dt, loc=user_location()))


_WEAK_EXAMPLE = {DType.float64: 1.0, DType.int64: 1, DType.bool: True}


def _is_weak(value: Any) -> bool:
    return isinstance(value, Tensor) and value.weak


def result_dtype(values: Sequence[Any]) -> DType:
    """NEP 50: tensors and arrays are strong, Python scalars weak."""
    strong = [v.dtype if isinstance(v, Tensor) else as_dtype(np.asarray(v).dtype)
              for v in values if not is_scalar(v) and not _is_weak(v)]
    weak = [_WEAK_EXAMPLE[v.dtype] if _is_weak(v) else v for v in values
            if is_scalar(v) or _is_weak(v)]
    if not strong:
        return as_dtype(np.result_type(*weak))
    dt = promote(*strong)
    for w in weak:
        dt = promote_with_scalar(dt, w)
    return dt


def operand(value: Any, dtype: DType, shape: Shape | None = None) -> Tensor:
    """``value`` as a Tensor of ``dtype`` broadcast to ``shape``."""
    if is_scalar(value):
        if dtype.is_int and not isinstance(value, bool) and isinstance(value, int):
            info = np.iinfo(dtype.np)
            if not info.min <= value <= info.max:
                # As NumPy (NEP 50): a weak Python int that does not fit the dtype raises.
                raise OverflowError(f"Python integer {value} out of bounds for {dtype} "
                                    f"(at {user_location()})")
        t = Tensor(const(value, dtype, loc=user_location()))
    else:
        t = cast(to_tensor(value), dtype)
    return t if shape is None else broadcast(t, shape)


def cast(t: Tensor, dtype: DType) -> Tensor:
    if t.dtype is dtype:
        return t
    return emit("cast", [t], {"dtype": dtype})


def broadcast(t: Tensor, shape: Shape) -> Tensor:
    if t.shape == shape:
        return t
    try:
        target = broadcast_shapes(t.shape, shape)
    except ShapeError:
        target = None
    if target != tuple(shape):
        raise ShapeError(f"cannot broadcast {format_shape(t.shape)} to {format_shape(shape)}"
                         f" (at {user_location()})")
    return emit("broadcast_to", [t], {"shape": tuple(shape)})


def emit(op: str, inputs: Sequence[Tensor], attrs: dict[str, Any] | None = None) -> Tensor:
    return Tensor(apply(op, [t.node for t in inputs], attrs, loc=user_location()))


def common_shape(*values: Any) -> Shape:
    """The broadcast shape of the operands; the error names the user's line."""
    shapes = [shape_of(v) for v in values]
    try:
        return broadcast_shapes(*shapes)
    except ShapeError as exc:
        raise ShapeError(f"{exc} (at {user_location()})") from None


def shape_of(value: Any) -> Shape:
    if isinstance(value, Tensor):
        return value.shape
    return tuple(np.shape(value))

"""The five dtypes tensorjit supports and NumPy's promotion rules (NEP 50) over them."""

from __future__ import annotations

import enum
from typing import Any

import numpy as np

from tensorjit.ir.errors import DTypeError


class DType(enum.Enum):
    float32 = "float32"
    float64 = "float64"
    int32 = "int32"
    int64 = "int64"
    bool = "bool"

    # Members are singletons, so identity is equality: hashing by identity (in C) instead
    # of Enum's Python-level hash of the name (dtypes are in every node's intern key).
    __hash__ = object.__hash__

    @property
    def np(self) -> np.dtype:
        return _NUMPY[self]

    @property
    def dtype(self) -> np.dtype:
        """Lets NumPy accept a DType wherever it takes a dtype (``a.astype(tj.int32)``)."""
        return _NUMPY[self]

    @property
    def itemsize(self) -> int:
        return _NUMPY[self].itemsize

    # (module-level sets: reading a member as ``DType.x`` goes through a descriptor)
    @property
    def is_float(self) -> bool:
        return self in _FLOATS

    @property
    def is_int(self) -> bool:
        return self in _INTS

    @property
    def is_bool(self) -> bool:
        return self is bool_

    @property
    def short(self) -> str:
        """Short form used in the text IR and in specs: f32, f64, i32, i64, bool."""
        return _SHORT[self]

    def __repr__(self) -> str:
        return f"tj.{self.value}"

    def __str__(self) -> str:
        return self.value


float32, float64, int32, int64, bool_ = (
    DType.float32, DType.float64, DType.int32, DType.int64, DType.bool
)

_FLOATS = frozenset({float32, float64})
_INTS = frozenset({int32, int64})
_NUMPY = {d: np.dtype(d.value) for d in DType}
_SHORT = {
    DType.float32: "f32", DType.float64: "f64", DType.int32: "i32",
    DType.int64: "i64", DType.bool: "bool",
}
_FROM_SHORT = {v: k for k, v in _SHORT.items()}


def as_dtype(value: Any, what: str = "dtype") -> DType:
    """Turn a DType, NumPy dtype, type object or name (`"float32"`, `"f32"`) into a DType."""
    if isinstance(value, DType):
        return value
    if isinstance(value, str) and value in _FROM_SHORT:
        return _FROM_SHORT[value]
    if value is bool:
        return DType.bool
    if value is float:
        return DType.float64
    if value is int:
        return DType.int64
    try:
        npd = np.dtype(value)
    except TypeError as exc:
        raise DTypeError(f"{what}: expected one of {supported()}, got {value!r}") from exc
    for d, n in _NUMPY.items():
        if n == npd:
            return d
    raise DTypeError(f"{what}: expected one of {supported()}, got {npd}")


def supported() -> str:
    return ", ".join(d.value for d in DType)


def promote(*dtypes: DType) -> DType:
    """NumPy's result type of tensors with these dtypes."""
    return as_dtype(np.result_type(*(d.np for d in dtypes)))


def promote_with_scalar(dtype: DType, scalar: bool | int | float) -> DType:
    """NEP 50: a Python scalar is weak, so `f32 tensor * 2.0` stays f32, `i32 + 1.5` is f64."""
    return as_dtype(np.result_type(dtype.np, scalar))


def scalar_dtype(value: bool | int | float) -> DType:
    """The dtype a Python scalar takes on its own (a weak scalar with no tensor beside it)."""
    if isinstance(value, (bool, np.bool_)):
        return DType.bool
    if isinstance(value, (int, np.integer)):
        return DType.int64
    return DType.float64


def float_of(dtype: DType) -> DType:
    """The dtype NumPy computes a float function (exp, sqrt, divide) in for this input."""
    if dtype.is_float:
        return dtype
    # NumPy: bool -> float16 for unary ufuncs, which we do not have; we follow
    # true_divide's rule (bool and ints -> float64) and document it.
    return DType.float64

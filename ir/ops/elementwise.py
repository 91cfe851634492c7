"""Elementwise ops: unary, binary, select and cast.

At the IR level every input of an elementwise op already has the output's shape
(the frontend inserts explicit ``broadcast_to``) and binary operands share a dtype
(the frontend applies NumPy's promotion and inserts ``cast``). That keeps lowering
and autodiff free of implicit rules.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tensorjit.ir.dtypes import DType
from tensorjit.ir.errors import DTypeError, ShapeError
from tensorjit.ir.ops.registry import Category, OpDef, TypeInfo, register
from tensorjit.ir.shapes import format_shape

NUMERIC = frozenset({DType.float32, DType.float64, DType.int32, DType.int64})
FLOATS = frozenset({DType.float32, DType.float64})
INTS = frozenset({DType.int32, DType.int64})
INTEGRAL = frozenset({DType.int32, DType.int64, DType.bool})
BOOL = frozenset({DType.bool})
ALL = frozenset(DType)


def _check(name: str, inputs: Sequence[TypeInfo], allowed: frozenset[DType]) -> TypeInfo:
    first = inputs[0]
    for k, t in enumerate(inputs):
        if t.shape != first.shape:
            raise ShapeError(
                f"{name}: operand {k} has shape {format_shape(t.shape)}, "
                f"expected {format_shape(first.shape)} (broadcast first)"
            )
        if t.dtype != first.dtype:
            raise DTypeError(f"{name}: operand {k} is {t.dtype}, expected {first.dtype}")
    if first.dtype not in allowed:
        names = ", ".join(sorted(d.value for d in allowed))
        raise DTypeError(f"{name}: expected {names}, got {first.dtype}")
    return first


def _np(fn: Callable[..., Any]) -> Callable[[Sequence[np.ndarray], dict, TypeInfo], np.ndarray]:
    def ref(args: Sequence[np.ndarray], attrs: dict, out: TypeInfo) -> np.ndarray:
        with np.errstate(all="ignore"):
            return np.asarray(fn(*args)).astype(out.dtype.np, copy=False)

    return ref


def _elementwise(
    name: str, arity: int, allowed: frozenset[DType], fn: Callable[..., Any],
    result: DType | None = None, doc: str = "",
) -> None:
    def infer(inputs: Sequence[TypeInfo], attrs: dict[str, Any]) -> TypeInfo:
        t = _check(name, inputs, allowed)
        return TypeInfo(t.shape, result or t.dtype)

    register(OpDef(name, Category.ELEMENTWISE, arity, infer, _np(fn), doc=doc))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype)


_erf = np.frompyfunc(math.erf, 1, 1)


def _reference_erf(x: np.ndarray) -> np.ndarray:
    return _erf(x.astype(np.float64)).astype(x.dtype)


def _int_pow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Integer power; a negative exponent gives C's truncating 1 / a**-b (NumPy raises)."""
    if a.dtype.kind in "iu":
        neg = b < 0
        safe = np.power(a, np.where(neg, 0, b))
        inv = np.where(a == 1, 1, np.where(a == -1, np.where(b % 2 == 0, 1, -1), 0))
        return np.where(neg, inv, safe).astype(a.dtype)
    return np.power(a, b)


for _name, _allowed, _fn in [
    ("neg", NUMERIC, np.negative),
    ("abs", NUMERIC, np.abs),
    ("sign", NUMERIC, np.sign),
    ("floor", FLOATS, np.floor),
    ("ceil", FLOATS, np.ceil),
    ("exp", FLOATS, np.exp),
    ("expm1", FLOATS, np.expm1),
    ("log", FLOATS, np.log),
    ("log1p", FLOATS, np.log1p),
    ("log2", FLOATS, np.log2),
    ("sqrt", FLOATS, np.sqrt),
    ("sin", FLOATS, np.sin),
    ("cos", FLOATS, np.cos),
    ("tan", FLOATS, np.tan),
    ("tanh", FLOATS, np.tanh),
    ("arctan", FLOATS, np.arctan),
    ("sigmoid", FLOATS, _sigmoid),
    ("erf", FLOATS, _reference_erf),
    ("invert", INTEGRAL, np.invert),
]:
    _elementwise(_name, 1, _allowed, _fn)

for _name, _fn in [("isnan", np.isnan), ("isfinite", np.isfinite)]:
    _elementwise(_name, 1, ALL, _fn, result=DType.bool)
_elementwise("logical_not", 1, BOOL, np.logical_not)

for _name, _allowed, _fn in [
    ("add", NUMERIC, np.add),
    ("sub", NUMERIC, np.subtract),
    ("mul", NUMERIC, np.multiply),
    ("div", FLOATS, np.true_divide),
    ("floordiv", NUMERIC, np.floor_divide),
    ("mod", NUMERIC, np.mod),
    ("pow", NUMERIC, _int_pow),
    ("maximum", ALL, np.maximum),
    ("minimum", ALL, np.minimum),
    ("bitwise_and", INTEGRAL, np.bitwise_and),
    ("bitwise_or", INTEGRAL, np.bitwise_or),
    ("bitwise_xor", INTEGRAL, np.bitwise_xor),
]:
    _elementwise(_name, 2, _allowed, _fn)

for _name, _fn in [
    ("lt", np.less), ("le", np.less_equal), ("gt", np.greater),
    ("ge", np.greater_equal), ("eq", np.equal), ("ne", np.not_equal),
]:
    _elementwise(_name, 2, ALL, _fn, result=DType.bool)
for _name, _fn in [("logical_and", np.logical_and), ("logical_or", np.logical_or)]:
    _elementwise(_name, 2, BOOL, _fn)


def _infer_select(inputs: Sequence[TypeInfo], attrs: dict[str, Any]) -> TypeInfo:
    cond, a, b = inputs
    if cond.dtype is not DType.bool:
        raise DTypeError(f"select: condition must be bool, got {cond.dtype}")
    if cond.shape != a.shape:
        raise ShapeError(f"select: condition shape {format_shape(cond.shape)} != "
                         f"{format_shape(a.shape)} (broadcast first)")
    return _check("select", [a, b], ALL)


register(OpDef(
    "select", Category.ELEMENTWISE, 3, _infer_select,
    _np(np.where), doc="select(cond, a, b): a where cond else b (numpy.where)",
))


def _infer_cast(inputs: Sequence[TypeInfo], attrs: dict[str, Any]) -> TypeInfo:
    return TypeInfo(inputs[0].shape, attrs["dtype"])


def _reference_cast(args: Sequence[np.ndarray], attrs: dict, out: TypeInfo) -> np.ndarray:
    x = args[0]
    if x.dtype.kind == "f" and out.dtype.is_int:
        # Saturate, as the compiled code does: NaN -> 0, +-Inf and out-of-range values
        # -> the nearest representable integer (NumPy leaves these undefined).
        info = np.iinfo(out.dtype.np)
        lo, hi = np.float64(info.min), np.float64(info.max)
        wide = np.clip(np.nan_to_num(x.astype(np.float64), nan=0.0), lo, hi)
        # float64(int64 max) rounds up to 2**63, which does not convert: patch it after
        top = wide >= hi
        result = np.where(top, 0.0, wide).astype(out.dtype.np)
        return np.where(top, info.max, result).astype(out.dtype.np)
    with np.errstate(all="ignore"):
        return x.astype(out.dtype.np)


register(OpDef(
    "cast", Category.ELEMENTWISE, 1, _infer_cast, _reference_cast,
    attrs={"dtype": "target DType"},
    doc="astype; float->int of NaN/Inf/out-of-range values is undefined in NumPy and here "
        "gives the saturated value",
))

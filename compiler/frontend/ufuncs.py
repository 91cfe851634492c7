"""Elementwise NumPy functions: ``tj.exp(x)`` means ``numpy.exp(x)``.

Called with no traced tensor among the arguments, each function simply calls NumPy,
so ``tj.exp`` also works on plain arrays outside a traced function.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from tensorjit.compiler.frontend.lift import (
    any_tensor,
    cast,
    common_shape,
    emit,
    operand,
    result_dtype,
    to_tensor,
)
from tensorjit.compiler.frontend.tensor import Tensor, user_location
from tensorjit.ir.dtypes import DType, float_of
from tensorjit.ir.errors import DTypeError, UnsupportedError

_F = TypeVar("_F", bound=Callable[..., Any])


def _fail(name: str, dtype: DType) -> DTypeError:
    return DTypeError(f"{name}: not supported for {dtype} operands, as in NumPy "
                      f"(at {user_location()})")


def _numpy_fallback(np_fn: Callable[..., Any], name: str | None = None,
                    doc: str | None = None) -> Callable[[_F], _F]:
    """Decorate the traced form of a function: called with no traced tensor among its
    arguments, the function is ``np_fn`` on the same arguments, passed by position in the
    decorated function's order (keywords and defaults bound by its signature).

    ``name`` and ``doc`` replace the decorated function's when the factories below build
    one function per NumPy name."""

    def decorate(traced: _F) -> _F:
        sig = inspect.signature(traced)
        n_params = len(sig.parameters)

        @functools.wraps(traced)
        def fn(*args: Any, **kwargs: Any) -> Any:
            if kwargs or len(args) != n_params:
                try:
                    bound = sig.bind(*args, **kwargs)
                except TypeError:
                    return traced(*args, **kwargs)  # a wrong call: Python's own message
                bound.apply_defaults()
                args = bound.args
            if not any_tensor(*args):
                return np_fn(*args)
            return traced(*args)

        if name is not None:
            fn.__name__ = name
        if doc is not None:
            fn.__doc__ = doc
        return typing.cast(_F, fn)

    return decorate


def _binary(name: str, op: str, np_fn: Callable[..., Any], kind: str) -> Callable[..., Any]:
    @_numpy_fallback(np_fn, name, f"numpy.{np_fn.__name__} on traced tensors.")
    def fn(a: Any, b: Any) -> Any:
        dt = result_dtype([a, b])
        shape = common_shape(a, b)
        out_op = op
        if kind == "true_divide":
            dt = float_of(dt)
        elif dt is DType.bool:
            if kind == "arith" and op in ("add", "mul"):
                out_op = "logical_or" if op == "add" else "logical_and"
            elif kind in ("arith", "int_arith") and op not in ("maximum", "minimum"):
                raise _fail(name, dt)
        elif kind == "bitwise" and dt.is_float:
            raise _fail(name, dt)
        return emit(out_op, [operand(a, dt, shape), operand(b, dt, shape)])

    return fn


add = _binary("add", "add", np.add, "arith")
subtract = _binary("subtract", "sub", np.subtract, "arith")
multiply = _binary("multiply", "mul", np.multiply, "arith")
true_divide = _binary("true_divide", "div", np.true_divide, "true_divide")
divide = true_divide
floor_divide = _binary("floor_divide", "floordiv", np.floor_divide, "int_arith")
mod = _binary("mod", "mod", np.mod, "int_arith")
remainder = mod
maximum = _binary("maximum", "maximum", np.maximum, "arith")
minimum = _binary("minimum", "minimum", np.minimum, "arith")
bitwise_and = _binary("bitwise_and", "bitwise_and", np.bitwise_and, "bitwise")
bitwise_or = _binary("bitwise_or", "bitwise_or", np.bitwise_or, "bitwise")
bitwise_xor = _binary("bitwise_xor", "bitwise_xor", np.bitwise_xor, "bitwise")
_power = _binary("power", "pow", np.power, "int_arith")


def power(a: Any, b: Any) -> Any:
    """numpy.power, including NumPy's fast paths for a scalar exponent of a float array
    (1, 2, -1, 0.5 and 0 are computed as x, x*x, 1/x, sqrt(x) and 1, which differ from
    pow() in the last bit and at -0.0 and -inf); integer exponents of 2 and 1 as well."""
    if isinstance(a, Tensor) and not isinstance(b, Tensor) and np.ndim(b) == 0 \
            and a.dtype is not DType.bool and result_dtype([a, b]) is a.dtype:
        e = float(b)
        if e == 1.0:
            return a
        if e == 2.0:
            return multiply(a, a)
        if a.dtype.is_float:
            if e == 0.5:
                return sqrt(a)
            if e == -1.0:
                return true_divide(1.0, a)
            if e == 0.0:
                return operand(1.0, a.dtype, a.shape)
    return _power(a, b)


def _compare(name: str, op: str, np_fn: Callable[..., Any]) -> Callable[..., Any]:
    @_numpy_fallback(np_fn, name)
    def fn(a: Any, b: Any) -> Any:
        dt = result_dtype([a, b])
        if dt is DType.int32 and any(_outside_int32(v) for v in (a, b)):
            dt = DType.int64  # NumPy 2 compares with out-of-range Python ints exactly
        shape = common_shape(a, b)
        return emit(op, [operand(a, dt, shape), operand(b, dt, shape)])

    return fn


def _outside_int32(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and not -2**31 <= v < 2**31


less = _compare("less", "lt", np.less)
less_equal = _compare("less_equal", "le", np.less_equal)
greater = _compare("greater", "gt", np.greater)
greater_equal = _compare("greater_equal", "ge", np.greater_equal)
equal = _compare("equal", "eq", np.equal)
not_equal = _compare("not_equal", "ne", np.not_equal)


def _truth(value: Any) -> Tensor:
    t = to_tensor(value)
    if t.dtype is DType.bool:
        return t
    return cast(t, DType.bool)


def _logical(name: str, op: str, np_fn: Callable[..., Any]) -> Callable[..., Any]:
    @_numpy_fallback(np_fn, name)
    def fn(a: Any, b: Any) -> Any:
        shape = common_shape(a, b)
        return emit(op, [operand(_truth(a), DType.bool, shape),
                         operand(_truth(b), DType.bool, shape)])

    return fn


logical_and = _logical("logical_and", "logical_and", np.logical_and)
logical_or = _logical("logical_or", "logical_or", np.logical_or)


@_numpy_fallback(np.logical_not)
def logical_not(x: Any) -> Any:
    return emit("logical_not", [_truth(x)])


def _float_unary(name: str, op: str, np_fn: Callable[..., Any]) -> Callable[..., Any]:
    @_numpy_fallback(np_fn, name, f"numpy.{np_fn.__name__}; integer and bool inputs "
                     "compute in float64 (NumPy uses float16 for bool).")
    def fn(x: Any) -> Any:
        t = to_tensor(x)
        return emit(op, [cast(t, float_of(t.dtype))])

    return fn


exp = _float_unary("exp", "exp", np.exp)
expm1 = _float_unary("expm1", "expm1", np.expm1)
log = _float_unary("log", "log", np.log)
log1p = _float_unary("log1p", "log1p", np.log1p)
log2 = _float_unary("log2", "log2", np.log2)
sqrt = _float_unary("sqrt", "sqrt", np.sqrt)
sin = _float_unary("sin", "sin", np.sin)
cos = _float_unary("cos", "cos", np.cos)
tan = _float_unary("tan", "tan", np.tan)
tanh = _float_unary("tanh", "tanh", np.tanh)
arctan = _float_unary("arctan", "arctan", np.arctan)


def _numeric_unary(name: str, op: str, np_fn: Callable[..., Any],
                   on_bool: str) -> Callable[..., Any]:
    @_numpy_fallback(np_fn, name)
    def fn(x: Any) -> Any:
        t = to_tensor(x)
        if t.dtype is DType.bool:
            if on_bool == "identity":
                return t
            raise _fail(name, t.dtype)
        if op in ("floor", "ceil") and t.dtype.is_int:
            return t  # NumPy 2 keeps integers as they are
        return emit(op, [t])

    return fn


negative = _numeric_unary("negative", "neg", np.negative, on_bool="error")
abs = _numeric_unary("abs", "abs", np.abs, on_bool="identity")  # noqa: A001 (NumPy's name)
absolute = abs
sign = _numeric_unary("sign", "sign", np.sign, on_bool="error")
floor = _numeric_unary("floor", "floor", np.floor, on_bool="error")
ceil = _numeric_unary("ceil", "ceil", np.ceil, on_bool="error")


@_numpy_fallback(np.square)
def square(x: Any) -> Any:
    t = to_tensor(x)
    if t.dtype is DType.bool:
        raise UnsupportedError("square of a bool tensor (NumPy gives int8, which tensorjit "
                               f"does not have) at {user_location()}")
    return emit("mul", [t, t])


@_numpy_fallback(np.reciprocal)
def reciprocal(x: Any) -> Any:
    t = to_tensor(x)
    if not t.dtype.is_float:
        raise UnsupportedError(f"reciprocal of {t.dtype} (integer reciprocal truncates to 0; "
                               f"cast to a float dtype first) at {user_location()}")
    return true_divide(1.0, t)


@_numpy_fallback(np.invert)
def invert(x: Any) -> Any:
    t = to_tensor(x)
    if t.dtype.is_float:
        raise _fail("invert", t.dtype)
    return emit("invert", [t])


@_numpy_fallback(np.isnan)
def isnan(x: Any) -> Any:
    return emit("isnan", [to_tensor(x)])


@_numpy_fallback(np.isfinite)
def isfinite(x: Any) -> Any:
    return emit("isfinite", [to_tensor(x)])


@_numpy_fallback(np.where)
def where(cond: Any, a: Any, b: Any) -> Any:
    dt = result_dtype([a, b])
    shape = common_shape(cond, a, b)
    return emit("select", [operand(_truth(cond), DType.bool, shape),
                           operand(a, dt, shape), operand(b, dt, shape)])


@_numpy_fallback(np.clip)
def clip(x: Any, a_min: Any = None, a_max: Any = None) -> Any:
    """numpy.clip: minimum(maximum(x, a_min), a_max); NaN stays NaN."""
    if a_min is None and a_max is None:
        raise UnsupportedError("clip: give a_min or a_max")
    out = x
    if a_min is not None:
        out = maximum(out, a_min)
    if a_max is not None:
        out = minimum(out, a_max)
    return out


def astype(x: Any, dtype: Any) -> Any:
    from tensorjit.ir.dtypes import as_dtype

    dt = as_dtype(dtype)
    if not any_tensor(x):
        return np.asarray(x).astype(dt.np)
    return cast(to_tensor(x), dt)


cast_to = astype

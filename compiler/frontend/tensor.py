"""Tensor proxies: what a traced function sees instead of arrays.

A Tensor wraps one graph node. Python operators, NumPy ufuncs called on it
(``np.exp(t)``) and the methods listed in API.md all record graph nodes; each node
remembers the user's source line so that errors point at the user's code.
"""

from __future__ import annotations

import functools
import os
import sys
from typing import Any

import numpy as np

from tensorjit.ir.dtypes import DType
from tensorjit.ir.errors import UnsupportedError
from tensorjit.ir.graph import Node

# The folder holding our stage packages: the repo root (editable) or site-packages/tensorjit.
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_OUR_DIRS = tuple(
    os.path.join(_ROOT, d) + os.sep for d in ("ir", "passes", "compiler", "runtime", "tensorjit")
)


@functools.lru_cache(maxsize=4096)
def _is_ours(filename: str) -> bool:
    # cached: every traced op walks the stack (a 100-joint chain makes ~1000 calls)
    path = os.path.abspath(filename)
    return path.startswith(_OUR_DIRS) or os.path.dirname(path) == _ROOT


def user_location() -> str | None:
    """``file:line (function)`` of the innermost frame outside tensorjit."""
    frame = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        if not _is_ours(code.co_filename):
            return f"{code.co_filename}:{frame.f_lineno} ({code.co_name})"
        frame = frame.f_back  # type: ignore[assignment]
    return None


class Tensor:
    """A symbolic array inside a traced function."""

    __slots__ = ("node", "weak")
    # Make NumPy defer to our reflected operators (ndarray + Tensor -> Tensor.__radd__).
    __array_priority__ = 1000

    def __init__(self, node: Node, weak: bool = False) -> None:
        self.node = node
        # A Python scalar argument: typed like a Python scalar in promotion (NEP 50), so
        # ``x_f32 * s`` stays float32 when ``s`` is a Python float passed to a jit function.
        self.weak = weak

    # --- metadata -------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int | str, ...]:
        return self.node.shape

    @property
    def ndim(self) -> int:
        return len(self.node.shape)

    @property
    def dtype(self) -> DType:
        return self.node.dtype

    @property
    def size(self) -> int:
        total = 1
        for d in self.node.shape:
            if isinstance(d, str):
                raise UnsupportedError(f"size of a tensor with symbolic dim {d!r} is not an int")
            total *= d
        return total

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d tensor")
        d = self.shape[0]
        if isinstance(d, str):
            raise UnsupportedError(f"len() of a tensor whose first dim is symbolic ({d!r})")
        return d

    def __repr__(self) -> str:
        return f"Tensor({self.dtype.short}{list(self.shape)}, op={self.node.op})"

    # --- things a symbolic value cannot do -----------------------------------------
    def __bool__(self) -> bool:
        raise UnsupportedError(
            "the truth value of a traced tensor is not known at trace time; use tj.where "
            f"instead of if/while on tensor values (at {user_location()})")

    def __array__(self, *args: Any, **kwargs: Any) -> np.ndarray:
        raise UnsupportedError(
            "a traced tensor cannot be converted to a NumPy array; use tj.* functions "
            f"inside traced code (at {user_location()})")

    def __iter__(self) -> Any:
        n = len(self)
        return (self[i] for i in range(n))

    def __index__(self) -> int:
        raise UnsupportedError("a traced tensor cannot be used as a Python int")

    __hash__ = object.__hash__

    # --- NumPy interop: np.exp(t) and friends trace like tj.exp(t) -------------------
    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        from tensorjit.compiler.frontend import numpy_api

        fn = getattr(numpy_api, ufunc.__name__, None)
        if method != "__call__" or fn is None or kwargs:
            raise UnsupportedError(f"numpy.{ufunc.__name__}.{method} on a traced tensor")
        return fn(*inputs)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        from tensorjit.compiler.frontend import numpy_api

        fn = getattr(numpy_api, func.__name__, None)
        if fn is None:
            raise UnsupportedError(f"numpy.{func.__name__} on a traced tensor")
        return fn(*args, **kwargs)

    # --- operators --------------------------------------------------------------------
    def __add__(self, o: Any) -> Tensor: return _api().add(self, o)
    def __radd__(self, o: Any) -> Tensor: return _api().add(o, self)
    def __sub__(self, o: Any) -> Tensor: return _api().subtract(self, o)
    def __rsub__(self, o: Any) -> Tensor: return _api().subtract(o, self)
    def __mul__(self, o: Any) -> Tensor: return _api().multiply(self, o)
    def __rmul__(self, o: Any) -> Tensor: return _api().multiply(o, self)
    def __truediv__(self, o: Any) -> Tensor: return _api().true_divide(self, o)
    def __rtruediv__(self, o: Any) -> Tensor: return _api().true_divide(o, self)
    def __floordiv__(self, o: Any) -> Tensor: return _api().floor_divide(self, o)
    def __rfloordiv__(self, o: Any) -> Tensor: return _api().floor_divide(o, self)
    def __mod__(self, o: Any) -> Tensor: return _api().mod(self, o)
    def __rmod__(self, o: Any) -> Tensor: return _api().mod(o, self)
    def __pow__(self, o: Any) -> Tensor: return _api().power(self, o)
    def __rpow__(self, o: Any) -> Tensor: return _api().power(o, self)
    def __matmul__(self, o: Any) -> Tensor: return _api().matmul(self, o)
    def __rmatmul__(self, o: Any) -> Tensor: return _api().matmul(o, self)
    def __and__(self, o: Any) -> Tensor: return _api().bitwise_and(self, o)
    def __rand__(self, o: Any) -> Tensor: return _api().bitwise_and(o, self)
    def __or__(self, o: Any) -> Tensor: return _api().bitwise_or(self, o)
    def __ror__(self, o: Any) -> Tensor: return _api().bitwise_or(o, self)
    def __xor__(self, o: Any) -> Tensor: return _api().bitwise_xor(self, o)
    def __rxor__(self, o: Any) -> Tensor: return _api().bitwise_xor(o, self)
    def __neg__(self) -> Tensor: return _api().negative(self)
    def __pos__(self) -> Tensor: return self
    def __abs__(self) -> Tensor: return _api().abs(self)
    def __invert__(self) -> Tensor: return _api().invert(self)
    def __lt__(self, o: Any) -> Tensor: return _api().less(self, o)
    def __le__(self, o: Any) -> Tensor: return _api().less_equal(self, o)
    def __gt__(self, o: Any) -> Tensor: return _api().greater(self, o)
    def __ge__(self, o: Any) -> Tensor: return _api().greater_equal(self, o)
    def __eq__(self, o: Any) -> Tensor: return _api().equal(self, o)  # type: ignore[override]
    def __ne__(self, o: Any) -> Tensor: return _api().not_equal(self, o)  # type: ignore[override]

    def __getitem__(self, index: Any) -> Tensor:
        from tensorjit.compiler.frontend.indexing import getitem

        return getitem(self, index)

    # --- methods ----------------------------------------------------------------------
    @property
    def T(self) -> Tensor:  # noqa: N802 (NumPy's name)
        return _api().transpose(self)

    def reshape(self, *shape: Any) -> Tensor:
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return _api().reshape(self, shape)

    def astype(self, dtype: Any) -> Tensor:
        return _api().astype(self, dtype)

    def transpose(self, *axes: Any) -> Tensor:
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return _api().transpose(self, axes or None)

    def sum(self, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Tensor:
        return _api().sum(self, axis=axis, dtype=dtype, keepdims=keepdims)

    def mean(self, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Tensor:
        return _api().mean(self, axis=axis, dtype=dtype, keepdims=keepdims)

    def max(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return _api().max(self, axis=axis, keepdims=keepdims)

    def min(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return _api().min(self, axis=axis, keepdims=keepdims)

    def prod(self, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Tensor:
        return _api().prod(self, axis=axis, dtype=dtype, keepdims=keepdims)

    def var(self, axis: Any = None, dtype: Any = None, ddof: int = 0,
            keepdims: bool = False) -> Tensor:
        return _api().var(self, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims)

    def std(self, axis: Any = None, dtype: Any = None, ddof: int = 0,
            keepdims: bool = False) -> Tensor:
        return _api().std(self, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims)

    def argmax(self, axis: Any = None) -> Tensor:
        return _api().argmax(self, axis=axis)

    def argmin(self, axis: Any = None) -> Tensor:
        return _api().argmin(self, axis=axis)

    def flatten(self) -> Tensor:
        return _api().reshape(self, (-1,))

    ravel = flatten

    def squeeze(self, axis: Any = None) -> Tensor:
        return _api().squeeze(self, axis)

    def clip(self, a_min: Any = None, a_max: Any = None) -> Tensor:
        return _api().clip(self, a_min, a_max)

    def swapaxes(self, a: int, b: int) -> Tensor:
        return _api().swapaxes(self, a, b)


def _api() -> Any:
    from tensorjit.compiler.frontend import numpy_api

    return numpy_api

"""``tj.trace``: run a NumPy-style function on Tensor proxies and record its graph."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tensorjit.compiler.frontend.lift import to_tensor, tracing_scope
from tensorjit.compiler.frontend.tensor import Tensor
from tensorjit.ir.build import param
from tensorjit.ir.dtypes import DType, as_dtype
from tensorjit.ir.errors import DTypeError, ShapeError, TensorJitError
from tensorjit.ir.graph import Graph
from tensorjit.ir.shapes import Shape, as_shape, format_shape
from tensorjit.ir.verifier import verify_graph


@dataclass(frozen=True)
class TensorSpec:
    """The shape and dtype of an argument; a str in the shape is a symbolic dim."""

    shape: Shape
    dtype: DType = DType.float32

    def __init__(self, shape: Sequence[int | str] | int | str, dtype: Any = "float32") -> None:
        object.__setattr__(self, "shape", as_shape(shape, "TensorSpec shape"))
        object.__setattr__(self, "dtype", as_dtype(dtype, "TensorSpec dtype"))

    def __repr__(self) -> str:
        return f"TensorSpec({self.dtype.short}{format_shape(self.shape)})"

    @staticmethod
    def of(value: Any, what: str = "argument") -> TensorSpec:
        if isinstance(value, TensorSpec):
            return value
        if isinstance(value, (bool, int, float)):
            value = np.asarray(value)
        if not hasattr(value, "shape") or not hasattr(value, "dtype"):
            raise DTypeError(f"{what}: expected a NumPy array or tj.TensorSpec, got "
                             f"{type(value).__name__}")
        return TensorSpec(tuple(value.shape), as_dtype(value.dtype, what))


def _arg_names(fn: Callable[..., Any], n: int) -> list[str]:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        params = []
    names = [p.name for p in params
             if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)][:n]
    return names + [f"arg{i}" for i in range(len(names), n)]


def trace(fn: Callable[..., Any], *specs: Any, name: str | None = None) -> Graph:
    """Trace ``fn`` on arguments described by ``specs`` (arrays or TensorSpecs)."""
    if isinstance(fn, Graph):
        return fn
    if not callable(fn):
        raise TensorJitError(f"trace: expected a function, got {type(fn).__name__}")
    names = _arg_names(fn, len(specs))
    tspecs = [TensorSpec.of(s, f"argument {i} ({names[i]})") for i, s in enumerate(specs)]
    params = tuple(param(i, names[i], s.shape, s.dtype) for i, s in enumerate(tspecs))
    weak = [isinstance(s, (bool, int, float)) for s in specs]  # Python scalars stay weak
    with tracing_scope():
        result = fn(*(Tensor(p, w) for p, w in zip(params, weak)))
    returns_tuple = isinstance(result, (tuple, list))
    results = list(result) if returns_tuple else [result]
    if not results:
        raise ShapeError(f"{getattr(fn, '__name__', 'function')} returned no outputs")
    outputs = tuple(to_tensor(r, f"output {i}").node for i, r in enumerate(results))
    graph = Graph(params, outputs, name or getattr(fn, "__name__", "fn"), returns_tuple)
    verify_graph(graph, "trace")
    return graph

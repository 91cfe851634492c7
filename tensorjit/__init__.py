"""tensorjit: NumPy-style Python -> fused, vectorized native code.

``import tensorjit as tj``; inside traced functions ``tj.NAME`` mirrors ``numpy.NAME``,
``tj.nn`` holds what NumPy lacks. See API.md for the contract.

Importing tensorjit does not import LLVM (llvmlite): the names that compile (``compile``,
``jit``, ``grad``, ``export``, ...) are imported on first use (``_LAZY`` below), so a
process that only loads AOT libraries (``tj.load``) or runs the interpreter never needs
llvmlite. Add a new compiling name to ``_LAZY``, not as an import here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tensorjit.compiler.frontend import nn
from tensorjit.compiler.frontend.numpy_api import *  # noqa: F403 (the NumPy mirror)
from tensorjit.compiler.frontend.numpy_api import __all__ as _numpy_names
from tensorjit.compiler.frontend.tensor import Tensor
from tensorjit.compiler.frontend.trace import TensorSpec, trace
from tensorjit.ir.dtypes import DType, bool_, float32, float64, int32, int64
from tensorjit.ir.errors import (
    DTypeError,
    ShapeError,
    TensorJitError,
    UnsupportedError,
    VerificationError,
)
from tensorjit.ir.graph import Graph
from tensorjit.ir.interpreter import interpret
from tensorjit.runtime.aot import load
from tensorjit.runtime.compiled import CompiledFunction

if TYPE_CHECKING:  # the lazy names, for type checkers
    from tensorjit.compiler.aot import Exported, export
    from tensorjit.compiler.api import JitFunction, compile, jit
    from tensorjit.compiler.autodiff_api import (
        clear_caches,
        grad,
        hessian,
        jvp,
        value_and_grad,
        vjp,
    )

__version__ = "0.1.0"

#: public name -> the module that defines it, imported on first access
_LAZY = {
    **dict.fromkeys(("JitFunction", "compile", "jit"), "tensorjit.compiler.api"),
    **dict.fromkeys(("clear_caches", "grad", "hessian", "jvp", "value_and_grad", "vjp"),
                    "tensorjit.compiler.autodiff_api"),
    **dict.fromkeys(("Exported", "export"), "tensorjit.compiler.aot"),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tensorjit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "CompiledFunction", "DType", "DTypeError", "Exported", "Graph", "JitFunction",
    "ShapeError", "Tensor", "TensorJitError", "TensorSpec", "UnsupportedError",
    "VerificationError", "bool_", "clear_caches", "compile", "export", "float32", "float64",
    "grad", "hessian", "int32", "int64", "interpret", "jit", "jvp", "load", "nn", "trace",
    "value_and_grad", "vjp",
    *_numpy_names,
]

"""tensorjit: NumPy-style Python -> fused, vectorized native code.

``import tensorjit as tj``; inside traced functions ``tj.NAME`` mirrors ``numpy.NAME``,
``tj.nn`` holds what NumPy lacks. See API.md for the contract.
"""

from tensorjit.compiler.api import JitFunction, compile, jit
from tensorjit.compiler.autodiff_api import grad, hessian, jvp, value_and_grad, vjp
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
from tensorjit.runtime.compiled import CompiledFunction

__version__ = "0.1.0"

__all__ = [
    "CompiledFunction", "DType", "DTypeError", "Graph", "JitFunction", "ShapeError", "Tensor",
    "TensorJitError", "TensorSpec", "UnsupportedError", "VerificationError", "bool_",
    "compile", "float32", "float64", "grad", "hessian", "int32", "int64", "interpret", "jit",
    "jvp", "nn", "trace", "value_and_grad", "vjp",
    *_numpy_names,
]

"""tensorjit.ir: the data of the compiler (graph IR, ops, dtypes, shapes, loop IR)."""

from tensorjit.ir.dtypes import DType, as_dtype
from tensorjit.ir.errors import (
    DTypeError,
    ShapeError,
    TensorJitError,
    UnsupportedError,
    VerificationError,
)
from tensorjit.ir.graph import ConstArray, Graph, Node, make_node, toposort

__all__ = [
    "ConstArray", "DType", "DTypeError", "Graph", "Node", "ShapeError", "TensorJitError",
    "UnsupportedError", "VerificationError", "as_dtype", "make_node", "toposort",
]

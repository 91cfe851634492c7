"""The NumPy-mirroring namespace: ``tj.NAME`` behaves as ``numpy.NAME``."""

from tensorjit.compiler.frontend.creation import (
    arange, eye, full, full_like, ones, ones_like, zeros, zeros_like,
)
from tensorjit.compiler.frontend.linalg import dot, einsum, matmul
from tensorjit.compiler.frontend.reductions import (
    amax, amin, argmax, argmin, max, mean, min, prod, std, sum, var,
)
from tensorjit.compiler.frontend.shape_ops import (
    broadcast_to, concatenate, expand_dims, flip, moveaxis, pad, reshape, split, squeeze,
    stack, swapaxes, take, transpose,
)
from tensorjit.compiler.frontend.ufuncs import (
    abs, absolute, add, arctan, astype, bitwise_and, bitwise_or, bitwise_xor, ceil, clip, cos,
    divide, equal, exp, expm1, floor, floor_divide, greater, greater_equal, invert, isfinite,
    isnan, less, less_equal, log, log1p, log2, logical_and, logical_not, logical_or, maximum,
    minimum, mod, multiply, negative, not_equal, power, reciprocal, remainder, sign, sin, sqrt,
    square, subtract, tan, tanh, true_divide, where,
)

cast = astype

__all__ = [
    "abs", "absolute", "add", "amax", "amin", "arange", "arctan", "argmax", "argmin",
    "astype", "bitwise_and", "bitwise_or", "bitwise_xor", "broadcast_to", "cast", "ceil",
    "clip", "concatenate", "cos", "divide", "dot", "einsum", "equal", "exp", "expand_dims",
    "expm1", "eye", "flip", "floor", "floor_divide", "full", "full_like", "greater",
    "greater_equal", "invert", "isfinite", "isnan", "less", "less_equal", "log", "log1p",
    "log2", "logical_and", "logical_not", "logical_or", "matmul", "max", "maximum", "mean",
    "min", "minimum", "mod", "moveaxis", "multiply", "negative", "not_equal", "ones",
    "ones_like", "pad", "power", "prod", "reciprocal", "remainder", "reshape", "sign", "sin",
    "split", "sqrt", "square", "squeeze", "stack", "std", "subtract", "sum", "swapaxes",
    "take", "tan", "tanh", "transpose", "true_divide", "var", "where", "zeros", "zeros_like",
]

"""``tj.nn``: what NumPy lacks, with ``torch.nn.functional``'s names, signatures and meaning.

Reductions accept ``dim=`` (PyTorch) or ``axis=`` (NumPy). Every function is written in
terms of the traced ops, so it fuses, differentiates and compiles like user code; each is
also usable on plain NumPy arrays outside a traced function.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tensorjit.compiler.frontend import numpy_api as tnp
from tensorjit.compiler.frontend.lift import any_tensor, emit, to_tensor
from tensorjit.compiler.frontend.tensor import Tensor
from tensorjit.ir.errors import ShapeError, UnsupportedError


def _t(x: Any) -> Tensor | np.ndarray:
    """Tensors stay; anything else becomes an array so tnp's NumPy fallback applies."""
    return x if any_tensor(x) else np.asarray(x)


def _unary(op: str, x: Any, np_fn: Any) -> Any:
    if not any_tensor(x):
        return np_fn(np.asarray(x))
    t = to_tensor(x)
    from tensorjit.compiler.frontend.lift import cast
    from tensorjit.ir.dtypes import float_of

    return emit(op, [cast(t, float_of(t.dtype))])


def _dim(dim: int | None, axis: int | None, default: int | None = None) -> int | None:
    if dim is not None and axis is not None and dim != axis:
        raise ShapeError(f"give dim= or axis=, not both ({dim} vs {axis})")
    return dim if dim is not None else (axis if axis is not None else default)


def relu(input: Any, inplace: bool = False) -> Any:  # noqa: A002 (torch's name)
    """max(x, 0); NaN stays NaN; the gradient at 0 is 0 (as JAX and PyTorch).

    Written as a select, not ``maximum(x, 0)``: the VJP of ``maximum`` splits a tie
    0.5/0.5 (JAX's rule for ``lax.max``), while relu'(0) is 0 by convention."""
    x = _t(input)
    return tnp.where(tnp.less_equal(x, 0), 0, x)


def relu6(input: Any, inplace: bool = False) -> Any:  # noqa: A002
    return hardtanh(input, 0.0, 6.0)


def leaky_relu(input: Any, negative_slope: float = 0.01, inplace: bool = False) -> Any:  # noqa: A002
    x = _t(input)
    return tnp.where(tnp.greater(x, 0), x, tnp.multiply(x, negative_slope))


def elu(input: Any, alpha: float = 1.0, inplace: bool = False) -> Any:  # noqa: A002
    x = _t(input)
    return tnp.where(tnp.greater(x, 0), x, tnp.multiply(tnp.expm1(x), alpha))


def selu(input: Any, inplace: bool = False) -> Any:  # noqa: A002
    alpha = 1.6732632423543772848170429916717
    scale = 1.0507009873554804934193349852946
    return tnp.multiply(elu(input, alpha), scale)


def celu(input: Any, alpha: float = 1.0, inplace: bool = False) -> Any:  # noqa: A002
    x = _t(input)
    neg = tnp.multiply(tnp.expm1(tnp.true_divide(x, alpha)), alpha)
    return tnp.add(tnp.maximum(x, 0), tnp.minimum(neg, 0))


def gelu(input: Any, approximate: str = "none") -> Any:  # noqa: A002
    x = _t(input)
    if approximate == "none":
        inner = erf(tnp.multiply(x, 1 / math.sqrt(2.0)))
    elif approximate == "tanh":
        cube = tnp.multiply(tnp.multiply(x, x), x)
        inner = tnp.tanh(tnp.multiply(tnp.add(x, tnp.multiply(cube, 0.044715)),
                                      math.sqrt(2.0 / math.pi)))
    else:
        raise UnsupportedError(f"gelu: approximate must be 'none' or 'tanh', "
                               f"got {approximate!r}")
    return tnp.multiply(tnp.multiply(x, 0.5), tnp.add(inner, 1.0))


def erf(input: Any) -> Any:  # noqa: A002
    return _unary("erf", input, np.vectorize(math.erf, otypes=[float]))


def sigmoid(input: Any) -> Any:  # noqa: A002
    """1 / (1 + exp(-x)), computed without overflow for either sign."""
    return _unary("sigmoid", input, lambda a: 1.0 / (1.0 + np.exp(-a)))


def hardsigmoid(input: Any, inplace: bool = False) -> Any:  # noqa: A002
    return tnp.clip(tnp.add(tnp.true_divide(_t(input), 6.0), 0.5), 0.0, 1.0)


def hardswish(input: Any, inplace: bool = False) -> Any:  # noqa: A002
    return tnp.multiply(_t(input), hardsigmoid(input))


def silu(input: Any, inplace: bool = False) -> Any:  # noqa: A002
    return tnp.multiply(_t(input), sigmoid(input))


def softplus(input: Any, beta: float = 1.0, threshold: float = 20.0) -> Any:  # noqa: A002
    """log(1 + exp(beta*x)) / beta, and x itself where beta*x > threshold (PyTorch)."""
    x = _t(input)
    bx = tnp.multiply(x, beta) if beta != 1.0 else x
    stable = tnp.add(tnp.maximum(bx, 0), tnp.log1p(tnp.exp(tnp.negative(tnp.abs(bx)))))
    soft = tnp.true_divide(stable, beta) if beta != 1.0 else stable
    return tnp.where(tnp.greater(bx, threshold), x, soft)


def mish(input: Any, inplace: bool = False) -> Any:  # noqa: A002
    return tnp.multiply(_t(input), tnp.tanh(softplus(input)))


def softsign(input: Any) -> Any:  # noqa: A002
    x = _t(input)
    return tnp.true_divide(x, tnp.add(tnp.abs(x), 1))


def tanh(input: Any) -> Any:  # noqa: A002
    return tnp.tanh(_t(input))


def hardtanh(input: Any, min_val: float = -1.0, max_val: float = 1.0,  # noqa: A002
             inplace: bool = False) -> Any:
    return tnp.clip(_t(input), min_val, max_val)


def tanhshrink(input: Any) -> Any:  # noqa: A002
    x = _t(input)
    return tnp.subtract(x, tnp.tanh(x))


def logsigmoid(input: Any) -> Any:  # noqa: A002
    return tnp.negative(softplus(tnp.negative(_t(input))))


def _stable_max(x: Any, dim: int) -> Any:
    # An infinite max would turn x - max into NaN; shift by 0 there instead (PyTorch does).
    m = tnp.max(x, axis=dim, keepdims=True)
    return tnp.where(tnp.isfinite(m), m, 0)


def _softmax_dim(x: Any, dim: int | None) -> int:
    if dim is None:
        # PyTorch's legacy implicit choice: dim 0 for rank 0, 1 and 3, else 1.
        ndim = x.ndim
        return 0 if ndim in (0, 1, 3) else 1
    return dim


def softmax(input: Any, dim: int | None = None, dtype: Any = None, *,  # noqa: A002
            axis: int | None = None) -> Any:
    x = _t(input)
    if dtype is not None:
        x = tnp.astype(x, dtype)
    d = _softmax_dim(x, _dim(dim, axis))
    e = tnp.exp(tnp.subtract(x, _stable_max(x, d)))
    return tnp.true_divide(e, tnp.sum(e, axis=d, keepdims=True))


def log_softmax(input: Any, dim: int | None = None, dtype: Any = None, *,  # noqa: A002
                axis: int | None = None) -> Any:
    x = _t(input)
    if dtype is not None:
        x = tnp.astype(x, dtype)
    d = _softmax_dim(x, _dim(dim, axis))
    shifted = tnp.subtract(x, _stable_max(x, d))
    return tnp.subtract(shifted, tnp.log(tnp.sum(tnp.exp(shifted), axis=d, keepdims=True)))


def logsumexp(input: Any, dim: Any = None, keepdim: bool = False, *,  # noqa: A002
              axis: Any = None, keepdims: bool | None = None) -> Any:
    """log(sum(exp(x))) over ``dim``/``axis`` (all axes when neither is given)."""
    x = _t(input)
    d = _dim(dim, axis)
    keep = keepdim if keepdims is None else keepdims
    axes = tuple(range(x.ndim)) if d is None else d
    m = tnp.max(x, axis=axes, keepdims=True)
    m = tnp.where(tnp.isfinite(m), m, 0)
    s = tnp.log(tnp.sum(tnp.exp(tnp.subtract(x, m)), axis=axes, keepdims=True))
    out = tnp.add(s, m)
    if not keep:
        out = tnp.squeeze(out, axis=axes)
    return out


def linear(input: Any, weight: Any, bias: Any = None) -> Any:  # noqa: A002
    """input @ weight.T + bias (weight is [out_features, in_features], as in PyTorch)."""
    out = tnp.matmul(_t(input), tnp.transpose(_t(weight)))
    return out if bias is None else tnp.add(out, _t(bias))


def layer_norm(input: Any, normalized_shape: Any, weight: Any = None,  # noqa: A002
               bias: Any = None, eps: float = 1e-5) -> Any:
    x = _t(input)
    n = 1 if isinstance(normalized_shape, int) else len(tuple(normalized_shape))
    axes = tuple(range(x.ndim - n, x.ndim))
    mean = tnp.mean(x, axis=axes, keepdims=True)
    d = tnp.subtract(x, mean)
    var = tnp.mean(tnp.multiply(d, d), axis=axes, keepdims=True)
    out = tnp.multiply(d, tnp.true_divide(1.0, tnp.sqrt(tnp.add(var, eps))))
    if weight is not None:
        out = tnp.multiply(out, _t(weight))
    if bias is not None:
        out = tnp.add(out, _t(bias))
    return out


def mse_loss(input: Any, target: Any, reduction: str = "mean") -> Any:  # noqa: A002
    d = tnp.subtract(_t(input), _t(target))
    sq = tnp.multiply(d, d)
    if reduction == "mean":
        return tnp.mean(sq)
    if reduction == "sum":
        return tnp.sum(sq)
    if reduction == "none":
        return sq
    raise UnsupportedError(f"mse_loss: reduction must be 'mean', 'sum' or 'none', "
                           f"got {reduction!r}")


from tensorjit.compiler.frontend.conv import avg_pool2d, conv2d, max_pool2d  # noqa: E402, F401
from tensorjit.compiler.frontend.nn_training import (  # noqa: E402, F401
    batch_norm,
    batch_norm_update_stats,
    cross_entropy,
    dropout,
    embedding,
    nll_loss,
)

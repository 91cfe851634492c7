"""``tj.nn`` pieces for training: cross_entropy, nll_loss, embedding, dropout and
batch_norm, with ``torch.nn.functional``'s signatures and meaning.

They are written in traced ops like the rest of ``tj.nn`` (so they fuse and differentiate):
class-index losses pick the target's log-probability with a one-hot select (an ``eq``
against the class index, summed over the class axis), whose gradient is the same select;
dropout draws its mask from a counter-based hash of (seed, element index) made of integer
ops, so it is deterministic, needs no random-number op and gives the same mask in
compiled code and in the reference interpreter (not PyTorch's mask, which depends on its
generator's state). Outside a traced function each falls back to NumPy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tensorjit.compiler.frontend import numpy_api as tnp
from tensorjit.compiler.frontend.lift import any_tensor, to_tensor
from tensorjit.compiler.frontend.tensor import Tensor, user_location
from tensorjit.ir.build import iota
from tensorjit.ir.dtypes import DType
from tensorjit.ir.errors import DTypeError, ShapeError, UnsupportedError

_REDUCTIONS = ("mean", "sum", "none")


def _index_along(like: Any, axis: int) -> Any:
    """The index along ``axis`` at every position of an array shaped like ``like``."""
    if isinstance(like, Tensor):
        return Tensor(iota(like.shape, axis, loc=user_location()))
    shape = _shape(like)
    view = [1] * len(shape)
    view[axis] = shape[axis]
    return np.broadcast_to(np.arange(shape[axis]).reshape(view), shape)


def _shape(x: Any) -> tuple:
    return tuple(x.shape) if isinstance(x, Tensor) else np.shape(x)


def _class_axis(x: Any) -> int:
    return 1 if len(_shape(x)) >= 2 else 0


def _check_reduction(reduction: str, what: str) -> None:
    if reduction not in _REDUCTIONS:
        raise UnsupportedError(f"{what}: reduction must be 'mean', 'sum' or 'none', got "
                               f"{reduction!r}")


def _as(x: Any) -> Any:
    return x if any_tensor(x) else np.asarray(x)


def _weights_at_target(hot: Any, weight: Any, axis: int, ndim: int) -> Any:
    """weight[target] at every sample (the one-hot row summed against the weights)."""
    shape = [1] * ndim
    shape[axis] = -1
    w = tnp.reshape(_as(weight), tuple(shape))
    return tnp.sum(tnp.where(hot, w, 0.0), axis=axis)


def _check_target(x: Any, target: Any, axis: int, what: str) -> None:
    xs, ts = _shape(x), _shape(target)
    want = xs[:axis] + xs[axis + 1:]
    if ts != want:
        raise ShapeError(f"{what}: target of shape {list(ts)} does not match input of shape "
                         f"{list(xs)} (expected {list(want)}) (at {user_location()})")


def nll_loss(input: Any, target: Any, weight: Any = None, size_average: Any = None,  # noqa: A002
             ignore_index: int = -100, reduce: Any = None, reduction: str = "mean") -> Any:
    """Negative log-likelihood of class-index targets: input holds log-probabilities,
    (C,), (N, C) or (N, C, d1, ...); target (), (N) or (N, d1, ...) of integers."""
    _check_reduction(reduction, "nll_loss")
    x, t = _as(input), _as(target)
    axis = _class_axis(x)
    _check_target(x, t, axis, "nll_loss")
    dt = t.dtype if isinstance(t, Tensor) else None
    if (dt is not None and not dt.is_int) or (dt is None and t.dtype.kind not in "iu"):
        raise DTypeError(f"nll_loss: target must hold class indices (integers), got "
                         f"{dt or t.dtype} (at {user_location()})")
    t64 = tnp.astype(t, "int64")
    hot = tnp.equal(tnp.expand_dims(t64, axis), _index_along(x, axis))
    picked = tnp.sum(tnp.where(hot, x, 0.0), axis=axis)
    valid = tnp.not_equal(t64, ignore_index)
    w = _weights_at_target(hot, weight, axis, len(_shape(x))) if weight is not None \
        else tnp.ones_like(picked)
    w = tnp.where(valid, w, 0.0)
    losses = tnp.negative(tnp.multiply(picked, w))
    if reduction == "none":
        return losses
    if reduction == "sum":
        return tnp.sum(losses)
    return tnp.true_divide(tnp.sum(losses), tnp.sum(w))


def cross_entropy(input: Any, target: Any, weight: Any = None,  # noqa: A002
                  size_average: Any = None, ignore_index: int = -100, reduce: Any = None,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Any:
    """torch.nn.functional.cross_entropy: log_softmax over the class axis (1, or 0 for a
    single sample) and the negative log-likelihood of the target. Targets are class
    indices (integers, ``ignore_index`` skipped) or class probabilities (floats, the
    input's shape). ``label_smoothing`` mixes in the uniform distribution as PyTorch
    does (its weighted and ignored-sample normalization included)."""
    from tensorjit.compiler.frontend.nn import log_softmax

    _check_reduction(reduction, "cross_entropy")
    x = _as(input)
    axis = _class_axis(x)
    logp = log_softmax(x, dim=axis)
    t = _as(target)
    t_dtype = t.dtype if isinstance(t, Tensor) else DType.float64 \
        if np.asarray(t).dtype.kind == "f" else DType.int64
    x_shape = _shape(x)
    n_classes = x_shape[axis]
    if not isinstance(n_classes, int):
        raise UnsupportedError("cross_entropy: the number of classes must be static")
    ndim = len(x_shape)
    if t_dtype.is_float:
        return _soft_cross_entropy(logp, t, weight, axis, ndim, reduction, label_smoothing,
                                   n_classes)
    nll = nll_loss(logp, t, weight, ignore_index=ignore_index, reduction=reduction)
    if label_smoothing == 0.0:
        return nll
    w_shape = [1] * ndim
    w_shape[axis] = -1
    wc = logp if weight is None else tnp.multiply(logp, tnp.reshape(_as(weight),
                                                                     tuple(w_shape)))
    valid = tnp.not_equal(tnp.astype(t, "int64"), ignore_index)
    smooth = tnp.where(valid, tnp.negative(tnp.sum(wc, axis=axis)), 0.0)
    if reduction == "none":
        total = smooth
    elif reduction == "sum":
        total = tnp.sum(smooth)
    else:
        if weight is None:
            denom = tnp.sum(tnp.astype(valid, logp.dtype if isinstance(logp, Tensor)
                                       else np.float64))
        else:
            hot = tnp.equal(tnp.expand_dims(tnp.astype(t, "int64"), axis),
                            _index_along(x, axis))
            denom = tnp.sum(tnp.where(valid, _weights_at_target(hot, weight, axis, ndim),
                                      0.0))
        total = tnp.true_divide(tnp.sum(smooth), denom)
    return tnp.add(tnp.multiply(nll, 1.0 - label_smoothing),
                   tnp.multiply(total, label_smoothing / n_classes))


def _soft_cross_entropy(logp: Any, target: Any, weight: Any, axis: int, ndim: int,
                        reduction: str, label_smoothing: float, n_classes: int) -> Any:
    """Probability targets: -sum_c w_c * t_c * log p_c per sample; 'mean' divides by the
    number of samples (PyTorch's rule for probability targets)."""
    t = target
    if label_smoothing:
        t = tnp.add(tnp.multiply(t, 1.0 - label_smoothing), label_smoothing / n_classes)
    terms = tnp.multiply(logp, t)
    if weight is not None:
        shape = [1] * ndim
        shape[axis] = -1
        terms = tnp.multiply(terms, tnp.reshape(_as(weight), tuple(shape)))
    losses = tnp.negative(tnp.sum(terms, axis=axis))
    if reduction == "none":
        return losses
    if reduction == "sum":
        return tnp.sum(losses)
    return tnp.mean(losses)


def embedding(input: Any, weight: Any, padding_idx: int | None = None,  # noqa: A002
              max_norm: float | None = None, norm_type: float = 2.0,
              scale_grad_by_freq: bool = False, sparse: bool = False) -> Any:
    """Rows of ``weight`` (num_embeddings, dim) at the integer indices ``input``: the
    result has shape input.shape + (dim,). Its gradient with respect to ``weight`` is a
    scatter-add (see the ``take`` VJP). ``padding_idx`` (a row without gradient) and
    ``max_norm`` (renormalizing rows in place) are not supported."""
    if padding_idx is not None or max_norm is not None or scale_grad_by_freq or sparse:
        raise UnsupportedError("embedding: padding_idx, max_norm, scale_grad_by_freq and "
                               "sparse are not supported")
    if not any_tensor(input, weight):
        return np.asarray(weight)[np.asarray(input)]
    return tnp.take(to_tensor(weight), input, axis=0)


def batch_norm(input: Any, running_mean: Any, running_var: Any, weight: Any = None,  # noqa: A002
               bias: Any = None, training: bool = False, momentum: float = 0.1,
               eps: float = 1e-5) -> Any:
    """Normalize each channel (axis 1 of (N, C, ...)): with the running statistics for
    inference, with the batch's mean and biased variance when ``training``. Traced code
    cannot update ``running_mean``/``running_var`` in place as PyTorch does; use
    ``batch_norm_update_stats`` for the new running statistics."""
    x = _as(input)
    ndim = len(_shape(x))
    if ndim < 2:
        raise ShapeError(f"batch_norm: expected (N, C, ...) input, got {ndim}-D")
    shape = (1, -1) + (1,) * (ndim - 2)
    axes = (0,) + tuple(range(2, ndim))
    if training:
        mean = tnp.mean(x, axis=axes, keepdims=True)
        centered = tnp.subtract(x, mean)
        var = tnp.mean(tnp.multiply(centered, centered), axis=axes, keepdims=True)
    else:
        if running_mean is None or running_var is None:
            raise ShapeError("batch_norm: inference needs running_mean and running_var")
        centered = tnp.subtract(x, tnp.reshape(_as(running_mean), shape))
        var = tnp.reshape(_as(running_var), shape)
    out = tnp.multiply(centered, tnp.true_divide(1.0, tnp.sqrt(tnp.add(var, eps))))
    if weight is not None:
        out = tnp.multiply(out, tnp.reshape(_as(weight), shape))
    if bias is not None:
        out = tnp.add(out, tnp.reshape(_as(bias), shape))
    return out


def batch_norm_update_stats(input: Any, running_mean: Any, running_var: Any,  # noqa: A002
                            momentum: float = 0.1) -> tuple[Any, Any]:
    """The running statistics PyTorch's training-mode batch_norm would store:
    ``(1 - momentum) * running + momentum * batch`` with the unbiased batch variance."""
    x = _as(input)
    shape = _shape(x)
    ndim = len(shape)
    axes = (0,) + tuple(range(2, ndim))
    count = 1
    for a in axes:
        if not isinstance(shape[a], int):
            raise UnsupportedError("batch_norm_update_stats: symbolic batch or spatial dims")
        count *= shape[a]
    mean = tnp.mean(x, axis=axes)
    var = tnp.var(x, axis=axes, ddof=1 if count > 1 else 0)
    return (tnp.add(tnp.multiply(_as(running_mean), 1.0 - momentum), tnp.multiply(mean, momentum)),
            tnp.add(tnp.multiply(_as(running_var), 1.0 - momentum), tnp.multiply(var, momentum)))


# splitmix64's constants as signed int64 (Python ints outside int64 would not convert).
def _i64(c: int) -> int:
    return c - (1 << 64) if c >= 1 << 63 else c


_GOLDEN = _i64(0x9E3779B97F4A7C15)
_MIX1 = _i64(0xBF58476D1CE4E5B9)
_MIX2 = _i64(0x94D049BB133111EB)


def _shr(z: Any, k: int) -> Any:
    """Logical right shift of int64 values: floor division is an arithmetic shift, and the
    mask clears the copies of the sign bit."""
    return tnp.bitwise_and(tnp.floor_divide(z, 1 << k), (1 << (64 - k)) - 1)


def _mix(z: Any) -> Any:
    """splitmix64's finalizer (a bijection of int64 with good avalanche)."""
    z = tnp.multiply(tnp.bitwise_xor(z, _shr(z, 30)), _MIX1)
    z = tnp.multiply(tnp.bitwise_xor(z, _shr(z, 27)), _MIX2)
    return tnp.bitwise_xor(z, _shr(z, 31))


def uniform_hash(like: Any, seed: Any) -> Any:
    """A float64 in [0, 1) per element of ``like``, a hash of (seed, element index):
    deterministic, and the same in compiled code, the interpreter and NumPy."""
    ndim = len(_shape(like))
    h = tnp.multiply(tnp.add(tnp.astype(seed, "int64"), 1), _GOLDEN)
    for axis in range(ndim):
        h = _mix(tnp.add(tnp.multiply(h, _GOLDEN), _index_along(like, axis)))
    if ndim == 0:
        h = _mix(h)
    bits = _shr(h, 11)  # the top 53 bits
    return tnp.multiply(tnp.astype(bits, "float64"), 2.0 ** -53)


def dropout(input: Any, p: float = 0.5, training: bool = True,  # noqa: A002
            inplace: bool = False, *, seed: Any = 0) -> Any:
    """Zero each element with probability ``p`` and scale the rest by 1 / (1 - p) when
    ``training``. The mask is a hash of ``seed`` (a Python int or a traced integer, so a
    training loop can pass a new seed per step without recompiling) and the element's
    index: the same seed gives the same mask."""
    if not 0.0 <= p <= 1.0:
        raise ShapeError(f"dropout probability has to be between 0 and 1, but got {p}")
    x = _as(input)
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return tnp.multiply(x, 0.0)
    keep = tnp.greater_equal(uniform_hash(x, seed), p)
    return tnp.where(keep, tnp.multiply(x, 1.0 / (1.0 - p)), 0.0)

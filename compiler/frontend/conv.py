"""Convolution and pooling over NCHW tensors, with ``torch.nn.functional``'s signatures.

All three are built from one movement op, ``window`` (every sliding window of the last two
axes, an im2col that is only an index map). A convolution is then a matmul of the
weights with those windows: the GEMM (one per image) packs each panel of windows straight
from the input into an L1-sized stack buffer just before using it, so the im2col matrix
is never written out, and bias, batch norm and activation that follow fuse into the
GEMM's store. We chose this over a direct convolution on a blocked layout because it
reuses the tuned GEMM micro-kernel and keeps NCHW in and out (a blocked layout would add
two layout transforms per conv); for the 3x3, 64-channel block of bench/bench_gemm.py,
perf puts ~78% of the time in the micro-kernel and ~10% in packing the windows (1
thread). Pooling is a reduction over the window axes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tensorjit.compiler.frontend import numpy_api as tnp
from tensorjit.compiler.frontend.lift import any_tensor, emit, result_dtype, to_tensor
from tensorjit.compiler.frontend.tensor import Tensor, user_location
from tensorjit.ir.dtypes import DType
from tensorjit.ir.errors import ShapeError, UnsupportedError


def _pair(value: Any, what: str) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    pair = tuple(int(v) for v in value)
    if len(pair) != 2:
        raise ShapeError(f"{what}: expected an int or a pair, got {value!r}")
    return pair  # type: ignore[return-value]


def _window(x: Tensor, kernel: tuple[int, int], stride: tuple[int, int],
            padding: tuple[int, int], dilation: tuple[int, int], value: float) -> Tensor:
    return emit("window", [x], {"kernel": kernel, "stride": stride, "padding": padding,
                                "dilation": dilation, "value": value})


def _batched(x: Tensor, what: str) -> tuple[Tensor, bool]:
    if x.ndim == 3:
        return tnp.expand_dims(x, 0), True
    if x.ndim != 4:
        raise ShapeError(f"{what}: expected an (N, C, H, W) or (C, H, W) input, got "
                         f"{x.ndim}-D (at {user_location()})")
    return x, False


def conv2d(input: Any, weight: Any, bias: Any = None, stride: Any = 1,  # noqa: A002
           padding: Any = 0, dilation: Any = 1, groups: int = 1) -> Any:
    """torch.nn.functional.conv2d: input (N, C, H, W), weight (O, C / groups, KH, KW)."""
    if not any_tensor(input, weight, bias):
        raise UnsupportedError("conv2d outside a traced function: call it inside tj.jit")
    x, unbatched = _batched(to_tensor(input), "conv2d")
    w = to_tensor(weight)
    if w.ndim != 4:
        raise ShapeError(f"conv2d: weight must be (O, C/groups, KH, KW), got {w.shape}")
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    if not all(isinstance(d, int) for d in (c, h, wd, o, cg, kh, kw)):
        raise UnsupportedError("conv2d: channels, spatial sizes and the kernel must be "
                               "static (the batch may be symbolic)")
    if groups < 1 or c % groups or o % groups or cg != c // groups:
        raise ShapeError(f"conv2d: input has {c} channels, weight {w.shape} and groups="
                         f"{groups} do not fit (need C == groups * weight.shape[1] and O "
                         f"divisible by groups) (at {user_location()})")
    st, dl = _pair(stride, "stride"), _pair(dilation, "dilation")
    if padding == "valid":
        pad = (0, 0)
    elif padding == "same":
        if st != (1, 1):
            raise UnsupportedError("conv2d: padding='same' needs stride 1 (as in PyTorch)")
        if any(dl[i] * (k - 1) % 2 for i, k in enumerate((kh, kw))):
            raise UnsupportedError("conv2d: padding='same' with an even receptive field "
                                   "needs asymmetric padding, which is not supported")
        pad = (dl[0] * (kh - 1) // 2, dl[1] * (kw - 1) // 2)
    else:
        pad = _pair(padding, "padding")
    dt = result_dtype([x, w])
    x, w = tnp.astype(x, dt), tnp.astype(w, dt)
    win = _window(x, (kh, kw), st, pad, dl, 0)  # (N, C, OH, OW, KH, KW)
    oh, ow = win.shape[2], win.shape[3]
    og = o // groups
    win = tnp.reshape(win, (n, groups, cg, oh, ow, kh, kw))
    cols = tnp.reshape(tnp.transpose(win, (0, 1, 2, 5, 6, 3, 4)),
                       (n, groups, cg * kh * kw, oh * ow))
    wm = tnp.reshape(w, (groups, og, cg * kh * kw))
    out = tnp.reshape(tnp.matmul(wm, cols), (n, o, oh, ow))
    if bias is not None:
        out = tnp.add(out, tnp.reshape(to_tensor(bias), (1, o, 1, 1)))
    return tnp.squeeze(out, 0) if unbatched else out


def _pool_args(kernel_size: Any, stride: Any, padding: Any, dilation: Any,
               ceil_mode: bool, what: str) -> tuple:
    if ceil_mode:
        raise UnsupportedError(f"{what}: ceil_mode=True is not supported")
    k = _pair(kernel_size, "kernel_size")
    s = k if stride is None or stride == [] else _pair(stride, "stride")
    p = _pair(padding, "padding")
    if any(p[i] > k[i] // 2 for i in range(2)):
        raise ShapeError(f"{what}: padding should be at most half of the kernel size, got "
                         f"padding {p} for kernel {k} (as PyTorch)")
    return k, s, p, _pair(dilation, "dilation")


def max_pool2d(input: Any, kernel_size: Any, stride: Any = None, padding: Any = 0,  # noqa: A002
               dilation: Any = 1, ceil_mode: bool = False, return_indices: bool = False) -> Any:
    """torch.nn.functional.max_pool2d (padding reads as -inf; NaN propagates)."""
    if return_indices:
        raise UnsupportedError("max_pool2d: return_indices=True is not supported")
    x, unbatched = _batched(to_tensor(input), "max_pool2d")
    k, s, p, d = _pool_args(kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d")
    low = -np.inf if x.dtype.is_float else int(np.iinfo(x.dtype.np).min) \
        if x.dtype is not DType.bool else False
    win = _window(x, k, s, p, d, low)
    out = tnp.max(win, axis=(-2, -1))
    return tnp.squeeze(out, 0) if unbatched else out


def avg_pool2d(input: Any, kernel_size: Any, stride: Any = None, padding: Any = 0,  # noqa: A002
               ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> Any:
    """torch.nn.functional.avg_pool2d."""
    x, unbatched = _batched(to_tensor(input), "avg_pool2d")
    k, s, p, d = _pool_args(kernel_size, stride, padding, 1, ceil_mode, "avg_pool2d")
    if not x.dtype.is_float:
        raise UnsupportedError("avg_pool2d: integer inputs (PyTorch rounds; cast first)")
    total = tnp.sum(_window(x, k, s, p, d, 0), axis=(-2, -1))
    if divisor_override:
        out = tnp.true_divide(total, float(divisor_override))
    elif count_include_pad or p == (0, 0):
        out = tnp.true_divide(total, float(k[0] * k[1]))
    else:
        h, w = x.shape[-2:]
        ones = np.pad(np.ones((h, w)), [p, p])
        counts = np.lib.stride_tricks.sliding_window_view(ones, k)[::s[0], ::s[1]].sum((-2, -1))
        out = tnp.true_divide(total, counts.astype(x.dtype.np))
    return tnp.squeeze(out, 0) if unbatched else out

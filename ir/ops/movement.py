"""Movement ops: index maps that fuse into their consumers instead of copying."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tensorjit.ir.errors import DTypeError, ShapeError
from tensorjit.ir.ops.registry import Category, OpDef, TypeInfo, register
from tensorjit.ir.shapes import broadcast_shapes, format_shape, numel


def _infer_reshape(inputs: Sequence[TypeInfo], attrs: dict[str, Any]) -> TypeInfo:
    t = inputs[0]
    shape = attrs["shape"]
    if numel(shape) != numel(t.shape):
        raise ShapeError(f"reshape: cannot reshape {format_shape(t.shape)} "
                         f"into {format_shape(shape)}")
    return TypeInfo(shape, t.dtype)


def _ref_reshape(args: Sequence[np.ndarray], attrs: dict, out: TypeInfo) -> np.ndarray:
    return args[0].reshape(out.shape)


def _infer_transpose(inputs: Sequence[TypeInfo], attrs: dict[str, Any]) -> TypeInfo:
    t = inputs[0]
    perm = attrs["perm"]
    if sorted(perm) != list(range(len(t.shape))):
        raise ShapeError(f"transpose: {perm} is not a permutation of the axes of "
                         f"{format_shape(t.shape)}")
    return TypeInfo(tuple(t.shape[p] for p in perm), t.dtype)


def _ref_transpose(args: Sequence[np.ndarray], attrs: dict, out: TypeInfo) -> np.ndarray:
    return np.transpose(args[0], attrs["perm"])


def _infer_broadcast(inputs: Sequence[TypeInfo], attrs: dict[str, Any]) -> TypeInfo:
    t = inputs[0]
    shape = attrs["shape"]
    if len(shape) < len(t.shape) or broadcast_shapes(t.shape, shape) != shape:
        raise ShapeError(f"broadcast_to: cannot broadcast {format_shape(t.shape)} "
                         f"to {format_shape(shape)}")
    return TypeInfo(shape, t.dtype)


def _ref_broadcast(args: Sequence[np.ndarray], attrs: dict, out: TypeInfo) -> np.ndarray:
    return np.broadcast_to(args[0], out.shape)


def _infer_slice(inputs: Sequence[TypeInfo], attrs: dict[str, Any]) -> TypeInfo:
    """attrs: starts, stops, steps per axis, already normalized like ``range``."""
    t = inputs[0]
    out = []
    for d, start, stop, step in zip(t.shape, attrs["starts"], attrs["stops"], attrs["steps"]):
        if (start, stop, step) == (0, d, 1):
            out.append(d)
            continue
        if isinstance(d, str):
            raise ShapeError(f"slice: slicing symbolic dim {d!r} is not supported")
        out.append(len(range(start, stop, step)))
    return TypeInfo(tuple(out), t.dtype)


def _ref_slice(args: Sequence[np.ndarray], attrs: dict, out: TypeInfo) -> np.ndarray:
    # A symbolic stop is a whole symbolic axis (the only slice of one that is allowed).
    idx = tuple(
        slice(s, None if isinstance(e, str) or (p < 0 and e < 0) else e, p)
        for s, e, p in zip(attrs["starts"], attrs["stops"], attrs["steps"])
    )
    return args[0][idx]


def _infer_pad(inputs: Sequence[TypeInfo], attrs: dict[str, Any]) -> TypeInfo:
    t = inputs[0]
    pads = attrs["pads"]
    out = []
    for d, (lo, hi) in zip(t.shape, pads):
        if (lo, hi) == (0, 0):
            out.append(d)
        elif isinstance(d, str):
            raise ShapeError(f"pad: padding symbolic dim {d!r} is not supported")
        else:
            out.append(d + lo + hi)
    return TypeInfo(tuple(out), t.dtype)


def _ref_pad(args: Sequence[np.ndarray], attrs: dict, out: TypeInfo) -> np.ndarray:
    return np.pad(args[0], attrs["pads"], constant_values=attrs["value"])


def _infer_concat(inputs: Sequence[TypeInfo], attrs: dict[str, Any]) -> TypeInfo:
    axis = attrs["axis"]
    first = inputs[0]
    total = 0
    for k, t in enumerate(inputs):
        if t.dtype != first.dtype:
            raise DTypeError(f"concat: operand {k} is {t.dtype}, expected {first.dtype}")
        if len(t.shape) != len(first.shape) or any(
            a != b for i, (a, b) in enumerate(zip(t.shape, first.shape)) if i != axis
        ):
            raise ShapeError(f"concat: operand {k} has shape {format_shape(t.shape)}, "
                             f"incompatible with {format_shape(first.shape)} along axis {axis}")
        d = t.shape[axis]
        if isinstance(d, str):
            raise ShapeError(f"concat: concatenating along symbolic dim {d!r} is not supported")
        total += d
    shape = list(first.shape)
    shape[axis] = total
    return TypeInfo(tuple(shape), first.dtype)


def _ref_concat(args: Sequence[np.ndarray], attrs: dict, out: TypeInfo) -> np.ndarray:
    return np.concatenate(args, axis=attrs["axis"])


def _infer_take(inputs: Sequence[TypeInfo], attrs: dict[str, Any]) -> TypeInfo:
    data, idx = inputs
    if not idx.dtype.is_int:
        raise DTypeError(f"take: indices must be integers, got {idx.dtype}")
    axis = attrs["axis"]
    shape = data.shape[:axis] + idx.shape + data.shape[axis + 1:]
    return TypeInfo(shape, data.dtype)


def _ref_take(args: Sequence[np.ndarray], attrs: dict, out: TypeInfo) -> np.ndarray:
    data, idx = args
    n = data.shape[attrs["axis"]]
    # Compiled code never reads out of bounds: indices are wrapped once (negative
    # indices count from the end, as in NumPy) and then clipped.
    return np.take(data, np.clip(np.where(idx < 0, idx + n, idx), 0, max(n - 1, 0)),
                   axis=attrs["axis"])


def _window_size(n: int, k: int, stride: int, pad: int, dilation: int) -> int:
    return (n + 2 * pad - dilation * (k - 1) - 1) // stride + 1


def _infer_window(inputs: Sequence[TypeInfo], attrs: dict[str, Any]) -> TypeInfo:
    """x[..., H, W] -> [..., OH, OW, KH, KW]: every (padded) sliding window of the last
    two axes, as convolution and pooling see them (PyTorch's output-size formula)."""
    t = inputs[0]
    if len(t.shape) < 2:
        raise ShapeError(f"window: needs at least 2 dims, got {format_shape(t.shape)}")
    out = []
    for d, k, s, p, dl in zip(t.shape[-2:], attrs["kernel"], attrs["stride"],
                              attrs["padding"], attrs["dilation"]):
        if isinstance(d, str):
            raise ShapeError(f"window: spatial dim {d!r} must be static")
        size = _window_size(d, k, s, p, dl)
        if size <= 0 or k <= 0 or s <= 0 or p < 0 or dl <= 0:
            raise ShapeError(f"window: kernel {attrs['kernel']} with stride {attrs['stride']},"
                             f" padding {attrs['padding']}, dilation {attrs['dilation']} does "
                             f"not fit spatial size {format_shape(t.shape[-2:])}")
        out.append(size)
    return TypeInfo(t.shape[:-2] + tuple(out) + tuple(attrs["kernel"]), t.dtype)


def _ref_window(args: Sequence[np.ndarray], attrs: dict, out: TypeInfo) -> np.ndarray:
    x = args[0]
    (ph, pw), (sh, sw), (dh, dw) = attrs["padding"], attrs["stride"], attrs["dilation"]
    kh, kw = attrs["kernel"]
    padded = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(ph, ph), (pw, pw)],
                    constant_values=attrs["value"])
    oh, ow = out.shape[-4], out.shape[-3]
    result = np.empty(out.shape, x.dtype)
    for i in range(kh):
        for j in range(kw):
            result[..., i, j] = padded[..., i * dh: i * dh + sh * (oh - 1) + 1: sh,
                                       j * dw: j * dw + sw * (ow - 1) + 1: sw]
    return result


register(OpDef("reshape", Category.MOVEMENT, 1, _infer_reshape, _ref_reshape,
               attrs={"shape": "target shape"}))
register(OpDef("transpose", Category.MOVEMENT, 1, _infer_transpose, _ref_transpose,
               attrs={"perm": "permutation: output axis i is input axis perm[i]"}))
register(OpDef("broadcast_to", Category.MOVEMENT, 1, _infer_broadcast, _ref_broadcast,
               attrs={"shape": "target shape (NumPy broadcasting, new axes on the left)"}))
register(OpDef("slice", Category.MOVEMENT, 1, _infer_slice, _ref_slice,
               attrs={"starts": "per axis", "stops": "per axis", "steps": "per axis, nonzero"}))
register(OpDef("pad", Category.MOVEMENT, 1, _infer_pad, _ref_pad,
               attrs={"pads": "((lo, hi), ...) per axis, >= 0", "value": "fill constant"}))
register(OpDef("concat", Category.MOVEMENT, None, _infer_concat, _ref_concat,
               attrs={"axis": "normalized axis"}))
register(OpDef("window", Category.MOVEMENT, 1, _infer_window, _ref_window,
               attrs={"kernel": "(KH, KW)", "stride": "(SH, SW)", "padding": "(PH, PW)",
                      "dilation": "(DH, DW)", "value": "what padding reads as"},
               doc="sliding windows of the last two axes (im2col as a view)"))
register(OpDef("take", Category.MOVEMENT, 2, _infer_take, _ref_take,
               attrs={"axis": "normalized axis"},
               doc="numpy.take; out-of-range indices are clipped (NumPy raises IndexError)"))


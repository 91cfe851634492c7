"""Basic indexing of traced tensors: ints, slices, None, Ellipsis, one integer array."""

from __future__ import annotations

from typing import Any

import numpy as np

from tensorjit.compiler.frontend.lift import emit
from tensorjit.compiler.frontend.tensor import Tensor, user_location
from tensorjit.ir.errors import ShapeError, UnsupportedError


class IndexOutOfBoundsError(ShapeError, IndexError):
    """An integer index outside its axis: a ShapeError, and an IndexError as in NumPy."""


def getitem(t: Tensor, index: Any) -> Tensor:
    from tensorjit.compiler.frontend import shape_ops

    items = index if isinstance(index, tuple) else (index,)
    n_real = sum(1 for i in items if i is not None and i is not Ellipsis)
    if sum(1 for i in items if i is Ellipsis) > 1:
        raise ShapeError("an index can only have a single ellipsis ('...')")
    if n_real > t.ndim:
        raise ShapeError(f"too many indices for a tensor of rank {t.ndim} (at {user_location()})")
    expanded: list[Any] = []
    for i in items:
        if i is Ellipsis:
            expanded.extend([slice(None)] * (t.ndim - n_real))
        else:
            expanded.append(i)
    expanded.extend([slice(None)] * (t.ndim - sum(1 for i in expanded if i is not None)))

    starts, stops, steps = [], [], []
    out_shape: list[Any] = []
    advanced: tuple[int, Any] | None = None  # (output axis, index array)
    axis = 0
    for item in expanded:
        if item is None:
            out_shape.append(1)
            continue
        n = t.shape[axis]
        if isinstance(item, (bool, np.bool_)) or (
                isinstance(item, np.ndarray) and item.dtype == bool):
            raise UnsupportedError("boolean mask indexing gives a data-dependent shape; use "
                                   f"tj.where instead (at {user_location()})")
        if isinstance(item, (int, np.integer)):
            k = int(item)
            if isinstance(n, str):
                raise UnsupportedError(f"integer index into symbolic dim {n!r}")
            if not -n <= k < n:
                raise IndexOutOfBoundsError(f"index {k} is out of bounds for axis {axis} "
                                            f"with size {n} (at {user_location()})")
            k %= n
            starts.append(k), stops.append(k + 1), steps.append(1)
        elif isinstance(item, slice):
            if isinstance(n, str):
                if item != slice(None):
                    raise UnsupportedError(f"slicing symbolic dim {n!r} "
                                           f"(at {user_location()})")
                starts.append(0), stops.append(n), steps.append(1)
            else:
                s, e, p = item.indices(n)
                starts.append(s), stops.append(e), steps.append(p)
                n = len(range(s, e, p))
            out_shape.append(n)
        elif isinstance(item, (list, np.ndarray, Tensor)):
            if advanced is not None:
                raise UnsupportedError("more than one integer-array index "
                                       f"(at {user_location()})")
            advanced = (len(out_shape), item)
            starts.append(0), stops.append(n), steps.append(1)
            out_shape.append(n)
        else:
            raise UnsupportedError(f"index of type {type(item).__name__} "
                                   f"(at {user_location()})")
        axis += 1

    out = t
    if (tuple(starts), tuple(stops), tuple(steps)) != (
            (0,) * t.ndim, tuple(t.shape), (1,) * t.ndim):
        out = emit("slice", [t], {"starts": tuple(starts), "stops": tuple(stops),
                                  "steps": tuple(steps)})
    out = shape_ops.reshape(out, tuple(out_shape))
    if advanced is not None:
        out = shape_ops.take(out, advanced[1], axis=advanced[0])
    return out

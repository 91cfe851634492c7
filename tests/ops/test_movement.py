"""Movement and indexing ops against NumPy (exact)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from opcheck import ALL_DTYPES, check, make_input

import tensorjit as tj


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_movement_ops(dtype: str) -> None:
    rng = np.random.default_rng(13)
    x = make_input(rng, dtype, (3, 4, 5))
    v = make_input(rng, dtype, (1037,))
    y = make_input(rng, dtype, (3, 4, 5))
    s = np.asarray(make_input(rng, dtype, ()))
    one = make_input(rng, dtype, (1, 4, 1))
    idx = np.array([[0, 2], [1, 1], [4, 3]], np.int64)
    ops: list[Callable[[Any, Any, Any, Any, Any, Any], Any]] = [
        lambda m, x, v, y, s, one: m.reshape(x, (12, 5)),
        lambda m, x, v, y, s, one: m.reshape(x, (-1,)),
        lambda m, x, v, y, s, one: m.reshape(v, (1037, 1)),
        lambda m, x, v, y, s, one: x.reshape(5, -1, 2),
        lambda m, x, v, y, s, one: m.transpose(x),
        lambda m, x, v, y, s, one: m.transpose(x, (1, 2, 0)),
        lambda m, x, v, y, s, one: m.transpose(x, (-1, 0, 1)),
        lambda m, x, v, y, s, one: x.T,
        lambda m, x, v, y, s, one: m.swapaxes(x, 0, -1),
        lambda m, x, v, y, s, one: m.moveaxis(x, 0, -1),
        lambda m, x, v, y, s, one: m.expand_dims(x, 1),
        lambda m, x, v, y, s, one: m.expand_dims(x, -1),
        lambda m, x, v, y, s, one: m.expand_dims(s, 0),
        lambda m, x, v, y, s, one: m.expand_dims(x, (0, 4)),
        lambda m, x, v, y, s, one: m.squeeze(one),
        lambda m, x, v, y, s, one: m.squeeze(one, -1),
        lambda m, x, v, y, s, one: m.squeeze(one, (0, 2)),
        lambda m, x, v, y, s, one: m.broadcast_to(one, (3, 4, 6)),
        lambda m, x, v, y, s, one: m.broadcast_to(s, (2, 3)),
        lambda m, x, v, y, s, one: m.broadcast_to(v, (2, 1037)),
        lambda m, x, v, y, s, one: m.concatenate([x, y], axis=0),
        lambda m, x, v, y, s, one: m.concatenate([x, y, x], axis=-1),
        lambda m, x, v, y, s, one: m.concatenate([x, v[:10].reshape(1, 2, 5)], axis=None),
        lambda m, x, v, y, s, one: m.stack([x, y]),
        lambda m, x, v, y, s, one: m.stack([x, y], axis=-1),
        lambda m, x, v, y, s, one: m.split(x, 5, axis=2)[3],
        lambda m, x, v, y, s, one: m.split(x, [1, 3], axis=1)[1],
        lambda m, x, v, y, s, one: m.split(v, [10, 500])[2],
        lambda m, x, v, y, s, one: m.pad(x, ((1, 0), (0, 2), (3, 1))),
        lambda m, x, v, y, s, one: m.pad(v, 3),
        lambda m, x, v, y, s, one: m.pad(x, 1, constant_values=1),
        lambda m, x, v, y, s, one: m.take(v, idx),
        lambda m, x, v, y, s, one: m.take(x, idx[0], axis=2),
        lambda m, x, v, y, s, one: m.take(x, idx, axis=-1),
        lambda m, x, v, y, s, one: m.flip(x),
        lambda m, x, v, y, s, one: m.flip(x, 1),
        lambda m, x, v, y, s, one: m.flip(v, (0,)),
        lambda m, x, v, y, s, one: x[1],
        lambda m, x, v, y, s, one: x[-1, ::2, 1:],
        lambda m, x, v, y, s, one: x[:, None, 1:3, ...],
        lambda m, x, v, y, s, one: x[..., ::-2],
        lambda m, x, v, y, s, one: x[::-1, 3:0:-2, -2],
        lambda m, x, v, y, s, one: v[5:1000:7],
        lambda m, x, v, y, s, one: v[::-1],
        lambda m, x, v, y, s, one: v[7:7],
        lambda m, x, v, y, s, one: x[:, [3, 0, 0]],
        lambda m, x, v, y, s, one: x[1:, 2, None],
        lambda m, x, v, y, s, one: x.flatten(),
        lambda m, x, v, y, s, one: x.ravel(),
        lambda m, x, v, y, s, one: x.swapaxes(1, 2),
        lambda m, x, v, y, s, one: x.transpose(2, 0, 1),
    ]

    def fn(x: Any, v: Any, y: Any, s: Any, one: Any) -> tuple[Any, ...]:
        return tuple(op(tj, x, v, y, s, one) for op in ops)

    expected = [op(np, x, v, y, s, one) for op in ops]
    check(fn, [x, v, y, s, one], expected, "exact", f"movement[{dtype}]")


def test_take_clips_out_of_range_indices() -> None:
    """Documented: in-range indices (negative ones too) mean what they mean in NumPy;
    out-of-range ones are clipped where NumPy raises IndexError."""
    v = np.arange(10, dtype=np.float32)
    idx = np.array([-20, -11, -10, -1, 0, 9, 10, 1000], np.int64)
    with pytest.raises(IndexError):
        np.take(v, idx)
    valid = np.where((idx >= -10) & (idx < 10), idx % 10, idx)
    check(lambda v, i: (tj.take(v, i), v[i]), [v, idx],
          [np.take(v, valid, mode="clip")] * 2, "exact", "take clip")


def test_split_returns_all_pieces() -> None:
    x = np.arange(24, dtype=np.int32).reshape(4, 6)
    check(lambda x: tuple(tj.split(x, 3, axis=1)) + tuple(tj.split(x, [1, 5, 9])), [x],
          list(np.split(x, 3, axis=1)) + list(np.split(x, [1, 5, 9])), "exact", "split")

"""MemoryPool: aligned, cached, thread-safe blocks and pooled NumPy arrays.

Why the pool exists, measured on the 2-core development machine (numpy 2.4,
median of 30 iterations, 64 MiB = 16M float32 per call)::

    pool = MemoryPool(); N = 16 << 20
    a = np.empty((N,), np.float32); a.fill(1.0); del a      # 8.0-8.6 ms
    a = pool.array((N,), np.float32); a.fill(1.0); del a    # 2.7-2.8 ms

``np.empty`` maps fresh pages every call and the write page-faults each of
them; the pooled block's pages stay mapped, so only the write itself is paid.
No timing is asserted here.
"""

from __future__ import annotations

import gc
import sys
import threading
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tensorjit.runtime import Block, MemoryPool, default_pool
from tensorjit.runtime.native import ffi
from tensorjit.runtime.pool import SMALL_LIMIT, size_class


def addr(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


# -- size classes --------------------------------------------------------------


@pytest.mark.parametrize(
    ("nbytes", "cls"),
    [
        (0, 64),
        (1, 64),
        (64, 64),
        (65, 128),
        (4000, 4032),
        (SMALL_LIMIT, SMALL_LIMIT),
        (SMALL_LIMIT + 1, SMALL_LIMIT + 4096),
        (1 << 20, 1 << 20),
        ((1 << 20) + 1, (1 << 20) + 4096),
    ],
)
def test_size_class(nbytes: int, cls: int) -> None:
    assert size_class(nbytes) == cls


def test_negative_size_is_rejected() -> None:
    with pytest.raises(ValueError):
        MemoryPool().acquire(-1)


# -- blocks --------------------------------------------------------------------


@pytest.mark.parametrize("nbytes", [0, 1, 63, 64, 100, 4096, 70_000, 1 << 22])
def test_blocks_are_aligned_and_usable(nbytes: int) -> None:
    pool = MemoryPool()
    block = pool.acquire(nbytes)
    assert isinstance(block, Block)
    assert block.address % 64 == 0 and block.address != 0
    assert block.nbytes == size_class(nbytes) >= nbytes
    assert int(ffi.cast("uintptr_t", block.ptr)) == block.address
    ffi.memmove(block.ptr, b"\x5a" * block.nbytes, block.nbytes)
    assert ffi.buffer(block.ptr, block.nbytes)[:] == b"\x5a" * block.nbytes
    pool.release(block)


def test_zero_size_blocks_are_distinct() -> None:
    pool = MemoryPool()
    blocks = [pool.acquire(0) for _ in range(3)]
    assert len({b.address for b in blocks}) == 3
    for b in blocks:
        pool.release(b)


def test_released_block_is_reused_for_the_same_class_only() -> None:
    pool = MemoryPool()
    b = pool.acquire(1000)
    address = b.address
    pool.release(b)
    other = pool.acquire(5000)  # different class: must not take it
    assert other.address != address
    again = pool.acquire(1000 - 10)  # same class (1024)
    assert again.address == address
    assert again is not b
    s = pool.stats()
    assert (s["hits"], s["misses"]) == (1, 2)


def test_release_twice_or_foreign_block_raises() -> None:
    pool, other = MemoryPool(), MemoryPool()
    b = pool.acquire(128)
    with pytest.raises(ValueError):
        other.release(b)
    pool.release(b)
    with pytest.raises(ValueError):
        pool.release(b)
    # A stale Block for memory that was handed out again is rejected too.
    b2 = pool.acquire(128)
    assert b2.address == b.address
    with pytest.raises(ValueError):
        pool.release(b)
    pool.release(b2)


def test_stats() -> None:
    pool = MemoryPool()
    assert pool.stats() == {
        "bytes_cached": 0,
        "blocks_cached": 0,
        "bytes_in_use": 0,
        "blocks_in_use": 0,
        "hits": 0,
        "misses": 0,
        "peak_bytes": 0,
        "max_cached_bytes": 1 << 30,
    }
    a, b = pool.acquire(100), pool.acquire(10_000)  # classes 128 and 10048
    s = pool.stats()
    assert (s["bytes_in_use"], s["blocks_in_use"], s["misses"]) == (128 + 10048, 2, 2)
    pool.release(b)
    s = pool.stats()
    assert (s["bytes_in_use"], s["bytes_cached"], s["blocks_cached"]) == (128, 10048, 1)
    c = pool.acquire(10_000)
    s = pool.stats()
    assert (s["hits"], s["misses"], s["bytes_cached"]) == (1, 2, 0)
    assert s["peak_bytes"] == 128 + 10048
    pool.release(a)
    pool.release(c)
    pool.clear()
    s = pool.stats()
    assert s["bytes_cached"] == s["bytes_in_use"] == s["blocks_in_use"] == 0
    assert s["peak_bytes"] == 128 + 10048


def test_cap_trims_largest_idle_blocks_first() -> None:
    pool = MemoryPool(max_cached_bytes=10_000)
    big, mid, small = pool.acquire(8192), pool.acquire(4096), pool.acquire(1024)
    for b in (small, mid, big):
        pool.release(b)
        assert pool.stats()["bytes_cached"] <= 10_000
    assert pool.stats()["bytes_cached"] == 4096 + 1024  # the 8 KiB block went
    assert pool.acquire(4096).address == mid.address
    assert pool.acquire(1024).address == small.address
    assert pool.stats()["hits"] == 2


def test_block_larger_than_cap_is_not_cached() -> None:
    pool = MemoryPool(max_cached_bytes=0)
    pool.release(pool.acquire(1 << 20))
    assert pool.stats()["bytes_cached"] == 0
    assert pool.stats()["blocks_cached"] == 0


def test_clear_frees_idle_blocks_only() -> None:
    pool = MemoryPool()
    keep = pool.acquire(256)
    pool.release(pool.acquire(512))
    pool.clear()
    s = pool.stats()
    assert (s["bytes_cached"], s["blocks_in_use"]) == (0, 1)
    pool.release(keep)
    assert pool.stats()["bytes_cached"] == 256


def test_two_threads_never_share_a_block() -> None:
    pool = MemoryPool(max_cached_bytes=64 * 1024)
    owned: set[int] = set()
    owned_lock = threading.Lock()
    errors: list[str] = []

    def hammer(tag: int) -> None:
        rng = np.random.default_rng(tag)
        mine: list[Block] = []
        for _ in range(4000):
            if mine and rng.random() < 0.5:
                b = mine.pop(int(rng.integers(len(mine))))
                # Nobody else wrote into it while we held it.
                if ffi.cast("int64_t *", b.ptr)[0] != tag:
                    errors.append(f"block 0x{b.address:x} was overwritten")
                with owned_lock:
                    owned.discard(b.address)
                pool.release(b)
            else:
                b = pool.acquire(int(rng.choice([0, 64, 100, 4096, 70_000])))
                with owned_lock:
                    if b.address in owned:
                        errors.append(f"block 0x{b.address:x} handed out twice")
                    owned.add(b.address)
                ffi.cast("int64_t *", b.ptr)[0] = tag
                mine.append(b)
        for b in mine:
            with owned_lock:
                owned.discard(b.address)
            pool.release(b)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        ts = [threading.Thread(target=hammer, args=(t,)) for t in (1, 2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert not errors, errors[:5]
    s = pool.stats()
    assert s["blocks_in_use"] == 0 and s["bytes_in_use"] == 0
    assert s["bytes_cached"] <= 64 * 1024


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 20_000)), max_size=60))
# The largest class emptied by reuse, then a trim: _trim once picked its empty idle list.
@example([(False, 16000)] + [(False, 8000)] * 4 + [(True, 0), (False, 16000)] + [(True, 0)] * 4)
def test_stats_invariants_hold_for_any_sequence(ops: list[tuple[bool, int]]) -> None:
    pool = MemoryPool(max_cached_bytes=30_000)
    held: list[Block] = []
    acquires = 0
    for release, nbytes in ops:
        if release and held:
            pool.release(held.pop(0))
        else:
            held.append(pool.acquire(nbytes))
            acquires += 1
        s = pool.stats()
        assert s["bytes_in_use"] == sum(b.nbytes for b in held)
        assert s["blocks_in_use"] == len(held)
        assert s["bytes_cached"] <= 30_000
        assert s["hits"] + s["misses"] == acquires
        assert s["peak_bytes"] >= s["bytes_in_use"]
        assert len({b.address for b in held}) == len(held)
    for b in held:
        pool.release(b)
    pool.clear()


# -- arrays --------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64", "bool", "uint8"])
@pytest.mark.parametrize("shape", [(), (0,), (5,), (3, 4), (2, 0, 3), (2, 3, 4, 5)])
def test_array_is_fresh_contiguous_writable_and_aligned(dtype: str, shape: tuple[int, ...]) -> None:
    pool = MemoryPool()
    a = pool.array(shape, dtype)
    assert a.shape == shape and a.dtype == np.dtype(dtype)
    assert a.flags.c_contiguous and a.flags.writeable
    assert addr(a) % 64 == 0
    a[...] = 1
    assert (a == 1).all()


def test_array_accepts_an_int_shape_and_dtype_objects() -> None:
    a = MemoryPool().array(7, np.float32)
    assert a.shape == (7,) and a.dtype == np.float32


def test_array_structured_and_subarray_dtypes() -> None:
    pool = MemoryPool()
    rec = pool.array((4,), np.dtype([("x", "<f4"), ("n", "<i8")]))
    rec["x"] = 1.5
    assert rec.dtype.names == ("x", "n") and (rec["x"] == 1.5).all()
    sub = pool.array((2,), np.dtype(("<f8", (3,))))
    assert sub.shape == (2, 3) and sub.flags.c_contiguous


def test_array_rejects_bad_arguments() -> None:
    pool = MemoryPool()
    with pytest.raises(TypeError):
        pool.array((3,), object)
    with pytest.raises(ValueError):
        pool.array((2, -1), np.float32)
    assert pool.stats()["blocks_in_use"] == 0


def test_arrays_are_distinct_while_alive() -> None:
    pool = MemoryPool()
    arrays = [pool.array((100,), np.float64) for _ in range(10)]
    for i, a in enumerate(arrays):
        a[:] = i
    assert len({addr(a) for a in arrays}) == 10
    for i, a in enumerate(arrays):
        assert (a == i).all()


def test_block_returns_when_the_array_dies() -> None:
    pool = MemoryPool()
    a = pool.array((1000,), np.float32)
    first = addr(a)
    assert pool.stats()["blocks_in_use"] == 1
    del a
    gc.collect()
    assert pool.stats()["blocks_in_use"] == 0
    b = pool.array((1000,), np.float32)
    assert addr(b) == first
    assert pool.stats()["hits"] == 1


def test_views_keep_the_block_alive() -> None:
    pool = MemoryPool()
    a = pool.array((4, 6), np.float64)
    a[...] = np.arange(24).reshape(4, 6)
    first = addr(a)
    views: list[Any] = [a[1:, ::2], a.T, a.reshape(24), a.view(np.int64), a[2]]
    del a
    gc.collect()
    assert pool.stats()["blocks_in_use"] == 1
    other = pool.array((4, 6), np.float64)  # must not get the viewed block
    other[...] = -1
    assert addr(other) != first
    assert views[0][0, 0] == 6 and views[4][5] == 17
    del views[:-1]
    gc.collect()
    assert pool.stats()["blocks_in_use"] == 2  # `other` and the last view
    views.clear()
    gc.collect()
    assert pool.stats()["blocks_in_use"] == 1
    assert pool.array((4, 6), np.float64).__array_interface__["data"][0] == first


def test_pool_outlives_its_last_reference_while_arrays_exist() -> None:
    pool = MemoryPool()
    a = pool.array((100,), np.int32)
    del pool
    gc.collect()
    a[:] = 3
    assert (a == 3).all()
    del a
    gc.collect()


def test_array_after_clear_still_returns_to_pool() -> None:
    pool = MemoryPool()
    a = pool.array((50,), np.float32)
    pool.clear()
    del a
    gc.collect()
    s = pool.stats()
    assert (s["blocks_in_use"], s["blocks_cached"]) == (0, 1)


def test_default_pool_is_a_singleton() -> None:
    assert default_pool() is default_pool()
    assert isinstance(default_pool(), MemoryPool)

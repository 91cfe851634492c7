"""A caching pool of 64-byte-aligned native memory blocks.

Why: page faults on a fresh large buffer cost more than a fused kernel that
writes it (DESIGN.md: several ms for a fresh 64 MB output). A loop that calls a
compiled function returning a fresh output each time should reuse the pages
the previous, now-dead, output used. ``MemoryPool.array`` hands out NumPy
arrays over pooled blocks that return to the pool when the array and all its
views are garbage-collected, so the caller still owns a fresh array each call
and the pool never hands out memory that a caller can still see.

Size classes: requests up to ``SMALL_LIMIT`` bytes round up to a multiple of
64, larger ones to a multiple of 4 KiB (a page); a cached block is reused only
for a request of exactly the same class. Idle cached bytes are capped
(``max_cached_bytes``, default 1 GiB); when a release would exceed the cap the
largest idle blocks are freed first, since they are the costliest to hold and
the cheapest (relative to their use) to re-fault.
"""

from __future__ import annotations

import functools
import math
import operator
import os
import threading
import weakref
from typing import Any, NamedTuple

import numpy as np

from tensorjit.runtime import native

__all__ = ["Block", "MemoryPool", "default_pool", "size_class", "SMALL_LIMIT"]

#: Requests up to this many bytes use 64-byte classes; larger ones 4 KiB classes.
SMALL_LIMIT = 64 * 1024
_SMALL_STEP = 64
_LARGE_STEP = 4096
_DEFAULT_MAX_CACHED = 1 << 30


def size_class(nbytes: int) -> int:
    """The capacity of the block that serves a request of ``nbytes`` (>= 64)."""
    if nbytes < 0:
        raise ValueError(f"cannot allocate a negative number of bytes ({nbytes})")
    step = _SMALL_STEP if nbytes <= SMALL_LIMIT else _LARGE_STEP
    # Zero-byte requests still get a real 64-byte block (see tj_aligned_alloc).
    return max(_SMALL_STEP, -(-nbytes // step) * step)


class _DTypeInfo(NamedTuple):
    """What ``MemoryPool.array`` needs to know about a dtype, computed once."""

    dtype: np.dtype[Any]  # element dtype (a subarray dtype's base)
    typestr: str
    descr: list[Any] | None  # only for structured dtypes
    itemsize: int
    sub_shape: tuple[int, ...]  # a subarray dtype's trailing dimensions
    needs_view: bool  # NumPy rebuilds a different dtype from descr


@functools.lru_cache(maxsize=256)
def _dtype_info_cached(dt: np.dtype[Any]) -> _DTypeInfo:
    if dt.hasobject:
        # Uninitialised memory must never be read as Python object pointers.
        raise TypeError(f"pooled arrays cannot hold object dtype {dt}")
    sub_shape: tuple[int, ...] = ()
    if dt.subdtype is not None:
        # As np.empty does: a subarray dtype adds trailing dimensions.
        dt, sub_shape = dt.subdtype
    descr = dt.descr if dt.fields is not None else None
    rebuilt = np.dtype(descr) if descr is not None else np.dtype(dt.str)
    return _DTypeInfo(dt, dt.str, descr, dt.itemsize, sub_shape, rebuilt != dt)


def _dtype_info(dtype: Any) -> _DTypeInfo:
    return _dtype_info_cached(np.dtype(dtype))


class Block:
    """One aligned native block handed out by a pool.

    ``nbytes`` is the block's capacity (its size class), at least the number
    of bytes requested. A ``Block`` object is valid from ``acquire`` until it
    is released; a later acquire of the same memory returns a new object.
    """

    __slots__ = ("address", "nbytes", "ptr")

    def __init__(self, address: int, nbytes: int, ptr: Any) -> None:
        self.address: int = address
        self.nbytes: int = nbytes
        self.ptr: Any = ptr  # cffi `void *`

    def __repr__(self) -> str:
        return f"Block(address=0x{self.address:x}, nbytes={self.nbytes})"


class _ArrayOwner:
    """Base object of a pooled array: exposes the block to NumPy and returns
    it to the pool when the last array or view referring to it dies."""

    __slots__ = ("__array_interface__", "_pool", "_block")

    def __init__(self, pool: MemoryPool, block: Block, interface: dict[str, Any]) -> None:
        self.__array_interface__ = interface
        self._pool = pool
        self._block = block

    def __del__(self) -> None:
        # May run at interpreter shutdown, or after pool.clear(); never raise.
        try:
            self._pool.release(self._block)
        except Exception:
            pass


# Pools whose locks must be re-created in a forked child (the lock could have
# been held by a thread that does not exist there).
_all_pools: weakref.WeakSet[MemoryPool] = weakref.WeakSet()


class MemoryPool:
    """Thread-safe cache of 64-byte-aligned blocks from ``tj_aligned_alloc``."""

    def __init__(self, max_cached_bytes: int = _DEFAULT_MAX_CACHED) -> None:
        if max_cached_bytes < 0:
            raise ValueError("max_cached_bytes must be >= 0")
        self.max_cached_bytes = max_cached_bytes
        self._lock = threading.Lock()
        self._lib = native.lib
        # size class -> idle blocks as (address, cffi pointer), most recent last
        # (LIFO reuse hands back the block most likely still in cache/TLB).
        self._free: dict[int, list[tuple[int, Any]]] = {}
        # address -> the Block currently handed out for it.
        self._in_use: dict[int, Block] = {}
        self._bytes_cached = 0
        self._bytes_in_use = 0
        self._peak_bytes = 0
        self._hits = 0
        self._misses = 0
        _all_pools.add(self)

    # -- blocks -------------------------------------------------------------

    def acquire(self, nbytes: int) -> Block:
        """A block of at least ``nbytes`` bytes, 64-byte aligned, contents undefined."""
        cls = size_class(int(nbytes))
        with self._lock:
            idle = self._free.get(cls)
            if idle:
                address, ptr = idle.pop()
                if not idle:  # _trim takes the largest class listed: never an empty one
                    del self._free[cls]
                self._bytes_cached -= cls
                self._hits += 1
            else:
                address, ptr = self._allocate(cls)
                self._misses += 1
            block = Block(address, cls, ptr)
            self._in_use[address] = block
            self._bytes_in_use += cls
            if self._bytes_in_use > self._peak_bytes:
                self._peak_bytes = self._bytes_in_use
        return block

    def release(self, block: Block) -> None:
        """Return ``block`` to the pool. Releasing a block twice, or a block this
        pool did not hand out, raises ``ValueError``."""
        with self._lock:
            if self._in_use.get(block.address) is not block:
                raise ValueError(f"{block!r} is not in use in this pool (released twice?)")
            del self._in_use[block.address]
            self._bytes_in_use -= block.nbytes
            self._free.setdefault(block.nbytes, []).append((block.address, block.ptr))
            self._bytes_cached += block.nbytes
            if self._bytes_cached > self.max_cached_bytes:
                self._trim(self.max_cached_bytes)

    def _allocate(self, cls: int) -> tuple[int, Any]:
        """Fresh block from the C runtime. Caller holds the lock."""
        ptr = self._lib.tj_aligned_alloc(cls)
        if ptr == native.ffi.NULL:
            # Idle cached memory is the first thing to give back under pressure.
            self._trim(0)
            ptr = self._lib.tj_aligned_alloc(cls)
            if ptr == native.ffi.NULL:
                raise MemoryError(f"tensorjit: cannot allocate {cls} bytes")
        return int(native.ffi.cast("uintptr_t", ptr)), ptr

    def _trim(self, limit: int) -> None:
        """Free idle blocks, largest first, until at most ``limit`` bytes stay cached.
        Caller holds the lock."""
        while self._bytes_cached > limit:
            cls = max(self._free)
            idle = self._free[cls]
            _, ptr = idle.pop(0)  # the least recently used block of the class
            if not idle:
                del self._free[cls]
            self._lib.tj_aligned_free(ptr)
            self._bytes_cached -= cls

    def clear(self) -> None:
        """Free every idle cached block (blocks in use are unaffected; they are
        cached again when released)."""
        with self._lock:
            self._trim(0)

    # -- arrays -------------------------------------------------------------

    def array(self, shape: int | tuple[int, ...], dtype: Any = np.float64) -> np.ndarray:
        """A fresh, C-contiguous, writable array over a pooled block.

        The contents are undefined (as with ``np.empty``). The block returns to
        the pool when this array and every view of it have been collected.
        """
        try:
            shape_t = tuple(map(operator.index, shape))  # type: ignore[arg-type]
        except TypeError:
            shape_t = (operator.index(shape),)  # type: ignore[arg-type]
        if shape_t and min(shape_t) < 0:
            raise ValueError(f"negative dimensions are not allowed: {shape_t}")
        info = _dtype_info(dtype)
        if info.sub_shape:
            shape_t += info.sub_shape
        block = self.acquire(math.prod(shape_t) * info.itemsize)
        interface: dict[str, Any] = {
            "version": 3,
            "shape": shape_t,
            "typestr": info.typestr,
            "data": (block.address, False),  # False: writable
            "strides": None,  # C-contiguous
        }
        if info.descr is not None:
            interface["descr"] = info.descr
        try:
            arr = np.asarray(_ArrayOwner(self, block, interface))
        except BaseException:
            self.release(block)
            raise
        if info.needs_view:  # descr drops struct alignment/offset details
            arr = arr.view(info.dtype)
        return arr

    # -- introspection ------------------------------------------------------

    def stats(self) -> dict[str, int]:
        """Counters: bytes_cached, blocks_cached, bytes_in_use, blocks_in_use,
        hits, misses, peak_bytes (high-water mark of bytes_in_use), and
        max_cached_bytes. Byte counts are in size-class (capacity) bytes."""
        with self._lock:
            return {
                "bytes_cached": self._bytes_cached,
                "blocks_cached": sum(len(v) for v in self._free.values()),
                "bytes_in_use": self._bytes_in_use,
                "blocks_in_use": len(self._in_use),
                "hits": self._hits,
                "misses": self._misses,
                "peak_bytes": self._peak_bytes,
                "max_cached_bytes": self.max_cached_bytes,
            }

    def __del__(self) -> None:
        # Arrays keep their pool alive, so only idle blocks can be left here.
        try:
            self._trim(0)
        except Exception:
            pass

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()


def _reinit_locks_after_fork() -> None:
    for pool in list(_all_pools):
        pool._after_fork_in_child()
    global _default_lock
    _default_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reinit_locks_after_fork)


_default: MemoryPool | None = None
_default_lock = threading.Lock()


def default_pool() -> MemoryPool:
    """The process-wide pool that compiled functions use for outputs and arenas."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = MemoryPool()
    return _default

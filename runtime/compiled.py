"""``CompiledFunction``: check arguments, take an arena, allocate outputs, ONE native call.

With static shapes a call goes through C (``_tjcall.StaticCall``, runtime/csrc/tjcall.c):
Python dispatch was most of a small call. Everything else (``out=``, symbolic dims,
arguments to convert or reject) takes the Python path here, whose pointers go through
``ffi.from_buffer`` into a reused ``void*`` array and whose entry is a cffi function pointer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tensorjit.ir.dtypes import DType
from tensorjit.ir.errors import DTypeError, ShapeError, TensorJitError
from tensorjit.ir.shapes import Shape, Size, format_shape
from tensorjit.runtime.native import ffi, static_call_type
from tensorjit.runtime.pool import default_pool

# Outputs at least this large come from the pool (fresh pages would page-fault each call).
POOLED_OUTPUT_BYTES = 1 << 20
# The C call path releases the GIL around kernels whose inputs and outputs take at least
# this many bytes. A smaller kernel holds it for microseconds, whereas taking it back from
# another running Python thread can wait for that thread's switch interval (5 ms).
RELEASE_GIL_BYTES = 1 << 16


@dataclass(frozen=True)
class ArgSpec:
    name: str
    shape: Shape
    dtype: DType


@dataclass(frozen=True)
class ArenaItem:
    numel: Size
    itemsize: int


@dataclass
class Signature:
    """Everything the call path needs to know about the native entry point."""

    inputs: tuple[ArgSpec, ...]
    outputs: tuple[ArgSpec, ...]
    returns_tuple: bool
    symbols: tuple[str, ...]
    arena: tuple[ArenaItem, ...] = ()
    consts: tuple[np.ndarray, ...] = ()


def _strides(shape: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
    """C-contiguous strides in bytes, as NumPy reports them."""
    out = []
    step = itemsize
    for d in reversed(shape):
        out.append(step)
        step *= max(d, 1)
    return tuple(reversed(out))


def _arena_bytes(items: Sequence[ArenaItem], bindings: dict[str, int]) -> int:
    return sum(-(-it.numel.evaluate(bindings) * it.itemsize // 64) * 64 for it in items)


# What ``CompiledFunction.probe()``'s call function returns for arguments it does not take.
PROBE_MISS = object()


@dataclass
class CompiledFunction:
    """A compiled graph: call it with NumPy arrays; see ``.ir(stage)`` and ``.stats``."""

    name: str
    signature: Signature
    address: int
    keepalive: Any  # the loaded code; the address is valid while this lives
    stages: dict[str, Callable[[], str]] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        sig = self.signature
        self._entry = ffi.cast("int32_t(*)(void **, int64_t *, char *)", self.address)
        self._n_in = len(sig.inputs)
        self._n_out = len(sig.outputs)
        self._n_bufs = self._n_in + self._n_out + len(sig.consts)
        self._static = not sig.symbols
        self._np_dtypes = [s.dtype.np for s in sig.inputs]
        self._out_np = [s.dtype.np for s in sig.outputs]
        self._const_ptrs = [ffi.from_buffer(c) for c in sig.consts]
        self._free_bufs: list[Any] = []
        self._pool = default_pool()
        self.stats.setdefault("calls", 0)
        self._null_dims = ffi.NULL
        self._returns_tuple = sig.returns_tuple
        if self._static:
            self._arena_static = _arena_bytes(sig.arena, {})
            self._out_shapes = [tuple(int(d) for d in s.shape) for s in sig.outputs]
            self._in_shapes = [tuple(int(d) for d in s.shape) for s in sig.inputs]
        # The C call path (runtime/csrc/tjcall.c) for static shapes; its probe twin is
        # made on first use.
        self._fast = self._static_call(miss=None) if self._static else None
        self._probe: Callable[..., Any] | None = None

    # --- the call -------------------------------------------------------------------
    def __call__(self, *args: Any, out: Any = None) -> Any:
        if out is None and self._fast is not None:
            return self._fast(*args)
        return self._call_general(args, out)

    def probe(self) -> Callable[..., Any] | None:
        """A call function for exactly this signature's arrays (class, dtype, shape and
        contiguous strides) that returns ``PROBE_MISS`` for anything else instead of
        checking or converting it: a caller holding functions for several signatures
        (``tj.grad``) tries one without building a key. None if dims are symbolic."""
        if self._probe is None and self._static:
            self._probe = self._static_call(miss=PROBE_MISS)
        return self._probe

    def _static_call(self, miss: Any) -> Callable[..., Any]:
        """The C call path for this static signature. Arguments it does not take go to
        ``_call_checked`` (which converts or raises), or, with ``miss``, return ``miss``."""
        shapes = self._in_shapes + self._out_shapes
        dtypes = self._np_dtypes + self._out_np
        moved = sum(math.prod(s) * dt.itemsize for s, dt in zip(shapes, dtypes))
        return static_call_type()(
            entry=self.address,
            in_dtypes=tuple(self._np_dtypes),
            in_shapes=tuple(self._in_shapes),
            in_strides=tuple(_strides(s, dt.itemsize)
                             for s, dt in zip(self._in_shapes, self._np_dtypes)),
            out_dtypes=tuple(self._out_np),
            out_shapes=tuple(self._out_shapes),
            out_pooled=tuple(math.prod(s) * dt.itemsize >= POOLED_OUTPUT_BYTES
                             for s, dt in zip(self._out_shapes, self._out_np)),
            consts=tuple(self.signature.consts),
            arena_bytes=self._arena_static,
            release_gil=moved >= RELEASE_GIL_BYTES,
            returns_tuple=self._returns_tuple,
            miss=miss,
            fallback=self._call_checked,
            pool_array=self._pool.array,
            acquire=self._pool.acquire,
            release=self._pool.release,
            fail=self._fail,
            stats=self.stats,
        )

    def _call_checked(self, *args: Any) -> Any:
        return self._call_general(args, None)

    def _fail(self, status: int) -> None:
        raise TensorJitError(f"{self.name}: native code returned error {status}")

    def _call_general(self, args: tuple[Any, ...], out: Any) -> Any:
        sig = self.signature
        if len(args) != self._n_in:
            raise ShapeError(f"{self.name}: expected {self._n_in} argument(s) "
                             f"({', '.join(s.name for s in sig.inputs)}), got {len(args)}")
        bindings: dict[str, int] = {}
        arrays = [self._check(i, a, bindings) for i, a in enumerate(args)]
        if self._static:
            shapes = self._out_shapes
            arena_size = self._arena_static
            dims = self._null_dims
        else:
            shapes = [tuple(bindings[d] if isinstance(d, str) else d for d in s.shape)
                      for s in sig.outputs]
            arena_size = _arena_bytes(sig.arena, bindings)
            dims = ffi.new("int64_t[]", [bindings[s] for s in sig.symbols] or [0])
        outs = self._outputs(shapes, out, arrays)
        keep = [ffi.from_buffer(a) for a in arrays] + [ffi.from_buffer(o) for o in outs]
        return self._run(keep, outs, dims, arena_size)

    def _run(self, keep: list[Any], outs: list[np.ndarray], dims: Any, arena_size: int) -> Any:
        try:
            bufs = self._free_bufs.pop()
        except IndexError:
            bufs = ffi.new("void *[]", max(self._n_bufs, 1))
            for k, p in enumerate(self._const_ptrs):
                bufs[self._n_in + self._n_out + k] = p
        for k, p in enumerate(keep):
            bufs[k] = p
        if arena_size:
            block = self._pool.acquire(arena_size)
            try:
                status = self._entry(bufs, dims, block.ptr)
            finally:
                self._pool.release(block)
        else:
            status = self._entry(bufs, dims, ffi.NULL)
        self._free_bufs.append(bufs)
        if status != 0:
            self._fail(status)
        self.stats["calls"] += 1
        if self.signature.returns_tuple:
            return tuple(outs)
        return outs[0]

    def _check(self, i: int, a: Any, bindings: dict[str, int]) -> np.ndarray:
        spec = self.signature.inputs[i]
        if type(a) is not np.ndarray:
            if isinstance(a, (bool, int, float, np.generic)) and not spec.shape:
                a = np.asarray(a, dtype=self._np_dtypes[i])
            elif isinstance(a, np.ndarray):
                a = np.asarray(a)
            else:
                raise DTypeError(f"{self.name}: argument {i} ({spec.name}): expected a NumPy "
                                 f"array of {spec.dtype}, got {type(a).__name__}")
        if a.dtype != self._np_dtypes[i]:
            raise DTypeError(f"{self.name}: argument {i} ({spec.name}): expected dtype "
                             f"{spec.dtype}, got {a.dtype}")
        shape = a.shape
        if self._static:
            if shape != spec.shape:
                raise ShapeError(f"{self.name}: argument {i} ({spec.name}): expected shape "
                                 f"{format_shape(spec.shape)}, got {format_shape(shape)}")
        else:
            if len(shape) != len(spec.shape):
                raise ShapeError(f"{self.name}: argument {i} ({spec.name}): expected rank "
                                 f"{len(spec.shape)} {format_shape(spec.shape)}, got rank "
                                 f"{len(shape)} {format_shape(shape)}")
            for axis, (want, got) in enumerate(zip(spec.shape, shape)):
                if isinstance(want, str):
                    bound = bindings.setdefault(want, got)
                    if bound != got:
                        raise ShapeError(
                            f"{self.name}: argument {i} ({spec.name}): symbolic dim {want!r} "
                            f"is {got} in axis {axis}, but was bound to {bound} by an "
                            "earlier argument")
                elif want != got:
                    raise ShapeError(f"{self.name}: argument {i} ({spec.name}): expected shape "
                                     f"{format_shape(spec.shape)}, got {format_shape(shape)}")
        if not a.flags.c_contiguous:
            a = np.ascontiguousarray(a)
        return a

    def _outputs(self, shapes: Sequence[tuple[int, ...]], out: Any,
                 inputs: list[np.ndarray]) -> list[np.ndarray]:
        if out is None:
            result = []
            for shape, dt in zip(shapes, self._out_np):
                if math.prod(shape) * dt.itemsize >= POOLED_OUTPUT_BYTES:
                    result.append(self._pool.array(shape, dt))
                else:
                    result.append(np.empty(shape, dt))
            return result
        given = list(out) if isinstance(out, (tuple, list)) else [out]
        if len(given) != self._n_out:
            raise ShapeError(f"{self.name}: out= needs {self._n_out} array(s), got {len(given)}")
        for k, (o, shape, dt) in enumerate(zip(given, shapes, self._out_np)):
            what = f"{self.name}: out[{k}]" if self._n_out > 1 else f"{self.name}: out"
            if not isinstance(o, np.ndarray):
                raise DTypeError(f"{what}: expected a NumPy array, got {type(o).__name__}")
            if o.dtype != dt:
                raise DTypeError(f"{what}: expected dtype {dt}, got {o.dtype}")
            if o.shape != shape:
                raise ShapeError(f"{what}: expected shape {format_shape(shape)}, got "
                                 f"{format_shape(o.shape)}")
            if not o.flags.c_contiguous or not o.flags.writeable:
                raise ShapeError(f"{what}: must be C-contiguous and writeable")
            for j, a in enumerate(inputs):
                if np.may_share_memory(a, o):
                    inputs[j] = a.copy()  # the kernels assume inputs and outputs do not alias
        return given

    # --- pickling -------------------------------------------------------------------
    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickles the machine code (an object file, or an AOT library's bytes) with the
        signature: the receiving process loads it without tracing or compiling."""
        from tensorjit.runtime.serialize import reduce_compiled

        return reduce_compiled(self)

    # --- introspection --------------------------------------------------------------
    def ir(self, stage: str = "graph") -> str:
        """The text of a compilation stage: one of ``stages()``."""
        try:
            make = self.stages[stage]
        except KeyError:
            raise TensorJitError(f"unknown stage {stage!r}; stages are "
                                 f"{', '.join(self.stages)}") from None
        return make()

    def stage_names(self) -> list[str]:
        return list(self.stages)

    def __repr__(self) -> str:
        ins = ", ".join(f"{s.name}: {s.dtype.short}{format_shape(s.shape)}"
                        for s in self.signature.inputs)
        return f"<tj.CompiledFunction {self.name}({ins})>"

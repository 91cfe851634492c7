"""The user API: ``tj.compile`` and ``tj.jit``.

``compile`` runs the pipeline once: verify the graph, lower it to loop IR, emit LLVM IR,
optimize and load it, and wrap the entry point in a ``CompiledFunction``.
``jit`` traces and compiles on the first call for each input signature.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from tensorjit.compiler.codegen.module import arena_slots, emit_llvm
from tensorjit.compiler.frontend.trace import trace
from tensorjit.compiler.lowering.lower import Lowering
from tensorjit.compiler.lowering.report import fusion_report
from tensorjit.compiler.memo import RecentCache
from tensorjit.compiler.persistent import Lookup, graph_identity
from tensorjit.ir.errors import TensorJitError
from tensorjit.ir.graph import Graph
from tensorjit.ir.loops import Loop, format_module, verify_module
from tensorjit.ir.shapes import Size
from tensorjit.ir.verifier import verify_graph
from tensorjit.passes.manager import PassContext
from tensorjit.passes.memory import plan_memory
from tensorjit.passes.pipeline import DEFAULT as PIPELINE
from tensorjit.runtime.compiled import (
    PROBE_MISS,
    ArenaItem,
    ArgSpec,
    CompiledFunction,
    Signature,
)
from tensorjit.runtime.diskcache import disabled as cache_disabled
from tensorjit.runtime.engine import Target, jit_compile

_OPTIONS = ("opt_level", "fast_math", "threads", "cache")
_cache: RecentCache[tuple, CompiledFunction] = RecentCache()


def forget_compiled_graphs() -> None:
    """Empty ``tj.compile``'s in-memory cache of compiled graphs (see ``tj.clear_caches``)."""
    _cache.clear()


def _check_options(opt_level: int, fast_math: bool, threads: int | None) -> None:
    if not isinstance(opt_level, int) or not 0 <= opt_level <= 3:
        raise TensorJitError(f"opt_level: expected 0, 1, 2 or 3, got {opt_level!r}")
    if not isinstance(fast_math, bool):
        raise TensorJitError(f"fast_math: expected True or False, got {fast_math!r}")
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise TensorJitError(f"threads: expected a positive int, got {threads!r}")


def compile(graph: Graph | Callable[..., Any], *specs: Any, opt_level: int = 3,  # noqa: A001
            fast_math: bool = False, threads: int | None = None,
            cache: bool = True) -> CompiledFunction:
    """Compile a graph (or trace ``graph(*specs)`` first) to native code.

    ``threads=1`` keeps every kernel on the calling thread; otherwise kernels whose top
    loop has independent iterations are split over the runtime's thread pool (its size is
    ``TENSORJIT_NUM_THREADS`` or the number of cores).
    ``fast_math`` lets LLVM reassociate and contract float arithmetic freely.
    """
    _check_options(opt_level, fast_math, threads)
    with paused_gc():
        return _compile(graph, specs, opt_level, fast_math, threads, cache)


def _compile(graph: Graph | Callable[..., Any], specs: tuple[Any, ...], opt_level: int,
             fast_math: bool, threads: int | None, cache: bool) -> CompiledFunction:
    t0 = time.perf_counter()
    if not isinstance(graph, Graph):
        graph = trace(graph, *specs)
    if cache_disabled():
        cache = False
    # The text shows constant arrays by shape only: their digests are part of the key.
    identity = graph_identity(graph)
    key = (identity, opt_level, fast_math, threads == 1)
    if not cache:
        return _build(graph, opt_level, fast_math, threads, t0)
    hit = _cache.get(key)
    if hit is not None:
        return hit
    disk = Lookup(graph, identity, {"opt_level": opt_level, "fast_math": fast_math,
                                    "parallel": threads != 1})
    fn = disk.get(lambda: _build(graph, opt_level, fast_math, threads, time.perf_counter()))
    if fn is None:
        fn = _build(graph, opt_level, fast_math, threads, t0)
        disk.put(fn)
    return _cache.add(key, fn)


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while compiling. Tracing and compiling
    allocate hundreds of thousands of short-lived objects, which start full collections
    that walk every live object of the process (in a process holding a compiled MLP, a
    100-joint IK gradient compiled ~15% slower with it on); the graph objects are freed
    by reference counting, and any cycles are collected once it is back on."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextlib.contextmanager
def _deep_recursion(limit: int = 50_000) -> Iterator[None]:
    """Lowering builds index maps recursively along the graph: scalar-style code (a
    chain of 400 joints) nests deeper than Python's default limit of 1000 frames. Python
    (3.11+) runs these pure-Python calls without growing the C stack."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, limit))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def _build(graph: Graph, opt_level: int, fast_math: bool, threads: int | None,
           t0: float, target: Target | None = None) -> CompiledFunction:
    timings: dict[str, float] = {}
    t = time.perf_counter()
    verify_graph(graph, "compile")
    passes = PassContext.from_env(fast_math, keep_text=bool(os.environ.get("TENSORJIT_DUMP")))
    optimized = PIPELINE.run(graph, passes)
    timings["passes"] = time.perf_counter() - t
    t = time.perf_counter()
    lowering = Lowering(optimized)
    with _deep_recursion():
        module = lowering.run()
    verify_module(module)
    fusion_text = functools.lru_cache(maxsize=1)(
        lambda lowered=module: fusion_report(lowering, lowered))
    module, plan = plan_memory(module)
    verify_module(module)
    timings["lower"] = time.perf_counter() - t
    t = time.perf_counter()
    target = target or Target.host()
    entry = f"tj_{graph.name}" if graph.name.isidentifier() else "tj_entry"
    lanes = target.vector_bytes() // 4
    llvm_module = emit_llvm(module, entry, lanes, fast_math=fast_math, threads=threads,
                            arena_offsets=None if plan is None else plan.offsets)
    llvm_text = str(llvm_module)
    timings["codegen"] = time.perf_counter() - t
    # Loop-free modules (scalar-style code: one long block of scalar math) skip the IR
    # passes and generate machine code at O1: the IR passes' loop and vector work has
    # nothing to do there and their CSE the code generator already did, and O2/O3 machine
    # code only schedules the one block longer (100-joint IK gradient: same run time
    # within 2%, IR passes 20 ms and O3 machine code 40 ms saved).
    has_loops = any(isinstance(s, Loop) for k in module.kernels for s in k.body)
    code = jit_compile(llvm_text, opt_level if has_loops else min(opt_level, 1), target,
                       ir_opt_level=None if has_loops else 0)
    timings.update(code.timings)
    sig = Signature(
        inputs=tuple(ArgSpec(p.attr("name"), p.shape, p.dtype) for p in graph.params),
        outputs=tuple(ArgSpec(f"out{k}", o.shape, o.dtype) for k, o in enumerate(graph.outputs)),
        returns_tuple=graph.returns_tuple,
        symbols=module.symbols,
        arena=(ArenaItem(Size(plan.arena_bytes), 1),) if plan is not None else
        tuple(ArenaItem(s.numel, s.itemsize) for s in arena_slots(module)),
        consts=tuple(np.ascontiguousarray(c.array()) for c in module.consts),
    )
    # Lazy: texts of large graphs (scalar-style code) take milliseconds to print, and the
    # loop IR prints expression DAGs as trees, so only a caller asking for one pays.
    graph_text = functools.lru_cache(maxsize=1)(lambda g=graph: str(g))
    optimized_text = functools.lru_cache(maxsize=1)(lambda g=optimized: str(g))
    loops_text = functools.lru_cache(maxsize=1)(lambda m=module: format_module(m))
    memory_text = plan.format() if plan is not None else \
        "no plan: temporaries of symbolic size are bump-allocated in buffer order"
    stages: dict[str, Callable[[], str]] = {
        "graph": graph_text,
        "optimized": optimized_text,
        "fusion": fusion_text,
        "loops": loops_text,
        "memory": lambda: memory_text,
        "llvm": lambda: llvm_text,
        "llvm-opt": code.optimized_ir,
        "asm": functools.lru_cache(maxsize=1)(code.asm),
    }
    timings["total"] = time.perf_counter() - t0
    stats = {
        "compile_seconds": timings,
        "kernels": len(module.kernels),
        "arena_bytes": plan.arena_bytes if plan is not None else None,
        "arena_naive_bytes": plan.naive_bytes if plan is not None else None,
        "pass_seconds": dict(passes.seconds),
        "pass_changes": dict(passes.changes),
        "threads": threads or _pool_threads(),
        "target": f"{target.cpu} ({target.vector_bytes() * 8}-bit vectors)",
    }
    fn = CompiledFunction(graph.name, sig, code.address(entry), code, stages, stats)
    _dump(graph.name, fn, passes.snapshots)
    return fn


def _pool_threads() -> int:
    """The runtime thread pool's size (what kernels split across by default)."""
    from tensorjit.runtime.native import lib

    return int(lib.tj_get_num_threads())


def _dump(name: str, fn: CompiledFunction, passes: list[tuple[str, str]]) -> None:
    """``TENSORJIT_DUMP=DIR``: every stage's text, the graph after every pass included, as
    ``DIR/NAME-HASH.NN.STAGE.txt`` (HASH tells apart functions of one name; NN orders the
    stages, so ``diff`` of consecutive files shows what one pass or stage did)."""
    directory = os.environ.get("TENSORJIT_DUMP")
    if not directory:
        return
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    graph_text = fn.ir("graph")
    base = re.sub(r"[^\w.-]+", "_", name).strip("_") or "fn"
    base += "-" + hashlib.sha1(graph_text.encode()).hexdigest()[:8]
    texts = [("graph", graph_text)] + [(f"pass-{p}", text) for p, text in passes]
    texts += [(stage, fn.ir(stage)) for stage in fn.stage_names() if stage != "graph"]
    for k, (stage, text) in enumerate(texts):
        (path / f"{base}.{k:02d}.{stage}.txt").write_text(text + "\n")


def _signature_of(args: tuple[Any, ...]) -> tuple:
    key = []
    for a in args:
        if hasattr(a, "shape") and hasattr(a, "dtype"):
            key.append((a.shape, a.dtype))
        elif isinstance(a, (bool, int, float)):
            key.append(((), type(a).__name__))
        else:
            key.append((np.shape(a), np.asarray(a).dtype))
    return tuple(key)


class JitFunction:
    """``@tj.jit``: trace and compile on the first call per input signature."""

    def __init__(self, fn: Callable[..., Any], **options: Any) -> None:
        unknown = set(options) - set(_OPTIONS)
        if unknown:
            raise TensorJitError(f"jit: unknown option(s) {sorted(unknown)}; options are "
                                 f"{', '.join(_OPTIONS)}")
        _check_options(options.get("opt_level", 3), options.get("fast_math", False),
                       options.get("threads"))
        # updated=(): copying fn.__dict__ would let a callable object's own attributes
        # (a "fn" or "options") replace ours, so jit(obj) would compile obj.fn.
        functools.update_wrapper(self, fn, updated=())
        self.fn = fn
        self.options = options
        self._compiled: dict[tuple, CompiledFunction] = {}
        # While there is one signature, its probe: a call with its arrays builds no key.
        self._probe: Callable[..., Any] | None = None

    def __call__(self, *args: Any, out: Any = None) -> Any:
        if self._probe is not None and out is None:
            result = self._probe(*args)
            if result is not PROBE_MISS:
                return result
        try:  # arrays and NumPy scalars: the cheap key
            key: tuple = tuple([(a.shape, a.dtype) for a in args])
        except AttributeError:
            key = _signature_of(args)
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self.lower(*args)
            self._compiled[key] = compiled
            self._probe = compiled.probe() if len(self._compiled) == 1 else None
        return compiled(*args, out=out)

    def lower(self, *args: Any) -> CompiledFunction:
        """Trace and compile for these arguments (arrays or TensorSpecs)."""
        with paused_gc():
            return compile(trace(self.fn, *args), **self.options)

    @property
    def signatures(self) -> list[tuple]:
        return list(self._compiled)


def jit(fn: Callable[..., Any] | None = None, **options: Any) -> Any:
    """Decorator (``@tj.jit`` or ``@tj.jit(threads=1)``) or call (``tj.jit(fn, ...)``)."""
    if fn is None:
        return lambda f: JitFunction(f, **options)
    return JitFunction(fn, **options)

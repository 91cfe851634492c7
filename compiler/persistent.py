"""``tj.compile`` and the persistent cache (``runtime/diskcache.py``): look a graph up before
building it, store what was built.

A hit rebuilds the ``CompiledFunction`` from the entry alone: the object file goes
straight to MCJIT (no lowering, no LLVM IR, no optimization), the Signature comes from
the entry's header. Its ``ir(stage)`` texts other than the graph are produced on demand
by compiling the graph again (introspection is rare; start-up is not).
"""

from __future__ import annotations

import functools
import hashlib
import os
import time
import warnings
from collections.abc import Callable
from typing import Any

from tensorjit.ir.graph import ConstArray, Graph
from tensorjit.runtime.compiled import CompiledFunction
from tensorjit.runtime.diskcache import DiskCache, Environment, default_cache, make_key
from tensorjit.runtime.serialize import signature_from_dict, signature_to_dict

_warned: set[str] = set()


def const_digests(graph: Graph) -> list[str]:
    """SHA-256 of every constant array in the graph, in node order (the graph's text shows
    only their shapes)."""
    out = []
    for node in graph.nodes():
        for _, value in node.attrs:
            if isinstance(value, ConstArray):
                h = hashlib.sha256(value.data)
                h.update(f"{value.dtype}{value.shape}".encode())
                out.append(h.hexdigest())
    return out


# TENSORJIT_* variables that do not change the code compiled (the rest, such as
# TENSORJIT_DISABLE_PASSES, are part of the key).
_RUNTIME_ONLY = frozenset({"TENSORJIT_CACHE_DIR", "TENSORJIT_DISABLE_CACHE",
                           "TENSORJIT_NUM_THREADS", "TENSORJIT_DUMP"})


def compile_environment() -> tuple[tuple[str, str], ...]:
    """The TENSORJIT_* environment variables that can change the compiled code."""
    return tuple(sorted((k, v) for k, v in os.environ.items()
                        if k.startswith("TENSORJIT_") and k not in _RUNTIME_ONLY))


def graph_identity(graph: Graph) -> tuple[str, tuple[str, ...], tuple[tuple[str, str], ...]]:
    """What identifies a graph's code: its text, its constants' contents and the
    compile-affecting environment."""
    return str(graph), tuple(const_digests(graph)), compile_environment()


def _inputs(graph: Graph) -> list[str]:
    return [f"{p.attr('name')}:{p.dtype.short}{list(p.shape)}" for p in graph.params]


def _environment(target: Any) -> Environment:
    from tensorjit.runtime.engine import llvm_version

    return Environment(target.cpu, target.features, target.triple, llvm_version())


class Lookup:
    """One compile's view of the cache: its key, then ``get`` or ``put``."""

    def __init__(self, graph: Graph, identity: tuple[Any, ...], options: dict[str, Any],
                 cache: DiskCache | None = None) -> None:
        from tensorjit.runtime.engine import Target

        self.graph = graph
        self.graph_text = identity[0]
        self.cache = cache or default_cache()
        self.target = Target.host()
        self.env = _environment(self.target)
        options = dict(options, environment=[list(kv) for kv in identity[2]])
        self.key = make_key(identity[0], list(identity[1]), _inputs(graph), options, self.env)

    def get(self, rebuild: Callable[[], CompiledFunction]) -> CompiledFunction | None:
        from tensorjit.runtime.engine import load_object

        if os.environ.get("TENSORJIT_DUMP"):
            return None  # build, so that every stage is dumped
        t0 = time.perf_counter()
        entry = self.cache.get(self.key, self.env)
        if entry is None:
            return None
        header = entry.header
        code = load_object(entry.object_code, self.target)
        sig = signature_from_dict(header["signature"], entry.consts())
        graph_text = self.graph_text
        rebuilt = functools.lru_cache(maxsize=1)(rebuild)
        stages: dict[str, Callable[[], str]] = {}

        def text_of(stage: str) -> Callable[[], str]:
            if stage == "graph":
                return lambda: graph_text
            return lambda: rebuilt().ir(stage)

        for stage in header.get("stages", ["graph"]):
            stages[stage] = text_of(stage)
        seconds = time.perf_counter() - t0
        stats = dict(header.get("stats", {}), cache="hit", cache_key=self.key,
                     compile_seconds={"cache_load": seconds, "total": seconds})
        return CompiledFunction(self.graph.name, sig, code.address(header["entry"]), code,
                                stages, stats)

    def put(self, fn: CompiledFunction) -> None:
        code = fn.keepalive
        entry = next((n for n, a in getattr(code, "symbols", {}).items() if a == fn.address),
                     None)
        obj = getattr(code, "obj", b"")
        if entry is None or not obj:
            return  # not code this cache knows how to store
        keep = ("kernels", "arena_bytes", "threads", "target")
        header = {
            "name": fn.name, "entry": entry, "signature": signature_to_dict(fn.signature),
            "stats": {k: fn.stats[k] for k in keep if k in fn.stats},
            "stages": fn.stage_names(),
        }
        blobs = [obj] + [c.tobytes() for c in fn.signature.consts]
        try:
            self.cache.put(self.key, self.env, header, blobs)
        except OSError as exc:  # an unwritable cache must never fail a compile
            where = str(self.cache.root)
            if where not in _warned:
                _warned.add(where)
                warnings.warn(f"tensorjit: cannot write the compile cache in {where} ({exc}); "
                              "set TENSORJIT_CACHE_DIR to a writable directory or "
                              "TENSORJIT_DISABLE_CACHE=1", RuntimeWarning, stacklevel=3)
        fn.stats.setdefault("cache", "miss")
        fn.stats["cache_key"] = self.key

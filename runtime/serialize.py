"""A ``Signature`` as JSON-able data, and pickling of ``CompiledFunction``.

The same description of a compiled entry point (inputs, outputs, symbolic dims, arena
items, constant arrays) goes into three places: the persistent compile cache, the
manifest of an AOT library, and a pickled function. Constant arrays' bytes travel
separately (cache blobs, data inside the AOT library, pickle bytes); the dict holds their
dtypes and shapes.

Pickling ships machine code, never a graph: a function compiled in this process pickles
as its relocatable object file (loaded with MCJIT on the other side; no tracing, lowering
or optimization happens there), a function from ``tj.load`` as the bytes of its shared
library. Either side checks that the CPU can run the code.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from typing import TYPE_CHECKING, Any

import numpy as np

from tensorjit.ir.dtypes import as_dtype
from tensorjit.ir.errors import TensorJitError
from tensorjit.ir.shapes import Shape, Size

if TYPE_CHECKING:
    from tensorjit.runtime.compiled import CompiledFunction, Signature

#: Bumped when the dict layout changes (cache entries and manifests record it).
FORMAT_VERSION = 1

# Fields of Signature/ArgSpec/ArenaItem this module knows how to write. A new field must
# be added here (and to the dict) or serialization refuses loudly instead of dropping it.
_KNOWN = {
    "Signature": {"inputs", "outputs", "returns_tuple", "symbols", "arena", "consts"},
    "ArgSpec": {"name", "shape", "dtype"},
    "ArenaItem": {"numel", "itemsize"},
}


def _check_fields(obj: Any) -> None:
    kind = type(obj).__name__
    have = {f.name for f in dataclasses.fields(obj)}
    if have != _KNOWN[kind]:
        raise TensorJitError(f"runtime/serialize.py does not know {kind} fields "
                             f"{sorted(have ^ _KNOWN[kind])}; update it with the dataclass")


def _shape(shape: Shape) -> list[int | str]:
    return [d if isinstance(d, str) else int(d) for d in shape]


def signature_to_dict(sig: Signature) -> dict[str, Any]:
    """JSON-able description; constant arrays appear as dtype and shape only."""
    _check_fields(sig)
    for spec in (*sig.inputs, *sig.outputs):
        _check_fields(spec)
    for item in sig.arena:
        _check_fields(item)
    return {
        "inputs": [{"name": s.name, "dtype": s.dtype.value, "shape": _shape(s.shape)}
                   for s in sig.inputs],
        "outputs": [{"name": s.name, "dtype": s.dtype.value, "shape": _shape(s.shape)}
                    for s in sig.outputs],
        "returns_tuple": bool(sig.returns_tuple),
        "symbols": list(sig.symbols),
        "arena": [{"coef": int(a.numel.coef), "syms": list(a.numel.syms),
                   "itemsize": int(a.itemsize)} for a in sig.arena],
        "consts": [{"dtype": np.dtype(c.dtype).str, "shape": [int(d) for d in c.shape]}
                   for c in sig.consts],
    }


def signature_from_dict(d: dict[str, Any], consts: list[np.ndarray] | None = None) -> Signature:
    """Inverse of ``signature_to_dict``; ``consts`` are the constant arrays, in order."""
    from tensorjit.runtime.compiled import ArenaItem, ArgSpec, Signature

    consts = list(consts or [])
    if len(consts) != len(d["consts"]):
        raise TensorJitError(f"signature: {len(d['consts'])} constant array(s) described, "
                             f"{len(consts)} given")
    for c, desc in zip(consts, d["consts"]):
        if np.dtype(desc["dtype"]) != c.dtype or list(c.shape) != desc["shape"]:
            raise TensorJitError(f"signature: constant array {c.dtype}{list(c.shape)} does "
                                 f"not match its description {desc}")

    def spec(s: dict[str, Any]) -> ArgSpec:
        shape = tuple(x if isinstance(x, str) else int(x) for x in s["shape"])
        return ArgSpec(s["name"], shape, as_dtype(s["dtype"]))

    return Signature(
        inputs=tuple(spec(s) for s in d["inputs"]),
        outputs=tuple(spec(s) for s in d["outputs"]),
        returns_tuple=bool(d["returns_tuple"]),
        symbols=tuple(d["symbols"]),
        arena=tuple(ArenaItem(Size(int(a["coef"]), tuple(a["syms"])), int(a["itemsize"]))
                    for a in d["arena"]),
        consts=tuple(consts),
    )


def const_from_bytes(data: bytes | memoryview, desc: dict[str, Any]) -> np.ndarray:
    """A read-only array over ``data`` described by one ``signature_to_dict`` const entry."""
    return np.frombuffer(data, dtype=np.dtype(desc["dtype"])).reshape(desc["shape"])


# --- pickling ----------------------------------------------------------------------------
def _portable_stats(stats: dict[str, Any]) -> dict[str, Any]:
    keep = ("kernels", "arena_bytes", "threads", "target")
    return {k: stats[k] for k in keep if k in stats}


def reduce_compiled(fn: CompiledFunction) -> tuple[Any, tuple[Any, ...]]:
    """``CompiledFunction.__reduce__``: (restore function, its arguments)."""
    sig = signature_to_dict(fn.signature)
    consts = [np.ascontiguousarray(c).tobytes() for c in fn.signature.consts]
    graph_text = None
    if "graph" in fn.stages:
        try:
            graph_text = fn.stages["graph"]()
        except Exception:  # noqa: BLE001 - introspection only; never block pickling
            graph_text = None
    code = fn.keepalive
    payload = getattr(code, "pickle_payload", None)
    if payload is not None:  # an AOT library from tj.load
        kind, data = "shared", payload()
    else:
        entry = next((n for n, a in getattr(code, "symbols", {}).items() if a == fn.address),
                     None)
        target = getattr(code, "target", None)
        obj = code.object_code() if hasattr(code, "object_code") else None
        if entry is None or target is None or not obj:
            raise TypeError(f"cannot pickle {fn!r}: its machine code is not available as an "
                            "object file")
        data = {"object": obj, "entry": entry, "cpu": target.cpu,
                "features": target.features, "triple": target.triple}
        kind = "object"
    return _restore, (FORMAT_VERSION, fn.name, sig, consts, kind, data,
                      _portable_stats(fn.stats), graph_text)


def _restore(version: int, name: str, sig: dict[str, Any], consts: list[bytes], kind: str,
             data: Any, stats: dict[str, Any], graph_text: str | None) -> CompiledFunction:
    from tensorjit.runtime.compiled import CompiledFunction

    if version != FORMAT_VERSION:
        raise TensorJitError(f"pickled tensorjit function {name!r} has format {version}; "
                             f"this tensorjit reads format {FORMAT_VERSION}")
    if kind == "shared":
        from tensorjit.runtime.aot import load_bytes

        return load_bytes(data["library"], data["manifest"])
    from tensorjit.runtime.cpu import check_cpu
    from tensorjit.runtime.engine import Target, load_object

    target = Target(data["cpu"], data["features"], data["triple"])
    check_cpu(target.required_features(), f"pickled function {name!r}", target.cpu)
    code = load_object(data["object"], target)
    arrays = [const_from_bytes(b, d) for b, d in zip(consts, sig["consts"])]
    stages = {"graph": lambda: graph_text} if graph_text is not None else {}
    stats = dict(stats, compile_seconds=dict(code.timings), origin="unpickled")
    return CompiledFunction(name, signature_from_dict(sig, arrays), code.address(data["entry"]),
                            code, stages, stats)


def write_temp_library(data: bytes, suffix: str = ".so") -> str:
    """Write shared-library bytes to a private temporary file (for dlopen); returns its path.

    The file is unlinked by the caller once loaded (the mapping stays valid)."""
    fd, path = tempfile.mkstemp(prefix="tensorjit-", suffix=suffix)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    return path

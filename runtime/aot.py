"""``tj.load``: an AOT library (from ``tj.export``) as a callable, with no compiler and no LLVM.

The manifest beside the library (``NAME.json``) describes the entry point; the library's
low-level ``NAME_entry`` is called through the same ``CompiledFunction`` as JIT code, so
the argument checks, output allocation, memory pool and ``out=`` are the same. The
library's constant arrays are read in place from its memory (``NAME_const``).

Before anything runs, the manifest's CPU features are checked against this CPU: a library
built for features this CPU lacks is refused with a clear error, not an illegal
instruction.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import cffi
import numpy as np

from tensorjit.ir.errors import TensorJitError
from tensorjit.runtime.compiled import CompiledFunction
from tensorjit.runtime.cpu import check_cpu
from tensorjit.runtime.serialize import (
    FORMAT_VERSION,
    signature_from_dict,
    write_temp_library,
)

MANIFEST_FORMAT = "tensorjit-aot"


class AotLibrary:
    """A loaded AOT library: keeps it mapped while a function uses its code."""

    def __init__(self, path: Path, manifest: dict[str, Any], data: bytes | None = None) -> None:
        self.path = path
        self.manifest = manifest
        fns = manifest["functions"]
        self.ffi = cffi.FFI()
        self.ffi.cdef(f"""
            int {fns['entry']}(void **buffers, const int64_t *dims, char *arena);
            const void *{fns['const']}(int k);
            const char *{fns['last_error']}(void);
            void {fns['set_num_threads']}(int n);
            const char *{fns['manifest']}(void);
        """)
        try:
            self.lib = self.ffi.dlopen(str(path))
        except OSError as exc:
            raise TensorJitError(f"tj.load: cannot load {path}: {exc}") from None
        self._data = data

    def entry_address(self) -> int:
        fn = getattr(self.lib, self.manifest["functions"]["entry"])
        return int(self.ffi.cast("uintptr_t", fn))

    def const(self, k: int, desc: dict[str, Any]) -> np.ndarray:
        ptr = getattr(self.lib, self.manifest["functions"]["const"])(k)
        if ptr == self.ffi.NULL:
            raise TensorJitError(f"tj.load: {self.path} has no constant array {k}")
        dtype = np.dtype(desc["dtype"])
        count = int(np.prod(desc["shape"], dtype=np.int64))
        buf = self.ffi.buffer(self.ffi.cast("char *", ptr), count * dtype.itemsize)
        arr = np.frombuffer(buf, dtype=dtype).reshape(desc["shape"])
        arr.flags.writeable = False
        return arr

    def embedded_manifest(self) -> dict[str, Any]:
        text = self.ffi.string(getattr(self.lib, self.manifest["functions"]["manifest"])())
        return json.loads(text.decode())

    def set_num_threads(self, n: int) -> None:
        getattr(self.lib, self.manifest["functions"]["set_num_threads"])(n)

    def pickle_payload(self) -> dict[str, Any]:
        data = self._data if self._data is not None else self.path.read_bytes()
        return {"library": data, "manifest": self.manifest}


def _manifest_for(path: Path) -> Path:
    stem = path.name.split(".")[0]
    candidates = [stem[3:]] if stem.startswith("lib") and len(stem) > 3 else []
    candidates.append(stem)
    for c in candidates:
        p = path.with_name(f"{c}.json")
        if p.is_file():
            return p
    for p in sorted(path.parent.glob("*.json")):
        try:
            m = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(m, dict) and m.get("format") == MANIFEST_FORMAT \
                and m.get("library") == path.name:
            return p
    raise TensorJitError(f"tj.load: no manifest for {path} (looked for "
                         f"{', '.join(c + '.json' for c in candidates)} beside it); "
                         "tj.export writes NAME.json next to the library")


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise TensorJitError(f"tj.load: cannot read manifest {path}: {exc}") from None
    _check_manifest(manifest, str(path))
    return manifest


def _check_manifest(manifest: Any, where: str) -> None:
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise TensorJitError(f"tj.load: {where} is not a tensorjit AOT manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise TensorJitError(f"tj.load: {where} has manifest format "
                             f"{manifest.get('format_version')}; this tensorjit reads format "
                             f"{FORMAT_VERSION}. Export the library again.")


def _function(lib: AotLibrary) -> CompiledFunction:
    m = lib.manifest
    sig_dict = m["signature"]
    consts = [lib.const(k, d) for k, d in enumerate(sig_dict["consts"])]
    sig = signature_from_dict(sig_dict, consts)
    graph_text = m.get("graph")
    stages = {"graph": lambda: graph_text} if graph_text else {}
    target = m["target"]
    stats = {"target": f"{target['cpu']} (AOT)", "library": str(lib.path),
             "tensorjit_version": m.get("tensorjit_version"), "origin": "aot"}
    return CompiledFunction(m["name"], sig, lib.entry_address(), lib, stages, stats)


def load(path: str | os.PathLike[str], manifest: str | os.PathLike[str] | None = None
         ) -> CompiledFunction:
    """Load a library written by ``tj.export``; returns a callable ``CompiledFunction``.

    ``manifest`` defaults to ``NAME.json`` beside the library. Raises ``TensorJitError``
    if this CPU lacks a feature the library was built for.
    """
    lib_path = Path(path).resolve()
    if not lib_path.is_file():
        raise TensorJitError(f"tj.load: {lib_path} does not exist")
    manifest_path = Path(manifest) if manifest is not None else _manifest_for(lib_path)
    m = _read_manifest(manifest_path)
    check_cpu(m["target"]["features"], f"{lib_path.name}", m["target"]["cpu"])
    return _function(AotLibrary(lib_path, m))


def load_bytes(data: bytes, manifest: dict[str, Any]) -> CompiledFunction:
    """Load a library from its bytes (an unpickled ``tj.load`` function)."""
    _check_manifest(manifest, "pickled library")
    check_cpu(manifest["target"]["features"], f"pickled library {manifest['library']}",
              manifest["target"]["cpu"])
    tmp = Path(write_temp_library(data))
    try:
        lib = AotLibrary(tmp, manifest, data)
    finally:
        tmp.unlink()  # the mapping stays valid
    return _function(lib)

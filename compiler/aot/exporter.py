"""``tj.export``: a function or graph -> a self-contained shared library, its C header and a
JSON manifest.

Pipeline: the graph goes through the same ``_build`` as ``tj.compile`` (for the host or a
portable CPU level), the optimized LLVM module is emitted once more as a
position-independent object (small code model), and the system C compiler links it with
the generated wrapper (``csource.py``) and the static C runtime (``libtjrt_static.a``)::

    cc -O2 -fPIC -shared NAME.c entry.o libtjrt_static.a -lm -lpthread
       -Wl,--version-script=...   (exports NAME and NAME_* only)
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tensorjit.compiler.aot import csource
from tensorjit.compiler.frontend.trace import trace
from tensorjit.ir.errors import TensorJitError
from tensorjit.ir.graph import Graph
from tensorjit.runtime import native
from tensorjit.runtime.cpu import isa_features
from tensorjit.runtime.diskcache import tensorjit_version
from tensorjit.runtime.serialize import FORMAT_VERSION, signature_to_dict

MANIFEST_FORMAT = "tensorjit-aot"


@dataclass(frozen=True)
class Exported:
    """The files ``tj.export`` wrote."""

    library: Path
    header: Path
    manifest: Path
    name: str

    def __fspath__(self) -> str:
        return str(self.library)


def _default_name(path: Path, graph: Graph) -> str:
    stem = path.name.split(".")[0]
    if stem.startswith("lib") and len(stem) > 3:
        stem = stem[3:]
    for candidate in (stem, graph.name):
        if csource.c_identifier(candidate):
            return candidate
    return "tj_function"


def find_cc(cc: str | None = None) -> list[str]:
    """The C compiler command: ``cc`` argument, else ``$CC``, else ``cc``."""
    words = shlex.split(cc or os.environ.get("CC") or "cc")
    if not words or shutil.which(words[0]) is None:
        raise TensorJitError(f"tj.export needs a C compiler to link the shared library, and "
                             f"{words[0] if words else cc!r} was not found; install gcc or "
                             "clang, or set CC")
    return words


def export(fn_or_graph: Graph | Callable[..., Any], path: str | os.PathLike[str], *specs: Any,
           name: str | None = None, target: str | None = None, opt_level: int = 3,
           fast_math: bool = False, threads: int | None = None,
           cc: str | None = None) -> Exported:
    """Compile ``fn_or_graph`` (traced on ``specs`` if it is a function) into the shared
    library ``path``, and write ``NAME.h`` and ``NAME.json`` beside it.

    ``name`` is the C function's name (default: the library's stem without ``lib``).
    ``target``: ``None``/``"host"`` for this CPU, or ``"x86-64-v3"`` / ``"x86-64-v4"`` for
    any CPU of that level. ``threads=1`` keeps the library single-threaded; otherwise its
    kernels use the runtime's thread pool (``NAME_set_num_threads``). ``cc``: the C
    compiler command (default ``$CC`` or ``cc``).
    """
    from tensorjit.compiler.api import _build, _check_options
    from tensorjit.runtime.engine import Target, llvm_version

    _check_options(opt_level, fast_math, threads)
    t0 = time.perf_counter()
    if isinstance(fn_or_graph, Graph):
        graph = fn_or_graph
    else:  # a Python function, or a tj.jit function (its Python function is .fn)
        graph = trace(getattr(fn_or_graph, "fn", fn_or_graph), *specs)
    out = Path(path).resolve()
    name = name or _default_name(out, graph)
    if not csource.c_identifier(name):
        raise TensorJitError(f"export: name {name!r} is not a C identifier")
    cc_cmd = find_cc(cc)
    try:
        tgt = Target.named(target)
    except ValueError as exc:
        raise TensorJitError(f"export: {exc}") from None

    compiled = _build(graph, opt_level, fast_math, threads, t0, target=tgt)
    code = compiled.keepalive
    entry = next(n for n, a in code.symbols.items() if a == compiled.address)
    machine = tgt.machine(opt=3 if opt_level >= 2 else opt_level, reloc="pic",
                          codemodel="small")
    obj = machine.emit_object(code.module)

    sig = compiled.signature
    taken: set[str] = set()
    in_names = csource.unique_cnames([s.name for s in sig.inputs], taken, "in")
    out_names = csource.unique_cnames([s.name for s in sig.outputs], taken, "out")
    sym_names = csource.unique_cnames(list(sig.symbols), taken, "dim")
    features = tgt.required_features()
    manifest: dict[str, Any] = {
        "format": MANIFEST_FORMAT, "format_version": FORMAT_VERSION,
        "name": name, "library": out.name, "header": f"{name}.h",
        "functions": {k: f"{name}{s}" for k, s in (
            ("call", ""), ("checked", "_checked"), ("last_error", "_last_error"),
            ("error_string", "_error_string"), ("set_num_threads", "_set_num_threads"),
            ("manifest", "_manifest"), ("entry", "_entry"), ("const", "_const"),
            ("arena_bytes", "_arena_bytes"))},
        "c_names": {"inputs": in_names, "outputs": out_names, "symbols": sym_names},
        "signature": signature_to_dict(sig),
        "target": {"cpu": tgt.cpu, "triple": tgt.triple, "features": features,
                   "isa_features": isa_features(features),
                   "portable": target not in (None, "host")},
        "options": {"opt_level": opt_level, "fast_math": fast_math, "threads": threads},
        "tensorjit_version": tensorjit_version(), "llvm_version": llvm_version(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "graph": str(graph),
    }
    manifest_text = json.dumps(manifest, indent=2) + "\n"

    def arg(cname: str, spec: Any) -> csource.CArg:
        return csource.CArg(cname, spec.name, spec.dtype, spec.shape)

    header_path = out.parent / f"{name}.h"
    manifest_path = out.parent / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tensorjit-export-") as tmp:
        build = Path(tmp)
        const_files = []
        for k, c in enumerate(sig.consts):
            p = build / f"const{k}.bin"
            p.write_bytes(np.ascontiguousarray(c).tobytes())
            const_files.append((str(p), p.stat().st_size))
        (build / "manifest.bin").write_bytes(manifest_text.encode() + b"\0")
        lib = csource.CLibrary(
            name=name, entry_symbol=entry,
            inputs=[arg(c, s) for c, s in zip(in_names, sig.inputs)],
            outputs=[arg(c, s) for c, s in zip(out_names, sig.outputs)],
            symbols=list(sig.symbols), sym_cnames=sym_names,
            arena=[(a.numel, a.itemsize) for a in sig.arena], consts=const_files,
            cpu=tgt.cpu, features=isa_features(features),
            manifest_path=str(build / "manifest.bin"), version=tensorjit_version(),
            library_file=out.name, check_features=features)
        header_text = csource.header(lib)
        (build / f"{name}.h").write_text(header_text)
        (build / f"{name}.c").write_text(csource.wrapper(lib))
        (build / "entry.o").write_bytes(obj)
        (build / "exports.map").write_text(csource.version_script(name))
        tmp_lib = build / out.name
        cmd = [*cc_cmd, "-O2", "-fPIC", "-shared", "-fvisibility=hidden", "-std=gnu11",
               f"-I{build}", f"-I{native.include_dir()}", "-o", str(tmp_lib),
               str(build / f"{name}.c"), str(build / "entry.o"),
               str(native.static_library_path()), "-lm", "-lpthread",
               f"-Wl,--version-script={build / 'exports.map'}", "-Wl,-z,noexecstack"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise TensorJitError(f"export: the C compiler failed ({shlex.join(cmd)}):\n"
                                 f"{proc.stderr.strip()}")
        # Publish each file atomically (a process may be loading the previous version).
        for src, dst in ((tmp_lib, out), (build / f"{name}.h", header_path)):
            staged = dst.with_name(f".{dst.name}.tmp{os.getpid()}")
            shutil.copyfile(src, staged)
            os.replace(staged, dst)
        staged = manifest_path.with_name(f".{manifest_path.name}.tmp{os.getpid()}")
        staged.write_text(manifest_text)
        os.replace(staged, manifest_path)
    return Exported(out, header_path, manifest_path, name)

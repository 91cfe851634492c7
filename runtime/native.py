"""The tensorjit C runtime (``runtime/csrc/``), loaded through cffi in ABI mode.

The shared library is built by CMake at install time and installed into this
package as ``_tjrt<EXT_SUFFIX>`` (named like an extension module, although it
has no ``PyInit`` function), so ``importlib.util.find_spec`` finds it in both
normal and editable (scikit-build-core redirect) installs. We only locate it
and ``dlopen`` it; it is never imported as a module.

Public names: ``ffi``, ``lib``, ``library_path()``, ``static_library_path()``,
``include_dir()``, ``RuntimeLibraryMissing``, ``static_call_type()`` (the call path
from the extension module ``_tjcall``, which is imported, unlike the library).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import threading
from pathlib import Path
from typing import Any

import cffi

__all__ = [
    "ffi",
    "lib",
    "library_path",
    "static_library_path",
    "include_dir",
    "RuntimeLibraryMissing",
    "ALIGNMENT",
    "static_call_type",
]

#: Alignment in bytes of every block from ``lib.tj_aligned_alloc``.
ALIGNMENT = 64

_MODULE_NAME = "tensorjit.runtime._tjrt"
_STATIC_NAME = "libtjrt_static.a"

# Mirrors runtime/csrc/tjrt.h (cffi's cdef cannot read the preprocessor).
_CDEF = """
void *tj_aligned_alloc(size_t nbytes);
void tj_aligned_free(void *ptr);
int tj_runtime_version(void);
typedef void (*tj_body_fn)(void *ctx, int64_t begin, int64_t end);
int tj_parallel_for(int64_t n, int64_t min_chunk, tj_body_fn body, void *ctx);
void tj_set_num_threads(int n);
int tj_get_num_threads(void);
"""

ffi = cffi.FFI()
ffi.cdef(_CDEF)

_REINSTALL_HINT = (
    "the tensorjit C runtime library was not found; it is built by CMake when the "
    "package is installed. Reinstall from the repository root with "
    "`pip install -e .` (or `pip install .`) so that it is rebuilt."
)


class RuntimeLibraryMissing(ImportError):
    """The compiled C runtime is not installed next to this package."""


def library_path() -> Path:
    """Path of the shared C runtime (``_tjrt<EXT_SUFFIX>``) in the installed package."""
    try:
        spec = importlib.util.find_spec(_MODULE_NAME)
    except (ImportError, ValueError):
        spec = None
    if spec is None or spec.origin is None:
        raise RuntimeLibraryMissing(f"{_REINSTALL_HINT} (looked for module {_MODULE_NAME})")
    path = Path(spec.origin)
    if not path.is_file():
        raise RuntimeLibraryMissing(f"{_REINSTALL_HINT} ({path} does not exist)")
    return path


def static_library_path() -> Path:
    """Path of ``libtjrt_static.a`` (PIC, for linking into AOT shared objects).

    CMake installs it next to the shared library, which is the one file we can
    locate reliably in both normal and editable installs.
    """
    path = library_path().parent / _STATIC_NAME
    if not path.is_file():
        raise RuntimeLibraryMissing(f"{_REINSTALL_HINT} ({path} does not exist)")
    return path


def include_dir() -> Path:
    """Directory holding ``tjrt.h``, the C runtime's header (for AOT builds)."""
    path = library_path().parent / "include"
    if not (path / "tjrt.h").is_file():
        raise RuntimeLibraryMissing(f"{_REINSTALL_HINT} ({path / 'tjrt.h'} does not exist)")
    return path


#: The dlopened runtime (cffi library object). Declared here, bound on first
#: access by ``__getattr__`` below, so importing this module never needs the
#: library to exist.
lib: Any

_lib: Any = None
_lib_lock = threading.Lock()


def _load() -> Any:
    global _lib
    with _lib_lock:
        if _lib is None:
            path = library_path()
            try:
                _lib = ffi.dlopen(str(path))
            except OSError as exc:
                raise RuntimeLibraryMissing(f"{_REINSTALL_HINT} (dlopen {path}: {exc})") from exc
        return _lib


_CALL_MODULE = "tensorjit.runtime._tjcall"


@functools.cache
def static_call_type() -> Any:
    """``StaticCall`` from the extension module ``_tjcall`` (runtime/csrc/tjcall.c), the C
    call path of compiled functions with static shapes; built and installed with the
    runtime library."""
    try:
        module = importlib.import_module(_CALL_MODULE)
    except ImportError as exc:
        raise RuntimeLibraryMissing(f"{_REINSTALL_HINT} (import {_CALL_MODULE}: {exc})") from exc
    return module.StaticCall


def __getattr__(name: str) -> Any:
    # `lib` is loaded on first access, so importing this module (e.g. for
    # library_path() in a build step) never needs the library to exist.
    if name == "lib":
        return _load()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

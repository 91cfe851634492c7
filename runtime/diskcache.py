"""The persistent compile cache: machine code on disk, so a new process skips compiling.

Where: ``TENSORJIT_CACHE_DIR``, else the user cache directory (``$XDG_CACHE_HOME/tensorjit``
or ``~/.cache/tensorjit``; ``~/Library/Caches/tensorjit`` on macOS,
``%LOCALAPPDATA%\\tensorjit\\cache`` on Windows). ``TENSORJIT_DISABLE_CACHE=1`` turns it
off, as does ``tj.compile(..., cache=False)``.

Key: SHA-256 over the graph's text, the bytes of its constant arrays, the input
signature, the compile options, the CPU name and features, the LLVM version, the
tensorjit version and a digest of tensorjit's own compiler sources (so that a changed
compiler never reuses code built by an older one, even at the same version number).

Entry: one file ``<key[:2]>/<key>.tjc``::

    magic "TJCACHE\\0" | u32 format | u32 header bytes | u64 payload bytes | sha256 (32 bytes)
    header: JSON (the key, versions, CPU, the entry point's name, the Signature, stats,
            the sizes of the payload's blobs)
    payload: the blobs back to back (the object file, then each constant array)

The SHA-256 covers header and payload. A file whose magic, format, lengths, checksum,
key or versions do not match is a miss (it is then rebuilt and replaced). Writes go to a
temporary file in the same directory and are published with ``os.replace``, which is
atomic: a reader sees the old entry or the new one, never a mix, and two processes
compiling the same function at once each publish a complete entry (the last one wins;
both are valid).

Loading: the object file goes to MCJIT (``engine.load_object``: ``add_object_file``), which
took 1.7 ms for the MLP forward graph here. The alternative, storing a small shared
library per entry, loads in 0.2 ms (``dlopen``) but costs a ``cc -shared`` link (67 ms)
on every cold compile, and JIT code would then need the runtime's symbols exported
globally; so entries hold objects.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import platform
import struct
import sys
import tempfile
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from tensorjit.runtime import serialize

MAGIC = b"TJCACHE\0"
FORMAT = 1
_HEAD = struct.Struct("<8sIIQ32s")  # magic, format, header length, payload length, sha256
SUFFIX = ".tjc"


def cache_dir() -> Path:
    """The cache directory (not created here)."""
    env = os.environ.get("TENSORJIT_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "tensorjit"
    if os.name == "nt":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "tensorjit" / "cache"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tensorjit"


def disabled() -> bool:
    return os.environ.get("TENSORJIT_DISABLE_CACHE", "") not in ("", "0")


@lru_cache(maxsize=1)
def compiler_digest() -> str:
    """SHA-256 over the path, size and modification time of each of tensorjit's Python
    sources (ir, passes, compiler, runtime), computed once per process (about 1 ms; hashing
    the contents took 13 ms): code compiled by other sources is never reused. A changed
    file always gets a new time; the worst case of a false change is a rebuild."""
    h = hashlib.sha256()
    for pkg in ("tensorjit.ir", "tensorjit.passes", "tensorjit.compiler", "tensorjit.runtime"):
        spec = importlib.util.find_spec(pkg)
        for root in (spec.submodule_search_locations or []) if spec else []:
            entries = []
            for directory, dirs, files in os.walk(root):
                dirs[:] = [d for d in dirs if d != "__pycache__"]
                for name in files:
                    if name.endswith(".py"):
                        st = os.stat(os.path.join(directory, name))
                        rel = os.path.relpath(os.path.join(directory, name), root)
                        entries.append(f"{pkg}/{rel}:{st.st_size}:{st.st_mtime_ns};")
            h.update("".join(sorted(entries)).encode())
    return h.hexdigest()


def tensorjit_version() -> str:
    import tensorjit  # the parent package: always imported already

    return str(getattr(tensorjit, "__version__", "0+unknown"))


@dataclass(frozen=True)
class Environment:
    """What machine code depends on besides the graph and options."""

    cpu: str
    features: str
    triple: str
    llvm: str
    tensorjit: str = field(default_factory=tensorjit_version)
    sources: str = field(default_factory=compiler_digest)


def make_key(graph_text: str, const_digests: list[str], inputs: list[str],
             options: dict[str, Any], env: Environment) -> str:
    blob = json.dumps({"format": FORMAT, "graph": graph_text, "consts": const_digests,
                       "inputs": inputs, "options": options, "env": env.__dict__},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class Entry:
    header: dict[str, Any]
    blobs: list[memoryview]

    @property
    def object_code(self) -> bytes:
        return bytes(self.blobs[0])

    def consts(self) -> list[np.ndarray]:
        descs = self.header["signature"]["consts"]
        return [serialize.const_from_bytes(b, d) for b, d in zip(self.blobs[1:], descs)]


class DiskCache:
    """Entries under one directory; see the module docstring for the format."""

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root) if root is not None else cache_dir()
        self.misses_rejected = 0  # entries found but refused (corrupt, foreign)

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}{SUFFIX}"

    # --- read ----------------------------------------------------------------------------
    def get(self, key: str, env: Environment) -> Entry | None:
        """The entry for ``key``, or None if absent, corrupt, truncated or foreign."""
        try:
            data = self.path(key).read_bytes()
        except OSError:
            return None
        entry = self._parse(data, key, env)
        if entry is None:
            self.misses_rejected += 1
        return entry

    @staticmethod
    def _parse(data: bytes, key: str, env: Environment) -> Entry | None:
        if len(data) < _HEAD.size:
            return None
        magic, fmt, hlen, plen, digest = _HEAD.unpack_from(data)
        if magic != MAGIC or fmt != FORMAT or len(data) != _HEAD.size + hlen + plen:
            return None
        body = memoryview(data)[_HEAD.size:]
        if hashlib.sha256(body).digest() != digest:
            return None
        try:
            header = json.loads(bytes(body[:hlen]))
            if header.get("key") != key or header.get("env") != env.__dict__:
                return None
            sizes = [int(s) for s in header["blobs"]]
        except (ValueError, KeyError, TypeError):
            return None
        if sum(sizes) != plen:
            return None
        blobs, offset = [], hlen
        for s in sizes:
            blobs.append(body[offset:offset + s])
            offset += s
        return Entry(header, blobs)

    # --- write ---------------------------------------------------------------------------
    def put(self, key: str, env: Environment, header: dict[str, Any],
            blobs: list[bytes]) -> Path:
        """Publish an entry atomically (temporary file, then ``os.replace``)."""
        header = dict(header, key=key, env=env.__dict__, blobs=[len(b) for b in blobs],
                      created=time.time())
        hbytes = json.dumps(header, sort_keys=True).encode()
        h = hashlib.sha256(hbytes)
        for b in blobs:
            h.update(b)
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key[:16]}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(_HEAD.pack(MAGIC, FORMAT, len(hbytes), sum(len(b) for b in blobs),
                                   h.digest()))
                f.write(hbytes)
                for b in blobs:
                    f.write(b)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        return path

    # --- maintenance ---------------------------------------------------------------------
    def entries(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(self.root.glob(f"??/*{SUFFIX}"))

    def info(self) -> dict[str, Any]:
        files = self.entries()
        sizes = []
        for p in files:
            try:
                sizes.append(p.stat().st_size)
            except OSError:
                pass
        return {"directory": str(self.root), "entries": len(sizes), "bytes": sum(sizes),
                "disabled": disabled(), "tensorjit": tensorjit_version(),
                "python": platform.python_version()}

    def clear(self) -> int:
        """Remove every entry (and temporary files left by crashed writers, once they are
        an hour old: younger ones may belong to a write in progress); returns the number
        of entries removed."""
        removed = 0
        if not self.root.is_dir():
            return 0
        stale = time.time() - 3600
        for p in self.root.glob("??/.*.tmp"):
            try:
                if p.stat().st_mtime < stale:
                    p.unlink()
            except OSError:
                pass
        for p in self.root.glob(f"??/*{SUFFIX}"):
            try:
                p.unlink()
                removed += 1
            except OSError:
                pass
        for d in self.root.glob("??"):
            try:
                d.rmdir()
            except OSError:
                pass
        return removed


def default_cache() -> DiskCache:
    """The cache at ``cache_dir()`` (re-read from the environment on each call)."""
    return DiskCache()

"""Ahead-of-time compilation: ``tj.export`` writes a self-contained shared library, a C
header and a JSON manifest (``tj.load`` lives in ``runtime/aot.py``: loading needs no
compiler)."""

from tensorjit.compiler.aot.exporter import Exported, export

__all__ = ["Exported", "export"]

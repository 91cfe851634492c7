"""``passes_disabled()``: compile with no graph passes (``TENSORJIT_DISABLE_PASSES=all``).

The unoptimized build is the reference the pass tests compare the optimized one with;
``tj.compile`` reads the variable on each call, and the previous value is restored.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


@contextlib.contextmanager
def passes_disabled() -> Iterator[None]:
    old = os.environ.get("TENSORJIT_DISABLE_PASSES")
    os.environ["TENSORJIT_DISABLE_PASSES"] = "all"
    try:
        yield
    finally:
        if old is None:
            del os.environ["TENSORJIT_DISABLE_PASSES"]
        else:
            os.environ["TENSORJIT_DISABLE_PASSES"] = old

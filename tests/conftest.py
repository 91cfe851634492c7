"""Make the test process see only the installed ``tensorjit.*`` packages.

An editable install (scikit-build-core, redirect mode) writes a ``.pth`` file
that appends the repository root and its parent to ``sys.path``, which would
make the bare folders (``runtime``, ``ir``, ...) importable under names that a
normal install does not have. Drop those entries so tests behave the same in
editable and normal installs; ``tensorjit.*`` imports go through the editable
finder and do not need them.

Shared test helpers live in ``tests/support`` (``opcheck``: checking ops against NumPy;
``passes_off``: compiling without graph passes).
In importlib mode pytest puts no test folder on ``sys.path``, so this file adds that one
folder, and only it: with ``tests`` itself on the path, its folders would be importable
as bare ``compiler``, ``ir``, ... again.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parent.parent


def _shadows_repo(entry: str) -> bool:
    try:
        path = Path(entry or ".").resolve()
    except OSError:
        return False
    return path == _REPO_ROOT or path in _REPO_ROOT.parents


sys.path[:] = [p for p in sys.path if not _shadows_repo(p)]
sys.path.insert(0, str(Path(__file__).resolve().parent / "support"))

# The session compiles into a persistent cache of its own (fresh each run, removed at
# exit), never into the user's: results cannot depend on what an earlier run left there.
_CACHE_DIR = tempfile.mkdtemp(prefix="tensorjit-test-cache-")
os.environ["TENSORJIT_CACHE_DIR"] = _CACHE_DIR
atexit.register(shutil.rmtree, _CACHE_DIR, True)

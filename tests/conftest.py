"""Make the test process see only the installed ``tensorjit.*`` packages.

An editable install (scikit-build-core, redirect mode) writes a ``.pth`` file
that appends the repository root and its parent to ``sys.path``, which would
make the bare folders (``runtime``, ``ir``, ...) importable under names that a
normal install does not have. Drop those entries so tests behave the same in
editable and normal installs; ``tensorjit.*`` imports go through the editable
finder and do not need them.
"""

from __future__ import annotations

import sys
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parent.parent


def _shadows_repo(entry: str) -> bool:
    try:
        path = Path(entry or ".").resolve()
    except OSError:
        return False
    return path == _REPO_ROOT or path in _REPO_ROOT.parents


sys.path[:] = [p for p in sys.path if not _shadows_repo(p)]

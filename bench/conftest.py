"""pytest configuration for the benchmarks (``pytest bench/ --benchmark-only``).

The project's pytest config collects only ``tests/`` (``testpaths``) and ``test_*.py``
files, so a plain ``pytest`` never runs these. When ``bench/`` is given explicitly, this
conftest collects ``bench_*.py`` files, makes ``_harness`` importable (the project runs
pytest with ``--import-mode=importlib``, which puts no test folder on ``sys.path``), and
prints, before pytest-benchmark's own tables, the median of each benchmark and its ratio
to the NumPy median of the same group.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:
    sys.path.insert(0, str(_HERE))

# (group, label) -> median seconds per call, filled by the `record` fixture.
_MEDIANS: dict[tuple[str, str], float] = {}


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    # Files named on the command line are collected by pytest itself whatever their name.
    if (file_path.suffix == ".py" and file_path.name.startswith("bench_")
            and not parent.session.isinitpath(file_path)):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


@pytest.fixture
def record(benchmark: Any) -> Any:
    """``record(label)`` after ``benchmark(...)``: remember the median for the ratio table."""

    def _record(label: str) -> None:
        meta = getattr(benchmark, "stats", None)
        if meta is not None:  # None under --benchmark-disable
            _MEDIANS[(benchmark.group or "", label)] = meta.stats.median

    return _record


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _MEDIANS:
        return
    tr = terminalreporter
    tr.section("medians per benchmark group; ratio = NumPy median / this median (same run)")
    gw = max(len(g) for g, _ in _MEDIANS)
    lw = max(len(label) for _, label in _MEDIANS)
    for (group, label), median in sorted(_MEDIANS.items()):
        base = _MEDIANS.get((group, "numpy"))
        ratio = f"{base / median:7.2f}x" if base is not None and label != "numpy" else ""
        tr.write_line(f"{group:{gw}s}  {label:{lw}s}  {median * 1e6:12.2f} us  {ratio}")

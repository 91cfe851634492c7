"""Fixtures for the pass tests: a small FileCheck, and running one pass on IR text.

``filecheck(text, checks)`` follows LLVM's FileCheck in miniature. ``checks`` holds lines
``CHECK: pattern`` (found on a line at or after the previous match), ``CHECK-NEXT:``
(on the very next line), ``CHECK-SAME:`` (later on the line of the previous match) and
``CHECK-NOT:`` (on no line between the matches around it). In a pattern, ``[[NAME:regex]]``
captures and ``[[NAME]]`` repeats a capture; everything else is literal. SSA names
change when a pass rewrites a graph, so golden tests capture them:
``CHECK: [[X:%\\d+]] = exp(%0)`` then ``CHECK: add([[X]], [[X]])``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from tensorjit.ir.graph import Graph
from tensorjit.ir.parser import parse_graph
from tensorjit.passes.manager import PassContext, Pipeline

_VAR = re.compile(r"\[\[(\w+)(?::(.*?))?\]\]")


def _regex(pattern: str, env: dict[str, str]) -> tuple[re.Pattern[str], list[str]]:
    out, names, pos = [], [], 0
    for m in _VAR.finditer(pattern):
        out.append(re.escape(pattern[pos:m.start()]))
        name, rx = m.group(1), m.group(2)
        if rx is None:
            if name not in env:
                raise AssertionError(f"FileCheck: [[{name}]] used before it is captured")
            out.append(re.escape(env[name]))
        else:
            out.append(f"(?P<{name}>{rx})")
            names.append(name)
        pos = m.end()
    out.append(re.escape(pattern[pos:]))
    return re.compile("".join(out)), names


def filecheck(text: str, checks: str) -> None:
    lines = text.splitlines()
    env: dict[str, str] = {}
    line, col = 0, 0  # where the next search starts
    last_line = -1
    pending_not: list[str] = []
    directives = [d.strip() for d in checks.strip().splitlines() if d.strip()]

    def fail(why: str) -> None:
        raise AssertionError(f"FileCheck: {why}\n--- input ---\n{text}")

    def check_nots(upto: int) -> None:
        for pat in pending_not:
            rx, _ = _regex(pat, env)
            for k in range(last_line + 1, upto):
                if rx.search(lines[k]):
                    fail(f"CHECK-NOT: {pat!r} matched line {k + 1}: {lines[k]!r}")
        pending_not.clear()

    for d in directives:
        kind, _, pat = d.partition(":")
        pat = pat.strip()
        if kind == "CHECK-NOT":
            pending_not.append(pat)
            continue
        rx, names = _regex(pat, env)
        if kind == "CHECK":
            found = None
            for k in range(line if last_line < 0 else last_line + 1, len(lines)):
                m = rx.search(lines[k])
                if m:
                    found = (k, m)
                    break
        elif kind == "CHECK-NEXT":
            k = last_line + 1
            m = rx.search(lines[k]) if k < len(lines) else None
            found = (k, m) if m else None
        elif kind == "CHECK-SAME":
            m = rx.search(lines[last_line], col) if last_line >= 0 else None
            found = (last_line, m) if m else None
        else:
            raise AssertionError(f"FileCheck: unknown directive {d!r}")
        if found is None:
            fail(f"{kind}: {pat!r} not found after line {last_line + 1}")
        k, m = found
        check_nots(k)
        for n in names:
            env[n] = m.group(n)
        last_line, col = k, m.end()
    check_nots(len(lines))


@pytest.fixture(name="filecheck")
def _filecheck() -> Callable[[str, str], None]:
    return filecheck


def run_pass(pipeline: Pipeline, text: str, fast_math: bool = False) -> Graph:
    return pipeline.run(parse_graph(text), PassContext(fast_math=fast_math, verify=True))


@pytest.fixture(name="run_pass")
def _run_pass() -> Callable[..., str]:
    """``run_pass(PASS, text, fast_math=False)``: the printed graph after one pass."""

    def run(p: object, text: str, fast_math: bool = False) -> str:
        from tensorjit.passes.manager import Pass

        assert isinstance(p, Pass)
        return str(run_pass(Pipeline([p]), text, fast_math))

    return run

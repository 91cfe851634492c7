"""examples/aot_c: CMake (TENSORJIT_BUILD_EXAMPLES=ON) exports the MLP with tensorjit,
builds the C program against the library and CTest runs it (it checks its results against
NumPy's, and the error codes), plus the call-overhead benchmark."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("cmake") is None or shutil.which("ctest") is None
                    or shutil.which("cc") is None, reason="needs cmake, ctest and a C compiler")
def test_c_example_builds_and_passes_ctest(tmp_path):
    build = tmp_path / "build"

    def run(*cmd: str) -> str:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, f"{' '.join(cmd)}\n{out.stdout}\n{out.stderr}"
        return out.stdout

    run("cmake", "-S", str(REPO), "-B", str(build), "-DTENSORJIT_BUILD_EXAMPLES=ON",
        f"-DPython_EXECUTABLE={sys.executable}")
    run("cmake", "--build", str(build), "--target", "aot_mlp", "aot_call_overhead")
    out = run("ctest", "--test-dir", str(build), "--output-on-failure", "-V")
    assert "batch 8: max |C - NumPy|" in out and "\n1: ok" in out
    assert "call overhead" in out
    assert "100% tests passed" in out

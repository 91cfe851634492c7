"""The command line: specs, stages, errors."""

import subprocess
import sys

import pytest

from tensorjit.compiler.cli import main, parse_spec


def test_parse_spec():
    name, spec = parse_spec("x:f32[batch,784]")
    assert name == "x" and spec.shape == ("batch", 784) and spec.dtype.short == "f32"
    assert parse_spec("i64[]")[1].shape == ()


def test_ir_prints_the_requested_stage(tmp_path, capsys, monkeypatch):
    (tmp_path / "cli_model.py").write_text(
        "import tensorjit as tj\ndef forward(x):\n    return tj.exp(x) * 2.0\n")
    monkeypatch.chdir(tmp_path)
    assert main(["ir", "cli_model:forward", "--spec", "x:f32[n]", "--stage", "loops"]) == 0
    out = capsys.readouterr().out
    assert "kernel k0" in out and "vfor j0 in 0..$n" in out
    assert main(["ir", "cli_model:forward", "--spec", "x:f32[8]", "--stage", "graph"]) == 0
    assert "exp(%0)" in capsys.readouterr().out


def test_bad_spec_is_a_clear_error(capsys):
    assert main(["ir", "os:getcwd", "--spec", "x:q8[3]"]) == 1
    assert "expected one of float32" in capsys.readouterr().err


def test_console_script_version(tmp_path):
    out = subprocess.run([sys.executable, "-m", "tensorjit.compiler.cli", "--version"],
                         capture_output=True, text=True, cwd=tmp_path, check=True)
    assert out.stdout.startswith("tensorjit ")


def test_missing_target_is_a_usage_error():
    with pytest.raises(SystemExit):
        main(["ir"])


def test_target_without_function_is_a_clear_error(capsys):
    assert main(["ir", "nocolon"]) == 1
    assert "MODULE:FUNCTION" in capsys.readouterr().err


def test_every_command_has_help_with_examples(capsys):
    for command in ([], ["ir"], ["compile"], ["bench"], ["cache"]):
        with pytest.raises(SystemExit) as info:
            main([*command, "--help"])
        assert info.value.code == 0
        out = capsys.readouterr().out
        assert "example" in out, command


def test_compile_writes_a_loadable_library(tmp_path, capsys, monkeypatch):
    import shutil

    import numpy as np

    import tensorjit as tj

    if shutil.which("cc") is None:
        pytest.skip("needs a C compiler")
    (tmp_path / "cli_aot_model.py").write_text(
        "import tensorjit as tj\ndef forward(x, w):\n    return tj.nn.relu(x @ w)\n")
    monkeypatch.chdir(tmp_path)
    lib = tmp_path / "out" / "libforward.so"
    assert main(["compile", "cli_aot_model:forward", "--spec", "x:f32[batch,4]",
                 "--spec", "w:f32[4,3]", "-o", str(lib), "--target", "x86-64-v3"]) == 0
    out = capsys.readouterr().out
    assert "int forward(const float *x, const float *w, float *out0, int64_t batch);" in out
    assert (tmp_path / "out" / "forward.h").is_file()
    f = tj.load(lib)
    x, w = np.ones((2, 4), np.float32), np.full((4, 3), -0.5, np.float32)
    np.testing.assert_array_equal(f(x, w), np.maximum(x @ w, 0))


def test_cache_info_and_clear(tmp_path, capsys, monkeypatch):
    from tensorjit.runtime.diskcache import DiskCache, Environment

    monkeypatch.setenv("TENSORJIT_CACHE_DIR", str(tmp_path))
    DiskCache(tmp_path).put("ab" * 32, Environment("c", "", "t", "1"), {}, [b"x" * 1000])
    assert main(["cache", "info"]) == 0
    out = capsys.readouterr().out
    assert f"directory: {tmp_path}" in out and "entries:   1" in out
    assert main(["cache", "clear"]) == 0
    assert "removed 1 entry" in capsys.readouterr().out
    assert main(["cache", "info"]) == 0
    assert "entries:   0" in capsys.readouterr().out


def test_bench_runs_a_suite_and_writes_json(tmp_path, capsys, monkeypatch):
    import json

    from tensorjit.compiler.bench import machine

    # the yardsticks take seconds; this test is about the command's plumbing
    monkeypatch.setattr(machine, "measure",
                        lambda threads: machine.Machine(10e9, 100e9, 50e9, 90e9, threads, "t"))
    out_json = tmp_path / "r.json"
    assert main(["bench", "dispatch", "--threads", "1", "--rounds", "2",
                 "--json", str(out_json)]) == 0
    captured = capsys.readouterr()
    assert "vs numpy" in captured.out and "chain 64 elements" in captured.out
    assert "dispatch: chain 64" in captured.err  # progress went to stderr
    data = json.loads(out_json.read_text())
    assert data["machine"]["triad_GBps"] == 10.0
    (r, *_) = data["results"]
    assert r["seconds"]["tensorjit"] > 0 and r["speedup"]["numpy"] > 0


def test_bench_plot(tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")
    from tensorjit.compiler.bench import machine

    monkeypatch.setattr(machine, "measure",
                        lambda threads: machine.Machine(10e9, 100e9, 50e9, 90e9, threads, "t"))
    png = tmp_path / "speedups.png"
    assert main(["bench", "dispatch", "--threads", "1", "--rounds", "1", "--plot",
                 str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_usage_errors(capsys):
    assert main(["bench", "nosuchsuite"]) == 1
    assert "suites are elementwise" in capsys.readouterr().err
    assert main(["bench", "dispatch", "--compare", "matlab"]) == 1
    assert "systems are numpy" in capsys.readouterr().err


def test_bench_plot_without_matplotlib_is_a_clear_error(capsys, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError("no matplotlib")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    assert main(["bench", "dispatch", "--plot", "x.png"]) == 1
    assert "pip install 'tensorjit[bench]'" in capsys.readouterr().err

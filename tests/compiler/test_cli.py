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

"""tj.export / tj.load: self-contained shared libraries, their header and manifest, loading
without llvmlite, CPU checks, the C entry's own argument checks."""

from __future__ import annotations

import ctypes
import json
import pickle
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tensorjit as tj

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler (cc)")

W = np.random.default_rng(0).standard_normal((6, 5)).astype(np.float32)
B = np.linspace(-1, 1, 5, dtype=np.float32)


def layer(x):
    return tj.nn.softmax(tj.nn.relu(x @ W + B), axis=-1)


def two_outputs(a, b):
    return a + b, (a * b).sum(axis=-1)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("aot")
    e = tj.export(layer, out / "liblayer.so", tj.TensorSpec(("batch", 6), "float32"))
    return e


def test_export_writes_library_header_manifest(exported):
    assert exported.name == "layer"
    assert exported.library.is_file() and exported.header.name == "layer.h"
    m = json.loads(exported.manifest.read_text())
    assert m["name"] == "layer" and m["library"] == "liblayer.so"
    assert m["signature"]["inputs"] == [{"name": "x", "dtype": "float32",
                                         "shape": ["batch", 6]}]
    assert m["signature"]["outputs"][0]["shape"] == ["batch", 5]
    assert m["signature"]["symbols"] == ["batch"]
    assert m["target"]["cpu"] and "sse2" in m["target"]["features"]
    assert m["tensorjit_version"] and m["llvm_version"]
    h = exported.header.read_text()
    for text in ("int layer(const float *x, float *out0, int64_t batch);",
                 "int layer_checked(", "const char *layer_last_error(void);",
                 "#define LAYER_ERR_BAD_DIM 2", "shape [batch, 6]"):
        assert text in h
    exports = subprocess.run(["nm", "-D", "--defined-only", str(exported.library)],
                             capture_output=True, text=True)
    if exports.returncode == 0:  # only NAME and NAME_* leave the library
        names = {line.split()[-1] for line in exports.stdout.splitlines() if line.strip()}
        assert names and all(n == "layer" or n.startswith("layer_") for n in names), names


def test_load_matches_jit_and_checks_arguments(exported):
    f = tj.load(exported.library)
    x = np.random.default_rng(1).standard_normal((7, 6)).astype(np.float32)
    ref = tj.jit(layer)(x)
    np.testing.assert_allclose(f(x), ref, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(f(x[:2]), ref[:2], rtol=1e-6, atol=1e-7)
    out = np.empty((7, 5), np.float32)
    assert f(x, out=out) is out
    with pytest.raises(tj.ShapeError, match="argument 0"):
        f(np.ones((3, 4), np.float32))
    with pytest.raises(tj.DTypeError, match="float32"):
        f(x.astype(np.float64))
    with pytest.raises(tj.ShapeError, match="expected 1 argument"):
        f(x, x)
    assert f.ir("graph").startswith("graph")


def test_c_entry_checks_its_arguments(exported):
    lib = ctypes.CDLL(str(exported.library))
    fp = ctypes.POINTER(ctypes.c_float)
    lib.layer.argtypes = [fp, fp, ctypes.c_int64]
    lib.layer_checked.argtypes = [fp, ctypes.c_int64, fp, ctypes.c_int64, ctypes.c_int64]
    lib.layer_last_error.restype = ctypes.c_char_p
    x = np.ones((4, 6), np.float32)
    y = np.zeros((4, 5), np.float32)
    px, py = (a.ctypes.data_as(fp) for a in (x, y))
    assert lib.layer(px, py, 4) == 0
    np.testing.assert_allclose(y, tj.jit(layer)(x), rtol=1e-6)
    assert lib.layer(px, py, 0) == 2 and b"'batch' must be >= 1" in lib.layer_last_error()
    assert lib.layer(None, py, 4) == 1 and b"input 'x' is NULL" in lib.layer_last_error()
    assert lib.layer(px, px, 1) == 4  # output overlaps input
    assert lib.layer_checked(px, 24, py, 19, 4) == 3
    assert b"19 elements, expected 20" in lib.layer_last_error()
    assert lib.layer_checked(px, 24, py, 20, 4) == 0


def test_load_works_without_llvmlite(exported):
    script = textwrap.dedent(f"""
        import importlib.abc, sys
        class NoLLVM(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "llvmlite" or name.startswith("llvmlite."):
                    raise ImportError("llvmlite is blocked in this process")
        sys.meta_path.insert(0, NoLLVM())
        import numpy as np
        import tensorjit as tj
        f = tj.load({str(exported.library)!r})
        y = f(np.ones((3, 6), np.float32))
        assert y.shape == (3, 5) and abs(float(y.sum()) - 3.0) < 1e-5, y
        try:
            f(np.ones((3, 7), np.float32))
        except tj.ShapeError as exc:
            print("checked:", exc)
        assert not [m for m in sys.modules if m.startswith("llvmlite")]
        try:
            tj.jit
        except ImportError:
            print("jit needs llvmlite")
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "checked: layer: argument 0 (x)" in out.stdout
    assert out.stdout.strip().endswith("ok")


def test_missing_cpu_features_are_refused(exported, monkeypatch):
    monkeypatch.setattr("tensorjit.runtime.cpu.host_features",
                        lambda: frozenset({"sse", "sse2", "sse3", "ssse3"}))
    with pytest.raises(tj.TensorJitError, match="lacks: .*avx") as info:
        tj.load(exported.library)
    assert "illegal instruction" in str(info.value) and "x86-64-v3" in str(info.value)


def test_pickle_a_loaded_library(exported):
    f = tj.load(exported.library)
    g = pickle.loads(pickle.dumps(f))
    x = np.ones((2, 6), np.float32)
    np.testing.assert_array_equal(g(x), f(x))


@pytest.mark.parametrize("level", ["x86-64-v3", "x86-64-v4"])
def test_portable_targets(tmp_path, level):
    from tensorjit.runtime.cpu import missing_features

    e = tj.export(layer, tmp_path / "libp.so", tj.TensorSpec(("n", 6), "float32"),
                  target=level)
    m = json.loads(e.manifest.read_text())
    assert m["target"]["cpu"] == level and m["target"]["portable"]
    assert ("avx512f" in m["target"]["features"]) == (level == "x86-64-v4")
    assert "avx512vbmi" not in m["target"]["features"]
    if level == "x86-64-v3" and shutil.which("objdump"):
        asm = subprocess.run(["objdump", "-d", str(e.library)], capture_output=True,
                             text=True).stdout
        assert "ymm" in asm and "zmm" not in asm
    if missing_features(m["target"]["features"]):
        with pytest.raises(tj.TensorJitError, match="lacks"):
            tj.load(e.library)
        return
    x = np.random.default_rng(2).standard_normal((3, 6)).astype(np.float32)
    np.testing.assert_allclose(tj.load(e.library)(x), tj.jit(layer)(x), rtol=1e-6, atol=1e-7)


def test_tuple_outputs_static_shapes_and_names(tmp_path):
    a = np.arange(12, dtype=np.float64).reshape(3, 4)
    b = np.full((3, 4), 0.5)
    e = tj.export(two_outputs, tmp_path / "two.so", a, b, name="pair")
    f = tj.load(e.library, e.manifest)
    s, p = f(a, b)
    np.testing.assert_array_equal(s, a + b)
    np.testing.assert_array_equal(p, (a * b).sum(axis=-1))
    assert "int pair(const double *a, const double *b, double *out0, double *out1);" \
        in e.header.read_text()


def test_bad_names_and_targets(tmp_path):
    spec = tj.TensorSpec((4,), "float32")
    with pytest.raises(tj.TensorJitError, match="not a C identifier"):
        tj.export(lambda x: x + 1.0, tmp_path / "a.so", spec, name="my-fn")
    with pytest.raises(tj.TensorJitError, match="x86-64-v3"):
        tj.export(lambda x: x + 1.0, tmp_path / "a.so", spec, target="pentium")
    with pytest.raises(tj.TensorJitError, match="was not found"):
        tj.export(lambda x: x + 1.0, tmp_path / "a.so", spec, cc="no-such-cc-xyz")
    with pytest.raises(tj.TensorJitError, match="no manifest"):
        (tmp_path / "libz.so").write_bytes(b"")
        tj.load(tmp_path / "libz.so")


def test_c_entry_from_several_threads_at_once(exported):
    """Each thread keeps its own scratch arena; the pool runs a second caller inline."""
    from concurrent.futures import ThreadPoolExecutor

    lib = ctypes.CDLL(str(exported.library))  # ctypes releases the GIL during calls
    fp = ctypes.POINTER(ctypes.c_float)
    lib.layer.argtypes = [fp, fp, ctypes.c_int64]
    ref = tj.jit(layer)
    rng = np.random.default_rng(3)
    xs = [rng.standard_normal((1 + 37 * k, 6)).astype(np.float32) for k in range(8)]

    def work(x: np.ndarray) -> bool:
        y = np.empty((x.shape[0], 5), np.float32)
        for _ in range(20):
            assert lib.layer(x.ctypes.data_as(fp), y.ctypes.data_as(fp), x.shape[0]) == 0
        return bool(np.allclose(y, ref(x), rtol=1e-6, atol=1e-7))

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(work, xs))

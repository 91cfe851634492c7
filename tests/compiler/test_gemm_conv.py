"""Blocked GEMM, convolution and pooling against NumPy and direct loop references."""

import re
import subprocess
import sys

import numpy as np
import pytest

import tensorjit as tj

RNG = np.random.default_rng(7)


def rand(shape, dtype="float32"):
    if np.dtype(dtype).kind == "i":
        return RNG.integers(-5, 6, shape).astype(dtype)
    return RNG.standard_normal(shape).astype(dtype)


def compiled(fn, *args, **options):
    return tj.compile(tj.trace(fn, *args), **options)


def tol(dtype):
    return {"float32": 2e-4, "float64": 1e-11}.get(dtype, 0)


# Sizes on both sides of the 6x32 tile, the 8x16 tile of narrow products (n <= 16),
# the 96-row block and the depth blocks (1024 deep for 4-byte types, 512 for 8-byte).
SHAPES = [(1, 1, 1), (0, 4, 5), (4, 0, 5), (5, 3, 0), (6, 32, 32), (7, 33, 31),
          (95, 257, 65), (97, 513, 33), (3, 700, 1), (13, 5, 10), (9, 1025, 17),
          (17, 1030, 16)]


@pytest.mark.parametrize("m,k,n", SHAPES)
@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64"])
def test_matmul_against_numpy(m, k, n, dtype):
    a, b = rand((m, k), dtype), rand((k, n), dtype)
    f = compiled(lambda a, b: (a @ b, b.T @ a.T, a[:, ::-1] @ b[::-1]), a, b)
    for got, want in zip(f(a, b), (a @ b, b.T @ a.T, a[:, ::-1] @ b[::-1])):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=tol(dtype), atol=tol(dtype) * max(k, 1))


def test_batched_and_broadcast_batches():
    x, w, y = rand((3, 2, 17, 40)), rand((40, 33)), rand((2, 40, 9))
    f = compiled(lambda x, w, y: (x @ w, x @ y, tj.matmul(x[0, 1], w)), x, w, y)
    for got, want in zip(f(x, w, y), (x @ w, x @ y, x[0, 1] @ w)):
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-4)


def test_epilogue_is_fused_and_correct():
    x, w, b, r = rand((64, 70)), rand((70, 50)), rand(50), rand((64, 50))
    f = compiled(lambda x, w, b, r: tj.nn.relu(x @ w + b) + r, x, w, b, r)
    np.testing.assert_allclose(f(x, w, b, r), np.maximum(x @ w + b, 0) + r, rtol=2e-4, atol=2e-4)
    loops = f.ir("loops")
    # packing the full B panels, the partial last panel, then the GEMM with its epilogue
    assert "gemm kernel for matmul" in loops and loops.count("kernel k") == 3
    assert [b.kind for b in tj.compiler.lowering.lower.lower(
        tj.trace(lambda x, w, b, r: tj.nn.relu(x @ w + b) + r, x, w, b, r)).buffers
        if b.kind == "temp"] == ["temp"]  # only the packed B panel, no product buffer


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_large_k_accumulates_across_depth_blocks(dtype):
    # depth blocks of 1024 / 512 (A read in place) and of 256 (A transposed, packed)
    a, b = rand((33, 2100), dtype), rand((2100, 40), dtype)
    at = np.ascontiguousarray(a.T)
    f = compiled(lambda a, at, b: (tj.nn.relu(a @ b), tj.nn.relu(at.T @ b[:, :12])), a, at, b)
    got, narrow = f(a, at, b)
    np.testing.assert_allclose(got, np.maximum(a @ b, 0), rtol=tol(dtype),
                               atol=tol(dtype) * 50)
    np.testing.assert_allclose(narrow, np.maximum(a @ b[:, :12], 0), rtol=tol(dtype),
                               atol=tol(dtype) * 50)


def test_symbolic_rows():
    w = rand((20, 48))
    f = tj.compile(tj.trace(lambda x, w: x @ w, tj.TensorSpec(("batch", 20)), w))
    for n in (0, 1, 97, 200):
        x = rand((n, 20))
        np.testing.assert_allclose(f(x, w), x @ w, rtol=2e-4, atol=2e-4)


def test_noncontiguous_inputs():
    a = rand((50, 80))[:, ::2]
    b = np.asfortranarray(rand((40, 30)))
    f = compiled(lambda a, b: a @ b, a, b)
    np.testing.assert_allclose(f(a, b), a @ b, rtol=2e-4, atol=2e-4)


@pytest.mark.parametrize("k", [3, 8, 26])
def test_b_is_packed_eight_rows_at_a_time_then_the_leftover_rows(k):
    x, w = rand((20, k)), rand((k, 70))
    f = compiled(lambda x, w: x @ w, x, w)
    np.testing.assert_allclose(f(x, w), x @ w, rtol=2e-4, atol=2e-4)
    pack = f.ir("loops").split("# pack kernel")[1].split("\n\n")[0]  # the full panels
    if k < 8:
        assert f"for pk in 0..{k}" in pack and "pkb" not in pack
        return
    assert f"for pkb in 0..{k // 8}" in pack and "for pki in 0..8" in pack
    assert ("for pkt in 0..2" in pack) == (k == 26)


@pytest.mark.parametrize("n", [64, 70])
def test_transposed_b_is_packed_by_a_transposing_loop(n):
    x, w = rand((50, 300)), rand((n, 300))
    f = compiled(lambda x, w: x @ w.T, x, w)
    np.testing.assert_allclose(f(x, w), x @ w.T, rtol=2e-4, atol=2e-4)
    pack = f.ir("loops").split("# pack kernel")[1]
    assert "tfor pj" in pack.split("\n\n")[0] and "vfor pj" not in pack.split("\n\n")[0]


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64"])
@pytest.mark.parametrize("k", [1, 7, 16, 33, 300])
def test_transposing_pack_blocks_and_leftover_depths(dtype, k):
    # depths below, at and past a register block (8 or 16 lanes), full and partial panels
    rng = np.random.default_rng(k)
    x = (rng.standard_normal((9, k)) * 4).astype(dtype)
    w = (rng.standard_normal((40, k)) * 4).astype(dtype)
    f = compiled(lambda x, w: x @ w.T, x, w, threads=1)
    if dtype.startswith("int"):
        np.testing.assert_array_equal(f(x, w), x @ w.T)
    else:
        np.testing.assert_allclose(f(x, w), x @ w.T, rtol=1e-5, atol=1e-4 * np.sqrt(k))
    if k == 1:
        return  # w.T is one contiguous row: no transposing copy
    # the blocks are transposed by two-input shuffles (log2(L) rounds of L per block)
    shuffles = re.findall(r"shufflevector <(\d+) x \w+> %\S+, <\d+ x \w+> %", f.ir("llvm"))
    lanes = int(shuffles[0]) if shuffles else 0
    assert len(shuffles) == lanes * lanes.bit_length() - lanes and lanes >= 8


_SMALL_STACK = """
import threading, numpy as np, tensorjit as tj
rng = np.random.default_rng(0)
a, b = rng.standard_normal((400, 1500), np.float32), rng.standard_normal((1500, 70), np.float32)
at = np.ascontiguousarray(a.T)
x = rng.standard_normal((2, 16, 12, 12), np.float32)
w = rng.standard_normal((32, 16, 3, 3), np.float32)
f = tj.compile(tj.trace(lambda a, at, b, x, w: (a @ b, at.T @ b, tj.nn.conv2d(x, w, padding=1)),
                        a, at, b, x, w), threads=1, cache=False)
threading.stack_size(256 * 1024)
out = []
worker = threading.Thread(target=lambda: out.append(f(a, at, b, x, w)))
worker.start()
worker.join()
np.testing.assert_allclose(out[0][0], a @ b, rtol=2e-4, atol=2e-3)
np.testing.assert_allclose(out[0][1], a @ b, rtol=2e-4, atol=2e-3)
print("ok")
"""


def test_gemms_run_on_a_thread_with_a_small_stack():
    # A GEMM's scratch (packed A, B panel, tile) is on the stack of the thread that runs
    # it: it must fit a 256 KiB thread stack (musl's default is 128 KiB, glibc's 8 MiB).
    # In a child process: an overflow would kill the test run.
    done = subprocess.run([sys.executable, "-c", _SMALL_STACK], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_results_do_not_depend_on_the_thread_count():
    a, b, x = rand((300, 200)), rand((200, 130)), rand((64, 1000))

    def fn(a, b, x):
        return a @ b, tj.nn.softmax(x, axis=-1), tj.tanh(x) * 2.0, x.sum(0)

    one = compiled(fn, a, b, x, threads=1)(a, b, x)
    many = compiled(fn, a, b, x)(a, b, x)
    for p, q in zip(one, many):
        np.testing.assert_array_equal(p, q)


def test_micro_kernel_uses_the_widest_vectors():
    a = rand((64, 64))
    f = compiled(lambda a, b: (a @ b, a.T @ b, a @ b[:, :10]), a, a, threads=1)
    llvm, asm = f.ir("llvm"), f.ir("asm")
    # packed A (a.T), A read in place (a), and the narrow tile: three micro-kernels
    for name in ("6x32", "6x32.rows", "8x16.rows"):
        assert f'@"tj.gemm.micro.f32.{name}"' in llvm
    fma = [line for line in asm.splitlines() if "vfmadd" in line]
    assert fma and all("zmm" in line or "ymm" in line for line in fma)


def conv_reference(x, w, b, stride, pad, dil, groups):
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh = (h + 2 * pad - dil * (kh - 1) - 1) // stride + 1
    ow = (wd + 2 * pad - dil * (kw - 1) - 1) // stride + 1
    out = np.zeros((n, o, oh, ow))
    og = o // groups
    for oc in range(o):
        g = oc // og
        for i in range(kh):
            for j in range(kw):
                patch = xp[:, g * cg:(g + 1) * cg, i * dil:i * dil + stride * (oh - 1) + 1:stride,
                           j * dil:j * dil + stride * (ow - 1) + 1:stride]
                out[:, oc] += np.einsum("nchw,c->nhw", patch, w[oc, :, i, j])
    return out if b is None else out + b[None, :, None, None]


@pytest.mark.parametrize("n,c,h,w,o,k,stride,pad,dil,groups", [
    (2, 3, 7, 8, 4, 3, 1, 1, 1, 1),
    (1, 4, 9, 9, 6, 3, 2, 0, 1, 2),
    (2, 6, 10, 7, 6, 3, 1, 2, 2, 6),  # depthwise, dilated
    (1, 1, 5, 5, 1, 1, 1, 0, 1, 1),
    (2, 8, 12, 12, 40, 5, 3, 2, 1, 1),
    (3, 40, 9, 13, 19, 3, 1, 1, 1, 1),  # K = 360: two depth blocks; 9x13 outputs
    (2, 16, 6, 40, 8, 3, 1, 1, 1, 1),  # output rows wider than a 32-column panel
    (1, 3, 33, 35, 5, 3, 2, 0, 2, 1),  # stride and dilation without padding
    (1, 2, 12, 11, 3, 9, 1, 4, 1, 1),  # 81 kernel offsets: padding masks computed per row
    (2, 3, 9, 10, 4, 3, 2, 1, 2, 1),  # stride, dilation and padding: masks from a table
])
def test_conv2d_against_direct_loops(n, c, h, w, o, k, stride, pad, dil, groups):
    x, wt, b = rand((n, c, h, w)), rand((o, c // groups, k, k)), rand(o)
    f = compiled(lambda x, wt, b: tj.nn.relu(tj.nn.conv2d(x, wt, b, stride, pad, dil, groups)),
                 x, wt, b)
    want = np.maximum(conv_reference(x.astype(float), wt.astype(float), b, stride, pad, dil,
                                     groups), 0)
    np.testing.assert_allclose(f(x, wt, b), want, rtol=1e-4, atol=1e-4)


def test_conv_of_non_contiguous_input():
    x, wt = rand((2, 5, 13, 9)), rand((7, 5, 3, 3))
    f = compiled(lambda x, wt: tj.nn.conv2d(x.transpose(0, 1, 3, 2)[:, :, ::2], wt, padding=1),
                 x, wt)
    xt = np.ascontiguousarray(x.transpose(0, 1, 3, 2)[:, :, ::2])
    want = conv_reference(xt.astype(float), wt.astype(float), None, 1, 1, 1, 1)
    np.testing.assert_allclose(f(x, wt), want, rtol=1e-4, atol=1e-4)


def test_conv_with_symbolic_batch():
    wt = rand((8, 3, 3, 3))
    f = tj.compile(tj.trace(lambda x, wt: tj.nn.conv2d(x, wt, padding=1),
                            tj.TensorSpec(("n", 3, 9, 10)), wt))
    for n in (0, 1, 3):
        x = rand((n, 3, 9, 10))
        want = conv_reference(x.astype(float), wt.astype(float), None, 1, 1, 1, 1)
        np.testing.assert_allclose(f(x, wt), want, rtol=1e-4, atol=1e-4)


def test_conv_block_is_one_kernel():
    x, wt, b = rand((2, 8, 10, 10)), rand((8, 8, 3, 3)), rand(8)
    f = compiled(lambda x, wt, b: tj.nn.relu(tj.nn.conv2d(x, wt, b, padding=1) * 0.5), x, wt, b)
    # the GEMM packs the im2col panels itself and applies the epilogue: no temp buffer
    assert f.stats["kernels"] == 1 and "pack(pk=gk, pn=gn:" in f.ir("loops")
    want = np.maximum(conv_reference(x.astype(float), wt.astype(float), b, 1, 1, 1, 1) * 0.5, 0)
    np.testing.assert_allclose(f(x, wt, b), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64"])
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (7, 300, 33), (96, 513, 64), (13, 5, 97)])
def test_batched_products_pack_b_inside_the_gemm(m, k, n, dtype):
    # One row block per product: B panels are packed by the GEMM itself, from plain,
    # transposed and strided operands, with partial panels and several depth blocks.
    a, b, bt = rand((3, m, k), dtype), rand((3, k, n), dtype), rand((3, n, 2 * k), dtype)
    f = compiled(lambda a, b, bt: (a @ b, a @ bt[:, :, ::2].transpose(0, 2, 1)), a, b, bt)
    assert "pack(pk=gk, pn=gn:" in f.ir("loops")
    for got, want in zip(f(a, b, bt), (a @ b, a @ bt[:, :, ::2].transpose(0, 2, 1))):
        np.testing.assert_allclose(got, want, rtol=tol(dtype), atol=tol(dtype) * k)


def pool_reference(x, k, s, p, fill, reduce):
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=fill)
    win = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(2, 3))[:, :, ::s, ::s]
    return reduce(win, axis=(-2, -1))


@pytest.mark.parametrize("k,s,p", [(2, 2, 0), (3, 2, 1), (3, 1, 1), (2, 1, 0)])
def test_pooling(k, s, p):
    x = rand((2, 3, 9, 8))
    x[0, 0, 0, 0] = np.nan
    f = compiled(lambda x: (tj.nn.max_pool2d(x, k, s, p), tj.nn.avg_pool2d(x, k, s, p)), x)
    mx, avg = f(x)
    np.testing.assert_array_equal(mx, pool_reference(x, k, s, p, -np.inf, np.max))
    np.testing.assert_allclose(avg, pool_reference(x, k, s, p, 0, np.sum) / (k * k),
                               rtol=1e-5, atol=1e-6)


def test_avg_pool_without_padding_in_the_count():
    x = rand((1, 2, 6, 6))
    f = compiled(lambda x: tj.nn.avg_pool2d(x, 3, 1, 1, count_include_pad=False), x)
    counts = pool_reference(np.ones_like(x), 3, 1, 1, 0, np.sum)
    np.testing.assert_allclose(f(x), pool_reference(x, 3, 1, 1, 0, np.sum) / counts,
                               rtol=1e-5, atol=1e-6)


def test_conv_errors_are_clear():
    x = np.zeros((1, 3, 5, 5), np.float32)
    with pytest.raises(tj.ShapeError, match="groups"):
        tj.trace(lambda x, w: tj.nn.conv2d(x, w, groups=2), x, np.zeros((4, 3, 3, 3), np.float32))
    with pytest.raises(tj.ShapeError, match="does not fit"):
        tj.trace(lambda x, w: tj.nn.conv2d(x, w), x, np.zeros((4, 3, 7, 7), np.float32))
    with pytest.raises(tj.UnsupportedError, match="ceil_mode"):
        tj.trace(lambda x: tj.nn.max_pool2d(x, 2, ceil_mode=True), x)

"""The C call path of compiled functions with static shapes (``_tjcall.StaticCall``,
runtime/csrc/tjcall.c): what it takes itself, what it hands to the Python path, the
buffer table it gives the kernel, pooled outputs and arenas, errors, references."""

from __future__ import annotations

import gc
import sys
import threading
import weakref
from typing import Any

import numpy as np
import pytest

import tensorjit as tj
from tensorjit.ir.errors import DTypeError, ShapeError
from tensorjit.runtime.compiled import POOLED_OUTPUT_BYTES, PROBE_MISS, RELEASE_GIL_BYTES
from tensorjit.runtime.native import ffi, static_call_type
from tensorjit.runtime.pool import MemoryPool, default_pool

StaticCall = static_call_type()


def _compiled(fn: Any, *args: np.ndarray) -> tj.CompiledFunction:
    return tj.compile(tj.trace(fn, *args))


@pytest.fixture(scope="module")
def axpy() -> tj.CompiledFunction:
    return _compiled(lambda a, b: (a * 2.0 + b, tj.sum(a * b)), np.ones((3, 4)), np.ones(4))


def _args() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal((3, 4)), rng.standard_normal(4)


def _expect(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, float]:
    return a * 2.0 + b, float(np.sum(a * b))


def _check(result: Any, a: np.ndarray, b: np.ndarray) -> None:
    want_y, want_s = _expect(np.asarray(a), np.asarray(b))
    np.testing.assert_allclose(result[0], want_y, rtol=1e-12)
    np.testing.assert_allclose(result[1], want_s, rtol=1e-12)


def test_static_functions_call_through_c(axpy: tj.CompiledFunction) -> None:
    assert isinstance(axpy._fast, StaticCall)
    a, b = _args()
    result = axpy(a, b)
    assert isinstance(result, tuple) and len(result) == 2
    _check(result, a, b)
    y, s = result
    assert y.flags.c_contiguous and y.flags.writeable and y.flags.owndata
    assert s.shape == () and s.dtype == np.float64


def test_symbolic_functions_have_no_c_path() -> None:
    g = tj.trace(lambda a: a + 1.0, tj.TensorSpec(("n",), tj.float64))
    fn = tj.compile(g)
    assert fn._fast is None and fn.probe() is None
    np.testing.assert_array_equal(fn(np.arange(5.0)), np.arange(5.0) + 1.0)


class Sub(np.ndarray):
    pass


@pytest.mark.parametrize("variant", ["strided", "fortran", "subclass", "byteswapped",
                                     "readonly", "list"])
def test_arguments_the_c_path_does_not_take_go_to_python(
        axpy: tj.CompiledFunction, variant: str) -> None:
    a, b = _args()
    if variant == "strided":
        a = np.repeat(a, 2, axis=1)[:, ::2]
    elif variant == "fortran":
        a = np.asfortranarray(a)
    elif variant == "subclass":
        a = a.view(Sub)
    elif variant == "byteswapped":
        b = b.astype(">f8")
    elif variant == "readonly":
        a.flags.writeable = False  # read-only inputs are taken as they are
    if variant == "byteswapped":
        with pytest.raises(DTypeError, match=r"argument 1 \(b\).*expected dtype float64"):
            axpy(a, b)
        return
    if variant == "list":
        with pytest.raises(DTypeError, match=r"argument 1 \(b\).*got list"):
            axpy(a, list(b))
        return
    _check(axpy(a, b), a, b)


def test_wrong_count_dtype_and_shape_get_the_python_errors(axpy: tj.CompiledFunction) -> None:
    a, b = _args()
    with pytest.raises(ShapeError, match="expected 2 argument"):
        axpy(a)
    with pytest.raises(ShapeError, match="expected 2 argument"):
        axpy(a, b, b)
    with pytest.raises(DTypeError, match=r"argument 0 \(a\).*expected dtype float64, got float32"):
        axpy(a.astype(np.float32), b)
    with pytest.raises(ShapeError, match=r"argument 1 \(b\).*expected shape"):
        axpy(a, np.ones(5))


def test_keywords_go_to_python(axpy: tj.CompiledFunction) -> None:
    a, b = _args()
    with pytest.raises(TypeError, match="unexpected keyword"):
        axpy._fast(a, b=b)
    assert axpy.probe()(a, b=b) is PROBE_MISS


def test_probe_returns_miss_for_anything_it_does_not_take(axpy: tj.CompiledFunction) -> None:
    probe = axpy.probe()
    assert isinstance(probe, StaticCall) and probe is axpy.probe()
    a, b = _args()
    _check(probe(a, b), a, b)
    for args in [(a,), (a, b, b), (a.astype(np.float32), b), (np.asfortranarray(a), b),
                 (a.view(Sub), b), (a, list(b)), (a, np.ones(5))]:
        assert probe(*args) is PROBE_MISS


def test_calls_are_counted(axpy: tj.CompiledFunction) -> None:
    a, b = _args()
    before = axpy.stats["calls"]
    for _ in range(5):
        axpy(a, b)
    axpy.probe()(a, b)
    axpy(np.asfortranarray(a), b)  # the Python path counts too
    assert axpy.stats["calls"] == before + 7


def test_no_reference_is_leaked(axpy: tj.CompiledFunction) -> None:
    a, b = _args()
    axpy(a, b)
    refs = sys.getrefcount(a), sys.getrefcount(b)
    for _ in range(200):
        y, s = axpy(a, b)
        axpy.probe()(a, b)
        axpy.probe()(a, list(b))
    assert (sys.getrefcount(a), sys.getrefcount(b)) == refs
    result = axpy(a, b)
    # (counted into locals: pytest's assertion rewriting holds references of its own)
    counts = sys.getrefcount(result), sys.getrefcount(result[0]), sys.getrefcount(result[1])
    assert counts == (2, 2, 2)  # a name or the tuple, and getrefcount's argument


def test_a_compiled_function_is_collected() -> None:
    fn = _compiled(lambda a: a * 3.0, np.ones(4))
    fn.probe()
    np.testing.assert_array_equal(fn(np.ones(4)), np.full(4, 3.0))
    ref = weakref.ref(fn)
    del fn
    tj.clear_caches()  # tj.compile keeps what it compiled
    gc.collect()
    assert ref() is None


def test_large_outputs_come_from_the_pool() -> None:
    n = POOLED_OUTPUT_BYTES // 8
    fn = _compiled(lambda a: (a + 1.0, tj.sum(a)), np.ones(n))
    pool = default_pool()
    x = np.arange(n, dtype=np.float64)
    fn(x)  # warm the pool's size class
    in_use = pool.stats()["blocks_in_use"]
    y, s = fn(x)
    assert pool.stats()["blocks_in_use"] == in_use + 1
    np.testing.assert_array_equal(y, x + 1.0)
    assert float(s) == float(np.sum(x))
    del y
    gc.collect()
    assert pool.stats()["blocks_in_use"] == in_use


def test_arena_is_taken_and_given_back() -> None:
    a = np.random.default_rng(1).standard_normal((64, 64))
    fn = _compiled(lambda x, y: (x @ y) @ y, a, a)
    assert fn.stats["arena_bytes"] > 0 and fn._fast.arena_bytes == fn.stats["arena_bytes"]
    pool = default_pool()
    fn(a, a)
    in_use = pool.stats()["blocks_in_use"]
    out = fn(a, a)
    assert pool.stats()["blocks_in_use"] == in_use
    np.testing.assert_allclose(out, (a @ a) @ a, rtol=1e-10)


def test_gil_is_released_only_for_calls_that_move_enough_bytes() -> None:
    small = _compiled(lambda a: a * 2.0, np.ones(16))
    big = _compiled(lambda a: a * 2.0, np.ones(RELEASE_GIL_BYTES // 16))
    assert small._fast.release_gil == 0
    assert big._fast.release_gil == 1


@pytest.mark.parametrize("size", [16, RELEASE_GIL_BYTES // 8])
def test_concurrent_calls(size: int) -> None:
    fn = _compiled(lambda a, b: a * b + a, np.ones(size), np.ones(size))
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            for _ in range(200):
                a, b = rng.standard_normal(size), rng.standard_normal(size)
                np.testing.assert_allclose(fn(a, b), a * b + a, rtol=1e-14, atol=1e-15)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


# --- StaticCall itself, driven by a Python kernel made with ffi.callback -------------------
class Kernel:
    """A fake compiled entry point that records the buffer table and arena it is given."""

    def __init__(self, n_bufs: int, status: int = 0) -> None:
        self.n_bufs = n_bufs
        self.status = status
        self.seen: list[tuple[list[int], int]] = []

        def entry(bufs: Any, dims: Any, arena: Any) -> int:
            assert dims == ffi.NULL
            addresses = [int(ffi.cast("uintptr_t", bufs[k])) for k in range(self.n_bufs)]
            self.seen.append((addresses, int(ffi.cast("uintptr_t", arena))))
            return self.status

        self.callback = ffi.callback("int32_t(void **, int64_t *, char *)", entry)
        self.address = int(ffi.cast("uintptr_t", self.callback))


class Failed(Exception):
    pass


def _fail(status: int) -> None:
    raise Failed(f"status {status}")


def _static_call(kernel: Kernel, pool: MemoryPool, **changes: Any) -> Any:
    settings: dict[str, Any] = dict(
        entry=kernel.address,
        in_dtypes=(np.dtype(np.float64), np.dtype(np.int32)),
        in_shapes=((2, 3), ()),
        in_strides=((24, 8), ()),
        out_dtypes=(np.dtype(np.float32),),
        out_shapes=((4,),),
        out_pooled=(False,),
        consts=(np.arange(3.0),),
        arena_bytes=0,
        release_gil=False,
        returns_tuple=False,
        miss=None,
        fallback=lambda *args: ("fallback", args),
        pool_array=pool.array,
        acquire=pool.acquire,
        release=pool.release,
        fail=_fail,
        stats={},
    )
    settings.update(changes)
    return StaticCall(**settings)


def _address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


@pytest.mark.parametrize("release_gil", [False, True])
def test_buffer_table_is_inputs_outputs_consts(release_gil: bool) -> None:
    kernel = Kernel(4)
    const = np.arange(3.0)
    stats: dict[str, int] = {}
    call = _static_call(kernel, MemoryPool(), consts=(const,), stats=stats,
                        release_gil=release_gil)
    a, k = np.ones((2, 3)), np.array(7, dtype=np.int32)
    out = call(a, k)
    assert out.shape == (4,) and out.dtype == np.float32
    assert kernel.seen == [([_address(a), _address(k), _address(out), _address(const)], 0)]
    assert stats == {"calls": 1}


def test_pooled_outputs_and_arena_from_the_callables() -> None:
    kernel = Kernel(4)
    pool = MemoryPool()
    call = _static_call(kernel, pool, out_dtypes=(np.dtype(np.float32),) * 2,
                        out_shapes=((4,), (5, 2)), out_pooled=(False, True), consts=(),
                        arena_bytes=1000, returns_tuple=True)
    small, pooled = call(np.ones((2, 3)), np.array(1, dtype=np.int32))
    assert pooled.shape == (5, 2) and pooled.dtype == np.float32
    (addresses, arena), = kernel.seen
    assert addresses[3] == _address(pooled)
    assert arena != 0
    stats = pool.stats()
    assert stats["blocks_in_use"] == 1  # the pooled output; the arena went back
    assert stats["blocks_cached"] == 1


def test_a_failing_kernel_raises_and_gives_everything_back() -> None:
    kernel = Kernel(3, status=7)
    pool = MemoryPool()
    stats: dict[str, int] = {}
    call = _static_call(kernel, pool, consts=(), out_pooled=(True,), arena_bytes=256,
                        stats=stats)
    a = np.ones((2, 3))
    refs = sys.getrefcount(a)
    for _ in range(3):
        with pytest.raises(Failed, match="status 7"):
            call(a, np.array(1, dtype=np.int32))
    assert pool.stats()["blocks_in_use"] == 0  # the output and the arena were released
    assert sys.getrefcount(a) == refs
    assert stats == {}


def test_fail_that_does_not_raise_still_fails() -> None:
    call = _static_call(Kernel(4, status=3), MemoryPool(), fail=lambda status: None)
    with pytest.raises(RuntimeError, match="native code returned error 3"):
        call(np.ones((2, 3)), np.array(1, dtype=np.int32))


def test_miss_and_fallback() -> None:
    kernel = Kernel(4)
    sentinel = object()
    probe = _static_call(kernel, MemoryPool(), miss=sentinel)
    plain = _static_call(kernel, MemoryPool())
    good = (np.ones((2, 3)), np.array(1, dtype=np.int32))
    bad = (np.ones((2, 3)), np.array(1, dtype=np.int64))
    assert probe(*bad) is sentinel
    assert probe(*good[:1]) is sentinel
    assert plain(*bad) == ("fallback", bad)
    assert probe(*good, extra=1) is sentinel
    with pytest.raises(TypeError, match="unexpected keyword"):
        plain(*good, extra=1)  # keywords go to the fallback, which takes none
    assert kernel.seen == []


def test_a_pool_array_that_does_not_fit_is_refused() -> None:
    pool = MemoryPool()
    call = _static_call(Kernel(4), pool, out_pooled=(True,),
                        pool_array=lambda shape, dtype: np.ones(3, dtype))
    with pytest.raises(RuntimeError, match="unusable array"):
        call(np.ones((2, 3)), np.array(1, dtype=np.int32))


@pytest.mark.parametrize(("change", "error", "match"), [
    ({"entry": 0}, ValueError, "entry address is 0"),
    ({"in_dtypes": ("float64", np.dtype(np.int32))}, TypeError, "expected a numpy.dtype"),
    ({"in_shapes": ((2, 3),)}, ValueError, "differ in length"),
    ({"in_strides": ((24,), ())}, ValueError, "1 strides for rank 2"),
    ({"in_shapes": ((2, "x"), ())}, TypeError, "integer"),
    ({"in_shapes": (tuple([1] * 80), ())}, ValueError, "exceeds"),
    ({"out_shapes": ((4,), (4,))}, ValueError, "differ in length"),
    ({"returns_tuple": False, "out_dtypes": (np.dtype(np.float32),) * 2,
      "out_shapes": ((4,), (4,)), "out_pooled": (False, False)}, ValueError, "2 outputs"),
    ({"consts": (np.ones((3, 3))[:, ::2],)}, TypeError, "C-contiguous"),
    ({"fallback": 3}, TypeError, "fallback must be callable"),
    ({"arena_bytes": -1}, ValueError, "arena_bytes"),
    ({"stats": []}, TypeError, "must be dict"),
])
def test_bad_construction_is_refused(change: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        _static_call(Kernel(4), MemoryPool(), **change)


def test_jit_tries_its_one_signature_first() -> None:
    f = tj.jit(lambda x, s: x * s + 1.0)
    x, s = np.arange(4.0), np.array(2.0)
    np.testing.assert_array_equal(f(x, s), x * 2.0 + 1.0)
    assert f._probe is next(iter(f._compiled.values())).probe()
    out = np.empty(4)
    assert f(x, s, out=out) is out
    np.testing.assert_array_equal(out, x * 2.0 + 1.0)
    np.testing.assert_array_equal(f(x[::-1], s), x[::-1] * 2.0 + 1.0)
    assert len(f.signatures) == 1
    np.testing.assert_array_equal(f(x, 3.0), x * 3.0 + 1.0)  # a Python float: its own
    assert len(f.signatures) == 2 and f._probe is None  # now the key finds each
    np.testing.assert_array_equal(f(x, s), x * 2.0 + 1.0)

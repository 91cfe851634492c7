"""The C runtime through cffi: locating the library, aligned allocation and
``tj_parallel_for`` (driven by Python bodies made with ``ffi.callback``; cffi
releases the GIL around the native call, so worker threads can run them)."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cffi
import numpy as np
import pytest

from tensorjit.runtime import native
from tensorjit.runtime.native import ffi

lib = native.lib


@pytest.fixture
def threads() -> Iterator[None]:
    """Restore the runtime's thread count after a test changes it."""
    before = lib.tj_get_num_threads()
    yield
    lib.tj_set_num_threads(before)


class Recorder:
    """A parallel_for body that records every chunk it is given."""

    def __init__(self, n: int, sleep: float = 0.0) -> None:
        self.counts = np.zeros(n, dtype=np.int64)
        self.chunks: list[tuple[int, int, int]] = []  # (begin, end, thread id)
        self.sleep = sleep
        self.lock = threading.Lock()
        self.cb = ffi.callback("tj_body_fn", self._body)

    def _body(self, ctx: Any, begin: int, end: int) -> None:
        with self.lock:
            self.counts[begin:end] += 1
            self.chunks.append((begin, end, threading.get_ident()))
        if self.sleep:
            time.sleep(self.sleep)

    def run(self, n: int, min_chunk: int) -> int:
        return lib.tj_parallel_for(n, min_chunk, self.cb, ffi.NULL)


# -- locating the library ----------------------------------------------------


def test_library_is_found_without_importing_it() -> None:
    spec = importlib.util.find_spec("tensorjit.runtime._tjrt")
    assert spec is not None and spec.origin is not None
    assert native.library_path() == Path(spec.origin)
    assert native.library_path().name.startswith("_tjrt")
    assert "tensorjit.runtime._tjrt" not in sys.modules


def test_repo_root_is_not_on_sys_path() -> None:
    # Otherwise the bare folders (runtime/, ir/, ...) would be importable and
    # `tensorjit/` could shadow the installed package.
    repo_root = Path(__file__).resolve().parents[2]
    assert all(Path(p or ".").resolve() != repo_root for p in sys.path)
    assert importlib.util.find_spec("runtime") is None


def test_static_library_and_header_are_installed_next_to_it() -> None:
    static = native.static_library_path()
    assert static.name == "libtjrt_static.a" and static.stat().st_size > 0
    assert static.parent == native.library_path().parent
    assert (native.include_dir() / "tjrt.h").is_file()


def test_cdef_matches_header() -> None:
    header = (native.include_dir() / "tjrt.h").read_text()
    declared = set(re.findall(r"^\w[\w\s\*]*?\b(tj_\w+)\s*\(", header, re.MULTILINE))
    assert declared == {name for name in dir(lib) if name.startswith("tj_")}


def test_version() -> None:
    assert lib.tj_runtime_version() == 100


# -- aligned allocation --------------------------------------------------------


@pytest.mark.parametrize("nbytes", [0, 1, 7, 63, 64, 65, 4095, 4096, 1 << 20, (1 << 24) + 3])
def test_aligned_alloc(nbytes: int) -> None:
    p = lib.tj_aligned_alloc(nbytes)
    assert p != ffi.NULL
    assert int(ffi.cast("uintptr_t", p)) % 64 == 0
    # The whole block is writable (a crash would show otherwise).
    ffi.memmove(p, b"\xab" * nbytes, nbytes)
    lib.tj_aligned_free(p)


def test_zero_size_blocks_are_distinct_and_non_null() -> None:
    ps = [lib.tj_aligned_alloc(0) for _ in range(4)]
    addrs = {int(ffi.cast("uintptr_t", p)) for p in ps}
    assert len(addrs) == 4 and 0 not in addrs
    for p in ps:
        lib.tj_aligned_free(p)


def test_free_null_is_a_noop() -> None:
    lib.tj_aligned_free(ffi.NULL)


HUGE_PAGE = 2 << 20


def _vm_flags(address: int) -> list[str]:
    """The ``VmFlags`` of this process's mapping that holds ``address``."""
    inside = False
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split(maxsplit=1)[0]
            if re.fullmatch(r"[0-9a-f]+-[0-9a-f]+", head):
                start, end = (int(x, 16) for x in head.split("-"))
                inside = start <= address < end
            elif inside and head == "VmFlags:":
                return line.split()[1:]
    raise AssertionError(f"no mapping holds {address:#x}")


needs_smaps = pytest.mark.skipif(not os.path.exists("/proc/self/smaps"),
                                 reason="reads Linux's /proc/self/smaps")


@needs_smaps
@pytest.mark.parametrize("nbytes", [HUGE_PAGE, 3 * HUGE_PAGE + 100])
def test_large_blocks_start_on_a_huge_page_and_ask_for_huge_pages(
        nbytes: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TENSORJIT_MADVISE_HUGEPAGE", raising=False)
    p = lib.tj_aligned_alloc(nbytes)
    try:
        address = int(ffi.cast("uintptr_t", p))
        assert address % HUGE_PAGE == 0
        assert "hg" in _vm_flags(address)  # MADV_HUGEPAGE
        assert "hg" in _vm_flags(address + nbytes - 1)
        ffi.memmove(p, b"\xcd" * nbytes, nbytes)
    finally:
        lib.tj_aligned_free(p)


@needs_smaps
@pytest.mark.parametrize("setting", ["0", "1"])
def test_huge_page_advice_can_be_turned_off(setting: str, tmp_path: Path) -> None:
    # A new process: this one's heap may hold ranges advised by earlier tests.
    code = (
        "from tensorjit.runtime.native import lib, ffi\n"
        "from test_native import _vm_flags\n"
        f"p = lib.tj_aligned_alloc({3 * HUGE_PAGE})\n"
        "print('hg' in _vm_flags(int(ffi.cast('uintptr_t', p))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "TENSORJIT_MADVISE_HUGEPAGE": setting,
             "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parent),
                                                         os.environ.get("PYTHONPATH")]))},
        cwd=tmp_path, capture_output=True, text=True, check=True,
    ).stdout
    assert out.split() == [str(setting == "1")]


# -- thread count --------------------------------------------------------------


def test_set_and_get_num_threads(threads: None) -> None:
    lib.tj_set_num_threads(3)
    assert lib.tj_get_num_threads() == 3
    lib.tj_set_num_threads(0)  # back to the default
    assert lib.tj_get_num_threads() >= 1


@pytest.mark.parametrize(("env", "expected"), [("3", 3), ("1", 1), ("junk", None), ("0", None)])
def test_num_threads_from_environment(env: str, expected: int | None, tmp_path: Path) -> None:
    code = "import tensorjit.runtime.native as n; print(n.lib.tj_get_num_threads())"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "TENSORJIT_NUM_THREADS": env},
        cwd=tmp_path,  # not the repo root, whose bare folders would shadow the install
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # Invalid values fall back to the number of online CPUs.
    assert int(out) == (expected if expected is not None else os.cpu_count())


# -- parallel_for --------------------------------------------------------------


@pytest.mark.parametrize("nthreads", [1, 2, 3, 8])
@pytest.mark.parametrize(
    ("n", "min_chunk"),
    [
        (1, 1),
        (2, 1),
        (7, 1),
        (100, 1),
        (100, 7),
        (100, 33),
        (100, 50),
        (100, 51),
        (100, 100),
        (1000, 3),
        (1001, 10),
        (4097, 64),
        (12345, 1000),
        (5, 0),
        (5, -3),
    ],
)
def test_parallel_for_covers_every_index_once(
    threads: None, nthreads: int, n: int, min_chunk: int
) -> None:
    lib.tj_set_num_threads(nthreads)
    rec = Recorder(n)
    assert rec.run(n, min_chunk) == 0
    assert (rec.counts == 1).all()
    sizes = [end - begin for begin, end, _ in rec.chunks]
    assert sum(sizes) == n
    # Chunks never go below min_chunk unless the whole range is smaller.
    assert min(sizes) >= min(max(min_chunk, 1), n)
    assert len(rec.chunks) <= max(1, n // max(min_chunk, 1))


def test_small_work_runs_inline_on_the_calling_thread(threads: None) -> None:
    lib.tj_set_num_threads(4)
    for n, min_chunk in [(1, 1), (10, 10), (10, 100), (19, 10)]:
        rec = Recorder(n)
        assert rec.run(n, min_chunk) == 0
        assert rec.chunks == [(0, n, threading.get_ident())]


def test_one_thread_runs_inline(threads: None) -> None:
    lib.tj_set_num_threads(1)
    rec = Recorder(1000)
    rec.run(1000, 1)
    assert rec.chunks == [(0, 1000, threading.get_ident())]


def test_workers_take_part(threads: None) -> None:
    lib.tj_set_num_threads(2)
    # The body sleeps (releasing the GIL), so the worker gets chunks to claim.
    for _ in range(5):
        rec = Recorder(64, sleep=0.002)
        rec.run(64, 1)
        assert (rec.counts == 1).all()
        if len({tid for _, _, tid in rec.chunks}) == 2:
            return
    pytest.fail("parallel_for never ran a chunk on a worker thread")


def test_zero_and_invalid_arguments() -> None:
    rec = Recorder(1)
    assert rec.run(0, 1) == 0 and rec.chunks == []
    assert rec.run(-1, 1) == -1 and rec.chunks == []
    assert lib.tj_parallel_for(10, 1, ffi.NULL, ffi.NULL) == -1


def test_nested_parallel_for_runs_inline(threads: None) -> None:
    lib.tj_set_num_threads(4)
    outer_n, inner_n = 16, 50
    total = np.zeros((outer_n, inner_n), dtype=np.int64)
    lock = threading.Lock()

    @ffi.callback("tj_body_fn")
    def outer(ctx: Any, begin: int, end: int) -> None:
        for i in range(begin, end):

            @ffi.callback("tj_body_fn")
            def inner(ctx: Any, b: int, e: int, i: int = i) -> None:
                with lock:
                    total[i, b:e] += 1

            assert lib.tj_parallel_for(inner_n, 1, inner, ffi.NULL) == 0

    assert lib.tj_parallel_for(outer_n, 1, outer, ffi.NULL) == 0
    assert (total == 1).all()


def test_two_python_threads_at_once(threads: None) -> None:
    lib.tj_set_num_threads(3)
    errors: list[BaseException] = []

    def hammer(seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            for _ in range(60):
                n = int(rng.integers(1, 3000))
                rec = Recorder(n)
                assert rec.run(n, int(rng.integers(1, 200))) == 0
                assert (rec.counts == 1).all()
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    ts = [threading.Thread(target=hammer, args=(s,)) for s in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in ts), "parallel_for deadlocked"
    assert not errors, errors


def test_changing_thread_count_between_calls(threads: None) -> None:
    for nthreads in [4, 1, 2, 8, 3, 2]:
        lib.tj_set_num_threads(nthreads)
        rec = Recorder(500)
        rec.run(500, 1)
        assert (rec.counts == 1).all()
        assert len({tid for _, _, tid in rec.chunks}) <= nthreads


def _allowed_cpus(native_id: int) -> set[int]:
    """The CPUs thread ``native_id`` of this process may run on."""
    return os.sched_getaffinity(native_id)


class ThreadIds(Recorder):
    """A Recorder that also notes the native thread id behind every chunk."""

    def __init__(self, n: int, sleep: float = 0.0) -> None:
        super().__init__(n, sleep)
        self.native_ids: set[int] = set()

    def _body(self, ctx: Any, begin: int, end: int) -> None:
        with self.lock:
            self.native_ids.add(threading.get_native_id())
        super()._body(ctx, begin, end)


def _worker_ids() -> set[int]:
    """Native ids of the pool's workers: a loop that sleeps in its chunks lets them take
    part (retried, as a worker may wake after the caller took every chunk)."""
    for _ in range(20):
        rec = ThreadIds(32, sleep=0.002)
        rec.run(32, 1)
        workers = rec.native_ids - {threading.get_native_id()}
        if workers:
            return workers
    pytest.fail("parallel_for never ran a chunk on a worker thread")


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_workers_are_kept_off_the_callers_cpu(threads: None) -> None:
    """A woken worker must not queue behind the caller on its CPU (the runtime sets the
    workers' affinity to every allowed CPU but the caller's, and follows the caller)."""
    lib.tj_set_num_threads(2)
    allowed = os.sched_getaffinity(0)
    seen: dict[int, list[set[int]]] = {}

    def caller() -> None:  # a thread of its own, pinned in turn to two CPUs
        for cpu in sorted(allowed)[:2]:
            os.sched_setaffinity(threading.get_native_id(), {cpu})
            seen[cpu] = [_allowed_cpus(worker) for worker in _worker_ids()]

    t = threading.Thread(target=caller)
    t.start()
    t.join(timeout=60)
    assert len(seen) == 2
    for cpu, masks in seen.items():
        assert masks and all(mask == allowed - {cpu} for mask in masks)


@pytest.mark.parametrize("spin", ["0", "100", "5000", "junk", "-1"])
def test_spin_setting_from_environment(spin: str, tmp_path: Path) -> None:
    """TENSORJIT_SPIN_US only tunes how long threads poll before sleeping: any value
    (invalid ones fall back to the default) leaves parallel_for exact."""
    code = """
import numpy as np
import tensorjit.runtime.native as n
n.lib.tj_set_num_threads(2)
seen = np.zeros(5000, dtype=np.int64)
body = n.ffi.callback("tj_body_fn", lambda c, b, e: seen.__setitem__(slice(b, e), seen[b:e] + 1))
ok = all(n.lib.tj_parallel_for(5000, 7, body, n.ffi.NULL) == 0 for _ in range(50))
print(ok and bool((seen == 50).all()))
"""
    out = subprocess.run([sys.executable, "-c", code],
                         env={**os.environ, "TENSORJIT_SPIN_US": spin}, cwd=tmp_path,
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_parallel_for_works_in_a_forked_child(threads: None, tmp_path: Path) -> None:
    lib.tj_set_num_threads(3)
    Recorder(100, sleep=0.0005).run(100, 1)  # make sure workers exist in the parent
    code = """
import os, sys
import numpy as np
from tensorjit.runtime.native import ffi, lib
lib.tj_set_num_threads(3)
lib.tj_parallel_for(10, 1, ffi.callback("tj_body_fn", lambda c, b, e: None), ffi.NULL)
pid = os.fork()
if pid == 0:
    seen = np.zeros(1000, dtype=np.int64)
    @ffi.callback("tj_body_fn")
    def body(ctx, b, e):
        seen[b:e] += 1
    ok = lib.tj_parallel_for(1000, 1, body, ffi.NULL) == 0 and (seen == 1).all()
    os._exit(0 if ok else 1)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""
    # In a subprocess: forking the (multi-threaded) pytest process itself is fragile.
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, cwd=tmp_path)


_AOT_SOURCE = r"""
#include "tjrt.h"
static void body(void *c, int64_t b, int64_t e) {
    double *x = c;
    for (int64_t i = b; i < e; i++) x[i] = (double)i;
}
int aot_entry(void) {
    double *x = tj_aligned_alloc(1000 * sizeof(double));
    if (x == 0 || tj_parallel_for(1000, 10, body, x) != 0) return 2;
    double s = 0;
    for (int i = 0; i < 1000; i++) s += x[i];
    tj_aligned_free(x);
    return s == 499500.0 ? 0 : 1;
}
"""


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")
def test_static_library_links_into_a_shared_object(tmp_path: Path) -> None:
    src, so = tmp_path / "aot.c", tmp_path / "libaot.so"
    src.write_text(_AOT_SOURCE)
    cmd = ["cc", "-O2", "-fPIC", "-shared", f"-I{native.include_dir()}", str(src)]
    subprocess.run([*cmd, str(native.static_library_path()), "-pthread", "-o", str(so)], check=True)
    aot = cffi.FFI()
    aot.cdef("int aot_entry(void);")
    assert aot.dlopen(str(so)).aot_entry() == 0

"""``RecentCache``: the bounded in-memory caches of compiled code (``compiler/memo.py``)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import tensorjit as tj
from tensorjit.compiler import api, autodiff_api
from tensorjit.compiler.memo import DEFAULT_ENTRIES, ENTRIES_VARIABLE, RecentCache


def test_keeps_the_most_recently_used() -> None:
    cache: RecentCache[str, int] = RecentCache(2)
    assert cache.add("a", 1) == 1 and cache.add("b", 2) == 2
    assert cache.get("a") == 1  # "a" is now the most recent
    cache.add("c", 3)
    assert "b" not in cache and cache.get("a") == 1 and cache.get("c") == 3
    assert cache.get("b") is None and len(cache) == 2
    cache.clear()
    assert len(cache) == 0


def test_add_keeps_the_first_entry() -> None:
    cache: RecentCache[str, list] = RecentCache(4)
    first, second = [1], [1]
    assert cache.add("k", first) is first
    assert cache.add("k", second) is first


def test_capacity_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENTRIES_VARIABLE, raising=False)
    assert RecentCache().capacity == DEFAULT_ENTRIES
    monkeypatch.setenv(ENTRIES_VARIABLE, "3")
    assert RecentCache().capacity == 3
    for bad in ("0", "-2", "many"):
        monkeypatch.setenv(ENTRIES_VARIABLE, bad)
        with pytest.raises(tj.TensorJitError, match=f"{ENTRIES_VARIABLE}.*{bad}"):
            RecentCache()
    with pytest.raises(tj.TensorJitError, match="capacity"):
        RecentCache(0)


def test_concurrent_adds_stay_bounded() -> None:
    cache: RecentCache[int, int] = RecentCache(8)

    def work(base: int) -> None:
        for i in range(2000):
            cache.add(base + i % 50, i)
            cache.get(base + (i * 7) % 50)

    threads = [threading.Thread(target=work, args=(k * 1000,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(cache) == 8


def test_compile_and_grad_caches_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "_cache", RecentCache(2))
    monkeypatch.setattr(autodiff_api, "_SHARED", RecentCache(2))
    fns = [tj.compile(tj.trace(lambda x: x * 2.0, np.ones(n))) for n in (1, 2, 3)]
    assert len(api._cache) == 2
    # the evicted function still runs; compiling its graph again makes a new one
    np.testing.assert_array_equal(fns[0](np.ones(1)), [2.0])
    assert tj.compile(tj.trace(lambda x: x * 2.0, np.ones(1))) is not fns[0]
    assert tj.compile(tj.trace(lambda x: x * 2.0, np.ones(3))) is fns[2]

    def loss(x):
        return tj.sum(x * x)

    for n in (1, 2, 3):
        np.testing.assert_array_equal(tj.grad(loss)(np.ones(n)), np.full(n, 2.0))
    assert len(autodiff_api._SHARED) == 2

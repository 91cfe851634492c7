"""Compiling pauses Python's cyclic garbage collector and restores its state after."""

from __future__ import annotations

import gc

import numpy as np
import pytest

import tensorjit as tj


@pytest.mark.parametrize("enabled", [True, False])
def test_compile_restores_the_collector_state(enabled: bool) -> None:
    seen: list[bool] = []

    def f(x):  # noqa: ANN001, ANN202
        seen.append(gc.isenabled())  # while tracing
        return tj.sin(x) * 2.0

    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        tj.jit(f, cache=False)(np.ones(3))
        tj.grad(lambda x: tj.sum(f(x)), cache=False)(np.ones(3))
        with pytest.raises(tj.TensorJitError):
            tj.compile(lambda x: x @ x, np.ones(3), opt_level=7)
        with pytest.raises(ZeroDivisionError):  # an error while tracing
            tj.jit(lambda x: x * (1 / 0), cache=False)(np.ones(3))
        assert gc.isenabled() is enabled
        assert seen == [False, False]
    finally:
        (gc.enable if was else gc.disable)()

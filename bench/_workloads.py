"""The benchmarked functions, each as tensorjit code and as the NumPy code it is compared with.

Shared by the benchmark scripts so that ``bench_compile.py`` compiles exactly what the
others run.
"""

from __future__ import annotations

import numpy as np

import tensorjit as tj

# --- elementwise chain: tanh(x*a + b) * sigmoid(x) + 0.5*x*x --------------------------
A = 1.3
B = 0.2
ELEMENTWISE_N = 16 * 2**20  # 16M float32 = 64 MiB per array
DISPATCH_N = 64


def chain(x: tj.Tensor) -> tj.Tensor:
    return tj.tanh(x * A + B) * tj.nn.sigmoid(x) + 0.5 * x * x


def chain_numpy(x: np.ndarray) -> np.ndarray:
    """NumPy, written as a user would (one temporary per operation)."""
    return np.tanh(x * A + B) * (1 / (1 + np.exp(-x))) + 0.5 * x * x


# --- STREAM triad: a = b + s*c ---------------------------------------------------------
TRIAD_SCALAR = 2.0


def triad(b: tj.Tensor, c: tj.Tensor) -> tj.Tensor:
    return b + TRIAD_SCALAR * c


def triad_numpy(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> None:
    """Two passes without temporaries: reads c, writes a; then reads a and b, writes a."""
    np.multiply(c, TRIAD_SCALAR, out=a)
    np.add(a, b, out=a)


# --- rows: softmax and layer norm over the last axis of (4096, 1024) -------------------
ROWS = (4096, 1024)
EPS = 1e-5


def softmax(x: tj.Tensor) -> tj.Tensor:
    return tj.nn.softmax(x, axis=-1)


def softmax_numpy(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def layer_norm(x: tj.Tensor, g: tj.Tensor, b: tj.Tensor) -> tj.Tensor:
    return tj.nn.layer_norm(x, (x.shape[-1],), g, b, eps=EPS)


def layer_norm_numpy(x: np.ndarray, g: np.ndarray, b: np.ndarray) -> np.ndarray:
    m = x.mean(-1, keepdims=True)
    v = x.var(-1, keepdims=True)
    return (x - m) / np.sqrt(v + EPS) * g + b


# --- inputs ----------------------------------------------------------------------------
def vector(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(n, dtype=np.float32)


def rows_inputs(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(ROWS, dtype=np.float32)
    g = (1.0 + 0.1 * rng.standard_normal(ROWS[-1])).astype(np.float32)
    b = (0.1 * rng.standard_normal(ROWS[-1])).astype(np.float32)
    return x, g, b

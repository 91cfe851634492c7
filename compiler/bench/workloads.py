"""The benchmarked functions, each as tensorjit code and as the NumPy code it is compared with.

Shared by ``tensorjit bench`` and the scripts in ``bench/`` (``bench/_workloads.py``
re-exports this module), so that every benchmark times exactly the same code.
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


# --- matmul and the MLP forward pass ----------------------------------------------------
MLP_SIZES = (784, 1024, 1024, 10)
MLP_BATCH = 256


def matmul(a: tj.Tensor, b: tj.Tensor) -> tj.Tensor:
    return a @ b


def linear_relu(x: tj.Tensor, w: tj.Tensor, b: tj.Tensor) -> tj.Tensor:
    return tj.nn.relu(x @ w + b)


def linear_relu_numpy(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.maximum(x @ w + b, 0)


def mlp(x: tj.Tensor, w1: tj.Tensor, b1: tj.Tensor, w2: tj.Tensor, b2: tj.Tensor,
        w3: tj.Tensor, b3: tj.Tensor) -> tj.Tensor:
    h = tj.nn.relu(x @ w1 + b1)
    h = tj.nn.relu(h @ w2 + b2)
    return tj.nn.softmax(h @ w3 + b3, axis=-1)


def mlp_numpy(x: np.ndarray, w1: np.ndarray, b1: np.ndarray, w2: np.ndarray,
              b2: np.ndarray, w3: np.ndarray, b3: np.ndarray) -> np.ndarray:
    h = np.maximum(x @ w1 + b1, 0)
    h = np.maximum(h @ w2 + b2, 0)
    z = h @ w3 + b3
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def mlp_inputs(batch: int = MLP_BATCH, sizes: tuple[int, ...] = MLP_SIZES,
               seed: int = 0) -> tuple[np.ndarray, ...]:
    """x, then (weight, bias) per layer; weights scaled by 1/sqrt(fan-in)."""
    rng = np.random.default_rng(seed)
    out = [rng.standard_normal((batch, sizes[0]), dtype=np.float32)]
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        out.append(rng.standard_normal((fan_in, fan_out), dtype=np.float32)
                    / np.float32(np.sqrt(fan_in)))
        out.append(0.1 * rng.standard_normal(fan_out, dtype=np.float32))
    return tuple(out)


def mlp_flops(batch: int = MLP_BATCH, sizes: tuple[int, ...] = MLP_SIZES) -> float:
    """Multiply-adds of the layers, 2 flops each (bias, relu and softmax not counted)."""
    return 2.0 * batch * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


# --- convolution (NCHW, 3x3, padding 1) ---------------------------------------------------
CONV_INPUT = (8, 64, 56, 56)
CONV_WEIGHT = (64, 64, 3, 3)


def conv(x: tj.Tensor, w: tj.Tensor) -> tj.Tensor:
    return tj.nn.conv2d(x, w, padding=1)


def conv_numpy(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """im2col with a strided view, then one tensordot (what a NumPy user would write)."""
    kh, kw = w.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2)))
    cols = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))
    return np.tensordot(cols, w, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2).copy()


def conv_flops(x_shape: tuple[int, ...] = CONV_INPUT,
               w_shape: tuple[int, ...] = CONV_WEIGHT) -> float:
    n, _, h, w = x_shape
    co, ci, kh, kw = w_shape
    return 2.0 * n * co * h * w * ci * kh * kw


# --- a training step: MSE loss of a two-layer MLP and its gradients -------------------------
TRAIN_SIZES = (784, 512, 10)
TRAIN_BATCH = 128


def train_loss(w1: tj.Tensor, b1: tj.Tensor, w2: tj.Tensor, b2: tj.Tensor, x: tj.Tensor,
               y: tj.Tensor) -> tj.Tensor:
    h = tj.nn.relu(x @ w1 + b1)
    return tj.mean((h @ w2 + b2 - y) ** 2)


def train_step_numpy(w1: np.ndarray, b1: np.ndarray, w2: np.ndarray, b2: np.ndarray,
                     x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """The loss and its gradients with respect to w1, b1, w2, b2, by hand."""
    a = x @ w1 + b1
    h = np.maximum(a, 0)
    d = h @ w2 + b2 - y
    loss = np.mean(d * d)
    dz = (2.0 / d.size) * d
    gw2, gb2 = h.T @ dz, dz.sum(0)
    da = (dz @ w2.T) * (a > 0)
    return loss, (x.T @ da, da.sum(0), gw2, gb2)


def train_inputs(seed: int = 0) -> tuple[np.ndarray, ...]:
    """w1, b1, w2, b2, x, y."""
    rng = np.random.default_rng(seed)
    d_in, d_h, d_out = TRAIN_SIZES
    return (rng.standard_normal((d_in, d_h), dtype=np.float32) / np.float32(np.sqrt(d_in)),
            np.zeros(d_h, np.float32),
            rng.standard_normal((d_h, d_out), dtype=np.float32) / np.float32(np.sqrt(d_h)),
            np.zeros(d_out, np.float32),
            rng.standard_normal((TRAIN_BATCH, d_in), dtype=np.float32),
            rng.standard_normal((TRAIN_BATCH, d_out), dtype=np.float32))


def train_flops() -> float:
    """Forward and backward matmuls (3x the forward's multiply-adds, 2 flops each)."""
    d_in, d_h, d_out = TRAIN_SIZES
    return 3 * 2.0 * TRAIN_BATCH * (d_in * d_h + d_h * d_out)

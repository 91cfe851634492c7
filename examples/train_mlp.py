"""Train an MLP classifier on synthetic data with a compiled value-and-gradient step.

The data are labelled by a random "teacher" network; the student is a two-hidden-layer
ReLU MLP trained with cross-entropy and Adam. ``tj.value_and_grad`` traces the loss once,
builds the backward graph, and compiles both into one native function of the parameter
dict; the Adam update is plain NumPy on the same dict of arrays.

Run: python examples/train_mlp.py
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

import tensorjit as tj

FEATURES, HIDDEN, CLASSES = 20, 64, 4


def make_data(n: int = 2048, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and the labels a random teacher network gives them."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, FEATURES)).astype(np.float32)
    t1 = rng.standard_normal((FEATURES, 32))
    t2 = rng.standard_normal((32, CLASSES))
    y = np.argmax(np.tanh(x @ t1) @ t2, axis=1)
    return x, y


def init_params(seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    sizes = [(FEATURES, HIDDEN), (HIDDEN, HIDDEN), (HIDDEN, CLASSES)]
    params = {}
    for k, (i, o) in enumerate(sizes, 1):
        params[f"w{k}"] = (rng.standard_normal((i, o)) * np.sqrt(2.0 / i)).astype(np.float32)
        params[f"b{k}"] = np.zeros(o, np.float32)
    return params


def loss(params: dict[str, Any], x: Any, y: Any) -> Any:
    h = tj.nn.relu(x @ params["w1"] + params["b1"])
    h = tj.nn.relu(h @ params["w2"] + params["b2"])
    return tj.nn.cross_entropy(h @ params["w3"] + params["b3"], y)


class Adam:
    """Adam on a dict of arrays (NumPy: the update is cheap next to the step)."""

    def __init__(self, params: dict[str, np.ndarray], lr: float = 3e-3,
                 b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> None:
        self.lr, self.b1, self.b2, self.eps, self.t = lr, b1, b2, eps, 0
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}

    def update(self, params: dict[str, np.ndarray],
               grads: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.t += 1
        scale = self.lr * np.sqrt(1 - self.b2 ** self.t) / (1 - self.b1 ** self.t)
        out = {}
        for k, g in grads.items():
            self.m[k] = self.b1 * self.m[k] + (1 - self.b1) * g
            self.v[k] = self.b2 * self.v[k] + (1 - self.b2) * g * g
            out[k] = params[k] - (scale * self.m[k] / (np.sqrt(self.v[k]) + self.eps)
                                  ).astype(np.float32)
        return out


def train(epochs: int = 10, batch: int = 128, verbose: bool = True) -> list[float]:
    """Minibatch Adam; returns the mean training loss of each epoch."""
    x, y = make_data()
    params = init_params()
    step = tj.value_and_grad(loss)
    opt = Adam(params)
    t0 = time.perf_counter()
    step(params, x[:batch], y[:batch])
    if verbose:
        print(f"traced, differentiated and compiled in {time.perf_counter() - t0:.2f} s")
    order = np.random.default_rng(2)
    history = []
    seconds = 0.0
    calls = 0
    for epoch in range(epochs):
        perm = order.permutation(len(x))
        total = 0.0
        for k in range(0, len(x) - batch + 1, batch):
            idx = perm[k:k + batch]
            xb, yb = x[idx], y[idx]
            t0 = time.perf_counter()
            value, grads = step(params, xb, yb)
            params = opt.update(params, grads)
            seconds += time.perf_counter() - t0
            total += float(value)
            calls += 1
        history.append(total / (len(x) // batch))
        if verbose:
            accuracy = np.mean(np.argmax(predict(params, x), axis=1) == y)
            print(f"epoch {epoch + 1:2d}: loss {history[-1]:.4f}  accuracy {accuracy:.3f}")
    if verbose:
        print(f"{seconds / calls * 1e3:.3f} ms per training step "
              "(compiled value_and_grad + NumPy Adam)")
    return history


def predict(params: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    h = np.maximum(x @ params["w1"] + params["b1"], 0)
    h = np.maximum(h @ params["w2"] + params["b2"], 0)
    return h @ params["w3"] + params["b3"]


if __name__ == "__main__":
    train()

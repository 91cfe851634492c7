"""tensorjit in one page: compile NumPy-style functions, check them against NumPy, time them.

Run: python examples/quickstart.py
"""

import time

import numpy as np

import tensorjit as tj


@tj.jit
def chain(x):
    # One fused, vectorized loop: no temporaries, x is read once.
    return tj.tanh(x * 1.3 + 0.2) * tj.nn.sigmoid(x) + 0.5 * x * x


@tj.jit
def layer_norm(x, gamma, beta):
    # One kernel: per row, a mean, a variance, then the normalized output.
    return tj.nn.layer_norm(x, (x.shape[-1],), gamma, beta)


def numpy_chain(x):
    return np.tanh(x * 1.3 + 0.2) * (1 / (1 + np.exp(-x))) + 0.5 * x * x


def numpy_layer_norm(x, gamma, beta):
    m = x.mean(-1, keepdims=True)
    return (x - m) / np.sqrt(x.var(-1, keepdims=True) + 1e-5) * gamma + beta


def best_time(fn, *args, repeat=5):
    fn(*args)
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(1 << 22).astype(np.float32)
    rows = rng.standard_normal((2048, 1024)).astype(np.float32)
    gamma = rng.standard_normal(1024).astype(np.float32)
    beta = rng.standard_normal(1024).astype(np.float32)

    np.testing.assert_allclose(chain(x), numpy_chain(x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer_norm(rows, gamma, beta),
                               numpy_layer_norm(rows, gamma, beta), rtol=1e-4, atol=1e-4)
    print("results match NumPy")

    for name, ours, theirs, args in [
        ("elementwise chain, 4M float32", chain, numpy_chain, (x,)),
        ("layer_norm (2048, 1024) float32", layer_norm, numpy_layer_norm, (rows, gamma, beta)),
    ]:
        t_ours, t_numpy = best_time(ours, *args), best_time(theirs, *args)
        print(f"{name:34s} tensorjit {t_ours * 1e3:7.2f} ms   NumPy {t_numpy * 1e3:7.2f} ms"
              f"   speedup {t_numpy / t_ours:5.1f}x")

    compiled = layer_norm.lower(rows, gamma, beta)
    print("\nthe fused loop nest tensorjit generated for layer_norm:\n")
    print(compiled.ir("loops"))


if __name__ == "__main__":
    main()

"""Planar inverse kinematics by gradient descent, with a compiled gradient.

A chain of N links of equal length hangs from the origin; joint i turns the rest of the
chain by angles[i]. The function below is written the scalar way, joint by joint with
Python loops and ``angles[i]`` indexing, as one would write it on paper. ``tj.value_and_grad``
traces it once, differentiates the trace (reverse mode, a graph transform), compiles
forward and backward to native code, and every later call is one native call.

Run: python examples/ik.py [N_JOINTS]
"""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np

import tensorjit as tj

TARGET = np.array([0.45, 0.6])


def end_effector(angles: Any, n: int) -> tuple[Any, Any]:
    """Position of the chain's tip: cumulative angles, links of length 1/n."""
    theta, x, y = 0.0, 0.0, 0.0
    for i in range(n):
        theta = theta + angles[i]
        x = x + tj.cos(theta) / n
        y = y + tj.sin(theta) / n
    return x, y


def make_loss(n: int) -> Any:
    def distance2(angles: Any, target: Any) -> Any:
        """Squared distance from the tip to the target."""
        x, y = end_effector(angles, n)
        return (x - target[0]) ** 2 + (y - target[1]) ** 2

    distance2.__name__ = f"ik{n}"
    return distance2


def solve(n: int, steps: int = 300, lr: float = 0.2, report: int = 50,
          verbose: bool = True) -> list[float]:
    """Gradient descent on the joint angles; returns the distance at each report."""
    step = tj.value_and_grad(make_loss(n), threads=1)
    angles = np.full(n, 0.3 / n)
    t0 = time.perf_counter()
    step(angles, TARGET)  # trace + differentiate + compile
    compile_s = time.perf_counter() - t0
    if verbose:
        print(f"{n} joints: traced, differentiated and compiled in {compile_s:.2f} s")
    distances = []
    t0 = time.perf_counter()
    for k in range(steps + 1):
        d2, grad = step(angles, TARGET)
        if k % report == 0:
            distances.append(float(np.sqrt(d2)))
            if verbose:
                print(f"  step {k:4d}: distance {distances[-1]:.3e}")
        angles = angles - lr * grad
    if verbose:
        per_call = (time.perf_counter() - t0) / (steps + 1)
        print(f"{per_call * 1e6:.1f} us per gradient step (call + NumPy update)")
    return distances


if __name__ == "__main__":
    solve(int(sys.argv[1]) if len(sys.argv) > 1 else 12)

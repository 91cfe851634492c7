"""Export the MLP that main.c calls, and the data main.c checks it against.

    python export_mlp.py OUTDIR

writes into OUTDIR:
  libmlp.so, mlp.h, mlp.json   an MLP 64 -> 128 -> 128 -> 10 (relu, relu, softmax) with its
                               weights baked in; the batch size is a symbolic dim
  mlp_expected.h               an input batch and NumPy's output for it (float64 math)
  libtiny.so, tiny.h, tiny.json  y = 2x + 1 on 64 floats, for call_overhead.c
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import tensorjit as tj

SIZES = (64, 128, 128, 10)
BATCH = 8


def weights(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:]):
        out.append((rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(np.float32))
        out.append((0.1 * rng.standard_normal(fan_out)).astype(np.float32))
    return out


W1, B1, W2, B2, W3, B3 = weights()


def mlp(x: tj.Tensor) -> tj.Tensor:
    h = tj.nn.relu(x @ W1 + B1)
    h = tj.nn.relu(h @ W2 + B2)
    return tj.nn.softmax(h @ W3 + B3, axis=-1)


def mlp_reference(x: np.ndarray) -> np.ndarray:
    ws = [w.astype(np.float64) for w in (W1, B1, W2, B2, W3, B3)]
    h = np.maximum(x @ ws[0] + ws[1], 0)
    h = np.maximum(h @ ws[2] + ws[3], 0)
    z = h @ ws[4] + ws[5]
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def tiny(x: tj.Tensor) -> tj.Tensor:
    return x * 2.0 + 1.0


def c_array(name: str, a: np.ndarray) -> str:
    values = ",\n    ".join(", ".join(f"{v:.9g}f" for v in row) for row in a.reshape(len(a), -1))
    return f"static const float {name}[{a.size}] = {{\n    {values}\n}};\n"


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    tj.export(mlp, out / "libmlp.so", tj.TensorSpec(("batch", SIZES[0]), "float32"), name="mlp")
    tj.export(tiny, out / "libtiny.so", tj.TensorSpec((64,), "float32"), name="tiny")
    x = np.random.default_rng(1).standard_normal((BATCH, SIZES[0])).astype(np.float32)
    y = mlp_reference(x.astype(np.float64))
    (out / "mlp_expected.h").write_text(
        "/* Written by export_mlp.py: an input batch and NumPy's output for it. */\n"
        f"#define MLP_BATCH {BATCH}\n#define MLP_IN {SIZES[0]}\n#define MLP_OUT {SIZES[-1]}\n"
        + c_array("mlp_x", x) + c_array("mlp_y", y))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "build"))

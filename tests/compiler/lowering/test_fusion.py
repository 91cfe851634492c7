"""Fusion decisions, visible in the loop IR: what becomes one kernel, what is stored."""

import numpy as np

import tensorjit as tj
from tensorjit.compiler.lowering.lower import lower


def passes_reading(text: str, buffer: str) -> int:
    """How many vector loops of the text read ``buffer``."""
    return sum(1 for loop in text.split("vfor")[1:] if f"{buffer}[" in loop.split("}")[0])


def loops_of(fn, *args):
    module = lower(tj.trace(fn, *args))
    return module, str(module)


def test_elementwise_chain_is_one_flat_loop_without_temporaries():
    x = np.zeros(1000, np.float32)
    module, text = loops_of(lambda x: tj.tanh(x * 1.3 + 0.2) * tj.nn.sigmoid(x) + 0.5 * x * x, x)
    assert len(module.kernels) == 1
    assert [b.kind for b in module.buffers] == ["input", "output"]
    assert text.count("vfor") == 1 and "for i0" not in text


def test_softmax_is_one_row_kernel_reading_its_input_twice():
    x = np.zeros((64, 1024), np.float32)
    module, text = loops_of(lambda x: tj.nn.softmax(x, axis=-1), x)
    assert len(module.kernels) == 1
    # max pass and sum pass read x; the output pass reads exp(x - max) back from scratch
    assert passes_reading(text, "in0") == 2
    assert "s0[j0] = exp(" in text and "div(s0[j0], acc1)" in text
    assert [b.kind for b in module.buffers] == ["input", "output", "scratch"]
    assert module.buffers[2].numel.coef == 1024  # one row of scratch, not the whole array


def test_layernorm_is_one_kernel():
    x = np.zeros((32, 256), np.float32)
    g = np.zeros(256, np.float32)
    module, text = loops_of(lambda x, g, b: tj.nn.layer_norm(x, (256,), g, b), x, g, g)
    assert len(module.kernels) == 1
    assert passes_reading(text, "in0") == 2


def test_reduction_kept_in_a_register_unless_someone_loads_it():
    x = np.zeros((8, 16), np.float32)
    module, _ = loops_of(lambda x: x - x.max(axis=1, keepdims=True), x)
    assert len(module.kernels) == 1
    assert all(b.kind != "temp" for b in module.buffers)


def test_column_reduction_accumulates_rows():
    x = np.zeros((100, 64), np.float32)
    module, text = loops_of(lambda x: x.sum(axis=0), x)
    assert "columns kernel" in text
    assert "out0[j0] = add(out0[j0], in0[((i0 * 64) + j0)])" in text


def test_transpose_and_broadcast_are_index_maps_not_copies():
    x = np.zeros((8, 16), np.float32)
    b = np.zeros(8, np.float32)
    module, text = loops_of(lambda x, b: x.T + b, x, b)
    assert len(module.kernels) == 1
    assert "in0[(i0 + (j0 * 16))]" in text and "in1[j0]" in text


def test_reshape_of_contiguous_data_keeps_flat_indices():
    x = np.zeros((6, 20), np.float32)
    module, text = loops_of(lambda x: x.reshape(6, 4, 5) * 2.0, x)
    assert "//" not in text and "%" not in text

"""The graph IR's text form parses back to the same graph."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import tensorjit as tj
from tensorjit.ir.parser import ParseError, parse_graph, parse_value


def f(x: Any, b: Any) -> Any:
    y = tj.pad(x[::-1, 1:], ((1, 0), (0, 2)))
    z = tj.nn.softmax(x + b, axis=-1).T @ x
    w = tj.where(x[:3] > -0.0, x[:3], float("nan")) + tj.full((), float("-inf"), "float32")
    return z + w, tj.sum(y.astype("float64"), axis=0), tj.arange(4), y, tj.argmax(x, axis=1)


def test_round_trip_of_a_graph_with_every_kind_of_attribute() -> None:
    g = tj.trace(f, np.zeros((4, 3), np.float32), np.zeros(3, np.float32))
    text = str(g)
    assert str(parse_graph(text)) == text


def test_round_trip_with_symbolic_dims() -> None:
    g = tj.trace(lambda x: tj.nn.softmax(x * 2, axis=0).reshape(x.shape[0], 3, 1).T,
                 tj.TensorSpec(("batch", 3), "float32"))
    assert str(parse_graph(str(g))) == str(g)


def test_values() -> None:
    assert parse_value("((1, 0), (0, 2))") == ((1, 0), (0, 2))
    assert parse_value("('batch', 4)") == ("batch", 4)
    assert parse_value("(0,)") == (0,)
    assert parse_value("f64") is tj.float64
    assert np.isnan(parse_value("nan")) and parse_value("-inf") == -np.inf
    assert str(parse_value("-0.0")) == "-0.0" and parse_value("1e-05") == 1e-05
    assert parse_value("True") is True and parse_value("-3") == -3


@pytest.mark.parametrize("text,message", [
    ("graph f(%0: f32[4]) {\n  %1 = exp(%0) : f32[5]\n  return (%1)\n}", r"gives f32\[4\]"),
    ("graph f(%0: f32[4]) {\n  %1 = exp(%2) : f32[4]\n  return (%1)\n}", "used before"),
    ("graph f(%0: f32[4]) {\n  %1 = exp(%0) : f32[4]\n}", "missing 'return"),
    ("graph f(%0: f32[4]) {\n  %1 = exp(%0, %0) : f32[4]\n  return (%1)\n}", "operands"),
    ("graph f(%0: q8[4]) {\n  return (%0)\n}", "unknown dtype"),
])
def test_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_graph(text)

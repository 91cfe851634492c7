"""Shapes with static (int) and symbolic (str) dimensions, and the size algebra over them.

A symbolic dim is a name such as ``"batch"``; one name means one size within a graph.
Sizes derived from shapes (element counts, strides) are monomials ``coef * a * b`` over
those names, kept in :class:`Size`, so that equal sizes compare equal symbolically.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tensorjit.ir.errors import ShapeError

Dim = int | str
Shape = tuple[Dim, ...]


def as_shape(value: Iterable[Dim] | Dim, what: str = "shape") -> Shape:
    if isinstance(value, (int, str)):
        value = (value,)
    out: list[Dim] = []
    for d in value:
        if isinstance(d, str):
            if not d.isidentifier():
                raise ShapeError(f"{what}: symbolic dim names must be identifiers, got {d!r}")
            out.append(d)
        else:
            try:
                i = int(d)  # accepts NumPy integers
            except (TypeError, ValueError) as exc:
                raise ShapeError(f"{what}: dims must be ints or names, got {d!r}") from exc
            if i < 0:
                raise ShapeError(f"{what}: dims must be >= 0, got {i}")
            out.append(i)
    return tuple(out)


def format_shape(shape: Shape) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


def is_static(shape: Shape) -> bool:
    return all(isinstance(d, int) for d in shape)


def symbols(shape: Shape) -> tuple[str, ...]:
    return tuple(d for d in shape if isinstance(d, str))


def broadcast_shapes(*shapes: Shape) -> Shape:
    """NumPy broadcasting; a symbolic dim broadcasts against 1 and against itself only."""
    ndim = max((len(s) for s in shapes), default=0)
    out: list[Dim] = []
    for axis in range(ndim):
        dim: Dim = 1
        for s in shapes:
            k = axis - (ndim - len(s))
            if k < 0:
                continue
            d = s[k]
            if d == 1 or d == dim:
                continue
            if dim == 1:
                dim = d
                continue
            raise ShapeError(
                "shapes " + ", ".join(format_shape(x) for x in shapes)
                + f" do not broadcast: dim {dim} vs {d} in axis {axis - ndim}"
            )
        out.append(dim)
    return tuple(out)


def normalize_axis(axis: int, ndim: int, what: str = "axis") -> int:
    if not isinstance(axis, int) or isinstance(axis, bool):
        raise ShapeError(f"{what}: expected an int, got {axis!r}")
    if not -ndim <= axis < ndim:
        raise ShapeError(f"{what} {axis} is out of range for an array of rank {ndim}")
    return axis % ndim


def normalize_axes(axis: int | Sequence[int] | None, ndim: int,
                   what: str = "axis") -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, int):
        axis = (axis,)
    axes = tuple(normalize_axis(a, ndim, what) for a in axis)
    if len(set(axes)) != len(axes):
        raise ShapeError(f"{what}: repeated axis in {tuple(axis)}")
    return tuple(sorted(axes))


@dataclass(frozen=True)
class Size:
    """A monomial ``coef * prod(syms)``: element counts and strides of shapes."""

    coef: int
    syms: tuple[str, ...] = ()

    @staticmethod
    def of(dim: Dim) -> Size:
        return Size(1, (dim,)) if isinstance(dim, str) else Size(int(dim))

    @staticmethod
    def product(dims: Iterable[Dim]) -> Size:
        out = Size(1)
        for d in dims:
            out = out * Size.of(d)
        return out

    def __mul__(self, other: Size | int) -> Size:
        if isinstance(other, int):
            other = Size(other)
        if self.coef == 0 or other.coef == 0:
            return Size(0)
        return Size(self.coef * other.coef, tuple(sorted(self.syms + other.syms)))

    @property
    def is_static(self) -> bool:
        return not self.syms

    def evaluate(self, bindings: dict[str, int]) -> int:
        value = self.coef
        for s in self.syms:
            value *= bindings[s]
        return value

    def __str__(self) -> str:
        parts = [str(self.coef)] if self.coef != 1 or not self.syms else []
        return "*".join(parts + list(self.syms))


def numel(shape: Shape) -> Size:
    return Size.product(shape)


def contiguous_strides(shape: Shape) -> tuple[Size, ...]:
    """Row-major strides in elements."""
    strides: list[Size] = []
    acc = Size(1)
    for d in reversed(shape):
        strides.append(acc)
        acc = acc * Size.of(d)
    return tuple(reversed(strides))


def same_size(a: Shape, b: Shape) -> bool:
    return numel(a) == numel(b)

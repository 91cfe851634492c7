"""The kernel under construction during lowering: a group of fused roots and its stages."""

from __future__ import annotations

from dataclasses import dataclass, field

from tensorjit.compiler.lowering.values import KernelScope
from tensorjit.ir.graph import Node
from tensorjit.ir.loops import Expr, Stmt
from tensorjit.ir.shapes import Shape


@dataclass
class Stage:
    kind: str  # reduce | store
    inner: Shape
    items: list[tuple[Node, Expr, Expr | None]] = field(default_factory=list)
    # reduce items: (node, value, position); store items: (node, value, flat index)


@dataclass
class Group:
    mode: str  # flat | rows | matmul
    outer: Shape
    inner: Shape
    scope: KernelScope
    stages: list[Stage] = field(default_factory=list)
    roots: list[Node] = field(default_factory=list)
    loads: set[str] = field(default_factory=set)
    axes_key: tuple = ()
    body: tuple[Stmt, ...] = ()
    gemm: dict = field(default_factory=dict)  # the Gemm statement's fields (mode "gemm")

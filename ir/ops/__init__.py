"""The op registry and every op's row. Importing this package registers all ops."""

from tensorjit.ir.ops import contraction, elementwise, movement, reduce, source  # noqa: F401
from tensorjit.ir.ops.registry import Category, OpDef, TypeInfo, all_ops, get_op, register

__all__ = ["Category", "OpDef", "TypeInfo", "all_ops", "get_op", "register"]

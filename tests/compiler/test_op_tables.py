"""Every op in the registry has a row in every later table (adding an op is a visible,
complete change)."""

from tensorjit.compiler.codegen.ops import ELEMENTWISE
from tensorjit.compiler.lowering.lower import ACCUMULATOR_KIND
from tensorjit.compiler.lowering.values import MOVEMENT_OPS, SOURCE_OPS
from tensorjit.ir.ops import Category, all_ops


def test_every_op_has_a_lowering():
    missing = []
    for name, op in all_ops().items():
        table = {
            # cast becomes the loop IR's own Cast node (codegen.ops.emit_cast)
            Category.ELEMENTWISE: set(ELEMENTWISE) | {"cast"},
            Category.REDUCE: ACCUMULATOR_KIND,
            Category.MOVEMENT: MOVEMENT_OPS,
            Category.SOURCE: SOURCE_OPS,
            Category.CONTRACTION: {"matmul"},
        }.get(op.category, set())
        if name not in table:
            missing.append(f"{name} ({op.category.value})")
    assert not missing, f"ops without a lowering: {missing}"


def test_tables_name_only_registered_ops():
    registered = set(all_ops())
    index_ops = {"idiv", "imod", "imin", "imax"}
    assert set(ELEMENTWISE) - registered == index_ops
    assert set(ACCUMULATOR_KIND) <= registered
    assert set(MOVEMENT_OPS) <= registered

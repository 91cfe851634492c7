"""Index arithmetic: reshapes of contiguous data fold back to affine indices."""

from tensorjit.compiler.lowering import index as ix
from tensorjit.ir.loops import DimParam, Var, format_expr


def test_ravel_unravel_folds_to_the_flat_index():
    i, j = Var("i0"), Var("j0")
    extents = {"i0": ix.const(6), "j0": ix.const(20)}
    flat = ix.ravel([i, j], (6, 20), {})
    assert format_expr(flat) == "((i0 * 20) + j0)"
    parts = ix.unravel(flat, (6, 4, 5), {}, extents)
    assert [format_expr(p) for p in parts] == ["i0", "(j0 // 5)", "(j0 % 5)"]
    assert ix.ravel(parts, (6, 4, 5), {}) is flat  # (j//5)*5 + j%5 recombines to j
    assert ix.unravel(flat, (6, 20), {}, extents) == [i, j]


def test_floordiv_and_mod_fold_only_when_the_remainder_fits():
    j = Var("j0")
    fits = {"j0": ix.const(5)}
    too_big = {"j0": ix.const(6)}
    e = ix.add(ix.mul(Var("i0"), ix.const(5)), j)
    assert format_expr(ix.floordiv(e, ix.const(5), fits)) == "i0"
    assert format_expr(ix.mod(e, ix.const(5), fits)) == "j0"
    assert format_expr(ix.floordiv(e, ix.const(5), too_big)) == "(i0 + (j0 // 5))"
    assert format_expr(ix.mod(e, ix.const(5), too_big)) == "(j0 % 5)"


def test_a_remainder_that_can_be_negative_keeps_the_whole_dividend() -> None:
    """3 - j (a flip) is 2 + (1 - j) = 2*1 + (1 - j), but 1 - j is negative for j > 1, and
    idiv/imod are defined on non-negative operands only."""
    j = Var("j0")
    extents = {"j0": ix.const(4)}
    e = ix.sub(ix.const(3), j)
    assert format_expr(ix.floordiv(e, ix.const(2), extents)) == "(((j0 * -1) + 3) // 2)"
    assert format_expr(ix.mod(e, ix.const(2), extents)) == "(((j0 * -1) + 3) % 2)"
    # a negative multiple of the divisor still drops out: 2 * (1 - j) + 1 + j
    f = ix.add(ix.add(ix.mul(j, ix.const(-2)), ix.const(3)), Var("i0"))
    assert format_expr(ix.mod(f, ix.const(2), {"i0": ix.const(1)})) == "(i0 + 1)"


def test_flipping_a_reshaped_concatenation_reads_every_element() -> None:
    import numpy as np

    import tensorjit as tj

    x = np.array([[-0.92085314, -1.836106]], dtype=np.float32)  # found by hypothesis
    f = tj.jit(lambda a: tj.flip(tj.reshape(tj.concatenate([a, a], axis=0), (4,)), 0),
               cache=False)
    np.testing.assert_array_equal(f(x), np.flip(np.concatenate([x, x]).reshape(4)))
    y = np.arange(12, dtype=np.float64).reshape(2, 6)
    g = tj.jit(lambda a: tj.flip(tj.reshape(a, (3, 4)), 0)[:, 1:], cache=False)
    np.testing.assert_array_equal(g(y), np.flip(y.reshape(3, 4), 0)[:, 1:])


def test_symbolic_divisor_folds_for_a_variable_of_that_extent():
    batch = DimParam("batch", 0)
    i, j = Var("i0"), Var("j0")
    e = ix.add(ix.mul(i, batch), j)
    extents = {"j0": batch}
    assert format_expr(ix.floordiv(e, batch, extents)) == "i0"
    assert format_expr(ix.mod(e, batch, extents)) == "j0"


def test_affine_canonical_form_is_shared():
    i, j = Var("i0"), Var("j0")
    a = ix.add(ix.add(i, ix.const(3)), ix.mul(j, ix.const(2)))
    b = ix.add(ix.mul(j, ix.const(2)), ix.add(ix.const(3), i))
    assert a is b  # interned: same structure, same object
    assert ix.sub(a, a) is ix.const(0)

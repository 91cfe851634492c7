"""Golden-text tests of constant folding (reference-interpreter semantics)."""

import numpy as np

import tensorjit as tj
from tensorjit.passes.pipeline import DEFAULT, optimize

FOLD = DEFAULT["fold"]


SPLATS = """
graph f(%0: f32[batch,4]) {
  %1 = const() {value=2.0} : f32[]
  %2 = broadcast_to(%1) {shape=(batch, 4)} : f32[batch,4]
  %3 = const() {value=3.0} : f32[]
  %4 = broadcast_to(%3) {shape=(batch, 4)} : f32[batch,4]
  %5 = mul(%2, %4) : f32[batch,4]
  %6 = exp(%5) : f32[batch,4]
  %7 = add(%0, %6) : f32[batch,4]
  return (%7)
}"""


def test_elementwise_on_splats_folds_even_for_symbolic_shapes(run_pass, filecheck):
    """2 * 3 folds (exact); exp(6) waits for fast_math: NumPy's float32 exp is not
    always the correctly rounded value that the compiled code computes."""
    filecheck(run_pass(FOLD, SPLATS), """
    CHECK: [[C:%\\d+]] = const() {value=6.0} : f32[]
    CHECK-NEXT: [[B:%\\d+]] = broadcast_to([[C]]) {shape=('batch', 4)}
    CHECK-NEXT: [[E:%\\d+]] = exp([[B]])
    CHECK-NEXT: add(%0, [[E]])
    """)
    filecheck(run_pass(FOLD, SPLATS, fast_math=True), f"""
    CHECK: [[C:%\\d+]] = const() {{value={float(np.exp(np.float32(6.0)))!r}}} : f32[]
    CHECK-NEXT: [[B:%\\d+]] = broadcast_to([[C]]) {{shape=('batch', 4)}}
    CHECK-NEXT: add(%0, [[B]])
    """)


def test_float_sums_fold_only_when_every_partial_sum_is_exact(run_pass, filecheck):
    out = run_pass(FOLD, """
    graph f(%0: f32[]) {
      %1 = const() {value=0.1} : f32[]
      %2 = broadcast_to(%1) {shape=(1000,)} : f32[1000]
      %3 = reduce_sum(%2) {axes=(0,)} : f32[]
      %4 = const() {value=0.375} : f32[]
      %5 = broadcast_to(%4) {shape=(1000,)} : f32[1000]
      %6 = reduce_sum(%5) {axes=(0,)} : f32[]
      %7 = add(%3, %6) : f32[]
      %8 = add(%0, %7) : f32[]
      return (%8)
    }""")
    filecheck(out, """
    CHECK: reduce_sum(
    CHECK: const() {value=375.0} : f32[]
    """)


def test_shape_only_computations_fold(run_pass, filecheck):
    """sum(ones(5, 7)) is 35 and max over a splat is the splat: no data needed."""
    out = run_pass(FOLD, """
    graph f(%0: f64[5]) {
      %1 = const() {value=1.0} : f64[]
      %2 = broadcast_to(%1) {shape=(5, 7)} : f64[5,7]
      %3 = reduce_sum(%2) {axes=(1,)} : f64[5]
      %4 = reduce_max(%2) {axes=(0, 1)} : f64[]
      %5 = broadcast_to(%4) {shape=(5,)} : f64[5]
      %6 = add(%3, %5) : f64[5]
      %7 = mul(%0, %6) : f64[5]
      return (%7)
    }""")
    filecheck(out, """
    CHECK: const() {value=8.0} : f64[]
    CHECK: mul(%0,
    CHECK-NOT: reduce_
    """)


def test_index_grids_fold_when_the_result_is_small_or_uniform(run_pass, filecheck):
    out = run_pass(FOLD, """
    graph f(%0: i64[]) {
      %1 = iota() {axis=0} : i64[10]
      %2 = reduce_sum(%1) {axes=(0,)} : i64[]
      %3 = add(%0, %2) : i64[]
      %4 = iota() {axis=1} : i64[3,1000]
      %5 = iota() {axis=0} : i64[3,1000]
      %6 = eq(%4, %5) : bool[3,1000]
      return (%3, %6)
    }""")
    filecheck(out, """
    CHECK: const() {value=45} : i64[]
    CHECK: add(%0,
    CHECK: iota() {axis=1}
    CHECK: eq(
    """)


def test_folding_never_grows_array_constants():
    x = np.arange(6, dtype=np.float32)

    def fn(a: tj.Tensor) -> tj.Tensor:
        c = tj.reshape(tj.zeros(6, dtype="float32") + x, (2, 3)) * 2.0  # constant work
        return a + tj.broadcast_to(c, (4, 2, 3))

    g = tj.trace(fn, np.zeros((4, 2, 3), np.float32))
    text = str(optimize(g))
    # 0 + x, the reshape and * 2 fold into one (2, 3) array; the broadcast stays a view
    assert "array[2, 3]" in text and "array[4, 2, 3]" not in text
    assert "broadcast_to" in text
    assert np.array_equal(tj.compile(g, cache=False)(np.ones((4, 2, 3), np.float32)),
                          1 + np.broadcast_to(x.reshape(2, 3) * 2, (4, 2, 3)))


def test_a_scalar_result_is_returned_as_an_array_constant():
    g = tj.trace(lambda x: (x + 1.0, tj.sum(tj.ones(5))), np.zeros(3, np.float32))
    text = str(optimize(g))
    assert "reduce_sum" not in text
    y, s = tj.compile(g, cache=False)(np.zeros(3, np.float32))
    assert s.shape == () and s == 5.0 and s.dtype == np.float64

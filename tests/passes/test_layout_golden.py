"""Golden-text tests of the layout pass."""

from tensorjit.passes.pipeline import DEFAULT

LAYOUT = DEFAULT["layout"]


def test_elementwise_work_moves_before_the_broadcast(run_pass, filecheck):
    out = run_pass(LAYOUT, """
    graph f(%0: f32[64,256], %1: f32[256], %2: f32[64,1]) {
      %3 = broadcast_to(%1) {shape=(64, 256)} : f32[64,256]
      %4 = exp(%3) : f32[64,256]
      %5 = const() {value=2.0} : f32[]
      %6 = broadcast_to(%5) {shape=(64, 256)} : f32[64,256]
      %7 = mul(%4, %6) : f32[64,256]
      %8 = add(%0, %7) : f32[64,256]
      %9 = broadcast_to(%2) {shape=(64, 256)} : f32[64,256]
      %10 = mul(%9, %3) : f32[64,256]
      return (%8, %10)
    }""")
    filecheck(out, """
    CHECK: [[E:%\\d+]] = exp(%1) : f32[256]
    CHECK: [[M:%\\d+]] = mul([[E]], [[C:%\\d+]]) : f32[256]
    CHECK-NEXT: [[B:%\\d+]] = broadcast_to([[M]]) {shape=(64, 256)}
    CHECK-NEXT: add(
    CHECK-SAME: [[B]]
    CHECK: mul([[X:%\\d+]], [[Y:%\\d+]]) : f32[64,256]
    """)


def test_transposes_move_after_elementwise_work_and_cancel(run_pass, filecheck):
    out = run_pass(LAYOUT, """
    graph f(%0: f32[8,16], %1: f32[8,16]) {
      %2 = transpose(%0) {perm=(1, 0)} : f32[16,8]
      %3 = transpose(%1) {perm=(1, 0)} : f32[16,8]
      %4 = add(%2, %3) : f32[16,8]
      %5 = tanh(%4) : f32[16,8]
      %6 = transpose(%5) {perm=(1, 0)} : f32[8,16]
      return (%6)
    }""")
    filecheck(out, """
    CHECK: [[A:%\\d+]] = add(%0, %1) : f32[8,16]
    CHECK-NEXT: [[T:%\\d+]] = tanh([[A]]) : f32[8,16]
    CHECK-NEXT: return ([[T]])
    """)


REDUCE = """
graph f(%0: f32[8,16], %1: i32[8,16]) {
  %2 = transpose(%0) {perm=(1, 0)} : f32[16,8]
  %3 = reduce_sum(%2) {axes=(0,)} : f32[8]
  %4 = transpose(%1) {perm=(1, 0)} : i32[16,8]
  %5 = reduce_max(%4) {axes=(0,)} : i32[8]
  return (%3, %5)
}"""


def test_reduction_of_a_transpose_reduces_the_source(run_pass, filecheck):
    """Integers always (exact); float sums keep their summation order without fast_math."""
    out = run_pass(LAYOUT, REDUCE)
    filecheck(out, """
    CHECK: reduce_sum([[T:%\\d+]]) {axes=(0,)} : f32[8]
    CHECK: reduce_max(%1) {axes=(1,)} : i32[8]
    """)
    out = run_pass(LAYOUT, REDUCE, fast_math=True)
    filecheck(out, """
    CHECK: reduce_sum(%0) {axes=(1,)} : f32[8]
    """)

"""Golden-text tests of algebraic simplification: IEEE-exact rules always, the others only
with fast_math."""

from tensorjit.passes.pipeline import DEFAULT

SIMPLIFY = DEFAULT["simplify"]

IDENTITIES = """
graph f(%0: f32[4]) {
  %1 = const() {value=1.0} : f32[]
  %2 = broadcast_to(%1) {shape=(4,)} : f32[4]
  %3 = mul(%0, %2) : f32[4]
  %4 = const() {value=-0.0} : f32[]
  %5 = broadcast_to(%4) {shape=(4,)} : f32[4]
  %6 = add(%3, %5) : f32[4]
  %7 = neg(%6) : f32[4]
  %8 = neg(%7) : f32[4]
  %9 = div(%8, %2) : f32[4]
  %10 = abs(%9) : f32[4]
  %11 = neg(%10) : f32[4]
  %12 = abs(%11) : f32[4]
  %13 = abs(%12) : f32[4]
  return (%9, %13)
}"""


def test_exact_identities_vanish(run_pass, filecheck):
    out = run_pass(SIMPLIFY, IDENTITIES)
    filecheck(out, """
    CHECK: graph f(%0: f32[4]) {
    CHECK-NEXT: [[A:%\\d+]] = abs(%0)
    CHECK-NEXT: return (%0, [[A]])
    """)


ZEROS = """
graph f(%0: f32[4], %1: i32[4]) {
  %2 = const() {value=0.0} : f32[]
  %3 = broadcast_to(%2) {shape=(4,)} : f32[4]
  %4 = add(%0, %3) : f32[4]
  %5 = mul(%0, %3) : f32[4]
  %6 = sub(%0, %0) : f32[4]
  %7 = sub(%3, %0) : f32[4]
  %8 = div(%0, %0) : f32[4]
  %9 = const() {value=0} : i32[]
  %10 = broadcast_to(%9) {shape=(4,)} : i32[4]
  %11 = add(%1, %10) : i32[4]
  %12 = mul(%1, %10) : i32[4]
  %13 = sub(%1, %1) : i32[4]
  %14 = eq(%1, %1) : bool[4]
  %15 = eq(%0, %0) : bool[4]
  return (%4, %5, %6, %7, %8, %11, %12, %13, %14, %15)
}"""


def test_zero_rules_on_floats_wait_for_fast_math(run_pass, filecheck):
    """x + 0.0, x * 0, x - x, 0.0 - x and x / x differ for -0.0, NaN or Inf; integers are
    exact."""
    out = run_pass(SIMPLIFY, ZEROS)
    filecheck(out, """
    CHECK: [[A:%\\d+]] = add(%0,
    CHECK: [[M:%\\d+]] = mul(%0,
    CHECK: [[S:%\\d+]] = sub(%0, %0)
    CHECK: [[N:%\\d+]] = sub(
    CHECK: [[D:%\\d+]] = div(%0, %0)
    CHECK: [[IZ:%\\d+]] = broadcast_to([[C0:%\\d+]]) {shape=(4,)} : i32[4]
    CHECK: [[T:%\\d+]] = broadcast_to([[C1:%\\d+]]) {shape=(4,)} : bool[4]
    CHECK: [[E:%\\d+]] = eq(%0, %0)
    CHECK: return ([[A]], [[M]], [[S]], [[N]], [[D]], %1, [[IZ]], [[IZ]], [[T]], [[E]])
    """)


def test_zero_rules_with_fast_math(run_pass, filecheck):
    out = run_pass(SIMPLIFY, ZEROS, fast_math=True)
    filecheck(out, """
    CHECK: [[Z:%\\d+]] = broadcast_to([[ZC:%\\d+]]) {shape=(4,)} : f32[4]
    CHECK: [[N:%\\d+]] = neg(%0)
    CHECK: [[O:%\\d+]] = broadcast_to([[OC:%\\d+]]) {shape=(4,)} : f32[4]
    CHECK: return (%0, [[Z]], [[Z]], [[N]], [[O]],
    """)


def test_select_and_logic(run_pass, filecheck):
    out = run_pass(SIMPLIFY, """
    graph f(%0: f32[4], %1: bool[4], %2: f32[4]) {
      %3 = select(%1, %0, %0) : f32[4]
      %4 = const() {value=False} : bool[]
      %5 = broadcast_to(%4) {shape=(4,)} : bool[4]
      %6 = select(%5, %0, %2) : f32[4]
      %7 = logical_not(%1) : bool[4]
      %8 = logical_not(%7) : bool[4]
      %9 = logical_and(%8, %8) : bool[4]
      %10 = maximum(%3, %3) : f32[4]
      return (%10, %6, %9)
    }""")
    filecheck(out, """
    CHECK: graph f(
    CHECK-NEXT: return (%0, %2, %1)
    """)

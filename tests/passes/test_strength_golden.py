"""Golden-text tests of strength reduction."""

from tensorjit.passes.pipeline import DEFAULT

STRENGTH = DEFAULT["strength-reduce"]

POWERS = """
graph f(%0: f32[4], %1: i64[4]) {
  %2 = const() {value=2.0} : f32[]
  %3 = broadcast_to(%2) {shape=(4,)} : f32[4]
  %4 = pow(%0, %3) : f32[4]
  %5 = const() {value=-1.0} : f32[]
  %6 = broadcast_to(%5) {shape=(4,)} : f32[4]
  %7 = pow(%0, %6) : f32[4]
  %8 = const() {value=0.5} : f32[]
  %9 = broadcast_to(%8) {shape=(4,)} : f32[4]
  %10 = pow(%0, %9) : f32[4]
  %11 = const() {value=0} : i64[]
  %12 = broadcast_to(%11) {shape=(4,)} : i64[4]
  %13 = pow(%1, %12) : i64[4]
  %14 = const() {value=2} : i64[]
  %15 = broadcast_to(%14) {shape=(4,)} : i64[4]
  %16 = pow(%1, %15) : i64[4]
  return (%4, %7, %10, %13, %16)
}"""


def test_small_integer_powers(run_pass, filecheck):
    """Float squares stay pow without fast_math: LLVM makes x*x of them itself, but never
    contracts that product into an FMA, which our mul could be."""
    out = run_pass(STRENGTH, POWERS)
    filecheck(out, """
    CHECK: [[SQ:%\\d+]] = pow(%0, [[TWO:%\\d+]]) : f32[4]
    CHECK: [[ONE:%\\d+]] = const() {value=1.0} : f32[]
    CHECK-NEXT: [[ONES:%\\d+]] = broadcast_to([[ONE]])
    CHECK-NEXT: [[INV:%\\d+]] = div([[ONES]], %0)
    CHECK: [[HALF:%\\d+]] = pow(%0,
    CHECK: const() {value=1} : i64[]
    CHECK: [[ISQ:%\\d+]] = mul(%1, %1) : i64[4]
    CHECK: return ([[SQ]], [[INV]], [[HALF]], [[I1:%\\d+]], [[ISQ]])
    CHECK-NOT: sqrt
    """)


def test_square_root_only_with_fast_math(run_pass, filecheck):
    """pow(-0.0, 0.5) is +0.0 and pow(-inf, 0.5) is +inf; sqrt gives -0.0 and NaN."""
    out = run_pass(STRENGTH, POWERS, fast_math=True)
    filecheck(out, """
    CHECK: mul(%0, %0) : f32[4]
    CHECK: [[R:%\\d+]] = sqrt(%0)
    CHECK: return ([[A:%\\d+]], [[B:%\\d+]], [[R]],
    """)


DIVISIONS = """
graph f(%0: f32[4], %1: f64[4]) {
  %2 = const() {value=8.0} : f32[]
  %3 = broadcast_to(%2) {shape=(4,)} : f32[4]
  %4 = div(%0, %3) : f32[4]
  %5 = const() {value=-0.25} : f64[]
  %6 = broadcast_to(%5) {shape=(4,)} : f64[4]
  %7 = div(%1, %6) : f64[4]
  %8 = const() {value=3.0} : f32[]
  %9 = broadcast_to(%8) {shape=(4,)} : f32[4]
  %10 = div(%0, %9) : f32[4]
  %11 = const() {value=1.7014118346046923e+38} : f32[]
  %12 = broadcast_to(%11) {shape=(4,)} : f32[4]
  %13 = div(%0, %12) : f32[4]
  return (%4, %7, %10, %13)
}"""


def test_division_by_a_power_of_two_multiplies(run_pass, filecheck):
    """x / 8 == x * 0.125 exactly (also 2**127 in float32, whose reciprocal is subnormal);
    x / 3 is not x * (1/3)."""
    out = run_pass(STRENGTH, DIVISIONS)
    filecheck(out, """
    CHECK: const() {value=0.125} : f32[]
    CHECK: mul(%0,
    CHECK: const() {value=-4.0} : f64[]
    CHECK: mul(%1,
    CHECK: div(%0,
    CHECK: const() {value=5.877471754111438e-39} : f32[]
    CHECK: mul(%0,
    """)


def test_other_divisions_with_fast_math(run_pass, filecheck):
    out = run_pass(STRENGTH, DIVISIONS, fast_math=True)
    filecheck(out, """
    CHECK: const() {value=0.3333333432674408} : f32[]
    CHECK-NOT: div(
    """)

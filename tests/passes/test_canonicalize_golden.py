"""Golden-text tests of the canonicalize pass: IR text in, IR text checked out."""

from tensorjit.passes.pipeline import DEFAULT

CANON = DEFAULT["canonicalize"]


def test_commutative_operands_are_ordered_so_both_spellings_merge(run_pass, filecheck):
    out = run_pass(CANON, """
    graph f(%0: f32[4], %1: f32[4]) {
      %2 = mul(%0, %1) : f32[4]
      %3 = mul(%1, %0) : f32[4]
      %4 = sub(%2, %3) : f32[4]
      return (%4)
    }""")
    filecheck(out, """
    CHECK: [[M:%\\d+]] = mul(
    CHECK-NOT: mul(
    CHECK: sub([[M]], [[M]])
    """)


def test_constants_go_to_the_right(run_pass, filecheck):
    out = run_pass(CANON, """
    graph f(%0: f32[4]) {
      %1 = const() {value=2.0} : f32[]
      %2 = broadcast_to(%1) {shape=(4,)} : f32[4]
      %3 = mul(%2, %0) : f32[4]
      %4 = add(%2, %3) : f32[4]
      return (%4)
    }""")
    filecheck(out, """
    CHECK: [[C:%\\d+]] = broadcast_to(
    CHECK: [[M:%\\d+]] = mul(%0, [[C]])
    CHECK: add([[M]], [[C]])
    """)


def test_float_maximum_keeps_its_order_because_of_signed_zeros(run_pass, filecheck):
    out = run_pass(CANON, """
    graph f(%0: f32[4], %1: f32[4]) {
      %2 = maximum(%1, %0) : f32[4]
      return (%2)
    }""")
    filecheck(out, "CHECK: maximum(%1, %0)")


def test_sum_of_two_products_keeps_its_order_for_fma_contraction(run_pass, filecheck):
    out = run_pass(CANON, """
    graph f(%0: f32[4], %1: f32[4]) {
      %2 = mul(%0, %0) : f32[4]
      %3 = mul(%1, %1) : f32[4]
      %4 = add(%3, %2) : f32[4]
      return (%4)
    }""")
    filecheck(out, """
    CHECK: [[A:%\\d+]] = mul(%1, %1)
    CHECK: [[B:%\\d+]] = mul(%0, %0)
    CHECK: add([[A]], [[B]])
    """)


def test_subtracting_a_constant_adds_its_negation(run_pass, filecheck):
    out = run_pass(CANON, """
    graph f(%0: f32[4], %1: i32[4]) {
      %2 = const() {value=0.0} : f32[]
      %3 = broadcast_to(%2) {shape=(4,)} : f32[4]
      %4 = sub(%0, %3) : f32[4]
      %5 = const() {value=-2147483648} : i32[]
      %6 = broadcast_to(%5) {shape=(4,)} : i32[4]
      %7 = sub(%1, %6) : i32[4]
      return (%4, %7)
    }""")
    filecheck(out, """
    CHECK: const() {value=-0.0} : f32[]
    CHECK: add(%0,
    CHECK: const() {value=-2147483648} : i32[]
    CHECK: add(%1,
    CHECK-NOT: sub(
    """)


def test_shape_op_chains_collapse(run_pass, filecheck):
    out = run_pass(CANON, """
    graph f(%0: f32[2,3,4]) {
      %1 = reshape(%0) {shape=(6, 4)} : f32[6,4]
      %2 = reshape(%1) {shape=(24,)} : f32[24]
      %3 = transpose(%0) {perm=(2, 0, 1)} : f32[4,2,3]
      %4 = transpose(%3) {perm=(1, 2, 0)} : f32[2,3,4]
      %5 = transpose(%0) {perm=(1, 0, 2)} : f32[3,2,4]
      %6 = transpose(%5) {perm=(0, 2, 1)} : f32[3,4,2]
      %7 = reshape(%4) {shape=(24,)} : f32[24]
      %8 = add(%2, %7) : f32[24]
      %9 = cast(%0) {dtype=f64} : f64[2,3,4]
      %10 = cast(%9) {dtype=f32} : f32[2,3,4]
      return (%8, %6, %10)
    }""")
    filecheck(out, """
    CHECK: [[R:%\\d+]] = reshape(%0) {shape=(24,)} : f32[24]
    CHECK-NEXT: add([[R]], [[R]])
    CHECK-NEXT: transpose(%0) {perm=(1, 2, 0)} : f32[3,4,2]
    CHECK-NEXT: return ([[A:%\\d+]], [[B:%\\d+]], %0)
    """)


def test_lossy_cast_chains_stay(run_pass, filecheck):
    out = run_pass(CANON, """
    graph f(%0: f64[3]) {
      %1 = cast(%0) {dtype=f32} : f32[3]
      %2 = cast(%1) {dtype=f64} : f64[3]
      return (%2)
    }""")
    filecheck(out, """
    CHECK: cast(%0) {dtype=f32}
    CHECK-NEXT: cast(
    """)


def test_views_of_splats_are_splats_and_identity_views_vanish(run_pass, filecheck):
    out = run_pass(CANON, """
    graph f(%0: f32[2,3]) {
      %1 = const() {value=1.5} : f32[3,2]
      %2 = transpose(%1) {perm=(1, 0)} : f32[2,3]
      %3 = slice(%0) {starts=(0, 0), steps=(1, 1), stops=(2, 3)} : f32[2,3]
      %4 = pad(%3) {pads=((0, 0), (0, 0)), value=0.0} : f32[2,3]
      %5 = broadcast_to(%4) {shape=(2, 3)} : f32[2,3]
      %6 = add(%5, %2) : f32[2,3]
      return (%6)
    }""")
    filecheck(out, """
    CHECK: [[C:%\\d+]] = const() {value=1.5} : f32[]
    CHECK-NEXT: [[B:%\\d+]] = broadcast_to([[C]]) {shape=(2, 3)} : f32[2,3]
    CHECK-NEXT: add(%0, [[B]])
    CHECK-NOT: transpose
    CHECK-NOT: slice
    """)

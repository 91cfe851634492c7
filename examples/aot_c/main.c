/*
 * Calls the MLP exported by export_mlp.py (libmlp.so, mlp.h) from C and checks it
 * against the output NumPy computed for the same input (mlp_expected.h), then checks
 * that bad arguments come back as error codes with a message instead of a crash.
 * Exit status 0 when everything matches.
 */
#include <math.h>
#include <stdio.h>

#include "mlp.h"
#include "mlp_expected.h"

#define TOLERANCE 2e-5

static int failures = 0;

static void expect(int ok, const char *what) {
    if (!ok) {
        fprintf(stderr, "FAILED: %s\n", what);
        failures++;
    }
}

static void expect_code(int got, int want, const char *what) {
    if (got != want) {
        fprintf(stderr, "FAILED: %s: got %d (%s), expected %d\n", what, got,
                mlp_last_error(), want);
        failures++;
    } else if (want != MLP_OK) {
        printf("  %-36s -> %d: %s\n", what, got, mlp_last_error());
    }
}

/* Runs the first `batch` rows and compares them with NumPy's output. */
static void check_batch(int64_t batch) {
    static float out[MLP_BATCH * MLP_OUT];
    expect_code(mlp(mlp_x, out, batch), MLP_OK, "mlp(x, out, batch)");
    double worst = 0.0;
    for (int64_t r = 0; r < batch; ++r) {
        double row_sum = 0.0;
        for (int c = 0; c < MLP_OUT; ++c) {
            double err = fabs((double)out[r * MLP_OUT + c] - (double)mlp_y[r * MLP_OUT + c]);
            worst = err > worst ? err : worst;
            row_sum += out[r * MLP_OUT + c];
        }
        expect(fabs(row_sum - 1.0) < 1e-5, "softmax rows sum to 1");
    }
    printf("batch %lld: max |C - NumPy| = %.3g (tolerance %.0e)\n", (long long)batch, worst,
           TOLERANCE);
    expect(worst <= TOLERANCE, "output matches NumPy");
}

int main(void) {
    check_batch(MLP_BATCH);
    check_batch(3); /* the batch is a symbolic dim: any size works */

    float out[MLP_BATCH * MLP_OUT];
    printf("error handling:\n");
    expect_code(mlp(mlp_x, out, 0), MLP_ERR_BAD_DIM, "batch = 0");
    expect_code(mlp(mlp_x, out, -5), MLP_ERR_BAD_DIM, "batch = -5");
    expect_code(mlp(NULL, out, 2), MLP_ERR_NULL_ARGUMENT, "x = NULL");
    expect_code(mlp(mlp_x, NULL, 2), MLP_ERR_NULL_ARGUMENT, "out = NULL");
    expect_code(mlp(mlp_x, out, INT64_MAX / 2), MLP_ERR_BAD_DIM, "batch overflows int64");
    expect_code(mlp((const float *)out, out, 1), MLP_ERR_OVERLAP, "out overlaps x");
    expect_code(mlp_checked(mlp_x, 5, out, MLP_BATCH * MLP_OUT, MLP_BATCH), MLP_ERR_SIZE,
                "checked: x has 5 elements");
    expect_code(mlp_checked(mlp_x, MLP_BATCH * MLP_IN, out, MLP_BATCH * MLP_OUT, MLP_BATCH),
                MLP_OK, "checked: right sizes");
    expect(mlp_error_string(MLP_ERR_BAD_DIM)[0] != '\0', "error_string");
    expect(mlp_manifest()[0] == '{', "embedded manifest");

    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("ok\n");
    return 0;
}

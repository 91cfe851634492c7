/*
 * What a call of an exported function costs beyond its computation, for a 64-element
 * input: tiny(x, y) computes y = 2x + 1 (libtiny.so from export_mlp.py). Times, per call
 * (best of several runs of many calls):
 *   tiny()        the checked entry point (CPU check, NULL/overlap checks, one call)
 *   tiny_entry()  the compiled code alone, called with a prepared buffer array
 *   inline C      the same 64 multiply-adds written in C here (the computation itself)
 * Overhead = tiny() - inline C. Fails (exit 1) if it is not under 1 us.
 */
#include <stdio.h>
#include <time.h>

#include "tiny.h"

#define N 64
#define CALLS 200000
#define RUNS 7

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float x[N], y[N];

static void inline_c(void) {
    for (int i = 0; i < N; ++i) y[i] = x[i] * 2.0f + 1.0f;
    __asm__ __volatile__("" : : "r"(y) : "memory"); /* keep every call's work */
}

static void checked(void) {
    if (tiny(x, y) != TINY_OK) fprintf(stderr, "tiny: %s\n", tiny_last_error());
}

static void *bufs[2] = {x, y};
static void raw(void) { tiny_entry(bufs, NULL, NULL); }

static double best_ns(void (*fn)(void)) {
    double best = 1e30;
    for (int r = 0; r < RUNS; ++r) {
        double t0 = now();
        for (int i = 0; i < CALLS; ++i) fn();
        double dt = (now() - t0) / CALLS * 1e9;
        best = dt < best ? dt : best;
    }
    return best;
}

int main(void) {
    for (int i = 0; i < N; ++i) x[i] = (float)i / N;
    checked();
    for (int i = 0; i < N; ++i) {
        if (y[i] != x[i] * 2.0f + 1.0f) {
            fprintf(stderr, "wrong result at %d\n", i);
            return 1;
        }
    }
    double t_checked = best_ns(checked), t_raw = best_ns(raw), t_inline = best_ns(inline_c);
    double overhead = t_checked - t_inline;
    printf("per call, 64 float32 elements (best of %d x %d calls):\n", RUNS, CALLS);
    printf("  tiny() checked entry     %7.1f ns\n", t_checked);
    printf("  tiny_entry() raw code    %7.1f ns\n", t_raw);
    printf("  inline C loop            %7.1f ns\n", t_inline);
    printf("  call overhead            %7.1f ns  (target < 1000 ns: %s)\n", overhead,
           overhead < 1000.0 ? "MET" : "MISSED");
    return overhead < 1000.0 ? 0 : 1;
}

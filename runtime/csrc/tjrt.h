/*
 * tjrt.h - the tensorjit C runtime.
 *
 * A deliberately small C11 library used in two ways:
 *   - as a shared library that the JIT dlopens (through cffi) for aligned
 *     buffers and the thread pool that compiled kernels call into;
 *   - as a static PIC library linked into ahead-of-time shared objects, so
 *     those run without Python or LLVM.
 *
 * Every function here is part of a stable C ABI: compiled code calls these
 * symbols by name, so change a signature only together with codegen.
 */
#ifndef TJRT_H
#define TJRT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Alignment of every block from tj_aligned_alloc: one cache line, and enough
 * for AVX-512 aligned loads and stores. */
#define TJ_ALIGNMENT 64

/* Runtime version as MAJOR*10000 + MINOR*100 + PATCH. */
#define TJ_RUNTIME_VERSION 100

/* Returns TJ_ALIGNMENT-aligned memory of at least nbytes, or NULL when out of
 * memory. nbytes == 0 returns a valid, distinct, non-NULL minimal block (so
 * callers never need a special case for empty tensors). Blocks of 2 MiB and
 * more are 2 MiB-aligned and advised to use transparent huge pages (Linux;
 * TENSORJIT_MADVISE_HUGEPAGE=0 turns that off). Free with tj_aligned_free. */
void *tj_aligned_alloc(size_t nbytes);

/* Frees a block from tj_aligned_alloc. NULL is a no-op. */
void tj_aligned_free(void *ptr);

/* Returns TJ_RUNTIME_VERSION of the compiled library. */
int tj_runtime_version(void);

/* A parallel loop body: process indices [begin, end). */
typedef void (*tj_body_fn)(void *ctx, int64_t begin, int64_t end);

/*
 * Runs body over [0, n) split into chunks on the thread pool and returns when
 * every chunk has finished. The calling thread takes part. Each chunk holds at
 * least min_chunk indices (values < 1 are treated as 1), so n <= min_chunk
 * (or a pool of one thread) runs entirely inline on the calling thread with a
 * single body(ctx, 0, n) call. Every index in [0, n) is covered exactly once.
 *
 * Concurrency: the pool runs one parallel loop at a time. If another thread is
 * already running a parallel_for (a second Python thread, or a nested call
 * from inside a body), this call does not wait: it runs its whole range inline
 * on the calling thread. That can never deadlock and is always correct.
 *
 * Returns 0 on success, -1 if n < 0 or body is NULL (nothing runs).
 */
int tj_parallel_for(int64_t n, int64_t min_chunk, tj_body_fn body, void *ctx);

/* Sets the number of threads parallel_for uses (including the caller).
 * n < 1 resets to the default. Takes effect on the next parallel_for. */
void tj_set_num_threads(int n);

/* Current thread count. The default is TENSORJIT_NUM_THREADS if set to a
 * positive integer, else the number of online CPUs. */
int tj_get_num_threads(void);

#ifdef __cplusplus
}
#endif

#endif /* TJRT_H */

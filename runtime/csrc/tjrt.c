/*
 * tjrt.c - the tensorjit C runtime: aligned buffers and a small thread pool.
 *
 * See tjrt.h for the contract of each function. Design notes:
 *
 * Thread pool. Workers are created lazily on the first parallel_for that
 * needs them and then live for the life of the process, sleeping on a
 * condition variable between loops, so a compiled function that calls
 * parallel_for many times pays the thread-creation cost once. A loop is split
 * into k chunks of at least min_chunk indices; participants (the caller plus
 * up to num_threads-1 workers) claim chunks from one atomic counter, which
 * balances uneven chunks without a scheduler.
 *
 * One loop at a time: `run_lock` is taken with trylock. A second caller that
 * finds the pool busy (another Python thread, or a body that itself calls
 * parallel_for) runs its range inline instead of waiting. Waiting could
 * deadlock on nesting; running inline is always correct and keeps the
 * latency of the second caller bounded.
 */
#define _GNU_SOURCE /* pthread_atfork, sysconf(_SC_NPROCESSORS_ONLN) */

#include "tjrt.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* Aligned memory                                                            */
/* ------------------------------------------------------------------------ */

void *tj_aligned_alloc(size_t nbytes) {
    void *p = NULL;
    /* A zero-byte request still gets one real cache line, so the pointer is
     * unique and non-NULL and code that touches "the first element" of an
     * empty buffer by mistake reads mapped memory. */
    if (nbytes == 0) {
        nbytes = TJ_ALIGNMENT;
    }
    if (posix_memalign(&p, TJ_ALIGNMENT, nbytes) != 0) {
        return NULL;
    }
    return p;
}

void tj_aligned_free(void *ptr) { free(ptr); }

int tj_runtime_version(void) { return TJ_RUNTIME_VERSION; }

/* ------------------------------------------------------------------------ */
/* Thread count                                                              */
/* ------------------------------------------------------------------------ */

/* Upper bound on pool size; protects against absurd env values. */
#define TJ_MAX_THREADS 256

static atomic_int g_num_threads = 0; /* 0: not yet initialised */

static int default_num_threads(void) {
    const char *env = getenv("TENSORJIT_NUM_THREADS");
    if (env != NULL && *env != '\0') {
        char *end = NULL;
        long v = strtol(env, &end, 10);
        if (end != env && *end == '\0' && v > 0) {
            return v > TJ_MAX_THREADS ? TJ_MAX_THREADS : (int)v;
        }
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu < 1) {
        ncpu = 1;
    }
    return ncpu > TJ_MAX_THREADS ? TJ_MAX_THREADS : (int)ncpu;
}

void tj_set_num_threads(int n) {
    if (n < 1) {
        n = default_num_threads();
    }
    if (n > TJ_MAX_THREADS) {
        n = TJ_MAX_THREADS;
    }
    atomic_store(&g_num_threads, n);
}

int tj_get_num_threads(void) {
    int n = atomic_load(&g_num_threads);
    if (n == 0) {
        /* Racing initialisers compute the same value, so a plain store is
         * fine. */
        n = default_num_threads();
        atomic_store(&g_num_threads, n);
    }
    return n;
}

/* ------------------------------------------------------------------------ */
/* Thread pool                                                               */
/* ------------------------------------------------------------------------ */

/* Polls (each a CPU pause hint) a worker spends waiting for the next loop,
 * and the caller for its workers, before sleeping on a condition variable.
 * Spinning can save the few microseconds a futex wake-up costs, but on a
 * loaded machine it steals the core the other thread needs: measured on the
 * 2-core development VM with another process busy, 50 polls made a 2-thread
 * loop over 4K doubles 2 us slower and 2000 polls 90 us slower. So the
 * default is to sleep at once; build with -DTJ_SPIN_POLLS=N to tune. */
#ifndef TJ_SPIN_POLLS
#define TJ_SPIN_POLLS 0
#endif

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __asm__ __volatile__("pause");
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

typedef struct {
    tj_body_fn body;
    void *ctx;
    int64_t n;
    int64_t nchunks;
    atomic_int_fast64_t next_chunk; /* next chunk index to claim */
} tj_job;

/* The current job, written only by the thread holding g_run_lock, and only
 * while no worker is using it (see g_pending). */
static tj_job g_job;

/* Published job ticket: (generation << 16) | number of participating
 * workers. One atomic word, so a worker always reads a generation and its
 * participant count together. Workers [0, count) take part in the job. */
static _Atomic uint64_t g_ticket = 0;
#define TICKET_GEN(t) ((t) >> 16)
#define TICKET_WORKERS(t) ((int)((t) & 0xffff))

/* Participants of the current job that have not finished it yet. */
static atomic_int g_pending = 0;

/* Sleeping workers wait on g_work_cv, a sleeping caller on g_done_cv; both
 * under g_lock, which also guards worker creation. */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_work_cv = PTHREAD_COND_INITIALIZER;
static pthread_cond_t g_done_cv = PTHREAD_COND_INITIALIZER;
/* Held by the thread running a parallel loop, for the whole loop. */
static pthread_mutex_t g_run_lock = PTHREAD_MUTEX_INITIALIZER;

static int g_workers_started = 0; /* persistent worker threads alive */
static int g_atfork_registered = 0;
/* Generation current when worker i was created: a worker created for job g
 * must treat g as new. */
static uint64_t g_start_gen[TJ_MAX_THREADS];

/* Chunk c of k over [0, n) starts at c*q + min(c, r) with q = n/k, r = n%k:
 * the first r chunks hold q+1 indices, the rest q. With k <= n/min_chunk,
 * q >= min_chunk, and the chunks tile [0, n) without overflow for any n. */
static void run_chunks(tj_job *job) {
    for (;;) {
        int64_t c = atomic_fetch_add(&job->next_chunk, 1);
        if (c >= job->nchunks) {
            return;
        }
        int64_t q = job->n / job->nchunks;
        int64_t r = job->n % job->nchunks;
        int64_t begin = c * q + (c < r ? c : r);
        int64_t end = begin + q + (c < r ? 1 : 0);
        job->body(job->ctx, begin, end);
    }
}

/* Blocks until a ticket with a generation other than `seen` is published. */
static uint64_t wait_for_ticket(uint64_t seen) {
    for (int i = 0; i < TJ_SPIN_POLLS; i++) {
        uint64_t t = atomic_load_explicit(&g_ticket, memory_order_acquire);
        if (TICKET_GEN(t) != seen) {
            return t;
        }
        cpu_relax();
    }
    /* Tickets are published under g_lock, so checking under it and then
     * waiting cannot miss a wake-up. */
    pthread_mutex_lock(&g_lock);
    uint64_t t;
    while (TICKET_GEN(t = atomic_load(&g_ticket)) == seen) {
        pthread_cond_wait(&g_work_cv, &g_lock);
    }
    pthread_mutex_unlock(&g_lock);
    return t;
}

static void *worker_main(void *arg) {
    int index = (int)(intptr_t)arg;
    pthread_mutex_lock(&g_lock);
    uint64_t seen = g_start_gen[index];
    pthread_mutex_unlock(&g_lock);
    for (;;) {
        uint64_t t = wait_for_ticket(seen);
        seen = TICKET_GEN(t);
        if (index >= TICKET_WORKERS(t)) {
            continue; /* not needed for this job; never touch g_job */
        }
        /* A participant's job cannot be replaced until it decrements
         * g_pending, so g_job is stable (and visible: acquire on g_ticket). */
        run_chunks(&g_job);
        if (atomic_fetch_sub(&g_pending, 1) == 1) {
            /* Last one out: wake the caller if it went to sleep. Signalling
             * under g_lock pairs with the caller's check under g_lock. */
            pthread_mutex_lock(&g_lock);
            pthread_cond_signal(&g_done_cv);
            pthread_mutex_unlock(&g_lock);
        }
    }
    return NULL; /* unreachable */
}

/* After fork() only the forking thread exists in the child: forget the
 * workers and reset the locks, which may have been held by a thread that is
 * gone. The next parallel_for in the child starts fresh workers. */
static void atfork_child(void) {
    pthread_mutex_init(&g_lock, NULL);
    pthread_mutex_init(&g_run_lock, NULL);
    pthread_cond_init(&g_work_cv, NULL);
    pthread_cond_init(&g_done_cv, NULL);
    g_workers_started = 0;
    atomic_store(&g_pending, 0);
    atomic_store(&g_ticket, (TICKET_GEN(atomic_load(&g_ticket)) + 1) << 16);
}

/* Makes sure `want` workers exist; returns how many do (thread creation can
 * fail under resource limits, and then we simply use fewer). Caller holds
 * g_lock. */
static int ensure_workers(int want) {
    if (!g_atfork_registered) {
        pthread_atfork(NULL, NULL, atfork_child);
        g_atfork_registered = 1;
    }
    while (g_workers_started < want) {
        pthread_t tid;
        pthread_attr_t attr;
        g_start_gen[g_workers_started] = TICKET_GEN(atomic_load(&g_ticket));
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&tid, &attr, worker_main,
                                (void *)(intptr_t)g_workers_started);
        pthread_attr_destroy(&attr);
        if (rc != 0) {
            break;
        }
        g_workers_started++;
    }
    return g_workers_started < want ? g_workers_started : want;
}

int tj_parallel_for(int64_t n, int64_t min_chunk, tj_body_fn body, void *ctx) {
    if (n < 0 || body == NULL) {
        return -1;
    }
    if (n == 0) {
        return 0;
    }
    if (min_chunk < 1) {
        min_chunk = 1;
    }
    int64_t max_parts = n / min_chunk; /* most chunks of >= min_chunk */
    int nthreads = tj_get_num_threads();
    if (max_parts < 2 || nthreads < 2) {
        body(ctx, 0, n);
        return 0;
    }
    /* Busy (another thread's loop, or we are nested inside a body): inline. */
    if (pthread_mutex_trylock(&g_run_lock) != 0) {
        body(ctx, 0, n);
        return 0;
    }

    int64_t parts = max_parts < nthreads ? max_parts : nthreads;
    /* Up to 4 chunks per participant so a slow chunk does not leave the
     * others idle, but never below min_chunk indices each. */
    int64_t nchunks = parts * 4 < max_parts ? parts * 4 : max_parts;

    pthread_mutex_lock(&g_lock);
    int nworkers = ensure_workers((int)parts - 1);
    if (nworkers == 0) {
        pthread_mutex_unlock(&g_lock);
        pthread_mutex_unlock(&g_run_lock);
        body(ctx, 0, n);
        return 0;
    }
    /* No worker is using g_job: the previous loop waited for g_pending == 0. */
    g_job.body = body;
    g_job.ctx = ctx;
    g_job.n = n;
    g_job.nchunks = nchunks;
    atomic_store_explicit(&g_job.next_chunk, 0, memory_order_relaxed);
    atomic_store_explicit(&g_pending, nworkers, memory_order_relaxed);
    uint64_t gen = TICKET_GEN(atomic_load(&g_ticket)) + 1;
    /* Release: the job fields above are visible to whoever sees the ticket. */
    atomic_store_explicit(&g_ticket, (gen << 16) | (uint64_t)nworkers, memory_order_release);
    pthread_cond_broadcast(&g_work_cv);
    pthread_mutex_unlock(&g_lock);

    run_chunks(&g_job); /* the caller works too */

    /* Wait until every participant has stopped touching g_job: then all
     * chunks are claimed and finished (acquire: their writes are visible),
     * and the job slot is free for the next loop. */
    int spins = 0;
    while (atomic_load_explicit(&g_pending, memory_order_acquire) > 0) {
        if (++spins > TJ_SPIN_POLLS) {
            pthread_mutex_lock(&g_lock);
            while (atomic_load(&g_pending) > 0) {
                pthread_cond_wait(&g_done_cv, &g_lock);
            }
            pthread_mutex_unlock(&g_lock);
            break;
        }
        cpu_relax();
    }
    pthread_mutex_unlock(&g_run_lock);
    return 0;
}

/*
 * tjrt.c - the tensorjit C runtime: aligned buffers and a small thread pool.
 *
 * See tjrt.h for the contract of each function. Design notes:
 *
 * Thread pool. Workers are created lazily on the first parallel_for that
 * needs them and then live for the life of the process, polling briefly and
 * then sleeping on a condition variable between loops, so a compiled
 * function that calls parallel_for many times pays the thread-creation cost
 * once. A loop is split
 * into k chunks of at least min_chunk indices; participants (the caller plus
 * up to num_threads-1 workers) claim chunks from one atomic counter, which
 * balances uneven chunks without a scheduler.
 *
 * Workers join a loop rather than being enlisted: the ticket carries a number
 * of open seats, a woken worker takes one with a compare-and-swap, and the
 * caller closes the seats once every chunk is claimed. The caller then waits
 * only for workers that joined. Waking a worker whose vCPU sits idle takes
 * 12-35 us here, and now and then 2-4 ms (measured on the 2-core VM); a worker
 * that wakes after the caller did the whole loop finds the seats closed and
 * goes back to sleep instead of holding the caller up.
 *
 * One loop at a time: `run_lock` is taken with trylock. A second caller that
 * finds the pool busy (another Python thread, or a body that itself calls
 * parallel_for) runs its range inline instead of waiting. Waiting could
 * deadlock on nesting; running inline is always correct and keeps the
 * latency of the second caller bounded.
 */
#define _GNU_SOURCE /* sched_getcpu, pthread_setaffinity_np, CPU_* */

#include "tjrt.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* Aligned memory                                                            */
/* ------------------------------------------------------------------------ */

/* Blocks of TJ_HUGE_PAGE_BYTES and more (packed GEMM operands, arenas, large
 * outputs) start on a huge-page boundary and are advised to use transparent huge
 * pages, as NumPy does for its large arrays: with 4 KiB pages a GEMM's strided
 * walks over megabytes miss the TLB (MLP training step: median 27.1 -> 25.2 ms
 * over 8 alternating processes). The advice only matters where the kernel's THP
 * mode is "madvise" or "always"; TENSORJIT_MADVISE_HUGEPAGE=0 turns it off. */
#define TJ_HUGE_PAGE_BYTES ((size_t)2 << 20)

static int huge_pages_wanted(size_t nbytes) {
#ifdef MADV_HUGEPAGE
    if (nbytes < TJ_HUGE_PAGE_BYTES) {
        return 0;
    }
    const char *env = getenv("TENSORJIT_MADVISE_HUGEPAGE");
    return env == NULL || strcmp(env, "0") != 0;
#else
    (void)nbytes;
    return 0;
#endif
}

void *tj_aligned_alloc(size_t nbytes) {
    void *p = NULL;
    /* A zero-byte request still gets one real cache line, so the pointer is
     * unique and non-NULL and code that touches "the first element" of an
     * empty buffer by mistake reads mapped memory. */
    if (nbytes == 0) {
        nbytes = TJ_ALIGNMENT;
    }
    if (huge_pages_wanted(nbytes)) {
        if (posix_memalign(&p, TJ_HUGE_PAGE_BYTES, nbytes) != 0) {
            return NULL;
        }
#ifdef MADV_HUGEPAGE
        (void)madvise(p, nbytes, MADV_HUGEPAGE); /* advice: a refusal changes nothing */
#endif
        return p;
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

/* How long a worker keeps polling for the next loop, and the caller for its
 * workers, before sleeping on a condition variable: TENSORJIT_SPIN_US
 * microseconds (default below; 0 sleeps at once). A worker that sleeps
 * between the loops of one call pays a wake-up per loop; measured on the
 * 2-core VM (child processes alternating, median of 4-15 rounds), 100 us
 * against sleeping at once: a 2-thread exp over 64K doubles 30 vs 70 us,
 * over 1M 519 vs 602 us, the MLP forward 5.5 vs 6.5 ms back to back; with
 * another process keeping one core busy, 29 vs 63 us and 554 vs 577 us. */
#define TJ_DEFAULT_SPIN_US 100
static atomic_long g_spin_ns = -1; /* -1: not yet read from the environment */

static long spin_ns(void) {
    long ns = atomic_load_explicit(&g_spin_ns, memory_order_relaxed);
    if (ns < 0) {
        ns = TJ_DEFAULT_SPIN_US * 1000L;
        const char *env = getenv("TENSORJIT_SPIN_US");
        if (env != NULL && *env != '\0') {
            char *end = NULL;
            long v = strtol(env, &end, 10);
            if (end != env && *end == '\0' && v >= 0 && v <= 1000000) {
                ns = v * 1000L;
            }
        }
        atomic_store_explicit(&g_spin_ns, ns, memory_order_relaxed);
    }
    return ns;
}

static long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}

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
 * while no worker is using it (see g_finished). */
static tj_job g_job;

/* Published job ticket: (generation << 16) | open seats. One atomic word: a
 * worker takes a seat with a compare-and-swap that fails once the generation
 * moved on or the caller closed the seats, so no worker joins a job late. */
static _Atomic uint64_t g_ticket = 0;
#define TICKET_GEN(t) ((t) >> 16)
#define TICKET_SEATS(t) ((int)((t) & 0xffff))

/* Workers that joined the current job and have finished it. */
static atomic_int g_finished = 0;

/* Sleeping workers wait on g_work_cv, a sleeping caller on g_done_cv; both
 * under g_lock, which also guards worker creation. */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_work_cv = PTHREAD_COND_INITIALIZER;
static pthread_cond_t g_done_cv = PTHREAD_COND_INITIALIZER;
/* Held by the thread running a parallel loop, for the whole loop. */
static pthread_mutex_t g_run_lock = PTHREAD_MUTEX_INITIALIZER;

static int g_workers_started = 0; /* persistent worker threads alive */
static pthread_t g_worker_tid[TJ_MAX_THREADS];
static cpu_set_t g_allowed;   /* the process's CPUs, read at the first loop */
static int g_allowed_read = 0;
static int g_kept_off = -1;   /* the CPU workers are kept off; -1: none yet */
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
    long budget = spin_ns();
    if (budget > 0) {
        long deadline = now_ns() + budget;
        for (int i = 1;; i++) {
            uint64_t t = atomic_load_explicit(&g_ticket, memory_order_acquire);
            if (TICKET_GEN(t) != seen) {
                return t;
            }
            cpu_relax();
            if (i % 64 == 0 && now_ns() > deadline) {
                break;
            }
        }
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

/* Takes a seat in job `gen` if one is open; false if the seats are gone,
 * closed, or the ticket already belongs to a newer job. */
static int join_job(uint64_t gen) {
    uint64_t t = atomic_load_explicit(&g_ticket, memory_order_acquire);
    while (TICKET_GEN(t) == gen && TICKET_SEATS(t) > 0) {
        /* Acquire: g_job as published with this ticket is visible. */
        if (atomic_compare_exchange_weak_explicit(&g_ticket, &t, t - 1,
                                                  memory_order_acquire,
                                                  memory_order_acquire)) {
            return 1;
        }
    }
    return 0;
}

static void *worker_main(void *arg) {
    int index = (int)(intptr_t)arg;
    pthread_mutex_lock(&g_lock);
    uint64_t seen = g_start_gen[index];
    pthread_mutex_unlock(&g_lock);
    for (;;) {
        seen = TICKET_GEN(wait_for_ticket(seen));
        if (!join_job(seen)) {
            continue; /* not needed, or too late: never touch g_job */
        }
        /* The caller waits for every worker that joined before it replaces
         * g_job, so the job stays put while we run it. */
        run_chunks(&g_job);
        atomic_fetch_add_explicit(&g_finished, 1, memory_order_release);
        /* Wake the caller if it went to sleep. Signalling under g_lock pairs
         * with the caller's check under g_lock. */
        pthread_mutex_lock(&g_lock);
        pthread_cond_signal(&g_done_cv);
        pthread_mutex_unlock(&g_lock);
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
    g_kept_off = -1;
    g_allowed_read = 0;
    atomic_store(&g_finished, 0);
    atomic_store(&g_ticket, (TICKET_GEN(atomic_load(&g_ticket)) + 1) << 16);
}

/* Workers are kept off the CPU the calling thread runs on. Linux places a
 * woken thread next to its waker when the CPU it last ran on looks busy, and
 * under KVM an idle vCPU does (it counts as preempted): traced with perf
 * sched on the 2-core VM, a woken worker queued for 3 ms behind the caller
 * while the other vCPU sat idle, and a 2-thread MLP forward took as long as
 * on one thread. Off the caller's CPU the worker runs beside it or, when
 * that CPU is taken, joins late and the caller does the work. Affinity is
 * set again only when the caller is seen on another CPU. Caller holds
 * g_lock. */
static void keep_workers_off_caller(void) {
    if (!g_allowed_read) {
        CPU_ZERO(&g_allowed);
        /* The process's CPUs, as its main thread's mask (pid): the caller may
         * be a thread pinned to one CPU. */
        if (sched_getaffinity(getpid(), sizeof g_allowed, &g_allowed) != 0) {
            CPU_ZERO(&g_allowed);
        }
        g_allowed_read = 1;
    }
    int cpu = sched_getcpu();
    if (cpu < 0 || cpu == g_kept_off || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &g_allowed)
        || CPU_COUNT(&g_allowed) < 2) {
        return;
    }
    cpu_set_t others = g_allowed;
    CPU_CLR(cpu, &others);
    for (int i = 0; i < g_workers_started; i++) {
        /* Failure (a cpuset changed under us) leaves that worker as it was. */
        pthread_setaffinity_np(g_worker_tid[i], sizeof others, &others);
    }
    g_kept_off = cpu;
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
        g_worker_tid[g_workers_started++] = tid;
        g_kept_off = -1; /* the new worker's affinity is not set yet */
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
    keep_workers_off_caller();
    if (nworkers == 0) {
        pthread_mutex_unlock(&g_lock);
        pthread_mutex_unlock(&g_run_lock);
        body(ctx, 0, n);
        return 0;
    }
    /* No worker is using g_job: the previous loop waited for all that joined. */
    g_job.body = body;
    g_job.ctx = ctx;
    g_job.n = n;
    g_job.nchunks = nchunks;
    atomic_store_explicit(&g_job.next_chunk, 0, memory_order_relaxed);
    atomic_store_explicit(&g_finished, 0, memory_order_relaxed);
    uint64_t gen = TICKET_GEN(atomic_load(&g_ticket)) + 1;
    /* Release: the job fields above are visible to whoever takes a seat. */
    atomic_store_explicit(&g_ticket, (gen << 16) | (uint64_t)nworkers, memory_order_release);
    pthread_cond_broadcast(&g_work_cv);
    pthread_mutex_unlock(&g_lock);

    run_chunks(&g_job); /* the caller works too */

    /* Every chunk is claimed: close the seats, then wait for the workers that
     * took one to finish their chunks (acquire: their writes are visible). */
    uint64_t left = atomic_exchange_explicit(&g_ticket, gen << 16, memory_order_acq_rel);
    int joined = nworkers - TICKET_SEATS(left);
    long deadline = now_ns() + spin_ns();
    for (int i = 1; atomic_load_explicit(&g_finished, memory_order_acquire) < joined; i++) {
        if (i % 64 == 0 && now_ns() > deadline) {
            pthread_mutex_lock(&g_lock);
            while (atomic_load(&g_finished) < joined) {
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

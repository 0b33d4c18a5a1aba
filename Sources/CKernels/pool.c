// A persistent thread pool: workers spin briefly for the next task, then sleep on a condition variable,
// so they neither miss the short gaps between decode kernels nor steal cores from OpenBLAS during prefill.
#include "CKernels.h"
#include <immintrin.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#define QS_SPIN_ITERATIONS 20000

struct qs_pool {
    int size;
    pthread_t *threads;
    _Atomic uint64_t generation;
    _Atomic int pending;
    _Atomic int sleepers;
    _Atomic int stopping;
    qs_task_fn task;
    void *ctx;
    pthread_mutex_t mutex;
    pthread_cond_t wake;
};

typedef struct { qs_pool *pool; int index; } worker_arg;

static void *worker_main(void *p) {
    worker_arg arg = *(worker_arg *)p;
    free(p);
    qs_pool *pool = arg.pool;
    uint64_t seen = 0;
    for (;;) {
        uint64_t gen;
        int spins = 0;
        while ((gen = atomic_load(&pool->generation)) == seen && spins < QS_SPIN_ITERATIONS) {
            _mm_pause();
            spins++;
        }
        if (gen == seen) {
            pthread_mutex_lock(&pool->mutex);
            atomic_fetch_add(&pool->sleepers, 1);
            while ((gen = atomic_load(&pool->generation)) == seen) pthread_cond_wait(&pool->wake, &pool->mutex);
            atomic_fetch_sub(&pool->sleepers, 1);
            pthread_mutex_unlock(&pool->mutex);
        }
        seen = gen;
        if (atomic_load(&pool->stopping)) return NULL;
        pool->task(pool->ctx, arg.index, pool->size);
        atomic_fetch_sub(&pool->pending, 1);
    }
}

qs_pool *qs_pool_create(int threads) {
    if (threads < 1) threads = 1;
    qs_pool *pool = calloc(1, sizeof(qs_pool));
    if (!pool) return NULL;
    pool->size = threads;
    pthread_mutex_init(&pool->mutex, NULL);
    pthread_cond_init(&pool->wake, NULL);
    pool->threads = calloc((size_t)threads, sizeof(pthread_t));
    for (int i = 1; i < threads; i++) {
        worker_arg *arg = malloc(sizeof(worker_arg));
        arg->pool = pool;
        arg->index = i;
        pthread_create(&pool->threads[i], NULL, worker_main, arg);
    }
    return pool;
}

static void publish(qs_pool *pool) {
    atomic_fetch_add(&pool->generation, 1);
    if (atomic_load(&pool->sleepers) > 0) {
        pthread_mutex_lock(&pool->mutex);
        pthread_cond_broadcast(&pool->wake);
        pthread_mutex_unlock(&pool->mutex);
    }
}

void qs_pool_destroy(qs_pool *pool) {
    if (!pool) return;
    atomic_store(&pool->stopping, 1);
    publish(pool);
    for (int i = 1; i < pool->size; i++) pthread_join(pool->threads[i], NULL);
    pthread_mutex_destroy(&pool->mutex);
    pthread_cond_destroy(&pool->wake);
    free(pool->threads);
    free(pool);
}

int qs_pool_size(const qs_pool *pool) { return pool ? pool->size : 1; }

void qs_pool_run(qs_pool *pool, qs_task_fn task, void *ctx) {
    if (!pool || pool->size == 1) {
        task(ctx, 0, 1);
        return;
    }
    pool->task = task;
    pool->ctx = ctx;
    atomic_store(&pool->pending, pool->size - 1);
    publish(pool);
    task(ctx, 0, pool->size);
    // Spin briefly for the others, then yield: on a busy machine a worker may be preempted, and spinning
    // would only keep it off the core.
    for (int spins = 0; atomic_load(&pool->pending) > 0; spins++) {
        if (spins < 4000) _mm_pause();
        else sched_yield();
    }
}

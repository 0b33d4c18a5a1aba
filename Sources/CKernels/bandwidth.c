// The memory read rate the threads of a pool reach together: the limit decode runs against (every weight is read
// once per decoded token).
#include "CKernels.h"
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    const uint8_t *data;
    int64_t bytes;
    uint64_t sink[64];  // one slot per thread (at most 64 counted), so the reads are not optimised away
} read_job;

__attribute__((target("avx2"))) static uint64_t read_avx2(const uint8_t *p, int64_t n) {
    __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
    for (int64_t i = 0; i + 128 <= n; i += 128) {
        a = _mm256_xor_si256(a, _mm256_load_si256((const __m256i *)(p + i)));
        b = _mm256_xor_si256(b, _mm256_load_si256((const __m256i *)(p + i + 32)));
        c = _mm256_xor_si256(c, _mm256_load_si256((const __m256i *)(p + i + 64)));
        d = _mm256_xor_si256(d, _mm256_load_si256((const __m256i *)(p + i + 96)));
    }
    a = _mm256_xor_si256(_mm256_xor_si256(a, b), _mm256_xor_si256(c, d));
    return (uint64_t)_mm256_extract_epi64(a, 0) ^ (uint64_t)_mm256_extract_epi64(a, 3);
}

static uint64_t read_scalar(const uint8_t *p, int64_t n) {
    uint64_t s = 0;
    for (int64_t i = 0; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        s ^= v;
    }
    return s;
}

static void read_task(void *ctx, int index, int count) {
    read_job *job = ctx;
    // Contiguous slices in multiples of 4 KiB, one per thread.
    const int64_t pages = job->bytes / 4096;
    const int64_t p0 = pages * index / count, p1 = pages * (index + 1) / count;
    const uint8_t *p = job->data + p0 * 4096;
    const int64_t n = (p1 - p0) * 4096;
    const uint64_t s = qs_variant_supported(QS_VARIANT_AVX2) ? read_avx2(p, n) : read_scalar(p, n);
    job->sink[index & 63] ^= s;
}

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

double qs_read_bandwidth(qs_pool *pool, int64_t bytes, int passes) {
    bytes = bytes / 4096 * 4096;
    if (bytes <= 0 || passes < 1) return 0;
    void *buffer = NULL;
    if (posix_memalign(&buffer, 4096, (size_t)bytes) != 0) return 0;
    memset(buffer, 1, (size_t)bytes);  // fault every page in before timing
    read_job job = {.data = buffer, .bytes = bytes};
    double best = 0;
    for (int i = 0; i < passes; i++) {
        const double t0 = now_seconds();
        qs_pool_run(pool, read_task, &job);
        const double t = now_seconds() - t0;
        if (t > 0 && (double)bytes / t > best) best = (double)bytes / t;
    }
    volatile uint64_t keep = job.sink[0];
    (void)keep;
    free(buffer);
    return best;
}

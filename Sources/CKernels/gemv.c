// W [rows, cols] @ x [n, cols] -> out [n, ldo], weights in f32 or f16, for a few activation rows.
// Four weight rows are read together so each activation chunk is loaded once for them; with n > 1 the
// four rows stay in L1 while every activation row passes over them. The reduction order of an output
// depends on cols only (never on n or on the thread split), which keeps batched results identical to single ones.
#include "CKernels.h"
#include "simd_avx2.h"
#include <immintrin.h>
#include <string.h>

#define ALWAYS_INLINE static inline __attribute__((always_inline))

// ---- scalar reference ------------------------------------------------------------------------

ALWAYS_INLINE float weight_at(const void *w, int64_t i, int f16) {
    return f16 ? qs_fp16_to_fp32(((const uint16_t *)w)[i]) : ((const float *)w)[i];
}

static void gemv_scalar(float *out, int64_t ldo, const void *w, const float *x, int64_t n, int64_t cols,
                        int64_t r0, int64_t r1, int f16) {
    for (int64_t r = r0; r < r1; r++) {
        for (int64_t i = 0; i < n; i++) {
            const float *xi = x + i * cols;
            float lanes[8] = {0};
            int64_t c = 0;
            for (; c + 8 <= cols; c += 8)
                for (int l = 0; l < 8; l++) lanes[l] += weight_at(w, r * cols + c + l, f16) * xi[c + l];
            for (; c < cols; c++) lanes[0] += weight_at(w, r * cols + c, f16) * xi[c];
            float sum = 0;
            for (int l = 0; l < 8; l++) sum += lanes[l];
            out[i * ldo + r] = sum;
        }
    }
}

// ---- AVX2 ------------------------------------------------------------------------------------

__attribute__((target("avx2,fma,f16c")))
ALWAYS_INLINE __m256 load8(const void *w, int64_t i, int f16) {
    return f16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + i)))
               : _mm256_loadu_ps((const float *)w + i);
}

// One weight row against one activation row (used for the rows left over after groups of four).
__attribute__((target("avx2,fma,f16c")))
ALWAYS_INLINE float dot_avx2(const void *w, int64_t base, const float *xi, int64_t cols, int f16) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t c = 0;
    for (; c + 16 <= cols; c += 16) {
        a0 = _mm256_fmadd_ps(load8(w, base + c, f16), _mm256_loadu_ps(xi + c), a0);
        a1 = _mm256_fmadd_ps(load8(w, base + c + 8, f16), _mm256_loadu_ps(xi + c + 8), a1);
    }
    for (; c + 8 <= cols; c += 8) a0 = _mm256_fmadd_ps(load8(w, base + c, f16), _mm256_loadu_ps(xi + c), a0);
    float sum = qs_hsum_avx2(_mm256_add_ps(a0, a1));
    for (; c < cols; c++) sum += weight_at(w, base + c, f16) * xi[c];
    return sum;
}

__attribute__((target("avx2,fma,f16c")))
static void gemv_avx2(float *out, int64_t ldo, const void *w, const float *x, int64_t n, int64_t cols,
                      int64_t r0, int64_t r1, int f16) {
    if (n == 1) {
        // Decode: one row after another (a sequential stream; see gemv_rows_avx512), the same arithmetic per row.
        for (int64_t r = r0; r < r1; r++) out[r] = dot_avx2(w, r * cols, x, cols, f16);
        return;
    }
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4) {
        for (int64_t i = 0; i < n; i++) {
            const float *xi = x + i * cols;
            __m256 a[4][2];
            for (int k = 0; k < 4; k++) a[k][0] = a[k][1] = _mm256_setzero_ps();
            int64_t c = 0;
            for (; c + 16 <= cols; c += 16) {
                __m256 x0 = _mm256_loadu_ps(xi + c), x1 = _mm256_loadu_ps(xi + c + 8);
                for (int k = 0; k < 4; k++) {
                    a[k][0] = _mm256_fmadd_ps(load8(w, (r + k) * cols + c, f16), x0, a[k][0]);
                    a[k][1] = _mm256_fmadd_ps(load8(w, (r + k) * cols + c + 8, f16), x1, a[k][1]);
                }
            }
            for (; c + 8 <= cols; c += 8) {
                __m256 x0 = _mm256_loadu_ps(xi + c);
                for (int k = 0; k < 4; k++) a[k][0] = _mm256_fmadd_ps(load8(w, (r + k) * cols + c, f16), x0, a[k][0]);
            }
            for (int k = 0; k < 4; k++) {
                float sum = qs_hsum_avx2(_mm256_add_ps(a[k][0], a[k][1]));
                for (int64_t t = c; t < cols; t++) sum += weight_at(w, (r + k) * cols + t, f16) * xi[t];
                out[i * ldo + r + k] = sum;
            }
        }
    }
    for (; r < r1; r++)
        for (int64_t i = 0; i < n; i++) out[i * ldo + r] = dot_avx2(w, r * cols, x + i * cols, cols, f16);
}

// ---- AVX-512 ---------------------------------------------------------------------------------

__attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
ALWAYS_INLINE __m512 load16(const void *w, int64_t i, int f16) {
    return f16 ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)w + i)))
               : _mm512_loadu_ps((const float *)w + i);
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
ALWAYS_INLINE __m512 load16_masked(const void *w, int64_t i, __mmask16 m, int f16) {
    return f16 ? _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)w + i))
               : _mm512_maskz_loadu_ps(m, (const float *)w + i);
}

// Weight rows r ..< r + R (R <= 4) against activation rows i ..< i + C: each 16-column chunk of a weight row is
// converted once and used for all C activation rows. Per (weight row, activation row) the arithmetic is the same
// whatever R and C are (columns 32j ..< 32j + 16 into a[.][0], the next 16 into a[.][1], the last partial chunks as
// below, then one reduction), so batched results equal single ones bit for bit.
#define AVX512_GEMV __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
AVX512_GEMV ALWAYS_INLINE void gemv_tile_avx512(const int R, const int C, float *out, int64_t ldo, const void *w,
                                                const float *x, int64_t cols, int64_t r, int64_t i, int f16) {
    const int64_t full32 = cols / 32 * 32, full16 = cols / 16 * 16;
    const __mmask16 tail = (__mmask16)((1u << (cols - full16)) - 1);
    __m512 a[4][3][2];
    for (int k = 0; k < R; k++)
        for (int t = 0; t < C; t++) a[k][t][0] = a[k][t][1] = _mm512_setzero_ps();
    for (int64_t c = 0; c < full32; c += 32) {
        for (int h = 0; h < 2; h++) {
            __m512 wv[4];
            for (int k = 0; k < R; k++) wv[k] = load16(w, (r + k) * cols + c + 16 * h, f16);
            for (int t = 0; t < C; t++) {
                const __m512 xv = _mm512_loadu_ps(x + (i + t) * cols + c + 16 * h);
                for (int k = 0; k < R; k++) a[k][t][h] = _mm512_fmadd_ps(wv[k], xv, a[k][t][h]);
            }
        }
    }
    if (full16 > full32) {
        for (int k = 0; k < R; k++) {
            const __m512 wv = load16(w, (r + k) * cols + full32, f16);
            for (int t = 0; t < C; t++) a[k][t][0] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x + (i + t) * cols + full32), a[k][t][0]);
        }
    }
    if (tail) {
        for (int k = 0; k < R; k++) {
            const __m512 wv = load16_masked(w, (r + k) * cols + full16, tail, f16);
            for (int t = 0; t < C; t++)
                a[k][t][1] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(tail, x + (i + t) * cols + full16), a[k][t][1]);
        }
    }
    for (int k = 0; k < R; k++)
        for (int t = 0; t < C; t++) out[(i + t) * ldo + r + k] = _mm512_reduce_add_ps(_mm512_add_ps(a[k][t][0], a[k][t][1]));
}

AVX512_GEMV static void gemv_rows_avx512(int R, float *out, int64_t ldo, const void *w, const float *x, int64_t n,
                                        int64_t cols, int64_t r, int f16) {
    int64_t i = 0;
    if (n == 1) {
        // One activation row (decode): the rows one after another, each a single sequential stream. Four rows read
        // in lockstep are four short streams, which the hardware prefetcher follows badly (on the 2-core EPYC:
        // 10 GB/s against 31 one row at a time). The arithmetic per row is the tile's, so the results are the same.
        for (int k = 0; k < R; k++) gemv_tile_avx512(1, 1, out, ldo, w, x, cols, r + k, 0, f16);
        return;
    }
    if (R == 4) {
        for (; i + 3 <= n; i += 3) gemv_tile_avx512(4, 3, out, ldo, w, x, cols, r, i, f16);
        for (; i < n; i++) gemv_tile_avx512(4, 1, out, ldo, w, x, cols, r, i, f16);
        return;
    }
    for (; i < n; i++) {
        switch (R) {
        case 3: gemv_tile_avx512(3, 1, out, ldo, w, x, cols, r, i, f16); break;
        case 2: gemv_tile_avx512(2, 1, out, ldo, w, x, cols, r, i, f16); break;
        default: gemv_tile_avx512(1, 1, out, ldo, w, x, cols, r, i, f16); break;
        }
    }
}

// Activation rows in chunks that stay in L1/L2 while the four weight rows in flight are reused across them.
#ifndef QS_GEMV_ACTIVATION_CHUNK
#define QS_GEMV_ACTIVATION_CHUNK 24
#endif

AVX512_GEMV static void gemv_avx512(float *out, int64_t ldo, const void *w, const float *x, int64_t n, int64_t cols,
                                   int64_t r0, int64_t r1, int f16) {
    for (int64_t c0 = 0; c0 < n; c0 += QS_GEMV_ACTIVATION_CHUNK) {
        const int64_t m = n - c0 < QS_GEMV_ACTIVATION_CHUNK ? n - c0 : QS_GEMV_ACTIVATION_CHUNK;
        for (int64_t r = r0; r < r1; r += 4)
            gemv_rows_avx512(r1 - r < 4 ? (int)(r1 - r) : 4, out + c0 * ldo, ldo, w, x + c0 * cols, m, cols, r, f16);
    }
}

// ---- dispatch and threading ------------------------------------------------------------------

typedef struct {
    qs_variant variant;
    float *out;
    int64_t ldo;
    const void *w;
    const float *x;
    int64_t n, rows, cols;
    int f16;
} gemv_job;

static void gemv_range(const gemv_job *job, int64_t r0, int64_t r1) {
    if (job->variant >= QS_VARIANT_AVX512) gemv_avx512(job->out, job->ldo, job->w, job->x, job->n, job->cols, r0, r1, job->f16);
    else if (job->variant == QS_VARIANT_AVX2) gemv_avx2(job->out, job->ldo, job->w, job->x, job->n, job->cols, r0, r1, job->f16);
    else gemv_scalar(job->out, job->ldo, job->w, job->x, job->n, job->cols, r0, r1, job->f16);
}

static void gemv_task(void *ctx, int index, int count) {
    const gemv_job *job = ctx;
    // Contiguous slices in multiples of 16 rows, so every thread streams its own part of the matrix.
    int64_t units = (job->rows + 15) / 16;
    int64_t u0 = units * index / count, u1 = units * (index + 1) / count;
    int64_t r0 = u0 * 16, r1 = u1 * 16 < job->rows ? u1 * 16 : job->rows;
    if (r0 < r1) gemv_range(job, r0, r1);
}

static void gemv(qs_pool *pool, qs_variant v, float *out, int64_t ldo, const void *w, const float *x, int64_t n,
                 int64_t rows, int64_t cols, int f16) {
    if (!qs_variant_supported(v)) v = qs_best_variant();
    gemv_job job = {v, out, ldo, w, x, n, rows, cols, f16};
    if (rows * cols < 32768) gemv_task(&job, 0, 1);  // too small to be worth waking the pool
    else qs_pool_run(pool, gemv_task, &job);
}

void qs_gemv_f32(qs_pool *pool, qs_variant v, float *out, int64_t ldo, const float *w, const float *x, int64_t n,
                 int64_t rows, int64_t cols) {
    gemv(pool, v, out, ldo, w, x, n, rows, cols, 0);
}

void qs_gemv_f16(qs_pool *pool, qs_variant v, float *out, int64_t ldo, const uint16_t *w, const float *x, int64_t n,
                 int64_t rows, int64_t cols) {
    gemv(pool, v, out, ldo, w, x, n, rows, cols, 1);
}

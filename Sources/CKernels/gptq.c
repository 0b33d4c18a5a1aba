// GPTQ rounding into the Q4 format (Frantar et al., "GPTQ: Accurate Post-Training Quantization for Generative
// Pre-trained Transformers", 2022), the part that must go column by column: inside one block of columns, each
// column is rounded and its error e spread over the block's later columns, w[j] -= e / U[i][i] · U[i][j], where U
// is the upper Cholesky factor of H⁻¹ (UᵀU = H⁻¹, H the damped input covariance). The caller applies the block's
// errors to the columns after it with one matrix product, so the long updates run in OpenBLAS.
// Rows are independent, so they split over the pool, and the result does not depend on the thread count.
#include "CKernels.h"
#include "q4_group.h"
#include <immintrin.h>

typedef struct {
    uint8_t *codes;
    float *errors, *w;
    const float *u;
    const int32_t *order;
    const uint16_t *scales;
    const uint8_t *zeros;
    int64_t rows, cols, ldw, i0, i1, group;
    qs_variant variant;
} gptq_job;

// y[j] -= e · u[j] for j in [0, n).
static void spread_scalar(float *y, float e, const float *u, int64_t n) {
    for (int64_t j = 0; j < n; j++) y[j] -= e * u[j];
}

__attribute__((target("avx2,fma"))) static void spread_avx2(float *y, float e, const float *u, int64_t n) {
    __m256 ev = _mm256_set1_ps(e);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) _mm256_storeu_ps(y + j, _mm256_fnmadd_ps(ev, _mm256_loadu_ps(u + j), _mm256_loadu_ps(y + j)));
    for (; j < n; j++) y[j] -= e * u[j];
}

static void gptq_rows(const gptq_job *job, int64_t r0, int64_t r1) {
    const int64_t cols = job->cols, groups = cols / job->group, width = job->i1 - job->i0;
    for (int64_t r = r0; r < r1; r++) {
        float *w = job->w + r * job->ldw;
        for (int64_t i = job->i0; i < job->i1; i++) {
            const int64_t column = job->order ? job->order[i] : i, g = r * groups + column / job->group;
            q4_group p = {job->scales[g], qs_fp16_to_fp32(job->scales[g]), job->zeros[g]};
            const float *u = job->u + i * cols;
            float code = q4_code(w[i], p);
            float e = (w[i] - (code - p.zero) * p.scale) / u[i];
            job->codes[r * cols + column] = (uint8_t)code;
            job->errors[r * width + (i - job->i0)] = e;
            if (job->variant >= QS_VARIANT_AVX2) spread_avx2(w + i + 1, e, u + i + 1, job->i1 - i - 1);
            else spread_scalar(w + i + 1, e, u + i + 1, job->i1 - i - 1);
        }
    }
}

static void gptq_task(void *ctx, int index, int count) {
    const gptq_job *job = ctx;
    gptq_rows(job, job->rows * index / count, job->rows * (index + 1) / count);
}

void qs_gptq_q4_block_v(qs_pool *pool, qs_variant v, uint8_t *codes, float *errors, float *w, int64_t ldw,
                        const float *u, int64_t rows, int64_t cols, int64_t i0, int64_t i1, const int32_t *order,
                        const uint16_t *scales, const uint8_t *zeros, int64_t group) {
    gptq_job job = {codes, errors, w, u, order, scales, zeros, rows, cols, ldw, i0, i1, group, v};
    qs_pool_run(pool, gptq_task, &job);
}

void qs_gptq_q4_block(qs_pool *pool, uint8_t *codes, float *errors, float *w, int64_t ldw, const float *u,
                      int64_t rows, int64_t cols, int64_t i0, int64_t i1, const int32_t *order,
                      const uint16_t *scales, const uint8_t *zeros, int64_t group) {
    qs_gptq_q4_block_v(pool, qs_best_variant(), codes, errors, w, ldw, u, rows, cols, i0, i1, order, scales, zeros,
                       group);
}

void qs_pack_q4_codes(uint8_t *q, const uint8_t *codes, int64_t n) {
    for (int64_t b = 0; b < n / 32; b++) pack32(q + b * 16, codes + b * 32);
}

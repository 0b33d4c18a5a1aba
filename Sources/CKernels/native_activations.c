// The native products' activations (native_activations.h): scalar and AVX2 quantizers giving the same values.
#include "native_activations.h"
#include "qactivations.h"
#include <immintrin.h>
#include <math.h>

#define AVX2 __attribute__((target("avx2,fma,f16c")))

// The layout in scratch (qs_activation_scratch_floats(n, cols) floats): qactivations.h's paired layout, then the
// 256-value form.
native_activations native_layout(float *scratch, int64_t n, int64_t cols) {
    const quantized_activations q = qs_activation_layout(scratch, n, cols);
    native_activations a = {.q32 = q.q, .d32 = q.d, .g64 = q.gsum, .pq = q.pq, .pd = q.pd};
    float *rest = q.pd + n * (cols / 64) * 8;
    a.s32 = rest;
    a.q256 = (int8_t *)(rest + n * (cols / 32));
    a.d256 = rest + n * (cols / 32) + n * cols / 4;
    a.bs16 = (int16_t *)(a.d256 + n * (cols / 256));
    return a;
}

// Rows i0 ..< i1 of x into the 32-value form (scalar; the AVX2 quantizer of qactivations.c gives the same values).
static void quantize32_scalar(const native_activations *a, const float *x, int64_t i0, int64_t i1, int64_t cols) {
    for (int64_t k = i0 * (cols / 32); k < i1 * (cols / 32); k++) {
        const float *xb = x + k * 32;
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(xb[j]));
        const float d = amax / 127.0f, inv = amax > 0 ? 127.0f / amax : 0;
        int sum = 0;
        for (int j = 0; j < 32; j++) {
            a->q32[k * 32 + j] = (int8_t)lrintf(xb[j] * inv);
            sum += a->q32[k * 32 + j];
        }
        a->d32[k] = d;
        a->s32[k] = d * (float)sum;
    }
}

static void quantize256_scalar(const native_activations *a, const float *x, int64_t i0, int64_t i1, int64_t cols) {
    for (int64_t k = i0 * (cols / 256); k < i1 * (cols / 256); k++) {
        const float *xb = x + k * 256;
        float amax = 0;
        for (int j = 0; j < 256; j++) amax = fmaxf(amax, fabsf(xb[j]));
        const float inv = amax > 0 ? 127.0f / amax : 0;
        for (int h = 0; h < 16; h++) {
            int sum = 0;
            for (int j = 16 * h; j < 16 * h + 16; j++) {
                a->q256[k * 256 + j] = (int8_t)lrintf(xb[j] * inv);
                sum += a->q256[k * 256 + j];
            }
            a->bs16[k * 16 + h] = (int16_t)sum;
        }
        a->d256[k] = amax / 127.0f;
    }
}

// The same 256-value form with AVX2, the same values bit for bit.
AVX2 static void quantize256_avx2(const native_activations *a, const float *x, int64_t i0, int64_t i1, int64_t cols) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int64_t k = i0 * (cols / 256); k < i1 * (cols / 256); k++) {
        const float *xb = x + k * 256;
        __m256 m = _mm256_setzero_ps();
        for (int j = 0; j < 256; j += 8) m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(xb + j)));
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_movehdup_ps(h));
        const float amax = _mm_cvtss_f32(h);
        const __m256 inv = _mm256_set1_ps(amax > 0 ? 127.0f / amax : 0);
        for (int c = 0; c < 8; c++) {
            __m256i q[4];
            for (int j = 0; j < 4; j++) q[j] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xb + 32 * c + 8 * j), inv));
            const __m256i bytes = _mm256_permutevar8x32_epi32(
                _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3])), order);
            _mm256_storeu_si256((__m256i *)(a->q256 + k * 256 + 32 * c), bytes);
            // Sums of the two 16-code halves: q[0] + q[1] holds the first half's codes, q[2] + q[3] the second's.
            __m256i s0 = _mm256_add_epi32(q[0], q[1]), s1 = _mm256_add_epi32(q[2], q[3]);
            __m256i s = _mm256_hadd_epi32(s0, s1); // [s0 pairs (0-1), s1 pairs (0-1), s0 pairs (2-3), s1 pairs (2-3)]
            s = _mm256_hadd_epi32(s, s);
            const __m128i t = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
            a->bs16[k * 16 + 2 * c] = (int16_t)_mm_cvtsi128_si32(t);
            a->bs16[k * 16 + 2 * c + 1] = (int16_t)_mm_extract_epi32(t, 1);
        }
        a->d256[k] = amax / 127.0f;
    }
}

typedef struct {
    const float *x;
    native_activations a;
    int64_t n, cols;
    int need32, need256, avx2;
} native_prepare_job;

static void prepare_rows(const native_prepare_job *p, int64_t i0, int64_t i1) {
    if (p->need32) {
        if (p->avx2) {
            // The paired form (its sums per 64 go to g64, unused), then the sums per block.
            const quantized_activations q = {.q = p->a.q32, .d = p->a.d32, .gsum = p->a.g64, .pq = p->a.pq, .pd = p->a.pd};
            qs_quantize_activation_rows_avx2(&q, p->x, i0, i1, p->cols, 64);
            for (int64_t k = i0 * (p->cols / 32); k < i1 * (p->cols / 32); k++) {
                int sum = 0;
                for (int j = 0; j < 32; j++) sum += p->a.q32[k * 32 + j];
                p->a.s32[k] = p->a.d32[k] * (float)sum;
            }
        } else {
            quantize32_scalar(&p->a, p->x, i0, i1, p->cols);
        }
    }
    if (p->need256) {
        if (p->avx2) quantize256_avx2(&p->a, p->x, i0, i1, p->cols);
        else quantize256_scalar(&p->a, p->x, i0, i1, p->cols);
    }
}

static void prepare_task(void *ctx, int index, int count) {
    const native_prepare_job *p = ctx;
    const int64_t i0 = p->n * index / count, i1 = p->n * (index + 1) / count;
    if (i0 < i1) prepare_rows(p, i0, i1);
}

void native_quantize_activations(qs_pool *pool, const native_activations *a, const float *x, int64_t n, int64_t cols,
                                 int need32, int need256, int avx2) {
    const native_prepare_job prep = {.x = x, .a = *a, .n = n, .cols = cols, .need32 = need32, .need256 = need256,
                                     .avx2 = avx2};
    if (n * cols >= 32768 && qs_pool_size(pool) > 1) qs_pool_run(pool, prepare_task, (void *)&prep);
    else prepare_rows(&prep, 0, n);
}

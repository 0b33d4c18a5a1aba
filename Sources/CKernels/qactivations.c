// Activation rows quantized per 32 values for the integer kernels of qmatmul.c: scalar and AVX2 versions that give
// the same values bit for bit.
#include "qactivations.h"
#include <immintrin.h>
#include <math.h>
#include <string.h>

#define ALWAYS_INLINE static inline __attribute__((always_inline))

// The largest int16 activation code: 32639 = 127 * 256 + 127, so that every code splits into two signed bytes,
// x = 256 h + l (the x16 kernels' byte planes); 15 bits of precision either way.
#define QS_WIDE_LIMIT 32639.0f
#define AVX2 __attribute__((target("avx2,fma,f16c")))

int64_t qs_activation_scratch_floats(int64_t n, int64_t cols) {
    // The paired int8 layout (qs_activation_layout), and after it the native products' 256-value form.
    return n * cols / 2 + 2 * n * (cols / 32) + n * (cols / 64) * 8 + n * cols / 4 + n * (cols / 256)
         + 2 * n * (cols / 32) + 64;
}

// x [n, cols] -> int16 per 32 values with one scale each (n * cols / 2 + n * cols / 32 floats of scratch).
quantized_activations qs_quantize_activations_wide(float *scratch, const float *x, int64_t n, int64_t cols) {
    const int64_t blocks = cols / 32;
    quantized_activations a = {0};
    a.q16 = (int16_t *)scratch;
    a.d = scratch + n * cols / 2;
    for (int64_t i = 0; i < n * blocks; i++) {
        const float *xb = x + i * 32;
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(xb[j]));
        float inv = amax > 0 ? QS_WIDE_LIMIT / amax : 0;
        for (int j = 0; j < 32; j++) a.q16[i * 32 + j] = (int16_t)lrintf(xb[j] * inv);
        a.d[i] = amax / QS_WIDE_LIMIT;
    }
    return a;
}

// x [n, cols] -> int8 per 32 values with one scale each; with group > 0 also the group sums of d * sum(q).
quantized_activations qs_quantize_activations(float *scratch, const float *x, int64_t n, int64_t cols,
                                                  int64_t group) {
    const int64_t blocks = cols / 32;
    float *f = scratch + n * cols / 4;
    quantized_activations a = {(int8_t *)scratch, NULL, f, f + n * blocks, (int8_t *)(f + 2 * n * blocks),
                               f + 2 * n * blocks + n * cols / 4};
    for (int64_t i = 0; i < n * blocks; i++) {
        const float *xb = x + i * 32;
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(xb[j]));
        float d = amax / 127.0f, inv = amax > 0 ? 127.0f / amax : 0;
        for (int j = 0; j < 32; j++) a.q[i * 32 + j] = (int8_t)lrintf(xb[j] * inv);
        a.d[i] = d;
    }
    if (group > 0) {
        const int64_t per = group / 32, groups = cols / group;
        for (int64_t i = 0; i < n * groups; i++) {
            float sum = 0;
            for (int64_t b = i * per; b < (i + 1) * per; b++) {
                int qs = 0;
                for (int j = 0; j < 32; j++) qs += a.q[b * 32 + j];
                sum += a.d[b] * (float)qs;
            }
            a.gsum[i] = sum;
        }
    }
    if (group >= 64) {
        for (int64_t i = 0; i < n; i++) {
            for (int64_t p = 0; p < blocks / 2; p++) {
                const int8_t *src = a.q + i * cols + p * 64;
                int8_t *dst = a.pq + i * cols + p * 64;
                memcpy(dst, src, 16);
                memcpy(dst + 16, src + 32, 16);
                memcpy(dst + 32, src + 16, 16);
                memcpy(dst + 48, src + 48, 16);
                float *d = a.pd + (i * (blocks / 2) + p) * 8;
                for (int j = 0; j < 4; j++) { d[j] = a.d[i * blocks + 2 * p]; d[4 + j] = a.d[i * blocks + 2 * p + 1]; }
            }
        }
    }
    return a;
}

// The same two quantizers with AVX2, giving the same values bit for bit (the same float operations, and
// round-to-nearest-even conversion as lrintf's in the default rounding mode).

// One block of 32 values: round(x * limit / amax) as int32 lanes q[4]; returns amax.
AVX2 ALWAYS_INLINE float block_round_avx2(const float *x, float limit, __m256i q[4]) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 v[4], m = _mm256_setzero_ps();
    for (int j = 0; j < 4; j++) {
        v[j] = _mm256_loadu_ps(x + 8 * j);
        m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v[j]));
    }
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    const float amax = _mm_cvtss_f32(h);
    const __m256 inv = _mm256_set1_ps(amax > 0 ? limit / amax : 0);
    for (int j = 0; j < 4; j++) q[j] = _mm256_cvtps_epi32(_mm256_mul_ps(v[j], inv));
    return amax;
}

quantized_activations qs_activation_layout_wide(float *scratch, int64_t n, int64_t cols) {
    quantized_activations a = {0};
    a.q16 = (int16_t *)scratch;
    a.d = scratch + n * cols / 2;
    return a;
}

quantized_activations qs_activation_layout(float *scratch, int64_t n, int64_t cols) {
    const int64_t blocks = cols / 32;
    float *f = scratch + n * cols / 4;
    quantized_activations a = {(int8_t *)scratch, NULL, f, f + n * blocks, (int8_t *)(f + 2 * n * blocks),
                               f + 2 * n * blocks + n * cols / 4};
    return a;
}

AVX2 void qs_quantize_activation_rows_wide_avx2(const quantized_activations *a, const float *x, int64_t i0, int64_t i1,
                                                int64_t cols) {
    const int64_t blocks = cols / 32;
    for (int64_t i = i0 * blocks; i < i1 * blocks; i++) {
        __m256i q[4];
        const float amax = block_round_avx2(x + i * 32, QS_WIDE_LIMIT, q);
        __m256i *dst = (__m256i *)(a->q16 + i * 32);
        _mm256_storeu_si256(dst, _mm256_permute4x64_epi64(_mm256_packs_epi32(q[0], q[1]), 0xD8));
        _mm256_storeu_si256(dst + 1, _mm256_permute4x64_epi64(_mm256_packs_epi32(q[2], q[3]), 0xD8));
        a->d[i] = amax / QS_WIDE_LIMIT;
    }
}

AVX2 quantized_activations qs_quantize_activations_wide_avx2(float *scratch, const float *x, int64_t n,
                                                            int64_t cols) {
    quantized_activations a = qs_activation_layout_wide(scratch, n, cols);
    qs_quantize_activation_rows_wide_avx2(&a, x, 0, n, cols);
    return a;
}

AVX2 void qs_quantize_activation_rows_avx2(const quantized_activations *a, const float *x, int64_t i0, int64_t i1,
                                           int64_t cols, int64_t group) {
    const int64_t blocks = cols / 32;
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    const int64_t per = group > 0 ? group / 32 : 1;
    for (int64_t i = i0; i < i1; i++) {
        float sum = 0;
        __m256i previous = _mm256_setzero_si256();
        for (int64_t b = 0; b < blocks; b++) {
            const int64_t k = i * blocks + b;
            __m256i q[4];
            const float amax = block_round_avx2(x + k * 32, 127.0f, q);
            const float d = amax / 127.0f;
            __m256i bytes = _mm256_permutevar8x32_epi32(
                _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3])), order);
            _mm256_storeu_si256((__m256i *)(a->q + k * 32), bytes);
            a->d[k] = d;
            if (group > 0) {
                __m256i t = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
                __m128i u = _mm_add_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
                u = _mm_add_epi32(u, _mm_shuffle_epi32(u, 0x4E));
                u = _mm_add_epi32(u, _mm_shuffle_epi32(u, 0xB1));
                sum += d * (float)_mm_cvtsi128_si32(u);
                if ((b + 1) % per == 0) {
                    a->gsum[k / per] = sum;
                    sum = 0;
                }
            }
            if (group >= 64) {
                if (b & 1) {
                    int8_t *dst = a->pq + i * cols + (b - 1) * 32;
                    _mm256_storeu_si256((__m256i *)dst, _mm256_permute2x128_si256(previous, bytes, 0x20));
                    _mm256_storeu_si256((__m256i *)(dst + 32), _mm256_permute2x128_si256(previous, bytes, 0x31));
                    float *pd = a->pd + (i * (blocks / 2) + b / 2) * 8;
                    _mm256_storeu_ps(pd, _mm256_setr_m128(_mm_set1_ps(a->d[k - 1]), _mm_set1_ps(d)));
                }
                previous = bytes;
            }
        }
    }
}

AVX2 quantized_activations qs_quantize_activations_avx2(float *scratch, const float *x, int64_t n, int64_t cols,
                                                       int64_t group) {
    quantized_activations a = qs_activation_layout(scratch, n, cols);
    qs_quantize_activation_rows_avx2(&a, x, 0, n, cols, group);
    return a;
}

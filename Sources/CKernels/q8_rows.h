// Q8 weight rows against int16 activation rows, shared by the AVX2 product (qmatmul.c) and the AVX-512 VNNI one
// (qmatmul_vnni.c). Internal to CKernels.
#ifndef QS_Q8_ROWS_H
#define QS_Q8_ROWS_H

#include "qactivations.h"
#include "simd_avx2.h"
#include <immintrin.h>

#ifndef ALWAYS_INLINE
#define ALWAYS_INLINE static inline __attribute__((always_inline))
#endif
#ifndef AVX2
#define AVX2 __attribute__((target("avx2,fma,f16c")))
#endif

// Q8 weights against int16 activations: each 32-value weight block is widened to int16 once (two registers) and
// multiplied pairwise with madd (exact in int32). Same reduction order as qrow_avx2: even blocks into acc0, odd
// into acc1, whatever COUNT is.
AVX2 ALWAYS_INLINE __m256 block_dot_wide(__m256i wlo, __m256i whi, const int16_t *x, float scale, __m256 acc) {
    __m256i p = _mm256_add_epi32(_mm256_madd_epi16(wlo, _mm256_loadu_si256((const __m256i *)x)),
                                 _mm256_madd_epi16(whi, _mm256_loadu_si256((const __m256i *)(x + 16))));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(scale), acc);
}

// A row's fp16 scales as floats, eight at a time.
AVX2 ALWAYS_INLINE void scales_to_f32(float *ws, const uint16_t *h, int64_t count) {
    int64_t g = 0;
    for (; g + 8 <= count; g += 8) _mm256_storeu_ps(ws + g, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + g))));
    for (; g < count; g++) ws[g] = _cvtsh_ss(h[g]);
}

// One weight row against COUNT activation rows; DOT is the block product (block_dot_wide, or qmatmul_vnni.c's block_dot_vnni).
#define QROW_WIDE(NAME, TARGET, DOT, COUNT)                                                                       \
    TARGET ALWAYS_INLINE void NAME##_##COUNT(float *out, int64_t ldo, const int8_t *wrow, const float *ws,        \
                                             const quantized_activations *a, int64_t cols, int64_t i0, int64_t r) { \
        const int64_t blocks = cols / 32;                                                                         \
        const int16_t *x = a->q16 + i0 * cols;                                                                    \
        const float *dx = a->d + i0 * blocks;                                                                     \
        __m256 acc0[COUNT], acc1[COUNT];                                                                          \
        for (int k = 0; k < COUNT; k++) acc0[k] = acc1[k] = _mm256_setzero_ps();                                  \
        int64_t b = 0;                                                                                            \
        for (; b + 2 <= blocks; b += 2) {                                                                         \
            __m256i wlo = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(wrow + b * 32)));               \
            __m256i whi = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(wrow + b * 32 + 16)));          \
            for (int k = 0; k < COUNT; k++)                                                                       \
                acc0[k] = DOT(wlo, whi, x + k * cols + b * 32, ws[b] * dx[k * blocks + b], acc0[k]);             \
            wlo = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(wrow + b * 32 + 32)));                  \
            whi = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(wrow + b * 32 + 48)));                  \
            for (int k = 0; k < COUNT; k++)                                                                       \
                acc1[k] = DOT(wlo, whi, x + k * cols + b * 32 + 32, ws[b + 1] * dx[k * blocks + b + 1], acc1[k]); \
        }                                                                                                         \
        if (b < blocks) {                                                                                         \
            __m256i wlo = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(wrow + b * 32)));               \
            __m256i whi = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(wrow + b * 32 + 16)));          \
            for (int k = 0; k < COUNT; k++)                                                                       \
                acc0[k] = DOT(wlo, whi, x + k * cols + b * 32, ws[b] * dx[k * blocks + b], acc0[k]);             \
        }                                                                                                         \
        for (int k = 0; k < COUNT; k++) out[(i0 + k) * ldo + r] = qs_hsum_avx2(_mm256_add_ps(acc0[k], acc1[k]));  \
    }
#endif

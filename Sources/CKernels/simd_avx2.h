// Small AVX2 helpers shared by the kernel files (internal; not part of the public header).
#ifndef QS_SIMD_AVX2_H
#define QS_SIMD_AVX2_H

#include <immintrin.h>

/// The sum of the eight lanes of v.
static inline __attribute__((always_inline, target("avx2"))) float qs_hsum_avx2(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

#endif

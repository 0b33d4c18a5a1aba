// AVX2 versions of the load-time quantizers of quantize.c, giving bit-identical results (every value goes through
// the same IEEE operations; roundf's ties-away-from-zero is rebuilt from a truncation and the exact remainder).
// They matter for start-up: a 0.5B model's embeddings alone are 136M values.
#include "CKernels.h"
#include "q4_group.h"
#include <immintrin.h>
#include <math.h>

#define AVX2 __attribute__((target("avx2,f16c")))

static inline AVX2 float hmax_avx2(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

static inline AVX2 float hmin_avx2(__m256 v) {
    __m128 m = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_min_ps(m, _mm_movehl_ps(m, m));
    m = _mm_min_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

static inline AVX2 __m256 abs_avx2(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

// roundf: the truncation, plus ±1 where the exact remainder is at least one half.
static inline AVX2 __m256 roundf_avx2(__m256 v) {
    __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m256 up = _mm256_cmp_ps(abs_avx2(_mm256_sub_ps(v, t)), _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    __m256 one = _mm256_or_ps(_mm256_and_ps(v, _mm256_set1_ps(-0.0f)), _mm256_set1_ps(1.0f));
    return _mm256_add_ps(t, _mm256_and_ps(up, one));
}

// q4_group_params (q4_group.h) for n a multiple of 8: the same min and max, so the same scale and zero point.
static inline AVX2 q4_group q4_group_params_avx2(const float *x, int64_t n, const float *clip) {
    __m256 vmin = _mm256_loadu_ps(x), vmax = vmin;
    for (int64_t j = 8; j < n; j += 8) {
        __m256 v = _mm256_loadu_ps(x + j);
        vmin = _mm256_min_ps(vmin, v);
        vmax = _mm256_max_ps(vmax, v);
    }
    return q4_group_from_range(hmin_avx2(vmin), hmax_avx2(vmax), clip);
}

// Pack 32 codes (0..15) held in four vectors of eight i32: byte j = code[j] | code[j + 16] << 4.
static inline AVX2 void pack32_avx2(uint8_t *dst, __m256i c0, __m256i c1, __m256i c2, __m256i c3) {
    __m256i lo = _mm256_or_si256(c0, _mm256_slli_epi32(c2, 4));  // bytes 0..7
    __m256i hi = _mm256_or_si256(c1, _mm256_slli_epi32(c3, 4));  // bytes 8..15
    __m256i w = _mm256_packus_epi32(lo, hi);                     // 16-bit, lanes interleaved
    w = _mm256_permute4x64_epi64(w, 0xD8);                       // 0..7, 8..15 in order
    __m128i b = _mm_packus_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
    _mm_storeu_si128((__m128i *)dst, b);
}

AVX2 void qs_quantize_q8_avx2(int8_t *q, uint16_t *scales, const float *src, int64_t rows, int64_t cols) {
    const __m256 lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t b = 0; b < cols / 32; b++) {
            const float *x = src + r * cols + b * 32;
            __m256 v[4];
            for (int k = 0; k < 4; k++) v[k] = _mm256_loadu_ps(x + 8 * k);
            float amax = hmax_avx2(_mm256_max_ps(_mm256_max_ps(abs_avx2(v[0]), abs_avx2(v[1])),
                                                 _mm256_max_ps(abs_avx2(v[2]), abs_avx2(v[3]))));
            uint16_t h = qs_fp32_to_fp16(amax / 127.0f);
            scales[r * (cols / 32) + b] = h;
            float d = qs_fp16_to_fp32(h);
            __m256 inv = _mm256_set1_ps(d > 0 ? 1.0f / d : 0);
            __m256i n[4];
            for (int k = 0; k < 4; k++) {
                __m256 t = _mm256_min_ps(_mm256_max_ps(roundf_avx2(_mm256_mul_ps(v[k], inv)), lo), hi);
                n[k] = _mm256_cvttps_epi32(t);
            }
            __m256i w = _mm256_packs_epi16(_mm256_packs_epi32(n[0], n[1]), _mm256_packs_epi32(n[2], n[3]));
            _mm256_storeu_si256((__m256i *)(q + r * cols + b * 32), _mm256_permutevar8x32_epi32(w, order));
        }
    }
}

AVX2 void qs_quantize_nf4_avx2(uint8_t *q, float *absmax, const float *src, int64_t rows, int64_t cols) {
    __m256 mid[15];
    for (int i = 1; i < 16; i++) mid[i - 1] = _mm256_set1_ps(0.5f * (QS_NF4_CODE[i - 1] + QS_NF4_CODE[i]));
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t b = 0; b < cols / 64; b++) {
            const float *x = src + r * cols + b * 64;
            __m256 m = _mm256_setzero_ps();
            for (int k = 0; k < 8; k++) m = _mm256_max_ps(m, abs_avx2(_mm256_loadu_ps(x + 8 * k)));
            float amax = hmax_avx2(m);
            absmax[r * (cols / 64) + b] = amax;
            __m256 inv = _mm256_set1_ps(amax > 0 ? 1.0f / amax : 0);
            for (int half = 0; half < 2; half++) {
                __m256i c[4];
                for (int k = 0; k < 4; k++) {
                    __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + half * 32 + 8 * k), inv);
                    __m256i n = _mm256_setzero_si256();
                    for (int i = 0; i < 15; i++) n = _mm256_sub_epi32(n, _mm256_castps_si256(_mm256_cmp_ps(v, mid[i], _CMP_GT_OQ)));
                    c[k] = n;
                }
                pack32_avx2(q + (r * cols + b * 64 + half * 32) / 2, c[0], c[1], c[2], c[3]);
            }
        }
    }
}

AVX2 void qs_quantize_q4_avx2(uint8_t *q, uint16_t *scales, uint8_t *zeros, const float *src, int64_t rows,
                              int64_t cols, int64_t group, const float *clip) {
    const int64_t groups = cols / group;
    const __m256 magic = _mm256_set1_ps(12582912.0f), fifteen = _mm256_set1_ps(15.0f), zero = _mm256_setzero_ps();
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t g = 0; g < groups; g++) {
            const float *x = src + r * cols + g * group;
            q4_group p = q4_group_params_avx2(x, group, clip ? clip + r * groups + g : NULL);
            scales[r * groups + g] = p.scale_half;
            zeros[r * groups + g] = (uint8_t)p.zero;
            const __m256 vs = _mm256_set1_ps(p.scale), vz = _mm256_set1_ps(p.zero);
            for (int64_t b = 0; b < group / 32; b++) {
                __m256i c[4];
                for (int k = 0; k < 4; k++) {
                    __m256 v = _mm256_div_ps(_mm256_loadu_ps(x + b * 32 + 8 * k), vs);
                    v = _mm256_add_ps(_mm256_sub_ps(_mm256_add_ps(v, magic), magic), vz);
                    c[k] = _mm256_cvttps_epi32(_mm256_min_ps(_mm256_max_ps(v, zero), fifteen));
                }
                pack32_avx2(q + (r * cols + g * group + b * 32) / 2, c[0], c[1], c[2], c[3]);
            }
        }
    }
}

// Q(x · s) / s per group, as fake_quantize_rows in quantize.c (same IEEE operations in the same order).
AVX2 void qs_fake_quantize_q4_avx2(float *dst, const float *src, const float *col_scale, int64_t rows, int64_t cols,
                                   int64_t group, const float *clip) {
    const int64_t groups = cols / group;
    const __m256 magic = _mm256_set1_ps(12582912.0f), fifteen = _mm256_set1_ps(15.0f), zero = _mm256_setzero_ps();
    float buffer[1024] __attribute__((aligned(32)));
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t g = 0; g < groups; g++) {
            const float *x = src + r * cols + g * group;
            const float *s = col_scale ? col_scale + g * group : NULL;
            for (int64_t j = 0; j < group; j += 8) {
                __m256 v = _mm256_loadu_ps(x + j);
                _mm256_store_ps(buffer + j, s ? _mm256_mul_ps(v, _mm256_loadu_ps(s + j)) : v);
            }
            q4_group p = q4_group_params_avx2(buffer, group, clip ? clip + r * groups + g : NULL);
            const __m256 vs = _mm256_set1_ps(p.scale), vz = _mm256_set1_ps(p.zero);
            float *y = dst + r * cols + g * group;
            for (int64_t j = 0; j < group; j += 8) {
                __m256 v = _mm256_div_ps(_mm256_load_ps(buffer + j), vs);
                v = _mm256_add_ps(_mm256_sub_ps(_mm256_add_ps(v, magic), magic), vz);
                v = _mm256_min_ps(_mm256_max_ps(v, zero), fifteen);
                v = _mm256_mul_ps(_mm256_sub_ps(v, vz), vs);
                if (s) v = _mm256_div_ps(v, _mm256_loadu_ps(s + j));
                _mm256_storeu_ps(y + j, v);
            }
        }
    }
}

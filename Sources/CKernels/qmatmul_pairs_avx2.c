// The AVX2 products of the 4-bit formats in pairs of blocks (Q4 with groups of 64 or more, and NF4): the tiles
// qmatmul.c hands those matrices to.
#include "qmatmul_pairs_avx2.h"
#include "q8_rows.h"
#include "qmatmul_common.h"
#include "simd_avx2.h"
#include <immintrin.h>

// The 4-bit formats in pairs of blocks (Q4 with groups of 64 or more, and NF4, whose absmax covers 64 values): one
// 32-byte load holds two blocks' codes, the low nibbles elements 0-15 of both, the high nibbles elements 16-31,
// matching the paired activations. Q4 codes enter maddubs unsigned, and the two products add in int16 (at most
// 2 * 2 * 15 * 127 per lane); NF4 codes become signed int8 values through a table and enter with the sign trick
// (|w| against x carrying w's sign), each product widened on its own (2 * 127 * 127 per lane). One FMA takes both
// blocks' scales. Every (weight row, activation row) has one accumulator, fed the pairs in order and then Q4's
// zero-point term eight groups at a time, so its result is the same whatever tile computes it.

// The int32 lanes (0-3 block b, 4-7 block b + 1) of one weight pair against one activation pair x0, x1. For NF4,
// lo and hi are the signed values and alo, ahi their magnitudes.
AVX2 ALWAYS_INLINE __m256i pair_dot(const qs_format format, __m256i lo, __m256i hi, __m256i alo, __m256i ahi, __m256i x0,
                                    __m256i x1) {
    const __m256i ones = _mm256_set1_epi16(1);
    if (format == QS_FORMAT_Q4)
        return _mm256_madd_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(lo, x0), _mm256_maddubs_epi16(hi, x1)), ones);
    return _mm256_add_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(alo, _mm256_sign_epi8(x0, lo)), ones),
                            _mm256_madd_epi16(_mm256_maddubs_epi16(ahi, _mm256_sign_epi8(x1, hi)), ones));
}

// One pair's codes: Q4's as they are, NF4's as signed values and their magnitudes.
AVX2 ALWAYS_INLINE void pair_weights(const qs_format format, const uint8_t *p, __m256i *lo, __m256i *hi, __m256i *alo,
                                     __m256i *ahi) {
    const __m256i mask = _mm256_set1_epi8(0x0F);
    const __m256i v = _mm256_loadu_si256((const __m256i *)p);
    *lo = _mm256_and_si256(v, mask), *hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), mask);
    if (format == QS_FORMAT_NF4) {
        const __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)NF4_I8));
        *lo = _mm256_shuffle_epi8(table, *lo), *hi = _mm256_shuffle_epi8(table, *hi);
        *alo = _mm256_sign_epi8(*lo, *lo), *ahi = _mm256_sign_epi8(*hi, *hi);
    } else {
        *alo = *lo, *ahi = *hi;
    }
}

// One weight row against CT activation rows. ws, wz [groups]: the row's scales and (Q4) scale times zero point.
AVX2 ALWAYS_INLINE void qpair_avx2(const qs_format format, const int CT, float *out, int64_t ldo, const uint8_t *wrow,
                                   const float *ws, const float *wz, const quantized_activations *a, int64_t cols,
                                   int64_t groups, int64_t i0, int64_t r, int pshift) {
    const int64_t pairs = cols / 64;
    __m256 acc[8];
    for (int k = 0; k < CT; k++) acc[k] = _mm256_setzero_ps();
    for (int64_t p = 0; p < pairs; p++) {
        __m256i lo, hi, alo, ahi;
        pair_weights(format, wrow + p * 32, &lo, &hi, &alo, &ahi);
        const __m256 scale = _mm256_broadcast_ss(ws + (p >> pshift));
        for (int k = 0; k < CT; k++) {
            const int8_t *x = a->pq + (i0 + k) * cols + p * 64;
            const __m256i dot = pair_dot(format, lo, hi, alo, ahi, _mm256_loadu_si256((const __m256i *)x),
                                         _mm256_loadu_si256((const __m256i *)(x + 32)));
            const __m256 d = _mm256_mul_ps(scale, _mm256_loadu_ps(a->pd + ((i0 + k) * pairs + p) * 8));
            acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), d, acc[k]);
        }
    }
    if (format == QS_FORMAT_Q4) {
        for (int64_t g = 0; g < groups; g += 8) {
            __m256i lanes = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(groups - g)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
            __m256 wzg = _mm256_maskload_ps(wz + g, lanes);
            for (int k = 0; k < CT; k++)
                acc[k] = _mm256_fnmadd_ps(wzg, _mm256_maskload_ps(a->gsum + (i0 + k) * groups + g, lanes), acc[k]);
        }
    }
    for (int k = 0; k < CT; k++) out[(i0 + k) * ldo + r] = qs_hsum_avx2(acc[k]);
}

// Rows r ..< r + count: their scales ws and (Q4) scale times zero point wz per group, as floats ([count, groups]).
AVX2 static inline void pair_row_params_avx2(float *ws, float *wz, const qs_matrix *w, int64_t r, int64_t count) {
    if (w->format == QS_FORMAT_NF4) {
        const int64_t total = count * (w->cols / 64);
        const float *amax = (const float *)w->scales + r * (w->cols / 64);
        for (int64_t i = 0; i < total; i++) ws[i] = amax[i] * (1.0f / 127.0f);
        return;
    }
    const int64_t groups = w->cols / w->group, total = count * groups;
    const uint16_t *h = (const uint16_t *)w->scales + r * groups;
    const uint8_t *z = w->zeros + r * groups;
    int64_t i = 0;
    for (; i + 8 <= total; i += 8) {
        __m256 s = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i)));
        _mm256_storeu_ps(ws + i, s);
        _mm256_storeu_ps(wz + i, _mm256_mul_ps(s, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(z + i))))));
    }
    for (; i < total; i++) {
        ws[i] = _cvtsh_ss(h[i]);
        wz[i] = ws[i] * (float)z[i];
    }
}

// Decode: ROWS rows against one activation row, the same arithmetic in the same order as qpair_avx2, written with
// running pointers so the loop keeps everything in registers, and with a prefetch of the next ROWS rows. w: the
// first row, the others wstride bytes apart; ws, wz: [ROWS][groups]; out: the ROWS results.
AVX2 ALWAYS_INLINE void pair_rows_avx2(const qs_format format, const int ROWS, float *out, const uint8_t *w,
                                       int64_t wstride, const float *ws, const float *wz, int64_t groups,
                                       int64_t pairs_per_group, const int8_t *x, const float *pd, const float *gsum) {
    const int64_t ahead = ROWS * wstride;
    __m256 acc[ROWS];
    const uint8_t *wr[ROWS];
    for (int t = 0; t < ROWS; t++) acc[t] = _mm256_setzero_ps(), wr[t] = w + t * wstride;
    for (int64_t g = 0; g < groups; g++) {
        __m256 s[ROWS];
        for (int t = 0; t < ROWS; t++) s[t] = _mm256_broadcast_ss(ws + t * groups + g);
        for (int64_t k = 0; k < pairs_per_group; k++) {
            const __m256i x0 = _mm256_loadu_si256((const __m256i *)x), x1 = _mm256_loadu_si256((const __m256i *)(x + 32));
            const __m256 d = _mm256_loadu_ps(pd);
            for (int t = 0; t < ROWS; t++) {
                __m256i lo, hi, alo, ahi;
                pair_weights(format, wr[t], &lo, &hi, &alo, &ahi);
                _mm_prefetch((const char *)wr[t] + ahead, _MM_HINT_T0);
                const __m256i dot = pair_dot(format, lo, hi, alo, ahi, x0, x1);
                acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_mul_ps(s[t], d), acc[t]);
                wr[t] += 32;
            }
            x += 64, pd += 8;
        }
    }
    if (format == QS_FORMAT_Q4) {
        for (int64_t g = 0; g < groups; g += 8) {
            __m256i lanes = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(groups - g)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
            __m256 gs = _mm256_maskload_ps(gsum + g, lanes);
            for (int t = 0; t < ROWS; t++) acc[t] = _mm256_fnmadd_ps(_mm256_maskload_ps(wz + t * groups + g, lanes), gs, acc[t]);
        }
    }
    for (int t = 0; t < ROWS; t++) out[t] = qs_hsum_avx2(acc[t]);
}

// Rows r0 ..< r1 in pairs of blocks, in tiles: 4 weight rows at a time against one activation row (decode), 1
// against 8 (batches).
AVX2 ALWAYS_INLINE void pairs_avx2(const qs_format format, float *out, int64_t ldo, const qs_matrix *w,
                                   const quantized_activations *a, int64_t n, int64_t r0, int64_t r1) {
    enum { RT = 4 };
    const int64_t group = format == QS_FORMAT_NF4 ? 64 : w->group;
    const int64_t cols = w->cols, groups = cols / group;
    const int pshift = __builtin_ctzll((unsigned long long)(group / 64));
    float ws[RT * groups], wz[RT * groups];
    for (int64_t c0 = 0; c0 < n; c0 += QS_ACTIVATION_CHUNK) {
        const int64_t c1 = c0 + QS_ACTIVATION_CHUNK < n ? c0 + QS_ACTIVATION_CHUNK : n;
        for (int64_t r = r0; r < r1; r += RT) {
            const int64_t rt = r + RT <= r1 ? RT : r1 - r;
            pair_row_params_avx2(ws, wz, w, r, rt);
            const uint8_t *wrow = (const uint8_t *)w->data + r * (cols / 2);
            if (rt < RT) {
                for (int64_t t = 0; t < rt; t++)
                    for (int64_t i = c0; i < c1; i++)
                        qpair_avx2(format, 1, out, ldo, wrow + t * (cols / 2), ws + t * groups, wz + t * groups, a,
                                   cols, groups, i, r + t, pshift);
                continue;
            }
            int64_t i = c0;
            for (; i + 8 <= c1; i += 8)
                for (int t = 0; t < RT; t++)
                    qpair_avx2(format, 8, out, ldo, wrow + t * (cols / 2), ws + t * groups, wz + t * groups, a, cols,
                               groups, i, r + t, pshift);
            for (; i < c1; i++)
                pair_rows_avx2(format, RT, out + i * ldo + r, wrow, cols / 2, ws, wz, groups, group / 64,
                               a->pq + i * cols, a->pd + i * (cols / 64) * 8, a->gsum + i * groups);
        }
    }
}

AVX2 void qmatmul_pairs_avx2(float *out, int64_t ldo, const qs_matrix *w, const quantized_activations *a, int64_t n,
                             int64_t r0, int64_t r1) {
    if (w->format == QS_FORMAT_NF4) pairs_avx2(QS_FORMAT_NF4, out, ldo, w, a, n, r0, r1);
    else pairs_avx2(QS_FORMAT_Q4, out, ldo, w, a, n, r0, r1);
}

// The Q8 × int16 product with AVX-512 VNNI, off by default until the device check has passed (qs_q8_vnni_enabled).
#include "CKernels.h"
#include "q8_rows.h"
#include "qmatmul_vnni.h"

// The same Q8 × int16 product with AVX-512 VNNI at 256 bits: vpdpwssd adds the pairwise int16 products into int32
// in one instruction where AVX2 needs two vpmaddwd and a vpaddd. The integer sums are exact either way and every
// float operation is the same, in the same order, so results are bit-identical to qrow_wide_avx2_* (tested on a
// VNNI machine). Off by default until the device check has passed (qs_q8_vnni_enabled; QS_VNNI=1 turns it on).
#define VNNI __attribute__((target("avx2,fma,f16c,avx512f,avx512vl,avx512vnni")))
VNNI ALWAYS_INLINE __m256 block_dot_vnni(__m256i wlo, __m256i whi, const int16_t *x, float scale, __m256 acc) {
    __m256i p = _mm256_dpwssd_epi32(_mm256_madd_epi16(wlo, _mm256_loadu_si256((const __m256i *)x)), whi,
                                    _mm256_loadu_si256((const __m256i *)(x + 16)));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(scale), acc);
}

QROW_WIDE(qrow_wide_vnni, VNNI, block_dot_vnni, 1)
QROW_WIDE(qrow_wide_vnni, VNNI, block_dot_vnni, 4)

#ifndef QS_Q8_ACTIVATION_CHUNK
#define QS_Q8_ACTIVATION_CHUNK 8
#endif

// Rows r0 ..< r1 of a Q8 matrix with VNNI, in chunks of activation rows small enough to stay in L1 while the
// weight rows (in L2 after the first chunk) pass over them.
VNNI void qmatmul_q8_vnni(float *out, int64_t ldo, const qs_matrix *w, const quantized_activations *a,
                                 int64_t n, int64_t r0, int64_t r1) {
    const int64_t cols = w->cols, blocks = cols / 32;
    float ws[blocks + 8];
    for (int64_t c0 = 0; c0 < n; c0 += QS_Q8_ACTIVATION_CHUNK) {
        const int64_t c1 = c0 + QS_Q8_ACTIVATION_CHUNK < n ? c0 + QS_Q8_ACTIVATION_CHUNK : n;
        for (int64_t r = r0; r < r1; r++) {
            scales_to_f32(ws, (const uint16_t *)w->scales + r * blocks, blocks);
            const int8_t *wrow = (const int8_t *)w->data + r * cols;
            int64_t i = c0;
            for (; i + 4 <= c1; i += 4) qrow_wide_vnni_4(out, ldo, wrow, ws, a, cols, i, r);
            for (; i < c1; i++) qrow_wide_vnni_1(out, ldo, wrow, ws, a, cols, i, r);
        }
    }
}


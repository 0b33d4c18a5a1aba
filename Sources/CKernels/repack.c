// Conversions between the packed formats of CKernels.h and the checkpoint layouts of AutoAWQ (GEMM) and
// bitsandbytes (4-bit), for loading and writing Hugging Face folders without a detour through FP32.
#include "CKernels.h"
#ifdef __SSE2__
#include <emmintrin.h>
#endif

// Bit position (in nibbles) of column 8c + j inside an AutoAWQ i32: packing used order {0,2,4,6,1,3,5,7}.
static const int AWQ_SHIFT[8] = {0, 4, 1, 5, 2, 6, 3, 7};

void qs_awq_to_q4(uint8_t *q, uint16_t *scales, uint8_t *zeros, const int32_t *qweight, const int32_t *qzeros,
                  const uint16_t *awq_scales, int64_t K, int64_t N, int64_t G, int64_t n0, int64_t n1) {
    const int64_t words = N / 8, groups = K / G;
    for (int64_t c = n0 / 8; c < n1 / 8; c++) {
        for (int j = 0; j < 8; j++) {
            const int64_t n = 8 * c + j;
            const int shift = 4 * AWQ_SHIFT[j];
            for (int64_t g = 0; g < groups; g++) {
                scales[n * groups + g] = awq_scales[g * N + n];
                zeros[n * groups + g] = (uint8_t)(((uint32_t)qzeros[g * words + c] >> shift) & 0xF);
            }
        }
        // One Q4 block (32 values along K) of the eight rows of this word column at a time.
        for (int64_t b = 0; b < K / 32; b++) {
            uint32_t w[32];
            for (int i = 0; i < 32; i++) w[i] = (uint32_t)qweight[(b * 32 + i) * words + c];
            for (int j = 0; j < 8; j++) {
                const int shift = 4 * AWQ_SHIFT[j];
                uint8_t *dst = q + (8 * c + j) * (K / 2) + b * 16;
                for (int i = 0; i < 16; i++)
                    dst[i] = (uint8_t)(((w[i] >> shift) & 0xF) | (((w[i + 16] >> shift) & 0xF) << 4));
            }
        }
    }
}

void qs_q4_to_awq(int32_t *qweight, int32_t *qzeros, uint16_t *awq_scales, const uint8_t *q, const uint16_t *scales,
                  const uint8_t *zeros, int64_t K, int64_t N, int64_t G, int64_t n0, int64_t n1) {
    const int64_t words = N / 8, groups = K / G;
    for (int64_t c = n0 / 8; c < n1 / 8; c++) {
        for (int64_t g = 0; g < groups; g++) {
            uint32_t z = 0;
            for (int j = 0; j < 8; j++) {
                const int64_t n = 8 * c + j;
                awq_scales[g * N + n] = scales[n * groups + g];
                z |= (uint32_t)(zeros[n * groups + g] & 0xF) << (4 * AWQ_SHIFT[j]);
            }
            qzeros[g * words + c] = (int32_t)z;
        }
        for (int64_t b = 0; b < K / 32; b++) {
            uint32_t w[32] = {0};
            for (int j = 0; j < 8; j++) {
                const int shift = 4 * AWQ_SHIFT[j];
                const uint8_t *src = q + (8 * c + j) * (K / 2) + b * 16;
                for (int i = 0; i < 16; i++) {
                    w[i] |= (uint32_t)(src[i] & 0xF) << shift;
                    w[i + 16] |= (uint32_t)(src[i] >> 4) << shift;
                }
            }
            for (int i = 0; i < 32; i++) qweight[(b * 32 + i) * words + c] = (int32_t)w[i];
        }
    }
}

void qs_bnb4_to_q4_packing(uint8_t *dst, const uint8_t *src, int64_t n) {
#ifdef __SSE2__
    // High nibbles are the even elements, low nibbles the odd: interleaving them gives elements 0..15 and 16..31.
    const __m128i mask = _mm_set1_epi8(0x0F);
    for (int64_t b = 0; b < n / 32; b++, dst += 16, src += 16) {
        __m128i s = _mm_loadu_si128((const __m128i *)src);
        __m128i hi = _mm_and_si128(_mm_srli_epi16(s, 4), mask), lo = _mm_and_si128(s, mask);
        __m128i first = _mm_unpacklo_epi8(hi, lo), second = _mm_unpackhi_epi8(hi, lo);
        _mm_storeu_si128((__m128i *)dst, _mm_or_si128(first, _mm_slli_epi16(second, 4)));
    }
#else
    for (int64_t b = 0; b < n / 32; b++, dst += 16, src += 16) {
        uint8_t v[32];
        for (int i = 0; i < 16; i++) { v[2 * i] = src[i] >> 4; v[2 * i + 1] = src[i] & 0xF; }
        for (int j = 0; j < 16; j++) dst[j] = (uint8_t)(v[j] | (v[j + 16] << 4));
    }
#endif
}

void qs_q4_packing_to_bnb4(uint8_t *dst, const uint8_t *src, int64_t n) {
    for (int64_t b = 0; b < n / 32; b++, dst += 16, src += 16) {
        uint8_t v[32];
        for (int j = 0; j < 16; j++) { v[j] = src[j] & 0xF; v[j + 16] = src[j] >> 4; }
        for (int i = 0; i < 16; i++) dst[i] = (uint8_t)((v[2 * i] << 4) | v[2 * i + 1]);
    }
}

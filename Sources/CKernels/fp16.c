#include "CKernels.h"
#include <immintrin.h>
#include <string.h>

static inline uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

float qs_fp16_to_fp32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1F;
    uint32_t mant = h & 0x3FF;
    if (exp == 0x1F) return bits_f32(sign | 0x7F800000u | (mant << 13));  // inf, nan
    if (exp == 0) {
        if (mant == 0) return bits_f32(sign);
        // subnormal: mant * 2^-24
        float v = (float)mant * 5.9604644775390625e-08f;
        return sign ? -v : v;
    }
    return bits_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

uint16_t qs_fp32_to_fp16(float f) {
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t absx = x & 0x7FFFFFFFu;
    if (absx >= 0x7F800000u) return sign | 0x7C00 | (absx > 0x7F800000u ? 0x200 : 0);  // inf, nan
    if (absx >= 0x477FF000u) return sign | 0x7C00;  // rounds to >= 65520: overflow to inf
    if (absx < 0x38800000u) {  // below the smallest normal half: subnormal or zero, round to nearest even
        if (absx < 0x33000000u) return sign;  // < 2^-25 rounds to zero
        uint32_t exp = absx >> 23;
        uint32_t mant = (absx & 0x7FFFFF) | 0x800000;
        uint32_t s = 126 - exp;  // value / 2^-24 = mant * 2^(exp - 126), s in [14, 24]
        uint32_t result = mant >> s;
        uint32_t rem = mant & ((1u << s) - 1);
        uint32_t half = 1u << (s - 1);
        if (rem > half || (rem == half && (result & 1))) result++;
        return sign | (uint16_t)result;
    }
    // normal: rebias exponent, round mantissa to 10 bits, nearest even (carry may bump the exponent: correct)
    uint32_t r = absx - 0x38000000u;  // exponent 127 -> 15
    uint32_t result = r >> 13;
    uint32_t rem = r & 0x1FFF;
    if (rem > 0x1000 || (rem == 0x1000 && (result & 1))) result++;
    return sign | (uint16_t)result;
}

float qs_bf16_to_fp32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

__attribute__((target("avx2,f16c")))
static void convert_fp16_to_fp32_f16c(float *dst, const uint16_t *src, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++) dst[i] = qs_fp16_to_fp32(src[i]);
}

__attribute__((target("avx2,f16c")))
static void convert_fp32_to_fp16_f16c(uint16_t *dst, const float *src, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) dst[i] = qs_fp32_to_fp16(src[i]);
}

void qs_convert_fp16_to_fp32(float *dst, const uint16_t *src, int64_t n) {
    if (qs_best_variant() >= QS_VARIANT_AVX2) { convert_fp16_to_fp32_f16c(dst, src, n); return; }
    for (int64_t i = 0; i < n; i++) dst[i] = qs_fp16_to_fp32(src[i]);
}

void qs_convert_fp32_to_fp16(uint16_t *dst, const float *src, int64_t n) {
    if (qs_best_variant() >= QS_VARIANT_AVX2) { convert_fp32_to_fp16_f16c(dst, src, n); return; }
    for (int64_t i = 0; i < n; i++) dst[i] = qs_fp32_to_fp16(src[i]);
}

void qs_convert_bf16_to_fp32(float *dst, const uint16_t *src, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = qs_bf16_to_fp32(src[i]);
}

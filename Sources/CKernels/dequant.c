// GGUF block dequantizers, following the block layouts in shared/FORMATS.md. Run once at load time.
#include "CKernels.h"
#include <string.h>

static inline float read_fp16(const uint8_t *p) { uint16_t h; memcpy(&h, p, 2); return qs_fp16_to_fp32(h); }

// Q8_0: 32 values in 34 bytes {fp16 d; int8 qs[32]}
void qs_dequantize_q8_0(float *dst, const void *src, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 32; i++, b += 34, dst += 32) {
        float d = read_fp16(b);
        const int8_t *qs = (const int8_t *)(b + 2);
        for (int j = 0; j < 32; j++) dst[j] = d * qs[j];
    }
}

// Q4_0: 32 values in 18 bytes {fp16 d; uint8 qs[16]}, low nibbles first half, high nibbles second half
void qs_dequantize_q4_0(float *dst, const void *src, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 32; i++, b += 18, dst += 32) {
        float d = read_fp16(b);
        const uint8_t *qs = b + 2;
        for (int j = 0; j < 16; j++) {
            dst[j] = ((int)(qs[j] & 0xF) - 8) * d;
            dst[j + 16] = ((int)(qs[j] >> 4) - 8) * d;
        }
    }
}

// Q5_0: 32 values in 22 bytes {fp16 d; uint8 qh[4]; uint8 qs[16]}, fifth bits in qh (little-endian u32)
void qs_dequantize_q5_0(float *dst, const void *src, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 32; i++, b += 22, dst += 32) {
        float d = read_fp16(b);
        uint32_t qh;
        memcpy(&qh, b + 2, 4);
        const uint8_t *qs = b + 6;
        for (int j = 0; j < 16; j++) {
            uint32_t xh0 = ((qh >> j) << 4) & 0x10;
            uint32_t xh1 = (qh >> (j + 12)) & 0x10;
            dst[j] = ((int)((qs[j] & 0xF) | xh0) - 16) * d;
            dst[j + 16] = ((int)((qs[j] >> 4) | xh1) - 16) * d;
        }
    }
}

// 6-bit scale and min of sub-block j in a Q4_K block's 12 scale bytes.
static inline void q4k_scale_min(int j, const uint8_t *scales, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = scales[j] & 63;
        *m = scales[j + 4] & 63;
    } else {
        *sc = (scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4);
        *m = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
    }
}

// Q4_K: 256 values in 144 bytes {fp16 d; fp16 dmin; uint8 scales[12]; uint8 qs[128]}
void qs_dequantize_q4_k(float *dst, const void *src, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 256; i++, b += 144) {
        float d = read_fp16(b), dmin = read_fp16(b + 2);
        const uint8_t *scales = b + 4;
        const uint8_t *q = b + 16;
        for (int c = 0; c < 4; c++, q += 32) {
            uint8_t sc, m;
            q4k_scale_min(2 * c, scales, &sc, &m);
            float d1 = d * sc, m1 = dmin * m;
            q4k_scale_min(2 * c + 1, scales, &sc, &m);
            float d2 = d * sc, m2 = dmin * m;
            for (int l = 0; l < 32; l++) *dst++ = d1 * (q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++) *dst++ = d2 * (q[l] >> 4) - m2;
        }
    }
}

// Q6_K: 256 values in 210 bytes {uint8 ql[128]; uint8 qh[64]; int8 scales[16]; fp16 d}
void qs_dequantize_q6_k(float *dst, const void *src, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 256; i++, b += 210) {
        const uint8_t *ql = b, *qh = b + 128;
        const int8_t *sc = (const int8_t *)(b + 192);
        float d = read_fp16(b + 208);
        for (int half = 0; half < 2; half++, dst += 128, ql += 64, qh += 32, sc += 8) {
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int q1 = (int)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                int q2 = (int)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                int q3 = (int)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                int q4 = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                dst[l] = d * sc[is] * q1;
                dst[l + 32] = d * sc[is + 2] * q2;
                dst[l + 64] = d * sc[is + 4] * q3;
                dst[l + 96] = d * sc[is + 6] * q4;
            }
        }
    }
}

// Q4_1: 32 values in 20 bytes {fp16 d; fp16 m; uint8 qs[16]}, y = d*q + m, nibbles as in Q4_0 (no offset)
void qs_dequantize_q4_1(float *dst, const void *src, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 32; i++, b += 20, dst += 32) {
        float d = read_fp16(b), m = read_fp16(b + 2);
        const uint8_t *qs = b + 4;
        for (int j = 0; j < 16; j++) {
            dst[j] = d * (qs[j] & 0xF) + m;
            dst[j + 16] = d * (qs[j] >> 4) + m;
        }
    }
}

// Q5_1: 32 values in 24 bytes {fp16 d; fp16 m; uint8 qh[4]; uint8 qs[16]}, y = d*q + m, fifth bits as in Q5_0
void qs_dequantize_q5_1(float *dst, const void *src, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 32; i++, b += 24, dst += 32) {
        float d = read_fp16(b), m = read_fp16(b + 2);
        uint32_t qh;
        memcpy(&qh, b + 4, 4);
        const uint8_t *qs = b + 8;
        for (int j = 0; j < 16; j++) {
            uint32_t xh0 = ((qh >> j) << 4) & 0x10;
            uint32_t xh1 = (qh >> (j + 12)) & 0x10;
            dst[j] = d * (int)((qs[j] & 0xF) | xh0) + m;
            dst[j + 16] = d * (int)((qs[j] >> 4) | xh1) + m;
        }
    }
}

// Q2_K: 256 values in 84 bytes {uint8 scales[16]; uint8 qs[64]; fp16 d; fp16 dmin}. Sub-block k (16 values) has
// scale d*(scales[k] & 0xF) and min dmin*(scales[k] >> 4). Each 128-value half reads 32 bytes of qs four times, 2 bits
// at a time (shift 0, 2, 4, 6): value 128h + 32s + l is (q[l] >> 2s) & 3, in sub-block 8h + 2s + l/16.
void qs_dequantize_q2_k(float *dst, const void *src, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 256; i++, b += 84) {
        const uint8_t *scales = b, *q = b + 16;
        float d = read_fp16(b + 80), dmin = read_fp16(b + 82);
        for (int half = 0; half < 2; half++, q += 32) {
            for (int s = 0; s < 4; s++) {
                for (int k = 0; k < 2; k++, dst += 16) {
                    uint8_t sc = *scales++;
                    float dl = d * (sc & 0xF), ml = dmin * (sc >> 4);
                    for (int l = 0; l < 16; l++) dst[l] = dl * ((q[16 * k + l] >> (2 * s)) & 3) - ml;
                }
            }
        }
    }
}

// Q3_K: 256 values in 110 bytes {uint8 hmask[32]; uint8 qs[64]; uint8 scales[12]; fp16 d}. 16 signed 6-bit scales:
// low 4 bits in scales[k] (k < 8) or scales[k-8] >> 4, high 2 bits at (scales[8 + k%4] >> 2*(k/4)) & 3, minus 32.
// Low 2 bits of value 128h + 32s + l as in Q2_K; its high bit is bit 4h + s of hmask[l]: set means +0, clear -4.
void qs_dequantize_q3_k(float *dst, const void *src, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 256; i++, b += 110) {
        const uint8_t *hm = b, *q = b + 32, *scales = b + 96;
        float d = read_fp16(b + 108);
        int sub = 0;
        for (int half = 0; half < 2; half++, q += 32) {
            for (int s = 0; s < 4; s++) {
                uint8_t mask = (uint8_t)(1u << (4 * half + s));
                for (int k = 0; k < 2; k++, sub++, dst += 16) {
                    int lo = sub < 8 ? scales[sub] & 0xF : scales[sub - 8] >> 4;
                    int hi = (scales[8 + sub % 4] >> (2 * (sub / 4))) & 3;
                    float dl = d * ((lo | (hi << 4)) - 32);
                    for (int l = 0; l < 16; l++) {
                        int j = 16 * k + l;
                        dst[l] = dl * (((q[j] >> (2 * s)) & 3) - ((hm[j] & mask) ? 0 : 4));
                    }
                }
            }
        }
    }
}

// Q5_K: 256 values in 176 bytes {fp16 d; fp16 dmin; uint8 scales[12]; uint8 qh[32]; uint8 qs[128]}. Scales, mins and
// low 4 bits as in Q4_K; the fifth bit of value 32k + l (k = 0..7) is bit k of qh[l].
void qs_dequantize_q5_k(float *dst, const void *src, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 256; i++, b += 176) {
        float d = read_fp16(b), dmin = read_fp16(b + 2);
        const uint8_t *scales = b + 4, *qh = b + 16;
        const uint8_t *q = b + 48;
        for (int c = 0; c < 4; c++, q += 32) {
            uint8_t sc, m;
            q4k_scale_min(2 * c, scales, &sc, &m);
            float d1 = d * sc, m1 = dmin * m;
            q4k_scale_min(2 * c + 1, scales, &sc, &m);
            float d2 = d * sc, m2 = dmin * m;
            uint8_t u1 = (uint8_t)(1u << (2 * c)), u2 = (uint8_t)(2u << (2 * c));
            for (int l = 0; l < 32; l++) *dst++ = d1 * ((q[l] & 0xF) | ((qh[l] & u1) ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++) *dst++ = d2 * ((q[l] >> 4) | ((qh[l] & u2) ? 16 : 0)) - m2;
        }
    }
}

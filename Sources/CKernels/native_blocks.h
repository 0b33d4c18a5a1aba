// GGUF's quantized block types read in place by the native products (native_matmul.c): their geometry, and each
// 32-value chunk of a block as unsigned codes u with, per 16-value half h, a scale A[h] and an offset B[h] such that
// the value is w = A[h] * u - B[h]. Every type then takes the same integer dot product against int8 activations.
// The facts follow llama.cpp's block layouts (shared/FORMATS.md; ggml-common.h). Internal to CKernels.
#ifndef QS_NATIVE_BLOCKS_H
#define QS_NATIVE_BLOCKS_H

#include "CKernels.h"
#include <string.h>

#ifndef ALWAYS_INLINE
#define ALWAYS_INLINE static inline __attribute__((always_inline))
#endif

// ggml type ids (GGUF's tensor types).
enum {
    QS_GGML_Q4_0 = 2, QS_GGML_Q4_1 = 3, QS_GGML_Q5_0 = 6, QS_GGML_Q5_1 = 7, QS_GGML_Q8_0 = 8,
    QS_GGML_Q2_K = 10, QS_GGML_Q3_K = 11, QS_GGML_Q4_K = 12, QS_GGML_Q5_K = 13, QS_GGML_Q6_K = 14,
};

ALWAYS_INLINE float native_half(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return qs_fp16_to_fp32(h);
}

// Values per block (32, or 256 for the K types) and bytes per block; 0 for a type the products do not read.
ALWAYS_INLINE int native_block_values(int type) {
    switch (type) {
    case QS_GGML_Q4_0: case QS_GGML_Q4_1: case QS_GGML_Q5_0: case QS_GGML_Q5_1: case QS_GGML_Q8_0: return 32;
    case QS_GGML_Q2_K: case QS_GGML_Q3_K: case QS_GGML_Q4_K: case QS_GGML_Q5_K: case QS_GGML_Q6_K: return 256;
    default: return 0;
    }
}

ALWAYS_INLINE int native_block_bytes(int type) {
    switch (type) {
    case QS_GGML_Q4_0: return 18;
    case QS_GGML_Q4_1: return 20;
    case QS_GGML_Q5_0: return 22;
    case QS_GGML_Q5_1: return 24;
    case QS_GGML_Q8_0: return 34;
    case QS_GGML_Q2_K: return 84;
    case QS_GGML_Q3_K: return 110;
    case QS_GGML_Q4_K: return 144;
    case QS_GGML_Q5_K: return 176;
    case QS_GGML_Q6_K: return 210;
    default: return 0;
    }
}

// Q8_0 is the one type with signed codes (u holds int8 values, B is 0).
ALWAYS_INLINE int native_signed_codes(int type) { return type == QS_GGML_Q8_0; }
// Whether B is ever non-zero.
ALWAYS_INLINE int native_has_offset(int type) { return type != QS_GGML_Q8_0; }

// 6-bit scale and min of sub-block j (0-7) in the 12 scale bytes of a Q4_K or Q5_K block.
ALWAYS_INLINE void native_k4_scale_min(int j, const uint8_t *s, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

// The sixteen 6-bit scales of a Q3_K block (0-63, used minus 32): low four bits from bytes 0-7, high two from 8-11.
ALWAYS_INLINE void native_q3k_scales(const uint8_t *s, int out[16]) {
    for (int i = 0; i < 16; i++) {
        const int low = i < 8 ? s[i] & 0xF : s[i - 8] >> 4;
        const int high = (s[8 + (i & 3)] >> (2 * (i >> 2))) & 3;
        out[i] = low | high << 4;
    }
}

// A [values / 16] and B [values / 16] of one block: half h covers values 16h ..< 16h + 16.
ALWAYS_INLINE void native_block_scales(int type, const uint8_t *b, float *A, float *B) {
    switch (type) {
    case QS_GGML_Q4_0: case QS_GGML_Q5_0: case QS_GGML_Q8_0: {
        const float d = native_half(b);
        const float o = type == QS_GGML_Q4_0 ? 8.0f : type == QS_GGML_Q5_0 ? 16.0f : 0.0f;
        A[0] = A[1] = d, B[0] = B[1] = o * d;
        return;
    }
    case QS_GGML_Q4_1: case QS_GGML_Q5_1: {
        const float d = native_half(b), m = native_half(b + 2);
        A[0] = A[1] = d, B[0] = B[1] = -m;
        return;
    }
    case QS_GGML_Q2_K: {
        const float d = native_half(b + 80), dmin = native_half(b + 82);
        for (int h = 0; h < 16; h++) A[h] = d * (float)(b[h] & 0xF), B[h] = dmin * (float)(b[h] >> 4);
        return;
    }
    case QS_GGML_Q3_K: {
        const float d = native_half(b + 108);
        int sc[16];
        native_q3k_scales(b + 96, sc);
        for (int h = 0; h < 16; h++) A[h] = d * (float)(sc[h] - 32), B[h] = 4.0f * A[h];
        return;
    }
    case QS_GGML_Q4_K: case QS_GGML_Q5_K: {
        const float d = native_half(b), dmin = native_half(b + 2);
        for (int j = 0; j < 8; j++) {
            int sc, m;
            native_k4_scale_min(j, b + 4, &sc, &m);
            A[2 * j] = A[2 * j + 1] = d * (float)sc;
            B[2 * j] = B[2 * j + 1] = dmin * (float)m;
        }
        return;
    }
    case QS_GGML_Q6_K: {
        const float d = native_half(b + 208);
        const int8_t *sc = (const int8_t *)(b + 192);
        // Half h of the block's 16: 128-value half h / 8, quarter (h % 8) / 2, its own scale sc[h].
        for (int h = 0; h < 16; h++) A[h] = d * (float)sc[h], B[h] = 32.0f * A[h];
        return;
    }
    }
}

// The 32 codes of chunk c (32-value chunk of the block, 0 for the 32-value types) in value order.
ALWAYS_INLINE void native_chunk_codes(int type, const uint8_t *b, int c, uint8_t u[32]) {
    switch (type) {
    case QS_GGML_Q4_0: case QS_GGML_Q4_1: {
        const uint8_t *qs = b + (type == QS_GGML_Q4_0 ? 2 : 4);
        for (int j = 0; j < 16; j++) u[j] = qs[j] & 0xF, u[j + 16] = qs[j] >> 4;
        return;
    }
    case QS_GGML_Q5_0: case QS_GGML_Q5_1: {
        const uint8_t *p = b + (type == QS_GGML_Q5_0 ? 2 : 4);
        uint32_t qh;
        memcpy(&qh, p, 4);
        const uint8_t *qs = p + 4;
        for (int j = 0; j < 16; j++) {
            u[j] = (uint8_t)((qs[j] & 0xF) | ((qh >> j) & 1) << 4);
            u[j + 16] = (uint8_t)((qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4);
        }
        return;
    }
    case QS_GGML_Q8_0: memcpy(u, b + 2, 32); return;
    case QS_GGML_Q2_K: {
        const uint8_t *q = b + 16 + 32 * (c / 4);
        const int shift = 2 * (c % 4);
        for (int l = 0; l < 32; l++) u[l] = (q[l] >> shift) & 3;
        return;
    }
    case QS_GGML_Q3_K: {
        const uint8_t *hm = b, *q = b + 32 + 32 * (c / 4);
        const int shift = 2 * (c % 4);
        for (int l = 0; l < 32; l++) u[l] = (uint8_t)(((q[l] >> shift) & 3) | ((hm[l] >> c) & 1) << 2);
        return;
    }
    case QS_GGML_Q4_K: {
        const uint8_t *q = b + 16 + 32 * (c / 2);
        for (int l = 0; l < 32; l++) u[l] = c % 2 ? q[l] >> 4 : q[l] & 0xF;
        return;
    }
    case QS_GGML_Q5_K: {
        const uint8_t *qh = b + 16, *q = b + 48 + 32 * (c / 2);
        for (int l = 0; l < 32; l++) u[l] = (uint8_t)((c % 2 ? q[l] >> 4 : q[l] & 0xF) | ((qh[l] >> c) & 1) << 4);
        return;
    }
    case QS_GGML_Q6_K: {
        const int half = c / 4, t = c % 4;
        const uint8_t *ql = b + 64 * half + 32 * (t & 1), *qh = b + 128 + 32 * half;
        for (int l = 0; l < 32; l++)
            u[l] = (uint8_t)((t < 2 ? ql[l] & 0xF : ql[l] >> 4) | ((qh[l] >> (2 * t)) & 3) << 4);
        return;
    }
    }
}

#endif

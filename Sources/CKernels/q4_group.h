// The AWQ int4 group arithmetic shared by the quantizer, the AWQ search's fake quantization and GPTQ rounding
// (internal; not part of the public header), so every one of them measures exactly what is deployed.
#ifndef QS_Q4_GROUP_H
#define QS_Q4_GROUP_H

#include "CKernels.h"
#include <math.h>

// Round to nearest, ties to even (as torch.round in AutoAWQ), for |x| < 2^22; no libm call.
static inline float round_even(float x) {
    const float magic = 12582912.0f;  // 1.5 * 2^23
    return (x + magic) - magic;
}

// One group of the AWQ int4 format: s = (max - min) / 15 rounded to fp16, z = clamp(-round(min / s), 0, 15),
// q = clamp(round(w / s) + z, 0, 15); min and max first clamped to [-clip, clip] when clip is not NULL.
typedef struct {
    uint16_t scale_half;
    float scale, zero;
} q4_group;

// The group's parameters from its minimum and maximum.
static inline q4_group q4_group_from_range(float lo, float hi, const float *clip) {
    if (clip) { lo = fmaxf(lo, -*clip); hi = fminf(hi, *clip); }
    q4_group p;
    p.scale_half = qs_fp32_to_fp16(fmaxf(hi - lo, 1e-5f) / 15.0f);
    p.scale = qs_fp16_to_fp32(p.scale_half);
    p.zero = fminf(fmaxf(-round_even(lo / p.scale), 0), 15);
    return p;
}

static inline q4_group q4_group_params(const float *x, int64_t n, const float *clip) {
    float lo = x[0], hi = x[0];
    for (int64_t j = 1; j < n; j++) { lo = fminf(lo, x[j]); hi = fmaxf(hi, x[j]); }
    return q4_group_from_range(lo, hi, clip);
}

static inline float q4_code(float w, q4_group p) {
    float v = round_even(w / p.scale) + p.zero;
    return v < 0 ? 0 : v > 15 ? 15 : v;
}

// Pack 32 codes (0..15) of one block: byte j = code[j] | code[j + 16] << 4.
static inline void pack32(uint8_t *dst, const uint8_t *codes) {
    for (int j = 0; j < 16; j++) dst[j] = (uint8_t)(codes[j] | (codes[j + 16] << 4));
}

#endif

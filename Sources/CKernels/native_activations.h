// Activation rows quantized for the native products (native_matmul.c): per 32 values for the 32-value GGUF types
// (with the int4 kernel's paired form for AVX2) and per 256 values with 16-value sums for the K types.
// Internal to CKernels.
#ifndef QS_NATIVE_ACTIVATIONS_H
#define QS_NATIVE_ACTIVATIONS_H

#include "CKernels.h"

typedef struct {
    int8_t *q32;   // [n, cols]
    float *d32;    // [n, cols / 32]
    float *s32;    // [n, cols / 32]: d32 times the sum of the block's codes
    float *g64;    // [n, cols / 64]: the paired quantizer's group sums (unused)
    // The AVX2 kernels' paired form of q32 and d32 (qactivations.h): blocks (b, b + 1) as [b 0-15, b+1 0-15,
    // b 16-31, b+1 16-31] and their scales as [d_b x4, d_b+1 x4].
    int8_t *pq;    // [n, cols]
    float *pd;     // [n, cols / 64 * 8]
    int8_t *q256;  // [n, cols] (K types; cols a multiple of 256)
    float *d256;   // [n, cols / 256]
    int16_t *bs16; // [n, cols / 16]: sums of each 16 codes of q256
} native_activations;

// Where each part lives in scratch (qs_activation_scratch_floats(n, cols) floats).
native_activations native_layout(float *scratch, int64_t n, int64_t cols);

/// x [n, cols] into a: the 32-value form when need32, the 256-value form when need256; AVX2 or the scalar code (the
/// same values); by rows over the pool when the batch is large.
void native_quantize_activations(qs_pool *pool, const native_activations *a, const float *x, int64_t n, int64_t cols,
                                 int need32, int need256, int avx2);

#endif

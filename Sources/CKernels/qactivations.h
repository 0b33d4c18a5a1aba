// Activation rows quantized for the integer kernels of qmatmul.c (internal; not part of the public header).
#ifndef QS_QACTIVATIONS_H
#define QS_QACTIVATIONS_H

#include "CKernels.h"

typedef struct {
    int8_t *q;     // [n, cols] (4-bit weights)
    int16_t *q16;  // [n, cols] (Q8 weights; then q, gsum, pq and pd are unused)
    float *d;      // [n, cols / 32] block scales
    float *gsum;   // [n, cols / group]: per weight group, the sum of its blocks' d * (sum of q) (Q4's zero points)
    // Q4 with groups of 64 or more (AVX2): each pair of blocks (b, b + 1) as 64 bytes laid out like the weights'
    // nibbles, [b: 0-15, b+1: 0-15, b: 16-31, b+1: 16-31], and its scales as 8 floats [d_b x4, d_b+1 x4].
    int8_t *pq;    // [n, cols]
    float *pd;     // [n, cols / 64 * 8]
} quantized_activations;

// x [n, cols] -> int16 per 32 values with one scale each (q16, d).
quantized_activations qs_quantize_activations_wide(float *scratch, const float *x, int64_t n, int64_t cols);
// x [n, cols] -> int8 per 32 values with one scale each (q, d); with group > 0 also the group sums of d * sum(q)
// (gsum), and with group >= 64 the paired layout (pq, pd).
quantized_activations qs_quantize_activations(float *scratch, const float *x, int64_t n, int64_t cols, int64_t group);
// The same two with AVX2, giving the same values bit for bit.
quantized_activations qs_quantize_activations_wide_avx2(float *scratch, const float *x, int64_t n, int64_t cols);
quantized_activations qs_quantize_activations_avx2(float *scratch, const float *x, int64_t n, int64_t cols,
                                                   int64_t group);

// The layouts of the two kinds in scratch for n rows, and the AVX2 quantizers for rows i0 ..< i1 of x into such a
// layout (each row is independent, so threads may fill disjoint row ranges).
quantized_activations qs_activation_layout_wide(float *scratch, int64_t n, int64_t cols);
quantized_activations qs_activation_layout(float *scratch, int64_t n, int64_t cols);
void qs_quantize_activation_rows_wide_avx2(const quantized_activations *a, const float *x, int64_t i0, int64_t i1,
                                           int64_t cols);
void qs_quantize_activation_rows_avx2(const quantized_activations *a, const float *x, int64_t i0, int64_t i1,
                                      int64_t cols, int64_t group);

#endif

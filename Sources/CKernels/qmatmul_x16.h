// The quantized products on the x16 layout with AVX-512 VNNI (qmatmul_x16.c; internal to CKernels).
#ifndef QS_QMATMUL_X16_H
#define QS_QMATMUL_X16_H

#include "qactivations.h"

// Rows r0 ..< r1 (r0 a multiple of 16) of an x16 matrix against n activation rows: int16 ones (q16 split by
// x16_split_wide, d) for Q8, int8 ones (q, d) for Q4 and NF4; with Q4's group sums (gsum), and for Q8 and NF4 the
// per-block sums of the codes (bsum [n, cols / 32]).
void qmatmul_x16(float *out, int64_t ldo, const qs_matrix *w, const quantized_activations *a, const int32_t *bsum,
                 int64_t n, int64_t r0, int64_t r1);
// The int16 activations (count values) rearranged in place into the byte planes x16_q8_tile reads, and per block
// of 32 their sum (bsum [count / 32]).
void x16_split_wide(int16_t *q16, int32_t *bsum, int64_t count);
// Rows i0 ..< i1 of int8 activations: per block, the sum of the codes (bsum [n, cols / 32]).
void x16_block_sums(int32_t *bsum, const quantized_activations *a, int64_t i0, int64_t i1, int64_t cols);
// Rows i0 ..< i1: Q4's group sums from q and d into a->gsum, as the quantizers compute them (the same floats).
void x16_group_sums(const quantized_activations *a, int64_t i0, int64_t i1, int64_t cols, int64_t group);

#endif

// The AVX2 products of Q4 (groups of 64 or more) and NF4 in pairs of blocks (qmatmul_pairs_avx2.c; internal).
#ifndef QS_QMATMUL_PAIRS_AVX2_H
#define QS_QMATMUL_PAIRS_AVX2_H

#include "qactivations.h"

// Rows r0 ..< r1 of a row-major Q4 (group >= 64) or NF4 matrix against n activation rows quantized with their
// paired layout (pq, pd) and, for Q4, group sums.
void qmatmul_pairs_avx2(float *out, int64_t ldo, const qs_matrix *w, const quantized_activations *a, int64_t n,
                        int64_t r0, int64_t r1);

#endif

// The Q8 product with AVX-512 VNNI (qmatmul_vnni.c), for qmatmul.c's dispatch. Internal to CKernels.
#ifndef QS_QMATMUL_VNNI_H
#define QS_QMATMUL_VNNI_H

#include "qactivations.h"

// Rows r0 ..< r1 of a Q8 matrix against n activation rows; bit-identical to the AVX2 product. Needs AVX-512 VNNI.
void qmatmul_q8_vnni(float *out, int64_t ldo, const qs_matrix *w, const quantized_activations *a, int64_t n,
                     int64_t r0, int64_t r1);

#endif

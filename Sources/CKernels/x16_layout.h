// The x16 layout's internal helpers (x16_layout.c).
#ifndef QS_X16_LAYOUT_H
#define QS_X16_LAYOUT_H

#include "CKernels.h"

// Row r of an x16 matrix as a one-row row-major matrix in the caller's buffers: data cols bytes, scales cols / 32
// floats, zeros cols / 32 bytes (enough for every format). For the scalar reference and dequantization.
qs_matrix x16_unpacked_row(const qs_matrix *w, int64_t r, void *data, void *scales, uint8_t *zeros);

#endif

// Constants the quantized products share (internal to CKernels).
#ifndef QS_QMATMUL_COMMON_H
#define QS_QMATMUL_COMMON_H

#include <stdint.h>

// Activation rows per chunk of the AVX2 products: they stay in L1/L2 while the weight rows pass over them.
#ifndef QS_ACTIVATION_CHUNK
#define QS_ACTIVATION_CHUNK 16
#endif

// NF4 codes scaled to int8 (round(code * 127)); the kernels multiply by absmax / 127.
static const int8_t NF4_I8[16] = {-127, -88, -67, -50, -36, -23, -12, 0, 10, 20, 31, 43, 56, 71, 92, 127};

#endif

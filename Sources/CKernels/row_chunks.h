// The rows of up to ROW_CHUNKS_MAX matrices (one product's q, k and v, or gate and up) split into chunks that the
// pool's threads claim one at a time: a thread slowed by the machine's neighbours takes fewer, and no thread waits
// long at the end. Shared by the quantized products (qmatmul.c) and the native ones (native_matmul.c).
// Internal to CKernels.
#ifndef QS_ROW_CHUNKS_H
#define QS_ROW_CHUNKS_H

#include "CKernels.h"
#include <stdatomic.h>

enum { ROW_CHUNKS_MAX = 4 };

typedef struct {
    int count;
    int64_t chunk_rows;
    int64_t first[ROW_CHUNKS_MAX + 1]; // matrix m's chunks are first[m] ..< first[m + 1]
    _Atomic int64_t next;
} row_chunks;

// About eight chunks per thread, each a multiple of 16 rows (the kernels' tiles divide 16). count <= ROW_CHUNKS_MAX.
static inline void row_chunks_init(row_chunks *c, const qs_matrix *w, int count, int threads) {
    int64_t rows = 0;
    for (int m = 0; m < count; m++) rows += w[m].rows;
    c->count = count;
    c->chunk_rows = (rows / (8 * threads) + 15) / 16 * 16;
    if (c->chunk_rows < 16) c->chunk_rows = 16;
    c->first[0] = 0;
    for (int m = 0; m < count; m++) c->first[m + 1] = c->first[m] + (w[m].rows + c->chunk_rows - 1) / c->chunk_rows;
    atomic_init(&c->next, 0);
}

// The next unclaimed chunk: matrix *m, rows *r0 ..< *r1; 0 when none is left.
static inline int row_chunks_claim(row_chunks *c, const qs_matrix *w, int *m, int64_t *r0, int64_t *r1) {
    const int64_t k = atomic_fetch_add_explicit(&c->next, 1, memory_order_relaxed);
    if (k >= c->first[c->count]) return 0;
    int i = 0;
    while (k >= c->first[i + 1]) i++;
    *m = i;
    *r0 = (k - c->first[i]) * c->chunk_rows;
    *r1 = *r0 + c->chunk_rows < w[i].rows ? *r0 + c->chunk_rows : w[i].rows;
    return 1;
}

#endif

// W @ x for quantized formats. Activations are quantized per row in blocks of 32, one float scale per block; then
// each 32-value block contributes dw * dx * (integer dot product). Weights enter the dot as signed integers: Q8 as
// stored, Q4 as code minus zero point, NF4 as its code value scaled to int8.
// Activations are int16 (dx = amax / 32639) against Q8 weights and int8 (dx = amax / 127) against the 4-bit formats.
// Against Q8, int8 activations would be the larger of the two roundings: on the default model they tripled the
// KL divergence from fp16 (0.00106 against 0.00033 with FP32 activations). Against 4-bit weights their rounding is
// lost in the weights' own. Reduction order depends on cols only.
#include "CKernels.h"
#include "qactivations.h"
#include "q8_rows.h"
#include "qmatmul_common.h"
#include "row_chunks.h"
#include "qmatmul_x16.h"
#include "qmatmul_pairs_avx2.h"
#include "x16_layout.h"
#include "simd_avx2.h"
#include <immintrin.h>
#include <math.h>
#include <string.h>

// ALWAYS_INLINE and AVX2 come from q8_rows.h.


// ---- scalar reference --------------------------------------------------------------------------

// Integer dot of one 32-block: weights as int8 values (already decoded), activations int8.
ALWAYS_INLINE int idot32(const int8_t *w, const int8_t *x) {
    int sum = 0;
    for (int j = 0; j < 32; j++) sum += w[j] * x[j];
    return sum;
}

ALWAYS_INLINE void decode32(int8_t *out, const qs_matrix *w, int64_t r, int64_t b) {
    const int64_t cols = w->cols;
    if (w->format == QS_FORMAT_Q8) {
        memcpy(out, (const int8_t *)w->data + r * cols + b * 32, 32);
        return;
    }
    const uint8_t *p = (const uint8_t *)w->data + (r * cols + b * 32) / 2;
    // Q4 codes come out minus their group's zero point, so every format is a signed int8 dot product.
    int z = w->format == QS_FORMAT_Q4 ? w->zeros[r * (cols / w->group) + b * 32 / w->group] : 0;
    for (int j = 0; j < 16; j++) {
        uint8_t lo = p[j] & 0xF, hi = p[j] >> 4;
        out[j] = w->format == QS_FORMAT_NF4 ? NF4_I8[lo] : (int8_t)(lo - z);
        out[j + 16] = w->format == QS_FORMAT_NF4 ? NF4_I8[hi] : (int8_t)(hi - z);
    }
}

typedef float (*half_to_float)(uint16_t);

// The float weight scale of block b (32 values) of row r, in the units the integer dot uses.
ALWAYS_INLINE float block_scale(const qs_matrix *w, int64_t r, int64_t b, half_to_float half) {
    const int64_t cols = w->cols;
    switch (w->format) {
    case QS_FORMAT_Q8: return half(((const uint16_t *)w->scales)[r * (cols / 32) + b]);
    case QS_FORMAT_Q4: return half(((const uint16_t *)w->scales)[r * (cols / w->group) + b * 32 / w->group]);
    default: return ((const float *)w->scales)[r * (cols / 64) + b / 2] * (1.0f / 127.0f);
    }
}

// Against Q8 weights: the activations are int16 (32 products of at most 127 * 32639 fit an int).
ALWAYS_INLINE int idot32_wide(const int8_t *w, const int16_t *x) {
    int sum = 0;
    for (int j = 0; j < 32; j++) sum += w[j] * x[j];
    return sum;
}

static void qmatmul_scalar(float *out, int64_t ldo, const qs_matrix *w, const quantized_activations *a, int64_t n,
                           int64_t r0, int64_t r1) {
    const int64_t cols = w->cols, blocks = cols / 32;
    int8_t wb[32];
    for (int64_t r = r0; r < r1; r++) {
        for (int64_t i = 0; i < n; i++) {
            float lanes[8] = {0};
            for (int64_t b = 0; b < blocks; b++) {
                decode32(wb, w, r, b);
                int dot = w->format == QS_FORMAT_Q8 ? idot32_wide(wb, a->q16 + i * cols + b * 32)
                                                    : idot32(wb, a->q + i * cols + b * 32);
                lanes[b % 8] += block_scale(w, r, b, qs_fp16_to_fp32) * a->d[i * blocks + b] * (float)dot;
            }
            float sum = 0;
            for (int l = 0; l < 8; l++) sum += lanes[l];
            out[i * ldo + r] = sum;
        }
    }
}

// ---- AVX2 --------------------------------------------------------------------------------------


// Block b of a 4-bit row's weights as int8: NF4 as its code scaled to int8, Q4 as its unsigned code (0-15; the
// zero points are taken off once per group, after the loop, through the activations' group sums).
AVX2 ALWAYS_INLINE __m256i block_weights(qs_format format, const uint8_t *wrow, int64_t b, __m256i nf4_table) {
    __m128i packed = _mm_loadu_si128((const __m128i *)(wrow + b * 16));
    __m256i codes = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(packed, 4), packed), _mm256_set1_epi8(0x0F));
    return format == QS_FORMAT_NF4 ? _mm256_shuffle_epi8(nf4_table, codes) : codes;
}

// acc += (w . x as int32 lanes) * scale. maddubs multiplies unsigned by signed bytes: Q4 codes go in as they are;
// NF4's signed weights go in as |w| against x carrying w's sign (wabs precomputed once per weight block).
AVX2 ALWAYS_INLINE __m256 block_dot(qs_format format, __m256i wabs, __m256i wv, const int8_t *x, float scale,
                                    __m256 acc) {
    __m256i xv = _mm256_loadu_si256((const __m256i *)x);
    __m256i pairs = format == QS_FORMAT_Q4 ? _mm256_maddubs_epi16(wv, xv)
                                           : _mm256_maddubs_epi16(wabs, _mm256_sign_epi8(xv, wv));
    __m256i p = _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(scale), acc);
}

AVX2 ALWAYS_INLINE __m256i block_abs(qs_format format, __m256i w) {
    return format == QS_FORMAT_Q4 ? w : _mm256_sign_epi8(w, w);
}

// One 4-bit weight row against COUNT (1 or 4) activation rows: each 32-value block of weights is decoded once and used
// for every activation row. Per activation row the reduction order is the same whatever COUNT is (even blocks
// into acc0, odd into acc1, then Q4's zero-point term), so results never depend on how rows are grouped.
// wz [groups]: Q4's scale times zero point per group.
#define QROW_AVX2(COUNT)                                                                                          \
    AVX2 ALWAYS_INLINE void qrow_avx2_##COUNT(float *out, int64_t ldo, qs_format format, const uint8_t *wrow,    \
                                              const float *ws, const float *wz, const quantized_activations *a,   \
                                              int64_t cols, int64_t groups, int64_t i0, int64_t r, int gshift,    \
                                              __m256i nf4_table) {                                                \
        const int64_t blocks = cols / 32;                                                                         \
        const int8_t *x = a->q + i0 * cols;                                                                       \
        const float *dx = a->d + i0 * blocks;                                                                     \
        __m256 acc0[COUNT], acc1[COUNT];                                                                          \
        for (int k = 0; k < COUNT; k++) acc0[k] = acc1[k] = _mm256_setzero_ps();                                  \
        int64_t b = 0;                                                                                            \
        for (; b + 2 <= blocks; b += 2) {                                                                         \
            __m256i w0 = block_weights(format, wrow, b, nf4_table);                                               \
            __m256i w1 = block_weights(format, wrow, b + 1, nf4_table);                                           \
            __m256i a0 = block_abs(format, w0), a1 = block_abs(format, w1);                                       \
            for (int k = 0; k < COUNT; k++) {                                                                     \
                acc0[k] = block_dot(format, a0, w0, x + k * cols + b * 32, ws[b >> gshift] * dx[k * blocks + b],  \
                                    acc0[k]);                                                                     \
                acc1[k] = block_dot(format, a1, w1, x + k * cols + b * 32 + 32,                                   \
                                    ws[(b + 1) >> gshift] * dx[k * blocks + b + 1], acc1[k]);                     \
            }                                                                                                     \
        }                                                                                                         \
        if (b < blocks) {                                                                                         \
            __m256i w0 = block_weights(format, wrow, b, nf4_table);                                               \
            __m256i a0 = block_abs(format, w0);                                                                   \
            for (int k = 0; k < COUNT; k++)                                                                       \
                acc0[k] = block_dot(format, a0, w0, x + k * cols + b * 32, ws[b >> gshift] * dx[k * blocks + b],  \
                                    acc0[k]);                                                                     \
        }                                                                                                         \
        for (int k = 0; k < COUNT; k++) {                                                                         \
            float sum = qs_hsum_avx2(_mm256_add_ps(acc0[k], acc1[k]));                                            \
            if (format == QS_FORMAT_Q4) {                                                                         \
                const float *gs = a->gsum + (i0 + k) * groups;                                                    \
                for (int64_t g = 0; g < groups; g++) sum -= wz[g] * gs[g];                                        \
            }                                                                                                     \
            out[(i0 + k) * ldo + r] = sum;                                                                        \
        }                                                                                                         \
    }
QROW_AVX2(1)
QROW_AVX2(4)

QROW_WIDE(qrow_wide_avx2, AVX2, block_dot_wide, 1)
QROW_WIDE(qrow_wide_avx2, AVX2, block_dot_wide, 4)

AVX2 ALWAYS_INLINE void qmatmul_avx2_format(float *out, int64_t ldo, const qs_matrix *w, const quantized_activations *a,
                                            int64_t n, int64_t r0, int64_t r1, qs_format format) {
    const int64_t cols = w->cols;
    const __m256i nf4_table = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)NF4_I8));
    // Scales (and Q4 zero points) of a row, one per group of 32 << gshift values, as floats.
    const int64_t group = format == QS_FORMAT_Q8 ? 32 : format == QS_FORMAT_NF4 ? 64 : w->group;
    const int gshift = __builtin_ctzll((unsigned long long)(group / 32));
    const int64_t groups = cols / group;
    float ws[groups + 8], wz[groups + 8];
    const int64_t bytes_per_row = format == QS_FORMAT_Q8 ? cols : cols / 2;
    // Activation rows in chunks that stay in L1/L2 while the weight rows pass over them (a row's result is the same
    // whichever chunk it is in).
    for (int64_t c0 = 0; c0 < n; c0 += QS_ACTIVATION_CHUNK) {
        const int64_t c1 = c0 + QS_ACTIVATION_CHUNK < n ? c0 + QS_ACTIVATION_CHUNK : n;
        for (int64_t r = r0; r < r1; r++) {
            if (format == QS_FORMAT_NF4) {
                const float *amax = (const float *)w->scales + r * groups;
                for (int64_t g = 0; g < groups; g++) ws[g] = amax[g] * (1.0f / 127.0f);
            } else {
                scales_to_f32(ws, (const uint16_t *)w->scales + r * groups, groups);
                if (format == QS_FORMAT_Q4)
                    for (int64_t g = 0; g < groups; g++) wz[g] = ws[g] * (float)w->zeros[r * groups + g];
            }
            const uint8_t *wrow = (const uint8_t *)w->data + r * bytes_per_row;
            int64_t i = c0;
            if (format == QS_FORMAT_Q8) {
                for (; i + 4 <= c1; i += 4) qrow_wide_avx2_4(out, ldo, (const int8_t *)wrow, ws, a, cols, i, r);
                for (; i < c1; i++) qrow_wide_avx2_1(out, ldo, (const int8_t *)wrow, ws, a, cols, i, r);
                continue;
            }
            for (; i + 4 <= c1; i += 4) qrow_avx2_4(out, ldo, format, wrow, ws, wz, a, cols, groups, i, r, gshift, nf4_table);
            for (; i < c1; i++) qrow_avx2_1(out, ldo, format, wrow, ws, wz, a, cols, groups, i, r, gshift, nf4_table);
        }
    }
}

AVX2 static void qmatmul_avx2(float *out, int64_t ldo, const qs_matrix *w, const quantized_activations *a, int64_t n,
                              int64_t r0, int64_t r1) {
    if ((w->format == QS_FORMAT_Q4 && w->group >= 64) || w->format == QS_FORMAT_NF4) {
        qmatmul_pairs_avx2(out, ldo, w, a, n, r0, r1);
        return;
    }
    switch (w->format) {
    case QS_FORMAT_Q8: qmatmul_avx2_format(out, ldo, w, a, n, r0, r1, QS_FORMAT_Q8); break;
    case QS_FORMAT_Q4: qmatmul_avx2_format(out, ldo, w, a, n, r0, r1, QS_FORMAT_Q4); break;
    default: qmatmul_avx2_format(out, ldo, w, a, n, r0, r1, QS_FORMAT_NF4); break;
    }
}

// The scalar reference on an x16 matrix: each row unpacked to the row-major layout, then qmatmul_scalar.
static void x16_matmul_scalar(float *out, int64_t ldo, const qs_matrix *w, const float *x, int64_t n, float *scratch) {
    const int64_t cols = w->cols;
    const quantized_activations a = w->format == QS_FORMAT_Q8 ? qs_quantize_activations_wide(scratch, x, n, cols)
                                                              : qs_quantize_activations(scratch, x, n, cols, 0);
    uint8_t data[cols], zeros[cols / 32];
    float scales[cols / 32];
    for (int64_t r = 0; r < w->rows; r++) {
        const qs_matrix row = x16_unpacked_row(w, r, data, scales, zeros);
        qmatmul_scalar(out + r, ldo, &row, &a, n, 0, 1);
    }
}

// ---- dispatch ----------------------------------------------------------------------------------

enum { QS_MATMUL_MAX = ROW_CHUNKS_MAX };

// The rows of up to QS_MATMUL_MAX matrices (one format, one input) in chunks the pool's threads claim (row_chunks.h).
typedef struct {
    qs_variant variant;
    const qs_matrix *w;
    float *const *out;
    const int64_t *ldo;
    quantized_activations a;
    const int32_t *bsum; // x16 layout, Q8 and NF4: per activation row and block, the sum of its codes
    int64_t n;
    row_chunks chunks;
} qmatmul_job;

static void qmatmul_task(void *ctx, int index, int count) {
    (void)index;
    (void)count;
    qmatmul_job *job = ctx;
    int m;
    int64_t r0, r1;
    while (row_chunks_claim(&job->chunks, job->w, &m, &r0, &r1)) {
        const qs_matrix *w = &job->w[m];
        if (w->layout == QS_LAYOUT_X16)
            qmatmul_x16(job->out[m], job->ldo[m], w, &job->a, job->bsum, job->n, r0, r1);
        else if (job->variant >= QS_VARIANT_AVX2) qmatmul_avx2(job->out[m], job->ldo[m], w, &job->a, job->n, r0, r1);
        else qmatmul_scalar(job->out[m], job->ldo[m], w, &job->a, job->n, r0, r1);
    }
}

// Quantizing the activations (and the x16 kernels' extra sums), by rows over the pool when the batch is large.
typedef struct {
    const float *x;
    quantized_activations a;
    int32_t *bsum;
    int64_t n, cols, group;
    qs_format format;
    int x16;
} prepare_job;

static void prepare_rows(const prepare_job *p, int64_t i0, int64_t i1) {
    if (p->format == QS_FORMAT_Q8) {
        qs_quantize_activation_rows_wide_avx2(&p->a, p->x, i0, i1, p->cols);
        if (p->x16) x16_split_wide(p->a.q16 + i0 * p->cols, p->bsum + i0 * (p->cols / 32), (i1 - i0) * p->cols);
        return;
    }
    // The AVX2 kernels want the paired layout for Q4 with groups of 64 or more and for NF4 (64), and Q4's zero points
    // the activations' sums per weight group; the x16 kernels want neither (their Q4 group sums come below).
    const int64_t group_sums = p->x16 ? 0 : p->format == QS_FORMAT_Q4 ? p->group : 64;
    qs_quantize_activation_rows_avx2(&p->a, p->x, i0, i1, p->cols, group_sums);
    if (p->x16 && p->format == QS_FORMAT_Q4) x16_group_sums(&p->a, i0, i1, p->cols, p->group);
    if (p->x16 && p->format == QS_FORMAT_NF4) x16_block_sums(p->bsum, &p->a, i0, i1, p->cols);
}

static void prepare_task(void *ctx, int index, int count) {
    const prepare_job *p = ctx;
    const int64_t i0 = p->n * index / count, i1 = p->n * (index + 1) / count;
    if (i0 < i1) prepare_rows(p, i0, i1);
}

static void float_matmul(qs_pool *pool, qs_variant v, float *out, int64_t ldo, const qs_matrix *w, const float *x,
                         int64_t n) {
    if (w->format == QS_FORMAT_F32) qs_gemv_f32(pool, v, out, ldo, w->data, x, n, w->rows, w->cols);
    else qs_gemv_f16(pool, v, out, ldo, w->data, x, n, w->rows, w->cols);
}

void qs_matmul_many(qs_pool *pool, qs_variant v, int count, float *const *out, const int64_t *ldo, const qs_matrix *w,
                    const float *x, int64_t n, float *scratch) {
    if (!qs_variant_supported(v)) v = qs_best_variant();
    int same = count <= QS_MATMUL_MAX;
    for (int m = 1; m < count; m++)
        same = same && w[m].format == w[0].format && w[m].cols == w[0].cols && w[m].group == w[0].group &&
               w[m].layout == w[0].layout;
    if (!same || w[0].format == QS_FORMAT_F32 || w[0].format == QS_FORMAT_F16) {
        for (int m = 0; m < count; m++) {
            if (w[m].format == QS_FORMAT_F32 || w[m].format == QS_FORMAT_F16) float_matmul(pool, v, out[m], ldo[m], &w[m], x, n);
            else qs_matmul_many(pool, v, 1, &out[m], &ldo[m], &w[m], x, n, scratch);
        }
        return;
    }
    if (w[0].format == QS_FORMAT_NATIVE) {
        qs_native_matmul_many(pool, v, count, out, ldo, w, x, n, scratch);
        return;
    }
    if (w[0].layout == QS_LAYOUT_X16 && v < QS_VARIANT_VNNI) {
        // The x16 layout under another variant (tests comparing variants): the scalar reference, row by row.
        for (int m = 0; m < count; m++) x16_matmul_scalar(out[m], ldo[m], &w[m], x, n, scratch);
        return;
    }
    const int64_t cols = w[0].cols;
    const int threads = qs_pool_size(pool);
    prepare_job prep = {.x = x, .n = n, .cols = cols, .format = w[0].format, .x16 = w[0].layout == QS_LAYOUT_X16,
                        .group = w[0].group};
    if (v >= QS_VARIANT_AVX2) {
        prep.a = w[0].format == QS_FORMAT_Q8 ? qs_activation_layout_wide(scratch, n, cols)
                                             : qs_activation_layout(scratch, n, cols);
        // The x16 kernels' block sums: for NF4 in the paired layout's room (n * cols bytes, unused on that path), for
        // Q8 after the scales (the scratch holds at least n * cols / 32 floats more than the int16 layout needs).
        if (prep.x16 && w[0].format == QS_FORMAT_NF4) prep.bsum = (int32_t *)prep.a.pq;
        if (prep.x16 && w[0].format == QS_FORMAT_Q8) prep.bsum = (int32_t *)(prep.a.d + n * (cols / 32));
        if (n * cols >= 32768 && threads > 1) qs_pool_run(pool, prepare_task, &prep);
        else prepare_rows(&prep, 0, n);
    } else {
        prep.a = w[0].format == QS_FORMAT_Q8 ? qs_quantize_activations_wide(scratch, x, n, cols)
                                             : qs_quantize_activations(scratch, x, n, cols, 0);
    }
    const quantized_activations a = prep.a;
    const int32_t *bsum = prep.bsum;
    qmatmul_job job = {.variant = v, .w = w, .out = out, .ldo = ldo, .a = a, .bsum = bsum, .n = n};
    row_chunks_init(&job.chunks, w, count, threads);
    int64_t rows = 0;
    for (int m = 0; m < count; m++) rows += w[m].rows;
    if (rows * cols * n < 32768 || threads == 1) qmatmul_task(&job, 0, 1);
    else qs_pool_run(pool, qmatmul_task, &job);
}

void qs_matmul(qs_pool *pool, qs_variant v, float *out, int64_t ldo, const qs_matrix *w, const float *x, int64_t n,
               float *scratch) {
    qs_matmul_many(pool, v, 1, &out, &ldo, w, x, n, scratch);
}

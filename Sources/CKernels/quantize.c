// Quantizers (FP32 -> Q8, Q4, NF4) and row dequantizers (any format -> FP32). Run at load time and for
// prefill tiles; the formats are described in CKernels.h.
#include "CKernels.h"
#include "x16_layout.h"
#include "q4_group.h"
#include <math.h>
#include <string.h>

const float QS_NF4_CODE[16] = {
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f, -0.28444138169288635f,
    -0.18477343022823334f, -0.09105003625154495f, 0.0f, 0.07958029955625534f, 0.16093020141124725f,
    0.24611230194568634f, 0.33791524171829224f, 0.44070982933044434f, 0.5626170039176941f,
    0.7229568362236023f, 1.0f,
};

int64_t qs_matrix_data_bytes(qs_format f, int64_t rows, int64_t cols) {
    switch (f) {
    case QS_FORMAT_F32: return rows * cols * 4;
    case QS_FORMAT_F16: return rows * cols * 2;
    case QS_FORMAT_Q8: return rows * cols;
    case QS_FORMAT_Q4: case QS_FORMAT_NF4: return rows * cols / 2;
    case QS_FORMAT_NATIVE: return 0; // by type: qs_native_row_bytes
    }
    return 0;
}

int64_t qs_matrix_scale_bytes(qs_format f, int64_t rows, int64_t cols, int64_t group) {
    switch (f) {
    case QS_FORMAT_Q8: return rows * (cols / 32) * 2;
    case QS_FORMAT_Q4: return rows * (cols / group) * 2;
    case QS_FORMAT_NF4: return rows * (cols / 64) * 4;
    default: return 0;
    }
}

int64_t qs_matrix_zero_bytes(qs_format f, int64_t rows, int64_t cols, int64_t group) {
    return f == QS_FORMAT_Q4 ? rows * (cols / group) : 0;
}

static inline void unpack32(uint8_t *codes, const uint8_t *src) {
    for (int j = 0; j < 16; j++) {
        codes[j] = src[j] & 0xF;
        codes[j + 16] = src[j] >> 4;
    }
}

static void quantize_q8_scalar(int8_t *q, uint16_t *scales, const float *src, int64_t rows, int64_t cols) {
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t b = 0; b < cols / 32; b++) {
            const float *x = src + r * cols + b * 32;
            float amax = 0;
            for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
            uint16_t h = qs_fp32_to_fp16(amax / 127.0f);
            scales[r * (cols / 32) + b] = h;
            float d = qs_fp16_to_fp32(h);  // quantize against the scale as stored
            float inv = d > 0 ? 1.0f / d : 0;
            for (int j = 0; j < 32; j++) {
                float v = roundf(x[j] * inv);
                q[r * cols + b * 32 + j] = (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
            }
        }
    }
}

static void quantize_q4_scalar(uint8_t *q, uint16_t *scales, uint8_t *zeros, const float *src, int64_t rows,
                               int64_t cols, int64_t group, const float *clip) {
    int64_t groups = cols / group;
    uint8_t codes[32];
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t g = 0; g < groups; g++) {
            const float *x = src + r * cols + g * group;
            q4_group p = q4_group_params(x, group, clip ? clip + r * groups + g : NULL);
            scales[r * groups + g] = p.scale_half;
            zeros[r * groups + g] = (uint8_t)p.zero;
            for (int64_t b = 0; b < group / 32; b++) {
                for (int j = 0; j < 32; j++) codes[j] = (uint8_t)q4_code(x[b * 32 + j], p);
                pack32(q + (r * cols + g * group + b * 32) / 2, codes);
            }
        }
    }
}

// Index of the nearest NF4 code to v in [-1, 1]: the code table's midpoints split the line.
static inline uint8_t nf4_nearest(float v) {
    uint8_t best = 0;
    for (int i = 1; i < 16; i++)
        if (v > 0.5f * (QS_NF4_CODE[i - 1] + QS_NF4_CODE[i])) best = (uint8_t)i;
    return best;
}

static void quantize_nf4_scalar(uint8_t *q, float *absmax, const float *src, int64_t rows, int64_t cols) {
    uint8_t codes[32];
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t b = 0; b < cols / 64; b++) {
            const float *x = src + r * cols + b * 64;
            float amax = 0;
            for (int j = 0; j < 64; j++) amax = fmaxf(amax, fabsf(x[j]));
            absmax[r * (cols / 64) + b] = amax;
            float inv = amax > 0 ? 1.0f / amax : 0;
            for (int half = 0; half < 2; half++) {
                for (int j = 0; j < 32; j++) codes[j] = nf4_nearest(x[half * 32 + j] * inv);
                pack32(q + (r * cols + b * 64 + half * 32) / 2, codes);
            }
        }
    }
}

// AVX2 versions (quantize_avx2.c): the same results, several times faster.
void qs_quantize_q8_avx2(int8_t *q, uint16_t *scales, const float *src, int64_t rows, int64_t cols);
void qs_quantize_q4_avx2(uint8_t *q, uint16_t *scales, uint8_t *zeros, const float *src, int64_t rows, int64_t cols,
                         int64_t group, const float *clip);
void qs_quantize_nf4_avx2(uint8_t *q, float *absmax, const float *src, int64_t rows, int64_t cols);

void qs_quantize_q8_v(qs_variant v, int8_t *q, uint16_t *scales, const float *src, int64_t rows, int64_t cols) {
    if (v >= QS_VARIANT_AVX2 && qs_variant_supported(QS_VARIANT_AVX2)) qs_quantize_q8_avx2(q, scales, src, rows, cols);
    else quantize_q8_scalar(q, scales, src, rows, cols);
}

void qs_quantize_q4_v(qs_variant v, uint8_t *q, uint16_t *scales, uint8_t *zeros, const float *src, int64_t rows,
                      int64_t cols, int64_t group, const float *clip) {
    // The AVX2 version reads groups 8 values at a time.
    if (v >= QS_VARIANT_AVX2 && qs_variant_supported(QS_VARIANT_AVX2) && group % 32 == 0)
        qs_quantize_q4_avx2(q, scales, zeros, src, rows, cols, group, clip);
    else quantize_q4_scalar(q, scales, zeros, src, rows, cols, group, clip);
}

void qs_quantize_nf4_v(qs_variant v, uint8_t *q, float *absmax, const float *src, int64_t rows, int64_t cols) {
    if (v >= QS_VARIANT_AVX2 && qs_variant_supported(QS_VARIANT_AVX2)) qs_quantize_nf4_avx2(q, absmax, src, rows, cols);
    else quantize_nf4_scalar(q, absmax, src, rows, cols);
}

void qs_quantize_q8(int8_t *q, uint16_t *scales, const float *src, int64_t rows, int64_t cols) {
    qs_quantize_q8_v(qs_best_variant(), q, scales, src, rows, cols);
}

void qs_quantize_q4(uint8_t *q, uint16_t *scales, uint8_t *zeros, const float *src, int64_t rows, int64_t cols,
                    int64_t group, const float *clip) {
    qs_quantize_q4_v(qs_best_variant(), q, scales, zeros, src, rows, cols, group, clip);
}

void qs_quantize_nf4(uint8_t *q, float *absmax, const float *src, int64_t rows, int64_t cols) {
    qs_quantize_nf4_v(qs_best_variant(), q, absmax, src, rows, cols);
}

void qs_matrix_dequantize_rows(float *dst, const qs_matrix *w, int64_t r0, int64_t r1) {
    int64_t cols = w->cols;
    switch (w->format) {
    case QS_FORMAT_F32:
        memcpy(dst, (const float *)w->data + r0 * cols, (size_t)((r1 - r0) * cols) * 4);
        return;
    case QS_FORMAT_F16:
        qs_convert_fp16_to_fp32(dst, (const uint16_t *)w->data + r0 * cols, (r1 - r0) * cols);
        return;
    case QS_FORMAT_NATIVE:
        qs_native_dequantize_rows(dst, w, r0, r1);
        return;
    default: break;
    }
    if (w->layout == QS_LAYOUT_X16) {
        // Row by row through the row-major layout.
        uint8_t data[cols], zeros[cols / 32];
        float scales[cols / 32];
        for (int64_t r = r0; r < r1; r++, dst += cols) {
            const qs_matrix row = x16_unpacked_row(w, r, data, scales, zeros);
            qs_matrix_dequantize_rows(dst, &row, 0, 1);
        }
        return;
    }
    uint8_t codes[32];
    for (int64_t r = r0; r < r1; r++, dst += cols) {
        for (int64_t b = 0; b < cols / 32; b++) {
            float *y = dst + b * 32;
            if (w->format == QS_FORMAT_Q8) {
                const int8_t *q = (const int8_t *)w->data + r * cols + b * 32;
                float d = qs_fp16_to_fp32(((const uint16_t *)w->scales)[r * (cols / 32) + b]);
                for (int j = 0; j < 32; j++) y[j] = d * q[j];
                continue;
            }
            unpack32(codes, (const uint8_t *)w->data + (r * cols + b * 32) / 2);
            if (w->format == QS_FORMAT_Q4) {
                int64_t g = r * (cols / w->group) + b * 32 / w->group;
                float s = qs_fp16_to_fp32(((const uint16_t *)w->scales)[g]);
                float z = w->zeros[g];
                for (int j = 0; j < 32; j++) y[j] = ((float)codes[j] - z) * s;
            } else {
                float a = ((const float *)w->scales)[r * (cols / 64) + b / 2];
                for (int j = 0; j < 32; j++) y[j] = QS_NF4_CODE[codes[j]] * a;
            }
        }
    }
}

void qs_fake_quantize_q4_avx2(float *dst, const float *src, const float *col_scale, int64_t rows, int64_t cols,
                              int64_t group, const float *clip);

typedef struct {
    qs_variant variant;
    float *dst;
    const float *src, *col_scale, *clip;
    int64_t rows, cols, group;
} fake_quantize_job;

static void fake_quantize_rows(const fake_quantize_job *job, int64_t r0, int64_t r1) {
    const int64_t cols = job->cols, group = job->group, groups = cols / group;
    float buffer[1024];
    for (int64_t r = r0; r < r1; r++) {
        for (int64_t g = 0; g < groups; g++) {
            const float *x = job->src + r * cols + g * group;
            const float *s = job->col_scale ? job->col_scale + g * group : NULL;
            float *y = job->dst + r * cols + g * group;
            for (int64_t j = 0; j < group; j++) buffer[j] = s ? x[j] * s[j] : x[j];
            q4_group p = q4_group_params(buffer, group, job->clip ? job->clip + r * groups + g : NULL);
            for (int64_t j = 0; j < group; j++) buffer[j] = (q4_code(buffer[j], p) - p.zero) * p.scale;
            if (s) for (int64_t j = 0; j < group; j++) y[j] = buffer[j] / s[j];
            else for (int64_t j = 0; j < group; j++) y[j] = buffer[j];
        }
    }
}

static void fake_quantize_task(void *ctx, int index, int count) {
    const fake_quantize_job *job = ctx;
    int64_t r0 = job->rows * index / count, r1 = job->rows * (index + 1) / count;
    if (job->variant >= QS_VARIANT_AVX2)
        qs_fake_quantize_q4_avx2(job->dst + r0 * job->cols, job->src + r0 * job->cols, job->col_scale, r1 - r0,
                                 job->cols, job->group, job->clip ? job->clip + r0 * (job->cols / job->group) : NULL);
    else fake_quantize_rows(job, r0, r1);
}

void qs_fake_quantize_q4_v(qs_pool *pool, qs_variant v, float *dst, const float *src, const float *col_scale,
                           int64_t rows, int64_t cols, int64_t group, const float *clip) {
    // The AVX2 version reads groups 8 values at a time, into a buffer of 1024.
    if (!(qs_variant_supported(v) && group % 8 == 0 && group <= 1024)) v = QS_VARIANT_SCALAR;
    fake_quantize_job job = {v, dst, src, col_scale, clip, rows, cols, group <= 1024 ? group : 1024};
    qs_pool_run(pool, fake_quantize_task, &job);
}

void qs_fake_quantize_q4(qs_pool *pool, float *dst, const float *src, const float *col_scale, int64_t rows,
                         int64_t cols, int64_t group, const float *clip) {
    qs_fake_quantize_q4_v(pool, qs_best_variant(), dst, src, col_scale, rows, cols, group, clip);
}

double qs_squared_error(const float *a, const float *b, int64_t n) {
    // Eight float lanes over chunks of 1024 (vectorisable), the chunks accumulated in double.
    double total = 0;
    for (int64_t i = 0; i < n; i += 1024) {
        int64_t end = i + 1024 < n ? i + 1024 : n;
        float lanes[8] = {0};
        int64_t j = i;
        for (; j + 8 <= end; j += 8)
            for (int l = 0; l < 8; l++) { float d = a[j + l] - b[j + l]; lanes[l] += d * d; }
        for (; j < end; j++) { float d = a[j] - b[j]; lanes[0] += d * d; }
        for (int l = 0; l < 8; l++) total += lanes[l];
    }
    return total;
}

void qs_row_dots(float *out, int64_t out_stride, const float *a, int64_t lda, const float *b, int64_t ldb,
                 int64_t rows, int64_t len) {
    for (int64_t r = 0; r < rows; r++) {
        const float *x = a + r * lda, *y = b + r * ldb;
        float lanes[8] = {0};
        int64_t j = 0;
        for (; j + 8 <= len; j += 8)
            for (int l = 0; l < 8; l++) lanes[l] += x[j + l] * y[j + l];
        for (; j < len; j++) lanes[0] += x[j] * y[j];
        float sum = 0;
        for (int l = 0; l < 8; l++) sum += lanes[l];
        out[r * out_stride] = sum;
    }
}

// W @ x for quantized formats. Activations are quantized per row to int8 in blocks of 32 (scale dx = amax / 127),
// then each 32-value block contributes dw * dx * (integer dot product). Reduction order depends on cols only.
#include "CKernels.h"
#include <immintrin.h>
#include <math.h>
#include <string.h>

#define ALWAYS_INLINE static inline __attribute__((always_inline))

// NF4 codes scaled to int8 (round(code * 127)); the kernels multiply by absmax / 127.
static const int8_t NF4_I8[16] = {-127, -88, -67, -50, -36, -23, -12, 0, 10, 20, 31, 43, 56, 71, 92, 127};

// ---- activations -------------------------------------------------------------------------------

typedef struct {
    int8_t *q;     // [n, cols]
    float *d;      // [n, cols / 32] block scales
    float *s;      // [n, cols / 32] d * sum(q) of each block (for Q4 zero points)
} quantized_activations;

int64_t qs_activation_scratch_floats(int64_t n, int64_t cols) {
    return n * cols / 4 + 2 * n * (cols / 32) + 64;
}

static quantized_activations quantize_activations(float *scratch, const float *x, int64_t n, int64_t cols) {
    quantized_activations a = {(int8_t *)scratch, scratch + n * cols / 4, scratch + n * cols / 4 + n * (cols / 32)};
    for (int64_t i = 0; i < n * (cols / 32); i++) {
        const float *xb = x + i * 32;
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(xb[j]));
        float d = amax / 127.0f, inv = amax > 0 ? 127.0f / amax : 0;
        int sum = 0;
        for (int j = 0; j < 32; j++) {
            int v = (int)lrintf(xb[j] * inv);
            a.q[i * 32 + j] = (int8_t)v;
            sum += v;
        }
        a.d[i] = d;
        a.s[i] = d * (float)sum;
    }
    return a;
}

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
    for (int j = 0; j < 16; j++) {
        uint8_t lo = p[j] & 0xF, hi = p[j] >> 4;
        out[j] = w->format == QS_FORMAT_NF4 ? NF4_I8[lo] : (int8_t)lo;
        out[j + 16] = w->format == QS_FORMAT_NF4 ? NF4_I8[hi] : (int8_t)hi;
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

// Q4 zero-point correction of row r against activation row i: sum over groups of s * z * (sum of x in the group).
ALWAYS_INLINE float q4_zero_term(const qs_matrix *w, const quantized_activations *a, int64_t r, int64_t i,
                                 half_to_float half) {
    const int64_t cols = w->cols, groups = cols / w->group, per = w->group / 32;
    float total = 0;
    for (int64_t g = 0; g < groups; g++) {
        float sx = 0;
        for (int64_t b = 0; b < per; b++) sx += a->s[i * (cols / 32) + g * per + b];
        total += half(((const uint16_t *)w->scales)[r * groups + g]) * (float)w->zeros[r * groups + g] * sx;
    }
    return total;
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
                lanes[b % 8] += block_scale(w, r, b, qs_fp16_to_fp32) * a->d[i * blocks + b] * (float)idot32(wb, a->q + i * cols + b * 32);
            }
            float sum = 0;
            for (int l = 0; l < 8; l++) sum += lanes[l];
            if (w->format == QS_FORMAT_Q4) sum -= q4_zero_term(w, a, r, i, qs_fp16_to_fp32);
            out[i * ldo + r] = sum;
        }
    }
}

// ---- AVX2 --------------------------------------------------------------------------------------

#define AVX2 __attribute__((target("avx2,fma,f16c")))

AVX2 static inline float half_f16c(uint16_t h) { return _cvtsh_ss(h); }

// 32 weights of block b of row r as int8 in a register.
AVX2 ALWAYS_INLINE __m256i load_weights32(const qs_matrix *w, int64_t r, int64_t b, __m256i nf4_table) {
    const int64_t cols = w->cols;
    if (w->format == QS_FORMAT_Q8) return _mm256_loadu_si256((const __m256i *)((const int8_t *)w->data + r * cols + b * 32));
    __m128i packed = _mm_loadu_si128((const __m128i *)((const uint8_t *)w->data + (r * cols + b * 32) / 2));
    __m256i both = _mm256_set_m128i(_mm_srli_epi16(packed, 4), packed);
    __m256i codes = _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
    return w->format == QS_FORMAT_NF4 ? _mm256_shuffle_epi8(nf4_table, codes) : codes;
}

// Signed int8 x int8 dot of 32 pairs as 8 int32 lanes (|w| <= 127, so pair sums stay within int16).
AVX2 ALWAYS_INLINE __m256i dot_i8(__m256i w, __m256i x) {
    __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

// Unsigned 4-bit codes (0..15) x int8.
AVX2 ALWAYS_INLINE __m256i dot_u4(__m256i w, __m256i x) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), _mm256_set1_epi16(1));
}

AVX2 ALWAYS_INLINE float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX2 static void qmatmul_avx2(float *out, int64_t ldo, const qs_matrix *w, const quantized_activations *a, int64_t n,
                              int64_t r0, int64_t r1) {
    const int64_t cols = w->cols, blocks = cols / 32;
    const __m256i nf4_table = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)NF4_I8));
    const int is_q4 = w->format == QS_FORMAT_Q4;
    for (int64_t r = r0; r < r1; r++) {
        for (int64_t i = 0; i < n; i++) {
            const int8_t *xq = a->q + i * cols;
            const float *dx = a->d + i * blocks;
            __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
            int64_t b = 0;
            for (; b + 2 <= blocks; b += 2) {
                __m256i w0 = load_weights32(w, r, b, nf4_table), w1 = load_weights32(w, r, b + 1, nf4_table);
                __m256i x0 = _mm256_loadu_si256((const __m256i *)(xq + b * 32));
                __m256i x1 = _mm256_loadu_si256((const __m256i *)(xq + b * 32 + 32));
                __m256i p0 = is_q4 ? dot_u4(w0, x0) : dot_i8(w0, x0);
                __m256i p1 = is_q4 ? dot_u4(w1, x1) : dot_i8(w1, x1);
                acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(block_scale(w, r, b, half_f16c) * dx[b]), acc0);
                acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1), _mm256_set1_ps(block_scale(w, r, b + 1, half_f16c) * dx[b + 1]), acc1);
            }
            for (; b < blocks; b++) {
                __m256i w0 = load_weights32(w, r, b, nf4_table);
                __m256i x0 = _mm256_loadu_si256((const __m256i *)(xq + b * 32));
                __m256i p0 = is_q4 ? dot_u4(w0, x0) : dot_i8(w0, x0);
                acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(block_scale(w, r, b, half_f16c) * dx[b]), acc0);
            }
            float sum = hsum(_mm256_add_ps(acc0, acc1));
            if (is_q4) sum -= q4_zero_term(w, a, r, i, half_f16c);
            out[i * ldo + r] = sum;
        }
    }
}

// ---- dispatch ----------------------------------------------------------------------------------

typedef struct {
    qs_variant variant;
    float *out;
    int64_t ldo;
    const qs_matrix *w;
    quantized_activations a;
    int64_t n;
} qmatmul_job;

static void qmatmul_task(void *ctx, int index, int count) {
    const qmatmul_job *job = ctx;
    int64_t units = (job->w->rows + 15) / 16;
    int64_t u0 = units * index / count, u1 = units * (index + 1) / count;
    int64_t r0 = u0 * 16, r1 = u1 * 16 < job->w->rows ? u1 * 16 : job->w->rows;
    if (r0 >= r1) return;
    if (job->variant >= QS_VARIANT_AVX2) qmatmul_avx2(job->out, job->ldo, job->w, &job->a, job->n, r0, r1);
    else qmatmul_scalar(job->out, job->ldo, job->w, &job->a, job->n, r0, r1);
}

void qs_matmul(qs_pool *pool, qs_variant v, float *out, int64_t ldo, const qs_matrix *w, const float *x, int64_t n,
               float *scratch) {
    if (!qs_variant_supported(v)) v = qs_best_variant();
    switch (w->format) {
    case QS_FORMAT_F32: qs_gemv_f32(pool, v, out, ldo, w->data, x, n, w->rows, w->cols); return;
    case QS_FORMAT_F16: qs_gemv_f16(pool, v, out, ldo, w->data, x, n, w->rows, w->cols); return;
    default: break;
    }
    qmatmul_job job = {v, out, ldo, w, quantize_activations(scratch, x, n, w->cols), n};
    if (w->rows * w->cols * n < 32768) qmatmul_task(&job, 0, 1);
    else qs_pool_run(pool, qmatmul_task, &job);
}

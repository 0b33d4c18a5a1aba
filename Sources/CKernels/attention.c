// Attention over a paged KV cache: keys and values in fp16 or int8 blocks, reached through each sequence's block
// table.
#include "CKernels.h"
#include "simd_avx2.h"
#include <immintrin.h>
#include <math.h>

int64_t qs_kv_int8_group(int64_t head_dim) { return head_dim % 32 == 0 ? 32 : head_dim; }

// One row of `count` values (a multiple of group) to int8 codes with one scale per group of values: symmetric,
// scale = amax / 127, codes rounded to nearest even.
static void quantize_row_int8(int8_t *codes, float *scales, const float *x, int64_t count, int64_t group) {
    for (int64_t g = 0; g < count / group; g++) {
        const float *xg = x + g * group;
        float amax = 0;
        for (int64_t j = 0; j < group; j++) amax = fmaxf(amax, fabsf(xg[j]));
        const float inv = amax > 0 ? 127.0f / amax : 0;
        for (int64_t j = 0; j < group; j++) codes[g * group + j] = (int8_t)lrintf(xg[j] * inv);
        scales[g] = amax / 127.0f;
    }
}

void qs_kv_store_layer(const qs_kv_layer *c, const float *k, const float *v, const int32_t *slots, int64_t n,
                       int64_t kv_dim) {
    for (int64_t i = 0; i < n; i++) {
        const int64_t slot = slots[i];
        if (c->dtype == QS_KV_INT8) {
            const int64_t per_slot = kv_dim / c->group;
            quantize_row_int8((int8_t *)c->k + slot * kv_dim, c->k_scale + slot * per_slot, k + i * kv_dim, kv_dim, c->group);
            quantize_row_int8((int8_t *)c->v + slot * kv_dim, c->v_scale + slot * per_slot, v + i * kv_dim, kv_dim, c->group);
        } else {
            qs_convert_fp32_to_fp16((uint16_t *)c->k + slot * kv_dim, k + i * kv_dim, kv_dim);
            qs_convert_fp32_to_fp16((uint16_t *)c->v + slot * kv_dim, v + i * kv_dim, kv_dim);
        }
    }
}

// k, v [n, kv_dim] -> cache slots (fp16)
void qs_kv_store(uint16_t *k_cache, uint16_t *v_cache, const float *k, const float *v, const int32_t *slots,
                 int64_t n, int64_t kv_dim) {
    const qs_kv_layer c = {.dtype = QS_KV_FP16, .k = k_cache, .v = v_cache};
    qs_kv_store_layer(&c, k, v, slots, n, kv_dim);
}

// ---- One (token, kv head): every query head of the group over the same keys and values ----------

typedef struct {
    float *out;
    const float *q;
    qs_kv_layer cache;
    const int32_t *pos, *tables, *table_start;
    int64_t n;
    qs_attention_shape shape;
    qs_variant variant;
    float *scratch;
    int64_t scratch_per_thread;
} attention_job;

__attribute__((target("avx2,fma"))) static float dot_avx2(const float *a, const float *b, int64_t n) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + j), _mm256_loadu_ps(b + j), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + j + 8), _mm256_loadu_ps(b + j + 8), acc1);
    }
    float sum = qs_hsum_avx2(_mm256_add_ps(acc0, acc1));
    for (; j < n; j++) sum += a[j] * b[j];
    return sum;
}

__attribute__((target("avx2,fma"))) static void axpy_avx2(float *y, float a, const float *x, int64_t n) {
    __m256 va = _mm256_set1_ps(a);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) _mm256_storeu_ps(y + j, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + j), _mm256_loadu_ps(y + j)));
    for (; j < n; j++) y[j] += a * x[j];
}

__attribute__((target("avx2,f16c"))) static void to_f32_avx2(float *dst, const uint16_t *src, int64_t n) {
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) _mm256_storeu_ps(dst + j, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + j))));
    for (; j < n; j++) dst[j] = qs_fp16_to_fp32(src[j]);
}

// The same three at 512 bits (the tails masked), for the avx512 and vnni variants.
#define AVX512_ATT __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
AVX512_ATT static float dot_avx512(const float *a, const float *b, int64_t n) {
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int64_t j = 0;
    for (; j + 32 <= n; j += 32) {
        acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + j), _mm512_loadu_ps(b + j), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + j + 16), _mm512_loadu_ps(b + j + 16), acc1);
    }
    for (; j < n; j += 16) {
        const __mmask16 m = n - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1);
        acc0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + j), _mm512_maskz_loadu_ps(m, b + j), acc0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

AVX512_ATT static void axpy_avx512(float *y, float a, const float *x, int64_t n) {
    const __m512 va = _mm512_set1_ps(a);
    for (int64_t j = 0; j < n; j += 16) {
        const __mmask16 m = n - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1);
        _mm512_mask_storeu_ps(y + j, m, _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, x + j), _mm512_maskz_loadu_ps(m, y + j)));
    }
}

AVX512_ATT static void to_f32_avx512(float *dst, const uint16_t *src, int64_t n) {
    for (int64_t j = 0; j < n; j += 16) {
        const __mmask16 m = n - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1);
        _mm512_mask_storeu_ps(dst + j, m, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, src + j)));
    }
}

static float dot_scalar(const float *a, const float *b, int64_t n) {
    float sum = 0;
    for (int64_t j = 0; j < n; j++) sum += a[j] * b[j];
    return sum;
}

static void axpy_scalar(float *y, float a, const float *x, int64_t n) {
    for (int64_t j = 0; j < n; j++) y[j] += a * x[j];
}

static void to_f32_scalar(float *dst, const uint16_t *src, int64_t n) {
    for (int64_t j = 0; j < n; j++) dst[j] = qs_fp16_to_fp32(src[j]);
}

// int8 codes times their group's scale (group a multiple of 8 on the AVX2 path).
__attribute__((target("avx2,fma"))) static void int8_to_f32_avx2(float *dst, const int8_t *src, const float *scales,
                                                                  int64_t n, int64_t group) {
    for (int64_t j = 0; j + 8 <= n; j += 8) {
        const __m256 codes = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(src + j))));
        _mm256_storeu_ps(dst + j, _mm256_mul_ps(codes, _mm256_set1_ps(scales[j / group])));
    }
    for (int64_t j = n / 8 * 8; j < n; j++) dst[j] = (float)src[j] * scales[j / group];
}

static void int8_to_f32_scalar(float *dst, const int8_t *src, const float *scales, int64_t n, int64_t group) {
    for (int64_t j = 0; j < n; j++) dst[j] = (float)src[j] * scales[j / group];
}

// Head kvh's keys (or values) at a cache slot as floats: row [head_dim].
static void load_row(float *row, const qs_kv_layer *c, int values, int64_t slot, int64_t kvh, int64_t d, int64_t kv_dim,
                     int simd) {
    const void *base = values ? c->v : c->k;
    if (c->dtype == QS_KV_INT8) {
        const int8_t *codes = (const int8_t *)base + slot * kv_dim + kvh * d;
        const float *scales = (values ? c->v_scale : c->k_scale) + (slot * kv_dim + kvh * d) / c->group;
        if (simd && c->group % 8 == 0) int8_to_f32_avx2(row, codes, scales, d, c->group);
        else int8_to_f32_scalar(row, codes, scales, d, c->group);
        return;
    }
    const uint16_t *h = (const uint16_t *)base + slot * kv_dim + kvh * d;
    if (simd == 2) to_f32_avx512(row, h, d);
    else if (simd) to_f32_avx2(row, h, d);
    else to_f32_scalar(row, h, d);
}

int64_t qs_attention_scratch(qs_attention_shape s, int64_t max_positions) {
    int64_t group = s.heads / s.kv_heads;
    return group * max_positions + s.head_dim + 16;
}

// Token i, kv head kvh: softmax(q_h . K^T * scale) @ V for each query head h of the group, over positions
// first ... pos[i]. scratch: group * positions scores, then one converted key or value row.
static void attend(const attention_job *job, int64_t i, int64_t kvh, float *scratch) {
    const qs_attention_shape s = job->shape;
    // 0 scalar, 1 AVX2, 2 AVX-512.
    const int simd = job->variant >= QS_VARIANT_AVX512 ? 2 : job->variant >= QS_VARIANT_AVX2;
    const int64_t d = s.head_dim, kv_dim = s.kv_heads * d, group = s.heads / s.kv_heads;
    const int64_t last = job->pos[i];
    const int64_t first = (s.window > 0 && last - s.window + 1 > 0) ? last - s.window + 1 : 0;
    const int64_t len = last - first + 1;
    const int32_t *table = job->tables + job->table_start[i];
    float *scores = scratch, *row = scratch + group * len;
    const float *q = job->q + i * s.heads * d + kvh * group * d;

    for (int64_t t = 0; t < len; t++) {
        int64_t p = first + t;
        load_row(row, &job->cache, 0, (int64_t)table[p / s.block_size] * s.block_size + p % s.block_size, kvh, d, kv_dim, simd);
        for (int64_t g = 0; g < group; g++)
            scores[g * len + t] = (simd == 2 ? dot_avx512(q + g * d, row, d)
                                   : simd   ? dot_avx2(q + g * d, row, d)
                                            : dot_scalar(q + g * d, row, d)) * s.scale;
    }
    for (int64_t g = 0; g < group; g++) {
        float *sg = scores + g * len, max = -INFINITY, sum = 0;
        for (int64_t t = 0; t < len; t++) if (sg[t] > max) max = sg[t];
        for (int64_t t = 0; t < len; t++) { sg[t] = expf(sg[t] - max); sum += sg[t]; }
        float inv = 1.0f / sum;
        for (int64_t t = 0; t < len; t++) sg[t] *= inv;
        float *o = job->out + i * s.heads * d + (kvh * group + g) * d;
        for (int64_t j = 0; j < d; j++) o[j] = 0;
    }
    for (int64_t t = 0; t < len; t++) {
        int64_t p = first + t;
        load_row(row, &job->cache, 1, (int64_t)table[p / s.block_size] * s.block_size + p % s.block_size, kvh, d, kv_dim, simd);
        for (int64_t g = 0; g < group; g++) {
            float *o = job->out + i * s.heads * d + (kvh * group + g) * d;
            if (simd == 2) axpy_avx512(o, scores[g * len + t], row, d);
            else if (simd) axpy_avx2(o, scores[g * len + t], row, d);
            else axpy_scalar(o, scores[g * len + t], row, d);
        }
    }
}

static void attention_task(void *ctx, int index, int count) {
    const attention_job *job = ctx;
    float *scratch = job->scratch + index * job->scratch_per_thread;
    int64_t pairs = job->n * job->shape.kv_heads;
    for (int64_t p = index; p < pairs; p += count) attend(job, p / job->shape.kv_heads, p % job->shape.kv_heads, scratch);
}

void qs_paged_attention_layer(qs_pool *pool, qs_variant v, float *out, const float *q, const qs_kv_layer *cache,
                              const int32_t *pos, const int32_t *tables, const int32_t *table_start, int64_t n,
                              qs_attention_shape shape, float *scratch, int64_t scratch_per_thread) {
    attention_job job = {out, q, *cache, pos, tables, table_start, n, shape, v, scratch, scratch_per_thread};
    qs_pool_run(pool, attention_task, &job);
}

void qs_paged_attention(qs_pool *pool, qs_variant v, float *out, const float *q, const uint16_t *k_cache,
                        const uint16_t *v_cache, const int32_t *pos, const int32_t *tables, const int32_t *table_start,
                        int64_t n, qs_attention_shape shape, float *scratch, int64_t scratch_per_thread) {
    const qs_kv_layer cache = {.dtype = QS_KV_FP16, .k = (void *)k_cache, .v = (void *)v_cache};
    qs_paged_attention_layer(pool, v, out, q, &cache, pos, tables, table_start, n, shape, scratch, scratch_per_thread);
}

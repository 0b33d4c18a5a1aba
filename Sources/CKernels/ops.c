// Element-wise layers and attention. Small next to the matrix products, but on every token of every layer.
#include "CKernels.h"
#include "simd_avx2.h"
#include <immintrin.h>
#include <math.h>

// x [n, dim] -> out [n, dim]
void qs_rmsnorm(float *out, const float *x, const float *weight, int64_t n, int64_t dim, float eps) {
    for (int64_t i = 0; i < n; i++) {
        const float *xi = x + i * dim;
        float *oi = out + i * dim;
        double ss = 0;
        for (int64_t j = 0; j < dim; j++) ss += (double)xi[j] * xi[j];
        float inv = 1.0f / sqrtf((float)(ss / (double)dim) + eps);
        for (int64_t j = 0; j < dim; j++) oi[j] = xi[j] * inv * weight[j];
    }
}

// x [n, heads * head_dim] rotated in place at positions pos[n]
void qs_rope(float *x, const int32_t *pos, int64_t n, int64_t heads, int64_t head_dim, const float *inv_freq, int neox) {
    int64_t half = head_dim / 2;
    for (int64_t i = 0; i < n; i++) {
        for (int64_t p = 0; p < half; p++) {
            float theta = (float)pos[i] * inv_freq[p];
            float c = cosf(theta), s = sinf(theta);
            for (int64_t h = 0; h < heads; h++) {
                float *v = x + i * heads * head_dim + h * head_dim;
                int64_t a = neox ? p : 2 * p, b = neox ? p + half : 2 * p + 1;
                float x0 = v[a], x1 = v[b];
                v[a] = x0 * c - x1 * s;
                v[b] = x0 * s + x1 * c;
            }
        }
    }
}

// gate [n] <- silu(gate) * up
void qs_silu_mul(float *gate, const float *up, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float g = gate[i];
        gate[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

typedef struct {
    float *out;
    const float *q, *k, *v;
    const int32_t *pos;
    int64_t n;
    qs_attention_shape shape;
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

static float dot_scalar(const float *a, const float *b, int64_t n) {
    float sum = 0;
    for (int64_t j = 0; j < n; j++) sum += a[j] * b[j];
    return sum;
}

static void axpy_scalar(float *y, float a, const float *x, int64_t n) {
    for (int64_t j = 0; j < n; j++) y[j] += a * x[j];
}

// One (query token, head) pair: softmax(q . K^T * scale) @ V over cache rows 0 ... pos.
static void attend(const attention_job *job, int64_t i, int64_t h, float *scores) {
    const int simd = qs_best_variant() >= QS_VARIANT_AVX2;
    const qs_attention_shape s = job->shape;
    int64_t d = s.head_dim, kv_stride = s.kv_heads * d;
    int64_t kvh = h / (s.heads / s.kv_heads);
    const float *q = job->q + i * s.heads * d + h * d;
    int64_t len = (int64_t)job->pos[i] + 1;
    float max = -INFINITY;
    for (int64_t t = 0; t < len; t++) {
        const float *k = job->k + t * kv_stride + kvh * d;
        float dot = (simd ? dot_avx2(q, k, d) : dot_scalar(q, k, d)) * s.scale;
        scores[t] = dot;
        if (dot > max) max = dot;
    }
    float sum = 0;
    for (int64_t t = 0; t < len; t++) {
        scores[t] = expf(scores[t] - max);
        sum += scores[t];
    }
    float inv = 1.0f / sum;
    float *o = job->out + i * s.heads * d + h * d;
    for (int64_t j = 0; j < d; j++) o[j] = 0;
    for (int64_t t = 0; t < len; t++) {
        const float *v = job->v + t * kv_stride + kvh * d;
        if (simd) axpy_avx2(o, scores[t] * inv, v, d);
        else axpy_scalar(o, scores[t] * inv, v, d);
    }
}

static void attention_task(void *ctx, int index, int count) {
    const attention_job *job = ctx;
    float *scores = job->scratch + index * job->scratch_per_thread;
    int64_t pairs = job->n * job->shape.heads;
    for (int64_t p = index; p < pairs; p += count) attend(job, p / job->shape.heads, p % job->shape.heads, scores);
}

void qs_attention(qs_pool *pool, float *out, const float *q, const float *k, const float *v, const int32_t *pos,
                  int64_t n, qs_attention_shape shape, float *scratch, int64_t scratch_per_thread) {
    attention_job job = {out, q, k, v, pos, n, shape, scratch, scratch_per_thread};
    qs_pool_run(pool, attention_task, &job);
}

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

static const float GELU_SQRT_2_OVER_PI = 0.79788456080286535587989211986876f;
static const float GELU_COEF_A = 0.044715f;

static void gelu_tanh_mul_scalar(float *gate, const float *up, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float x = gate[i];
        gate[i] = 0.5f * x * (1.0f + tanhf(GELU_SQRT_2_OVER_PI * x * (1.0f + GELU_COEF_A * x * x))) * up[i];
    }
}

// exp(x) for x in [-88, 88]: 2^k * p(r), r = x - k ln 2 in [-ln2/2, ln2/2], p of degree 6 (Cephes expf).
__attribute__((target("avx2,fma"))) static inline __m256 exp_avx2(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-88.0f)), _mm256_set1_ps(88.0f));
    __m256 k = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(k, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

// 0.5 x (1 + tanh(u)) = x - x / (1 + exp(2u)): no cancellation near u = 0, exact limits for large |u|.
__attribute__((target("avx2,fma"))) static void gelu_tanh_mul_avx2(float *gate, const float *up, int64_t n) {
    const __m256 c = _mm256_set1_ps(2.0f * GELU_SQRT_2_OVER_PI), a = _mm256_set1_ps(GELU_COEF_A);
    const __m256 one = _mm256_set1_ps(1.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_loadu_ps(gate + i);
        __m256 u2 = _mm256_mul_ps(_mm256_mul_ps(c, x), _mm256_fmadd_ps(_mm256_mul_ps(a, x), x, one));
        __m256 g = _mm256_sub_ps(x, _mm256_div_ps(x, _mm256_add_ps(one, exp_avx2(u2))));
        _mm256_storeu_ps(gate + i, _mm256_mul_ps(g, _mm256_loadu_ps(up + i)));
    }
    gelu_tanh_mul_scalar(gate + i, up + i, n - i);
}

void qs_gelu_tanh_mul(qs_variant v, float *gate, const float *up, int64_t n) {
    if (v >= QS_VARIANT_AVX2) gelu_tanh_mul_avx2(gate, up, n);
    else gelu_tanh_mul_scalar(gate, up, n);
}

// gate [n] <- silu(gate) * up = gate / (1 + exp(-gate)) * up
static void silu_mul_scalar(float *gate, const float *up, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float g = gate[i];
        gate[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

__attribute__((target("avx2,fma"))) static void silu_mul_avx2(float *gate, const float *up, int64_t n) {
    const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 g = _mm256_loadu_ps(gate + i);
        __m256 s = _mm256_div_ps(g, _mm256_add_ps(one, exp_avx2(_mm256_sub_ps(zero, g))));
        _mm256_storeu_ps(gate + i, _mm256_mul_ps(s, _mm256_loadu_ps(up + i)));
    }
    silu_mul_scalar(gate + i, up + i, n - i);
}

void qs_silu_mul(qs_variant v, float *gate, const float *up, int64_t n) {
    if (v >= QS_VARIANT_AVX2) silu_mul_avx2(gate, up, n);
    else silu_mul_scalar(gate, up, n);
}

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

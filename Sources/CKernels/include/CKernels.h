// CKernels: the hot loops of QuantServe, in C with AVX-512, AVX2 and scalar variants chosen at run time.
// Kernels are free functions, output first, with a shape comment. They know nothing of models.
#ifndef QS_CKERNELS_H
#define QS_CKERNELS_H

#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// ---- CPU features and kernel variants -------------------------------------------------------
typedef enum { QS_VARIANT_SCALAR = 0, QS_VARIANT_AVX2 = 1, QS_VARIANT_AVX512 = 2 } qs_variant;

/// The best variant this CPU supports, or the one named by QS_KERNELS=scalar|avx2|avx512 (never above the CPU's).
qs_variant qs_best_variant(void);
/// Whether this CPU can run a variant.
int qs_variant_supported(qs_variant v);
const char *qs_variant_name(qs_variant v);

// ---- Half precision -------------------------------------------------------------------------
float qs_fp16_to_fp32(uint16_t h);
uint16_t qs_fp32_to_fp16(float f);
float qs_bf16_to_fp32(uint16_t h);
// src [n] -> dst [n]
void qs_convert_fp16_to_fp32(float *dst, const uint16_t *src, int64_t n);
void qs_convert_fp32_to_fp16(uint16_t *dst, const float *src, int64_t n);
void qs_convert_bf16_to_fp32(float *dst, const uint16_t *src, int64_t n);

// ---- GGUF block dequantization (scalar; run once at load) ------------------------------------
// src holds n/block_size blocks -> dst [n]. n must be a multiple of the block size.
void qs_dequantize_q8_0(float *dst, const void *src, int64_t n);
void qs_dequantize_q4_0(float *dst, const void *src, int64_t n);
void qs_dequantize_q5_0(float *dst, const void *src, int64_t n);
void qs_dequantize_q4_k(float *dst, const void *src, int64_t n);
void qs_dequantize_q6_k(float *dst, const void *src, int64_t n);

// ---- Thread pool ----------------------------------------------------------------------------
typedef struct qs_pool qs_pool;
/// Runs task(ctx, index, count) on every thread of the pool, the caller being index 0.
typedef void (*qs_task_fn)(void *ctx, int index, int count);
qs_pool *qs_pool_create(int threads);
void qs_pool_destroy(qs_pool *pool);
int qs_pool_size(const qs_pool *pool);
void qs_pool_run(qs_pool *pool, qs_task_fn task, void *ctx);

// ---- Matrix-vector products over a few activation rows ----------------------------------------
// W [rows, cols] @ x [n, cols] -> out [n, ldo] (row i of x gives out[i * ldo + 0 ..< rows]).
// Each output is reduced in an order fixed by cols alone, so a row's result does not depend on n.
void qs_gemv_f32(qs_pool *pool, qs_variant v, float *out, int64_t ldo, const float *w, const float *x,
                 int64_t n, int64_t rows, int64_t cols);
void qs_gemv_f16(qs_pool *pool, qs_variant v, float *out, int64_t ldo, const uint16_t *w, const float *x,
                 int64_t n, int64_t rows, int64_t cols);

// ---- Element-wise and attention ---------------------------------------------------------------
// x [n, dim] -> out [n, dim], out = x / rms(x) * weight. out may equal x.
void qs_rmsnorm(float *out, const float *x, const float *weight, int64_t n, int64_t dim, float eps);
// x [n, heads * head_dim], rotated in place at positions pos[n]. inv_freq [head_dim / 2].
// neox: pairs (i, i + head_dim/2); otherwise adjacent pairs (2i, 2i+1).
void qs_rope(float *x, const int32_t *pos, int64_t n, int64_t heads, int64_t head_dim, const float *inv_freq, int neox);
// gate [n] <- silu(gate) * up
void qs_silu_mul(float *gate, const float *up, int64_t n);

/// Causal attention of n query tokens over a contiguous KV cache of one layer.
/// q [n, heads * head_dim]; k, v [positions, kv_heads * head_dim]; query i attends to cache rows 0 ... pos[i].
/// out [n, heads * head_dim]. scratch: at least threads * (max pos + 1) floats.
typedef struct {
    int64_t heads, kv_heads, head_dim;
    float scale;
} qs_attention_shape;
void qs_attention(qs_pool *pool, float *out, const float *q, const float *k, const float *v, const int32_t *pos,
                  int64_t n, qs_attention_shape shape, float *scratch, int64_t scratch_per_thread);

#ifdef __cplusplus
}
#endif
#endif

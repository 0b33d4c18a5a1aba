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
// `vnni` is avx512 plus AVX-512 VNNI integer products on the x16 weight layout (qs_matrix_pack_x16).
typedef enum { QS_VARIANT_SCALAR = 0, QS_VARIANT_AVX2 = 1, QS_VARIANT_AVX512 = 2, QS_VARIANT_VNNI = 3 } qs_variant;

/// The best variant this CPU supports, or the one named by QS_KERNELS=scalar|avx2|avx512|vnni (never above the
/// CPU's). `vnni` is chosen only when named until its device check passes on the current code (QS_VNNI_BY_DEFAULT).
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
void qs_dequantize_q4_1(float *dst, const void *src, int64_t n);
void qs_dequantize_q5_1(float *dst, const void *src, int64_t n);
void qs_dequantize_q2_k(float *dst, const void *src, int64_t n);
void qs_dequantize_q3_k(float *dst, const void *src, int64_t n);
void qs_dequantize_q5_k(float *dst, const void *src, int64_t n);

// ---- Thread pool ----------------------------------------------------------------------------
typedef struct qs_pool qs_pool;
/// Runs task(ctx, index, count) on every thread of the pool, the caller being index 0.
typedef void (*qs_task_fn)(void *ctx, int index, int count);
qs_pool *qs_pool_create(int threads);
void qs_pool_destroy(qs_pool *pool);
int qs_pool_size(const qs_pool *pool);
void qs_pool_run(qs_pool *pool, qs_task_fn task, void *ctx);
/// Bytes per second the pool's threads read together from a buffer of `bytes` (beyond the caches), the best of
/// `passes` passes (0 when the buffer cannot be had).
double qs_read_bandwidth(qs_pool *pool, int64_t bytes, int passes);

// ---- Matrix-vector products over a few activation rows ----------------------------------------
// W [rows, cols] @ x [n, cols] -> out [n, ldo] (row i of x gives out[i * ldo + 0 ..< rows]).
// Each output is reduced in an order fixed by cols alone, so a row's result does not depend on n.
void qs_gemv_f32(qs_pool *pool, qs_variant v, float *out, int64_t ldo, const float *w, const float *x,
                 int64_t n, int64_t rows, int64_t cols);
void qs_gemv_f16(qs_pool *pool, qs_variant v, float *out, int64_t ldo, const uint16_t *w, const float *x,
                 int64_t n, int64_t rows, int64_t cols);

// ---- Quantized weight matrices ---------------------------------------------------------------
// Row-major W [rows, cols], quantized along cols:
//   Q8:  int8 q [rows, cols]; fp16 scale per 32 values [rows, cols/32]; w = q * scale (symmetric).
//   Q4:  4-bit q packed per 32 values in 16 bytes (byte j holds value j low, value j+16 high) [rows, cols/2];
//        fp16 scale and uint8 zero per `group` values [rows, cols/group]; w = (q - zero) * scale (AWQ-style).
//   NF4: 4-bit code index packed as Q4 [rows, cols/2]; f32 absmax per 64 values [rows, cols/64];
//        w = NF4_CODE[q] * absmax (bitsandbytes NF4).
//   NATIVE: a GGUF tensor's own blocks as the file stores them (native_type: the ggml type id; Q4_0, Q4_1, Q5_0,
//        Q5_1, Q8_0, Q2_K ... Q6_K): row r is qs_native_row_bytes(native_type, cols) bytes at data + r * that.
typedef enum {
    QS_FORMAT_F32 = 0, QS_FORMAT_F16 = 1, QS_FORMAT_Q8 = 2, QS_FORMAT_Q4 = 3, QS_FORMAT_NF4 = 4, QS_FORMAT_NATIVE = 5
} qs_format;
// Where the parts of a quantized matrix sit: the row-major layout above, or x16 (x16_layout.c), sixteen rows
// interleaved so that lane j of a 512-bit register is row j (the `vnni` kernels'; rows padded to a multiple of 16).
typedef enum { QS_LAYOUT_ROWS = 0, QS_LAYOUT_X16 = 1 } qs_layout;

typedef struct {
    qs_format format;
    int64_t rows, cols;
    int64_t group;        // values per scale along cols (32 for Q8, the AWQ group for Q4, 64 for NF4)
    const void *data;     // values or packed codes
    const void *scales;   // fp16 (Q8, Q4) or f32 (NF4) per (row, group)
    const uint8_t *zeros; // Q4 only
    qs_layout layout;
    int32_t native_type;  // NATIVE only: the ggml type
} qs_matrix;

/// The bitsandbytes NF4 code table.
extern const float QS_NF4_CODE[16];

/// Bytes of each part of a matrix in a format (0 when the format has no such part).
int64_t qs_matrix_data_bytes(qs_format f, int64_t rows, int64_t cols);
int64_t qs_matrix_scale_bytes(qs_format f, int64_t rows, int64_t cols, int64_t group);
int64_t qs_matrix_zero_bytes(qs_format f, int64_t rows, int64_t cols, int64_t group);

/// The x16 layout: bytes of a part (0 data, 1 scales, 2 zeros), packing a row-major quantized matrix into it, and
/// rows r0 ..< r1 of an x16 matrix back into row-major parts (for rows r1 - r0). Both copy codes and scales exactly.
/// Whether the kernels in use want it: the best variant is `vnni`.
int64_t qs_matrix_x16_bytes(qs_format f, int64_t rows, int64_t cols, int64_t group, int part);
void qs_matrix_pack_x16(void *data, void *scales, uint8_t *zeros, const qs_matrix *src);
void qs_matrix_unpack_x16_rows(void *data, void *scales, uint8_t *zeros, const qs_matrix *src, int64_t r0, int64_t r1);
int qs_x16_layout_preferred(void);

/// Quantizes FP32 rows src [rows, cols] into a matrix's parts (round to nearest; Q4 by per-group min/max,
/// first clamped to [-clip[g], clip[g]] when clip, one value per (row, group), is not NULL).
void qs_quantize_q8(int8_t *q, uint16_t *scales, const float *src, int64_t rows, int64_t cols);
void qs_quantize_q4(uint8_t *q, uint16_t *scales, uint8_t *zeros, const float *src, int64_t rows, int64_t cols,
                    int64_t group, const float *clip);
void qs_quantize_nf4(uint8_t *q, float *absmax, const float *src, int64_t rows, int64_t cols);
/// The same with the kernel variant named (the quantizers above take the best one): the AVX2 versions give results
/// identical to the scalar ones, bit for bit.
void qs_quantize_q8_v(qs_variant v, int8_t *q, uint16_t *scales, const float *src, int64_t rows, int64_t cols);
void qs_quantize_q4_v(qs_variant v, uint8_t *q, uint16_t *scales, uint8_t *zeros, const float *src, int64_t rows,
                      int64_t cols, int64_t group, const float *clip);
void qs_quantize_nf4_v(qs_variant v, uint8_t *q, float *absmax, const float *src, int64_t rows, int64_t cols);
/// Q4 quantize-then-dequantize (what AWQ's searches measure): dst = Q(src · diag(s)) · diag(1/s) for src [rows, cols],
/// s [cols] (NULL for none), groups clamped to ±clip[(row, group)] (NULL for none). Rows split over the pool.
void qs_fake_quantize_q4(qs_pool *pool, float *dst, const float *src, const float *col_scale, int64_t rows,
                         int64_t cols, int64_t group, const float *clip);
void qs_fake_quantize_q4_v(qs_pool *pool, qs_variant v, float *dst, const float *src, const float *col_scale,
                           int64_t rows, int64_t cols, int64_t group, const float *clip);
/// One block of GPTQ rounding into Q4 codes. w [rows, cols] (row stride ldw) holds the rows with their columns in
/// processing order (column i of w is column order[i] of the matrix; order NULL for the natural order), as updated
/// by the blocks before; u [cols, cols] is the row-major upper Cholesky factor of the inverse input covariance
/// permuted the same way (uᵀu = H⁻¹). For i in [i0, i1): column i is rounded with the parameters of its group
/// (scales/zeros as qs_quantize_q4 lays them out, fixed beforehand), its code stored at codes[row · cols + order[i]],
/// its error e = (w - dequantized) / u[i][i] at errors[row · (i1 - i0) + i - i0], and w[i + 1 ..< i1] -= e · u[i][...].
/// Updating the columns after i1 (w -= errors · u[i0..<i1, i1...]) is the caller's. Rows split over the pool.
void qs_gptq_q4_block(qs_pool *pool, uint8_t *codes, float *errors, float *w, int64_t ldw, const float *u,
                      int64_t rows, int64_t cols, int64_t i0, int64_t i1, const int32_t *order,
                      const uint16_t *scales, const uint8_t *zeros, int64_t group);
void qs_gptq_q4_block_v(qs_pool *pool, qs_variant v, uint8_t *codes, float *errors, float *w, int64_t ldw,
                        const float *u, int64_t rows, int64_t cols, int64_t i0, int64_t i1, const int32_t *order,
                        const uint16_t *scales, const uint8_t *zeros, int64_t group);
/// Packs n codes (0..15, n a multiple of 32) into the Q4 layout: byte j of each 16 = code[j] | code[j + 16] << 4.
void qs_pack_q4_codes(uint8_t *q, const uint8_t *codes, int64_t n);
/// Sum of (a[i] - b[i])^2 in double precision.
double qs_squared_error(const float *a, const float *b, int64_t n);
/// out[r * out_stride] = dot(a[r * lda ...], b[r * ldb ...]) over len values, for r < rows.
void qs_row_dots(float *out, int64_t out_stride, const float *a, int64_t lda, const float *b, int64_t ldb,
                 int64_t rows, int64_t len);

/// NATIVE: whether the products read a ggml type in place, and the bytes of one row of cols values (0 when the type
/// is not read or cols is not a multiple of its block).
int qs_native_type_supported(int32_t type);
int64_t qs_native_row_bytes(int32_t type, int64_t cols);
/// W @ x for NATIVE matrices of one column count (any mixture of types): x is quantized once to int8, per 32 values
/// for the 32-value types and per 256 for the K types, as their dot products want. Called by qs_matmul_many.
void qs_native_matmul_many(qs_pool *pool, qs_variant v, int count, float *const *out, const int64_t *ldo,
                           const qs_matrix *w, const float *x, int64_t n, float *scratch);
void qs_native_dequantize_rows(float *dst, const qs_matrix *w, int64_t r0, int64_t r1);

/// Rows r0 ..< r1 of a matrix as FP32: dst [(r1 - r0), cols].
void qs_matrix_dequantize_rows(float *dst, const qs_matrix *w, int64_t r0, int64_t r1);

// ---- Checkpoint layouts (Hugging Face folders; run once at load or export) ---------------------------------------
// AutoAWQ GEMM, for W [N, K] (out N, in K), group G: qweight i32 [K, N/8], qzeros i32 [K/G, N/8], scales fp16 [K/G, N];
// the value of column 8c + j sits at bit 4 * {0,4,1,5,2,6,3,7}[j] of its i32. Rows n0 ..< n1 (a multiple of 8 apart)
// of the Q4 matrix parts q [N, K/2], scales [N, K/G], zeros [N, K/G] are written from it, or read into it.
void qs_awq_to_q4(uint8_t *q, uint16_t *scales, uint8_t *zeros, const int32_t *qweight, const int32_t *qzeros,
                  const uint16_t *awq_scales, int64_t K, int64_t N, int64_t G, int64_t n0, int64_t n1);
void qs_q4_to_awq(int32_t *qweight, int32_t *qzeros, uint16_t *awq_scales, const uint8_t *q, const uint16_t *scales,
                  const uint8_t *zeros, int64_t K, int64_t N, int64_t G, int64_t n0, int64_t n1);
// bitsandbytes 4-bit packing (two codes a byte, element 2i in the high nibble) <-> the Q4/NF4 packing above
// (per 32 values, byte j = v[j] | v[j + 16] << 4). n values, a multiple of 32.
void qs_bnb4_to_q4_packing(uint8_t *dst, const uint8_t *src, int64_t n);
void qs_q4_packing_to_bnb4(uint8_t *dst, const uint8_t *src, int64_t n);

/// Scratch floats `qs_matmul_quantized` needs for n activation rows of length cols.
int64_t qs_activation_scratch_floats(int64_t n, int64_t cols);

/// W @ x [n, cols] -> out [n, ldo] for any format, n small (the decode and small-batch path).
/// Each activation row is quantized per 32 values (int16 against Q8, int8 against Q4 and NF4) and the products are
/// integer dot products.
/// Each row's result depends only on that row: never on n, the other rows, or the thread count.
void qs_matmul(qs_pool *pool, qs_variant v, float *out, int64_t ldo, const qs_matrix *w, const float *x, int64_t n,
               float *scratch);
/// The same for up to four matrices that take the same input (a layer's q, k and v; gate and up): out[m] [n, ldo[m]]
/// = w[m] @ x. Quantized matrices of one format, group and column count share one quantization of x and one pass
/// over the pool; any others are multiplied one after another.
void qs_matmul_many(qs_pool *pool, qs_variant v, int count, float *const *out, const int64_t *ldo, const qs_matrix *w,
                    const float *x, int64_t n, float *scratch);

// ---- Element-wise and attention ---------------------------------------------------------------
// x [n, dim] -> out [n, dim], out = x / rms(x) * weight. out may equal x.
void qs_rmsnorm(float *out, const float *x, const float *weight, int64_t n, int64_t dim, float eps);
// x [n, heads * head_dim], rotated in place at positions pos[n]. inv_freq [head_dim / 2].
// neox: pairs (i, i + head_dim/2); otherwise adjacent pairs (2i, 2i+1).
void qs_rope(float *x, const int32_t *pos, int64_t n, int64_t heads, int64_t head_dim, const float *inv_freq, int neox);
// gate [n] <- silu(gate) * up. The AVX2 variant evaluates exp through a polynomial (within ~1e-6 relative of the
// scalar reference).
void qs_silu_mul(qs_variant v, float *gate, const float *up, int64_t n);
// gate [n] <- gelu_tanh(gate) * up, gelu_tanh(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (GeGLU: Gemma).
// The AVX2 variant evaluates tanh through a polynomial exp (within ~1e-6 of the scalar reference, relative to |x|).
void qs_gelu_tanh_mul(qs_variant v, float *gate, const float *up, int64_t n);

// ---- Paged KV cache and attention ------------------------------------------------------------
// A layer's keys (and its values) live in blocks of block_size tokens, each token kv_heads * head_dim fp16 values:
// cache [blocks, block_size, kv_heads * head_dim]. A token's slot is block * block_size + offset.
typedef struct {
    int64_t heads, kv_heads, head_dim;
    /// Multiplies q . k (usually 1 / sqrt(head_dim)).
    float scale;
    /// A query at position p attends to positions (p - window, p]; 0 means no limit.
    int64_t window;
    int64_t block_size;
} qs_attention_shape;

/// A layer's cache in either element type: fp16 values, or int8 codes with one f32 scale per `group` values of a
/// slot (symmetric, scale = amax / 127; group 32, or head_dim where 32 does not divide it: qs_kv_int8_group).
typedef enum { QS_KV_FP16 = 0, QS_KV_INT8 = 1 } qs_kv_dtype;
typedef struct {
    qs_kv_dtype dtype;
    void *k, *v;               // [slots, kv_dim] fp16 or int8
    float *k_scale, *v_scale;  // int8 only: [slots, kv_dim / group]
    int64_t group;             // int8 only
} qs_kv_layer;
int64_t qs_kv_int8_group(int64_t head_dim);
/// k, v [n, kv_dim] (fp32) -> their slots slots[n] of the cache.
void qs_kv_store_layer(const qs_kv_layer *cache, const float *k, const float *v, const int32_t *slots, int64_t n,
                       int64_t kv_dim);
/// The attention below over a cache of either type (int8 rows are widened to f32 as they are read).
void qs_paged_attention_layer(qs_pool *pool, qs_variant v, float *out, const float *q, const qs_kv_layer *cache,
                              const int32_t *pos, const int32_t *tables, const int32_t *table_start, int64_t n,
                              qs_attention_shape shape, float *scratch, int64_t scratch_per_thread);

/// k, v [n, kv_dim] (fp32) -> their slots slots[n] of k_cache, v_cache (fp16, rounded to nearest even).
void qs_kv_store(uint16_t *k_cache, uint16_t *v_cache, const float *k, const float *v, const int32_t *slots,
                 int64_t n, int64_t kv_dim);

/// Causal attention of n query tokens, each over its own sequence in a paged cache.
/// q [n, heads * head_dim] -> out [n, heads * head_dim]. Token i sits at position pos[i] and its sequence's blocks are
/// tables[table_start[i] ...]: it attends to that sequence's positions 0 ... pos[i] (see window).
/// Each (token, head) is computed by one thread in a fixed order, so a token's result never depends on n or the
/// other tokens. scratch: threads * scratch_per_thread floats, scratch_per_thread >= qs_attention_scratch(...).
int64_t qs_attention_scratch(qs_attention_shape shape, int64_t max_positions);
void qs_paged_attention(qs_pool *pool, qs_variant v, float *out, const float *q, const uint16_t *k_cache,
                        const uint16_t *v_cache, const int32_t *pos, const int32_t *tables, const int32_t *table_start,
                        int64_t n, qs_attention_shape shape, float *scratch, int64_t scratch_per_thread);

#ifdef __cplusplus
}
#endif
#endif

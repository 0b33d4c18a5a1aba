// W @ x for matrices kept in a GGUF file's own block types (QS_FORMAT_NATIVE). Activations are quantized once per
// product to int8 the way each block family's dot product wants them: per 32 values (one float scale, and the scale
// times the sum of the codes) for the 32-value types, per 256 values (one float scale, and the sums of each 16
// codes) for the K types. Then:
//   32-value types: per block, dx * d * (integer dot), plus for Q4_1/Q5_1 the min times the activations' sum;
//   K types: per block, the integer dots of its 32-value chunks, each weighted by its 16-value halves' integer
//   scales, summed in int32 and scaled once by d * dx; minus dmin * dx times the halves' mins against the
//   activations' 16-value sums (for Q3_K and Q6_K the "min" is the codes' fixed offset times the scale).
// Each (weight row, activation row) result is reduced in an order fixed by cols alone: never by n, the other rows,
// or the threads.
#include "native_blocks.h"
#include "native_activations.h"
#include "row_chunks.h"
#include "simd_avx2.h"
#include <immintrin.h>
#include <math.h>

#define AVX2 __attribute__((target("avx2,fma,f16c")))

// Activation rows a decoded weight row meets before the next row is decoded.
#ifndef NATIVE_CHUNK
#define NATIVE_CHUNK 16
#endif

int qs_native_type_supported(int32_t type) { return native_block_values(type) > 0; }

int64_t qs_native_row_bytes(int32_t type, int64_t cols) {
    const int values = native_block_values(type);
    if (values == 0 || cols <= 0 || cols % values != 0) return 0;
    return cols / values * native_block_bytes(type);
}

static inline int is_k_type(int type) { return native_block_values(type) == 256; }

// ---- scalar reference --------------------------------------------------------------------------

// Every type through its generic description (native_blocks.h): per 16-value half, A * dot(u, x) - B * sum(x).
static void native_rows_scalar(float *out, int64_t ldo, const qs_matrix *w, const native_activations *a, int64_t n,
                               int64_t r0, int64_t r1) {
    const int type = w->native_type;
    const int64_t cols = w->cols, values = native_block_values(type), blocks = cols / values;
    const int64_t row_bytes = qs_native_row_bytes(type, cols);
    const int sgn = native_signed_codes(type);
    const int8_t *xq = is_k_type(type) ? a->q256 : a->q32;
    const float *dx = is_k_type(type) ? a->d256 : a->d32;
    float A[16], B[16];
    uint8_t u[32];
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = (const uint8_t *)w->data + r * row_bytes;
        for (int64_t i = 0; i < n; i++) {
            float acc = 0;
            for (int64_t blk = 0; blk < blocks; blk++) {
                const uint8_t *b = row + blk * native_block_bytes(type);
                native_block_scales(type, b, A, B);
                const int8_t *xb = xq + i * cols + blk * values;
                float block = 0;
                for (int c = 0; c < values / 32; c++) {
                    native_chunk_codes(type, b, c, u);
                    for (int h = 0; h < 2; h++) {
                        int dot = 0, sum = 0;
                        for (int j = 16 * h; j < 16 * h + 16; j++) {
                            const int code = sgn ? (int8_t)u[j] : u[j];
                            dot += code * xb[32 * c + j];
                            sum += xb[32 * c + j];
                        }
                        block += A[2 * c + h] * (float)dot - B[2 * c + h] * (float)sum;
                    }
                }
                acc += dx[i * blocks + blk] * block;
            }
            out[i * ldo + r] = acc;
        }
    }
}

// ---- AVX2 --------------------------------------------------------------------------------------

// An fp16 field of a block, through F16C.
AVX2 ALWAYS_INLINE float half_f16c(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

// 32 bytes, one per bit of the 32-bit mask: 0x10 where the bit is set (bit j -> byte j).
AVX2 ALWAYS_INLINE __m256i bits_to_0x10(uint32_t bits) {
    const __m256i spread = _mm256_setr_epi64x(0, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303);
    const __m256i mask = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    const __m256i v = _mm256_and_si256(_mm256_shuffle_epi8(_mm256_set1_epi32((int)bits), spread), mask);
    return _mm256_and_si256(_mm256_cmpeq_epi8(v, mask), _mm256_set1_epi8(0x10));
}

// The 32 codes of chunk c of block b in value order (native_chunk_codes, vectorised).
AVX2 ALWAYS_INLINE __m256i codes_avx2(const int type, const uint8_t *b, const int c) {
    const __m256i low4 = _mm256_set1_epi8(0x0F), low2 = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
    switch (type) {
    case QS_GGML_Q4_0: case QS_GGML_Q4_1: case QS_GGML_Q5_0: case QS_GGML_Q5_1: {
        const int five = type == QS_GGML_Q5_0 || type == QS_GGML_Q5_1;
        const uint8_t *qs = b + (type == QS_GGML_Q4_0 || type == QS_GGML_Q5_0 ? 2 : 4) + (five ? 4 : 0);
        const __m128i p = _mm_loadu_si128((const __m128i *)qs);
        __m256i u = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(p, 4), p), low4);
        if (five) {
            uint32_t qh;
            memcpy(&qh, qs - 4, 4);
            u = _mm256_or_si256(u, bits_to_0x10(qh));
        }
        return u;
    }
    case QS_GGML_Q8_0: return _mm256_loadu_si256((const __m256i *)(b + 2));
    case QS_GGML_Q2_K: case QS_GGML_Q3_K: {
        const int three = type == QS_GGML_Q3_K;
        const __m256i q = _mm256_loadu_si256((const __m256i *)(b + (three ? 32 : 16) + 32 * (c / 4)));
        __m256i u = _mm256_and_si256(_mm256_srli_epi16(q, 2 * (c % 4)), low2);
        if (three) {
            const __m256i hm = _mm256_loadu_si256((const __m256i *)b);
            u = _mm256_or_si256(u, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hm, c), one), 2));
        }
        return u;
    }
    case QS_GGML_Q4_K: case QS_GGML_Q5_K: {
        const int five = type == QS_GGML_Q5_K;
        const __m256i q = _mm256_loadu_si256((const __m256i *)(b + (five ? 48 : 16) + 32 * (c / 2)));
        __m256i u = _mm256_and_si256(c % 2 ? _mm256_srli_epi16(q, 4) : q, low4);
        if (five) {
            const __m256i qh = _mm256_loadu_si256((const __m256i *)(b + 16));
            u = _mm256_or_si256(u, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, c), one), 4));
        }
        return u;
    }
    default: { // Q6_K
        const int half = c / 4, t = c % 4;
        const __m256i ql = _mm256_loadu_si256((const __m256i *)(b + 64 * half + 32 * (t & 1)));
        const __m256i qh = _mm256_loadu_si256((const __m256i *)(b + 128 + 32 * half));
        const __m256i lo = _mm256_and_si256(t < 2 ? ql : _mm256_srli_epi16(ql, 4), low4);
        return _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * t), low2), 4));
    }
    }
}

// A K block's integer scales (sc: 16 int8, per 16-value half, or per 32-value chunk in bytes 0-7 for Q4_K/Q5_K:
// `per_chunk`), its mins per half as int16 (mn), and the float multipliers of the two sums (d, dm).
typedef struct {
    __m128i sc;
    __m256i mn;
    float d, dm;
} k_scales;

AVX2 ALWAYS_INLINE k_scales k_block_scales(const int type, const uint8_t *b) {
    k_scales s;
    switch (type) {
    case QS_GGML_Q2_K: {
        const __m128i v = _mm_loadu_si128((const __m128i *)b);
        s.sc = _mm_and_si128(v, _mm_set1_epi8(0x0F));
        s.mn = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(v, 4), _mm_set1_epi8(0x0F)));
        s.d = half_f16c(b + 80), s.dm = half_f16c(b + 82);
        return s;
    }
    case QS_GGML_Q3_K: {
        int sc[16];
        int8_t sc8[16];
        native_q3k_scales(b + 96, sc);
        for (int h = 0; h < 16; h++) sc8[h] = (int8_t)(sc[h] - 32);
        s.sc = _mm_loadu_si128((const __m128i *)sc8);
        s.mn = _mm256_slli_epi16(_mm256_cvtepi8_epi16(s.sc), 2);
        s.d = s.dm = half_f16c(b + 108);
        return s;
    }
    case QS_GGML_Q4_K: case QS_GGML_Q5_K: {
        // Bytes 0-3 of the scale area hold the low six bits of scales 0-3 (top two bits: scales 4-7's high bits),
        // bytes 4-7 the same for mins 0-3, bytes 8-11 the low four bits of scales 4-7 and (high nibbles) mins 4-7.
        uint32_t w[3];
        memcpy(w, b + 4, 12);
        const uint32_t sc_lo = w[0] & 0x3F3F3F3F, mn_lo = w[1] & 0x3F3F3F3F;
        const uint32_t sc_hi = (w[2] & 0x0F0F0F0F) | ((w[0] >> 6) & 0x03030303) << 4;
        const uint32_t mn_hi = ((w[2] >> 4) & 0x0F0F0F0F) | ((w[1] >> 6) & 0x03030303) << 4;
        s.sc = _mm_setr_epi32((int)sc_lo, (int)sc_hi, 0, 0);
        const __m128i mins = _mm_setr_epi32((int)mn_lo, (int)mn_hi, 0, 0);
        const __m128i twice = _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
        s.mn = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(mins, twice));
        s.d = half_f16c(b), s.dm = half_f16c(b + 2);
        return s;
    }
    default: { // Q6_K
        s.sc = _mm_loadu_si128((const __m128i *)(b + 192));
        s.mn = _mm256_slli_epi16(_mm256_cvtepi8_epi16(s.sc), 5);
        s.d = s.dm = half_f16c(b + 208);
        return s;
    }
    }
}

// Chunk c's scales as 16 int16 lanes: eight for its first 16 values, eight for its second.
AVX2 ALWAYS_INLINE __m256i chunk_scales(const int type, __m128i sc, const int c) {
    const int per_chunk = type == QS_GGML_Q4_K || type == QS_GGML_Q5_K;
    const char lo = (char)(per_chunk ? c : 2 * c), hi = (char)(per_chunk ? c : 2 * c + 1);
    const __m128i pick = _mm_setr_epi8(lo, lo, lo, lo, lo, lo, lo, lo, hi, hi, hi, hi, hi, hi, hi, hi);
    return _mm256_cvtepi8_epi16(_mm_shuffle_epi8(sc, pick));
}

// One K-type weight row against COUNT activation rows (K: per block, int32 sums of the chunks, then two FMAs).
#define K_ROW(COUNT)                                                                                              \
    AVX2 ALWAYS_INLINE void k_row_##COUNT(const int type, float *out, int64_t ldo, const uint8_t *row,             \
                                          const native_activations *a, int64_t cols, int64_t i0, int64_t r) {      \
        const int64_t blocks = cols / 256, bytes = native_block_bytes(type);                                     \
        __m256 acc[COUNT];                                                                                       \
        for (int k = 0; k < COUNT; k++) acc[k] = _mm256_setzero_ps();                                            \
        for (int64_t blk = 0; blk < blocks; blk++) {                                                             \
            const uint8_t *b = row + blk * bytes;                                                                \
            const k_scales s = k_block_scales(type, b);                                                          \
            __m256i sumi[COUNT];                                                                                 \
            for (int k = 0; k < COUNT; k++) sumi[k] = _mm256_setzero_si256();                                    \
            for (int c = 0; c < 8; c++) {                                                                        \
                const __m256i u = codes_avx2(type, b, c), scale = chunk_scales(type, s.sc, c);                   \
                for (int k = 0; k < COUNT; k++) {                                                                \
                    const __m256i x = _mm256_loadu_si256((const __m256i *)(a->q256 + (i0 + k) * cols + blk * 256 + 32 * c)); \
                    sumi[k] = _mm256_add_epi32(sumi[k], _mm256_madd_epi16(_mm256_maddubs_epi16(u, x), scale));   \
                }                                                                                                \
            }                                                                                                    \
            for (int k = 0; k < COUNT; k++) {                                                                    \
                const float dx = a->d256[(i0 + k) * blocks + blk];                                               \
                const __m256i sums = _mm256_loadu_si256((const __m256i *)(a->bs16 + (i0 + k) * (cols / 16) + blk * 16)); \
                const __m256i off = _mm256_madd_epi16(s.mn, sums);                                               \
                acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi[k]), _mm256_set1_ps(s.d * dx), acc[k]);          \
                acc[k] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(off), _mm256_set1_ps(s.dm * dx), acc[k]);            \
            }                                                                                                    \
        }                                                                                                        \
        for (int k = 0; k < COUNT; k++) out[(i0 + k) * ldo + r] = qs_hsum_avx2(acc[k]);                          \
    }
K_ROW(1)
K_ROW(8)

// A 32-value-type weight row decoded once for all the activation rows it meets, in pairs of blocks laid out like the
// paired activations: lo holds values 0-15 of blocks b and b + 1, hi values 16-31. The unsigned types (w = d * u -
// offset) keep their codes; Q8_0 keeps its signed values (w) and their magnitudes (lo, hi). d2: [d_b x4, d_b+1 x4]
// per pair; offset per block. An odd last block stays alone: its codes in `last`.
typedef struct {
    __m256i *lo, *hi, *wlo, *whi, last, wlast;
    float *d2, *d, *offset;
} b32_row_cache;

AVX2 ALWAYS_INLINE void b32_decode_row(const int type, const uint8_t *row, int64_t blocks, b32_row_cache *c) {
    const int64_t bytes = native_block_bytes(type);
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    for (int64_t blk = 0; blk < blocks; blk++) {
        const uint8_t *b = row + blk * bytes;
        const float d = half_f16c(b);
        c->d[blk] = d;
        c->offset[blk] = type == QS_GGML_Q4_1 || type == QS_GGML_Q5_1 ? -half_f16c(b + 2)
                       : type == QS_GGML_Q8_0 ? 0.0f : (type == QS_GGML_Q4_0 ? 8.0f : 16.0f) * d;
    }
    for (int64_t p = 0; p < blocks / 2; p++) {
        const uint8_t *b0 = row + 2 * p * bytes, *b1 = b0 + bytes;
        _mm256_storeu_ps(c->d2 + 8 * p, _mm256_setr_m128(_mm_set1_ps(c->d[2 * p]), _mm_set1_ps(c->d[2 * p + 1])));
        if (type == QS_GGML_Q8_0) {
            const __m256i lo = _mm256_loadu2_m128i((const __m128i *)(b1 + 2), (const __m128i *)(b0 + 2));
            const __m256i hi = _mm256_loadu2_m128i((const __m128i *)(b1 + 18), (const __m128i *)(b0 + 18));
            c->wlo[p] = lo, c->whi[p] = hi;
            c->lo[p] = _mm256_sign_epi8(lo, lo), c->hi[p] = _mm256_sign_epi8(hi, hi);
            continue;
        }
        const int five = type == QS_GGML_Q5_0 || type == QS_GGML_Q5_1;
        const int64_t at = (type == QS_GGML_Q4_0 || type == QS_GGML_Q5_0 ? 2 : 4) + (five ? 4 : 0);
        const __m256i v = _mm256_loadu2_m128i((const __m128i *)(b1 + at), (const __m128i *)(b0 + at));
        __m256i lo = _mm256_and_si256(v, low4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
        if (five) {
            uint32_t h0, h1;
            memcpy(&h0, b0 + at - 4, 4);
            memcpy(&h1, b1 + at - 4, 4);
            lo = _mm256_or_si256(lo, bits_to_0x10((h0 & 0xFFFF) | h1 << 16));
            hi = _mm256_or_si256(hi, bits_to_0x10(h0 >> 16 | (h1 & 0xFFFF0000)));
        }
        c->lo[p] = lo, c->hi[p] = hi;
    }
    if (blocks % 2) {
        const __m256i u = codes_avx2(type, row + (blocks - 1) * bytes, 0);
        c->wlast = u;
        c->last = type == QS_GGML_Q8_0 ? _mm256_sign_epi8(u, u) : u;
    }
}

// One decoded row against COUNT activation rows from i (each its own accumulator, so the FMA chains run side by
// side): per pair of blocks one integer dot (the 4-bit and 5-bit codes' two halves add in int16: at most
// 2 * 2 * 31 * 127 per lane) and one FMA by [d * dx] of both blocks; then the offsets against the activations'
// scaled sums, eight blocks at a time. Each row's order is fixed by cols alone, whatever COUNT is.
AVX2 ALWAYS_INLINE void b32_dot_rows(const int type, const int count, const b32_row_cache *c,
                                     const native_activations *a, int64_t cols, int64_t i, float *out, int64_t ldo) {
    const int64_t blocks = cols / 32, pairs = blocks / 2;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[4];
    for (int k = 0; k < count; k++) acc[k] = _mm256_setzero_ps();
    for (int64_t p = 0; p < pairs; p++) {
        const __m256 wd = _mm256_loadu_ps(c->d2 + 8 * p);
        for (int k = 0; k < count; k++) {
            const int8_t *x = a->pq + (i + k) * cols + 64 * p;
            __m256i x0 = _mm256_loadu_si256((const __m256i *)x), x1 = _mm256_loadu_si256((const __m256i *)(x + 32));
            __m256i dot;
            if (type == QS_GGML_Q8_0) {
                x0 = _mm256_sign_epi8(x0, c->wlo[p]), x1 = _mm256_sign_epi8(x1, c->whi[p]);
                dot = _mm256_add_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(c->lo[p], x0), ones),
                                       _mm256_madd_epi16(_mm256_maddubs_epi16(c->hi[p], x1), ones));
            } else {
                dot = _mm256_madd_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(c->lo[p], x0),
                                                         _mm256_maddubs_epi16(c->hi[p], x1)), ones);
            }
            const __m256 scale = _mm256_mul_ps(wd, _mm256_loadu_ps(a->pd + ((i + k) * (cols / 64) + p) * 8));
            acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), scale, acc[k]);
        }
    }
    for (int k = 0; k < count; k++) {
        if (blocks % 2) {
            const int64_t at = (i + k) * blocks + blocks - 1;
            __m256i xv = _mm256_loadu_si256((const __m256i *)(a->q32 + at * 32));
            if (type == QS_GGML_Q8_0) xv = _mm256_sign_epi8(xv, c->wlast);
            const __m256i dot = _mm256_madd_epi16(_mm256_maddubs_epi16(c->last, xv), ones);
            acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(c->d[blocks - 1] * a->d32[at]), acc[k]);
        }
        float tail = 0;
        if (type != QS_GGML_Q8_0) {
            const float *sx = a->s32 + (i + k) * blocks;
            int64_t blk = 0;
            for (; blk + 8 <= blocks; blk += 8)
                acc[k] = _mm256_fnmadd_ps(_mm256_loadu_ps(c->offset + blk), _mm256_loadu_ps(sx + blk), acc[k]);
            for (; blk < blocks; blk++) tail -= c->offset[blk] * sx[blk];
        }
        out[(i + k) * ldo] = qs_hsum_avx2(acc[k]) + tail;
    }
}

AVX2 ALWAYS_INLINE void rows_avx2_type(const int type, float *out, int64_t ldo, const qs_matrix *w,
                                       const native_activations *a, int64_t n, int64_t r0, int64_t r1) {
    const int64_t cols = w->cols, row_bytes = qs_native_row_bytes(type, cols);
    const int k_type = native_block_values(type) == 256;
    const int64_t blocks = k_type ? 2 : cols / 32, pairs = blocks / 2 + 1, signed_pairs = type == QS_GGML_Q8_0 ? pairs : 1;
    __m256i lo[pairs], hi[pairs], wlo[signed_pairs], whi[signed_pairs];
    float d2[8 * pairs], d[blocks], offset[blocks];
    b32_row_cache cache = {.lo = lo, .hi = hi, .wlo = wlo, .whi = whi, .d2 = d2, .d = d, .offset = offset};
    for (int64_t c0 = 0; c0 < n; c0 += NATIVE_CHUNK) {
        const int64_t c1 = c0 + NATIVE_CHUNK < n ? c0 + NATIVE_CHUNK : n;
        for (int64_t r = r0; r < r1; r++) {
            const uint8_t *row = (const uint8_t *)w->data + r * row_bytes;
            int64_t i = c0;
            if (k_type) {
                for (; i + 8 <= c1; i += 8) k_row_8(type, out, ldo, row, a, cols, i, r);
                for (; i < c1; i++) k_row_1(type, out, ldo, row, a, cols, i, r);
            } else {
                b32_decode_row(type, row, blocks, &cache);
                for (; i + 4 <= c1; i += 4) b32_dot_rows(type, 4, &cache, a, cols, i, out + r, ldo);
                for (; i < c1; i++) b32_dot_rows(type, 1, &cache, a, cols, i, out + r, ldo);
            }
        }
    }
}

// One function per type (the type a constant inside), so that each compiles to its own loop and profiles apart.
#define ROWS_AVX2(NAME, TYPE)                                                                                      \
    AVX2 __attribute__((noinline)) static void rows_avx2_##NAME(float *out, int64_t ldo, const qs_matrix *w,       \
                                                                 const native_activations *a, int64_t n, int64_t r0, \
                                                                 int64_t r1) {                                   \
        rows_avx2_type(TYPE, out, ldo, w, a, n, r0, r1);                                                         \
    }
ROWS_AVX2(q4_0, QS_GGML_Q4_0)
ROWS_AVX2(q4_1, QS_GGML_Q4_1)
ROWS_AVX2(q5_0, QS_GGML_Q5_0)
ROWS_AVX2(q5_1, QS_GGML_Q5_1)
ROWS_AVX2(q8_0, QS_GGML_Q8_0)
ROWS_AVX2(q2_k, QS_GGML_Q2_K)
ROWS_AVX2(q3_k, QS_GGML_Q3_K)
ROWS_AVX2(q4_k, QS_GGML_Q4_K)
ROWS_AVX2(q5_k, QS_GGML_Q5_K)
ROWS_AVX2(q6_k, QS_GGML_Q6_K)

static void native_rows_avx2(float *out, int64_t ldo, const qs_matrix *w, const native_activations *a, int64_t n,
                             int64_t r0, int64_t r1) {
    switch (w->native_type) {
    case QS_GGML_Q4_0: rows_avx2_q4_0(out, ldo, w, a, n, r0, r1); break;
    case QS_GGML_Q4_1: rows_avx2_q4_1(out, ldo, w, a, n, r0, r1); break;
    case QS_GGML_Q5_0: rows_avx2_q5_0(out, ldo, w, a, n, r0, r1); break;
    case QS_GGML_Q5_1: rows_avx2_q5_1(out, ldo, w, a, n, r0, r1); break;
    case QS_GGML_Q8_0: rows_avx2_q8_0(out, ldo, w, a, n, r0, r1); break;
    case QS_GGML_Q2_K: rows_avx2_q2_k(out, ldo, w, a, n, r0, r1); break;
    case QS_GGML_Q3_K: rows_avx2_q3_k(out, ldo, w, a, n, r0, r1); break;
    case QS_GGML_Q4_K: rows_avx2_q4_k(out, ldo, w, a, n, r0, r1); break;
    case QS_GGML_Q5_K: rows_avx2_q5_k(out, ldo, w, a, n, r0, r1); break;
    case QS_GGML_Q6_K: rows_avx2_q6_k(out, ldo, w, a, n, r0, r1); break;
    }
}

// ---- dispatch ----------------------------------------------------------------------------------

enum { NATIVE_MAX = ROW_CHUNKS_MAX };

// The rows of up to NATIVE_MAX matrices in chunks the pool's threads claim (row_chunks.h).
typedef struct {
    int avx2;
    const qs_matrix *w;
    float *const *out;
    const int64_t *ldo;
    native_activations a;
    int64_t n;
    row_chunks chunks;
} native_job;

static void native_task(void *ctx, int index, int count) {
    (void)index;
    (void)count;
    native_job *job = ctx;
    int m;
    int64_t r0, r1;
    while (row_chunks_claim(&job->chunks, job->w, &m, &r0, &r1)) {
        if (job->avx2) native_rows_avx2(job->out[m], job->ldo[m], &job->w[m], &job->a, job->n, r0, r1);
        else native_rows_scalar(job->out[m], job->ldo[m], &job->w[m], &job->a, job->n, r0, r1);
    }
}

void qs_native_matmul_many(qs_pool *pool, qs_variant v, int count, float *const *out, const int64_t *ldo,
                           const qs_matrix *w, const float *x, int64_t n, float *scratch) {
    if (count > NATIVE_MAX) {
        for (int m = 0; m < count; m++) qs_native_matmul_many(pool, v, 1, &out[m], &ldo[m], &w[m], x, n, scratch);
        return;
    }
    const int64_t cols = w[0].cols;
    const int threads = qs_pool_size(pool);
    const int avx2 = v >= QS_VARIANT_AVX2;
    int need32 = 0, need256 = 0;
    for (int m = 0; m < count; m++) {
        if (is_k_type(w[m].native_type)) need256 = 1;
        else need32 = 1;
    }
    const native_activations a = native_layout(scratch, n, cols);
    native_quantize_activations(pool, &a, x, n, cols, need32, need256, avx2);
    native_job job = {.avx2 = avx2, .w = w, .out = out, .ldo = ldo, .a = a, .n = n};
    row_chunks_init(&job.chunks, w, count, threads);
    int64_t rows = 0;
    for (int m = 0; m < count; m++) rows += w[m].rows;
    if (rows * cols * n < 32768 || threads == 1) native_task(&job, 0, 1);
    else qs_pool_run(pool, native_task, &job);
}

// Rows r0 ..< r1 as FP32 through the generic description: w = A * u - B.
void qs_native_dequantize_rows(float *dst, const qs_matrix *w, int64_t r0, int64_t r1) {
    const int type = w->native_type;
    const int64_t cols = w->cols, values = native_block_values(type), row_bytes = qs_native_row_bytes(type, cols);
    const int sgn = native_signed_codes(type);
    float A[16], B[16];
    uint8_t u[32];
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = (const uint8_t *)w->data + r * row_bytes;
        for (int64_t blk = 0; blk < cols / values; blk++) {
            const uint8_t *b = row + blk * native_block_bytes(type);
            native_block_scales(type, b, A, B);
            for (int c = 0; c < values / 32; c++) {
                native_chunk_codes(type, b, c, u);
                for (int j = 0; j < 32; j++) {
                    const float code = sgn ? (float)(int8_t)u[j] : (float)u[j];
                    *dst++ = A[2 * c + j / 16] * code - B[2 * c + j / 16];
                }
            }
        }
    }
}

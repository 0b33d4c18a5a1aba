// The quantized products on the x16 layout (x16_layout.c) with AVX-512 VNNI: the `vnni` kernel variant.
// Lane j of every register is weight row j of a group of sixteen, so a block's integer dot product accumulates in
// place (vpdpbusd for 4-bit codes against int8 activations, vpdpwssd for Q8 against int16 ones) with no horizontal
// sums, and the float scaling takes one multiply and one FMA per sixteen rows. Tiles of R row groups and C
// activation rows reuse each weight register C times and each activation broadcast R times.
// Per (row, activation row) the arithmetic is the same whatever tile computes it: blocks in order, each as
// acc = fma(float(exact int dot), row scale * activation scale, acc), then Q4's zero-point term group by group, so a
// row's result never depends on n, the other rows or the thread count.
#include "qmatmul_x16.h"
#include <immintrin.h>

#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define X16 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))

// NF4 codes scaled to int8 as qmatmul.c has them, plus 128 so they enter vpdpbusd as unsigned bytes; each block's
// dot then carries 128 * (sum of its activations), taken off exactly in int32.
static const uint8_t NF4_U8[16] = {1, 40, 61, 78, 92, 105, 116, 128, 138, 148, 159, 171, 184, 199, 220, 255};

ALWAYS_INLINE int32_t load4(const void *p) {
    int32_t v;
    __builtin_memcpy(&v, p, 4);
    return v;
}

// The sixteen rows' float scales of group g of row group G.
X16 ALWAYS_INLINE __m512 x16_scales(qs_format format, const qs_matrix *w, int64_t G, int64_t groups, int64_t g) {
    const int64_t o = (G * groups + g) * 16;
    if (format == QS_FORMAT_NF4) return _mm512_mul_ps(_mm512_loadu_ps((const float *)w->scales + o), _mm512_set1_ps(1.0f / 127.0f));
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)w->scales + o)));
}

// Stores the tile's results: row group G's lanes to out[i * ldo + 16G ...], the lanes past `rows` left out.
X16 ALWAYS_INLINE void x16_store(float *out, int64_t ldo, int64_t i, int64_t G, int64_t rows, __m512 v) {
    const int64_t left = rows - G * 16;
    const __mmask16 keep = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
    _mm512_mask_storeu_ps(out + i * ldo + G * 16, keep, v);
}

// 4-bit codes (Q4 or NF4): row groups G ..< G + R against activation rows i0 ..< i0 + C.
X16 ALWAYS_INLINE void x16_4bit_tile(const int R, const int C, const qs_format format, float *out, int64_t ldo,
                                     const qs_matrix *w, const quantized_activations *a, const int32_t *bsum,
                                     int64_t G, int64_t i0) {
    const int64_t cols = w->cols, blocks = cols / 32;
    const int64_t group = format == QS_FORMAT_NF4 ? 64 : w->group, groups = cols / group, per = group / 32;
    const uint8_t *wd = (const uint8_t *)w->data;
    const __m512i mask = _mm512_set1_epi8(0x0F);
    const __m512i table = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)NF4_U8));
    __m512 acc[R][C];
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) acc[r][c] = _mm512_setzero_ps();
    for (int64_t b = 0; b < (C == 1 ? blocks : 0); b++) {
        // Decode: one activation row, the codes used as they are unpacked.
        const int8_t *x = a->q + i0 * cols + b * 32;
        __m512i d0[R], d1[R];
        for (int r = 0; r < R; r++) d0[r] = d1[r] = _mm512_setzero_si512();
        for (int m = 0; m < 4; m++) {
            const __m512i xl = _mm512_set1_epi32(load4(x + 8 * m)), xh = _mm512_set1_epi32(load4(x + 8 * m + 4));
            for (int r = 0; r < R; r++) {
                const __m512i v = _mm512_loadu_si512(wd + ((G + r) * blocks + b) * 256 + m * 64);
                __m512i lo = _mm512_and_si512(v, mask), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), mask);
                if (format == QS_FORMAT_NF4) lo = _mm512_shuffle_epi8(table, lo), hi = _mm512_shuffle_epi8(table, hi);
                d0[r] = _mm512_dpbusd_epi32(d0[r], lo, xl);
                d1[r] = _mm512_dpbusd_epi32(d1[r], hi, xh);
            }
        }
        const __m512 dx = _mm512_set1_ps(a->d[i0 * blocks + b]);
        const __m512i offset = _mm512_set1_epi32(format == QS_FORMAT_NF4 ? 128 * bsum[i0 * blocks + b] : 0);
        for (int r = 0; r < R; r++) {
            const __m512i dot = _mm512_add_epi32(d0[r], d1[r]);
            acc[r][0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(dot, offset)),
                                        _mm512_mul_ps(x16_scales(format, w, G + r, groups, b / per), dx), acc[r][0]);
        }
    }
    for (int64_t b = 0; b < (C == 1 ? 0 : blocks); b++) {
        // The block's codes, unpacked once into registers for every activation row: wv[r][2m] holds columns
        // 8m ..< 8m + 4 of each lane, wv[r][2m + 1] columns 8m + 4 ..< 8m + 8.
        __m512i wv[R][8];
        __m512 ws[R];
        for (int r = 0; r < R; r++) {
            for (int m = 0; m < 4; m++) {
                const __m512i v = _mm512_loadu_si512(wd + ((G + r) * blocks + b) * 256 + m * 64);
                wv[r][2 * m] = _mm512_and_si512(v, mask);
                wv[r][2 * m + 1] = _mm512_and_si512(_mm512_srli_epi16(v, 4), mask);
                if (format == QS_FORMAT_NF4) {
                    wv[r][2 * m] = _mm512_shuffle_epi8(table, wv[r][2 * m]);
                    wv[r][2 * m + 1] = _mm512_shuffle_epi8(table, wv[r][2 * m + 1]);
                }
            }
            ws[r] = x16_scales(format, w, G + r, groups, b / per);
        }
        for (int c = 0; c < C; c++) {
            const int8_t *x = a->q + (i0 + c) * cols + b * 32;
            __m512i xq[8];
            for (int k = 0; k < 8; k++) xq[k] = _mm512_set1_epi32(load4(x + 4 * k));
            const __m512 dx = _mm512_set1_ps(a->d[(i0 + c) * blocks + b]);
            const __m512i offset = _mm512_set1_epi32(format == QS_FORMAT_NF4 ? 128 * bsum[(i0 + c) * blocks + b] : 0);
            for (int r = 0; r < R; r++) {
                // Two chains of four (the dot products' latency, not their throughput, bounds decode).
                __m512i d0 = _mm512_setzero_si512(), d1 = _mm512_setzero_si512();
                for (int k = 0; k < 8; k += 2) {
                    d0 = _mm512_dpbusd_epi32(d0, wv[r][k], xq[k]);
                    d1 = _mm512_dpbusd_epi32(d1, wv[r][k + 1], xq[k + 1]);
                }
                const __m512i dot = _mm512_add_epi32(d0, d1);
                acc[r][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(dot, offset)), _mm512_mul_ps(ws[r], dx), acc[r][c]);
            }
        }
    }
    if (format == QS_FORMAT_Q4) {
        for (int64_t g = 0; g < groups; g++) {
            for (int r = 0; r < R; r++) {
                const __m128i z = _mm_loadu_si128((const __m128i *)(w->zeros + ((G + r) * groups + g) * 16));
                const __m512 wz = _mm512_mul_ps(x16_scales(format, w, G + r, groups, g), _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(z)));
                for (int c = 0; c < C; c++)
                    acc[r][c] = _mm512_fnmadd_ps(wz, _mm512_set1_ps(a->gsum[(i0 + c) * groups + g]), acc[r][c]);
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) x16_store(out, ldo, i0 + c, G + r, w->rows, acc[r][c]);
}

// Q8 against int16 activations split into two signed bytes (x16_split_wide): x = 256 h + l. The weights are stored
// as u = w + 128, the unsigned operand of vpdpbusd, so u . x = 256 (u . h) + u . l and
// w . x = u . x - 128 * sum(x), exactly in int32 (|u . x| < 2^28; sum(x) per block is bsum).
X16 ALWAYS_INLINE void x16_q8_tile(const int C, float *out, int64_t ldo, const qs_matrix *w,
                                   const quantized_activations *a, const int32_t *bsum, int64_t G, int64_t i0) {
    const int64_t cols = w->cols, blocks = cols / 32;
    const uint8_t *xs = (const uint8_t *)a->q16;
    __m512 acc[C];
    for (int c = 0; c < C; c++) acc[c] = _mm512_setzero_ps();
    for (int64_t b = 0; b < blocks; b++) {
        // The block's weights stay in registers for both byte planes of every activation row: the high plane's
        // dot shifted by 8 plus the low plane's (at most 2^28 in magnitude).
        const uint8_t *wb = (const uint8_t *)w->data + (G * blocks + b) * 512;
        __m512i wv[8];
        for (int m = 0; m < 8; m++) wv[m] = _mm512_loadu_si512(wb + m * 64);
        const __m512 ws = x16_scales(QS_FORMAT_Q8, w, G, blocks, b);
        for (int c = 0; c < C; c++) {
            const uint8_t *x = xs + 2 * ((i0 + c) * cols + b * 32);
            // Four chains of four (latency bounds decode): the high plane in h0, h1, the low one in l0, l1.
            __m512i h0 = _mm512_setzero_si512(), h1 = h0, l0 = h0, l1 = h0;
            for (int m = 0; m < 8; m += 2) {
                h0 = _mm512_dpbusd_epi32(h0, wv[m], _mm512_set1_epi32(load4(x + 8 * m + 4)));
                h1 = _mm512_dpbusd_epi32(h1, wv[m + 1], _mm512_set1_epi32(load4(x + 8 * m + 12)));
                l0 = _mm512_dpbusd_epi32(l0, wv[m], _mm512_set1_epi32(load4(x + 8 * m)));
                l1 = _mm512_dpbusd_epi32(l1, wv[m + 1], _mm512_set1_epi32(load4(x + 8 * m + 8)));
            }
            const __m512i offset = _mm512_set1_epi32(128 * bsum[(i0 + c) * blocks + b]);
            const __m512i dot = _mm512_add_epi32(_mm512_slli_epi32(_mm512_add_epi32(h0, h1), 8), _mm512_add_epi32(l0, l1));
            const __m512 dx = _mm512_set1_ps(a->d[(i0 + c) * blocks + b]);
            acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(dot, offset)), _mm512_mul_ps(ws, dx), acc[c]);
        }
    }
    for (int c = 0; c < C; c++) x16_store(out, ldo, i0 + c, G, w->rows, acc[c]);
}

// The int16 activations rearranged in place for x16_q8_tile: every four values x_k = 256 h_k + l_k (both signed
// bytes: l the sign-extended low byte, h = (x - l) / 256, in range because |x| <= 32639) become the eight bytes
// [l0 l1 l2 l3 h0 h1 h2 h3]; and per block of 32 the sum of the values, into bsum [count / 32].
void x16_split_wide(int16_t *q16, int32_t *bsum, int64_t count) {
    for (int64_t b = 0; b < count / 32; b++) {
        int32_t sum = 0;
        for (int64_t i = b * 32; i < b * 32 + 32; i += 4) {
            int8_t t[8];
            for (int k = 0; k < 4; k++) {
                const int x = q16[i + k];
                const int l = (int8_t)(x & 0xFF);
                t[k] = (int8_t)l, t[4 + k] = (int8_t)((x - l) / 256);
                sum += x;
            }
            __builtin_memcpy(q16 + i, t, 8);
        }
        bsum[b] = sum;
    }
}

// Tile functions for a format and row-group count, choosing the activation rows' count at run time.
#define X16_4BIT_TILE(NAME, R, FORMAT)                                                                            \
    X16 static void NAME(int C, float *out, int64_t ldo, const qs_matrix *w, const quantized_activations *a,     \
                         const int32_t *bsum, int64_t G, int64_t i) {                                             \
        switch (C) {                                                                                              \
        case 4: x16_4bit_tile(R, 4, FORMAT, out, ldo, w, a, bsum, G, i); break;                                   \
        case 3: x16_4bit_tile(R, 3, FORMAT, out, ldo, w, a, bsum, G, i); break;                                   \
        case 2: x16_4bit_tile(R, 2, FORMAT, out, ldo, w, a, bsum, G, i); break;                                   \
        default: x16_4bit_tile(R, 1, FORMAT, out, ldo, w, a, bsum, G, i); break;                                  \
        }                                                                                                         \
    }
X16_4BIT_TILE(q4_tile_1, 1, QS_FORMAT_Q4)
X16_4BIT_TILE(q4_tile_2, 2, QS_FORMAT_Q4)
X16_4BIT_TILE(nf4_tile_1, 1, QS_FORMAT_NF4)
X16_4BIT_TILE(nf4_tile_2, 2, QS_FORMAT_NF4)

X16 static void q8_tile(int C, float *out, int64_t ldo, const qs_matrix *w, const quantized_activations *a,
                        const int32_t *bsum, int64_t G, int64_t i) {
    switch (C) {
    case 4: x16_q8_tile(4, out, ldo, w, a, bsum, G, i); break;
    case 3: x16_q8_tile(3, out, ldo, w, a, bsum, G, i); break;
    case 2: x16_q8_tile(2, out, ldo, w, a, bsum, G, i); break;
    default: x16_q8_tile(1, out, ldo, w, a, bsum, G, i); break;
    }
}

typedef void (*x16_tile_fn)(int, float *, int64_t, const qs_matrix *, const quantized_activations *, const int32_t *,
                            int64_t, int64_t);

#ifndef QS_X16_ACTIVATION_CHUNK
#define QS_X16_ACTIVATION_CHUNK 16
#endif

void qmatmul_x16(float *out, int64_t ldo, const qs_matrix *w, const quantized_activations *a, const int32_t *bsum,
                 int64_t n, int64_t r0, int64_t r1) {
    // Q8 keeps a whole block of one row group in registers; the 4-bit formats take two row groups at a time.
    const int step = w->format == QS_FORMAT_Q8 ? 1 : 2;
    x16_tile_fn one = w->format == QS_FORMAT_Q8 ? q8_tile : w->format == QS_FORMAT_Q4 ? q4_tile_1 : nf4_tile_1;
    x16_tile_fn two = w->format == QS_FORMAT_Q4 ? q4_tile_2 : nf4_tile_2;
    const int64_t g1 = (r1 + 15) / 16;
    // Activation rows in chunks that stay in L1 while the rows' weights (in L2 after the first chunk) pass over them.
    for (int64_t c0 = 0; c0 < n; c0 += QS_X16_ACTIVATION_CHUNK) {
        const int64_t c1 = c0 + QS_X16_ACTIVATION_CHUNK < n ? c0 + QS_X16_ACTIVATION_CHUNK : n;
        for (int64_t G = r0 / 16; G < g1; G += step) {
            const x16_tile_fn tile = step == 2 && G + 2 <= g1 ? two : one;
            for (int64_t i = c0; i < c1; i += 4) tile(c1 - i < 4 ? (int)(c1 - i) : 4, out, ldo, w, a, bsum, G, i);
            if (step == 2 && G + 2 > g1) break;
        }
    }
}

// Rows i0 ..< i1: per block, the sum of the int8 codes (NF4's offset term), into bsum [n, cols / 32].
void x16_block_sums(int32_t *bsum, const quantized_activations *a, int64_t i0, int64_t i1, int64_t cols) {
    for (int64_t k = i0 * (cols / 32); k < i1 * (cols / 32); k++) {
        int32_t s = 0;
        for (int j = 0; j < 32; j++) s += a->q[k * 32 + j];
        bsum[k] = s;
    }
}

void x16_group_sums(const quantized_activations *a, int64_t i0, int64_t i1, int64_t cols, int64_t group) {
    const int64_t blocks = cols / 32, per = group / 32;
    for (int64_t i = i0; i < i1; i++) {
        float sum = 0;
        for (int64_t b = 0; b < blocks; b++) {
            const int64_t k = i * blocks + b;
            int32_t s = 0;
            for (int j = 0; j < 32; j++) s += a->q[k * 32 + j];
            sum += a->d[k] * (float)s;
            if ((b + 1) % per == 0) {
                a->gsum[k / per] = sum;
                sum = 0;
            }
        }
    }
}

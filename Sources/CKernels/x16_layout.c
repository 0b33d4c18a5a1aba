// The x16 layout of the quantized formats (CKernels.h): sixteen weight rows interleaved so that one 512-bit register
// holds the same few columns of all sixteen, lane j being row j. Packing and unpacking are exact copies of codes and
// scales; nothing is rounded again.
#include "x16_layout.h"
#include <string.h>

// Row group G (rows 16G ..< 16G + 16), block b (columns 32b ..< 32b + 32); rows past the matrix's end are zero.
//   Q8:       512 bytes per (G, b): quad m = 0..7 at 64m, lane j's four values (columns 32b + 4m + t, t = 0..3) at
//             4j + t, each stored as w + 128 (w ^ 0x80), an unsigned byte for vpdpbusd.
//   Q4, NF4:  256 bytes per (G, b): quad m = 0..3 at 64m, lane j's byte 4j + t (t = 0..3) holding column
//             32b + 8m + t in its low nibble and 32b + 8m + 4 + t in its high one.
//   scales, zeros: per (G, group) sixteen values, lane j's at j (fp16 for Q8 and Q4, f32 absmax for NF4, u8 zeros).

static int64_t group_size(const qs_matrix *w) {
    return w->format == QS_FORMAT_Q8 ? 32 : w->format == QS_FORMAT_NF4 ? 64 : w->group;
}

enum { QS_X16_Q8_BLOCK = 512 };

static int64_t padded_rows(int64_t rows) { return (rows + 15) / 16 * 16; }

int64_t qs_matrix_x16_bytes(qs_format f, int64_t rows, int64_t cols, int64_t group, int part) {
    const int64_t r = padded_rows(rows);
    switch (part) {
    case 0: return f == QS_FORMAT_Q8 ? r / 16 * (cols / 32) * QS_X16_Q8_BLOCK : f == QS_FORMAT_Q4 || f == QS_FORMAT_NF4 ? r * cols / 2 : 0;
    case 1: return qs_matrix_scale_bytes(f, r, cols, group);
    default: return qs_matrix_zero_bytes(f, r, cols, group);
    }
}

// Byte offset of (row r, column k) in the x16 data, and whether the value is in the high nibble (4-bit formats).
static inline int64_t x16_offset(const qs_matrix *w, int64_t r, int64_t k, int *high) {
    const int64_t blocks = w->cols / 32, G = r / 16, j = r % 16, b = k / 32, kk = k % 32;
    if (w->format == QS_FORMAT_Q8) {
        *high = 0;
        return (G * blocks + b) * QS_X16_Q8_BLOCK + (kk / 4) * 64 + 4 * j + kk % 4;
    }
    const int64_t m = kk / 8, within = kk % 8;
    *high = within >= 4;
    return (G * blocks + b) * 256 + m * 64 + 4 * j + within % 4;
}

static int64_t scale_size(qs_format f) { return f == QS_FORMAT_NF4 ? 4 : 2; }

// The 32 codes of block b of a row-major 4-bit row (byte j: column j low, column j + 16 high).
static inline void unpack_block(uint8_t *codes, const uint8_t *src) {
    for (int j = 0; j < 16; j++) codes[j] = src[j] & 0xF, codes[j + 16] = src[j] >> 4;
}

void qs_matrix_pack_x16(void *data, void *scales, uint8_t *zeros, const qs_matrix *src) {
    const int64_t rows = src->rows, cols = src->cols, blocks = cols / 32, groups = cols / group_size(src);
    const int64_t ss = scale_size(src->format);
    memset(data, 0, (size_t)qs_matrix_x16_bytes(src->format, rows, cols, src->group, 0));
    memset(scales, 0, (size_t)qs_matrix_x16_bytes(src->format, rows, cols, src->group, 1));
    if (zeros) memset(zeros, 0, (size_t)qs_matrix_x16_bytes(src->format, rows, cols, src->group, 2));
    uint8_t *d = data;
    const uint8_t *s = src->data;
    for (int64_t r = 0; r < rows; r++) {
        const int64_t G = r / 16, j = r % 16;
        for (int64_t b = 0; b < blocks; b++) {
            if (src->format == QS_FORMAT_Q8) {
                const uint8_t *q = s + r * cols + b * 32;
                uint8_t *block = d + (G * blocks + b) * QS_X16_Q8_BLOCK;
                for (int m = 0; m < 8; m++)
                    for (int t = 0; t < 4; t++) block[m * 64 + 4 * j + t] = (uint8_t)(q[4 * m + t] ^ 0x80);
                continue;
            }
            uint8_t codes[32];
            unpack_block(codes, s + r * (cols / 2) + b * 16);
            uint8_t *block = d + (G * blocks + b) * 256;
            for (int m = 0; m < 4; m++)
                for (int t = 0; t < 4; t++) block[m * 64 + 4 * j + t] = (uint8_t)(codes[8 * m + t] | codes[8 * m + 4 + t] << 4);
        }
        for (int64_t g = 0; g < groups; g++) {
            const int64_t o = (G * groups + g) * 16 + j;
            memcpy((uint8_t *)scales + o * ss, (const uint8_t *)src->scales + (r * groups + g) * ss, (size_t)ss);
            if (zeros) zeros[o] = src->zeros[r * groups + g];
        }
    }
}

void qs_matrix_unpack_x16_rows(void *data, void *scales, uint8_t *zeros, const qs_matrix *src, int64_t r0, int64_t r1) {
    const int64_t cols = src->cols, groups = cols / group_size(src), ss = scale_size(src->format);
    const uint8_t *s = src->data;
    uint8_t *d = data;
    if (src->format != QS_FORMAT_Q8) memset(d, 0, (size_t)((r1 - r0) * cols / 2));
    for (int64_t r = r0; r < r1; r++) {
        for (int64_t k = 0; k < cols; k++) {
            int high;
            const uint8_t byte = s[x16_offset(src, r, k, &high)];
            if (src->format == QS_FORMAT_Q8) {
                d[(r - r0) * cols + k] = (uint8_t)(byte ^ 0x80);
                continue;
            }
            const uint8_t code = high ? byte >> 4 : byte & 0xF;
            const int64_t within = k % 32;
            d[((r - r0) * cols + k - within) / 2 + within % 16] |= (uint8_t)(within < 16 ? code : code << 4);
        }
        for (int64_t g = 0; g < groups; g++) {
            const int64_t o = (r / 16 * groups + g) * 16 + r % 16;
            memcpy((uint8_t *)scales + ((r - r0) * groups + g) * ss, (const uint8_t *)src->scales + o * ss, (size_t)ss);
            if (zeros) zeros[(r - r0) * groups + g] = src->zeros[o];
        }
    }
}

qs_matrix x16_unpacked_row(const qs_matrix *w, int64_t r, void *data, void *scales, uint8_t *zeros) {
    qs_matrix row = *w;
    row.rows = 1;
    row.layout = QS_LAYOUT_ROWS;
    row.data = data;
    row.scales = scales;
    row.zeros = w->format == QS_FORMAT_Q4 ? zeros : NULL;
    qs_matrix_unpack_x16_rows(data, scales, (uint8_t *)row.zeros, w, r, r + 1);
    return row;
}

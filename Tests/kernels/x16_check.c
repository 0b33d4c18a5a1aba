// x16_check: the quantized products (Q8, Q4 at groups 32-128, NF4) of every kernel variant against the scalar
// reference on the row-major layout, and the x16 layout's packing, built from Sources/CKernels alone:
//   cc -O3 -fno-math-errno -ISources/CKernels/include -o x16_check Tests/kernels/x16_check.c Sources/CKernels/*.c -lpthread -lm
//   ./x16_check [threads [tolerance]]      checks; exit status 0 only on PASS
//   ./x16_check bench [threads]            times row-major avx2 against x16 vnni (decode n=1, prefill n=128)
// Per variant v this CPU runs (x16 layout for `vnni`, row-major for the others), format, shape and n:
//   err:   |out - scalar| / sum|w*x| (the scalar reference on the row-major matrix; tolerance 1e-5 unless given);
//   batch: row i of an n-row call equals the 1-row call on x_i bit for bit;
//   thr:   a call on a pool of `threads` equals the call on a pool of 1 bit for bit;
//   pack:  unpacking the x16 matrix gives the row-major parts back byte for byte, its dequantized rows are the same
//          floats, and the scalar reference on the x16 matrix gives the row-major scalar results bit for bit.
// Also the device kit's harness (EXTRA_CHECKS): argv[1] = threads, one line per (variant, format), last line PASS/FAIL.
#include "CKernels.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static double uniform(void) {
    rng_state ^= rng_state >> 12; rng_state ^= rng_state << 25; rng_state ^= rng_state >> 27;
    return (double)((rng_state * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}
static float gauss(void) {
    double u = uniform() + 1e-12, v = uniform();
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

typedef struct {
    qs_matrix m;
    void *data, *scales;
    uint8_t *zeros;
} owned_matrix;

static owned_matrix quantized(qs_format f, int64_t rows, int64_t cols, int64_t group, const float *src) {
    owned_matrix o = {0};
    o.data = malloc((size_t)qs_matrix_data_bytes(f, rows, cols));
    o.scales = malloc((size_t)qs_matrix_scale_bytes(f, rows, cols, group));
    int64_t zb = qs_matrix_zero_bytes(f, rows, cols, group);
    o.zeros = zb ? malloc((size_t)zb) : NULL;
    if (f == QS_FORMAT_Q8) qs_quantize_q8(o.data, o.scales, src, rows, cols);
    else if (f == QS_FORMAT_Q4) qs_quantize_q4(o.data, o.scales, o.zeros, src, rows, cols, group, NULL);
    else qs_quantize_nf4(o.data, o.scales, src, rows, cols);
    o.m = (qs_matrix){f, rows, cols, group, o.data, o.scales, o.zeros, QS_LAYOUT_ROWS};
    return o;
}

static owned_matrix packed(const owned_matrix *src) {
    const qs_matrix *m = &src->m;
    owned_matrix o = {0};
    o.data = malloc((size_t)qs_matrix_x16_bytes(m->format, m->rows, m->cols, m->group, 0));
    o.scales = malloc((size_t)qs_matrix_x16_bytes(m->format, m->rows, m->cols, m->group, 1));
    int64_t zb = qs_matrix_x16_bytes(m->format, m->rows, m->cols, m->group, 2);
    o.zeros = zb ? malloc((size_t)zb) : NULL;
    qs_matrix_pack_x16(o.data, o.scales, o.zeros, m);
    o.m = *m;
    o.m.data = o.data, o.m.scales = o.scales, o.m.zeros = o.zeros, o.m.layout = QS_LAYOUT_X16;
    return o;
}

static void release(owned_matrix *o) { free(o->data); free(o->scales); free(o->zeros); }

static float *product(qs_pool *pool, qs_variant v, const qs_matrix *m, const float *x, int64_t n) {
    float *out = malloc((size_t)(n * m->rows) * sizeof(float));
    float *scratch = malloc((size_t)qs_activation_scratch_floats(n, m->cols) * sizeof(float));
    qs_matmul(pool, v, out, m->rows, m, x, n, scratch);
    free(scratch);
    return out;
}

static const char *format_name(qs_format f) { return f == QS_FORMAT_Q8 ? "q8" : f == QS_FORMAT_Q4 ? "q4" : "nf4"; }

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int bench(int threads) {
    qs_pool *pool = qs_pool_create(threads);
    const int64_t shapes[][2] = {{896, 896}, {4864, 896}, {896, 4864}};
    const qs_format formats[] = {QS_FORMAT_Q8, QS_FORMAT_Q4, QS_FORMAT_NF4};
    printf("threads %d; GOP/s (2 * rows * cols * n / time)\n", threads);
    for (int f = 0; f < 3; f++) {
        for (int s = 0; s < 3; s++) {
            const int64_t rows = shapes[s][0], cols = shapes[s][1];
            float *w = malloc((size_t)(rows * cols) * sizeof(float));
            for (int64_t i = 0; i < rows * cols; i++) w[i] = gauss();
            owned_matrix q = quantized(formats[f], rows, cols, 128, w), x16 = packed(&q);
            for (int pass = 0; pass < 2; pass++) {
                const int64_t n = pass == 0 ? 1 : 128;
                float *x = malloc((size_t)(n * cols) * sizeof(float));
                for (int64_t i = 0; i < n * cols; i++) x[i] = gauss();
                float *out = malloc((size_t)(n * rows) * sizeof(float));
                float *scratch = malloc((size_t)qs_activation_scratch_floats(n, cols) * sizeof(float));
                double rate[2] = {0, 0};
                for (int k = 0; k < 2; k++) {
                    const qs_variant v = k == 0 ? QS_VARIANT_AVX2 : QS_VARIANT_VNNI;
                    const qs_matrix *m = k == 0 ? &q.m : &x16.m;
                    if (!qs_variant_supported(v)) continue;
                    const int reps = n == 1 ? 2000 : 20;
                    qs_matmul(pool, v, out, rows, m, x, n, scratch);
                    double best = 1e9;
                    for (int round = 0; round < 3; round++) {
                        double t0 = now();
                        for (int r = 0; r < reps; r++) qs_matmul(pool, v, out, rows, m, x, n, scratch);
                        double t = (now() - t0) / reps;
                        if (t < best) best = t;
                    }
                    rate[k] = 2.0 * rows * cols * n / best / 1e9;
                }
                printf("%-4s %5lldx%-5lld n=%-4lld avx2 %7.1f  vnni x16 %7.1f  (%.2fx)\n", format_name(formats[f]),
                       (long long)rows, (long long)cols, (long long)n, rate[0], rate[1], rate[0] > 0 ? rate[1] / rate[0] : 0);
                free(x), free(out), free(scratch);
            }
            release(&q), release(&x16), free(w);
        }
    }
    qs_pool_destroy(pool);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "bench") == 0) return bench(argc > 2 ? atoi(argv[2]) : 1);
    int threads = argc > 1 ? atoi(argv[1]) : 4;
    if (threads < 1) threads = 1;
    const double tolerance = argc > 2 ? atof(argv[2]) : 1e-5;
    qs_pool *pool = qs_pool_create(threads), *single = qs_pool_create(1);
    const int64_t shapes[][2] = {{16, 128}, {40, 256}, {88, 384}, {184, 128}, {200, 896}, {96, 4864}, {128, 896}};
    const int64_t ns[] = {1, 2, 3, 4, 5, 7, 8, 13, 33, 70};
    struct { qs_format f; int64_t group; } formats[] = {
        {QS_FORMAT_Q8, 32}, {QS_FORMAT_Q4, 32}, {QS_FORMAT_Q4, 64}, {QS_FORMAT_Q4, 128}, {QS_FORMAT_NF4, 64}};
    long failures = 0, checked_variants = 0;
    for (int v = 1; v < 16; v++) {
        if (strcmp(qs_variant_name((qs_variant)v), "unknown") == 0) continue;
        if (!qs_variant_supported((qs_variant)v)) {
            printf("variant %s: not on this CPU\n", qs_variant_name((qs_variant)v));
            continue;
        }
        checked_variants++;
        for (size_t fi = 0; fi < sizeof formats / sizeof formats[0]; fi++) {
            double max_err = 0;
            long cases = 0, err_fail = 0, batch_fail = 0, thread_fail = 0, pack_fail = 0, nan_fail = 0;
            for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
                const int64_t rows = shapes[s][0], cols = shapes[s][1], group = formats[fi].group;
                if (cols % group || (formats[fi].f == QS_FORMAT_NF4 && cols % 64)) continue;
                float *w = malloc((size_t)(rows * cols) * sizeof(float));
                for (int64_t i = 0; i < rows * cols; i++) w[i] = gauss() * (i % 7 == 0 ? 3.0f : 1.0f);
                owned_matrix q = quantized(formats[fi].f, rows, cols, group, w), x16 = packed(&q);
                const int use_x16 = v >= QS_VARIANT_VNNI;
                const qs_matrix *m = use_x16 ? &x16.m : &q.m;
                // The layout round trip and its size (once per matrix): the codes' bytes, rows padded to 16.
                if (v == 1) {
                    const int64_t r16 = (rows + 15) / 16 * 16;
                    const int64_t want = q.m.format == QS_FORMAT_Q8 ? r16 * cols : r16 * cols / 2;
                    if (qs_matrix_x16_bytes(q.m.format, rows, cols, group, 0) != want ||
                        qs_matrix_x16_bytes(q.m.format, rows, cols, group, 1) != qs_matrix_scale_bytes(q.m.format, r16, cols, group))
                        pack_fail++;
                    void *d = malloc((size_t)qs_matrix_data_bytes(q.m.format, rows, cols));
                    void *sc = malloc((size_t)qs_matrix_scale_bytes(q.m.format, rows, cols, group));
                    int64_t zb = qs_matrix_zero_bytes(q.m.format, rows, cols, group);
                    uint8_t *z = zb ? malloc((size_t)zb) : NULL;
                    qs_matrix_unpack_x16_rows(d, sc, z, &x16.m, 0, rows);
                    if (memcmp(d, q.data, (size_t)qs_matrix_data_bytes(q.m.format, rows, cols)) ||
                        memcmp(sc, q.scales, (size_t)qs_matrix_scale_bytes(q.m.format, rows, cols, group)) ||
                        (z && memcmp(z, q.zeros, (size_t)zb)))
                        pack_fail++;
                    float *a = malloc((size_t)(rows * cols) * sizeof(float)), *b = malloc((size_t)(rows * cols) * sizeof(float));
                    qs_matrix_dequantize_rows(a, &q.m, 0, rows);
                    qs_matrix_dequantize_rows(b, &x16.m, 0, rows);
                    if (memcmp(a, b, (size_t)(rows * cols) * sizeof(float))) pack_fail++;
                    free(a), free(b), free(d), free(sc), free(z);
                }
                for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
                    const int64_t n = ns[ni];
                    float *x = malloc((size_t)(n * cols) * sizeof(float));
                    for (int64_t i = 0; i < n * cols; i++) x[i] = gauss() * (i % 11 == 0 ? 4.0f : 1.0f);
                    float *ref = product(single, QS_VARIANT_SCALAR, &q.m, x, n);
                    float *got = product(single, (qs_variant)v, m, x, n);
                    float *par = product(pool, (qs_variant)v, m, x, n);
                    if (v == 1 && n <= 4) {
                        float *scalar_x16 = product(single, QS_VARIANT_SCALAR, &x16.m, x, n);
                        if (memcmp(scalar_x16, ref, (size_t)(n * rows) * sizeof(float))) pack_fail++;
                        free(scalar_x16);
                    }
                    float *deq = malloc((size_t)(rows * cols) * sizeof(float));
                    qs_matrix_dequantize_rows(deq, &q.m, 0, rows);
                    for (int64_t i = 0; i < n; i++) {
                        float *alone = product(single, (qs_variant)v, m, x + i * cols, 1);
                        for (int64_t r = 0; r < rows; r++) {
                            double mag = 0;
                            for (int64_t k = 0; k < cols; k++) mag += fabs((double)deq[r * cols + k] * x[i * cols + k]);
                            const float o = got[i * rows + r];
                            if (!isfinite(o)) nan_fail++;
                            const double e = fabs((double)o - ref[i * rows + r]) / (mag > 0 ? mag : 1);
                            if (e > max_err) max_err = e;
                            if (e > tolerance) err_fail++;
                            if (memcmp(&alone[r], &o, sizeof o)) batch_fail++;
                            if (memcmp(&par[i * rows + r], &o, sizeof o)) thread_fail++;
                            cases++;
                        }
                        free(alone);
                    }
                    free(deq), free(x), free(ref), free(got), free(par);
                }
                release(&q), release(&x16), free(w);
            }
            const long bad = err_fail + batch_fail + thread_fail + pack_fail + nan_fail;
            failures += bad;
            printf("%-6s %-4s g%-3lld outputs %7ld max_norm_err %.2e err %ld batch %ld thr %ld pack %ld nan %ld %s\n",
                   qs_variant_name((qs_variant)v), format_name(formats[fi].f), (long long)formats[fi].group, cases,
                   max_err, err_fail, batch_fail, thread_fail, pack_fail, nan_fail, bad ? "FAIL" : "ok");
        }
    }
    qs_pool_destroy(pool), qs_pool_destroy(single);
    printf("%s: %ld variants checked against scalar, %ld failures\n", failures ? "FAIL" : "PASS", checked_variants, failures);
    return failures ? 1 : 0;
}

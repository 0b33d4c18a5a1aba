// Times the quantized matrix products of one token's forward pass over Qwen2.5-0.5B's shapes (24 layers of q, k, v,
// o, gate, up, down; then the output matrix), without the rest of the engine: decode (1 row) and prefill (n rows).
// Weights are random, quantized with the product's own quantizers, and distinct per layer so decode streams them
// from memory as the engine does. Reports matmul-only tokens/s and the bytes-per-second it implies.
//   make -C Benchmarks/kernels && Benchmarks/kernels/qmatmul_bench [int4|int8|nf4] [threads] [prefill rows] [separate]
#include "CKernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <immintrin.h>

enum { LAYERS = 24, HIDDEN = 896, INTER = 4864, KV = 128, VOCAB = 151936 };

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

// The read bandwidth the products are bounded by: a 1 GiB buffer summed by the pool's threads, best of five.
typedef struct { const __m256i *data; int64_t count; } read_job;

__attribute__((target("avx2"))) static void read_task(void *ctx, int index, int count) {
    const read_job *job = ctx;
    const int64_t first = job->count * index / count, last = job->count * (index + 1) / count;
    __m256i acc = _mm256_setzero_si256();
    for (int64_t i = first; i < last; i++) acc = _mm256_add_epi64(acc, _mm256_load_si256(job->data + i));
    volatile long long sink = _mm256_extract_epi64(acc, 0);
    (void)sink;
}

static double read_bandwidth(qs_pool *pool) {
    const int64_t bytes = (int64_t)1 << 30;
    __m256i *data = aligned_alloc(64, bytes);
    memset(data, 1, bytes);
    read_job job = {data, bytes / 32};
    double best = 1e9;
    for (int i = 0; i < 5; i++) {
        double t0 = now();
        qs_pool_run(pool, read_task, &job);
        if (now() - t0 < best) best = now() - t0;
    }
    free(data);
    return bytes / best / 1e9;
}

static float *random_floats(int64_t n, unsigned *seed) {
    float *x = malloc(n * sizeof(float));
    for (int64_t i = 0; i < n; i++) x[i] = (float)rand_r(seed) / (float)RAND_MAX * 2 - 1;
    return x;
}

static qs_matrix make_matrix(qs_format f, int64_t rows, int64_t cols, unsigned *seed) {
    int64_t group = f == QS_FORMAT_Q8 ? 32 : f == QS_FORMAT_NF4 ? 64 : 128;
    qs_matrix m = {f, rows, cols, group, NULL, NULL, NULL};
    void *data = aligned_alloc(64, (qs_matrix_data_bytes(f, rows, cols) + 63) / 64 * 64);
    void *scales = malloc(qs_matrix_scale_bytes(f, rows, cols, group));
    uint8_t *zeros = f == QS_FORMAT_Q4 ? malloc(qs_matrix_zero_bytes(f, rows, cols, group)) : NULL;
    const int64_t chunk = 256;
    float *src = random_floats(chunk * cols, seed);
    for (int64_t r = 0; r < rows; r += chunk) {
        int64_t n = rows - r < chunk ? rows - r : chunk;
        switch (f) {
        case QS_FORMAT_Q8: qs_quantize_q8((int8_t *)data + r * cols, (uint16_t *)scales + r * (cols / 32), src, n, cols); break;
        case QS_FORMAT_Q4:
            qs_quantize_q4((uint8_t *)data + r * cols / 2, (uint16_t *)scales + r * (cols / group), zeros + r * (cols / group),
                           src, n, cols, group, NULL);
            break;
        default: qs_quantize_nf4((uint8_t *)data + r * cols / 2, (float *)scales + r * (cols / 64), src, n, cols); break;
        }
    }
    free(src);
    m.data = data;
    m.scales = scales;
    m.zeros = zeros;
    return m;
}

// One layer's products as the engine makes them: q, k and v in one call, o, gate and up in one, down.
static int separate = 0;

static void layer(qs_pool *pool, qs_variant v, const qs_matrix *w, float *out, const float *x, int64_t n, float *scratch) {
    if (separate) {
        for (int k = 0; k < 7; k++) qs_matmul(pool, v, out, w[k].rows, &w[k], x, n, scratch);
        return;
    }
    float *qkv[3] = {out, out + n * HIDDEN, out + n * (HIDDEN + KV)};
    int64_t ldo[3] = {HIDDEN, KV, KV};
    qs_matmul_many(pool, v, 3, qkv, ldo, w, x, n, scratch);
    qs_matmul(pool, v, out, HIDDEN, &w[3], x, n, scratch);
    float *gate_up[2] = {out, out + n * INTER};
    int64_t ldo2[2] = {INTER, INTER};
    qs_matmul_many(pool, v, 2, gate_up, ldo2, &w[4], x, n, scratch);
    qs_matmul(pool, v, out, HIDDEN, &w[6], x, n, scratch);
}

static int64_t matrix_bytes(const qs_matrix *m) {
    return qs_matrix_data_bytes(m->format, m->rows, m->cols) + qs_matrix_scale_bytes(m->format, m->rows, m->cols, m->group) +
           qs_matrix_zero_bytes(m->format, m->rows, m->cols, m->group);
}

int main(int argc, char **argv) {
    const char *level = argc > 1 ? argv[1] : "int4";
    int threads = argc > 2 ? atoi(argv[2]) : 2;
    int prefill = argc > 3 ? atoi(argv[3]) : 128;
    separate = argc > 4 && !strcmp(argv[4], "separate");
    qs_format f = !strcmp(level, "int8") ? QS_FORMAT_Q8 : !strcmp(level, "nf4") ? QS_FORMAT_NF4 : QS_FORMAT_Q4;
    unsigned seed = 1;
    qs_matrix layers[LAYERS][7];
    const int64_t shapes[7][2] = {{HIDDEN, HIDDEN}, {KV, HIDDEN}, {KV, HIDDEN}, {HIDDEN, HIDDEN},
                                  {INTER, HIDDEN}, {INTER, HIDDEN}, {HIDDEN, INTER}};
    int64_t bytes = 0;
    for (int l = 0; l < LAYERS; l++)
        for (int k = 0; k < 7; k++) {
            layers[l][k] = make_matrix(f, shapes[k][0], shapes[k][1], &seed);
            bytes += matrix_bytes(&layers[l][k]);
        }
    qs_matrix output = make_matrix(QS_FORMAT_Q8, VOCAB, HIDDEN, &seed);
    int64_t output_bytes = matrix_bytes(&output);
    qs_pool *pool = qs_pool_create(threads);
    qs_variant v = qs_best_variant();
    float *x = random_floats((int64_t)prefill * INTER, &seed);
    float *out = malloc((int64_t)prefill * INTER * 2 * sizeof(float));
    float *logits = malloc(VOCAB * sizeof(float));
    float *scratch = malloc(qs_activation_scratch_floats(prefill, INTER) * sizeof(float));
    printf("%s, %d threads, kernels %s: layers %.1f MB, output matrix %.1f MB; memory read %.1f GB/s\n", level,
           threads, qs_variant_name(v), bytes / 1e6, output_bytes / 1e6, read_bandwidth(pool));
    // Each figure is the best of many runs: this machine's neighbours only ever slow it down.
    double best_layers = 1e9, best_output = 1e9, best_prefill = 1e9, total_decode = 0;
    for (int round = 0; round < 5; round++) {
        for (int t = 0; t < 32; t++) {
            double t0 = now();
            for (int l = 0; l < LAYERS; l++) layer(pool, v, layers[l], out, x, 1, scratch);
            double t1 = now();
            qs_matmul(pool, v, logits, VOCAB, &output, x, 1, scratch);
            double t2 = now();
            total_decode += t2 - t0;
            if (t1 - t0 < best_layers) best_layers = t1 - t0;
            if (t2 - t1 < best_output) best_output = t2 - t1;
        }
        // Prefill: `prefill` rows through the layers (the output matrix takes only the last row: see decode).
        double t0 = now();
        for (int l = 0; l < LAYERS; l++) layer(pool, v, layers[l], out, x, prefill, scratch);
        double t1 = now();
        if (t1 - t0 < best_prefill) best_prefill = t1 - t0;
    }
    printf("decode %.1f tok/s, mean %.1f (best: layers %.2f ms, %.1f GB/s; output %.2f ms, %.1f GB/s)   prefill %d rows: %.1f tok/s\n",
           1 / (best_layers + best_output), 160 / total_decode, best_layers * 1e3, bytes / best_layers / 1e9, best_output * 1e3,
           output_bytes / best_output / 1e9, prefill, prefill / (best_prefill + best_output));
    qs_pool_destroy(pool);
    return 0;
}

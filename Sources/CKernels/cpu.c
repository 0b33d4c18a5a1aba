#include "CKernels.h"
#include <stdlib.h>
#include <string.h>

static int detect_supported(qs_variant v) {
    __builtin_cpu_init();
    switch (v) {
    case QS_VARIANT_SCALAR: return 1;
    case QS_VARIANT_AVX2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    case QS_VARIANT_AVX512:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && detect_supported(QS_VARIANT_AVX2);
    case QS_VARIANT_VNNI:
        return __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512dq") &&
               detect_supported(QS_VARIANT_AVX512);
    }
    return 0;
}

int qs_variant_supported(qs_variant v) {
    // Detected once per variant; a benign race at worst computes the same value twice.
    static volatile int cached[4] = {-1, -1, -1, -1};
    if ((unsigned)v > 3) return 0;
    if (cached[v] < 0) cached[v] = detect_supported(v);
    return cached[v];
}

const char *qs_variant_name(qs_variant v) {
    switch (v) {
    case QS_VARIANT_SCALAR: return "scalar";
    case QS_VARIANT_AVX2: return "avx2";
    case QS_VARIANT_AVX512: return "avx512";
    case QS_VARIANT_VNNI: return "vnni";
    }
    return "unknown";
}

// Whether `vnni` is chosen without being named: only once the device check (../shared/device/README.md) has passed
// on an AVX-512 VNNI Xeon for the current kernels, recorded in docs/benchmarks.md. It passed on 2026-11-27 for
// 339dbfd's; the int8 kernel changed after that, so it is off until the kit is rerun.
#ifndef QS_VNNI_BY_DEFAULT
#define QS_VNNI_BY_DEFAULT 0
#endif

static qs_variant detect_best_variant(void) {
    const char *forced = getenv("QS_KERNELS");
    const int named_vnni = forced != NULL && strcmp(forced, "vnni") == 0;
    qs_variant best = qs_variant_supported(QS_VARIANT_VNNI) && (QS_VNNI_BY_DEFAULT || named_vnni) ? QS_VARIANT_VNNI
                    : qs_variant_supported(QS_VARIANT_AVX512) ? QS_VARIANT_AVX512
                    : qs_variant_supported(QS_VARIANT_AVX2)   ? QS_VARIANT_AVX2
                                                              : QS_VARIANT_SCALAR;
    if (forced) {
        qs_variant want = best;
        if (strcmp(forced, "scalar") == 0) want = QS_VARIANT_SCALAR;
        else if (strcmp(forced, "avx2") == 0) want = QS_VARIANT_AVX2;
        else if (strcmp(forced, "avx512") == 0) want = QS_VARIANT_AVX512;
        else if (strcmp(forced, "vnni") == 0) want = QS_VARIANT_VNNI;
        if (want < best) best = want;
    }
    return best;
}

qs_variant qs_best_variant(void) {
    // Detected once; a benign race at worst computes the same value twice.
    static volatile int cached = -1;
    if (cached < 0) cached = (int)detect_best_variant();
    return (qs_variant)cached;
}

int qs_x16_layout_preferred(void) { return qs_best_variant() >= QS_VARIANT_VNNI; }

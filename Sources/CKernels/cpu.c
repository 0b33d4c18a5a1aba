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
    }
    return 0;
}

int qs_cpu_has_avx512_vnni(void) {
    static volatile int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = qs_variant_supported(QS_VARIANT_AVX512) && __builtin_cpu_supports("avx512vnni");
    }
    return cached;
}

// Off until the device check (../shared/device/README.md) has passed on a VNNI machine: QS_VNNI=1 turns it on.
static volatile int q8_vnni_switch = -1;

void qs_set_q8_vnni(int on) { q8_vnni_switch = on ? 1 : 0; }

int qs_q8_vnni_enabled(void) {
    if (q8_vnni_switch < 0) {
        const char *env = getenv("QS_VNNI");
        q8_vnni_switch = env != NULL && strcmp(env, "1") == 0;
    }
    return q8_vnni_switch && qs_cpu_has_avx512_vnni();
}

int qs_variant_supported(qs_variant v) {
    // Detected once per variant; a benign race at worst computes the same value twice.
    static volatile int cached[3] = {-1, -1, -1};
    if ((unsigned)v > 2) return 0;
    if (cached[v] < 0) cached[v] = detect_supported(v);
    return cached[v];
}

const char *qs_variant_name(qs_variant v) {
    switch (v) {
    case QS_VARIANT_SCALAR: return "scalar";
    case QS_VARIANT_AVX2: return "avx2";
    case QS_VARIANT_AVX512: return "avx512";
    }
    return "unknown";
}

static qs_variant detect_best_variant(void) {
    qs_variant best = qs_variant_supported(QS_VARIANT_AVX512) ? QS_VARIANT_AVX512
                    : qs_variant_supported(QS_VARIANT_AVX2)   ? QS_VARIANT_AVX2
                                                              : QS_VARIANT_SCALAR;
    const char *forced = getenv("QS_KERNELS");
    if (forced) {
        qs_variant want = best;
        if (strcmp(forced, "scalar") == 0) want = QS_VARIANT_SCALAR;
        else if (strcmp(forced, "avx2") == 0) want = QS_VARIANT_AVX2;
        else if (strcmp(forced, "avx512") == 0) want = QS_VARIANT_AVX512;
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

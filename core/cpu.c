/*
 * core/cpu.c — CPU identification and the run-time choice of kernels (core/cpu.h).
 *
 * Detection asks the compiler's runtime (__builtin_cpu_supports, which checks the
 * OS saves the AVX-512 registers too) and cpuid for the brand string and AMX bits.
 * The answer is cached in one int: every dispatching call reads it with a relaxed
 * atomic load, so the choice is made once per process and costs nothing after.
 */
#include "core/cpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if QAT_CPU_X86
#include <cpuid.h>
#endif

#ifndef QAT_BUILD_BASELINE /* meson.build defines it; a stray compile still works */
#define QAT_BUILD_BASELINE "unknown"
#endif

int qat_cpu_kernels_cached = -1;

static const char *(*g_gemm_isa_fn)(void);

void qat_cpu_set_gemm_isa_fn(const char *(*fn)(void)) { g_gemm_isa_fn = fn; }

const char *qat_cpu_kernels_name(int level) {
    return level >= QAT_KERNELS_AVX512_BF16 ? "avx512+bf16" : level >= QAT_KERNELS_AVX512 ? "avx512" : "generic";
}

/* What the CPU can run, from cpuid alone (a native build never asks: unused there). */
static __attribute__((unused)) int cpu_level(void) {
#if QAT_CPU_X86
    __builtin_cpu_init();
    if (!(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
          __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
          __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("fma")))
        return QAT_KERNELS_GENERIC;
    return __builtin_cpu_supports("avx512bf16") ? QAT_KERNELS_AVX512_BF16 : QAT_KERNELS_AVX512;
#else
    return QAT_KERNELS_GENERIC;
#endif
}

int qat_cpu_kernels_max(void) {
#if QAT_KERNELS_BUILTIN > QAT_KERNELS_GENERIC || !defined(QAT_ISA_VARIANTS)
    /* native build: the kernels are what the compiler flags made them; a build
     * without AVX-512 copies (not x86-64) has the generic ones only */
    return QAT_KERNELS_BUILTIN;
#else
    return cpu_level();
#endif
}

static int parse_level(const char *s) {
    if (!strcmp(s, "generic")) return QAT_KERNELS_GENERIC;
    if (!strcmp(s, "avx512")) return QAT_KERNELS_AVX512;
    if (!strcmp(s, "avx512+bf16")) return QAT_KERNELS_AVX512_BF16;
    return -1;
}

int qat_cpu_kernels_resolve(void) {
    int max = qat_cpu_kernels_max(), l = max;
    const char *env = getenv("QAT_KERNELS");
    if (env && *env && strcmp(env, "auto")) {
        int want = parse_level(env);
        if (want < 0)
            fprintf(stderr, "qat: QAT_KERNELS=%s is not one of auto, generic, avx512, avx512+bf16; using %s\n", env,
                    qat_cpu_kernels_name(max));
        else if (want > max || want < QAT_KERNELS_BUILTIN)
            fprintf(stderr, "qat: QAT_KERNELS=%s is not available in this build on this CPU; using %s\n", env,
                    qat_cpu_kernels_name(max));
        else
            l = want;
    }
    /* racing threads compute the same value; the first store wins, all agree */
    int expect = -1;
    __atomic_compare_exchange_n(&qat_cpu_kernels_cached, &expect, l, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
    return __atomic_load_n(&qat_cpu_kernels_cached, __ATOMIC_RELAXED);
}

int qat_cpu_set_kernels(int level) {
    int max = qat_cpu_kernels_max();
    if (level > max) level = max;
    if (level < QAT_KERNELS_BUILTIN) level = QAT_KERNELS_BUILTIN;
    __atomic_store_n(&qat_cpu_kernels_cached, level, __ATOMIC_RELAXED);
    return level;
}

/* The brand string from cpuid leaves 0x80000002..4, trimmed; "unknown" elsewhere. */
static void cpu_model(char *out, size_t n) {
    snprintf(out, n, "unknown");
#if QAT_CPU_X86
    unsigned int r[12], max_ext = __get_cpuid_max(0x80000000u, NULL);
    if (max_ext < 0x80000004u) return;
    for (unsigned int i = 0; i < 3; i++) __get_cpuid(0x80000002u + i, &r[4 * i], &r[4 * i + 1], &r[4 * i + 2], &r[4 * i + 3]);
    char s[49];
    memcpy(s, r, 48);
    s[48] = 0;
    char *b = s;
    while (*b == ' ') b++;
    size_t len = strlen(b);
    while (len && b[len - 1] == ' ') b[--len] = 0;
    if (*b) snprintf(out, n, "%s", b);
#endif
}

/* Space-separated ISA extensions that matter to qat's kernels or oneDNN's. */
static void cpu_features(char *out, size_t n) {
    out[0] = 0;
#if QAT_CPU_X86
    size_t k = 0;
#define FEAT(name, have)                                                                          \
    do {                                                                                          \
        if ((have) && k < n) k += (size_t)snprintf(out + k, n - k, "%s%s", k ? " " : "", name); \
    } while (0)
    __builtin_cpu_init();
    FEAT("sse4.2", __builtin_cpu_supports("sse4.2"));
    FEAT("avx2", __builtin_cpu_supports("avx2"));
    FEAT("fma", __builtin_cpu_supports("fma"));
    FEAT("avx512f", __builtin_cpu_supports("avx512f"));
    FEAT("avx512bw", __builtin_cpu_supports("avx512bw"));
    FEAT("avx512dq", __builtin_cpu_supports("avx512dq"));
    FEAT("avx512vl", __builtin_cpu_supports("avx512vl"));
    FEAT("avx512vnni", __builtin_cpu_supports("avx512vnni"));
    FEAT("avx512bf16", __builtin_cpu_supports("avx512bf16"));
    unsigned int a, b, c, d;
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) { /* AMX: leaf 7 EDX bits 22, 24, 25 */
        FEAT("amx-bf16", d >> 22 & 1);
        FEAT("amx-tile", d >> 24 & 1);
        FEAT("amx-int8", d >> 25 & 1);
    }
#undef FEAT
    if (!out[0]) snprintf(out, n, "baseline x86-64 only");
#else
    snprintf(out, n, "not x86-64");
#endif
}

void qat_cpu_describe(char *buf, size_t n) {
    if (!n) return;
    char model[64], feats[256];
    cpu_model(model, sizeof model);
    cpu_features(feats, sizeof feats);
    int l = qat_cpu_kernels();
    const char *build = QAT_KERNELS_BUILTIN > QAT_KERNELS_GENERIC ? "native (-march=native, kernels fixed at build time)"
#ifdef QAT_ISA_VARIANTS
                                                                  : "portable (baseline " QAT_BUILD_BASELINE
                                                                    ", AVX-512 kernels chosen at run time)";
#else
                                                                  : "portable (baseline " QAT_BUILD_BASELINE ")";
#endif
    const char *gemm = g_gemm_isa_fn ? g_gemm_isa_fn() : NULL;
    int w = snprintf(buf, n, "cpu: %s\nfeatures: %s\nbuild: %s\nkernels: %s%s", model, feats, build,
                     qat_cpu_kernels_name(l), l < qat_cpu_kernels_max() ? " (lowered by QAT_KERNELS)" : "");
    if (gemm && w >= 0 && (size_t)w < n) snprintf(buf + w, n - (size_t)w, "\ngemm: oneDNN %s", gemm);
}

/*
 * core/bf16.h — rounding f32 to bf16 (the top 16 bits of an IEEE single), shared by
 * the products that take bf16 operands (autograd/gemm.c) and the quantizers that
 * hand them their operands row by row (compress/quantizer.c).
 *
 * Round to nearest, ties to even, on the bit pattern; NaN stays NaN (quiet). On a
 * CPU with AVX512-BF16, VCVTNEPS2BF16 does the same rounding 16 lanes at a time
 * (subnormal inputs aside: it reads them as zero).
 */
#ifndef QAT_CORE_BF16_H
#define QAT_CORE_BF16_H

#include <stdint.h>
#include <string.h>

#include "core/cpu.h"
#if QAT_CPU_X86
#include <immintrin.h>
#endif

/* One value. */
static inline uint16_t qat_bf16_round(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

#if QAT_CPU_X86
/* The 16-lane conversion, compiled for AVX512-BF16 by target attribute. It and
 * qat_bf16_round differ only where the instruction treats subnormal inputs as
 * zero, which is why a run's bits depend on the kernels line of `qat --version`. */
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"))) static inline void
qat_bf16_row_avx512bf16(const float *src, uint16_t *dst, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256bh h = _mm512_cvtneps_pbh(_mm512_loadu_ps(src + i));
        _mm256_storeu_si256((__m256i *)(dst + i), (__m256i)h);
    }
    for (; i < n; i++) dst[i] = qat_bf16_round(src[i]);
}
#endif

/* dst[i] = qat_bf16_round(src[i]) for n values, on the calling thread; 16 at a
 * time with VCVTNEPS2BF16 when the CPU has AVX512-BF16 (core/cpu.h). */
static inline void qat_bf16_row(const float *src, uint16_t *dst, int64_t n) {
#if QAT_CPU_X86
    if (qat_cpu_avx512bf16()) {
        qat_bf16_row_avx512bf16(src, dst, n);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++) dst[i] = qat_bf16_round(src[i]);
}

#endif

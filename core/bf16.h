/*
 * core/bf16.h — rounding f32 to bf16 (the top 16 bits of an IEEE single), shared by
 * the products that take bf16 operands (autograd/gemm.c) and the quantizers that
 * hand them their operands row by row (compress/quantizer.c).
 *
 * Round to nearest, ties to even, on the bit pattern; NaN stays NaN (quiet). On a
 * CPU with AVX512-BF16, VCVTNEPS2BF16 does the same rounding 16 lanes at a time.
 */
#ifndef QAT_CORE_BF16_H
#define QAT_CORE_BF16_H

#include <stdint.h>
#include <string.h>
#ifdef __AVX512BF16__
#include <immintrin.h>
#endif

/* One value. */
static inline uint16_t qat_bf16_round(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* dst[i] = qat_bf16_round(src[i]) for n values, on the calling thread. */
static inline void qat_bf16_row(const float *src, uint16_t *dst, int64_t n) {
    int64_t i = 0;
#ifdef __AVX512BF16__
    for (; i + 16 <= n; i += 16) {
        __m256bh h = _mm512_cvtneps_pbh(_mm512_loadu_ps(src + i));
        _mm256_storeu_si256((__m256i *)(dst + i), (__m256i)h);
    }
#endif
    for (; i < n; i++) dst[i] = qat_bf16_round(src[i]);
}

#endif

/*
 * core/vexpf.h — e^x for 16 floats at once (AVX-512; 8 with AVX2 + FMA), bit for
 * bit the value of the C library's expf on Debian 12 (glibc 2.36 on an FMA
 * machine, __expf_fma).
 *
 * Why bit for bit: SwiGLU's σ and the cross-entropy's softmax call expf millions of
 * times per step; a faster exp that rounds differently would move every training
 * trajectory (and every stored result) by about a seed's spread. This one runs the
 * library's own algorithm, lane by lane, with the same constants and the same fused
 * operations, so training is unchanged and only faster.
 *
 * The algorithm (glibc's expf since 2.28, from Arm's optimized-routines): with
 * N = 32 and x in double,
 *     z  = x·N/ln2 rounded to an integer k by adding 1.5·2⁵² (one FMA),
 *     r  = x·N/ln2 − k                      (one FMA, |r| <= 1/2),
 *     2^(k/N) = s from a 32-entry table of 2^(i/N) with k's high bits added to the exponent,
 *     e^x = s·(1 + c2·r + (c1 + c0·r)·r²)   (cubic in r, FMAs as the library has them),
 * rounded once to float. Lanes with |x| >= 88 (overflow, underflow, inf, NaN) take
 * the library's expf itself. All 2³² inputs were compared with expf once when this
 * was written (no difference, NaN payloads included); tests/test_autograd_ops.c
 * checks every 257th bit pattern and the edges around ±88 on every build.
 */
#ifndef QAT_CORE_VEXPF_H
#define QAT_CORE_VEXPF_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/cpu.h"

/* The 16-lane path is compiled for AVX-512 by target attribute and taken when the
 * CPU has it (core/cpu.h); elsewhere every value goes through expf, same bits. */
#if QAT_CPU_X86
#include <immintrin.h>
#define QAT_VEXPF 1
#define QAT_VEXPF_TARGET __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,fma")))

/* The algorithm's constants as double bits (glibc's): 32/ln 2, the rounding shift
 * 1.5·2⁵², and the cubic's coefficients c0, c1, c2. */
#define QAT_VEXPF_INVLN2N 0x40471547652b82feLL
#define QAT_VEXPF_SHIFT 0x4338000000000000LL
#define QAT_VEXPF_C0 0x3ebc6af84b912394LL
#define QAT_VEXPF_C1 0x3f2ebfce50fac4f3LL
#define QAT_VEXPF_C2 0x3f962e42ff0c52d6LL

/* 2^(i/32) as bits, minus i << 47 so that adding k << 47 gives 2^(k/32) (glibc's table). */
static const uint64_t qat_vexpf_tab[32] __attribute__((aligned(64))) = {
    0x3ff0000000000000, 0x3fefd9b0d3158574, 0x3fefb5586cf9890f, 0x3fef9301d0125b51, 0x3fef72b83c7d517b,
    0x3fef54873168b9aa, 0x3fef387a6e756238, 0x3fef1e9df51fdee1, 0x3fef06fe0a31b715, 0x3feef1a7373aa9cb,
    0x3feedea64c123422, 0x3feece086061892d, 0x3feebfdad5362a27, 0x3feeb42b569d4f82, 0x3feeab07dd485429,
    0x3feea47eb03a5585, 0x3feea09e667f3bcd, 0x3fee9f75e8ec5f74, 0x3feea11473eb0187, 0x3feea589994cce13,
    0x3feeace5422aa0db, 0x3feeb737b0cdc5e5, 0x3feec49182a3f090, 0x3feed503b23e255d, 0x3feee89f995ad3ad,
    0x3feeff76f2fb5e47, 0x3fef199bdd85529c, 0x3fef3720dcef9069, 0x3fef5818dcfba487, 0x3fef7c97337b9b5f,
    0x3fefa4afa2a490da, 0x3fefd0765b6e4540};

/* e^x for 8 doubles holding floats with |x| < 88. */
QAT_VEXPF_TARGET static inline __m256 qat_vexpf_8(__m512d xd) {
    const __m512d invln2n = _mm512_castsi512_pd(_mm512_set1_epi64(QAT_VEXPF_INVLN2N));
    const __m512d shift = _mm512_castsi512_pd(_mm512_set1_epi64(QAT_VEXPF_SHIFT));
    const __m512d c0 = _mm512_castsi512_pd(_mm512_set1_epi64(QAT_VEXPF_C0));
    const __m512d c1 = _mm512_castsi512_pd(_mm512_set1_epi64(QAT_VEXPF_C1));
    const __m512d c2 = _mm512_castsi512_pd(_mm512_set1_epi64(QAT_VEXPF_C2));
    const __m512d one = _mm512_set1_pd(1.0);
    __m512d z = _mm512_fmadd_pd(invln2n, xd, shift);
    __m512i ki = _mm512_castpd_si512(z);
    __m512d kd = _mm512_sub_pd(z, shift);
    __m512d r = _mm512_fmsub_pd(invln2n, xd, kd);
    /* the table lookup T[k mod 32] as two-source permutes over the table's four
     * registers, not a gather: the same entries, without the eight loads a gather
     * issues (it was the slowest step here on Zen 5) */
    const __m512i t0 = _mm512_load_si512(qat_vexpf_tab), t1 = _mm512_load_si512(qat_vexpf_tab + 8);
    const __m512i t2 = _mm512_load_si512(qat_vexpf_tab + 16), t3 = _mm512_load_si512(qat_vexpf_tab + 24);
    __m512i lo = _mm512_permutex2var_epi64(t0, ki, t1), hi = _mm512_permutex2var_epi64(t2, ki, t3);
    __m512i t = _mm512_mask_blend_epi64(_mm512_test_epi64_mask(ki, _mm512_set1_epi64(16)), lo, hi);
    __m512d s = _mm512_castsi512_pd(_mm512_add_epi64(t, _mm512_slli_epi64(ki, 47)));
    __m512d p = _mm512_fmadd_pd(r, c0, c1);
    __m512d r2 = _mm512_mul_pd(r, r);
    __m512d y = _mm512_fmadd_pd(r, c2, one);
    y = _mm512_fmadd_pd(p, r2, y);
    return _mm512_cvtpd_ps(_mm512_mul_pd(y, s));
}

/* expf of 16 floats, the same bits as 16 calls of expf. */
QAT_VEXPF_TARGET static inline __m512 qat_vexpf16(__m512 x) {
    __mmask16 odd = _mm512_cmp_ps_mask(_mm512_abs_ps(x), _mm512_set1_ps(88.0f), _CMP_NLT_UQ);
    __m256 lo = qat_vexpf_8(_mm512_cvtps_pd(_mm512_castps512_ps256(x)));
    __m256 hi = qat_vexpf_8(_mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1))));
    __m512 e = _mm512_insertf32x8(_mm512_castps256_ps512(lo), hi, 1);
    if (odd) { /* overflow, underflow, inf, NaN: the library decides */
        float xs[16], es[16];
        _mm512_storeu_ps(xs, x);
        _mm512_storeu_ps(es, e);
        for (int i = 0; i < 16; i++)
            if (odd >> i & 1) es[i] = expf(xs[i]);
        e = _mm512_loadu_ps(es);
    }
    return e;
}

QAT_VEXPF_TARGET static inline void qat_vexpf_row_avx512(const float *src, float *dst, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, qat_vexpf16(_mm512_loadu_ps(src + i)));
    for (; i < n; i++) dst[i] = expf(src[i]);
}

/* The same algorithm on 4 doubles per AVX2 register, for CPUs with AVX2 and FMA but
 * no AVX-512 (a Zen 3, a Haswell). glibc runs __expf_fma on exactly those CPUs (its
 * ifunc asks for both), so the fused operations below are the library's there too.
 * The table lookup is a gather: AVX2 has no two-source permute over 64-bit lanes.
 * Without this, the d64/l2/h2/t128 f32 step on a Zen 3 spent 20% of its samples in
 * the library's expf, called element by element. */
#define QAT_VEXPF_AVX2_TARGET __attribute__((target("avx2,fma")))

/* e^x for 4 doubles holding floats with |x| < 88. */
QAT_VEXPF_AVX2_TARGET static inline __m128 qat_vexpf_4(__m256d xd) {
    const __m256d invln2n = _mm256_castsi256_pd(_mm256_set1_epi64x(QAT_VEXPF_INVLN2N));
    const __m256d shift = _mm256_castsi256_pd(_mm256_set1_epi64x(QAT_VEXPF_SHIFT));
    const __m256d c0 = _mm256_castsi256_pd(_mm256_set1_epi64x(QAT_VEXPF_C0));
    const __m256d c1 = _mm256_castsi256_pd(_mm256_set1_epi64x(QAT_VEXPF_C1));
    const __m256d c2 = _mm256_castsi256_pd(_mm256_set1_epi64x(QAT_VEXPF_C2));
    const __m256d one = _mm256_set1_pd(1.0);
    __m256d z = _mm256_fmadd_pd(invln2n, xd, shift);
    __m256i ki = _mm256_castpd_si256(z);
    __m256d kd = _mm256_sub_pd(z, shift);
    __m256d r = _mm256_fmsub_pd(invln2n, xd, kd);
    __m256i t = _mm256_i64gather_epi64((const long long *)qat_vexpf_tab, _mm256_and_si256(ki, _mm256_set1_epi64x(31)), 8);
    __m256d s = _mm256_castsi256_pd(_mm256_add_epi64(t, _mm256_slli_epi64(ki, 47)));
    __m256d p = _mm256_fmadd_pd(r, c0, c1);
    __m256d r2 = _mm256_mul_pd(r, r);
    __m256d y = _mm256_fmadd_pd(r, c2, one);
    y = _mm256_fmadd_pd(p, r2, y);
    return _mm256_cvtpd_ps(_mm256_mul_pd(y, s));
}

QAT_VEXPF_AVX2_TARGET static inline void qat_vexpf_row_avx2(const float *src, float *dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_loadu_ps(src + i);
        __m256 ax = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
        int odd = _mm256_movemask_ps(_mm256_cmp_ps(ax, _mm256_set1_ps(88.0f), _CMP_NLT_UQ));
        __m128 lo = qat_vexpf_4(_mm256_cvtps_pd(_mm256_castps256_ps128(x)));
        __m128 hi = qat_vexpf_4(_mm256_cvtps_pd(_mm256_extractf128_ps(x, 1)));
        _mm256_storeu_ps(dst + i, _mm256_insertf128_ps(_mm256_castps128_ps256(lo), hi, 1));
        if (odd) { /* overflow, underflow, inf, NaN: the library decides (x, since dst may be src) */
            float xs[8];
            _mm256_storeu_ps(xs, x);
            for (int j = 0; j < 8; j++)
                if (odd >> j & 1) dst[i + j] = expf(xs[j]);
        }
    }
    for (; i < n; i++) dst[i] = expf(src[i]);
}

/* Whether the AVX2 path runs: a constant when the build guarantees AVX2 and FMA,
 * else cpuid once (GCC's check includes the OS's saved AVX state). */
static inline int qat_vexpf_have_avx2(void) {
#if defined(__AVX2__) && defined(__FMA__)
    return 1;
#else
    static int have = -1;
    int h = __atomic_load_n(&have, __ATOMIC_RELAXED);
    if (h < 0) {
        __builtin_cpu_init();
        h = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        __atomic_store_n(&have, h, __ATOMIC_RELAXED);
    }
    return h;
#endif
}
#endif

/* dst[i] = expf(src[i]) for n floats (dst may be src). */
static inline void qat_vexpf_row(const float *src, float *dst, int64_t n) {
#ifdef QAT_VEXPF
    if (qat_cpu_avx512()) {
        qat_vexpf_row_avx512(src, dst, n);
        return;
    }
    if (qat_vexpf_have_avx2()) {
        qat_vexpf_row_avx2(src, dst, n);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++) dst[i] = expf(src[i]);
}

#endif

/*
 * core/fastexp.h — a fast single-precision e^x and the logistic σ(x) = 1/(1 + e^-x)
 * built on it, for the bf16 training step (train.precision: bf16) only.
 *
 * Why not core/vexpf.h: that one reproduces the C library's expf bit for bit (8
 * double lanes, a table gather, a library call for |x| >= 88), which fp32 training
 * needs so that its trajectories never move. A bf16 step rounds SwiGLU's output to
 * 8 significant bits right after σ, so σ only has to be a few float ulps right:
 * this exp works in 16 float lanes, no table, no call, ~1 ulp.
 *
 * The algorithm (Cephes' expf, with fused multiply-adds): x clamped to
 * [-104, 89] (every float below rounds e^x to +0, every one above to +inf; NaN
 * passes through the clamp), n = x·log2(e) rounded to an integer, r = x − n·ln2 in
 * two steps (ln2 split hi + lo, |r| <= ln2/2), e^r = 1 + r + r²·P(r) with P of
 * degree 5, then e^x = e^r·2ⁿ with one rounding (VSCALEFPS / ldexpf: correct
 * overflow to inf and gradual underflow to subnormals and zero).
 *
 * The AVX-512 path and the scalar one perform the same operations in the same
 * order (explicit FMAs on both sides), so they give the same bits; the tail of a
 * row runs in the vector path under a mask. tests/test_autograd_bf16.c checks the
 * two agree and bounds σ's error against a double reference.
 */
#ifndef QAT_CORE_FASTEXP_H
#define QAT_CORE_FASTEXP_H

#include <math.h>
#include <stdint.h>

#include "core/cpu.h"
#if QAT_CPU_X86
#include <immintrin.h>
#endif

#define QAT_FEXP_HI 89.0f             /* above: e^x = +inf */
#define QAT_FEXP_LO (-104.0f)         /* below: e^x = +0 */
#define QAT_FEXP_LOG2E 1.44269504088896341f
#define QAT_FEXP_MAGIC 12582912.0f    /* 1.5·2²³: adding it rounds to an integer */
#define QAT_FEXP_LN2_HI 0.693145751953125f /* ln 2 to 16 bits: n·hi is exact */
#define QAT_FEXP_LN2_LO 1.428606765330187e-06f
/* Cephes' expf polynomial P(r), highest degree first */
#define QAT_FEXP_P0 1.9875691500e-4f
#define QAT_FEXP_P1 1.3981999507e-3f
#define QAT_FEXP_P2 8.3334519073e-3f
#define QAT_FEXP_P3 4.1665795894e-2f
#define QAT_FEXP_P4 1.6666665459e-1f
#define QAT_FEXP_P5 5.0000001201e-1f

/* e^x, one value (the bits of the 16-lane path). */
static inline float qat_fastexpf(float x) {
    if (x != x) return x + x; /* NaN, quieted */
    x = x > QAT_FEXP_HI ? QAT_FEXP_HI : x;
    x = x < QAT_FEXP_LO ? QAT_FEXP_LO : x;
    float n = fmaf(x, QAT_FEXP_LOG2E, QAT_FEXP_MAGIC) - QAT_FEXP_MAGIC;
    float r = fmaf(n, -QAT_FEXP_LN2_HI, x);
    r = fmaf(n, -QAT_FEXP_LN2_LO, r);
    float p = fmaf(QAT_FEXP_P0, r, QAT_FEXP_P1);
    p = fmaf(p, r, QAT_FEXP_P2);
    p = fmaf(p, r, QAT_FEXP_P3);
    p = fmaf(p, r, QAT_FEXP_P4);
    p = fmaf(p, r, QAT_FEXP_P5);
    float r2 = r * r;
    float y = fmaf(p, r2, r) + 1.0f;
    return ldexpf(y, (int)n);
}

/* σ(x) = 1/(1 + e^-x), one value. */
static inline float qat_fast_sigmoidf(float x) {
    return 1.0f / (1.0f + qat_fastexpf(0.0f - x)); /* 0 − x, as the vector path: a NaN keeps its sign */
}

#if QAT_CPU_X86
#define QAT_FEXP_TARGET __attribute__((target("avx512f")))

/* e^x of 16 floats: qat_fastexpf lane by lane. */
QAT_FEXP_TARGET static inline __m512 qat_fastexpf16(__m512 x) {
    /* MAXPS/MINPS return the second operand when either is NaN: NaN stays */
    x = _mm512_min_ps(_mm512_set1_ps(QAT_FEXP_HI), x);
    x = _mm512_max_ps(_mm512_set1_ps(QAT_FEXP_LO), x);
    const __m512 magic = _mm512_set1_ps(QAT_FEXP_MAGIC);
    __m512 n = _mm512_sub_ps(_mm512_fmadd_ps(x, _mm512_set1_ps(QAT_FEXP_LOG2E), magic), magic);
    __m512 r = _mm512_fmadd_ps(n, _mm512_set1_ps(-QAT_FEXP_LN2_HI), x);
    r = _mm512_fmadd_ps(n, _mm512_set1_ps(-QAT_FEXP_LN2_LO), r);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(QAT_FEXP_P0), r, _mm512_set1_ps(QAT_FEXP_P1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(QAT_FEXP_P2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(QAT_FEXP_P3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(QAT_FEXP_P4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(QAT_FEXP_P5));
    __m512 r2 = _mm512_mul_ps(r, r);
    __m512 y = _mm512_add_ps(_mm512_fmadd_ps(p, r2, r), _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(y, n);
}

/* σ of 16 floats. */
QAT_FEXP_TARGET static inline __m512 qat_fast_sigmoid16(__m512 x) {
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 e = qat_fastexpf16(_mm512_sub_ps(_mm512_setzero_ps(), x));
    return _mm512_div_ps(one, _mm512_add_ps(one, e));
}

QAT_FEXP_TARGET static inline void qat_fast_sigmoid_row_avx512(const float *x, float *s, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(s + i, qat_fast_sigmoid16(_mm512_loadu_ps(x + i)));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(s + i, m, qat_fast_sigmoid16(_mm512_maskz_loadu_ps(m, x + i)));
    }
}
#endif

/* s[j] = qat_fast_sigmoidf(x[j]) for n values (s may be x), 16 at a time when the
 * CPU has AVX-512 (core/cpu.h). */
static inline void qat_fast_sigmoid_row(const float *x, float *s, int64_t n) {
#if QAT_CPU_X86
    if (qat_cpu_avx512()) {
        qat_fast_sigmoid_row_avx512(x, s, n);
        return;
    }
#endif
    for (int64_t j = 0; j < n; j++) s[j] = qat_fast_sigmoidf(x[j]);
}

#endif

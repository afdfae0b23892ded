/*
 * autograd/vexp.h — e^x in plain C that the compiler vectorizes.
 *
 * libm's expf is a call per element, so a loop over it stays scalar; SwiGLU,
 * the cross-entropy and the attention softmax spend most of their time there.
 * These inline versions are branch-free (selects only), so a loop marked
 * `#pragma omp simd` turns into AVX-512/AVX2 code.
 *
 *   e^x = 2^n · e^f,  n = round(x·log2 e),  f = x − n·ln2 ∈ [−ln2/2, ln2/2]
 *
 * f is formed Cody–Waite style (ln2 split into a short high part, so n·ln2_hi
 * is exact, and a low correction), e^f by its degree-7 Taylor polynomial
 * (truncation error < 1e-8 relative, under float rounding), and 2^n is built in
 * the exponent bits. qat_vexpf is accurate to about 1 ulp over the whole float
 * range: 2^n is applied as two factors so results that overflow give +inf and
 * results in the subnormal range come out subnormal, as libm's do; NaN in gives
 * NaN out.
 *
 * qat_vexpf_neg is the cheaper variant for x <= 0 (scores minus their row
 * maximum): one factor, flush to 0 below −87.
 */
#ifndef QAT_AUTOGRAD_VEXP_H
#define QAT_AUTOGRAD_VEXP_H

#include <stdint.h>
#include <string.h>

#ifdef __FMA__
#define QAT_VFMA(a, b, c) __builtin_fmaf((a), (b), (c)) /* one instruction with -mfma */
#else
#define QAT_VFMA(a, b, c) ((a) * (b) + (c))
#endif

/* e^f for |f| <= ln2/2: Taylor to degree 7, Horner. */
static inline float qat_vexp_poly(float f) {
    float p = 1.9841270e-4f;
    p = QAT_VFMA(p, f, 1.3888889e-3f);
    p = QAT_VFMA(p, f, 8.3333338e-3f);
    p = QAT_VFMA(p, f, 4.1666668e-2f);
    p = QAT_VFMA(p, f, 1.6666667e-1f);
    p = QAT_VFMA(p, f, 0.5f);
    p = QAT_VFMA(p, f, 1.0f);
    return QAT_VFMA(p, f, 1.0f);
}

/* 2^k for integer-valued k in [−126, 127], from the exponent bits. */
static inline float qat_vexp2i(int32_t k) {
    int32_t bits = (k + 127) << 23;
    float s;
    memcpy(&s, &bits, 4);
    return s;
}

/* e^x for any float x (about 1 ulp; overflow → +inf, underflow → subnormal/0, NaN → NaN). */
static inline float qat_vexpf(float x) {
    /* beyond these e^x is inf or 0 in float; clamping keeps n in range */
    float xc = x < -104.0f ? -104.0f : (x > 89.0f ? 89.0f : x);
    float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round to nearest */
    float f = xc - n * 0.693359375f;                                   /* exact: ln2_hi has 9 bits */
    f = f - n * -2.12194440e-4f;                                       /* ln2 − ln2_hi */
    float p = qat_vexp_poly(f);
    int32_t k = (int32_t)n, k1 = k >> 1; /* n in [−150, 129]: two factors stay normal */
    float r = p * qat_vexp2i(k1) * qat_vexp2i(k - k1);
    return x != x ? x : r;
}

/* e^x for x <= 0; flushes to 0 below −87 (about 1 ulp above). */
static inline float qat_vexpf_neg(float x) {
    float xc = x < -87.0f ? -87.0f : x;
    float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float f = xc - n * 0.693359375f;
    f = f - n * -2.12194440e-4f;
    float r = qat_vexp_poly(f) * qat_vexp2i((int32_t)n);
    return x < -87.0f ? 0.0f : r;
}

/* σ(x) = 1/(1 + e^−x), saturating cleanly to 0 and 1. */
static inline float qat_vsigmoidf(float x) { return 1.0f / (1.0f + qat_vexpf(-x)); }

#endif

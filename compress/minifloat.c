/*
 * compress/minifloat.c — the element grids of the block formats and their scale
 * rules (declared in compress/blockfmt.h): the OCP MX element minifloats, the E8M0
 * shared exponent, the NVFP4 tensor and E4M3 block scales, and the bf16 scale of
 * group-scaled INT with its absmax and MSE-clip rules.
 *
 * Kept apart from the row loops (blockfmt.c) because these are the definitions a
 * reader checks against the specifications, one rule per function, while the row
 * loops are about speed. docs/formats.md ("Block-scaled formats") states each rule
 * and its source.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "compress/blockfmt.h"
#include "compress/minifloat.h"
#include "core/bf16.h"

/* OCP MX v1.0 element encodings (its table of element data types). max = (2 − 2^−mbits)·2^emax except E4M3,
 * whose all-ones mantissa at the top exponent is NaN (max 1.75·2^8 = 448), and the
 * FP6/FP4 types, which have no inf/NaN (E2M3 1.875·4 = 7.5, E3M2 1.75·16 = 28, E2M1
 * 1.5·4 = 6). trust = half the largest gap: the top binade's step 2^(emax−mbits)/2. */
static const qat_minifloat MF[QAT_EL_COUNT] = {
    /* name    eb mb bias emax emin  max      min_normal  min_sub   trust   inf nan */
    {"e2m1", 2, 1, 1, 2, 0, 6.0f, 1.0f, 0x1p-1f, 1.0f, 0, 0},
    {"e2m3", 2, 3, 1, 2, 0, 7.5f, 1.0f, 0x1p-3f, 0.25f, 0, 0},
    {"e3m2", 3, 2, 3, 4, -2, 28.0f, 0x1p-2f, 0x1p-4f, 2.0f, 0, 0},
    {"e4m3", 4, 3, 7, 8, -6, 448.0f, 0x1p-6f, 0x1p-9f, 16.0f, 0, 1},
    {"e5m2", 5, 2, 15, 15, -14, 57344.0f, 0x1p-14f, 0x1p-16f, 4096.0f, 1, 1},
};

const qat_minifloat *qat_minifloat_get(qat_el_kind k) { return &MF[k]; }

float qat_minifloat_rne(const qat_minifloat *f, float x) { return qat_mf_rne(x, f->emin, f->mbits, f->max); }

float qat_minifloat_sr(const qat_minifloat *f, float x, double u) {
    /* Compare in double: the probability is exact for any u the caller draws. */
    float a = fabsf(x), q, iq;
    if (isnan(x)) return x;
    qat_mf_quantum(a, f->emin, f->mbits, &q, &iq);
    double t = (double)a * iq, lo = floor(t);
    float r = (float)((u < t - lo ? lo + 1.0 : lo) * q);
    r = r > f->max ? f->max : r;
    return copysignf(r, x);
}

int qat_mx_scale_exp(float amax, const qat_minifloat *el) {
    amax = fabsf(amax); /* a signed input reads as its magnitude */
    if (!(amax <= FLT_MAX)) return INT32_MIN; /* NaN or inf: the E8M0 NaN */
    uint32_t u;
    memcpy(&u, &amax, 4);
    /* floor(log2 amax) from the exponent field; 0 and fp32 subnormals read as −127,
     * below every clamped result, so they land on −127 like microxcaling's amax = 0. */
    int e = (int)((u >> 23) & 0xffu) - 127 - el->emax;
    return e < -127 ? -127 : (e > 127 ? 127 : e);
}

float qat_nvfp4_tensor_scale(float amax_tensor) {
    if (!(amax_tensor <= FLT_MAX)) return NAN;
    if (amax_tensor == 0.0f) return 1.0f;
    return amax_tensor / (448.0f * 6.0f);
}

float qat_nvfp4_block_scale(float amax_block, float s_t, float target) {
    return qat_mf_nvfp4_block_scale(amax_block, s_t, target);
}

/* bf16 RNE of a double v >= 0 computed to one rounding of the exact value, back as
 * float (NaN stays NaN). Saturating at the largest finite bf16, 0x1.fep127: with L = 1
 * (int2) a finite absmax above it would otherwise round to an infinite scale and turn its
 * whole group NaN (inf·0); its elements beyond L·s then clamp, as saturation does in
 * every other format. */
static float bf16_value(double v) { return (float)qat_mf_rne_d(v, -126, 7, 0x1.fep127); }

/* An INT scale v rounded to bf16 such that the largest code decodes finitely: L·s
 * at most FLT_MAX. For a group absmax within 2^−8 of FLT_MAX, bf16(amax/L) can round
 * up past FLT_MAX/L and k = ±L decoded to ±inf; one bf16 step down (2^−8..2^−7) is
 * below amax/L, so the element then saturates at L·s, as MX and NVFP4 do. */
static float int_scale(double v, int bits) {
    const int L = (1 << (bits - 1)) - 1;
    float s = bf16_value(v);
    if ((double)s * L > FLT_MAX) {
        uint32_t u;
        memcpy(&u, &s, 4);
        u -= 0x10000u; /* s is a large normal bf16: the previous one */
        memcpy(&s, &u, 4);
    }
    return s;
}

float qat_int_group_scale(float amax, int bits) {
    if (!(amax <= FLT_MAX)) return NAN;
    /* amax (24 bits) over L (at most 7) in double: the exact quotient is a bf16 midpoint
     * or ~2^−24 away from one, so the one rounding of the double is the exact RNE */
    return int_scale((double)amax / ((1 << (bits - 1)) - 1), bits);
}

/* Gaussian-optimal clip c/RMS of the symmetric grid {k·c/L : |k| <= L}, L = 2^(b−1)−1.
 * Computed with compress/grid.c: golden section (qat_golden_min on [0.1, 8], tol 1e-12)
 * of qat_grid_gmse over the 2L+1 levels k·c/L; the GMSE at the optimum is 0.19017 (b=2,
 * = ternary: QAT_TERNARY_ALPHA), 0.046860, 0.012889, 0.0036932, 0.0010693, 0.00030862,
 * 0.000088308 (b=8). tests/test_compress_blockfmt.c repeats the search. */
const double QAT_INT_SYM_ALPHA[9] = {0.0,          0.0,          1.2240063731, 1.9523091415, 2.4738792318,
                                     2.8987277863, 3.2701149460, 3.6074613694, 3.9205016869};

float qat_int_clip_scale(float rms, int bits) { return qat_int_clip_scale_d(rms, bits); }

/* α·rms/L in double and rounded once to bf16 (through float it was two roundings). */
float qat_int_clip_scale_d(double rms, int bits) {
    if (!(rms <= DBL_MAX)) return NAN;
    return int_scale(QAT_INT_SYM_ALPHA[bits] * rms / ((1 << (bits - 1)) - 1), bits);
}

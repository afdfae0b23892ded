/*
 * compress/minifloat.h — the element rounding kernels behind compress/blockfmt.h,
 * shared by the scalar entry points (minifloat.c) and the row loops (blockfmt.c).
 *
 * Internal to compress/: callers use blockfmt.h. The kernels take the grid as plain
 * scalars (emin, mbits, max) rather than a descriptor pointer so that a row loop
 * hoists them and the compiler vectorises the loop: no calls, no data-dependent
 * branches, only selects. Rounding works on the fp32 bit pattern: the exponent of
 * |x| (clamped to the grid's normal range) gives the quantum 2^(e − mbits), which is
 * a power of two, so |x|/quantum is exact and the one rounding is the add-and-subtract
 * of 2^23 (ties to even in the default rounding mode; the build never uses
 * -ffast-math, which would fold it away).
 */
#ifndef QAT_COMPRESS_MINIFLOAT_H
#define QAT_COMPRESS_MINIFLOAT_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* The quantum 2^(e − mbits) of |a| on the grid and its inverse, e = the binade of
 * |a| clamped to [emin, 127] (127 keeps the inverse a normal float for inf/NaN). */
static inline void qat_mf_quantum(float a, int emin, int mbits, float *q, float *iq) {
    uint32_t u;
    memcpy(&u, &a, 4);
    int32_t e = (int32_t)(u >> 23) - 127;
    e = e < emin ? emin : e;
    e = e > 127 ? 127 : e;
    uint32_t qb = (uint32_t)(e - mbits + 127) << 23, ib = (uint32_t)(mbits - e + 127) << 23;
    memcpy(q, &qb, 4);
    memcpy(iq, &ib, 4);
}

/* Round y to nearest, ties to even, onto the grid; |y| > maxv (and ±inf) → ±maxv;
 * NaN → NaN (every comparison with it is false, so it flows through). */
static inline float qat_mf_rne(float y, int emin, int mbits, float maxv) {
    float a = fabsf(y), q, iq;
    qat_mf_quantum(a, emin, mbits, &q, &iq);
    float t = a * iq; /* in [0, 2^(mbits+1)) for finite a inside the grid: exact */
    float r = ((t + 0x1p23f) - 0x1p23f) * q;
    r = r > maxv ? maxv : r;
    return copysignf(r, y);
}

/* qat_mf_quantum for a double |a|: e clamped to [emin, 1023]. */
static inline void qat_mf_quantum_d(double a, int emin, int mbits, double *q, double *iq) {
    uint64_t u;
    memcpy(&u, &a, 8);
    int64_t e = (int64_t)(u >> 52) - 1023;
    e = e < emin ? emin : e;
    e = e > 1023 ? 1023 : e;
    uint64_t qb = (uint64_t)(e - mbits + 1023) << 52, ib = (uint64_t)(mbits - e + 1023) << 52;
    memcpy(q, &qb, 8);
    memcpy(iq, &ib, 8);
}

/* qat_mf_rne of a double: the grid rounding of a quotient that was computed in double
 * so that its one rounding is decided on the exact value (rounding it to float first
 * would be a second rounding that can land a non-tie on a tie). Also bf16 (emin −126,
 * 7 mantissa bits, max 0x1.fep127: saturating instead of overflowing to inf). */
static inline double qat_mf_rne_d(double y, int emin, int mbits, double maxv) {
    double a = fabs(y), q, iq;
    qat_mf_quantum_d(a, emin, mbits, &q, &iq);
    double t = a * iq; /* exact: a power-of-two quantum */
    double r = ((t + 0x1p52) - 0x1p52) * q;
    r = r > maxv ? maxv : r;
    return copysign(r, y);
}

/* The NVFP4 E4M3 block scale E4M3_RNE(amax/(target·s_t)) (qat_nvfp4_block_scale, inline
 * so the per-block scale in the row loop costs no call): target·s_t is exact in double
 * and the quotient of a 24-bit amax by that 26-bit divisor is either an E4M3 midpoint
 * exactly or at least ~2^−32 (relative) away from one, far above the division's 2^−53,
 * so rounding the double quotient is rounding the exact ratio. (The float
 * (amax/target)/s_t rounded twice before the E4M3 rounding: 367.999995 became 368, a
 * tie, and went to 384 instead of 352; with an fp32-subnormal amax/target the first
 * rounding alone lost bits.) E4M3 is emin −6, 3 mantissa bits, max 448. */
static inline float qat_mf_nvfp4_block_scale(float amax_block, float s_t, float target) {
    return (float)qat_mf_rne_d((double)amax_block / ((double)target * (double)s_t), -6, 3, 448.0);
}

/* Stochastic rounding with uniform u ∈ [0, 1): the upper neighbour with probability
 * (|y| − lo)/quantum. Symmetric in the sign, so E[q] = y inside ±maxv. */
static inline float qat_mf_sr(float y, float u, int emin, int mbits, float maxv) {
    float a = fabsf(y), q, iq;
    qat_mf_quantum(a, emin, mbits, &q, &iq);
    float t = a * iq;
    float f = (t + 0x1p23f) - 0x1p23f;
    f = f > t ? f - 1.0f : f; /* floor(t) */
    float r = (u < t - f ? f + 1.0f : f) * q;
    r = r > maxv ? maxv : r;
    return copysignf(r, y);
}

/* Integer levels of t = x/s, the quotient correctly rounded in double: k = RNE(t)
 * clamped to ±L (the add-and-subtract of 1.5·2^52, exact for |t| < 2^51). A true tie
 * x = (k + ½)·s divides to exactly k + ½; an x (24 significant bits) over s (bf16, 8)
 * that is not a tie is at least ~2^−24 from one, far beyond the division's rounding
 * (2^−45 at |t| <= 256), so k is the RNE of the exact quotient. (Not x·(1/s) in double:
 * the rounded reciprocal moves true ties off the tie.) A zero k is +0 (the caller puts
 * x's sign back). */
static inline double qat_int_rne(double t, double L) {
    t = t > L ? L : (t < -L ? -L : t);
    return (t + 0x1.8p52) - 0x1.8p52;
}

/* Stochastic: ⌊t⌋ + [u < t − ⌊t⌋] (t − ⌊t⌋ exact), t clamped to ±L first. The same
 * margin (u·s, a 24-bit u times an 8-bit s, lies on a grid 2^−32 of s fine) makes the
 * comparison that of the exact quotient, and an exact integer x/s divides exactly. */
static inline double qat_int_sr(double t, double u, double L) {
    t = t > L ? L : (t < -L ? -L : t);
    double f = (t + 0x1.8p52) - 0x1.8p52;
    f = f > t ? f - 1.0 : f;
    return u < t - f ? f + 1.0 : f;
}

/* qat_int_clip_scale of an RMS held in double (the row loop's statistics are in double:
 * a float Σx² overflows for one |x| ≥ ~1.8e19 and underflows for an RMS below ~1e-22). */
float qat_int_clip_scale_d(double rms, int bits);

/* A 24-bit uniform in [0, 1) for element `index` under `key` (the float twin of
 * qat_blk_u01: the same stream, top 24 bits, exact in float). */
static inline float qat_mf_u24(uint64_t key, uint64_t index) {
    uint64_t x = key + index * 0x9E3779B97F4A7C15ull + 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    x ^= x >> 31;
    return (float)(x >> 40) * 0x1p-24f;
}

#endif

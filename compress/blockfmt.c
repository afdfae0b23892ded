/*
 * compress/blockfmt.c — the row projections of the block-scaled formats (MX, NVFP4,
 * group INT), their bits, the 2-D NVFP4 scales and the Monte-Carlo relative MSE.
 *
 * The training quantizer calls qat_blk_row on every operand row every step, so each
 * block costs one pass for its absmax, one scalar scale computation (MX: with its
 * reciprocal), and one pass that rounds, measures the error and writes the mask. NVFP4
 * and INT divide by their element scale in double, so that every rounding is the exact
 * quotient's (the definitions' RNE(x/s)) and NVFP4's decode is rounded once. The
 * element loops are free of calls and branches (selects only) so they vectorise; the
 * stochastic variant is a separate loop so the round-to-nearest one carries no hash.
 * Rules, sources and worked examples: docs/formats.md, "Block-scaled formats".
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compress/blockfmt.h"
#include "compress/hadamard.h"
#include "compress/minifloat.h"
#include "core/cpu.h"
#include "core/error.h"

/* Compiled twice in a portable build (core/cpu.h): qat_blk_row runs the AVX-512 copy
 * (512-bit element loops) on CPUs that have it; both copies give the same bits (the
 * same expressions, no FP contraction under -std=c11). */
#if QAT_ISA_RENAME
#define qat_blk_row QAT_ISA_NAME(qat_blk_row)
#endif

#define BLK_MAX 256 /* the largest block a row accepts (int groups go to 256) */

/* The largest |x| of n values and *bad = 1 when one is NaN or inf (then the result
 * means nothing): one vectorisable pass, the one absmax of this file (tensor scales,
 * block scales; block_stats adds the sum of squares beside it). */
static inline float amax_of(const float *x, int64_t n, int *bad) {
    float m = 0.0f;
    int b = 0;
    for (int64_t i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        m = a > m ? a : m;
        b |= !(a <= FLT_MAX);
    }
    *bad = b;
    return m;
}

#if !QAT_ISA_COPY

qat_blk qat_blk_mx(qat_el_kind el) {
    const qat_minifloat *f = qat_minifloat_get(el);
    qat_blk B = {.kind = QAT_BLK_MX, .el = el, .block = 32, .bits = 1 + f->ebits + f->mbits};
    return B;
}

qat_blk qat_blk_nvfp4(int four_over_six) {
    qat_blk B = {.kind = QAT_BLK_NVFP4, .el = QAT_EL_E2M1, .block = 16, .bits = 4, .four_over_six = four_over_six};
    return B;
}

qat_blk qat_blk_int(int bits, int group, int clip) {
    qat_blk B = {.kind = QAT_BLK_INT, .block = group, .bits = bits, .int_clip = clip};
    return B;
}

int qat_blk_check(const qat_blk *B) {
    if (B->kind > QAT_BLK_INT) return qat_fail(QAT_EINPUT, "block format: unknown kind %d", (int)B->kind);
    if (B->block < 1 || B->block > BLK_MAX)
        return qat_fail(QAT_EINPUT, "block format: block of %d elements, expected 1..%d", B->block, BLK_MAX);
    if (B->kind == QAT_BLK_INT && (B->bits < 2 || B->bits > 8))
        return qat_fail(QAT_EINPUT, "block format: int%d, expected 2..8 bits", B->bits);
    if (B->kind != QAT_BLK_INT && (unsigned)B->el >= QAT_EL_COUNT)
        return qat_fail(QAT_EINPUT, "block format: unknown element format %d", (int)B->el);
    if (B->kind == QAT_BLK_NVFP4 && B->el != QAT_EL_E2M1)
        return qat_fail(QAT_EINPUT, "block format: nvfp4 elements are e2m1, got %s", qat_minifloat_get(B->el)->name);
    return 0;
}

double qat_blk_bits(const qat_blk *B) {
    switch (B->kind) {
    case QAT_BLK_MX: { /* 32·b element bits + one 8-bit E8M0 per block */
        const qat_minifloat *f = qat_minifloat_get(B->el);
        return (1 + f->ebits + f->mbits) + 8.0 / B->block;
    }
    case QAT_BLK_NVFP4: return 4.0 + 8.0 / B->block; /* one E4M3 per block */
    case QAT_BLK_INT: return B->bits + 16.0 / B->block; /* one bf16 per group */
    }
    return NAN;
}

int qat_blk_tensor_bits(const qat_blk *B) { return B->kind == QAT_BLK_NVFP4 ? 32 : 0; }

float qat_blk_trust(const qat_blk *B) {
    if (B->trust > 0) return B->trust;
    return B->kind == QAT_BLK_INT ? 0.5f : qat_minifloat_get(B->el)->trust;
}

float qat_blk_scale_mul(const qat_blk *B) {
    if (B->scale_mul > 0) return B->scale_mul;
    return (B->kind == QAT_BLK_NVFP4 && B->stochastic) ? 17.0f / 16.0f : 1.0f;
}

float qat_blk_tensor_scale(const qat_blk *B, float amax_tensor) {
    if (B->kind != QAT_BLK_NVFP4) return 1.0f;
    if (!B->four_over_six) return qat_nvfp4_tensor_scale(amax_tensor);
    if (!(amax_tensor <= FLT_MAX)) return NAN;
    return amax_tensor == 0.0f ? 1.0f : amax_tensor / (256.0f * 6.0f);
}

float qat_blk_absmax(const float *x, int64_t n) {
    int bad;
    float m = amax_of(x, n, &bad);
    if (!bad) return m;
    for (int64_t i = 0; i < n; i++)
        if (isnan(x[i])) return NAN;
    return INFINITY;
}
#endif /* !QAT_ISA_COPY */

/* One block's absmax and sum of squares, the statistics of intB@gG@clip's group RMS,
 * whose bits they fix. The sum is in double: in float one |x| >= ~1.8e19 overflowed it
 * (the group became NaN), an RMS below ~3e-23 underflowed it to 0 (the group became
 * zeros), and its rounding moved the bf16 scale by a step now and then. x² is exact in
 * double and the in-order sum is the same on every ISA. *bad when a value is NaN or inf. */
static float block_stats(const float *x, int len, double *sumsq, int *bad) {
    float m = 0.0f;
    double s = 0.0;
    int b = 0;
    for (int i = 0; i < len; i++) {
        float a = fabsf(x[i]);
        m = a > m ? a : m;
        s += (double)a * a;
        b |= !(a <= FLT_MAX);
    }
    *sumsq = s;
    *bad = b;
    return m;
}

/* A block whose scale is NaN: every element NaN, mask 0, error NaN. */
static double block_nan(float *v, int len, uint8_t *mask) {
    for (int i = 0; i < len; i++) v[i] = NAN;
    if (mask) memset(mask, 0, (size_t)len);
    return NAN;
}

/* (q − x)² in double: q and x are floats, so q − x is exact in double and its square
 * cannot overflow (a float square overflows once |q − x| > 1.8e19). */
static inline double sq_err(float q, float x) {
    double d = (double)q - (double)x;
    return d * d;
}

/* Σ e_i in element order, a chain of dependent adds (the loops that fill e stay
 * vectorised: a double sum inside them would not be). */
static double sum_d(const double *e, int len) {
    double s = 0.0;
    for (int i = 0; i < len; i++) s += e[i];
    return s;
}

/* Σx² of one block in double (the error of a block whose scale is 0). */
static double sumsq_d(const float *x, int len) {
    double s = 0.0;
    for (int i = 0; i < len; i++) s += (double)x[i] * x[i];
    return s;
}

/* The factors the MX element loops divide by the element scale sc > 0 with, when
 * scale_mul != 1 makes sc = X·mul a non-power of two: they round (x·pre)·inv. For
 * sc >= 2^−126 (a normal float) pre = 1 and inv = 1/sc. Below, 1/sc overflows once
 * sc < 2^−128 (inf; 0·inf = NaN for x = 0, and every other element saturates), which
 * X = 2^−127 with mul < 1 reaches. There both are moved by the exact power of two 2^64:
 * pre = 2^64, inv = 1/(sc·2^64). sc·2^64 and x·2^64 are exact (x·2^64 overflows only
 * past 2^64, where x/sc saturates anyway) and 1/(sc·2^64) = 2^−64·RN(1/sc) in the normal
 * range, so (x·pre)·inv = RN(x·RN(1/sc)), the same bits wherever 1/sc was finite. The
 * product with sc is left unscaled, one rounding as before. (With mul = 1 the exact
 * 2^−e of ldexpf is used instead. NVFP4 and INT divide in double and need neither.) */
static inline float elem_inv(float sc, float *pre) {
    if (sc >= 0x1p-126f) {
        *pre = 1.0f;
        return 1.0f / sc;
    }
    *pre = 0x1p64f;
    return 1.0f / (sc * 0x1p64f);
}

/* Elements of one block onto a minifloat grid at element scale sc (inv = 1/sc, or
 * 1/(sc·pre) with pre = elem_inv's): q = sc·round((x·pre)·inv); writes q into out (may
 * be x), the mask, returns Σ(q−x)² in double (blockfmt.h). pre = 1 everywhere but the
 * subnormal scales of elem_inv, which take this loop whatever io->no_sse asks (it has
 * the in-place loops' bits). The mask compares the float difference, as the in-place
 * loops do, so it has their bits. The squared errors go to e and are summed after the
 * loop (sum_d); see elems_rne_inplace. */
static double elems_mf(const float *x, float *out, int len, float sc, float inv, float pre, int emin, int mbits,
                       float maxv, int sr, uint64_t key, uint64_t idx, float thr, uint8_t *mask) {
    double e[BLK_MAX];
    if (!sr) {
        for (int i = 0; i < len; i++) {
            float xi = x[i], q = qat_mf_rne((xi * pre) * inv, emin, mbits, maxv) * sc;
            e[i] = sq_err(q, xi);
            if (mask) mask[i] = fabsf(q - xi) <= thr;
            out[i] = q;
        }
    } else {
        for (int i = 0; i < len; i++) {
            float xi = x[i], u = qat_mf_u24(key, idx + (uint64_t)i);
            float q = qat_mf_sr((xi * pre) * inv, u, emin, mbits, maxv) * sc;
            e[i] = sq_err(q, xi);
            if (mask) mask[i] = fabsf(q - xi) <= thr;
            out[i] = q;
        }
    }
    return sum_d(e, len);
}

/* elems_mf by round-to-nearest in place, without the error sum (io->no_sse), the
 * quantizer's hot loop: the same q and mask bit for bit. One pointer for input and
 * output so GCC needs no run-time alias check (which fails for out == x and falls back
 * to the scalar loop), and the byte mask in its own loop over a local array so its
 * stores cannot alias the floats. */
static void elems_rne_inplace(float *v, int len, float sc, float inv, int emin, int mbits, float maxv, float thr,
                              uint8_t *mask) {
    if (mask) {
        float ad[BLK_MAX];
        for (int i = 0; i < len; i++) {
            float xi = v[i], q = qat_mf_rne(xi * inv, emin, mbits, maxv) * sc;
            ad[i] = fabsf(q - xi);
            v[i] = q;
        }
        for (int i = 0; i < len; i++) mask[i] = ad[i] <= thr;
    } else {
        for (int i = 0; i < len; i++) v[i] = qat_mf_rne(v[i] * inv, emin, mbits, maxv) * sc;
    }
}

/* elems_mf by stochastic rounding in place, without the error sum (io->no_sse): the
 * quantized backward's hot loop. The same q and mask bit for bit; the uniforms come
 * first in their own loop (the 64-bit hash vectorises there, not beside the rounding)
 * and, as in elems_rne_inplace, one pointer for input and output. */
static void elems_sr_inplace(float *v, int len, float sc, float inv, int emin, int mbits, float maxv, float thr,
                             uint64_t key, uint64_t idx, uint8_t *mask) {
    float u[BLK_MAX];
    for (int i = 0; i < len; i++) u[i] = qat_mf_u24(key, idx + (uint64_t)i);
    if (mask) {
        float ad[BLK_MAX];
        for (int i = 0; i < len; i++) {
            float xi = v[i], q = qat_mf_sr(xi * inv, u[i], emin, mbits, maxv) * sc;
            ad[i] = fabsf(q - xi);
            v[i] = q;
        }
        for (int i = 0; i < len; i++) mask[i] = ad[i] <= thr;
    } else {
        for (int i = 0; i < len; i++) v[i] = qat_mf_sr(v[i] * inv, u[i], emin, mbits, maxv) * sc;
    }
}

/* A block with element scale 0: all zeros (the scale underflowed its format), each
 * with its x's sign as an element rounded to 0 keeps it; returns Σx² in double. */
static double block_zero(float *v, int len, float thr, uint8_t *mask) {
    double e2 = sumsq_d(v, len);
    for (int i = 0; i < len; i++) {
        if (mask) mask[i] = fabsf(v[i]) <= thr;
        v[i] = copysignf(0.0f, v[i]);
    }
    return e2;
}

static double row_mx(const qat_blk *B, float *v, int64_t n, const qat_blk_io *io) {
    const qat_minifloat *f = qat_minifloat_get(B->el);
    const int emin = f->emin, mbits = f->mbits, bl = B->block;
    const float maxv = f->max, T = qat_blk_trust(B), mul = qat_blk_scale_mul(B);
    double sse = 0.0;
    for (int64_t b0 = 0, k = 0; b0 < n; b0 += bl, k++) {
        int len = (int)(n - b0 < bl ? n - b0 : bl), bad;
        float *x = v + b0;
        uint8_t *mask = io->mask ? io->mask + b0 : NULL;
        float X; /* the stored E8M0 scale 2^e (NaN: the E8M0 NaN) */
        if (io->scales) {
            X = io->scales[k];
            amax_of(x, len, &bad);
        } else {
            float amax = amax_of(x, len, &bad);
            int e = qat_mx_scale_exp(amax, f);
            X = e == INT32_MIN || bad ? NAN : ldexpf(1.0f, e);
        }
        if (io->scale_out) io->scale_out[k] = X;
        if (bad || isnan(X)) {
            sse += block_nan(x, len, mask);
            continue;
        }
        float sc = X * mul; /* exact when mul = 1: a power of two (2^−127 is an fp32 subnormal) */
        if (sc == 0.0f) {
            sse += block_zero(x, len, T * sc, mask);
            continue;
        }
        /* 1/2^e is exact for e in [−127, 127]; with mul ≠ 1 one rounding per block (and
         * elem_inv's exact 2^64 for a subnormal X·mul, e.g. mul < 1 at X = 2^−127). */
        float pre = 1.0f, inv = mul == 1.0f ? ldexpf(1.0f, -ilogbf(X)) : elem_inv(sc, &pre);
        if (io->no_sse && !B->stochastic && pre == 1.0f)
            elems_rne_inplace(x, len, sc, inv, emin, mbits, maxv, T * sc, mask);
        else if (io->no_sse && pre == 1.0f)
            elems_sr_inplace(x, len, sc, inv, emin, mbits, maxv, T * sc, io->key, io->index0 + (uint64_t)b0, mask);
        else
            sse += elems_mf(x, x, len, sc, inv, pre, emin, mbits, maxv, B->stochastic, io->key,
                            io->index0 + (uint64_t)b0, T * sc, mask);
    }
    return sse;
}

/* After a block was rounded in place (x0 its input, q its output, len <= BLK_MAX): the
 * mask |q − x| <= thr and, when sse is asked for, Σ(q−x)², both in double (q − x is exact
 * there), for the NVFP4 and INT loops. A second short pass over a block in cache, so that
 * the rounding loops stay one line each and vectorise. */
static double block_err(const float *x0, const float *q, int len, double thr, uint8_t *mask, int sse) {
    double e[BLK_MAX];
    for (int i = 0; i < len; i++) {
        double d = (double)q[i] - (double)x0[i];
        e[i] = d * d;
        if (mask) mask[i] = fabs(d) <= thr;
    }
    return sse ? sum_d(e, len) : 0.0;
}

/* NVFP4 elements. The element scale s_b·s_t' (s_t' the fp32 tensor scale a decoder
 * multiplies by, s_t·scale_mul) is exact in double (4 + 24 significant bits), and every
 * rounding is decided on the exact quotient x/(s_b·s_t'): the correctly rounded double
 * quotient is exactly an E2M1 midpoint when x is one (x = 1.25·s_b·s_t'), and otherwise
 * stays >= ~2^−30 (in units of the element scale) from one, far beyond its rounding. The
 * decode e2m1·s_b·s_t' (at most 31 bits) is exact in double and rounded to fp32 once, so
 * the output is the correctly rounded value the format decodes to. (In fp32, x·fl(1/sc)
 * with sc = fl(s_b·s_t') moved ties and made new ones, and the decode rounded up to
 * three times.) Scales passed in io->scales are E4M3 values, so this holds for them too. */
static inline float nv_rne(float x, double sc, int emin, int mbits, double maxv) {
    return (float)(qat_mf_rne_d((double)x / sc, emin, mbits, maxv) * sc);
}

/* Stochastic: the lower neighbour lo of |x|/sc on the grid (quantum q), then up iff
 * u < (|x| − lo·sc)/(q·sc), compared as u·q·sc < |x| − lo·sc, where both sides are
 * exact in double (u·q·sc: 24 + 28 bits; lo·sc is within a factor 2 of |x|, so the
 * difference is exact): the decision of the exact quotient for the 24-bit u. If the
 * rounded quotient reaches an integer multiple of q that the exact one is just below,
 * lo is one step high, the difference is negative and q stays at lo, which is also the
 * exact answer (the exact fraction is within 2^−50 of 1, above every u). */
static inline float nv_sr(float x, double sc, double u, int emin, int mbits, double maxv) {
    double a = fabs((double)x), t = a / sc, q, iq;
    qat_mf_quantum_d(t, emin, mbits, &q, &iq);
    double tt = t * iq, f = (tt + 0x1p52) - 0x1p52;
    f = f > tt ? f - 1.0 : f;
    double lo = f * q, r = u * q * sc < a - lo * sc ? lo + q : lo;
    r = r > maxv ? maxv : r;
    return (float)copysign(r * sc, (double)x);
}

/* One NVFP4 block in place at element scale sc > 0 (double, exact), by nearest or
 * stochastically; writes the mask (|q − x| <= thr, both exact in double: thr = T·sc has
 * 24 + 28 bits) and returns Σ(q−x)² in double when sse is asked for, else 0. */
static double nv_block(float *x, int len, double sc, int sr, uint64_t key, uint64_t idx, double thr,
                       uint8_t *mask, int sse, int emin, int mbits, double maxv) {
    float x0[BLK_MAX];
    const int keep = sse || mask; /* not in the quantizer's hot loop, which wants q alone */
    if (keep) memcpy(x0, x, (size_t)len * sizeof *x);
    if (!sr) {
        for (int i = 0; i < len; i++) x[i] = nv_rne(x[i], sc, emin, mbits, maxv);
    } else {
        float u[BLK_MAX]; /* the hash vectorises in its own loop */
        for (int i = 0; i < len; i++) u[i] = qat_mf_u24(key, idx + (uint64_t)i);
        for (int i = 0; i < len; i++) x[i] = nv_sr(x[i], sc, u[i], emin, mbits, maxv);
    }
    return keep ? block_err(x0, x, len, thr, mask, sse) : 0.0;
}

/* Σ(q−x)² of a round-to-nearest block at element scale sc (a four-over-six candidate),
 * nothing written; sc = 0 gives Σx². In double: float sums overflow to inf = inf for
 * blocks near 1e20 and the comparison would always keep 6. */
static double nv_sse(const float *x, int len, double sc, int emin, int mbits, double maxv) {
    if (sc == 0.0) return sumsq_d(x, len);
    double e[BLK_MAX];
    for (int i = 0; i < len; i++) {
        double d = (double)nv_rne(x[i], sc, emin, mbits, maxv) - (double)x[i];
        e[i] = d * d;
    }
    return sum_d(e, len);
}

static double row_nvfp4(const qat_blk *B, float *v, int64_t n, const qat_blk_io *io) {
    const qat_minifloat *f = qat_minifloat_get(QAT_EL_E2M1);
    const int emin = f->emin, mbits = f->mbits, bl = B->block;
    const double maxv = f->max, T = qat_blk_trust(B);
    const float s_t = io->tensor_scale;
    const float dec = s_t * qat_blk_scale_mul(B); /* the fp32 tensor scale a decoder multiplies by */
    const int fos = B->four_over_six && !io->scales;
    double sse = 0.0;
    for (int64_t b0 = 0, k = 0; b0 < n; b0 += bl, k++) {
        int len = (int)(n - b0 < bl ? n - b0 : bl), bad;
        float *x = v + b0;
        uint8_t *mask = io->mask ? io->mask + b0 : NULL;
        float amax = amax_of(x, len, &bad);
        float sb = io->scales ? io->scales[k] : qat_mf_nvfp4_block_scale(amax, s_t, 6.0f);
        if (bad || isnan(sb) || isnan(dec)) {
            if (io->scale_out) io->scale_out[k] = NAN;
            sse += block_nan(x, len, mask);
            continue;
        }
        if (fos) {
            /* candidates at 6 and 4 by round-to-nearest at the element scales a decoder
             * uses (scale_mul included); the lower error wins, ties to 6 */
            float sb4 = qat_mf_nvfp4_block_scale(amax, s_t, 4.0f);
            double e6 = nv_sse(x, len, (double)sb * dec, emin, mbits, maxv);
            double e4 = nv_sse(x, len, (double)sb4 * dec, emin, mbits, maxv);
            if (e4 < e6) sb = sb4;
        }
        if (io->scale_out) io->scale_out[k] = sb;
        const double sc = (double)sb * dec;
        if (sc == 0.0) {
            sse += block_zero(x, len, 0.0f, mask);
            continue;
        }
        sse += nv_block(x, len, sc, B->stochastic, io->key, io->index0 + (uint64_t)b0, T * sc, mask, !io->no_sse,
                        emin, mbits, maxv);
    }
    return sse;
}

/* The next bf16 above a positive bf16 value s. */
static float bf16_up(float s) {
    uint32_t u;
    memcpy(&u, &s, 4);
    u += 0x10000u;
    memcpy(&s, &u, 4);
    return s;
}


/* One INT group in place at scale s > 0: k = RNE(x/s) (or stochastic), clamped to ±L,
 * q = k·s with x's sign (a negative x that rounds to 0 is −0, as in MX and NVFP4).
 * The quotient x/s is divided in double: a true tie (x = (k+½)·s) comes out exact, and
 * any other quotient is at least ~2^−24 (relative) from a tie, far above the division's
 * rounding, so every decision is the exact quotient's. (In float, x·fl(1/s) put true ties
 * such as x/s = 3.5 off the tie and sent them the wrong way; in double the rounded
 * reciprocal still moved some, e.g. x/s = 1.5 at s = 1.53125.) An fp32-subnormal s or x
 * is normal in double, so tiny groups need no scaling. k·s (at most 15 bits) is
 * exact in float. The mask compares |q − x| (exact in double) with T·s (exact: 24 + 8
 * bits). Returns Σ(q−x)² in double when sse is asked for, else 0. */
static double int_group(float *x, int len, float s, double L, int sr, uint64_t key, uint64_t idx, double thr,
                        uint8_t *mask, int sse) {
    const double sd = s;
    float x0[BLK_MAX];
    const int keep = sse || mask; /* not in the quantizer's hot loop (io->no_sse), which wants q alone */
    if (keep) memcpy(x0, x, (size_t)len * sizeof *x);
    if (!sr) {
        for (int i = 0; i < len; i++) x[i] = copysignf((float)qat_int_rne((double)x[i] / sd, L) * s, x[i]);
    } else {
        float u[BLK_MAX]; /* the hash vectorises in its own loop */
        for (int i = 0; i < len; i++) u[i] = qat_mf_u24(key, idx + (uint64_t)i);
        for (int i = 0; i < len; i++) x[i] = copysignf((float)qat_int_sr((double)x[i] / sd, u[i], L) * s, x[i]);
    }
    return keep ? block_err(x0, x, len, thr, mask, sse) : 0.0;
}

static double row_int(const qat_blk *B, float *v, int64_t n, const qat_blk_io *io) {
    const int bl = B->block;
    const double L = (double)((1 << (B->bits - 1)) - 1);
    const float T = qat_blk_trust(B);
    double sse = 0.0;
    for (int64_t b0 = 0, k = 0; b0 < n; b0 += bl, k++) {
        int len = (int)(n - b0 < bl ? n - b0 : bl), bad;
        float *x = v + b0, s;
        uint8_t *mask = io->mask ? io->mask + b0 : NULL;
        if (io->scales) {
            amax_of(x, len, &bad);
            s = io->scales[k];
        } else if (B->int_clip) {
            double ss;
            block_stats(x, len, &ss, &bad);
            s = qat_int_clip_scale_d(sqrt(ss / len), B->bits);
        } else {
            float amax = amax_of(x, len, &bad);
            s = qat_int_group_scale(amax, B->bits);
            /* Stochastic rounding keeps E[q] = x only if no element is clamped: round the
             * bf16 scale up instead when to-nearest went below amax/L (not where L·s would
             * pass FLT_MAX: the saturated scale clamps there as in round-to-nearest). */
            if (B->stochastic && (double)s * L < amax && (double)bf16_up(s) * L <= FLT_MAX) s = bf16_up(s);
        }
        if (io->scale_out) io->scale_out[k] = bad ? NAN : s;
        if (bad || isnan(s)) {
            sse += block_nan(x, len, mask);
            continue;
        }
        if (s == 0.0f) {
            sse += block_zero(x, len, 0.0f, mask);
            continue;
        }
        sse += int_group(x, len, s, L, B->stochastic, io->key, io->index0 + (uint64_t)b0, (double)T * s, mask,
                         !io->no_sse);
    }
    return sse;
}

double qat_blk_row(const qat_blk *B, float *v, int64_t n, const qat_blk_io *io) {
    QAT_ASSERT(B->block >= 1 && B->block <= BLK_MAX);
    QAT_ASSERT(B->kind != QAT_BLK_INT || (B->bits >= 2 && B->bits <= 8));
    QAT_ASSERT(B->kind == QAT_BLK_INT || (unsigned)B->el < QAT_EL_COUNT);
    /* NVFP4 without its tensor scale would silently give zeros; NaN is allowed (it is the
     * documented result of a non-finite tensor). */
    QAT_ASSERT(B->kind != QAT_BLK_NVFP4 || !(io->tensor_scale <= 0.0f));
    double sse = NAN;
    switch (B->kind) {
    case QAT_BLK_MX: sse = row_mx(B, v, n, io); break;
    case QAT_BLK_NVFP4: sse = row_nvfp4(B, v, n, io); break;
    case QAT_BLK_INT: sse = row_int(B, v, n, io); break;
    default: QAT_ASSERT(0);
    }
    /* no_sse: the element sums were skipped, so what was summed is partial; say 0
     * (NaN still marks a NaN block, as documented). */
    return io->no_sse && !isnan(sse) ? 0.0 : sse;
}

#if QAT_ISA_DISPATCH
#undef qat_blk_row
double qat_blk_row_avx512(const qat_blk *B, float *v, int64_t n, const qat_blk_io *io);

double qat_blk_row(const qat_blk *B, float *v, int64_t n, const qat_blk_io *io) {
    return qat_cpu_avx512() ? qat_blk_row_avx512(B, v, n, io) : qat_blk_row_generic(B, v, n, io);
}
#endif

#if !QAT_ISA_COPY
void qat_nvfp4_scales_2d(const float *w, int64_t rows, int64_t cols, int64_t ld, float s_t, float *sb) {
    int64_t tc = (cols + 15) / 16;
    for (int64_t r0 = 0; r0 < rows; r0 += 16) {
        int64_t r1 = r0 + 16 < rows ? r0 + 16 : rows;
        for (int64_t c0 = 0, t = 0; c0 < cols; c0 += 16, t++) {
            int64_t c1 = c0 + 16 < cols ? c0 + 16 : cols;
            float m = 0.0f;
            for (int64_t r = r0; r < r1; r++) {
                float mr = qat_blk_absmax(w + r * ld + c0, c1 - c0);
                m = (mr > m || isnan(mr)) ? mr : m;
            }
            sb[(r0 / 16) * tc + t] = qat_nvfp4_block_scale(m, s_t, 6.0f);
        }
    }
}

double qat_blk_mc_relmse(const qat_blk *B, int64_t rows, int64_t cols, uint64_t seed, double row_scale_log2,
                         int hadamard, int square, double *se) {
    if (rows < 1 || cols < 1 || (hadamard > 0 && cols % hadamard != 0) || qat_blk_check(B) != 0) {
        if (rows < 1 || cols < 1 || hadamard > 0)
            qat_fail(QAT_EINPUT, "block format Monte Carlo: %lld x %lld values with Hadamard block %d (need "
                     "rows, cols >= 1 and the block dividing cols)", (long long)rows, (long long)cols, hadamard);
        return NAN;
    }
    float *x = malloc((size_t)(rows * cols) * sizeof(float));
    double *rel = malloc((size_t)rows * sizeof(double));
    float *ramax = malloc((size_t)rows * sizeof(float));
    int64_t tc = (cols + 15) / 16;
    float *sb = square ? malloc((size_t)(((rows + 15) / 16) * tc) * sizeof(float)) : NULL;
    if (!x || !rel || !ramax || (square && !sb)) {
        free(x), free(rel), free(ramax), free(sb);
        qat_fail(QAT_ERUNTIME, "block format Monte Carlo: out of memory for %lld values", (long long)(rows * cols));
        return NAN;
    }
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        float *xr = x + r * cols;
        double g = row_scale_log2 > 0 && rows > 1 ? exp2(row_scale_log2 * (double)r / (double)(rows - 1)) : 1.0;
        for (int64_t c = 0; c < cols; c++) xr[c] = (float)(g * qat_normal_at(seed, (uint64_t)(r * cols + c)));
        if (hadamard > 0) qat_hadamard_row(xr, cols, hadamard);
        ramax[r] = qat_blk_absmax(xr, cols);
    }
    float amax = qat_blk_absmax(ramax, rows); /* the tensor absmax, in a fixed order */
    float s_t = qat_blk_tensor_scale(B, amax);
    if (square) qat_nvfp4_scales_2d(x, rows, cols, cols, s_t, sb);
    uint64_t key = qat_hash3(seed, 0x5352ull, 1); /* the stochastic-rounding stream */
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        float *xr = x + r * cols;
        double s2 = 0.0;
        for (int64_t c = 0; c < cols; c++) s2 += (double)xr[c] * xr[c];
        qat_blk_io io = {.tensor_scale = s_t, .scales = square ? sb + (r / 16) * tc : NULL, .key = key,
                         .index0 = (uint64_t)(r * cols)};
        rel[r] = qat_blk_row(B, xr, cols, &io) / s2;
    }
    double m = 0.0, v = 0.0;
    for (int64_t r = 0; r < rows; r++) m += rel[r];
    m /= (double)rows;
    for (int64_t r = 0; r < rows; r++) v += (rel[r] - m) * (rel[r] - m);
    if (se) *se = rows > 1 ? sqrt(v / (double)(rows - 1) / (double)rows) : NAN;
    free(x), free(rel), free(ramax), free(sb);
    return m;
}
#endif /* !QAT_ISA_COPY */

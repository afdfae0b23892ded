/*
 * compress/gradq.c — quantizing the backward products' operands (gradq.h).
 *
 * Work unit: a segment of U = max(group, hadamard) consecutive inner-dim elements
 * of one vector (a row, or a column). Row vectors are processed in place in a
 * small stack buffer; column vectors are gathered a tile at a time (U rows × up to
 * TILE/U columns, transposed into the buffer so every vector is contiguous), which
 * keeps the pass over a column-quantized operand one read and one write of each
 * element, in cache, with no transposed copy of the operand.
 *
 * Grids (int, ternary, fp4): levels with the outermost one at the group's max|x|
 * (absmax) a, so nothing is clipped and stochastic rounding is exactly unbiased.
 * intB (B >= 2) and ternary use the symmetric integer grid with a zero level, k·a/L,
 * |k| <= L = 2^(B−1) − 1 (int_rtn and int_sr below), not the forward's 2^b-level
 * QuEST grid, which has no zero and rounds every exact zero of a sparse Ŵ to −Δ/2;
 * int1 keeps ±a; fp4 is E2M1 × a/6, its round-to-nearest through compress/project.h
 * (qat_proj_row with an absmax scale), the forward's code. Stochastic rounding picks
 * the upper neighbour level with probability (x − lo)/(hi − lo).
 *
 * Block formats: MX rounds a whole segment here (mx_segment, the element kernels of
 * compress/minifloat.h, the bits of qat_blk_row), with Quartet's range matching: X
 * from the block's own absmax, then ¾·x rounded against that X, so |¾·x/X| < 6
 * (E2M1) or < 384 (E4M3) and nothing saturates; the caller multiplies the product
 * by (4/3)² = 16/9. NVFP4 goes through qat_blk_row one segment at a time (so its
 * arithmetic is the forward's, bit for bit: exact quotients, correctly rounded decode);
 * its per-tensor scale needs the operand's absmax (NaN if any element is NaN, as in the
 * forward): one extra read of the source, bounded
 * by √B·max|x| when a Hadamard block B rotates it (|(x·D·H)_i| <= ‖x_block‖ <= √B·max|x|),
 * so the block scales never saturate E4M3.
 */
#include "gradq.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress/format.h"
#include "compress/gmse.h"
#include "compress/hadamard.h"
#include "compress/minifloat.h"
#include "core/bf16.h"
#include "core/cpu.h"
#include "core/error.h"
#include "core/rng.h"

#define TILE 8192 /* floats in a work tile (32 KB) */

/* Compiled twice in a portable build (core/cpu.h): qat_gradq_run runs the AVX-512
 * copy (the hash and rounding loops 16 lanes wide) on CPUs that have it. Both copies
 * give the same bits: integer hashes, exact conversions (24-bit uniforms), and the
 * same float expressions with no contraction under -std=c11. */
#if QAT_ISA_RENAME
#define qat_gradq_run QAT_ISA_NAME(qat_gradq_run)
#endif

#if !QAT_ISA_COPY


const char *qat_gradq_valid_list(void) {
    return "fp32 (off), int1..int8, ternary, fp4 (absmax scale per 32 along the inner dim), "
           "mxfp4, mxfp6, mxfp8, nvfp4 (block-scaled, compress/blockfmt.h)";
}

/* The block formats by name: MX elements per OCP MX v1.0 (mxfp6 = E2M3, mxfp8 = E4M3). */
static int block_format(const char *name, qat_blk *b) {
    if (!strcmp(name, "mxfp4")) *b = qat_blk_mx(QAT_EL_E2M1);
    else if (!strcmp(name, "mxfp6")) *b = qat_blk_mx(QAT_EL_E2M3);
    else if (!strcmp(name, "mxfp8")) *b = qat_blk_mx(QAT_EL_E4M3);
    else if (!strcmp(name, "nvfp4")) *b = qat_blk_nvfp4(0);
    else return 0;
    return 1;
}

int qat_gradq_init(qat_gradq *g, const qat_compress_grad *c) {
    memset(g, 0, sizeof *g);
    snprintf(g->name, sizeof g->name, "%s", c->format);
    g->sr = strcmp(c->rounding, "sr") == 0;
    g->hadamard = c->hadamard;
    g->prescale = 1.0f;
    g->group = QAT_GRADQ_GROUP;
    if (strcmp(c->rounding, "sr") != 0 && strcmp(c->rounding, "rtn") != 0)
        return qat_fail(QAT_EINPUT, "compress.gradients.rounding: '%s' is not a rounding; expected rtn or sr",
                        c->rounding);
    if (c->hadamard < 0 || c->hadamard == 1 || (c->hadamard & (c->hadamard - 1)) ||
        c->hadamard > QAT_GRADQ_MAX_HADAMARD)
        return qat_fail(QAT_EINPUT, "compress.gradients.hadamard: %d; expected 0 (off) or a power of two "
                        "from 2 to %d", c->hadamard, QAT_GRADQ_MAX_HADAMARD);
    if (strcmp(c->format, "fp32") == 0) {
        g->kind = QAT_GQ_OFF;
        return QAT_OK;
    }
    if (block_format(c->format, &g->blk)) {
        g->kind = QAT_GQ_BLOCK;
        g->blk.stochastic = g->sr;
        g->group = g->blk.block;
        if (g->blk.kind == QAT_BLK_MX) g->prescale = 0.75f;
        return qat_blk_check(&g->blk);
    }
    qat_fmt f;
    if (qat_fmt_parse(c->format, &f) != QAT_OK || f.noise || f.sp != QAT_SP_NONE ||
        (f.val != QAT_VAL_INT && f.val != QAT_VAL_TERNARY && f.val != QAT_VAL_FP4))
        return qat_fail(QAT_EINPUT, "compress.gradients.format: '%s' cannot quantize a backward operand; "
                        "expected one of: %s", c->format, qat_gradq_valid_list());
    g->kind = QAT_GQ_GRID;
    qat_proj_setup(&g->P, &f);
    g->P.absmax = 1;
    g->P.group = 0; /* gradq hands qat_proj_row one group at a time */
    g->P.mask = QAT_MASK_NONE;
    if (f.val == QAT_VAL_FP4) g->grid = QAT_GQ_FP4;
    else if (f.val == QAT_VAL_INT && f.bits == 1) g->grid = QAT_GQ_SIGN;
    else g->grid = QAT_GQ_INT, g->L = f.val == QAT_VAL_TERNARY ? 1 : (1 << (f.bits - 1)) - 1;
    return QAT_OK;
}

int qat_gradq_check_inner(const qat_gradq *g, int64_t inner, const char *what) {
    if (!qat_gradq_on(g) || !g->hadamard || inner % g->hadamard == 0) return QAT_OK;
    return qat_fail(QAT_EINPUT, "compress.gradients.hadamard: %d does not divide the %s (%lld), the inner "
                    "dimension of a backward product; expected a power of two dividing it",
                    g->hadamard, what, (long long)inner);
}

uint64_t qat_gradq_key(uint64_t layer_key, int64_t step, int which) {
    return qat_hash3(layer_key, (uint64_t)step, 0x6AD0ull + (uint64_t)which);
}

void qat_gradq_describe(const qat_gradq *g, char *buf, int n) {
    if (!qat_gradq_on(g)) snprintf(buf, (size_t)n, "fp32");
    else if (g->hadamard) snprintf(buf, (size_t)n, "%s %s h%d", g->name, g->sr ? "sr" : "rtn", g->hadamard);
    else snprintf(buf, (size_t)n, "%s %s", g->name, g->sr ? "sr" : "rtn");
}

#endif /* !QAT_ISA_COPY */

/* The uniform in [0, 1) of element `idx` (24 bits: exact in float). */
static inline float unif(uint64_t key, uint64_t idx) {
    return (float)(qat_hash64(key + idx * 0x9E3779B97F4A7C15ull) >> 40) * 0x1p-24f;
}

/* fmaxf(x, c) and fminf(x, c) for a constant c that is not NaN, written as one
 * compare so they inline and vectorise (libm's are calls): a NaN x gives c, as
 * fmaxf/fminf do. (Callers never pass x = -0 against c = 0, the one case where the
 * libm functions may differ between versions.) */
static inline float max_c(float x, float c) { return x > c ? x : c; }
static inline float min_c(float x, float c) { return x < c ? x : c; }

/* Round t >= 0 (in level-index units) up with probability frac(t): E = t. t is
 * +0 or more and at most 255 (never -0, NaN or large), where truncation through
 * int32 is floorf exactly and, unlike floorf under -ftrapping-math, vectorises. */
static inline float sr_index(float t, float u) {
    float fl = (float)(int32_t)t;
    return fl + (u < t - fl ? 1.0f : 0.0f);
}

/*
 * The backward's integer grid (intB, B >= 2, and ternary; docs/formats.md "The backward
 * pass", Grids): levels k·a/L, k ∈ {−L, …, L}, L = 2^(B−1) − 1 (2^B − 1 levels: int2 =
 * ternary = {−a, 0, a}, int4 = [−7, 7], int8 = [−127, 127]), a the group's absmax: the
 * symmetric integer grid with a zero level of the INT4 training of Xi, Li, Chen, Zhu
 * ("Training Transformers with 4-bit Integers", NeurIPS 2023, arXiv:2306.11987: INT4
 * in [−7, 7]) and of symmetric INT8 GEMMs. A zero level matters: the Ŵ of a spNN, N:M
 * or ternary forward is full of exact zeros, and a grid without one rounds each to the
 * same −Δ/2.
 *
 * Code of x: t = x·L/a in double. x·L is exact (24 + 7 bits) and the one division is
 * correctly rounded; the exact x·L/a is either a half-integer (x exactly halfway
 * between two levels) or at least ~2^−34 away from one, far above the division's
 * 2^−46 error at |t| <= 128, so ties are exactly the true ties. Callers pass a finite
 * x with |x| <= a, a > 0 (a NaN, inf or all-zero group is set aside first; the
 * 16-lane path substitutes 0 and 1 in such lanes), so |t| <= L and the int32
 * conversion is exact.
 * rtn: k = t rounded to nearest, ties to the even k (the add-and-subtract of 1.5·2^52 in
 * the default rounding mode, exact for |t| < 2^51; a zero k is +0).
 * sr: k = ⌊|t|⌋ + [u < |t| − ⌊|t|⌋] with t's sign (|t| − ⌊|t|⌋ is exact), so E[k] = t to
 * the 2^−24 of the uniform and an exact zero is 0 in every draw.
 * The level (k·a)/L: k·a exact in double, one division, then to float; ±a exactly at
 * k = ±L, +0 at k = 0.
 */
static inline float int_rtn(float x, float a, double L) {
    const double t = (double)x * L / a;
    const double k = (t + 0x1.8p52) - 0x1.8p52;
    return (float)(k * a / L);
}

static inline float int_sr(float x, float a, double L, float u) {
    const double t = (double)x * L / a, at = fabs(t), fl = (double)(int32_t)at;
    /* selects between constants only, so the loop if-converts and vectorises (an
     * arithmetic arm would be a trapping operation to speculate); + 0.0 turns the −0
     * of a zero k with t < 0 into +0 */
    const double k = (fl + ((double)u < at - fl ? 1.0 : 0.0)) * (t < 0 ? -1.0 : 1.0) + 0.0;
    return (float)(k * a / L);
}

/* int1: the levels ±a; one bit has no zero level. rtn: x > 0 → a, else −a (an exact
 * zero is the tie between the codes m = 0 and 1 of the forward's formula m = round(x/Δ +
 * ½), Δ = 2a, and goes to the even one, −a, as in docs/formats.md "Rounding ties"). sr:
 * a with probability (x + a)/(2a), so E[q] = x and a zero is ±a with probability ½. */
static inline float sign_rtn(float x, float a) { return x > 0.0f ? a : -a; }

static inline float sign_sr(float x, float a, float u) {
    return (double)u < ((double)x + a) / (2.0 * a) ? a : -a;
}

/* max |v| of one group, in 16 lanes and then across them, and in the same pass whether
 * one is NaN or inf (*bad; then the whole group is NaN, as quantize_segment says): for
 * finite elements the |v| are never -0, so the order of the compares cannot change the
 * result. */
static float group_absmax(const float *restrict v, int64_t n, int *bad_out) {
    float m[16] = {0};
    int32_t badl[16] = {0};
    int64_t i0 = 0;
    for (; i0 + 16 <= n; i0 += 16)
        for (int l = 0; l < 16; l++) {
            float x = fabsf(v[i0 + l]);
            m[l] = max_c(x, m[l]);
            badl[l] |= !(x <= FLT_MAX);
        }
    for (; i0 < n; i0++) {
        float x = fabsf(v[i0]);
        m[0] = max_c(x, m[0]);
        badl[0] |= !(x <= FLT_MAX);
    }
    float a = 0.0f;
    int bad = 0;
    for (int l = 0; l < 16; l++) a = max_c(m[l], a), bad |= badl[l];
    *bad_out = bad;
    return a;
}

/* A group's absmax scale into *a, before it is rounded (both rounding modes): 0 when
 * the group is settled already, one holding a NaN or inf made all NaN, an all-zero one
 * left as it is (on every grid); else 1. */
static int group_scale(float *restrict v, int64_t n, float *a) {
    int bad;
    *a = group_absmax(v, n, &bad);
    if (bad)
        for (int64_t i = 0; i < n; i++) v[i] = NAN;
    return !bad && *a != 0.0f;
}

/* Round-to-nearest of one group of n <= QAT_GRADQ_GROUP elements onto the grid with
 * absmax scale (a group holding a NaN or inf becomes NaN; an all-zero one is left as
 * it is). */
static void grid_rtn(const qat_gradq *g, float *restrict v, int64_t n) {
    float a;
    if (!group_scale(v, n, &a)) return;
    if (g->grid == QAT_GQ_INT) {
        const double L = g->L;
        for (int64_t i = 0; i < n; i++) v[i] = int_rtn(v[i], a, L);
    } else if (g->grid == QAT_GQ_SIGN) {
        for (int64_t i = 0; i < n; i++) v[i] = sign_rtn(v[i], a);
    } else {
        uint8_t mask[QAT_GRADQ_GROUP];
        qat_proj_row(&g->P, v, n, NULL, mask);
    }
}

/* Stochastic rounding of one group of n <= QAT_GRADQ_GROUP elements onto the grid
 * with absmax scale (a group holding a NaN or inf becomes NaN). The uniforms are
 * drawn first, in a loop of their own, so both loops vectorise (the 64-bit hash
 * lanes, then the rounding). */
static void grid_sr(const qat_gradq *g, float *restrict v, int64_t n, uint64_t key, uint64_t idx0) {
    float a;
    if (!group_scale(v, n, &a)) return;
    float u[QAT_GRADQ_GROUP];
    for (int64_t i = 0; i < n; i++) u[i] = unif(key, idx0 + (uint64_t)i);
    if (g->grid == QAT_GQ_INT) {
        const double L = g->L;
        for (int64_t i = 0; i < n; i++) v[i] = int_sr(v[i], a, L, u[i]);
    } else if (g->grid == QAT_GQ_SIGN) {
        for (int64_t i = 0; i < n; i++) v[i] = sign_sr(v[i], a, u[i]);
    } else {
        /* E2M1 magnitudes ×a/6: steps of 0.5 below 2, 1 below 4, 2 up to 6 */
        const float s = a / 6.0f, inv = 6.0f / a;
        for (int64_t i = 0; i < n; i++) {
            float m = min_c(fabsf(v[i]) * inv, 6.0f);
            float base = m < 2.0f ? 0.0f : m < 4.0f ? 2.0f : 4.0f;
            float st = m < 2.0f ? 0.5f : m < 4.0f ? 1.0f : 2.0f;
            float q = base + st * sr_index((m - base) / st, u[i]);
            v[i] = copysignf(q * s, v[i]);
        }
    }
}

/* 2^e as a float for e in [−127, 127] (2^−127 is the subnormal 0x00400000): exactly
 * ldexpf(1, e), without the call, so the per-lane scales vectorise. */
static inline float pow2i(int32_t e) {
    uint32_t b = e >= -126 ? (uint32_t)(e + 127) << 23 : 0x00400000u;
    float f;
    memcpy(&f, &b, 4);
    return f;
}

/* qat_mx_scale_exp of a finite absmax m >= 0 (the caller has set NaN/inf blocks
 * aside): floor(log2 m) − emax from the exponent field, clamped to [−127, 127]; 0
 * and subnormals read as −127. The same integer, without the call per block. */
static inline int32_t mx_exp(float m, int emax) {
    uint32_t b;
    memcpy(&b, &m, 4);
    int32_t e = (int32_t)((b >> 23) & 0xffu) - 127 - emax;
    return e < -127 ? -127 : (e > 127 ? 127 : e);
}

/* MX blocks of one segment in place, with Quartet's range matching: per block one
 * pass for the absmax (and the NaN/inf flag), then ¾·x rounded against the scale of
 * the block as it was. The same bits as qat_blk_row called per block on the ¾·x with
 * that scale given (compress/blockfmt.c row_mx, elems_*_inplace): ¾ shrinks, so ¾·x
 * holds a NaN or inf exactly where x does (a bad block is all NaN either way); X =
 * 2^e is never 0 (2^−127 is an fp32 subnormal), so the zero-scale branch is never
 * taken; 1/X = 2^−e exactly, as ldexpf(1, −ilogbf(X)) there; and ¾·x is rounded to
 * float before the ·(1/X), as the separate multiply stored it. The uniforms of the
 * whole segment come first, in a loop of their own (the 64-bit hash lanes vectorise
 * there). */
static void mx_segment(const qat_gradq *g, float *restrict v, int64_t n, uint64_t key, uint64_t idx0) {
    const qat_minifloat *f = qat_minifloat_get(g->blk.el);
    const int emin = f->emin, mbits = f->mbits, bl = g->blk.block;
    const float maxv = f->max, ps = g->prescale;
    float u[QAT_GRADQ_MAX_HADAMARD > QAT_GRADQ_GROUP ? QAT_GRADQ_MAX_HADAMARD : QAT_GRADQ_GROUP];
    if (g->sr)
        for (int64_t i = 0; i < n; i++) u[i] = qat_mf_u24(key, idx0 + (uint64_t)i);
    for (int64_t b0 = 0; b0 < n; b0 += bl) {
        const int64_t len = n - b0 < bl ? n - b0 : bl;
        float *restrict x = v + b0;
        float m = 0.0f;
        int bad = 0;
        for (int64_t i = 0; i < len; i++) {
            float a = fabsf(x[i]);
            m = a > m ? a : m;
            bad |= !(a <= FLT_MAX);
        }
        if (bad) {
            for (int64_t i = 0; i < len; i++) x[i] = NAN;
            continue;
        }
        const int32_t e = mx_exp(m, f->emax);
        const float X = pow2i(e), inv = pow2i(-e);
        if (g->sr) {
            const float *restrict ub = u + b0;
            for (int64_t i = 0; i < len; i++) x[i] = qat_mf_sr((x[i] * ps) * inv, ub[i], emin, mbits, maxv) * X;
        } else {
            for (int64_t i = 0; i < len; i++) x[i] = qat_mf_rne((x[i] * ps) * inv, emin, mbits, maxv) * X;
        }
    }
}

/* Quantize one contiguous inner-dim segment of n elements in groups; idx0 is the
 * index of v[0] in the operand (inner dim fastest). */
static void quantize_segment(const qat_gradq *g, float *v, int64_t n, uint64_t key, uint64_t idx0, float s_t) {
    if (g->kind == QAT_GQ_BLOCK && g->blk.kind == QAT_BLK_MX) {
        mx_segment(g, v, n, key, idx0);
        return;
    }
    if (g->kind == QAT_GQ_BLOCK) {
        /* NVFP4: qat_blk_row cuts the segment into blocks of 16 from v[0], each with
         * the counter index0 + its offset, exactly the groups of this loop; one call
         * instead of one per block (the error sum is not read) */
        qat_blk_io io = {.tensor_scale = s_t, .key = key, .index0 = idx0, .no_sse = 1};
        qat_blk_row(&g->blk, v, n, &io);
        return;
    }
    for (int64_t a = 0; a < n; a += g->group) {
        int64_t len = n - a < g->group ? n - a : g->group;
        /* a NaN or inf makes its whole group NaN, visibly (as the block formats do):
         * it must never be rounded onto a level, and the grid roundings would; both
         * find it in their absmax pass */
        if (g->sr) grid_sr(g, v + a, len, key, idx0 + (uint64_t)a);
        else grid_rtn(g, v + a, len);
    }
}

/* Sign of inner index i under the product's key: ±1. */
static inline float sign_at(uint64_t key, uint64_t i) {
    return (qat_hash64(key ^ (i * 0xD1B54A32D192ED03ull)) >> 63) ? -1.0f : 1.0f;
}

static inline float load(const qat_gradq_op *op, int64_t i) {
    if (op->x) return op->x[i];
    uint32_t u = (uint32_t)op->xb[i] << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* bf16 to f32 (exact), n values. */
static void bf16_to_f32(const uint16_t *restrict src, float *restrict dst, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)src[i] << 16;
        memcpy(&dst[i], &u, 4);
    }
}

/* Rotate (signs, then H) a contiguous segment whose signs are sg[0..n): the
 * product's signs depend on the inner index only, so they are hashed once per
 * operand (qat_gradq_run) instead of once per element. */
static void rotate(const qat_gradq *g, float *restrict v, int64_t n, const float *restrict sg) {
    if (!g->hadamard) return;
    for (int64_t i = 0; i < n; i++) v[i] *= sg[i];
    qat_hadamard_row(v, n, g->hadamard);
}

static void run_rows(const qat_gradq *g, const qat_gradq_op *op, int64_t U, float s_t, const float *sg) {
    const int64_t R = op->rows, C = op->cols;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < R; r++) {
        float buf[TILE];
        for (int64_t s0 = 0; s0 < C; s0 += U) {
            int64_t n = C - s0 < U ? C - s0 : U;
            const int64_t base = r * C + s0;
            if (op->x) memcpy(buf, op->x + base, (size_t)n * sizeof(float));
            else bf16_to_f32(op->xb + base, buf, n);
            rotate(g, buf, n, sg ? sg + s0 : NULL);
            quantize_segment(g, buf, n, op->key, (uint64_t)base, s_t);
            if (op->y) memcpy(op->y + base, buf, (size_t)n * sizeof(float));
            else qat_bf16_row(buf, op->yb + base, n);
        }
    }
}

/* 16×16 blocks are transposed in registers: four stages of two-input shuffles,
 * stage b swapping the off-diagonal b×b blocks of each pair of rows (r, r + b).
 * Data movement only, so every ISA gives the same bits; GCC lowers each shuffle to
 * one permute on AVX-512 and to a few on narrower vectors. */
#ifndef __AVX512F__ /* 64-byte vectors between static helpers only: no ABI at stake */
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
typedef float gq_v16 __attribute__((vector_size(64)));
typedef int32_t gq_v16i __attribute__((vector_size(64)));

#define GQ_STAGE(B, LO, HI)                                               \
    do {                                                                  \
        const gq_v16i lo = LO, hi = HI;                                   \
        for (int r = 0; r < 16; r++)                                      \
            if (!(r & (B))) {                                             \
                gq_v16 a = v[r], b = v[r + (B)];                          \
                v[r] = __builtin_shuffle(a, b, lo);                       \
                v[r + (B)] = __builtin_shuffle(a, b, hi);                 \
            }                                                             \
    } while (0)

static inline void transpose16(gq_v16 *v) {
    GQ_STAGE(8, ((gq_v16i){0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23}),
             ((gq_v16i){8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31}));
    GQ_STAGE(4, ((gq_v16i){0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27}),
             ((gq_v16i){4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31}));
    GQ_STAGE(2, ((gq_v16i){0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29}),
             ((gq_v16i){2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31}));
    GQ_STAGE(1, ((gq_v16i){0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30}),
             ((gq_v16i){1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31}));
}
#undef GQ_STAGE

/* Row i (16 values from column j) of the source, as f32. */
static inline gq_v16 load16(const qat_gradq_op *op, int64_t at) {
    gq_v16 v;
    if (op->x) {
        memcpy(&v, op->x + at, sizeof v);
    } else {
        float f[16];
        bf16_to_f32(op->xb + at, f, 16);
        memcpy(&v, f, sizeof v);
    }
    return v;
}

/* Gather rows r0..r0+n, columns c0..c0+w of the operand transposed: column j
 * becomes buf[j·n .. j·n + n). 16×16 blocks through registers, the ragged edges
 * element by element. */
static void gather_cols(const qat_gradq_op *op, float *restrict buf, int64_t r0, int64_t n, int64_t c0, int64_t w) {
    const int64_t C = op->cols, n16 = n & ~(int64_t)15, w16 = w & ~(int64_t)15;
    for (int64_t i0 = 0; i0 < n16; i0 += 16)
        for (int64_t j0 = 0; j0 < w16; j0 += 16) {
            gq_v16 v[16];
            for (int k = 0; k < 16; k++) v[k] = load16(op, (r0 + i0 + k) * C + c0 + j0);
            transpose16(v);
            for (int l = 0; l < 16; l++) memcpy(buf + (j0 + l) * n + i0, &v[l], sizeof v[l]);
        }
    for (int64_t j = 0; j < w; j++)
        for (int64_t i = j < w16 ? n16 : 0; i < n; i++) buf[j * n + i] = load(op, (r0 + i) * C + c0 + j);
}

/* The inverse of gather_cols, into y (f32) or yb (rounded to bf16 element by
 * element with qat_bf16_round). */
static void scatter_cols(const qat_gradq_op *op, const float *restrict buf, int64_t r0, int64_t n, int64_t c0,
                         int64_t w) {
    const int64_t C = op->cols, n16 = n & ~(int64_t)15, w16 = w & ~(int64_t)15;
    for (int64_t i0 = 0; i0 < n16; i0 += 16)
        for (int64_t j0 = 0; j0 < w16; j0 += 16) {
            gq_v16 v[16];
            for (int l = 0; l < 16; l++) memcpy(&v[l], buf + (j0 + l) * n + i0, sizeof v[l]);
            transpose16(v);
            for (int k = 0; k < 16; k++) {
                const int64_t at = (r0 + i0 + k) * C + c0 + j0;
                if (op->y) {
                    memcpy(op->y + at, &v[k], sizeof v[k]);
                } else {
                    float f[16];
                    memcpy(f, &v[k], sizeof f);
                    for (int e = 0; e < 16; e++) op->yb[at + e] = qat_bf16_round(f[e]);
                }
            }
        }
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = i < n16 ? w16 : 0; j < w; j++) {
            const int64_t at = (r0 + i) * C + c0 + j;
            if (op->y) op->y[at] = buf[j * n + i];
            else op->yb[at] = qat_bf16_round(buf[j * n + i]);
        }
}

/* ---- 16 columns at a time, lanes = columns ----
 * For a column-quantized operand, 16 adjacent columns are 16 independent inner-dim
 * vectors whose elements of one row are contiguous: the tile is kept as it lies
 * (x[i·16 + l] = row r0 + i, column c + l) and every step runs across the 16 lanes,
 * so there is no transpose. Each lane computes exactly the scalar expressions of
 * the segment path (the same helpers, the same order of IEEE operations), so the
 * bits are those of gather_cols + quantize_segment + scatter_cols:
 *  - the Hadamard transform in the stage order of compress/hadamard.c (strides 1, 2,
 *    4, ... each butterfly one a + b and one a − b, then one multiply by 1/√B);
 *    hadamard.c's 16-point kernel forms b + a and a + (−1)·b, the same values;
 *  - absmax per lane is a max of non-negative floats, which no order can change;
 *  - a group whose absmax is 0 keeps its input (grid_sr returns early there).
 * Grid sr and MX (sr, rtn) run here; grid rtn (qat_proj_row) and NVFP4 (qat_blk_row)
 * keep the transposing path. */
#define LN 16

static int lanes_ok(const qat_gradq *g, int64_t U) {
    if (U * LN > TILE) return 0;
    if (g->kind == QAT_GQ_GRID) return g->sr;
    return g->kind == QAT_GQ_BLOCK && g->blk.kind == QAT_BLK_MX;
}

/* One group of len rows of the 16 lanes in place; idx[l] is the uniform counter of
 * the group's first element in lane l (the next ones follow it). */
static void lanes_group(const qat_gradq *g, float *restrict x, int64_t len, uint64_t key, const uint64_t *idx) {
    float m[LN], u[QAT_GRADQ_GROUP * LN];
    int32_t bad[LN];
    for (int l = 0; l < LN; l++) m[l] = 0.0f, bad[l] = 0;
    for (int64_t i = 0; i < len; i++)
        for (int l = 0; l < LN; l++) {
            float a = fabsf(x[i * LN + l]);
            m[l] = max_c(a, m[l]);
            bad[l] |= !(a <= FLT_MAX);
        }
    if (g->sr)
        for (int64_t i = 0; i < len; i++)
            for (int l = 0; l < LN; l++) u[i * LN + l] = qat_mf_u24(key, idx[l] + (uint64_t)i);
    if (g->kind == QAT_GQ_GRID && g->grid == QAT_GQ_INT) {
        const double L = g->L;
        int32_t odd = 0; /* a lane whose group is NaN, inf or all zero */
        for (int l = 0; l < LN; l++) odd |= bad[l] | (m[l] == 0.0f);
        if (!odd) {
            /* no select after int_sr: GCC would sink its division into the selected arm,
             * where -ftrapping-math forbids computing it for all lanes, and not vectorise */
            for (int64_t i = 0; i < len; i++)
                for (int l = 0; l < LN; l++) x[i * LN + l] = int_sr(x[i * LN + l], m[l], L, u[i * LN + l]);
        } else {
            /* such lanes round 0 against 1 (so int_sr never converts a NaN or inf to
             * int32) and are then replaced: NaN, or the input kept as grid_sr keeps it */
            float a1[LN];
            for (int l = 0; l < LN; l++) a1[l] = bad[l] || m[l] == 0.0f ? 1.0f : m[l];
            for (int64_t i = 0; i < len; i++)
                for (int l = 0; l < LN; l++) {
                    float v = x[i * LN + l];
                    float q = int_sr(bad[l] ? 0.0f : v, a1[l], L, u[i * LN + l]);
                    q = m[l] == 0.0f ? v : q;
                    x[i * LN + l] = bad[l] ? NAN : q;
                }
        }
    } else if (g->kind == QAT_GQ_GRID && g->grid == QAT_GQ_SIGN) {
        for (int64_t i = 0; i < len; i++)
            for (int l = 0; l < LN; l++) {
                float v = x[i * LN + l];
                float q = sign_sr(v, m[l], u[i * LN + l]);
                q = m[l] == 0.0f ? v : q;
                x[i * LN + l] = bad[l] ? NAN : q;
            }
    } else if (g->kind == QAT_GQ_GRID) {
        float s[LN], inv[LN];
        for (int l = 0; l < LN; l++) s[l] = m[l] / 6.0f, inv[l] = 6.0f / m[l];
        for (int64_t i = 0; i < len; i++)
            for (int l = 0; l < LN; l++) {
                float v = x[i * LN + l];
                float mm = min_c(fabsf(v) * inv[l], 6.0f);
                float base = mm < 2.0f ? 0.0f : mm < 4.0f ? 2.0f : 4.0f;
                float st = mm < 2.0f ? 0.5f : mm < 4.0f ? 1.0f : 2.0f;
                float q = copysignf((base + st * sr_index((mm - base) / st, u[i * LN + l])) * s[l], v);
                q = m[l] == 0.0f ? v : q;
                x[i * LN + l] = bad[l] ? NAN : q;
            }
    } else {
        const qat_minifloat *f = qat_minifloat_get(g->blk.el);
        const int emin = f->emin, mbits = f->mbits, emax = f->emax;
        const float maxv = f->max, ps = g->prescale;
        float X[LN], inv[LN];
        for (int l = 0; l < LN; l++) {
            const int32_t e = mx_exp(m[l], emax);
            X[l] = pow2i(e), inv[l] = pow2i(-e);
        }
        if (g->sr) {
            for (int64_t i = 0; i < len; i++)
                for (int l = 0; l < LN; l++) {
                    float q = qat_mf_sr((x[i * LN + l] * ps) * inv[l], u[i * LN + l], emin, mbits, maxv) * X[l];
                    x[i * LN + l] = bad[l] ? NAN : q;
                }
        } else {
            for (int64_t i = 0; i < len; i++)
                for (int l = 0; l < LN; l++) {
                    float q = qat_mf_rne((x[i * LN + l] * ps) * inv[l], emin, mbits, maxv) * X[l];
                    x[i * LN + l] = bad[l] ? NAN : q;
                }
        }
    }
}

/* Rows r0..r0+n of columns c..c+16: load, signs, Hadamard, groups, store. */
static void lanes_cols(const qat_gradq *g, const qat_gradq_op *op, float *restrict x, int64_t r0, int64_t n, int64_t c,
                       const float *sg) {
    const int64_t R = op->rows, C = op->cols;
    for (int64_t i = 0; i < n; i++) {
        const int64_t at = (r0 + i) * C + c;
        /* the next 16 columns of this row, wanted after this strip is done: the rows
         * of a strip are C apart, where the hardware prefetchers see no stream (the
         * loads were a quarter of this pass); a hint only, so any address is fine */
        if (op->x) __builtin_prefetch(op->x + at + LN);
        else __builtin_prefetch(op->xb + at + LN);
        gq_v16 v = load16(op, at);
        memcpy(x + i * LN, &v, sizeof v);
    }
    if (g->hadamard) {
        for (int64_t i = 0; i < n; i++)
            for (int l = 0; l < LN; l++) x[i * LN + l] *= sg[r0 + i];
        const int B = g->hadamard;
        const float scale = (float)(1.0 / sqrt((double)B));
        for (int64_t b = 0; b < n; b += B) {
            for (int h = 1; h < B; h *= 2)
                for (int64_t i = b; i < b + B; i += 2 * h)
                    for (int64_t j = i; j < i + h; j++)
                        for (int l = 0; l < LN; l++) {
                            float a = x[j * LN + l], bb = x[(j + h) * LN + l];
                            x[j * LN + l] = a + bb;
                            x[(j + h) * LN + l] = a - bb;
                        }
            for (int64_t i = b * LN; i < (b + B) * LN; i++) x[i] *= scale;
        }
    }
    for (int64_t a = 0; a < n; a += g->group) {
        const int64_t len = n - a < g->group ? n - a : g->group;
        uint64_t idx[LN];
        for (int l = 0; l < LN; l++) idx[l] = (uint64_t)((c + l) * R + r0 + a);
        lanes_group(g, x + a * LN, len, op->key, idx);
    }
    for (int64_t i = 0; i < n; i++) {
        const int64_t at = (r0 + i) * C + c;
        if (op->y) memcpy(op->y + at, x + i * LN, LN * sizeof(float));
        else
            for (int l = 0; l < LN; l++) op->yb[at + l] = qat_bf16_round(x[i * LN + l]);
    }
}

static void run_cols(const qat_gradq *g, const qat_gradq_op *op, int64_t U, float s_t, const float *sg) {
    const int64_t R = op->rows, C = op->cols;
    const int64_t TW = TILE / U; /* columns per tile */
    const int64_t nseg = (R + U - 1) / U, ntile = (C + TW - 1) / TW;
    const int lanes = lanes_ok(g, U);
#pragma omp parallel for schedule(static)
    for (int64_t job = 0; job < nseg * ntile; job++) {
        float buf[TILE];
        const int64_t r0 = (job / ntile) * U, c0 = (job % ntile) * TW;
        const int64_t n = R - r0 < U ? R - r0 : U, w = C - c0 < TW ? C - c0 : TW;
        int64_t j0 = 0;
        if (lanes)
            for (; j0 + LN <= w; j0 += LN) lanes_cols(g, op, buf, r0, n, c0 + j0, sg);
        if (j0 == w) continue;
        const int64_t wr = w - j0; /* the columns left: through transposes */
        gather_cols(op, buf, r0, n, c0 + j0, wr);
        for (int64_t j = 0; j < wr; j++) {
            rotate(g, buf + j * n, n, sg ? sg + r0 : NULL);
            /* index with the inner dim fastest: column c's element r is c·R + r */
            quantize_segment(g, buf + j * n, n, op->key, (uint64_t)((c0 + j0 + j) * R + r0), s_t);
        }
        scatter_cols(op, buf, r0, n, c0 + j0, wr);
    }
}

void qat_gradq_run(const qat_gradq *g, const qat_gradq_op *op) {
    QAT_ASSERT(qat_gradq_on(g));
    QAT_ASSERT((op->x != NULL) != (op->xb != NULL) && (op->y != NULL) != (op->yb != NULL));
    int64_t U = g->hadamard > g->group ? g->hadamard : g->group;
    int64_t inner = op->along == QAT_GQ_ALONG_ROWS ? op->cols : op->rows;
    QAT_ASSERT(!g->hadamard || inner % g->hadamard == 0);
    float s_t = 1.0f;
    if (g->kind == QAT_GQ_BLOCK && g->blk.kind == QAT_BLK_NVFP4) {
        /* The forward's rule for a non-finite tensor: NaN or inf anywhere makes s_t NaN and
         * the whole operand NaN. fmaxf (and OpenMP's max) skip a NaN, which left a NaN
         * operand only its own block NaN while an inf made all of it NaN; so NaNs are
         * counted beside the max. */
        const int64_t n = op->rows * op->cols;
        float amax = 0.0f;
        int nan = 0;
#pragma omp parallel for schedule(static) reduction(max : amax) reduction(| : nan)
        for (int64_t i = 0; i < n; i++) {
            float a = fabsf(load(op, i));
            amax = a > amax ? a : amax;
            nan |= a != a;
        }
        if (nan) amax = NAN;
        if (g->hadamard) amax *= sqrtf((float)g->hadamard);
        s_t = qat_blk_tensor_scale(&g->blk, amax);
    }
    /* the product's signs along the inner dim, once for the whole operand */
    float *sg = NULL;
    if (g->hadamard) {
        sg = qat_xaligned(sizeof(float) * (size_t)inner);
        for (int64_t i = 0; i < inner; i++) sg[i] = sign_at(op->sign_key, (uint64_t)i);
    }
    if (op->along == QAT_GQ_ALONG_ROWS) run_rows(g, op, U, s_t, sg);
    else run_cols(g, op, U, s_t, sg);
    free(sg);
}

#if QAT_ISA_DISPATCH
#undef qat_gradq_run
void qat_gradq_run_avx512(const qat_gradq *g, const qat_gradq_op *op);

void qat_gradq_run(const qat_gradq *g, const qat_gradq_op *op) {
    if (qat_cpu_avx512()) qat_gradq_run_avx512(g, op);
    else qat_gradq_run_generic(g, op);
}
#endif

/*
 * tests/test_compress_gradq.c — the backward operands' quantizer (compress/gradq.h):
 * stochastic rounding is unbiased on every supported grid to Monte-Carlo precision
 * (and the same bound rejects round-to-nearest), rtn lands on the nearest level, an
 * exact zero stays 0 on the integer grids (so rtn of a sparse operand is unbiased),
 * the Hadamard rotation cancels in the product, results do not depend on the
 * thread count, the column path equals the row path on the transpose, bf16
 * output is the f32 output rounded, bad keys are refused, and the kernels give the
 * bits of a plain element-by-element reference on every format and odd shapes.
 */
#include <math.h>
#include <omp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "compress/gradq.h"
#include "compress/hadamard.h"
#include "core/bf16.h"
#include "core/error.h"
#include "core/rng.h"

static const char *GRIDS[] = {"int1", "int2", "int3", "int4", "int8", "ternary", "fp4"};
#define NGRIDS (int)(sizeof GRIDS / sizeof *GRIDS)
/* every format the backward accepts: the grids, then the block formats */
static const char *ALL[] = {"int1", "int2", "int3", "int4", "int8", "ternary", "fp4",
                            "mxfp4", "mxfp6", "mxfp8", "nvfp4"};
#define NALL (int)(sizeof ALL / sizeof *ALL)

static void init(qat_gradq *g, const char *fmt, const char *rounding, int hadamard) {
    qat_compress_grad c;
    memset(&c, 0, sizeof c);
    snprintf(c.format, sizeof c.format, "%s", fmt);
    snprintf(c.rounding, sizeof c.rounding, "%s", rounding);
    c.hadamard = hadamard;
    if (qat_gradq_init(g, &c) != QAT_OK) fail_msg("%s %s h%d refused: %s", fmt, rounding, hadamard, qat_errmsg());
}

static void run(const qat_gradq *g, const float *x, float *y, int64_t rows, int64_t cols, int along, uint64_t key,
                uint64_t sk) {
    qat_gradq_op op = {.x = x, .y = y, .rows = rows, .cols = cols, .along = along, .key = key, .sign_key = sk};
    qat_gradq_run(g, &op);
}

/* The integer grid's largest code L, levels k·a/L for |k| <= L (docs/formats.md "The
 * backward pass", Grids): 2^(B−1) − 1 for intB, B >= 2 (int2 = ternary = {−a, 0, a},
 * int8 = [−127, 127]); 0 for int1 (±a) and fp4. */
static int int_L(const char *fmt) {
    if (!strcmp(fmt, "ternary")) return 1;
    if (!strncmp(fmt, "int", 3) && fmt[3] >= '2' && fmt[3] <= '8' && !fmt[4]) return (1 << (fmt[3] - '0' - 1)) - 1;
    return 0;
}

/* The grid points of a group whose absmax is a: the two neighbours of x and the
 * grid step between them (for the SE of a stochastic rounding). */
static double neighbour_gap(const qat_gradq *g, double x, double a) {
    if (int_L(g->name)) return a / int_L(g->name);
    if (!strcmp(g->name, "int1")) return 2.0 * a;
    static const double mags[8] = {0, .5, 1, 1.5, 2, 3, 4, 6};
    double m = fabs(x) / (a / 6.0);
    for (int i = 0; i < 7; i++)
        if (m <= mags[i + 1]) return (mags[i + 1] - mags[i]) * a / 6.0;
    return 0;
}

/*
 * E[q(x)] = x, to Monte-Carlo precision, on every format. D = 20000 independent
 * draws of one row of 32 values (D rows of the same 32 values: every element has its
 * own counter, so the rows are independent draws). q(x) takes the two neighbours
 * lo < x < hi of x's grid with p = (x−lo)/gap, so sd(q) = gap·sqrt(p(1−p)) and the
 * mean of D draws has SE = sd/√D, which the test measures from the draws. An
 * unbiased rounding passes |mean − x| <= 5·SE except with probability < 6e-7 per
 * element (and the draws are fixed by the key, so the test is deterministic). A
 * rounding biased by δ·gap fails once δ > 5·sd/(gap·√D) <= 5·(1/2)/√20000 = 0.0177:
 * an sr off by half a grid step (floor(t + u + 1/2)) fails by far, and round-to-
 * nearest, whose sd is 0 (the same level every draw) and whose bias is up to gap/2,
 * fails wherever x is off a level; the second half of the loop runs rtn through the
 * same bound and asserts that it fails. The block formats' MX range matching returns
 * q(¾·x): the mean is compared after dividing by the prescale.
 */
static void test_sr_is_unbiased_on_every_format(void **state) {
    (void)state;
    enum { D = 20000, G = 32 };
    float *x = malloc(sizeof(float) * D * G), *y = malloc(sizeof(float) * D * G);
    float v[G];
    /* values across the whole range, the absmax 1.7 included so the scale is fixed */
    for (int i = 0; i < G; i++) v[i] = (float)(1.7 * sin(0.37 * i + 0.2));
    v[5] = 1.7f;
    for (int along = 0; along < 2; along++)
        for (int gi = 0; gi < NALL; gi++) {
            for (int rnd = 0; rnd < 2; rnd++) {
                qat_gradq g;
                init(&g, ALL[gi], rnd ? "rtn" : "sr", 0);
                /* along rows: D rows of the G values; along columns: the transpose */
                for (int r = 0; r < D; r++)
                    for (int i = 0; i < G; i++) x[along ? (int64_t)i * D + r : (int64_t)r * G + i] = v[i];
                run(&g, x, y, along ? G : D, along ? D : G, along ? QAT_GQ_ALONG_COLS : QAT_GQ_ALONG_ROWS,
                    qat_hash3(11, (uint64_t)gi, 3), 0);
                double worst = 0;
                for (int i = 0; i < G; i++) {
                    double s = 0, s2 = 0;
                    for (int r = 0; r < D; r++) {
                        double q = y[along ? (int64_t)i * D + r : (int64_t)r * G + i] / g.prescale;
                        s += q, s2 += q * q;
                    }
                    double mean = s / D, var = fmax(s2 / D - mean * mean, 0.0), se = sqrt(var / D);
                    double dev = fabs(mean - v[i]);
                    double z = dev <= 1e-6 * fabs(v[i]) ? 0.0 : se > 0 ? dev / se : INFINITY;
                    if (z > worst) worst = z;
                }
                printf("  %-8s %s along %s: worst |mean − x| = %.2f SE\n", ALL[gi], rnd ? "rtn" : "sr ",
                       along ? "cols" : "rows", worst);
                if (!rnd && worst > 5.0) fail_msg("%s sr is biased: %.2f SE", ALL[gi], worst);
                if (rnd && worst <= 5.0) fail_msg("%s rtn passes the unbiasedness bound (%.2f SE): the test "
                                                  "cannot tell a biased rounding", ALL[gi], worst);
            }
        }
    free(x);
    free(y);
}

/* rtn: every output is a grid level of its group (absmax scale) and no level is nearer. */
static void test_rtn_is_nearest_level(void **state) {
    (void)state;
    enum { R = 64, C = 96 };
    float x[R * C], y[R * C];
    for (int i = 0; i < R * C; i++) x[i] = (float)qat_normal_at(3, (uint64_t)i);
    for (int gi = 0; gi < NGRIDS; gi++) {
        qat_gradq g;
        init(&g, GRIDS[gi], "rtn", 0);
        run(&g, x, y, R, C, QAT_GQ_ALONG_ROWS, 1, 0);
        for (int r = 0; r < R; r++)
            for (int g0 = 0; g0 < C; g0 += QAT_GRADQ_GROUP) {
                float a = 0;
                for (int i = 0; i < QAT_GRADQ_GROUP; i++) a = fmaxf(a, fabsf(x[r * C + g0 + i]));
                for (int i = 0; i < QAT_GRADQ_GROUP; i++) {
                    double xv = x[r * C + g0 + i], q = y[r * C + g0 + i];
                    double gap = neighbour_gap(&g, xv, a);
                    if (fabs(q - xv) > 0.5 * gap * (1 + 1e-5) + 1e-7)
                        fail_msg("%s: x %.6f → %.6f, more than half the gap %.6f away", GRIDS[gi], xv, q, gap);
                }
            }
    }
}

/*
 * The integer grids of the backward have a zero level (docs/formats.md "The backward
 * pass", Grids: levels k·a/L, |k| <= L = 2^(B−1) − 1, as Xi et al. 2023's INT4 [−7, 7]
 * and symmetric INT8 GEMMs). The forward's 2^b-level QuEST grid has none, and on it
 * rtn sent every exact zero to −Δ/2: the Ŵ of a spNN, N:M or ternary forward is full of
 * zeros, so the dX product carried a fixed error of one sign. An exact zero must stay
 * exactly 0 under rtn and under sr in every draw (so E[q(0)] = 0), on int2..int8 and
 * ternary, along rows and along columns (the two kernels), whatever else is in its
 * group. int1 has one bit and no zero level: rtn gives the tie's even code, −a; sr
 * gives ±a with probability ½ each (E[q] = 0 to Monte-Carlo precision).
 */
static void test_zero_stays_zero_on_int_grids(void **state) {
    (void)state;
    enum { R = 64, C = 256 };
    const char *fmts[] = {"int2", "int3", "int4", "int5", "int6", "int7", "int8", "ternary", "int1"};
    float *x = malloc(sizeof(float) * R * C), *y = malloc(sizeof(float) * R * C);
    for (int i = 0; i < R * C; i++) x[i] = i % 3 == 1 ? 0.0f : (i % 3 == 2 ? -0.0f : (float)qat_normal_at(12, (uint64_t)i));
    for (size_t fi = 0; fi < sizeof fmts / sizeof *fmts; fi++)
        for (int sr = 0; sr < 2; sr++)
            for (int along = 0; along < 2; along++) {
                qat_gradq g;
                init(&g, fmts[fi], sr ? "sr" : "rtn", 0);
                run(&g, x, y, R, C, along, 40 + (uint64_t)sr, 0);
                const int one_bit = !strcmp(fmts[fi], "int1");
                double s = 0, s2 = 0;
                long nz = 0;
                for (int i = 0; i < R * C; i++) {
                    if (x[i] != 0.0f) continue;
                    nz++, s += y[i], s2 += (double)y[i] * y[i];
                    if (!one_bit && y[i] != 0.0f)
                        fail_msg("%s %s along %s: x[%d] = %g became %g", fmts[fi], sr ? "sr" : "rtn",
                                 along ? "cols" : "rows", i, (double)x[i], (double)y[i]);
                    if (one_bit && !sr && !(y[i] < 0.0f))
                        fail_msg("int1 rtn: a zero became %g, not the tie's −a", (double)y[i]);
                }
                if (one_bit && sr) {
                    double m = s / nz, se = sqrt(fmax(s2 / nz - m * m, 0.0) / nz);
                    printf("  int1 sr along %s: mean of q(0) %.4f (s.e. %.4f)\n", along ? "cols" : "rows", m, se);
                    assert_true(se > 0 && fabs(m) <= 5.0 * se);
                }
            }
    free(x);
    free(y);
}

/* rtn on the integer grids: t = x·L/a to the nearest integer, ties to the even k. A
 * group whose absmax is 7 (int4: L = 7, levels = the integers −7..7) and one whose
 * absmax is 1 (int2: L = 1, levels −1, 0, 1); the other 28 values are 0. */
static void test_int_rtn_ties_to_even(void **state) {
    (void)state;
    struct { const char *fmt; float in[4], want[4]; } c[] = {
        {"int4", {7.0f, 1.5f, 2.5f, -0.5f}, {7.0f, 2.0f, 2.0f, 0.0f}},
        {"int4", {-7.0f, 3.5f, -4.5f, 6.5f}, {-7.0f, 4.0f, -4.0f, 6.0f}},
        {"int2", {1.0f, 0.5f, -0.5f, 0.75f}, {1.0f, 0.0f, 0.0f, 1.0f}},
        {"int8", {127.0f, 0.5f, 1.5f, -126.5f}, {127.0f, 0.0f, 2.0f, -126.0f}},
    };
    for (size_t k = 0; k < sizeof c / sizeof *c; k++) {
        qat_gradq g;
        init(&g, c[k].fmt, "rtn", 0);
        float x[QAT_GRADQ_GROUP] = {0}, y[QAT_GRADQ_GROUP];
        memcpy(x, c[k].in, sizeof c[k].in);
        run(&g, x, y, 1, QAT_GRADQ_GROUP, QAT_GQ_ALONG_ROWS, 1, 0);
        for (int i = 0; i < 4; i++)
            if (y[i] != c[k].want[i] || (c[k].want[i] == 0.0f && signbit(y[i]))) /* a zero k is +0 */
                fail_msg("%s: %g → %g, want %g", c[k].fmt, (double)x[i], (double)y[i], (double)c[k].want[i]);
        for (int i = 4; i < QAT_GRADQ_GROUP; i++) assert_true(y[i] == 0.0f && !signbit(y[i]));
    }
}

/*
 * rtn of a sparse operand is not biased. A 2:4 operand (in every 4 consecutive inner-dim
 * values the 2 largest kept) of Gaussians, as the Ŵ of a 2:4 forward: on a grid
 * symmetric about 0 with a zero level the rounding errors average to 0 (|mean| within
 * 5 s.e. of the mean of R·C errors). The old grid without zero gave every kept zero
 * the error −Δ/2, a mean of about −Δ/4 over the operand, hundreds of s.e. away.
 */
static void test_rtn_of_sparse_operand_is_unbiased(void **state) {
    (void)state;
    enum { R = 128, C = 256 };
    float *x = malloc(sizeof(float) * R * C), *y = malloc(sizeof(float) * R * C);
    for (int i = 0; i < R * C; i++) x[i] = (float)qat_normal_at(13, (uint64_t)i);
    for (int along = 0; along < 2; along++) {
        /* 2:4 along the inner dim: rows for along rows, columns for along columns */
        float *w = malloc(sizeof(float) * R * C);
        memcpy(w, x, sizeof(float) * R * C);
        for (int o = 0; o < (along ? C : R); o++)
            for (int j0 = 0; j0 < (along ? R : C); j0 += 4) {
                int64_t at[4];
                for (int j = 0; j < 4; j++) at[j] = along ? (int64_t)(j0 + j) * C + o : (int64_t)o * C + j0 + j;
                for (int drop = 0; drop < 2; drop++) { /* zero the two smallest */
                    int m = -1;
                    for (int j = 0; j < 4; j++)
                        if (w[at[j]] != 0.0f && (m < 0 || fabsf(w[at[j]]) < fabsf(w[at[m]]))) m = j;
                    w[at[m]] = 0.0f;
                }
            }
        for (const char **f = (const char *[]){"int2", "int3", "int4", "int8", NULL}; *f; f++) {
            qat_gradq g;
            init(&g, *f, "rtn", 0);
            run(&g, w, y, R, C, along, 1, 0);
            double s = 0, s2 = 0, sz = 0;
            for (int i = 0; i < R * C; i++) {
                double e = (double)y[i] - w[i];
                s += e, s2 += e * e;
                if (w[i] == 0.0f) sz += e;
            }
            const double n = (double)R * C, m = s / n, se = sqrt(fmax(s2 / n - m * m, 0.0) / n);
            printf("  2:4 %s rtn along %s: mean error %.2e (s.e. %.2e), summed over the zeros %.3g\n", *f,
                   along ? "cols" : "rows", m, se, sz);
            if (sz != 0.0 || fabs(m) > 5.0 * se)
                fail_msg("%s rtn of a 2:4 operand is biased: mean error %.3g (%.1f s.e.), zeros' error sum %.3g", *f,
                         m, fabs(m) / se, sz);
        }
        free(w);
    }
    free(x);
    free(y);
}

/*
 * The reference: the element-by-element algorithm of docs/formats.md "The backward
 * pass" as first written (one hash per uniform and per sign, libm's floor, rint and
 * fminf/fmaxf, one scalar load and store per element). The kernels of compress/gradq.c
 * (sign tables, vectorised loops, tiles) must give its bits exactly: runs under way
 * and their `--resume` depend on it.
 *
 * The integer grids: t = x·L/a in double (x·L exact, one division), k = rint(t)
 * (nearest, ties to even k) or floor(|t|) + [u < |t| − floor(|t|)] with t's sign, the
 * level (k·a)/L in double rounded to float, a zero k giving +0. int1: ±a, rtn
 * x > 0 ? a : −a (zero is the tie, to the even code m = 0: −a), sr a with
 * probability (x + a)/(2a).
 */
static float ref_unif(uint64_t key, uint64_t idx) {
    return (float)(qat_hash64(key + idx * 0x9E3779B97F4A7C15ull) >> 40) * 0x1p-24f;
}

static float ref_sr_index(float t, float u) {
    float fl = floorf(t);
    return fl + (u < t - fl ? 1.0f : 0.0f);
}

static void ref_grid_sr(const qat_gradq *g, float *v, int64_t n, uint64_t key, uint64_t idx0) {
    float a = 0.0f;
    for (int64_t i = 0; i < n; i++) a = fmaxf(a, fabsf(v[i]));
    if (a == 0.0f) return;
    const int L = int_L(g->name);
    if (L) {
        for (int64_t i = 0; i < n; i++) {
            double t = (double)v[i] * L / a, at = fabs(t), fl = floor(at);
            double k = fl + ((double)ref_unif(key, idx0 + (uint64_t)i) < at - fl ? 1.0 : 0.0);
            if (t < 0) k = 0.0 - k;
            v[i] = (float)(k * a / L);
        }
    } else if (!strcmp(g->name, "int1")) {
        for (int64_t i = 0; i < n; i++)
            v[i] = (double)ref_unif(key, idx0 + (uint64_t)i) < ((double)v[i] + a) / (2.0 * a) ? a : -a;
    } else {
        const float s = a / 6.0f, inv = 6.0f / a;
        for (int64_t i = 0; i < n; i++) {
            float m = fminf(fabsf(v[i]) * inv, 6.0f);
            float base = m < 2.0f ? 0.0f : m < 4.0f ? 2.0f : 4.0f;
            float st = m < 2.0f ? 0.5f : m < 4.0f ? 1.0f : 2.0f;
            float q = base + st * ref_sr_index((m - base) / st, ref_unif(key, idx0 + (uint64_t)i));
            v[i] = copysignf(q * s, v[i]);
        }
    }
}

static void ref_grid_rtn(const qat_gradq *g, float *v, int64_t n) {
    float a = 0.0f;
    for (int64_t i = 0; i < n; i++) a = fmaxf(a, fabsf(v[i]));
    if (a == 0.0f) return;
    const int L = int_L(g->name);
    if (L) {
        for (int64_t i = 0; i < n; i++) {
            double k = rint((double)v[i] * L / a) + 0.0; /* + 0.0: a zero k is +0 */
            v[i] = (float)(k * a / L);
        }
    } else if (!strcmp(g->name, "int1")) {
        for (int64_t i = 0; i < n; i++) v[i] = v[i] > 0.0f ? a : -a;
    } else { /* fp4: the forward's projection with an absmax scale */
        uint8_t mask[QAT_GRADQ_GROUP];
        qat_proj_row(&g->P, v, n, NULL, mask);
    }
}

static void ref_segment(const qat_gradq *g, float *v, int64_t n, uint64_t key, uint64_t idx0, float s_t) {
    for (int64_t a = 0; a < n; a += g->group) {
        int64_t len = n - a < g->group ? n - a : g->group;
        if (g->kind == QAT_GQ_BLOCK) {
            qat_blk_io io = {.tensor_scale = s_t, .key = key, .index0 = idx0 + (uint64_t)a};
            float X;
            if (g->blk.kind == QAT_BLK_MX) {
                float amax = qat_blk_absmax(v + a, len);
                int e = qat_mx_scale_exp(amax, qat_minifloat_get(g->blk.el));
                X = e == INT32_MIN || isnan(amax) ? NAN : ldexpf(1.0f, e);
                io.scales = &X;
                for (int64_t i = 0; i < len; i++) v[a + i] *= g->prescale;
            }
            qat_blk_row(&g->blk, v + a, len, &io);
            continue;
        }
        int bad = 0;
        for (int64_t i = 0; i < len; i++) bad |= !isfinite(v[a + i]);
        if (bad) {
            for (int64_t i = 0; i < len; i++) v[a + i] = NAN;
        } else if (g->sr) {
            ref_grid_sr(g, v + a, len, key, idx0 + (uint64_t)a);
        } else {
            ref_grid_rtn(g, v + a, len);
        }
    }
}

static float ref_load(const qat_gradq_op *op, int64_t i) {
    if (op->x) return op->x[i];
    uint32_t u = (uint32_t)op->xb[i] << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Quantize the inner-dim vector `vec` (a row or a column) segment by segment. */
static void ref_run(const qat_gradq *g, const qat_gradq_op *op) {
    const int64_t R = op->rows, C = op->cols, cols = op->along == QAT_GQ_ALONG_COLS;
    const int64_t inner = cols ? R : C, outer = cols ? C : R;
    const int64_t U = g->hadamard > g->group ? g->hadamard : g->group;
    float s_t = 1.0f;
    if (g->kind == QAT_GQ_BLOCK && g->blk.kind == QAT_BLK_NVFP4) {
        float amax = 0.0f;
        for (int64_t i = 0; i < R * C; i++) amax = fmaxf(amax, fabsf(ref_load(op, i)));
        if (g->hadamard) amax *= sqrtf((float)g->hadamard);
        s_t = qat_blk_tensor_scale(&g->blk, amax);
    }
    float *v = malloc(sizeof(float) * (size_t)U);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t s0 = 0; s0 < inner; s0 += U) {
            int64_t n = inner - s0 < U ? inner - s0 : U;
            for (int64_t i = 0; i < n; i++) v[i] = ref_load(op, cols ? (s0 + i) * C + o : o * C + s0 + i);
            if (g->hadamard) {
                for (int64_t i = 0; i < n; i++)
                    v[i] *= (qat_hash64(op->sign_key ^ ((uint64_t)(s0 + i) * 0xD1B54A32D192ED03ull)) >> 63) ? -1.0f
                                                                                                               : 1.0f;
                qat_hadamard_row(v, n, g->hadamard);
            }
            ref_segment(g, v, n, op->key, (uint64_t)(o * inner + s0), s_t);
            for (int64_t i = 0; i < n; i++) {
                int64_t at = cols ? (s0 + i) * C + o : o * C + s0 + i;
                if (op->y) op->y[at] = v[i];
                else if (cols) op->yb[at] = qat_bf16_round(v[i]);
            }
            /* the row path rounds a whole segment to bf16 at once (core/bf16.h) */
            if (!op->y && !cols) qat_bf16_row(v, op->yb + o * C + s0, n);
        }
    free(v);
}

/* Test values: Gaussians at a scale that changes from group to group (down to
 * subnormal, where the grid's 1/a overflows), all-zero groups, exact ±absmax ties,
 * values on a level and, when `nonfinite`, a NaN and an inf. */
static void ref_values(float *x, int64_t n, uint64_t seed, int nonfinite) {
    for (int64_t i = 0; i < n; i++) {
        int64_t grp = i / 7;
        float scale = grp % 11 == 3 ? 1e-40f : grp % 11 == 5 ? 0.0f : ldexpf(1.0f, (int)(grp % 9) - 4);
        x[i] = scale * (float)qat_normal_at(seed, (uint64_t)i);
        if (i % 97 == 13) x[i] = -x[i - 1];
        if (i % 89 == 7) x[i] = 0.5f;
    }
    if (nonfinite && n > 300) x[123] = NAN, x[301] = INFINITY;
}

/* Every format and rounding, both directions, f32 and bf16 in and out, Hadamard off
 * and on (blocks below and above the 16-lane transform), odd shapes (partial
 * segments, partial tiles, one row, more tiles than threads) at 1 and 2 threads:
 * the kernels give the reference's bits. */
static void test_kernels_equal_reference(void **state) {
    (void)state;
    const int64_t shapes[][2] = {{1, 96}, {3, 32}, {37, 64}, {64, 37}, {96, 300}, {300, 96}, {160, 272}, {33, 1}};
    const int hads[] = {0, 8, 32, 64};
    const int nshape = (int)(sizeof shapes / sizeof *shapes), nhad = (int)(sizeof hads / sizeof *hads);
    long checked = 0;
    for (int fi = 0; fi < NALL; fi++)
        for (int sr = 0; sr < 2; sr++)
            for (int hi = 0; hi < nhad; hi++)
                for (int si = 0; si < nshape; si++)
                    for (int along = 0; along < 2; along++) {
                        const int64_t R = shapes[si][0], C = shapes[si][1], inner = along ? R : C;
                        if (hads[hi] && inner % hads[hi]) continue;
                        qat_gradq g;
                        init(&g, ALL[fi], sr ? "sr" : "rtn", hads[hi]);
                        const int64_t n = R * C;
                        float *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n);
                        float *yr = malloc(sizeof(float) * n);
                        uint16_t *xb = malloc(sizeof(uint16_t) * n), *yb = malloc(sizeof(uint16_t) * n);
                        uint16_t *ybr = malloc(sizeof(uint16_t) * n);
                        /* NVFP4's tensor scale makes one inf poison the whole operand: finite there */
                        ref_values(x, n, 100 + (uint64_t)si, strcmp(ALL[fi], "nvfp4") != 0);
                        /* an all-zero column, −0 included: along columns an all-zero lane
                         * beside lanes with values (the 16-lane kernel keeps its input) */
                        for (int64_t r = 0; C > 5 && r < R; r++) x[r * C + 5] = r % 2 ? -0.0f : 0.0f;
                        for (int64_t i = 0; i < n; i++) xb[i] = qat_bf16_round(x[i]);
                        for (int bf = 0; bf < 2; bf++)
                            for (int th = 1; th <= 2; th++) {
                                qat_gradq_op op = {.rows = R, .cols = C, .along = along, .key = 0xABCDull + (uint64_t)si,
                                                   .sign_key = 0x5151ull * (uint64_t)(hi + 1)};
                                if (bf) op.xb = xb, op.yb = ybr;
                                else op.x = x, op.y = yr;
                                ref_run(&g, &op);
                                if (bf) op.yb = yb;
                                else op.y = y;
                                omp_set_num_threads(th);
                                qat_gradq_run(&g, &op);
                                const void *got = bf ? (const void *)yb : (const void *)y;
                                const void *want = bf ? (const void *)ybr : (const void *)yr;
                                size_t es = bf ? sizeof(uint16_t) : sizeof(float);
                                for (int64_t i = 0; i < n; i++)
                                    if (memcmp((const char *)got + es * i, (const char *)want + es * i, es))
                                        fail_msg("%s %s h%d %lldx%lld along %s %s %d threads: element %lld: %.9g, "
                                                 "reference %.9g", ALL[fi], sr ? "sr" : "rtn", hads[hi], (long long)R,
                                                 (long long)C, along ? "cols" : "rows", bf ? "bf16" : "f32", th,
                                                 (long long)i, bf ? 0.0 : (double)y[i], bf ? 0.0 : (double)yr[i]);
                                checked++;
                            }
                        free(x); free(y); free(yr); free(xb); free(yb); free(ybr);
                    }
    printf("  %ld runs equal the reference bit for bit\n", checked);
    assert_true(checked > 1000);
}

/* The column path is the row path on the transpose (the same element indices: the
 * inner dim fastest), and neither depends on the thread count. */
static void test_cols_equal_rows_of_transpose_and_threads(void **state) {
    (void)state;
    enum { R = 64, C = 80 }; /* inner dim R for the column path */
    float *x = malloc(sizeof(float) * R * C), *xt = malloc(sizeof(float) * R * C);
    float *y1 = malloc(sizeof(float) * R * C), *y2 = malloc(sizeof(float) * R * C), *yt = malloc(sizeof(float) * R * C);
    for (int i = 0; i < R * C; i++) x[i] = (float)qat_normal_at(9, (uint64_t)i);
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) xt[c * R + r] = x[r * C + c];
    const char *fmts[] = {"int4", "fp4", "mxfp4", "nvfp4"};
    for (int fi = 0; fi < 4; fi++)
        for (int h = 0; h <= 32; h += 32) {
            qat_gradq g;
            init(&g, fmts[fi], "sr", h);
            omp_set_num_threads(1);
            run(&g, x, y1, R, C, QAT_GQ_ALONG_COLS, 77, 78);
            omp_set_num_threads(2);
            run(&g, x, y2, R, C, QAT_GQ_ALONG_COLS, 77, 78);
            assert_memory_equal(y1, y2, sizeof(float) * R * C);
            run(&g, xt, yt, C, R, QAT_GQ_ALONG_ROWS, 77, 78);
            for (int r = 0; r < R; r++)
                for (int c = 0; c < C; c++)
                    if (memcmp(&y1[r * C + c], &yt[c * R + r], sizeof(float)))
                        fail_msg("%s h%d: column path (%d,%d) %.7g vs row path %.7g", fmts[fi], h, r, c,
                                 y1[r * C + c], yt[c * R + r]);
        }
    free(x); free(xt); free(y1); free(y2); free(yt);
}

/* With bf16 in and out: the f32 result of the bf16 input, rounded. */
static void test_bf16_output_is_rounded_f32(void **state) {
    (void)state;
    enum { R = 32, C = 64 };
    float x[R * C], y[R * C];
    uint16_t xb[R * C], yb[R * C];
    for (int i = 0; i < R * C; i++) {
        xb[i] = qat_bf16_round((float)qat_normal_at(4, (uint64_t)i));
        uint32_t u = (uint32_t)xb[i] << 16;
        memcpy(&x[i], &u, 4);
    }
    qat_gradq g;
    init(&g, "int8", "sr", 16);
    for (int along = 0; along < 2; along++) {
        run(&g, x, y, R, C, along, 5, 6);
        qat_gradq_op op = {.xb = xb, .yb = yb, .rows = R, .cols = C, .along = along, .key = 5, .sign_key = 6};
        qat_gradq_run(&g, &op);
        for (int i = 0; i < R * C; i++) assert_int_equal(yb[i], qat_bf16_round(y[i]));
    }
}

/* Both operands of a product rotated with the same signed Hadamard along the inner
 * dim: the rotation cancels, so with int8 the product stays close to the exact one
 * (and a mismatched sign key, which does not cancel, is far off). */
static void test_rotation_cancels_in_the_product(void **state) {
    (void)state;
    enum { M = 16, K = 128, N = 8 }; /* A (M,K) · B (K,N), inner dim K */
    float A[M * K], B[K * N], Aq[M * K], Bq[K * N], Bw[K * N];
    for (int i = 0; i < M * K; i++) A[i] = (float)qat_normal_at(21, (uint64_t)i);
    for (int i = 0; i < K * N; i++) B[i] = (float)qat_normal_at(22, (uint64_t)i);
    qat_gradq g;
    init(&g, "int8", "rtn", 64);
    run(&g, A, Aq, M, K, QAT_GQ_ALONG_ROWS, 1, 99);
    run(&g, B, Bq, K, N, QAT_GQ_ALONG_COLS, 2, 99);
    run(&g, B, Bw, K, N, QAT_GQ_ALONG_COLS, 2, 98);
    double e = 0, ew = 0, p = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double t = 0, q = 0, w = 0;
            for (int k = 0; k < K; k++) {
                t += (double)A[i * K + k] * B[k * N + j];
                q += (double)Aq[i * K + k] * Bq[k * N + j];
                w += (double)Aq[i * K + k] * Bw[k * N + j];
            }
            e += (q - t) * (q - t), ew += (w - t) * (w - t), p += t * t;
        }
    printf("  relative error of the product: %.2e (same signs), %.2e (other signs)\n", e / p, ew / p);
    /* int8 absmax per 32 on Gaussians: relative MSE ≈ (2·2.1/255)²/12 ≈ 2.3e-5 per operand */
    assert_true(e / p < 1e-3);
    assert_true(ew / p > 0.5);
}

/* A NaN or inf never becomes a level: its whole scale group turns NaN (and only it),
 * except in NVFP4, whose tensor scale comes from the whole operand: there a NaN, like an
 * inf, makes every element NaN, as the forward does (the backward's fmaxf skipped a NaN,
 * so a NaN left the other blocks finite while an inf did not). */
static void test_non_finite_makes_its_group_nan(void **state) {
    (void)state;
    enum { C = 64 };
    for (int fi = 0; fi < NALL; fi++)
        for (int sr = 0; sr < 2; sr++) {
            qat_gradq g;
            init(&g, ALL[fi], sr ? "sr" : "rtn", 0);
            float x[C], y[C];
            for (int bad = 0; bad < 2; bad++) {
                for (int i = 0; i < C; i++) x[i] = sinf((float)i + 0.5f);
                x[3] = bad ? INFINITY : NAN;
                run(&g, x, y, 1, C, QAT_GQ_ALONG_ROWS, 1, 0);
                if (!isnan(y[3])) fail_msg("%s %s: %g became %g", ALL[fi], sr ? "sr" : "rtn", x[3], y[3]);
                if (strcmp(ALL[fi], "nvfp4")) {
                    for (int i = 32; i < C; i++)
                        if (!isfinite(y[i])) fail_msg("%s: element %d of a clean group is %g", ALL[fi], i, y[i]);
                } else {
                    for (int i = 0; i < C; i++)
                        if (!isnan(y[i])) fail_msg("nvfp4 %s: element %d is %g, not NaN", bad ? "inf" : "NaN", i, y[i]);
                }
            }
        }
}

/* NVFP4 operands whose absmax is near the bottom of fp32's normal range (gradients of
 * a vanishing loss term): the tensor scale is subnormal and the element scales of the
 * smaller blocks fell below 2^−128, where blockfmt's 1/sc overflowed and turned exact
 * zeros into NaN. Every output must be finite, a zero must stay 0, and the rest must
 * stay within one element step (1/3 of the block absmax at most) of the input. */
static void test_nvfp4_tiny_operand(void **state) {
    (void)state;
    enum { R = 32, C = 64 };
    const float amaxes[] = {1e-35f, 1.2e-38f, 1e-38f, 5e-39f};
    float x[R * C], y[R * C];
    for (int ai = 0; ai < 4; ai++)
        for (int sr = 0; sr < 2; sr++)
            for (int along = 0; along < 2; along++) {
                qat_gradq g;
                init(&g, "nvfp4", sr ? "sr" : "rtn", 0);
                for (int i = 0; i < R * C; i++)
                    x[i] = i % 5 == 2 ? 0.0f : amaxes[ai] * (i % 3 ? 0.01f : 0.2f) * (float)qat_normal_at(8, (uint64_t)i);
                x[7] = amaxes[ai];
                run(&g, x, y, R, C, along, 3, 0);
                for (int i = 0; i < R * C; i++)
                    if (!isfinite(y[i]) || (x[i] == 0.0f && y[i] != 0.0f) || fabsf(y[i] - x[i]) > 0.5f * amaxes[ai])
                        fail_msg("amax %g %s along %s: x[%d] = %g became %g", (double)amaxes[ai], sr ? "sr" : "rtn",
                                 along ? "cols" : "rows", i, (double)x[i], (double)y[i]);
            }
}

/* The NVFP4 backward rounds as the forward's definition does (it goes through
 * qat_blk_row): exact ties to even, the exact element scale s_b·s_t, the block scale
 * E4M3 of the exact amax/(6·s_t) and one rounding of the decode. The forward's repros,
 * along rows and along columns (a 16×32 operand whose rows 0 and 1 hold them as
 * columns), must give the definition's bits. */
static void test_nvfp4_backward_is_exact(void **state) {
    (void)state;
    static const float in[2][32] = {{2688.0f, [16] = 11.25f, 2.34375f, 3.28125f, -2.34375f},
                                    {28.0f, [16] = 14.875f, 8.75f, 1.875f, -8.75f}};
    static const float want[2][4] = {{11.25f, 1.875f, 3.75f, -1.875f}, {15.0f, 7.5f, 1.25f, -7.5f}};
    qat_gradq g;
    init(&g, "nvfp4", "rtn", 0);
    for (int c = 0; c < 2; c++) {
        float y[32], xt[32 * 16] = {0}, yt[32 * 16];
        run(&g, in[c], y, 1, 32, QAT_GQ_ALONG_ROWS, 1, 0);
        for (int i = 0; i < 32; i++) xt[i * 16] = in[c][i]; /* column 0 of a 32×16 operand */
        run(&g, xt, yt, 32, 16, QAT_GQ_ALONG_COLS, 1, 0);
        for (int i = 0; i < 4; i++)
            if (y[16 + i] != want[c][i] || yt[(16 + i) * 16] != want[c][i])
                fail_msg("case %d: %a became %a (rows), %a (cols), want %a", c, (double)in[c][16 + i],
                         (double)y[16 + i], (double)yt[(16 + i) * 16], (double)want[c][i]);
    }
}

static void test_bad_keys_are_refused(void **state) {
    (void)state;
    qat_compress_grad c = {.format = "sp50", .rounding = "sr", .hadamard = 0};
    qat_gradq g;
    assert_int_equal(qat_gradq_init(&g, &c), QAT_EINPUT);
    assert_non_null(strstr(qat_errmsg(), "compress.gradients.format"));
    snprintf(c.format, sizeof c.format, "int4");
    c.hadamard = 2048;
    assert_int_equal(qat_gradq_init(&g, &c), QAT_EINPUT);
    assert_non_null(strstr(qat_errmsg(), "compress.gradients.hadamard"));
    c.hadamard = 64;
    assert_int_equal(qat_gradq_init(&g, &c), QAT_OK);
    assert_int_equal(qat_gradq_check_inner(&g, 96, "sequence length"), QAT_EINPUT);
    assert_non_null(strstr(qat_errmsg(), "sequence length"));
    assert_int_equal(qat_gradq_check_inner(&g, 128, "sequence length"), QAT_OK);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sr_is_unbiased_on_every_format),
        cmocka_unit_test(test_rtn_is_nearest_level),
        cmocka_unit_test(test_zero_stays_zero_on_int_grids),
        cmocka_unit_test(test_int_rtn_ties_to_even),
        cmocka_unit_test(test_rtn_of_sparse_operand_is_unbiased),
        cmocka_unit_test(test_cols_equal_rows_of_transpose_and_threads),
        cmocka_unit_test(test_bf16_output_is_rounded_f32),
        cmocka_unit_test(test_rotation_cancels_in_the_product),
        cmocka_unit_test(test_non_finite_makes_its_group_nan),
        cmocka_unit_test(test_bad_keys_are_refused),
        cmocka_unit_test(test_nvfp4_tiny_operand), cmocka_unit_test(test_nvfp4_backward_is_exact),
        cmocka_unit_test(test_kernels_equal_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

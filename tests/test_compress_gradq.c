/*
 * tests/test_compress_gradq.c — the backward operands' quantizer (compress/gradq.h):
 * stochastic rounding is unbiased on every supported grid to Monte-Carlo precision
 * (and the same bound rejects round-to-nearest), rtn lands on the nearest level,
 * the Hadamard rotation cancels in the product, results do not depend on the
 * thread count, the column path equals the row path on the transpose, bf16
 * output is the f32 output rounded, and bad keys are refused.
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

/* The grid points of a group whose absmax is a: the two neighbours of x and the
 * grid step between them (for the SE of a stochastic rounding). */
static double neighbour_gap(const qat_gradq *g, double x, double a) {
    if (g->levels) return 2.0 * a / (g->levels - 1);
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

/* A NaN or inf never becomes a level: its whole scale group turns NaN (and only it). */
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
                /* NVFP4's tensor scale is the operand's: an inf makes the whole operand NaN */
                if (!(bad && !strcmp(ALL[fi], "nvfp4")))
                    for (int i = 32; i < C; i++)
                        if (!isfinite(y[i])) fail_msg("%s: element %d of a clean group is %g", ALL[fi], i, y[i]);
            }
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
        cmocka_unit_test(test_cols_equal_rows_of_transpose_and_threads),
        cmocka_unit_test(test_bf16_output_is_rounded_f32),
        cmocka_unit_test(test_rotation_cancels_in_the_product),
        cmocka_unit_test(test_non_finite_makes_its_group_nan),
        cmocka_unit_test(test_bad_keys_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

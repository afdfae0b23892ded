/*
 * tests/test_compress_aq.c — the learned-codebook format aqMxBgG (compress/aq.h,
 * compress/estimator_aq.c, docs/formats.md "aqMxBgG").
 *
 *  - names, bits and the refusals (activations, other estimators, sparse+aq);
 *  - the k-means codebook against the fixed Gaussian codebook of vqDxB at the
 *    same bits and codebook size: on Gaussian data both are Lloyd fits of the
 *    same source and agree within a few percent; on structured data (correlated
 *    coordinates, as neighbouring weights are) the learned one is far below;
 *  - the codebook and scale gradients against central differences of
 *    L = Σ Ŵ·R (with the codes fixed, as pv's forward keeps them; L is bilinear
 *    in codewords and scales, so the differences are exact up to rounding), and
 *    the straight-through gradient of the latent weights;
 *  - ste re-chooses the codes from the latent weights every forward, and the
 *    codebooks follow moved weights under gradient steps;
 *  - pv's forward keeps the codes, its V step re-encodes at most the top τ;
 *  - the checkpoint state (codebooks, scales, codes, pv buffers) restores a
 *    quantizer bit for bit, and is all zeros before the first forward (the
 *    --init loader checks it for non-finite values before anything runs).
 * Everything is seeded: the assertions are deterministic, not statistical.
 */
#include <malloc.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "compress/aq.h"
#include "compress/vq_search.h"
#include "compress/capacity.h"
#include "compress/format.h"
#include "compress/quantizer.h"
#include "core/error.h"
#include "core/rng.h"

static qat_compress_side make_side(const char *fmt, const char *est) {
    qat_compress_side s;
    memset(&s, 0, sizeof s);
    snprintf(s.format, sizeof s.format, "%s", fmt);
    snprintf(s.estimator, sizeof s.estimator, "%s", est);
    snprintf(s.scale, sizeof s.scale, "rms");
    s.hadamard = 0; /* what auto gives aq in a model (format_table.c: rotates = 0) */
    s.pv_tau = 0.25;
    return s;
}

static qat_quantizer *make(const char *fmt, const char *est, int64_t rows, int64_t cols) {
    qat_compress_side s = make_side(fmt, est);
    qat_quantizer *q = NULL;
    if (qat_quantizer_create(&s, 1, rows, cols, 1, 99, &q)) fail_msg("create %s/%s: %s", fmt, est, qat_errmsg());
    return q;
}

static void fill(float *x, int64_t n, uint64_t seed, double sd) {
    for (int64_t i = 0; i < n; i++) x[i] = (float)(sd * qat_normal_at(seed, (uint64_t)i));
}

/* The quantizer's state array called `name`. */
static float *state_named(qat_quantizer *q, const char *name, int64_t *n) {
    for (int i = 0; i < qat_quantizer_state_count(q); i++) {
        const char *nm;
        float *d;
        qat_quantizer_state(q, i, &nm, &d, n);
        if (!strcmp(nm, name)) return d;
    }
    fail_msg("no state array %s", name);
    return NULL;
}

static void names_bits_and_refusals(void **state) {
    (void)state;
    struct { const char *s; double bits; } ok[] = {{"aq1x8g4", 2.0}, {"aq1x8g8", 1.0}, {"aq2x8g8", 2.0}, {"aq1x4g4", 1.0}};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        qat_fmt f;
        assert_int_equal(qat_fmt_parse(ok[i].s, &f), 0);
        assert_string_equal(f.name, ok[i].s);
        assert_int_equal(f.val, QAT_VAL_AQ);
        double b;
        assert_int_equal(qat_fmt_bits(ok[i].s, &b), 0);
        assert_true(b == ok[i].bits);
    }
    const char *bad[] = {"aq0x8g8", "aq5x8g8", "aq1x9g8", "aq1x8g33", "aq1x8g0", "aq1x8", "aqx8g8", "sp50+aq1x8g8"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        qat_fmt f;
        assert_int_equal(qat_fmt_parse(bad[i], &f), QAT_EINPUT);
        qat_clear_error();
    }
    qat_compress_side s = make_side("aq1x8g8", "");
    qat_quantizer *q = NULL;
    assert_int_equal(qat_quantizer_create(&s, 0, 16, 32, 1, 1, &q), QAT_EINPUT); /* activations */
    assert_non_null(strstr(qat_errmsg(), "compress.weights only"));
    qat_clear_error();
    s = make_side("aq1x8g8", "trust");
    assert_int_equal(qat_quantizer_create(&s, 1, 16, 32, 1, 1, &q), QAT_EINPUT);
    assert_non_null(strstr(qat_errmsg(), "expected one of: ste, pv"));
    qat_clear_error();
    s = make_side("aq1x8g8", "");
    s.group = 16;
    assert_int_equal(qat_quantizer_create(&s, 1, 16, 32, 1, 1, &q), QAT_EINPUT);
    qat_clear_error();
    q = make("aq1x8g8", "", 16, 32);
    assert_string_equal(qat_quantizer_estimator(q), "ste"); /* the default */
    qat_quantizer_free(q);
}

/* Per-coordinate MSE of x (n, d) through the fixed vq codebook. */
static double fixed_mse(const qat_vq_codebook *cb, const float *x, int64_t n) {
    double e = 0;
    for (int64_t i = 0; i < n; i++) {
        int j = qat_vq_nearest(cb, x + i * cb->d);
        for (int t = 0; t < cb->d; t++) {
            double d = (double)x[i * cb->d + t] - cb->cw[(int64_t)j * cb->d + t];
            e += d * d;
        }
    }
    return e / ((double)n * cb->d);
}

/* Per-coordinate MSE of x (n, g) through learned books fitted on other samples. */
static double learned_mse(qat_aq_books *b, const float *x, int64_t n) {
    float *codes = calloc((size_t)(n * b->m), sizeof(float));
    qat_aq_encode(b, x, n, codes, QAT_AQ_BEAM);
    double e = 0;
    for (int64_t i = 0; i < n; i++) {
        float y[QAT_AQ_MAX_GROUP];
        qat_aq_decode(b, codes + i * b->m, y);
        for (int t = 0; t < b->g; t++) {
            double d = (double)x[i * b->g + t] - y[t];
            e += d * d;
        }
    }
    free(codes);
    return e / ((double)n * b->g);
}

/* Unit-variance coordinates with correlation rho between neighbours in a group
 * (x_t = rho·x_{t−1} + sqrt(1 − rho²)·z_t). */
static void correlated(float *x, int64_t n, int g, double rho, uint64_t seed) {
    for (int64_t i = 0; i < n; i++) {
        double prev = qat_normal_at(seed, (uint64_t)(i * g));
        x[i * g] = (float)prev;
        for (int t = 1; t < g; t++) {
            prev = rho * prev + sqrt(1 - rho * rho) * qat_normal_at(seed, (uint64_t)(i * g + t));
            x[i * g + t] = (float)prev;
        }
    }
}

static void kmeans_codebook_against_the_fixed_one(void **state) {
    (void)state;
    /* Gaussian: aq1x8g4 (256 codewords of 4 values, 2 bits) against vq4x2 (the same) */
    double ga, gv, se, sev;
    assert_int_equal(qat_fmt_gmse("aq1x8g4", 0, 0, &ga, &se), 0);
    assert_int_equal(qat_fmt_gmse("vq4x2", 0, 0, &gv, &sev), 0);
    printf("  Gaussian: aq1x8g4 %.5f, vq4x2 %.5f (ratio %.4f)\n", ga, gv, ga / gv);
    assert_true(fabs(ga / gv - 1.0) < 0.03);
    /* the same Monte Carlo twice is the same number (the books cached or not) */
    double ga2, se2;
    assert_int_equal(qat_fmt_gmse("aq1x8g4", 0, 0, &ga2, &se2), 0);
    assert_true(ga2 == ga && se2 == se);
    /* correlated coordinates (rho 0.7): the fixed N(0, I) codebook wastes its cells */
    const int64_t n = 32768, nt = 16384;
    const int g = 4;
    float *x = malloc(sizeof(float) * (size_t)(n * g)), *xt = malloc(sizeof(float) * (size_t)(nt * g));
    correlated(x, n, g, 0.7, 11);
    correlated(xt, nt, g, 0.7, 12);
    float *cw = calloc((size_t)(256 * g), sizeof(float)), *codes = calloc((size_t)n, sizeof(float));
    qat_aq_books b;
    qat_aq_books_init(&b, 1, 8, g, cw);
    double fit = qat_aq_fit(&b, x, n, 5, codes);
    double learned = learned_mse(&b, xt, nt), fixed = fixed_mse(qat_vq_get(4, 2), xt, nt);
    printf("  correlated (rho 0.7): learned %.5f (fit %.5f), fixed vq4x2 %.5f\n", learned, fit, fixed);
    assert_true(learned < 0.8 * fixed);
    qat_aq_books_free(&b);
    free(x), free(xt), free(cw), free(codes);
}

static double dot(const float *a, const float *b, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* aqMxBgG's GMSE is a Monte Carlo and says so: aq1x1g1 (one book of two
 * scalars) was reported as 0.36184 with error 0, below 1 − 2/π = 0.36338, the
 * Lloyd–Max optimum of any 1-bit scalar quantizer of N(0, 1) (int1's exact
 * GMSE), from 32 768 draws whose standard error is ~0.003. Now it carries its
 * standard error, which shrinks as --samples grows, is measured on draws the
 * fit never saw (so it estimates the fitted books' population error, which is
 * at or above the optimum: no more than 4 standard errors below it, and the
 * fit of 2 centroids to 16 384 draws costs < 0.002 above it), and its seed moves
 * the draws but not the books. The capacity terms are that same estimate. */
static void gmse_is_a_monte_carlo_with_its_error(void **state) {
    (void)state;
    const double opt = 1.0 - 2.0 / M_PI;
    double g, se, g4, se4, gs, ses;
    assert_int_equal(qat_fmt_gmse("aq1x1g1", 0, 0, &g, &se), 0);
    assert_int_equal(qat_fmt_gmse("aq1x1g1", (int64_t)1 << 23, 0, &g4, &se4), 0);
    assert_int_equal(qat_fmt_gmse("aq1x1g1", 0, 5, &gs, &ses), 0);
    printf("  aq1x1g1: %.5f ± %.5f (2^21), %.5f ± %.5f (2^23), %.5f ± %.5f (seed 5); optimum %.5f\n", g, se, g4, se4,
           gs, ses, opt);
    assert_true(se > 0 && se < 0.002);
    assert_true(se4 < 0.6 * se); /* four times the samples: half the error */
    const double est[][2] = {{g, se}, {g4, se4}, {gs, ses}};
    for (int i = 0; i < 3; i++) {
        if (est[i][0] < opt - 4 * est[i][1]) fail_msg("estimate %d: %.5f is below the optimum %.5f", i, est[i][0], opt);
        assert_true(est[i][0] < opt + 0.002 + 4 * est[i][1]);
    }
    assert_true(gs != g); /* other draws */
    qat_cap_params p[QAT_CAP_NTYPES] = {QAT_CAP_PUBLISHED, QAT_CAP_PUBLISHED, QAT_CAP_PUBLISHED};
    qat_fmt_est e;
    assert_int_equal(qat_fmt_estimate("aq1x1g1", (int64_t)1 << 23, 0, p, &e), 0);
    assert_true(e.gmse == g4 && e.gmse_err == se4 && e.n_terms == 1 && e.term[0].gmse == g4);
    assert_true(e.rho == qat_cap_rho(QAT_CAP_PUBLISHED, g4));
}

static void gradients_match_finite_differences(void **state) {
    (void)state;
    const char *fmts[] = {"aq1x3g4", "aq2x3g4"};
    for (int fi = 0; fi < 2; fi++) {
        const int64_t R = 6, C = 16, n = R * C;
        qat_quantizer *q = make(fmts[fi], "pv", R, C);
        float *w = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n), *r = malloc(sizeof(float) * n);
        float *gx = calloc((size_t)n, sizeof(float));
        fill(w, n, 1, 0.05);
        fill(r, n, 2, 1.0);
        qat_quantizer_forward(q, w, y, R, 0); /* the fit */
        float *par, *grad;
        int64_t np = qat_quantizer_params(q, &par, &grad);
        assert_true(np > R);
        memset(grad, 0, sizeof(float) * (size_t)np);
        qat_quantizer_backward(q, r, gx, R);
        for (int64_t i = 0; i < n; i++) assert_true(gx[i] == r[i]); /* straight through */
        double worst = 0, scale = 0;
        for (int64_t i = 0; i < np; i++) scale = fmax(scale, fabs(grad[i]));
        for (int64_t i = 0; i < np; i++) {
            const float keep = par[i], h = 1e-2f * fmaxf(fabsf(keep), 1e-2f);
            par[i] = keep + h;
            qat_quantizer_forward(q, w, y, R, 0);
            double lp = dot(y, r, n);
            par[i] = keep - h;
            qat_quantizer_forward(q, w, y, R, 0);
            double lm = dot(y, r, n);
            par[i] = keep;
            double num = (lp - lm) / (2.0 * h);
            worst = fmax(worst, fabs(num - grad[i]));
        }
        printf("  %s: %lld parameters, worst |analytic − numeric| %.2e of max |grad| %.2e\n", fmts[fi], (long long)np,
               worst, scale);
        assert_true(scale > 0);
        assert_true(worst < 1e-3 * scale);
        qat_quantizer_free(q);
        free(w), free(y), free(r), free(gx);
    }
}

static void ste_recodes_and_the_codebooks_follow(void **state) {
    (void)state;
    const int64_t R = 16, C = 32, n = R * C;
    qat_quantizer *q = make("aq1x4g4", "ste", R, C);
    float *w = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n), *gx = calloc((size_t)n, sizeof(float));
    float *gy = malloc(sizeof(float) * n);
    fill(w, n, 3, 0.1);
    qat_quantizer_forward(q, w, y, R, 0);
    float *par, *grad;
    int64_t np = qat_quantizer_params(q, &par, &grad);
    float *fitted = malloc(sizeof(float) * (size_t)np);
    memcpy(fitted, par, sizeof(float) * (size_t)np);
    /* the latent weights move (a shift of every weight by a third of its spread plus a
     * row-dependent gain): the codes must follow at once, the codebooks by gradient steps */
    for (int64_t i = 0; i < n; i++) w[i] = w[i] * (1.0f + 0.05f * (float)(i / C)) + 0.03f;
    double err0 = -1, err = 0;
    for (int step = 0; step < 200; step++) {
        qat_quantizer_forward(q, w, y, R, step);
        err = 0;
        for (int64_t i = 0; i < n; i++) {
            gy[i] = 2.0f * (y[i] - w[i]) / (float)n;
            err += (double)(y[i] - w[i]) * (y[i] - w[i]);
        }
        if (err0 < 0) err0 = err;
        memset(grad, 0, sizeof(float) * (size_t)np);
        qat_quantizer_backward(q, gy, gx, R);
        for (int64_t i = 0; i < np; i++) par[i] -= 5.0f * grad[i]; /* plain gradient steps, stable below ~16 */
    }
    /* the codes are the nearest codewords of the latent weights over their row's scale */
    int64_t nc;
    float *codes = state_named(q, "aq_codes", &nc);
    qat_quantizer_forward(q, w, y, R, 200);
    qat_aq_books b;
    qat_aq_books_init(&b, 1, 4, 4, par);
    float *xs = malloc(sizeof(float) * n), *want = calloc((size_t)nc, sizeof(float));
    for (int64_t i = 0; i < n; i++) xs[i] = w[i] * (1.0f / par[np - R + i / C]); /* as the quantizer scales */
    qat_aq_encode(&b, xs, nc, want, 1);
    assert_memory_equal(codes, want, sizeof(float) * (size_t)nc);
    double moved = 0;
    for (int64_t i = 0; i < np; i++) moved = fmax(moved, fabs(par[i] - fitted[i]));
    printf("  squared error after the move %.4e, after 200 steps %.4e; largest parameter change %.3e\n", err0, err,
           moved);
    assert_true(moved > 1e-3);
    assert_true(err < 0.8 * err0);
    qat_aq_books_free(&b);
    qat_quantizer_free(q);
    free(w), free(y), free(gx), free(gy), free(fitted), free(xs), free(want);
}

static void pv_keeps_codes_and_v_step_moves_at_most_tau(void **state) {
    (void)state;
    const int64_t R = 8, C = 32, n = R * C, groups = n / 4;
    qat_quantizer *q = make("aq2x3g4", "pv", R, C); /* pv_lr 0: B is the latent weights; tau 0.25 */
    float *w = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n);
    fill(w, n, 4, 0.1);
    qat_quantizer_forward(q, w, y, R, 0);
    int64_t nc;
    float *codes = state_named(q, "aq_codes", &nc);
    assert_int_equal(nc, groups * 2);
    float *before = malloc(sizeof(float) * (size_t)nc);
    memcpy(before, codes, sizeof(float) * (size_t)nc);
    for (int64_t i = 0; i < n; i++) w[i] = -w[i]; /* every group far from its code */
    qat_quantizer_forward(q, w, y, R, 1);
    assert_memory_equal(codes, before, sizeof(float) * (size_t)nc); /* the P step keeps the codes */
    qat_quantizer_after_step(q, w, 1);
    int64_t changed = 0;
    for (int64_t v = 0; v < groups; v++) changed += codes[2 * v] != before[2 * v] || codes[2 * v + 1] != before[2 * v + 1];
    printf("  groups re-encoded by the V step: %lld of %lld (tau 0.25)\n", (long long)changed, (long long)groups);
    assert_true(changed > 0 && changed <= groups / 4);
    qat_quantizer_free(q);
    free(w), free(y), free(before);
}

static void state_restores_bit_for_bit(void **state) {
    (void)state;
    const char *est[] = {"ste", "pv"};
    const int want_n[] = {3, 8};
    for (int e = 0; e < 2; e++) {
        const int64_t R = 12, C = 16, n = R * C;
        qat_quantizer *a = make("aq2x4g4", est[e], R, C), *b = make("aq2x4g4", est[e], R, C);
        assert_int_equal(qat_quantizer_state_count(a), want_n[e]);
        float *w = malloc(sizeof(float) * n), *ya = malloc(sizeof(float) * n), *yb = malloc(sizeof(float) * n);
        float *gy = malloc(sizeof(float) * n), *gx = calloc((size_t)n, sizeof(float));
        fill(w, n, 5, 0.1);
        fill(gy, n, 6, 1.0);
        float *pa, *ga;
        int64_t np = qat_quantizer_params(a, &pa, &ga);
        for (int step = 0; step < 3; step++) { /* a few steps so every array holds something */
            qat_quantizer_forward(a, w, ya, R, step);
            qat_quantizer_backward(a, gy, gx, R);
            for (int64_t i = 0; i < np; i++) pa[i] -= 0.01f * ga[i], ga[i] = 0;
            for (int64_t i = 0; i < n; i++) w[i] += 0.01f * gy[i];
            qat_quantizer_after_step(a, w, step);
        }
        for (int i = 0; i < qat_quantizer_state_count(a); i++) {
            const char *n1, *n2;
            float *d1, *d2;
            int64_t c1, c2;
            qat_quantizer_state(a, i, &n1, &d1, &c1);
            qat_quantizer_state(b, i, &n2, &d2, &c2);
            assert_string_equal(n1, n2);
            assert_int_equal(c1, c2);
            memcpy(d2, d1, sizeof(float) * (size_t)c1);
        }
        for (int step = 3; step < 5; step++) {
            qat_quantizer_forward(a, w, ya, R, step);
            qat_quantizer_forward(b, w, yb, R, step);
            assert_memory_equal(ya, yb, sizeof(float) * (size_t)n);
            qat_quantizer_after_step(a, w, step);
            qat_quantizer_after_step(b, w, step);
        }
        qat_quantizer_free(a), qat_quantizer_free(b);
        free(w), free(ya), free(yb), free(gy), free(gx);
    }
}

/* --init from an fp32 checkpoint into aq + pv checks every state array for NaN/Inf
 * before the first forward has filled pv_what; uninitialised heap memory there
 * refused the run at random ("non-finite values in ...pv_what"). M_PERTURB fills
 * fresh allocations with a non-zero byte, so undefined contents show up here. */
static void fresh_state_is_all_zero(void **state) {
    (void)state;
    /* the int grids' pv (estimator_pv.c) allocates the same Ŵ buffer and had the same hole */
    const char *fmt[] = {"aq2x4g4", "aq2x4g4", "int2"}, *est[] = {"ste", "pv", "pv"};
    /* glibc takes M_PERTURB; under AddressSanitizer mallopt is a no-op returning 0, and
     * ASan's allocator fills fresh memory with 0xbe itself (malloc_fill_byte, first 4 KB
     * of each block: these arrays are 3 KB), so the check holds either way */
    int perturbed = mallopt(M_PERTURB, 0x5a);
    print_message("fresh allocations filled by %s\n", perturbed == 1 ? "glibc M_PERTURB 0x5a" : "the sanitizer's allocator");
    for (int e = 0; e < 3; e++) {
        qat_quantizer *q = make(fmt[e], est[e], 24, 32);
        for (int i = 0; i < qat_quantizer_state_count(q); i++) {
            const char *nm;
            float *d;
            int64_t n;
            qat_quantizer_state(q, i, &nm, &d, &n);
            for (int64_t j = 0; j < n; j++)
                if (d[j] != 0.0f) fail_msg("%s/%s state %s[%lld] = %g before the first forward", fmt[e], est[e], nm,
                                           (long long)j, (double)d[j]);
        }
        qat_quantizer_free(q);
    }
    mallopt(M_PERTURB, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(names_bits_and_refusals),
        cmocka_unit_test(kmeans_codebook_against_the_fixed_one),
        cmocka_unit_test(gmse_is_a_monte_carlo_with_its_error),
        cmocka_unit_test(gradients_match_finite_differences),
        cmocka_unit_test(ste_recodes_and_the_codebooks_follow),
        cmocka_unit_test(pv_keeps_codes_and_v_step_moves_at_most_tau),
        cmocka_unit_test(state_restores_bit_for_bit),
        cmocka_unit_test(fresh_state_is_all_zero),
    };
    if (getenv("QAT_TEST_FILTER")) cmocka_set_test_filter(getenv("QAT_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}

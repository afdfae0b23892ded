/*
 * tests/test_scaling_law.c — the pieces under every fit: analytic gradients of
 * the three laws against central finite differences, the Huber loss, L-BFGS
 * on Rosenbrock, and --fix holding parameters where they were put.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "core/error.h"
#include "scaling/fit.h"
#include "scaling/lbfgs.h"
#include "scaling/synth.h"

static void make_runs(qat_fit_runs *rs) {
    qat_fit_synth_law law = {200, 0.3, 400, 0.28, 1.6, {{1, 0.41, 1.39}, {1, 0.5, 1.2}, {1, 0.4, 1}}, 0.01, 7};
    const double N[] = {1e6, 1e7}, ratio[] = {20, 80};
    qat_fit_synth(rs, &law, N, 2, ratio, 2, qat_fit_synth_pairs, qat_fit_synth_npairs);
}

static void check_gradient(qat_fit_law law) {
    qat_fit_runs rs = {0};
    make_runs(&rs);
    qat_fit_problem p;
    assert_int_equal(qat_fit_problem_init(&p, law, &rs), QAT_OK);
    double th[64], g[64], tp[64];
    assert_true(p.np <= 64);
    for (int k = 0; k < p.np; k++) th[k] = 0.1 * (k % 5) - 0.2;
    th[QAT_FIT_A] = 5.0; th[QAT_FIT_ALPHA] = 0.35; th[QAT_FIT_B] = 6.0; th[QAT_FIT_BETA] = 0.3; th[QAT_FIT_E] = 0.4;
    /* Weights make the check cover the bootstrap path too. */
    double w[256];
    for (int i = 0; i < p.n; i++) w[i] = (double)(i % 3);
    qat_fit_objective(&p, th, w, g);
    for (int k = 0; k < p.np; k++) {
        double h = 1e-6;
        memcpy(tp, th, sizeof th);
        tp[k] += h;
        double fp = qat_fit_objective(&p, tp, w, NULL);
        tp[k] -= 2 * h;
        double fm = qat_fit_objective(&p, tp, w, NULL);
        double fd = (fp - fm) / (2 * h);
        assert_true(fabs(fd - g[k]) <= 1e-6 * fmax(1.0, fabs(fd)));
    }
    qat_fit_problem_free(&p);
    qat_fit_runs_free(&rs);
}

static void test_gradient_chinchilla(void **s) { (void)s; check_gradient(QAT_LAW_CHINCHILLA); }
static void test_gradient_decoupled(void **s) { (void)s; check_gradient(QAT_LAW_DECOUPLED); }
static void test_gradient_unified(void **s) { (void)s; check_gradient(QAT_LAW_UNIFIED); }

static void test_huber(void **s) {
    (void)s;
    double d;
    assert_true(fabs(qat_fit_huber(5e-4, 1e-3, &d) - 1.25e-7) < 1e-18);
    assert_true(fabs(d - 5e-4) < 1e-18);
    assert_true(fabs(qat_fit_huber(-0.01, 1e-3, &d) - 1e-3 * (0.01 - 5e-4)) < 1e-15);
    assert_true(d == -1e-3);
    /* Continuous at δ. */
    assert_true(fabs(qat_fit_huber(1e-3 + 1e-12, 1e-3, NULL) - qat_fit_huber(1e-3, 1e-3, NULL)) < 1e-14);
}

static double rosen(const double *x, double *g, void *ctx) {
    (void)ctx;
    double a = 1 - x[0], b = x[1] - x[0] * x[0];
    g[0] = -2 * a - 400 * x[0] * b;
    g[1] = 200 * b;
    return a * a + 100 * b * b;
}

static void test_lbfgs_rosenbrock(void **s) {
    (void)s;
    double x[2] = {-1.2, 1.0};
    qat_lbfgs_info info;
    double f = qat_lbfgs_minimize(2, x, rosen, NULL, NULL, &info);
    assert_true(f < 1e-14);
    assert_true(fabs(x[0] - 1) < 1e-6 && fabs(x[1] - 1) < 1e-6);
    assert_true(info.converged);
    assert_true(info.iters < 100); /* a quasi-Newton method, not steepest descent */
}

static void test_fix_holds_parameters(void **s) {
    (void)s;
    qat_fit_runs rs = {0};
    make_runs(&rs);
    qat_fit_problem p;
    assert_int_equal(qat_fit_problem_init(&p, QAT_LAW_UNIFIED, &rs), QAT_OK);
    assert_int_equal(qat_fit_problem_fix(&p, "alpha", 0.25), QAT_OK);
    assert_int_equal(qat_fit_problem_fix(&p, "L", 1.0), QAT_OK);
    assert_int_equal(qat_fit_problem_fix(&p, "nonsense", 1.0), QAT_EINPUT);
    assert_non_null(strstr(qat_errmsg(), "quant_F"));
    assert_int_equal(qat_fit_problem_fix(&p, "E", -1.0), QAT_EINPUT);
    double th[64];
    qat_fit_grid_start(&p, 1234, th);
    qat_fit_local(&p, th, NULL);
    assert_true(th[QAT_FIT_ALPHA] == 0.25);
    assert_true(qat_fit_value(&p, th, p.type_off[QAT_CAP_QUANT]) == 1.0);
    assert_true(qat_fit_value(&p, th, p.type_off[QAT_CAP_SPARSE]) == 1.0);
    qat_fit_problem_free(&p);
    qat_fit_runs_free(&rs);
}

static void test_decoupled_layout(void **s) {
    (void)s;
    qat_fit_runs rs = {0};
    make_runs(&rs);
    qat_fit_problem p;
    assert_int_equal(qat_fit_problem_init(&p, QAT_LAW_DECOUPLED, &rs), QAT_OK);
    assert_int_equal(p.n_pairs, qat_fit_synth_npairs);
    assert_int_equal(p.np, 5 + qat_fit_synth_npairs - 1); /* fp32/fp32 is pinned to 1 */
    for (int k = 1; k < p.n_pairs; k++) assert_true(strcmp(p.pair[k - 1], p.pair[k]) < 0);
    assert_int_equal(qat_fit_problem_fix(&p, "int4/int4", 0.7), QAT_OK);
    qat_fit_problem_free(&p);
    qat_fit_runs_free(&rs);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradient_chinchilla), cmocka_unit_test(test_gradient_decoupled),
        cmocka_unit_test(test_gradient_unified),    cmocka_unit_test(test_huber),
        cmocka_unit_test(test_lbfgs_rosenbrock),    cmocka_unit_test(test_fix_holds_parameters),
        cmocka_unit_test(test_decoupled_layout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

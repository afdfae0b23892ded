/*
 * tests/test_scaling_chinchilla.c — acceptance: Epoch AI's refit of Hoffmann
 * et al. (docs/reference-numbers.md). On the extracted Chinchilla points with D = FLOP/(6N) and
 * the 5 highest losses dropped, the chinchilla law must give E, α, β within 2%
 * and A, B within 15% of Epoch's values, and bootstrap intervals that overlap
 * theirs. The points are the fixture tests/fixtures/chinchilla-epoch-extracted.csv
 * (provenance in tests/fixtures/README.md); a missing file fails.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/error.h"
#include "scaling/fit.h"
#include "scaling/inputs.h"

static int rel_within(double got, double want, double tol) { return fabs(got - want) <= tol * fabs(want); }
static int overlaps(double lo, double hi, double a, double b) { return lo <= b && a <= hi; }

static void test_epoch_refit(void **s) {
    (void)s;
    const char *root = getenv("QAT_SOURCE_ROOT");
    assert_non_null(root); /* set by meson: without it the acceptance test cannot run, which is a failure */
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/fixtures/chinchilla-epoch-extracted.csv", root);
    qat_fit_runs rs = {0};
    int rc = qat_fit_read_csv(path, &rs);
    if (rc) fprintf(stderr, "%s\n", qat_errmsg());
    assert_int_equal(rc, QAT_OK);
    assert_int_equal(rs.n, 245);
    qat_fit_drop_highest(&rs, 5);
    assert_int_equal(rs.n, 240);
    for (int i = 0; i < rs.n; i++) assert_true(rs.run[i].loss <= 4.0); /* the dropped rows are the 4–5 nat outliers */

    qat_fit_problem p;
    assert_int_equal(qat_fit_problem_init(&p, QAT_LAW_CHINCHILLA, &rs), QAT_OK);
    qat_fit_opts o = {.bootstrap = 200, .seed = 1};
    qat_fit_result r;
    assert_int_equal(qat_fit_run_fit(&p, &o, &r), QAT_OK);
    double A = qat_fit_value(&p, r.theta, QAT_FIT_A), B = qat_fit_value(&p, r.theta, QAT_FIT_B);
    double E = qat_fit_value(&p, r.theta, QAT_FIT_E);
    double al = r.theta[QAT_FIT_ALPHA], be = r.theta[QAT_FIT_BETA];
    printf("fit: E %.4f A %.1f B %.1f alpha %.4f beta %.4f (Epoch: 1.817 482.0 2085 0.348 0.366)\n", E, A, B, al, be);
    printf("95%%: E [%.3f, %.3f] alpha [%.3f, %.3f] beta [%.3f, %.3f] (Epoch: E 1.769-1.871, alpha 0.317-0.373, "
           "beta 0.331-0.415)\n", r.lo[QAT_FIT_E], r.hi[QAT_FIT_E], r.lo[QAT_FIT_ALPHA], r.hi[QAT_FIT_ALPHA],
           r.lo[QAT_FIT_BETA], r.hi[QAT_FIT_BETA]);
    assert_true(rel_within(E, 1.817, 0.02));
    assert_true(rel_within(al, 0.348, 0.02));
    assert_true(rel_within(be, 0.366, 0.02));
    assert_true(rel_within(A, 482.0, 0.15));
    assert_true(rel_within(B, 2085.0, 0.15));
    assert_true(overlaps(r.lo[QAT_FIT_E], r.hi[QAT_FIT_E], 1.769, 1.871));
    assert_true(overlaps(r.lo[QAT_FIT_ALPHA], r.hi[QAT_FIT_ALPHA], 0.317, 0.373));
    assert_true(overlaps(r.lo[QAT_FIT_BETA], r.hi[QAT_FIT_BETA], 0.331, 0.415));
    /* The intervals contain the point estimate and are not degenerate. */
    assert_true(r.lo[QAT_FIT_E] < E && E < r.hi[QAT_FIT_E]);
    assert_int_equal(r.n_boot, 200);
    assert_true(r.rmse_log > 0 && r.rmse_log < 0.02);

    /* Determinism: the same seed gives the same intervals (thread schedule must not matter). */
    qat_fit_opts o2 = {.bootstrap = 20, .seed = 1};
    qat_fit_result r2, r3;
    assert_int_equal(qat_fit_bootstrap(&p, &o2, NULL, 0, (r2 = r, r2.boot = NULL, &r2)), QAT_OK);
    double lo1 = r2.lo[QAT_FIT_E];
    free(r2.boot);
    r3 = r;
    r3.boot = NULL;
    assert_int_equal(qat_fit_bootstrap(&p, &o2, NULL, 0, &r3), QAT_OK);
    assert_true(lo1 == r3.lo[QAT_FIT_E]);
    free(r3.boot);
    qat_fit_result_free(&r);
    qat_fit_problem_free(&p);
    qat_fit_runs_free(&rs);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_epoch_refit)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}

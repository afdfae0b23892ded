/*
 * tests/test_scaling_unified.c — acceptance: a unified law with known
 * constants, sampled with noise by scaling/synth.c, is recovered: α, β within
 * 10 %, E within 3 %, the quantization F and C within 15 %. The decoupled law
 * on the same data must find effs close to the true ρ of each pair.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "core/error.h"
#include "scaling/fit.h"
#include "scaling/synth.h"

static const qat_fit_synth_law truth = {250, 0.32, 900, 0.30, 1.7, {{1.0, 0.41, 1.39}, {1.0, 0.5, 1.2}, {1, 1, 1}},
                                        0.004, 11};

static void synth(qat_fit_runs *rs) {
    const double N[] = {1e6, 3e6, 1e7, 3e7, 1e8, 3e8}, ratio[] = {10, 40, 160};
    qat_fit_synth(rs, &truth, N, 6, ratio, 3, qat_fit_synth_pairs, qat_fit_synth_npairs);
}

static int within(double got, double want, double tol) { return fabs(got - want) <= tol * fabs(want); }

static void test_unified_recovery(void **s) {
    (void)s;
    qat_fit_runs rs = {0};
    synth(&rs);
    assert_int_equal(rs.n, 216);
    qat_fit_problem p;
    assert_int_equal(qat_fit_problem_init(&p, QAT_LAW_UNIFIED, &rs), QAT_OK);
    assert_true(p.type_off[QAT_CAP_QUANT] >= 0 && p.type_off[QAT_CAP_SPARSE] >= 0 && p.type_off[QAT_CAP_VQ] < 0);
    qat_fit_opts o = {0}; /* the default screened grid */
    qat_fit_result r;
    assert_int_equal(qat_fit_run_fit(&p, &o, &r), QAT_OK);
    int q = p.type_off[QAT_CAP_QUANT], sp = p.type_off[QAT_CAP_SPARSE];
    double al = r.theta[QAT_FIT_ALPHA], be = r.theta[QAT_FIT_BETA], E = qat_fit_value(&p, r.theta, QAT_FIT_E);
    double F = qat_fit_value(&p, r.theta, q + 1), C = qat_fit_value(&p, r.theta, q + 2);
    printf("recovered: alpha %.4f (0.32) beta %.4f (0.30) E %.4f (1.7) A %.1f (250) B %.1f (900)\n"
           "  quant L %.3f (1) F %.4f (0.41) C %.4f (1.39); sparse L %.3f F %.4f (0.5) C %.4f (1.2); rmse %.5f\n",
           al, be, E, qat_fit_value(&p, r.theta, QAT_FIT_A), qat_fit_value(&p, r.theta, QAT_FIT_B),
           qat_fit_value(&p, r.theta, q), F, C, qat_fit_value(&p, r.theta, sp), qat_fit_value(&p, r.theta, sp + 1),
           qat_fit_value(&p, r.theta, sp + 2), r.rmse_log);
    assert_true(within(al, 0.32, 0.10));
    assert_true(within(be, 0.30, 0.10));
    assert_true(within(E, 1.7, 0.03));
    assert_true(within(F, 0.41, 0.15));
    assert_true(within(C, 1.39, 0.15));
    /* The residuals are the injected noise, not misfit. */
    assert_true(r.rmse_log < 2 * truth.noise);
    qat_fit_result_free(&r);
    qat_fit_problem_free(&p);

    /* Decoupled: each eff near the true ρ of its pair. */
    assert_int_equal(qat_fit_problem_init(&p, QAT_LAW_DECOUPLED, &rs), QAT_OK);
    qat_fit_opts od = {0};
    assert_int_equal(qat_fit_run_fit(&p, &od, &r), QAT_OK);
    for (int k = 0; k < p.n_pairs; k++) {
        const qat_fit_run *u = &rs.run[p.pair_run[k]];
        double rho = 1.0;
        for (int t = 0; t < u->n_terms; t++) {
            const qat_cap_params *c = &truth.cap[u->terms[t].type];
            rho *= c->L * pow(tanh(c->F * log(u->terms[t].gmse) / log(0.25)), c->C);
        }
        printf("  eff %-10s %.4f  true rho %.4f\n", p.pair[k], r.pair_rho[k], rho);
        assert_true(within(r.pair_rho[k], rho, 0.15));
    }
    qat_fit_result_free(&r);
    qat_fit_problem_free(&p);
    qat_fit_runs_free(&rs);
}

/* The notes of a checked unified fit of runs drawn with quant L = `L` (no noise
 * beyond the law's 0.4 %), into buf. */
static void checked_notes(double L, char *buf, size_t cap, double *fitted) {
    qat_fit_synth_law law = truth;
    law.cap[QAT_CAP_QUANT].L = L;
    qat_fit_runs rs = {0};
    const double N[] = {1e6, 3e6, 1e7, 3e7, 1e8, 3e8}, ratio[] = {10, 40, 160};
    qat_fit_synth(&rs, &law, N, 6, ratio, 3, qat_fit_synth_pairs, qat_fit_synth_npairs);
    qat_fit_problem p;
    assert_int_equal(qat_fit_problem_init(&p, QAT_LAW_UNIFIED, &rs), QAT_OK);
    FILE *note = tmpfile();
    assert_non_null(note);
    assert_int_equal(qat_fit_identify(&p, note), QAT_OK);
    qat_fit_opts o = {0};
    qat_fit_result r;
    assert_int_equal(qat_fit_run_checked(&p, &o, &r, note), QAT_OK);
    *fitted = qat_fit_value(&p, r.theta, p.type_off[QAT_CAP_QUANT]);
    rewind(note);
    size_t n = fread(buf, 1, cap - 1, note);
    buf[n] = 0;
    fclose(note);
    qat_fit_result_free(&r);
    qat_fit_problem_free(&p);
    qat_fit_runs_free(&rs);
}

/* A fitted L above 1 prices high-bit formats above fp32 (a reviewer's frontier
 * listed int8 at 1.2): the fit says so and how to hold L. Runs drawn with
 * L = 1.2 fit L within 10 % of it (1.188 here; the recovery above holds F and
 * C to 15 %), above the note's 1.05; runs drawn with L = 1 fit quant and sparse
 * L at 0.990 and 1.014 (0.4 % noise per run over 216 runs, seed fixed), so no note. */
static void test_note_L_above_1(void **s) {
    (void)s;
    char buf[4096];
    double L;
    checked_notes(1.2, buf, sizeof buf, &L);
    printf("  drawn with quant L = 1.2: fitted %.4f; notes: %s", L, buf[0] ? buf : "(none)\n");
    assert_true(within(L, 1.2, 0.10));
    assert_non_null(strstr(buf, "qat: note: quant_L = "));
    assert_non_null(strstr(buf, "is above 1: the law prices an exact quant format above fp32"));
    assert_non_null(strstr(buf, "--fix quant_L=1"));
    checked_notes(1.0, buf, sizeof buf, &L);
    printf("  drawn with quant L = 1: fitted %.4f; notes: %s", L, buf[0] ? buf : "(none)\n");
    assert_null(strstr(buf, "is above 1"));
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_unified_recovery), cmocka_unit_test(test_note_L_above_1)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * tests/test_scaling_rule5.c — rule 5 of docs/scaling-laws.md ("What the data must
 * vary") on noisy runs: how often a parameter the design determines is held as "not
 * identified", and that a flat valley under the same noise still is. Its own
 * executable: 500 chinchilla fits with their profiles take ~15 s of CPU.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "core/error.h"
#include "core/rng.h"
#include "scaling/fit.h"

/* test_scaling_identify.c's exact law (rho = 1). */
static double law(double N, double D) { return 1.817 + 482 * pow(N, -0.348) + 2085 * pow(D, -0.366); }

/* Rule 5's "as good within the runs' noise" (scaling/identify.c, docs/scaling-laws.md):
 * the held fit's sum of squared ln-residuals may exceed the free fit's by less than
 * χ²₁(0.95)·s², s² = SSE_free/(n − free). It compared the Huber objective against
 * 1.92·2·objective/(n − free), which is that test only while every residual is within
 * δ = 1e-3; with 1 % noise every residual is in Huber's linear part and the margin was
 * 1.7 times too wide: E of a known law was "not identified, as good held at 1/1000"
 * with ΔSSE/s² up to 11 (p ≈ 0.001).
 *
 * The design: the brief's law L = 400·N^-0.34 + 410·D^-0.28 + 1.69 at N ∈ {1e6, 3e6,
 * 1e7, 3e7, 1e8} × D ∈ {1e8, 3e8, 1e9, 3e9}, ln L + 0.01·z (z = qat_normal_at(seed, i)).
 * Measured over seeds 1–1000 (the chinchilla grid screened to 48 starts, as here; over
 * seeds 1–400 the full grid of qat fit gave the same decisions): E held in 218 (21.8 %)
 * before, 96 (9.6 %) after. The 9.6 % is not the test's 5 % size: there the runs leave
 * E ≈ 0 inside the 95 % profile-likelihood region (a direct refit with E held at
 * 1/1000 gave ΔSSE/s² < 3.84 in exactly the 39 of seeds 1–400 that were held), so E
 * is not determined within that noise. At 0.5 % noise the same design held E in 0 of
 * 400 seeds (either rule); at 2 % noise in 241 of 400 (292 before).
 * Thresholds: seeds 1–400 held 39 after (93 before); under Binomial(400, 0.096), mean
 * 38.4, sd 5.9, P(> 57) < 1e-3 (3.3 sd), so at most 57, which the old rule's 93
 * exceeds by 6 sd of its own count. At 0.5 %, seeds 1–100: at most 5 (measured 0).
 *
 * And a flat valley under the same noise must still be held: int8/int8 runs that lose
 * nothing against fp32 leave their eff free toward +inf (test_decoupled_held_labels has
 * it without noise); held in each of 6 noise seeds. */
static int e_held(uint64_t seed, double sigma) {
    static const double Ns[] = {1e6, 3e6, 1e7, 3e7, 1e8}, Ds[] = {1e8, 3e8, 1e9, 3e9};
    qat_fit_runs rs = {0};
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 4; j++) {
            qat_fit_run r = {.N = Ns[i], .D = Ds[j], .from_csv = 1};
            r.loss = (400 * pow(r.N, -0.34) + 410 * pow(r.D, -0.28) + 1.69) * exp(sigma * qat_normal_at(seed, (uint64_t)rs.n));
            snprintf(r.wfmt, sizeof r.wfmt, "fp32");
            snprintf(r.afmt, sizeof r.afmt, "fp32");
            qat_fit_runs_push(&rs, &r);
        }
    qat_fit_problem p = {0};
    qat_fit_result r = {0};
    assert_int_equal(qat_fit_problem_init(&p, QAT_LAW_CHINCHILLA, &rs), QAT_OK);
    assert_int_equal(qat_fit_identify(&p, NULL), QAT_OK);
    qat_fit_opts o = {.max_starts = 48};
    assert_int_equal(qat_fit_run_checked(&p, &o, &r, NULL), QAT_OK);
    int held = p.fixed[QAT_FIT_E] == QAT_FIT_BY_RULE;
    qat_fit_result_free(&r);
    qat_fit_problem_free(&p);
    qat_fit_runs_free(&rs);
    return held;
}

static void test_rule5_within_the_noise(void **s) {
    (void)s;
    int held = 0;
    for (uint64_t seed = 1; seed <= 400; seed++) held += e_held(seed, 0.01);
    printf("  1%% noise: E held in %d of 400 seeds (measured 39; at most 57)\n", held);
    assert_true(held <= 57);
    held = 0;
    for (uint64_t seed = 1; seed <= 100; seed++) held += e_held(seed, 0.005);
    printf("  0.5%% noise: E held in %d of 100 seeds (at most 5)\n", held);
    assert_true(held <= 5);

    /* the flat valley: int8/int8 as good as fp32 at every N, 1 % noise */
    const double N[] = {1e7, 1e8, 1e9}, D[] = {1e9, 1e10, 1e11};
    for (uint64_t seed = 1; seed <= 6; seed++) {
        qat_fit_runs rs = {0};
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++)
                for (int f = 0; f < 3; f++) {
                    static const char *fmt[] = {"fp32", "int4", "int8"};
                    qat_fit_run r = {.N = N[i], .D = D[j], .from_csv = 1, .n_terms = -1};
                    double L = f == 2 ? 1.817 + 2085 * pow(D[j], -0.366) : law(f ? 0.7 * N[i] : N[i], D[j]);
                    r.loss = L * exp(0.01 * qat_normal_at(1000 + seed, (uint64_t)rs.n));
                    snprintf(r.wfmt, sizeof r.wfmt, "%s", fmt[f]);
                    snprintf(r.afmt, sizeof r.afmt, "%s", fmt[f]);
                    qat_fit_runs_push(&rs, &r);
                }
        qat_fit_problem p = {0};
        qat_fit_result r = {0};
        assert_int_equal(qat_fit_problem_init(&p, QAT_LAW_DECOUPLED, &rs), QAT_OK);
        assert_int_equal(qat_fit_identify(&p, NULL), QAT_OK);
        qat_fit_opts o = {0};
        assert_int_equal(qat_fit_run_checked(&p, &o, &r, NULL), QAT_OK);
        int k8 = -1;
        for (int k = 0; k < p.n_pairs; k++)
            if (!strcmp(p.pair[k], "int8/int8")) k8 = p.eff_of_pair[k];
        assert_true(k8 >= 0);
        printf("  flat valley, seed %d: int8/int8 eff %.4g %s\n", (int)seed, exp(r.theta[k8]),
               p.fixed[k8] == QAT_FIT_BY_RULE ? "held" : "FITTED");
        assert_int_equal(p.fixed[k8], QAT_FIT_BY_RULE);
        assert_non_null(strstr(p.why[k8], "ran toward its bound +inf"));
        qat_fit_result_free(&r);
        qat_fit_problem_free(&p);
        qat_fit_runs_free(&rs);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_rule5_within_the_noise)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}

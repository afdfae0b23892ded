/*
 * tests/test_optim.c — AdamW against a hand-computed update, decay only where
 * asked, clipping, and the shapes of the schedules.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "core/config.h"
#include "optim/adamw.h"
#include "optim/schedule.h"

static void test_adamw_matches_formula(void **state) {
    (void)state;
    float w[2] = {1.0f, -2.0f}, g[2] = {0.5f, -0.25f};
    float b[1] = {3.0f}, gb[1] = {1.0f};
    qat_param_view v[2];
    memset(v, 0, sizeof v);
    v[0].data = w; v[0].grad = g; v[0].n = 2; v[0].decay = 1;
    v[1].data = b; v[1].grad = gb; v[1].n = 1; v[1].decay = 0;
    qat_config cfg;
    qat_config_defaults(&cfg);
    qat_adamw opt;
    qat_adamw_init(&opt, v, 2, &cfg.train);
    double lr = 0.01, b1 = cfg.train.beta1, b2 = cfg.train.beta2, eps = cfg.train.eps, wd = cfg.train.weight_decay;
    double ref_w[2] = {1.0, -2.0}, m[2] = {0}, vv[2] = {0}, ref_b = 3.0, mb = 0, vb = 0;
    for (int t = 1; t <= 3; t++) {
        qat_adamw_step(&opt, lr);
        for (int j = 0; j < 2; j++) {
            ref_w[j] *= 1 - lr * wd;
            m[j] = b1 * m[j] + (1 - b1) * g[j];
            vv[j] = b2 * vv[j] + (1 - b2) * g[j] * g[j];
            ref_w[j] -= lr * (m[j] / (1 - pow(b1, t))) / (sqrt(vv[j] / (1 - pow(b2, t))) + eps);
        }
        mb = b1 * mb + (1 - b1) * gb[0];
        vb = b2 * vb + (1 - b2) * gb[0] * gb[0];
        ref_b -= lr * (mb / (1 - pow(b1, t))) / (sqrt(vb / (1 - pow(b2, t))) + eps);
    }
    assert_float_equal(w[0], ref_w[0], 1e-6);
    assert_float_equal(w[1], ref_w[1], 1e-6);
    assert_float_equal(b[0], ref_b, 1e-6); /* no decay on this view */
    assert_float_equal(qat_adamw_m(&opt, 1)[0], mb, 1e-7);
    qat_adamw_free(&opt);
}

static void test_clip(void **state) {
    (void)state;
    float g[4] = {3, 0, 0, 4};
    qat_param_view v;
    memset(&v, 0, sizeof v);
    v.grad = g; v.n = 4;
    double n = qat_clip_grad_norm(&v, 1, 1.0);
    assert_float_equal(n, 5.0, 1e-12);
    assert_float_equal(g[0], 0.6, 1e-5);
    assert_float_equal(g[3], 0.8, 1e-5);
    n = qat_clip_grad_norm(&v, 1, 10.0); /* under the limit: untouched */
    assert_float_equal(n, 1.0, 1e-5);
    assert_float_equal(g[3], 0.8, 1e-6);
    g[1] = NAN;
    assert_true(isnan(qat_clip_grad_norm(&v, 1, 1.0)));
}

static void test_schedules(void **state) {
    (void)state;
    qat_config cfg;
    qat_config_defaults(&cfg);
    qat_train_cfg *t = &cfg.train;
    t->lr = 1.0; t->warmup = 0.1; t->min_lr_ratio = 0.1;
    t->schedule = QAT_SCHEDULE_COSINE;
    int64_t total = 1000;
    assert_float_equal(qat_lr_at(t, 0, total), 0.01, 1e-12);   /* lr/100 */
    assert_float_equal(qat_lr_at(t, 99, total), 1.0, 1e-12);   /* end of warm-up */
    assert_float_equal(qat_lr_at(t, 999, total), 0.1, 1e-12);  /* lr·min_lr_ratio */
    double mid = qat_lr_at(t, 100 + 450, total);               /* half-way down: (1+0.1)/2 */
    assert_float_equal(mid, 0.55, 1e-3);
    for (int64_t s = 100; s < 999; s++) assert_true(qat_lr_at(t, s + 1, total) <= qat_lr_at(t, s, total));
    t->schedule = QAT_SCHEDULE_LINEAR;
    assert_float_equal(qat_lr_at(t, 999, total), 0.1, 1e-12);
    t->schedule = QAT_SCHEDULE_CONSTANT;
    assert_float_equal(qat_lr_at(t, 500, total), 1.0, 1e-12);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adamw_matches_formula),
        cmocka_unit_test(test_clip),
        cmocka_unit_test(test_schedules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

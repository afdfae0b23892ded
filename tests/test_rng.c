/*
 * tests/test_rng.c — the deterministic generators of core/rng.h: same seed,
 * same stream; counter draws independent of call order; moments of the normal.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "core/rng.h"

static void test_stream_is_deterministic(void **state) {
    (void)state;
    qat_rng a = qat_rng_make(42, 7), b = qat_rng_make(42, 7), c = qat_rng_make(42, 8);
    int differ = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t x = qat_rng_u64(&a), y = qat_rng_u64(&b), z = qat_rng_u64(&c);
        assert_int_equal(x, y);
        differ += (x != z);
    }
    assert_true(differ > 95);
}

static void test_normal_moments(void **state) {
    (void)state;
    qat_rng r = qat_rng_make(1, 0);
    const int n = 400000;
    double s = 0, s2 = 0, s4 = 0;
    for (int i = 0; i < n; i++) {
        double x = qat_rng_normal(&r);
        s += x; s2 += x * x; s4 += x * x * x * x;
    }
    assert_true(fabs(s / n) < 0.01);
    assert_true(fabs(s2 / n - 1.0) < 0.01);
    assert_true(fabs(s4 / n - 3.0) < 0.06);
    double c = 0, c2 = 0;
    for (int i = 0; i < n; i++) { double x = qat_normal_at(99, (uint64_t)i); c += x; c2 += x * x; }
    assert_true(fabs(c / n) < 0.01);
    assert_true(fabs(c2 / n - 1.0) < 0.01);
    assert_true(qat_normal_at(99, 5) == qat_normal_at(99, 5));
}

static void test_below_is_in_range_and_uniform(void **state) {
    (void)state;
    qat_rng r = qat_rng_make(3, 3);
    int counts[10] = {0};
    for (int i = 0; i < 100000; i++) {
        uint64_t k = qat_rng_below(&r, 10);
        assert_true(k < 10);
        counts[k]++;
    }
    for (int k = 0; k < 10; k++) assert_true(counts[k] > 9500 && counts[k] < 10500);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_is_deterministic),
        cmocka_unit_test(test_normal_moments),
        cmocka_unit_test(test_below_is_in_range_and_uniform),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

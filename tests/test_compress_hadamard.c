/*
 * tests/test_compress_hadamard.c — the block Walsh–Hadamard rotation: matches the
 * explicit Sylvester matrix product, is orthonormal (norm-preserving) and
 * self-inverse, its one-pass masked variant equals its steps, and the block rule
 * (auto/off/explicit) of docs/formats.md.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "compress/hadamard.h"
#include "core/error.h"
#include "core/rng.h"

/* Sylvester entry H[i][j] = (−1)^popcount(i & j). */
static int sylvester_sign(int i, int j) { return __builtin_popcount((unsigned)(i & j)) & 1 ? -1 : 1; }

static void test_matches_naive_product(void **state) {
    (void)state;
    const int blocks[] = {2, 4, 8, 16, 32, 64, 128, 256};
    const int64_t cols = 512;
    for (size_t bi = 0; bi < sizeof blocks / sizeof *blocks; bi++) {
        int B = blocks[bi];
        float x[512], y[512];
        for (int i = 0; i < cols; i++) x[i] = (float)qat_normal_at(7, (uint64_t)(i + 1000 * B));
        memcpy(y, x, sizeof x);
        qat_hadamard_row(y, cols, B);
        for (int64_t b0 = 0; b0 < cols; b0 += B)
            for (int j = 0; j < B; j++) {
                double s = 0;
                for (int i = 0; i < B; i++) s += x[b0 + i] * sylvester_sign(i, j);
                s /= sqrt((double)B);
                if (fabs(s - y[b0 + j]) > 1e-5) fail_msg("B=%d col %lld: %.7f vs naive %.7f", B, (long long)(b0 + j), y[b0 + j], s);
            }
    }
}

static void test_orthonormal_and_self_inverse(void **state) {
    (void)state;
    const int64_t rows = 37, cols = 384; /* 384 = 3·128 */
    float *x = malloc(sizeof(float) * rows * cols), *y = malloc(sizeof(float) * rows * cols);
    for (int64_t i = 0; i < rows * cols; i++) x[i] = (float)qat_normal_at(3, (uint64_t)i) * (1.0f + (float)(i % 5));
    memcpy(y, x, sizeof(float) * rows * cols);
    qat_hadamard_rows(y, rows, cols, 128);
    for (int64_t r = 0; r < rows; r++) {
        double n0 = 0, n1 = 0;
        for (int64_t c = 0; c < cols; c++) {
            n0 += (double)x[r * cols + c] * x[r * cols + c];
            n1 += (double)y[r * cols + c] * y[r * cols + c];
        }
        assert_true(fabs(n0 - n1) < 1e-5 * n0);
    }
    int differ = 0;
    for (int64_t i = 0; i < rows * cols; i++) differ += fabsf(x[i] - y[i]) > 1e-3f;
    assert_true(differ > rows * cols / 2); /* it did rotate */
    qat_hadamard_rows(y, rows, cols, 128);
    for (int64_t i = 0; i < rows * cols; i++) assert_true(fabsf(x[i] - y[i]) < 1e-5f * (1.0f + fabsf(x[i])));
    free(x);
    free(y);
}

/* The masked backward row (select in the load, rotate, store or add) gives the bits
 * of the three separate steps, for every block size and both write modes. */
static void test_masked_row_matches_steps(void **state) {
    (void)state;
    enum { N = 2048 };
    static float g[N], t[N], want[N], got[N], scratch[N];
    static uint8_t keep[N];
    for (int B = 2; B <= 1024; B *= 2)
        for (int add = 0; add <= 1; add++) {
            for (int i = 0; i < N; i++) {
                g[i] = (float)qat_normal_at(11, (uint64_t)(i + N * B));
                keep[i] = (uint8_t)(qat_normal_at(12, (uint64_t)(i + N * B)) > -0.3 ? 1 + i % 3 : 0); /* any nonzero keeps */
                want[i] = got[i] = add ? (float)qat_normal_at(13, (uint64_t)i) : 99.0f;
            }
            for (int all = 0; all <= 1; all++) { /* all: keep NULL, no mask */
                memcpy(got, want, sizeof got);
                for (int i = 0; i < N; i++) t[i] = all || keep[i] ? g[i] : 0.0f;
                qat_hadamard_row(t, N, B);
                float ref[N];
                for (int i = 0; i < N; i++) ref[i] = add ? want[i] + t[i] : t[i];
                qat_hadamard_row_masked(g, all ? NULL : keep, got, N, B, add, scratch);
                if (memcmp(ref, got, sizeof ref) != 0)
                    fail_msg("B=%d add=%d mask=%s: the one-pass row differs from its steps", B, add, all ? "none" : "yes");
            }
        }
}

static void test_block_rule(void **state) {
    (void)state;
    int b;
    assert_int_equal(qat_hadamard_block(-1, 640, &b), QAT_OK);
    assert_int_equal(b, 128);
    assert_int_equal(qat_hadamard_block(-1, 96, &b), QAT_OK);
    assert_int_equal(b, 32);
    assert_int_equal(qat_hadamard_block(-1, 99, &b), QAT_OK);
    assert_int_equal(b, 0);
    assert_int_equal(qat_hadamard_block(0, 640, &b), QAT_OK);
    assert_int_equal(b, 0);
    assert_int_equal(qat_hadamard_block(64, 640, &b), QAT_OK);
    assert_int_equal(b, 64);
    assert_int_equal(qat_hadamard_block(256, 640, &b), QAT_EINPUT);
    assert_non_null(strstr(qat_errmsg(), "does not divide"));
    assert_int_equal(qat_hadamard_block(48, 96, &b), QAT_EINPUT);
    assert_int_equal(qat_hadamard_block(-3, 96, &b), QAT_EINPUT);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_naive_product),
        cmocka_unit_test(test_orthonormal_and_self_inverse),
        cmocka_unit_test(test_masked_row_matches_steps),
        cmocka_unit_test(test_block_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

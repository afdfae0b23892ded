/*
 * tests/ckpt_compare.h — bit-for-bit comparison of two runs, shared by the
 * tests that check `--resume` (test_train_e2e.c, test_init_e2e.c,
 * test_backward_e2e.c): every array of a checkpoint group, every row of a run.h5
 * series, and both for a whole run. Include after
 * cmocka.h, runlog/checkpoint.h and runlog/runlog.h.
 */
#ifndef QAT_TESTS_CKPT_COMPARE_H
#define QAT_TESTS_CKPT_COMPARE_H

#include <stdlib.h>
#include <string.h>

/* Every array under `group` of a has the same shape and bytes in b. */
static inline void compare_group(qat_ckpt_file *a, qat_ckpt_file *b, const char *group) {
    char **names;
    int n;
    assert_int_equal(qat_ckpt_list(a, group, &names, &n), 0);
    assert_true(n > 0);
    for (int i = 0; i < n; i++) {
        int nd;
        int64_t shape[QAT_CKPT_MAX_DIMS], cnt = 1;
        assert_int_equal(qat_ckpt_array_shape(a, names[i], &nd, shape), 0);
        for (int d = 0; d < nd; d++) cnt *= shape[d];
        float *x = malloc((size_t)cnt * 4), *y = malloc((size_t)cnt * 4);
        assert_int_equal(qat_ckpt_read_array(a, names[i], nd, shape, x), 0);
        assert_int_equal(qat_ckpt_read_array(b, names[i], nd, shape, y), 0);
        if (memcmp(x, y, (size_t)cnt * 4)) fail_msg("%s differs after resume", names[i]);
        free(x);
        free(y);
        free(names[i]);
    }
    free(names);
}

/* The same for a group a run may not have (compress/: formats without state, such as
 * a block format with the STE or trust estimator): absent in a means absent in b. */
static inline void compare_group_if_any(qat_ckpt_file *a, qat_ckpt_file *b, const char *group) {
    char **names;
    int n;
    if (qat_ckpt_list(a, group, &names, &n) != 0) {
        assert_int_not_equal(qat_ckpt_list(b, group, &names, &n), 0);
        return;
    }
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    compare_group(a, b, group);
}

/* The series (e.g. "train/loss") of run logs a and b: the same rows, bit for bit. */
static inline void compare_series(const char *a, const char *b, const char *series) {
    double *x, *y;
    int64_t nx, ny;
    assert_int_equal(qat_runlog_read_series(a, series, &x, &nx), 0);
    assert_int_equal(qat_runlog_read_series(b, series, &y, &ny), 0);
    assert_int_equal(nx, ny);
    assert_true(nx > 0);
    if (memcmp(x, y, (size_t)nx * sizeof(double))) fail_msg("%s differs after resume", series);
    free(x);
    free(y);
}

/* Two runs of one config, one of them stopped and resumed: every training and
 * evaluation row and every checkpoint array (params, optimizer, quantizer state)
 * the same, bit for bit. */
static inline void compare_runs(const char *runa, const char *runb, const char *cka, const char *ckb) {
    compare_series(runa, runb, "train/loss");
    compare_series(runa, runb, "train/grad_norm");
    compare_series(runa, runb, "train/step");
    compare_series(runa, runb, "eval/loss");
    qat_ckpt_file *fa, *fb;
    assert_int_equal(qat_ckpt_open(cka, &fa), 0);
    assert_int_equal(qat_ckpt_open(ckb, &fb), 0);
    compare_group(fa, fb, "params");
    compare_group(fa, fb, "optim");
    compare_group_if_any(fa, fb, "compress");
    qat_ckpt_close(fa);
    qat_ckpt_close(fb);
}

#endif

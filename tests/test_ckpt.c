/*
 * tests/test_ckpt.c — checkpoints (runlog/checkpoint.h): arrays, attributes and
 * state round-trip exactly; shape mismatches and missing arrays are named; a
 * stale half-written .tmp does not affect loading; a writer killed at a random
 * moment always leaves a complete, self-consistent checkpoint; a changed
 * character of the stored config is a checksum mismatch.
 */
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "testutil.h"

#include "core/error.h"
#include "runlog/checkpoint.h"

static char tmpdir[256];

static void tmp_path(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", tmpdir, name); }

static qat_ckpt_attrs test_attrs(void) {
    qat_ckpt_attrs a = {.config_yaml = "model: {dim: 4}\n", .layers = 2, .dim = 4, .heads = 2, .hidden = 32,
                        .vocab = 3, .seq_len = 16, .rope_theta = 10000, .norm_eps = 1e-5};
    strcpy(a.weight_format, "int4");
    strcpy(a.act_format, "fp32");
    strcpy(a.estimator, "trust");
    return a;
}

static void test_round_trip(void **state) {
    (void)state;
    char path[512];
    tmp_path(path, sizeof path, "ckpt.h5");
    float emb[12], m[12], scale[3];
    for (int i = 0; i < 12; i++) emb[i] = 0.5f * (float)i - 1.0f, m[i] = 1e-3f * (float)i;
    for (int i = 0; i < 3; i++) scale[i] = 0.25f + (float)i;
    qat_ckpt_array arr[] = {
        {"params/model.embed_tokens.weight", 2, {3, 4}, emb},
        {"optim/m/model.embed_tokens.weight", 2, {3, 4}, m},
        {"compress/model.layers.0.self_attn.q_proj.weight.scale", 1, {3}, scale},
    };
    qat_ckpt ck = {.attrs = test_attrs(), .arrays = arr, .n_arrays = 3};
    ck.state.step = 500;
    ck.state.tokens = 500 * 4096;
    ck.state.data_pos = 123456789012345;
    ck.state.rng[0] = 0xFFFFFFFFFFFFFFFFull;
    ck.state.rng[1] = 7;
    ck.state.n_rng = 2;
    assert_int_equal(qat_ckpt_state_set_int(&ck.state, "evals_done", 3), QAT_OK);
    assert_int_equal(qat_ckpt_state_set_real(&ck.state, "loss_ema", 2.718281828459045), QAT_OK);
    assert_int_equal(qat_ckpt_state_set_real(&ck.state, "loss_ema", 3.5), QAT_OK); /* replaces */
    assert_int_equal(qat_ckpt_state_set_int(&ck.state, "step", 1), QAT_EINPUT);     /* reserved */
    assert_int_equal(qat_ckpt_state_set_int(&ck.state, "loss_ema", 1), QAT_EINPUT); /* already a real */
    assert_int_equal(qat_ckpt_write(path, &ck), QAT_OK);

    qat_ckpt_file *f;
    assert_int_equal(qat_ckpt_open(path, &f), QAT_OK);
    qat_ckpt_attrs a;
    assert_int_equal(qat_ckpt_read_attrs(f, &a), QAT_OK);
    assert_int_equal(a.layers, 2);
    assert_int_equal(a.dim, 4);
    assert_int_equal(a.heads, 2);
    assert_int_equal(a.hidden, 32);
    assert_int_equal(a.vocab, 3);
    assert_int_equal(a.seq_len, 16);
    assert_true(a.rope_theta == 10000 && a.norm_eps == 1e-5);
    assert_string_equal(a.weight_format, "int4");
    assert_string_equal(a.act_format, "fp32");
    assert_string_equal(a.estimator, "trust");
    char *cfg = NULL;
    assert_int_equal(qat_ckpt_read_config(f, &cfg), 0);
    assert_string_equal(cfg, "model: {dim: 4}\n");
    free(cfg);

    qat_ckpt_state st;
    assert_int_equal(qat_ckpt_read_state(f, &st), QAT_OK);
    assert_int_equal(st.step, 500);
    assert_int_equal(st.tokens, 500 * 4096);
    assert_true(st.data_pos == 123456789012345);
    assert_int_equal(st.n_rng, 2);
    assert_true(st.rng[0] == 0xFFFFFFFFFFFFFFFFull && st.rng[1] == 7);
    int64_t iv;
    double dv;
    assert_int_equal(qat_ckpt_state_get_int(&st, "evals_done", &iv), QAT_OK);
    assert_int_equal(iv, 3);
    assert_int_equal(qat_ckpt_state_get_real(&st, "loss_ema", &dv), QAT_OK);
    assert_true(dv == 3.5);
    assert_int_equal(qat_ckpt_state_get_real(&st, "nope", &dv), QAT_EINPUT);

    float got[12];
    int64_t shape[2] = {3, 4};
    assert_int_equal(qat_ckpt_read_array(f, "params/model.embed_tokens.weight", 2, shape, got), QAT_OK);
    assert_memory_equal(got, emb, sizeof emb);
    assert_int_equal(qat_ckpt_read_array(f, "/optim/m/model.embed_tokens.weight", 2, shape, got), QAT_OK);
    assert_memory_equal(got, m, sizeof m);
    assert_true(qat_ckpt_has(f, "compress/model.layers.0.self_attn.q_proj.weight.scale"));
    assert_false(qat_ckpt_has(f, "optim/v/model.embed_tokens.weight"));

    /* Mismatch and absence name the file, the array and the shapes. */
    int64_t wrong[2] = {4, 3};
    char want[1024];
    assert_int_equal(qat_ckpt_read_array(f, "params/model.embed_tokens.weight", 2, wrong, got), QAT_EINPUT);
    snprintf(want, sizeof want, "%s: /params/model.embed_tokens.weight has shape [3, 4], expected [4, 3]", path);
    assert_string_equal(qat_errmsg(), want);
    assert_int_equal(qat_ckpt_read_array(f, "params/lm_head.weight", 2, shape, got), QAT_EINPUT);
    snprintf(want, sizeof want, "%s: no array /params/lm_head.weight (a checkpoint of another model or format?)", path);
    assert_string_equal(qat_errmsg(), want);

    char **names;
    int n;
    assert_int_equal(qat_ckpt_list(f, "optim", &names, &n), QAT_OK);
    assert_int_equal(n, 1);
    assert_string_equal(names[0], "optim/m/model.embed_tokens.weight");
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    qat_ckpt_close(f);

    /* h5py sees the same thing (optional). */
    if (access("/usr/bin/python3", X_OK) == 0 && system("/usr/bin/python3 -c 'import h5py' 2>/dev/null") == 0) {
        char cmd[2048];
        snprintf(cmd, sizeof cmd,
                 "/usr/bin/python3 -c \"import h5py; f = h5py.File('%s', 'r'); "
                 "w = f['params/model.embed_tokens.weight']; assert w.shape == (3, 4) and w.dtype == 'float32'; "
                 "assert w[2, 3] == 4.5 and f.attrs['dim'] == 4 and f['state/step'][()] == 500\"",
                 path);
        assert_int_equal(system(cmd), 0);
    }
    tmp_path(want, sizeof want, "absent.h5");
    assert_int_equal(qat_ckpt_open(want, &f), QAT_EINPUT);
    assert_non_null(strstr(qat_errmsg(), "absent.h5: cannot open: No such file or directory"));
}

/* A checkpoint whose arrays all hold `k`, and whose state says step k. */
enum { BIG = 1 << 20 };

static int write_k(const char *path, float *buf, int64_t k) {
    for (int i = 0; i < BIG; i++) buf[i] = (float)k;
    qat_ckpt_array arr[] = {{"params/a", 2, {1024, BIG / 1024}, buf}, {"params/b", 1, {BIG}, buf}};
    qat_ckpt ck = {.attrs = test_attrs(), .arrays = arr, .n_arrays = 2};
    ck.state.step = k;
    return qat_ckpt_write(path, &ck);
}

static int64_t check_consistent(const char *path, float *buf) {
    qat_ckpt_file *f;
    assert_int_equal(qat_ckpt_open(path, &f), QAT_OK);
    qat_ckpt_state st;
    assert_int_equal(qat_ckpt_read_state(f, &st), QAT_OK);
    int64_t sa[2] = {1024, BIG / 1024}, sb[1] = {BIG};
    assert_int_equal(qat_ckpt_read_array(f, "params/a", 2, sa, buf), QAT_OK);
    for (int i = 0; i < BIG; i++) assert_true(buf[i] == (float)st.step);
    assert_int_equal(qat_ckpt_read_array(f, "params/b", 1, sb, buf), QAT_OK);
    for (int i = 0; i < BIG; i++) assert_true(buf[i] == (float)st.step);
    qat_ckpt_close(f);
    return st.step;
}

static void test_stale_tmp_is_ignored(void **state) {
    (void)state;
    char path[512], tmp[600];
    tmp_path(path, sizeof path, "atomic.h5");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    float *buf = malloc(BIG * sizeof(float));
    assert_int_equal(write_k(path, buf, 1), QAT_OK);
    /* A kill during the next write leaves a truncated .tmp beside it. */
    assert_int_equal(write_k(tmp, buf, 2), QAT_OK); /* makes ckpt.h5.tmp.tmp -> renamed to .tmp */
    assert_int_equal(truncate(tmp, 3000), 0);
    assert_int_equal(check_consistent(path, buf), 1);
    /* The next write replaces both. */
    assert_int_equal(write_k(path, buf, 3), QAT_OK);
    assert_int_equal(access(tmp, F_OK), -1);
    assert_int_equal(check_consistent(path, buf), 3);
    free(buf);
}

static void test_kill_during_write(void **state) {
    (void)state;
    char path[512];
    tmp_path(path, sizeof path, "killed.h5");
    float *buf = malloc(BIG * sizeof(float));
    assert_int_equal(write_k(path, buf, 0), QAT_OK);
    for (int round = 0; round < 3; round++) {
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            for (int64_t k = 1;; k++)
                if (write_k(path, buf, k)) _exit(3);
        }
        struct timespec ts = {0, (long)(20 + 37 * round) * 1000000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status));
        check_consistent(path, buf);
    }
    free(buf);
}

static int setup(void **state) {
    (void)state;
    return qat_test_mkdtemp(tmpdir, sizeof tmpdir, "ckpt");
}

static int teardown(void **state) {
    (void)state;
    return qat_test_rmtree(tmpdir);
}

/* The config attribute carries its own CRC-32 (HDF5 keeps a string's characters
 * without a checksum): one character changed in the file is a checksum mismatch
 * (QAT_ERUNTIME), not a config that silently reads as another. */
static void test_config_checksum(void **state) {
    (void)state;
    char path[512];
    tmp_path(path, sizeof path, "cfg.h5");
    qat_ckpt ck = {.attrs = test_attrs()};
    ck.attrs.config_yaml = "compress:\n  weights:\n    format: \"fp32\"\n";
    assert_int_equal(qat_ckpt_write(path, &ck), QAT_OK);
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, fp);
    char *at = memmem(buf, n, "\"fp32\"", 6);
    assert_non_null(at);
    memcpy(at, "\"int2\"", 6);
    fseek(fp, 0, SEEK_SET);
    assert_int_equal(fwrite(buf, 1, n, fp), n);
    fclose(fp);
    qat_ckpt_file *f;
    assert_int_equal(qat_ckpt_open(path, &f), QAT_OK);
    char *yaml = NULL;
    assert_int_equal(qat_ckpt_read_config(f, &yaml), QAT_ERUNTIME);
    assert_null(yaml);
    assert_non_null(strstr(qat_errmsg(), "cfg.h5: attribute config: checksum mismatch (the file is damaged)"));
    qat_ckpt_close(f);
    qat_clear_error();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_config_checksum),
        cmocka_unit_test(test_stale_tmp_is_ignored),
        cmocka_unit_test(test_kill_during_write),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

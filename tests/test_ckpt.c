/*
 * tests/test_ckpt.c — checkpoints (runlog/checkpoint.h): arrays, attributes and
 * state round-trip exactly; shape mismatches and missing arrays are named; a
 * stale half-written .tmp does not affect loading; a writer killed at a random
 * moment always leaves a complete, self-consistent checkpoint; a changed
 * character of the stored config is a checksum mismatch; one damaged byte
 * anywhere is the same checkpoint or an error, never another checkpoint, a
 * crash or a hang; a checkpoint in the layout of older qat (variable-length
 * strings) still reads.
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
#include <hdf5.h>

#include "h5fuzz.h"
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

static void corrupt_text(const char *path, const char *from, const char *to) {
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, fp), k = strlen(from);
    char *at = memmem(buf, n, from, k);
    assert_non_null(at);
    memcpy(at, to, k);
    fseek(fp, 0, SEEK_SET);
    assert_int_equal(fwrite(buf, 1, n, fp), n);
    fclose(fp);
}

/* One character of the stored config changed is a checksum mismatch
 * (QAT_ERUNTIME), not a config that silently reads as another: the header's
 * checksum covers the (fixed-length) string; in the layout of older qat, whose
 * string characters sat in HDF5's unchecksummed global heap, the config's own
 * CRC-32 does. */
static void test_config_checksum(void **state) {
    (void)state;
    char path[512], old[512];
    tmp_path(path, sizeof path, "cfg.h5");
    tmp_path(old, sizeof old, "cfg-old.h5");
    qat_ckpt ck = {.attrs = test_attrs()};
    ck.attrs.config_yaml = "compress:\n  weights:\n    format: \"fp32\"\n";
    assert_int_equal(qat_ckpt_write(path, &ck), QAT_OK);
    h5fuzz_write_old(path, old, 1, NULL);
    corrupt_text(path, "\"fp32\"", "\"int2\"");
    qat_ckpt_file *f;
    int rc = qat_ckpt_open(path, &f);
    if (!rc) { /* the root's header, attributes and all, is read with the first of them */
        qat_ckpt_attrs a;
        rc = qat_ckpt_read_attrs(f, &a);
        qat_ckpt_close(f);
    }
    assert_int_equal(rc, QAT_ERUNTIME);
    printf("  a changed character of the config: %s\n", qat_errmsg());
    assert_non_null(strstr(qat_errmsg(), "cfg.h5: "));
    assert_non_null(strstr(qat_errmsg(), "checksum mismatch"));
    assert_non_null(strstr(qat_errmsg(), "(the file is damaged)"));

    corrupt_text(old, "\"fp32\"", "\"int2\"");
    assert_int_equal(qat_ckpt_open(old, &f), QAT_OK);
    char *yaml = NULL;
    assert_int_equal(qat_ckpt_read_config(f, &yaml), QAT_ERUNTIME);
    assert_null(yaml);
    assert_non_null(strstr(qat_errmsg(), "cfg-old.h5: attribute config: checksum mismatch (the file is damaged)"));
    qat_ckpt_close(f);
    qat_clear_error();
}

/* ---- damage ------------------------------------------------------------------ */

/* What a resume takes from a checkpoint: attributes, config, state, arrays. */
typedef struct {
    qat_ckpt_attrs a;
    char *config;
    qat_ckpt_state st;
    int n;
    char **names;
    float *data[8];
    int64_t len[8];
} ck_content;

static void ck_free(ck_content *c) {
    free(c->config);
    for (int i = 0; i < c->n; i++) {
        free(c->names[i]);
        if (i < 8) free(c->data[i]);
    }
    free(c->names);
}

static int ck_read(const char *path, ck_content *c) {
    memset(c, 0, sizeof *c);
    qat_ckpt_file *f;
    int rc = qat_ckpt_open(path, &f);
    if (rc) return rc;
    rc = qat_ckpt_read_attrs(f, &c->a);
    if (!rc) rc = qat_ckpt_read_config(f, &c->config);
    if (!rc) rc = qat_ckpt_read_state(f, &c->st);
    if (!rc) rc = qat_ckpt_list(f, "params", &c->names, &c->n);
    for (int i = 0; !rc && i < c->n && i < 8; i++) {
        int nd;
        int64_t shape[QAT_CKPT_MAX_DIMS];
        rc = qat_ckpt_array_shape(f, c->names[i], &nd, shape);
        c->len[i] = 1;
        for (int d = 0; !rc && d < nd; d++) c->len[i] *= shape[d];
        if (!rc && c->len[i] > 1 << 20) rc = QAT_EINPUT;
        if (!rc) c->data[i] = malloc((size_t)c->len[i] * sizeof(float) + 1);
        if (!rc) rc = qat_ckpt_read_array(f, c->names[i], nd, shape, c->data[i]);
    }
    qat_ckpt_close(f);
    return rc;
}

static int ck_same(const ck_content *x, const ck_content *y) {
    if (memcmp(&x->a, &y->a, sizeof x->a) || !x->config || !y->config || strcmp(x->config, y->config) ||
        memcmp(&x->st, &y->st, sizeof x->st) || x->n != y->n)
        return 0;
    for (int i = 0; i < x->n; i++)
        if (strcmp(x->names[i], y->names[i]) ||
            (i < 8 && (x->len[i] != y->len[i] || memcmp(x->data[i], y->data[i], (size_t)x->len[i] * sizeof(float)))))
            return 0;
    return 1;
}

static int ck_fuzz_read(const char *path, void *ctx) {
    ck_content got;
    int rc = ck_read(path, &got);
    int r = rc ? rc : ck_same(&got, ctx) ? H5FUZZ_SAME : H5FUZZ_WRONG;
    ck_free(&got);
    return r;
}

static void write_small_ckpt(const char *path) {
    static float emb[12], norm[4], q[16];
    for (int i = 0; i < 12; i++) emb[i] = 0.5f * (float)i - 1.0f;
    for (int i = 0; i < 4; i++) norm[i] = 1.0f + 0.125f * (float)i;
    for (int i = 0; i < 16; i++) q[i] = 0.01f * (float)(i - 8);
    qat_ckpt_array arr[] = {
        {"params/model.embed_tokens.weight", 2, {3, 4}, emb},
        {"params/model.norm.weight", 1, {4}, norm},
        {"params/model.layers.0.self_attn.q_proj.weight", 2, {4, 4}, q},
    };
    qat_ckpt ck = {.attrs = test_attrs(), .arrays = arr, .n_arrays = 3};
    ck.attrs.config_yaml = "model: {dim: 4, layers: 2}\ncompress:\n  weights: {format: int4}\n";
    strcpy(ck.attrs.precision, "bf16");
    ck.state.step = 7;
    ck.state.tokens = 7 * 64;
    ck.state.data_pos = 7;
    ck.state.n_rng = 0;
    assert_int_equal(qat_ckpt_state_set_int(&ck.state, "adam_t", 7), QAT_OK);
    assert_int_equal(qat_ckpt_state_set_real(&ck.state, "wall_s", 1.5), QAT_OK);
    assert_int_equal(qat_ckpt_write(path, &ck), QAT_OK);
}

/* Every byte HDF5 reads of a checkpoint is under a checksum (strings are
 * fixed-length): one damaged byte reads as the same checkpoint or as an error
 * naming the file. In the older layout, a damaged byte of the global heap
 * that held its strings crashed or hung HDF5; it is checked before it is read. */
static void test_damaged_bytes(void **state) {
    (void)state;
    char path[512], dst[512], old[512];
    tmp_path(path, sizeof path, "fz.h5");
    tmp_path(dst, sizeof dst, "fz-damaged.h5");
    tmp_path(old, sizeof old, "fz-old.h5");
    write_small_ckpt(path);
    assert_int_equal(h5fuzz_find_gcol(path, (size_t[1]){0}, (size_t[1]){0}, 1), 0); /* no global heap at all */
    ck_content want, got;
    assert_int_equal(ck_read(path, &want), QAT_OK);
    assert_int_equal(want.n, 3);
    h5fuzz_counts c;
    h5fuzz_run(path, dst, 0, SIZE_MAX, 1, 0, NULL, NULL, 0, 1, ck_fuzz_read, &want, &c);
    h5fuzz_print("ckpt.h5", &c);
    assert_int_equal(c.wrong, 0);
    assert_int_equal(c.crashed, 0);
    assert_int_equal(c.bad_message, 0);
    assert_true(c.damaged > 0 && c.same > 0);

    h5fuzz_write_old(path, old, 1, NULL);
    assert_int_equal(ck_read(old, &got), QAT_OK);
    assert_true(ck_same(&got, &want));
    ck_free(&got);
    size_t at[2], size[2];
    int ng = h5fuzz_find_gcol(old, at, size, 2);
    assert_true(ng >= 1);
    const size_t sf[1] = {at[0] + 512}, st[1] = {at[0] + size[0]};
    h5fuzz_quiet_wrong = 1;
    h5fuzz_run(old, dst, at[0], at[0] + size[0], 1, 0, sf, st, 1, 64, ck_fuzz_read, &want, &c);
    h5fuzz_quiet_wrong = 0;
    h5fuzz_print("ckpt.h5 in the old layout, its global heap", &c);
    assert_int_equal(c.crashed, 0);
    assert_int_equal(c.bad_message, 0);
    printf("    (%d flips read as other content: characters of strings without a CRC)\n", c.wrong);
    ck_free(&want);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_config_checksum),
        cmocka_unit_test(test_damaged_bytes),
        cmocka_unit_test(test_stale_tmp_is_ignored),
        cmocka_unit_test(test_kill_during_write),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/*
 * tests/test_runlog.c — run.h5 (runlog/runlog.h): the layout and end-of-run
 * record; a writer child killed with SIGKILL leaves every flushed row readable
 * (HDF5 C API, and h5py via Debian's /usr/bin/python3 when it is installed);
 * rows are readable while the writer is alive; a second writer is refused;
 * resume truncates to the checkpoint step and continues.
 */
#include <errno.h>
#include <fcntl.h>
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
#include <unistd.h>
#include <cmocka.h>
#include <hdf5.h>

#include "h5fuzz.h"
#include "testutil.h"

#include "core/error.h"
#include "runlog/runlog.h"

static char tmpdir[256];

/* Path of `name` in the test's temp dir; the buffer is reused by the next-but-one call. */
static const char *tmp_path(const char *name) {
    static char p[2][512];
    static int k;
    k ^= 1;
    snprintf(p[k], sizeof p[k], "%s/%s", tmpdir, name);
    return p[k];
}

/* The value every row i carries, so a reader can check any row it sees. */
static double loss_of(int64_t i) { return 10.0 / (1.0 + (double)i); }

static qat_runlog_attrs test_attrs(void) {
    qat_runlog_attrs a = {
        .name = "t-run", .config_yaml = "name: \"t-run\"\n", .seed = 42, .n_params = 12345,
        .n_params_total = 23456, .tokens_target = 1000000, .weight_format = "int4", .act_format = "fp32",
        .estimator = "trust", .gmse_w = 0.011543, .gmse_a = 0, .rho_pred = 0.82,
    };
    return a;
}

static int append_row(qat_runlog *rl, int64_t i, double shift) {
    return qat_runlog_train(rl, i, 4096 * i, loss_of(i) + shift, 1e-3, 0.5, 0.01 * (double)i);
}

/* h5py is optional: Debian's python3-h5py, never a pyenv python on PATH. */
static int have_h5py(void) {
    static int cached = -1;
    if (cached < 0)
        cached = access("/usr/bin/python3", X_OK) == 0 &&
                 system("/usr/bin/python3 -c 'import h5py' >/dev/null 2>&1") == 0;
    return cached;
}

/* Run an h5py check on `path`: mode "swmr" opens with swmr=True, "plain" without.
 * Asserts at least `min_rows` train rows, each with its expected step and loss
 * (rows with step > `resumed` carry loss + 100), and the given status. */
static int h5py_check(const char *path, const char *mode, long min_rows, long resumed, const char *status) {
    const char *script = tmp_path("check.py");
    FILE *f = fopen(script, "w");
    assert_non_null(f);
    fputs("import sys, h5py\n"
          "path, mode, min_rows, resumed, status = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]\n"
          "f = h5py.File(path, 'r', swmr=True) if mode == 'swmr' else h5py.File(path, 'r')\n"
          "def text(v):  # fixed-length strings read as bytes, variable-length ones (older files) as str\n"
          "    return v.decode() if isinstance(v, bytes) else v\n"
          "st = text(f.attrs['status'])\n"
          "assert st == status, (st, status)\n"
          "step, loss = f['train/step'][:], f['train/loss'][:]\n"
          "n = len(step)\n"
          "assert n >= min_rows, (n, min_rows)\n"
          "for i in range(n):\n"
          "    want = 10.0 / (1.0 + i) + (100.0 if resumed >= 0 and i > resumed else 0.0)\n"
          "    assert step[i] == i and loss[i] == want, (i, step[i], loss[i], want)\n"
          "assert text(f.attrs['name']) == 't-run' and f.attrs['n_params'] == 12345\n"
          "if status == 'completed':\n"
          "    assert abs(f['final/val_loss'][()] - 1.25) < 1e-12\n"
          "f.close()\n",
          f);
    fclose(f);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s %s %ld %ld %s", script, path, mode, min_rows, resumed, status);
    return system(cmd);
}

/* Every train row readable through the C API is complete and correct. */
static int64_t check_rows_c(const char *path, int64_t min_rows, int64_t resumed) {
    double *step, *loss;
    int64_t n, n2;
    assert_int_equal(qat_runlog_read_series(path, "train/step", &step, &n), QAT_OK);
    assert_int_equal(qat_runlog_read_series(path, "train/loss", &loss, &n2), QAT_OK);
    assert_true(n >= min_rows);
    assert_true(n2 >= n);
    for (int64_t i = 0; i < n; i++) {
        assert_true(step[i] == (double)i);
        assert_true(loss[i] == loss_of(i) + (resumed >= 0 && i > resumed ? 100.0 : 0.0));
    }
    free(step);
    free(loss);
    return n;
}

static void test_layout_and_finish(void **state) {
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s", tmp_path("basic.h5"));
    qat_runlog *rl;
    qat_runlog_attrs a = test_attrs();
    assert_int_equal(qat_runlog_create(path, &a, &rl), QAT_OK);
    for (int i = 0; i < 25; i++) assert_int_equal(append_row(rl, i, 0), QAT_OK);
    for (int i = 0; i < 3; i++) assert_int_equal(qat_runlog_eval(rl, 10 * i, 40960 * i, 2.0 - 0.1 * i), QAT_OK);
    assert_int_equal(qat_runlog_flush(rl), QAT_OK);
    for (int i = 25; i < 30; i++) assert_int_equal(append_row(rl, i, 0), QAT_OK);
    assert_int_equal(qat_runlog_rows(rl, 0), 30);
    qat_runlog_final fin = {.val_loss = 1.25, .train_loss = 1.5, .tokens = 4096 * 30, .steps = 30, .wall_s = 3.5};
    assert_int_equal(qat_runlog_finish(rl, QAT_RUN_COMPLETED, &fin), QAT_OK);
    assert_int_equal(qat_runlog_close(rl), QAT_OK);

    qat_runlog_summary s;
    assert_int_equal(qat_runlog_read_final(path, &s), QAT_OK);
    assert_string_equal(s.status, "completed");
    assert_string_equal(s.name, "t-run");
    assert_string_equal(s.weight_format, "int4");
    assert_string_equal(s.act_format, "fp32");
    assert_string_equal(s.estimator, "trust");
    assert_string_equal(s.qat_version, QAT_VERSION);
    hid_t h = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT); /* the CPU and kernels (core/cpu.h) */
    assert_true(h >= 0 && H5Aexists(h, "cpu") > 0);
    H5Fclose(h);
    assert_int_equal(s.seed, 42);
    assert_int_equal(s.n_params, 12345);
    assert_int_equal(s.n_params_total, 23456);
    assert_int_equal(s.tokens_target, 1000000);
    assert_true(s.gmse_w == 0.011543 && s.rho_pred == 0.82);
    assert_int_equal(s.has_final, 1);
    assert_true(s.final.val_loss == 1.25 && s.final.train_loss == 1.5 && s.final.wall_s == 3.5);
    assert_int_equal(s.final.tokens, 4096 * 30);
    assert_int_equal(s.final.steps, 30);
    assert_int_equal(s.n_train, 30);
    assert_int_equal(s.n_eval, 3);
    assert_int_equal(s.live, 0);
    check_rows_c(path, 30, -1);
    double *ev;
    int64_t n;
    assert_int_equal(qat_runlog_read_series(path, "eval/loss", &ev, &n), QAT_OK);
    assert_int_equal(n, 3);
    assert_true(ev[2] == 2.0 - 0.2);
    free(ev);
    char *cfg = qat_runlog_read_config(path);
    assert_non_null(cfg);
    assert_string_equal(cfg, "name: \"t-run\"\n");
    free(cfg);

    assert_int_equal(qat_runlog_read_series(path, "train/nope", &ev, &n), QAT_EINPUT);
    assert_non_null(strstr(qat_errmsg(), "no series /train/nope"));
    assert_int_equal(qat_runlog_read_final(tmp_path("missing.h5"), &s), QAT_EINPUT);
    assert_non_null(strstr(qat_errmsg(), "missing.h5: cannot open: No such file"));

    if (have_h5py()) {
        assert_int_equal(h5py_check(path, "plain", 30, -1, "completed"), 0);
        assert_int_equal(h5py_check(path, "swmr", 30, -1, "completed"), 0);
    } else {
        fprintf(stderr, "note: /usr/bin/python3 with h5py not found; h5py checks skipped\n");
    }
}

/* Child: append a row every 2 ms, flush every 10 rows and report the number
 * of flushed rows on `fd`; never finishes (the parent kills it). */
static void writer_child(const char *path, int fd) {
    qat_runlog *rl;
    qat_runlog_attrs a = test_attrs();
    if (qat_runlog_create(path, &a, &rl)) _exit(3);
    for (int64_t i = 0;; i++) {
        if (append_row(rl, i, 0)) _exit(4);
        if ((i + 1) % 10 == 0) {
            if (qat_runlog_flush(rl)) _exit(5);
            int64_t n = i + 1;
            if (write(fd, &n, sizeof n) != sizeof n) _exit(6);
        }
        usleep(2000);
    }
}

static int64_t read_report(int fd) {
    int64_t n;
    ssize_t got = read(fd, &n, sizeof n);
    return got == sizeof n ? n : -1;
}

static void test_sigkill_and_resume(void **state) {
    (void)state;
    const char *path = tmp_path("killed.h5");
    char spath[512];
    snprintf(spath, sizeof spath, "%s", path);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        writer_child(spath, fds[1]);
    }
    close(fds[1]);

    /* Alive: wait for 3 flushes, then read while it keeps writing. */
    int64_t flushed = 0;
    while (flushed < 30) {
        int64_t r = read_report(fds[0]);
        assert_true(r > 0);
        flushed = r;
    }
    assert_int_equal(qat_runlog_is_live(spath), 1);
    check_rows_c(spath, flushed, -1);
    qat_runlog_summary s;
    assert_int_equal(qat_runlog_read_final(spath, &s), QAT_OK);
    assert_string_equal(s.status, "running");
    assert_int_equal(s.live, 1);
    assert_int_equal(s.has_final, 0);
    if (have_h5py()) assert_int_equal(h5py_check(spath, "swmr", flushed, -1, "running"), 0);
    /* A second writer (say, a resume racing the live run) is refused. */
    qat_runlog *other;
    qat_runlog_attrs a = test_attrs();
    assert_int_equal(qat_runlog_create(spath, &a, &other), QAT_ERUNTIME);
    assert_non_null(strstr(qat_errmsg(), "another process"));
    assert_int_equal(qat_runlog_resume(spath, 5, &other), QAT_ERUNTIME);

    /* Let it flush a few more times, then kill it between or during flushes. */
    while (flushed < 60) flushed = read_report(fds[0]);
    kill(pid, SIGKILL);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    for (int64_t r; (r = read_report(fds[0])) > 0;) flushed = r; /* reports sent before the kill */
    close(fds[0]);

    /* Dead: every flushed row is there, status still "running", no /final. */
    assert_int_equal(qat_runlog_is_live(spath), 0);
    int64_t n = check_rows_c(spath, flushed, -1);
    assert_int_equal(qat_runlog_read_final(spath, &s), QAT_OK);
    assert_string_equal(s.status, "running");
    assert_int_equal(s.live, 0);
    assert_int_equal(s.has_final, 0);
    assert_int_equal(s.n_train, n);
    if (have_h5py()) assert_int_equal(h5py_check(spath, "swmr", flushed, -1, "running"), 0);

    /* Resume from step 35: rows 36.. are dropped, new rows carry loss + 100. */
    qat_runlog *rl;
    assert_int_equal(qat_runlog_resume(spath, 35, &rl), QAT_OK);
    assert_int_equal(qat_runlog_rows(rl, 0), 36);
    for (int64_t i = 36; i < 80; i++) assert_int_equal(append_row(rl, i, 100.0), QAT_OK);
    assert_int_equal(qat_runlog_eval(rl, 79, 4096 * 79, 1.0), QAT_OK);
    qat_runlog_final fin = {.val_loss = 1.25, .train_loss = 1.5, .tokens = 4096 * 80, .steps = 80, .wall_s = 9};
    assert_int_equal(qat_runlog_finish(rl, QAT_RUN_COMPLETED, &fin), QAT_OK);
    assert_int_equal(qat_runlog_close(rl), QAT_OK);
    assert_int_equal(check_rows_c(spath, 80, 35), 80);
    assert_int_equal(qat_runlog_read_final(spath, &s), QAT_OK);
    assert_string_equal(s.status, "completed");
    assert_int_equal(s.n_train, 80);
    assert_int_equal(s.n_eval, 1);
    assert_int_equal(s.final.steps, 80);
    /* After a finish, a plain (non-SWMR) open works too. */
    if (have_h5py()) assert_int_equal(h5py_check(spath, "plain", 80, 35, "completed"), 0);

    /* Resuming a finished run reopens it: /final goes, status is running again. */
    assert_int_equal(qat_runlog_resume(spath, 79, &rl), QAT_OK);
    assert_int_equal(qat_runlog_close(rl), QAT_OK);
    assert_int_equal(qat_runlog_read_final(spath, &s), QAT_OK);
    assert_string_equal(s.status, "running");
    assert_int_equal(s.has_final, 0);
    assert_int_equal(s.n_train, 80);

    assert_int_equal(qat_runlog_resume(tmp_path("none.h5"), 0, &rl), QAT_EINPUT);
}

/* A row buffer that fills up flushes by itself; nothing is lost. */
static void test_many_rows(void **state) {
    (void)state;
    const char *path = tmp_path("many.h5");
    char spath[512];
    snprintf(spath, sizeof spath, "%s", path);
    qat_runlog *rl;
    qat_runlog_attrs a = test_attrs();
    assert_int_equal(qat_runlog_create(spath, &a, &rl), QAT_OK);
    for (int64_t i = 0; i < 2500; i++) assert_int_equal(append_row(rl, i, 0), QAT_OK);
    assert_int_equal(qat_runlog_finish(rl, QAT_RUN_DIVERGED, NULL), QAT_OK);
    assert_int_equal(qat_runlog_close(rl), QAT_OK);
    assert_int_equal(check_rows_c(spath, 2500, -1), 2500);
    qat_runlog_summary s;
    assert_int_equal(qat_runlog_read_final(spath, &s), QAT_OK);
    assert_string_equal(s.status, "diverged");
    assert_int_equal(s.has_final, 0);
    assert_int_equal(qat_run_status_parse("diverged"), QAT_RUN_DIVERGED);
    assert_int_equal(qat_run_status_parse("bogus"), -1);
}

/* ---- damage ------------------------------------------------------------------ */

/* What the readers of run.h5 take from it: the summary, the config, two series. */
typedef struct {
    qat_runlog_summary s;
    char *config;
    double *loss, *eval;
    int64_t n_loss, n_eval;
} rl_content;

static void rl_free(rl_content *c) {
    free(c->config);
    free(c->loss);
    free(c->eval);
}

static int rl_read(const char *path, rl_content *c) {
    memset(c, 0, sizeof *c);
    int rc = qat_runlog_read_final(path, &c->s);
    if (!rc) rc = qat_runlog_config(path, &c->config);
    if (!rc) rc = qat_runlog_read_series(path, "train/loss", &c->loss, &c->n_loss);
    if (!rc) rc = qat_runlog_read_series(path, "eval/loss", &c->eval, &c->n_eval);
    return rc;
}

static int rl_same(const rl_content *a, const rl_content *b) {
    return !memcmp(&a->s, &b->s, sizeof a->s) && a->config && b->config && !strcmp(a->config, b->config) &&
           a->n_loss == b->n_loss && a->n_eval == b->n_eval &&
           !memcmp(a->loss, b->loss, (size_t)a->n_loss * sizeof *a->loss) &&
           !memcmp(a->eval, b->eval, (size_t)a->n_eval * sizeof *a->eval);
}

static int rl_fuzz_read(const char *path, void *ctx) {
    rl_content got;
    int rc = rl_read(path, &got);
    int r = rc ? rc : rl_same(&got, ctx) ? H5FUZZ_SAME : H5FUZZ_WRONG;
    rl_free(&got);
    return r;
}

/* A finished run.h5 of 30 train rows and 3 evaluations. */
static void write_small_log(const char *path) {
    qat_runlog *rl;
    qat_runlog_attrs a = test_attrs();
    a.config_yaml = "name: \"t-run\"\nmodel: {preset: s1}\ntrain: {tokens: 122880, lr: 0.003}\n";
    assert_int_equal(qat_runlog_create(path, &a, &rl), QAT_OK);
    for (int i = 0; i < 30; i++) assert_int_equal(append_row(rl, i, 0), QAT_OK);
    for (int i = 0; i < 3; i++) assert_int_equal(qat_runlog_eval(rl, 10 * i, 40960 * i, 2.0 - 0.1 * i), QAT_OK);
    qat_runlog_final fin = {.val_loss = 1.25, .train_loss = 1.5, .tokens = 4096 * 30, .steps = 30, .wall_s = 3.5};
    assert_int_equal(qat_runlog_finish(rl, QAT_RUN_COMPLETED, &fin), QAT_OK);
    assert_int_equal(qat_runlog_close(rl), QAT_OK);
}

/* Strings are fixed-length, so every byte HDF5 reads of a run.h5 is under a
 * checksum: one damaged byte anywhere reads as the same log (a byte HDF5 never
 * reads) or as an error naming the file, never as another log, a crash or a
 * hang. Variable-length strings, their characters in HDF5's unchecksummed
 * global heap, made HDF5 crash or loop for ever on a damaged byte there. */
static void test_damaged_bytes(void **state) {
    (void)state;
    char path[512], dst[512];
    snprintf(path, sizeof path, "%s", tmp_path("fuzz.h5"));
    snprintf(dst, sizeof dst, "%s", tmp_path("fuzz-damaged.h5"));
    write_small_log(path);
    assert_int_equal(h5fuzz_find_gcol(path, (size_t[1]){0}, (size_t[1]){0}, 1), 0); /* no global heap at all */
    rl_content want;
    assert_int_equal(rl_read(path, &want), QAT_OK);
    h5fuzz_chunks ch;
    h5fuzz_find_chunks(path, &ch);
    h5fuzz_counts c;
    /* every byte outside the series' chunks, every 16th inside them */
    h5fuzz_run(path, dst, 0, SIZE_MAX, 1, 0, ch.from, ch.to, ch.n, 16, rl_fuzz_read, &want, &c);
    h5fuzz_print("run.h5", &c);
    assert_int_equal(c.wrong, 0);
    assert_int_equal(c.crashed, 0);
    assert_int_equal(c.bad_message, 0);
    assert_true(c.damaged > 0 && c.same > 0);
    rl_free(&want);
}

/* A run.h5 written before strings were fixed-length (variable-length, in the
 * global heap; root attributes in HDF5's dense storage) reads as before, with
 * and without the config's CRC, resumes, and a damaged byte of its heap never
 * crashes or hangs the reader: the heap is checked before HDF5 reads it. */
static void test_old_layout(void **state) {
    (void)state;
    char path[512], old[512], dst[512];
    snprintf(path, sizeof path, "%s", tmp_path("new.h5"));
    snprintf(old, sizeof old, "%s", tmp_path("old.h5"));
    snprintf(dst, sizeof dst, "%s", tmp_path("old-damaged.h5"));
    write_small_log(path);
    rl_content want, got;
    assert_int_equal(rl_read(path, &want), QAT_OK);
    for (int crc = 0; crc < 2; crc++) {
        h5fuzz_write_old(path, old, crc, NULL);
        hid_t f = H5Fopen(old, H5F_ACC_RDONLY, H5P_DEFAULT), a = H5Aopen(f, "status", H5P_DEFAULT), t = H5Aget_type(a);
        assert_true(H5Tis_variable_str(t) > 0); /* the old layout indeed */
        H5Tclose(t);
        H5Aclose(a);
        H5Fclose(f);
        assert_int_equal(rl_read(old, &got), QAT_OK);
        assert_true(rl_same(&got, &want));
        rl_free(&got);
    }
    /* every byte of its heap collections (the used part; the free rest every 64th);
     * a crash or a hang (alarm) fails the test */
    size_t at[4], size[4];
    int ng = h5fuzz_find_gcol(old, at, size, 4);
    assert_true(ng >= 1);
    for (int k = 0; k < ng; k++) {
        h5fuzz_counts c;
        size_t used = size[k] < 1024 ? size[k] : 1024;
        const size_t sf[1] = {at[k] + used}, st[1] = {at[k] + size[k]};
        h5fuzz_quiet_wrong = 1;
        h5fuzz_run(old, dst, at[k], at[k] + size[k], 1, 0, sf, st, 1, 64, rl_fuzz_read, &want, &c);
        h5fuzz_quiet_wrong = 0;
        h5fuzz_print("run.h5 in the old layout, its global heap", &c);
        assert_int_equal(c.crashed, 0);
        assert_int_equal(c.bad_message, 0);
        /* its strings have no checksum but the config's: a damaged character
         * of another string is read as it is (docs/files.md) */
        printf("    (%d flips read as other content: characters of strings without a CRC)\n", c.wrong);
    }
    /* resumed: the rewritten attributes are fixed-length, the others stay */
    qat_runlog *rl;
    assert_int_equal(qat_runlog_resume(old, 29, &rl), QAT_OK);
    assert_int_equal(append_row(rl, 30, 0), QAT_OK);
    qat_runlog_final fin = {.val_loss = 1.25, .train_loss = 1.5, .tokens = 4096 * 31, .steps = 31, .wall_s = 3.5};
    assert_int_equal(qat_runlog_finish(rl, QAT_RUN_COMPLETED, &fin), QAT_OK);
    assert_int_equal(qat_runlog_close(rl), QAT_OK);
    assert_int_equal(rl_read(old, &got), QAT_OK);
    assert_string_equal(got.s.status, "completed");
    assert_string_equal(got.s.name, "t-run");
    assert_string_equal(got.config, want.config);
    assert_int_equal(got.n_loss, 31);
    rl_free(&got);
    rl_free(&want);
}

static int setup(void **state) {
    (void)state;
    return qat_test_mkdtemp(tmpdir, sizeof tmpdir, "runlog");
}

static int teardown(void **state) {
    (void)state;
    return qat_test_rmtree(tmpdir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_and_finish),
        cmocka_unit_test(test_sigkill_and_resume),
        cmocka_unit_test(test_many_rows),
        cmocka_unit_test(test_damaged_bytes),
        cmocka_unit_test(test_old_layout),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

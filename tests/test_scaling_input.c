/*
 * tests/test_scaling_input.c — where runs come from, and what happens to bad
 * input: CSV layouts (plain, headed, Epoch's), malformed CSV reported at
 * file:line:col with exit 2, run logs written here with the HDF5 C API
 * (completed ones read, unfinished ones skipped with a warning that names the
 * file), directory search, --drop-highest, --exclude, and the `qat fit`
 * command end to end (exit codes, --json keys, --csv, --out).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include <hdf5.h>

#include "core/error.h"
#include "scaling/fit.h"
#include "scaling/fit_cli.h"
#include "runlog/runlog.h"
#include "scaling/inputs.h"
#include "testutil.h"

static char dir[256];

static void path_in(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

static void write_file(const char *name, const char *text) {
    char p[512];
    path_in(p, sizeof p, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **s) {
    (void)s;
    snprintf(dir, sizeof dir, "/tmp/qat_test_scaling_input_XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **s) {
    (void)s;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_csv_layouts(void **s) {
    (void)s;
    write_file("plain.csv", "1e6,2e7,3.5\n2e6,4e7,3.2,int4\n# comment\n\n4e6,8e7,3.0,int4,int8\n");
    write_file("headed.csv", "loss, act_format ,N,D,format\n3.5,fp32,1e6,2e7,int2\n");
    write_file("epoch.csv", "x,y,color,Model Size,Training FLOP,hex_color,loss\n"
                            "1,2,#fff,1000000,6e12,#fff,3.1\n");
    qat_fit_runs rs = {0};
    char p[512];
    path_in(p, sizeof p, "plain.csv");
    assert_int_equal(qat_fit_read_csv(p, &rs), QAT_OK);
    assert_int_equal(rs.n, 3);
    assert_string_equal(rs.run[0].wfmt, "fp32");
    assert_string_equal(rs.run[1].wfmt, "int4");
    assert_string_equal(rs.run[1].afmt, "fp32");
    assert_string_equal(rs.run[2].afmt, "int8");
    assert_non_null(strstr(rs.run[2].origin, "plain.csv:5"));
    path_in(p, sizeof p, "headed.csv");
    assert_int_equal(qat_fit_read_csv(p, &rs), QAT_OK);
    assert_true(rs.run[3].N == 1e6 && rs.run[3].D == 2e7 && rs.run[3].loss == 3.5);
    assert_string_equal(rs.run[3].wfmt, "int2");
    path_in(p, sizeof p, "epoch.csv");
    assert_int_equal(qat_fit_read_csv(p, &rs), QAT_OK);
    assert_true(fabs(rs.run[4].D - 6e12 / (6 * 1e6)) < 1e-6); /* D = FLOP/(6N) */
    qat_fit_drop_highest(&rs, 2);
    assert_int_equal(rs.n, 3);
    for (int i = 0; i < rs.n; i++) assert_true(rs.run[i].loss < 3.5);
    assert_int_equal(qat_fit_exclude(&rs, "int4"), 2); /* weight format int4 (plain rows 2 and 3) */
    assert_int_equal(rs.n, 1);
    qat_fit_runs_free(&rs);

    /* A spreadsheet's UTF-8 byte-order mark before the header ("header has no column for N"). */
    write_file("bom.csv", "\xEF\xBB\xBFN,D,loss,format\n1e6,2e7,3.5,int4\n");
    path_in(p, sizeof p, "bom.csv");
    assert_int_equal(qat_fit_read_csv(p, &rs), QAT_OK);
    assert_int_equal(rs.n, 1);
    assert_true(rs.run[0].N == 1e6 && rs.run[0].D == 2e7 && rs.run[0].loss == 3.5);
    assert_string_equal(rs.run[0].wfmt, "int4");
    qat_fit_runs_free(&rs);
}

static void expect_csv_error(const char *text, const char *where) {
    write_file("bad.csv", text);
    qat_fit_runs rs = {0};
    char p[512];
    path_in(p, sizeof p, "bad.csv");
    assert_int_equal(qat_fit_read_csv(p, &rs), QAT_EINPUT);
    if (!strstr(qat_errmsg(), where)) fprintf(stderr, "message: %s (expected %s)\n", qat_errmsg(), where);
    assert_non_null(strstr(qat_errmsg(), where));
    qat_fit_runs_free(&rs);
}

static void test_csv_errors(void **s) {
    (void)s;
    expect_csv_error("1e6,2e7,3.5\n1e6,abc,3.2\n", "bad.csv:2:5:");
    expect_csv_error("N,D,loss\n1e6,2e7\n", "bad.csv:2:");
    expect_csv_error("1e6,2e7,-1\n", "bad.csv:1:9:");
    expect_csv_error("a,b,c\n1,2,3\n", "bad.csv:1:");            /* header without N */
    expect_csv_error("N,D,loss\n", "no data rows");
    expect_csv_error("1e6,2e7,3.5,in t4\n", "bad.csv:1:13:");     /* a format with a space */
    /* the format cells pass the format table for every law (the reader is the same):
     * INT4 would otherwise be a pair of its own beside int4 under --law decoupled */
    expect_csv_error("1e6,2e7,3.5,INT4\n", "bad.csv:1:13: format 'INT4' is not a format string");
    expect_csv_error("1e6,2e7,3.5,int4,bogus\n", "bad.csv:1:18: format 'bogus' is not a format string");
    /* an activation format the trainer refuses on activations (weights-only
     * variants) names no run; as weight formats they stand */
    expect_csv_error("1e6,2e7,3.5,nvfp4@2d,nvfp4@2d\n", "bad.csv:1:22: act_format 'nvfp4@2d': @2d (16x16 tiles) "
                     "applies to weights only, expected an activation format without it");
    expect_csv_error("1e6,2e7,3.5,fp32,aq1x8g8\n", "bad.csv:1:18: act_format 'aq1x8g8': learned additive codebooks");
    write_file("w2d.csv", "1e6,2e7,3.5,nvfp4@2d,nvfp4\n1e6,2e7,3.5,aq1x8g8,noise(aq1x8g8)\n");
    char w2d[512];
    path_in(w2d, sizeof w2d, "w2d.csv");
    qat_fit_runs ok = {0};
    assert_int_equal(qat_fit_read_csv(w2d, &ok), QAT_OK);
    assert_string_equal(ok.run[0].wfmt, "nvfp4@2d");
    qat_fit_runs_free(&ok);
    expect_csv_error("0x186a0,2e7,3.5\n", "bad.csv:1:1: expected a positive number for N");    /* hex */
    expect_csv_error("# runs\n\nN,D,loss\n1e6,2e7,3.5,int4,int4,fp32,7\n", "bad.csv:4:13: 7 fields, but the header (line 3)");
}

/* A format cell is kept in its canonical spelling, as a run log stores it, so two
 * spellings of one format are one pair. */
static void test_csv_canonical_formats(void **s) {
    (void)s;
    char p[512];
    path_in(p, sizeof p, "canon.csv");
    FILE *f = fopen(p, "w");
    fputs("N,D,loss,format,act_format\n1e6,2e7,3.5,sp50.0,int4,\n1e6,2e7,3.4,sp50,\n", f); /* a trailing comma */
    fclose(f);
    qat_fit_runs rs = {0};
    assert_int_equal(qat_fit_read_csv(p, &rs), QAT_OK);
    assert_int_equal(rs.n, 2);
    assert_string_equal(rs.run[0].wfmt, rs.run[1].wfmt);
    assert_string_equal(rs.run[0].afmt, "int4");
    assert_string_equal(rs.run[1].afmt, "fp32");
    qat_fit_runs_free(&rs);
}

/* A run log written by qat's own writer (runlog/): `status` as given, /final
 * only when with_final (a run killed before the end has none). */
static void write_runlog_from(const char *sub, const char *status, double n_params, const char *wf, double val_loss,
                              double tokens, int with_final, const char *init_from) {
    char p[512];
    path_in(p, sizeof p, sub);
    mkdir(p, 0755);
    strcat(p, "/run.h5");
    qat_runlog_attrs at = {.name = sub, .config_yaml = "", .seed = 0, .n_params = (int64_t)n_params,
                           .n_params_total = (int64_t)n_params, .tokens_target = (int64_t)tokens,
                           .weight_format = wf, .act_format = "fp32", .estimator = "trust",
                           .init_from = init_from, .init_hash = init_from ? "sha256:00" : NULL,
                           .init_state = init_from ? "projected" : NULL, .init_ptq_loss = 3.5, .init_source_loss = 3.4};
    qat_runlog *rl;
    assert_int_equal(qat_runlog_create(p, &at, &rl), QAT_OK);
    assert_int_equal(qat_runlog_train(rl, 0, 1, 5.0, 1e-3, 1.0, 0.1), QAT_OK);
    int st = qat_run_status_parse(status);
    assert_true(st >= 0);
    qat_runlog_final fin = {val_loss, val_loss, (int64_t)tokens, 1, 1.0};
    if (st != QAT_RUN_RUNNING) assert_int_equal(qat_runlog_finish(rl, (qat_run_status)st, with_final ? &fin : NULL), QAT_OK);
    assert_int_equal(qat_runlog_close(rl), QAT_OK);
}

static void write_runlog(const char *sub, const char *status, double n_params, const char *wf, double val_loss,
                         double tokens, int with_final) {
    write_runlog_from(sub, status, n_params, wf, val_loss, tokens, with_final, NULL);
}

/* A completed run log with a stored config. */
static void write_runlog_cfg(const char *sub, double n_params, double val_loss, double tokens, const char *yaml) {
    char p[512];
    path_in(p, sizeof p, sub);
    mkdir(p, 0755);
    strcat(p, "/run.h5");
    qat_runlog_attrs at = {.name = sub, .config_yaml = yaml, .seed = 3, .n_params = (int64_t)n_params,
                           .n_params_total = (int64_t)n_params, .tokens_target = (int64_t)tokens,
                           .weight_format = "fp32", .act_format = "fp32", .estimator = "trust"};
    qat_runlog *rl;
    assert_int_equal(qat_runlog_create(p, &at, &rl), QAT_OK);
    assert_int_equal(qat_runlog_train(rl, 0, 1, 5.0, 1e-3, 1.0, 0.1), QAT_OK);
    qat_runlog_final fin = {val_loss, val_loss, (int64_t)tokens, 1, 1.0};
    assert_int_equal(qat_runlog_finish(rl, QAT_RUN_COMPLETED, &fin), QAT_OK);
    assert_int_equal(qat_runlog_close(rl), QAT_OK);
}

static void copy_file(const char *from, const char *to) {
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    assert_non_null(a);
    assert_non_null(b);
    char buf[1 << 14];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0) assert_int_equal(fwrite(buf, 1, n, b), n);
    fclose(a);
    fclose(b);
}

/* qat_fit_read_inputs on the directory `sub`: the runs into rs, the number
 * skipped returned, the warnings printed into warnings. */
static int read_dir(const char *sub, qat_fit_runs *rs, char *warnings, size_t cap) {
    char p[512], wpath[512];
    path_in(p, sizeof p, sub);
    path_in(wpath, sizeof wpath, "warnings.txt");
    FILE *warn = fopen(wpath, "w+");
    int skipped = 0;
    char *paths[1] = {p};
    assert_int_equal(qat_fit_read_inputs(paths, 1, rs, &skipped, warn), QAT_OK);
    rewind(warn);
    size_t len = fread(warnings, 1, cap - 1, warn);
    warnings[len] = 0;
    fclose(warn);
    return skipped;
}

static void test_runlogs(void **s) {
    (void)s;
    write_runlog("runs", "completed", 0, "fp32", 0, 0, 0); /* placeholder dir */
    write_runlog("runs/a", "completed", 1e6, "int4", 3.25, 2e7, 1);
    write_runlog("runs/b", "running", 2e6, "fp32", 3.0, 4e7, 1);
    write_runlog("runs/c", "completed", 4e6, "fp32", 0, 0, 0); /* no /final: killed before the end */
    char d[512];
    path_in(d, sizeof d, "runs/d");
    mkdir(d, 0755);
    write_runlog("runs/d/deeper", "completed", 8e6, "fp32", 2.9, 1.6e8, 1);
    qat_fit_runs rs = {0};
    char p[512], buf[4096];
    int skipped = read_dir("runs", &rs, buf, sizeof buf);
    char *paths[1] = {p};
    assert_int_equal(rs.n, 2);
    assert_int_equal(skipped, 3); /* running, no /final, and the placeholder without /final */
    assert_true(rs.run[0].N == 1e6 && rs.run[0].D == 2e7 && rs.run[0].loss == 3.25);
    assert_string_equal(rs.run[0].wfmt, "int4");
    assert_true(rs.run[1].N == 8e6);
    assert_non_null(strstr(buf, "runs/b/run.h5: skipped: status is 'running'"));
    assert_non_null(strstr(buf, "runs/c/run.h5: skipped: no positive /final/val_loss"));
    qat_fit_runs_free(&rs);

    /* A run started from a checkpoint (qat train --init: its config says
     * train.init "" and only run.h5's init_from tells) is no point (N, D): D
     * would be the fine-tuning tokens alone. Left out with a warning naming it,
     * and one line saying how many and why; it was once fitted silently. */
    write_runlog("ft", "completed", 0, "fp32", 0, 0, 0); /* placeholder dir */
    write_runlog("ft/scratch", "completed", 1e6, "fp32", 3.1, 2e7, 1);
    write_runlog_from("ft/tuned1", "completed", 1e6, "int4", 3.0, 1e5, 1, "/abs/src/ckpt.h5");
    write_runlog_from("ft/tuned2", "completed", 2e6, "int4", 2.9, 1e5, 1, "/abs/src2/ckpt.h5");
    skipped = read_dir("ft", &rs, buf, sizeof buf);
    assert_int_equal(rs.n, 1);
    assert_true(rs.run[0].N == 1e6 && rs.run[0].D == 2e7);
    assert_int_equal(skipped, 3); /* the placeholder and the two fine-tuned runs */
    assert_non_null(strstr(buf, "ft/tuned1/run.h5: skipped: started from a checkpoint (init_from /abs/src/ckpt.h5)"));
    assert_non_null(strstr(buf, "ft/tuned2/run.h5: skipped: started from a checkpoint"));
    assert_non_null(strstr(buf, "qat: warning: 2 runs started from a checkpoint (qat train --init or train.init; "
                                "run.h5 attribute init_from) left out"));
    assert_non_null(strstr(buf, "counts the fine-tuning tokens only"));
    qat_fit_runs_free(&rs);
    /* the one-file reader skips it too */
    path_in(p, sizeof p, "ft/tuned1/run.h5");
    skipped = 0;
    assert_int_equal(qat_fit_read_runlog(p, &rs, &skipped, NULL), QAT_OK);
    assert_int_equal(rs.n, 0);
    assert_int_equal(skipped, 1);
    qat_fit_runs_free(&rs);

    /* A directory with no run logs and a missing file are input errors. */
    path_in(p, sizeof p, "empty");
    mkdir(p, 0755);
    assert_int_equal(qat_fit_read_inputs(paths, 1, &rs, &skipped, NULL), QAT_EINPUT);
    assert_non_null(strstr(qat_errmsg(), "no run.h5"));
    path_in(p, sizeof p, "missing.csv");
    assert_int_equal(qat_fit_read_inputs(paths, 1, &rs, &skipped, NULL), QAT_EINPUT);
    /* a completed run log's values pass the CSV's range check too */
    write_runlog("huge", "completed", 1e6, "fp32", 5000, 2e7, 1);
    path_in(p, sizeof p, "huge/run.h5");
    assert_int_equal(qat_fit_read_runlog(p, &rs, NULL, NULL), QAT_EINPUT);
    assert_non_null(strstr(qat_errmsg(), "huge/run.h5: loss (/final/val_loss) 5000 is out of range"));
    assert_int_equal(rs.n, 0);
    qat_fit_runs_free(&rs);

    /* A file read twice would count its runs twice: a directory and one of its
     * run logs, the same directory twice, a CSV and a link to it are refused,
     * naming both paths. */
    char a[512], b[512], c[512];
    char *two[2] = {a, b};
    path_in(a, sizeof a, "runs");
    path_in(b, sizeof b, "runs/a/run.h5");
    assert_int_equal(qat_fit_read_inputs(two, 2, &rs, &skipped, NULL), QAT_EINPUT);
    assert_non_null(strstr(qat_errmsg(), "runs/a/run.h5: the same file as "));
    assert_non_null(strstr(qat_errmsg(), "give each input once"));
    qat_fit_runs_free(&rs);
    path_in(b, sizeof b, "runs/../runs");
    assert_int_equal(qat_fit_read_inputs(two, 2, &rs, &skipped, NULL), QAT_EINPUT);
    qat_fit_runs_free(&rs);
    path_in(a, sizeof a, "dup.csv");
    FILE *f = fopen(a, "w");
    fputs("N,D,loss\n1e6,2e7,3.2\n2e6,2e7,3.0\n", f);
    fclose(f);
    path_in(c, sizeof c, "dup-link.csv");
    assert_int_equal(symlink(a, c), 0);
    char *csvs[2] = {a, c};
    assert_int_equal(qat_fit_read_inputs(csvs, 2, &rs, &skipped, NULL), QAT_EINPUT);
    assert_non_null(strstr(qat_errmsg(), "dup-link.csv: the same file as "));
    qat_fit_runs_free(&rs);
    assert_int_equal(qat_fit_read_inputs(csvs, 1, &rs, &skipped, NULL), QAT_OK); /* once is fine */
    assert_int_equal(rs.n, 2);
    qat_fit_runs_free(&rs);

    /* A run directory copied twice into one folder: other files (inodes),
     * the same run (stored config, N, D, final loss). It counted twice; the
     * copy is now left out with a warning naming both. A rerun of the same
     * config that ended at another loss (another CPU or thread count) is a
     * measurement of its own and stays. */
    write_runlog("copies", "completed", 0, "fp32", 0, 0, 0); /* placeholder dir */
    write_runlog_cfg("copies/orig", 1e6, 3.1, 2e7, "seed: 3\nmodel: {preset: s1}\n");
    write_runlog_cfg("copies/other", 2e6, 3.0, 2e7, "seed: 3\nmodel: {preset: s2}\n");
    write_runlog_cfg("copies/rerun", 1e6, 3.1000001, 2e7, "seed: 3\nmodel: {preset: s1}\n");
    char src[512], dst[512];
    path_in(src, sizeof src, "copies/orig/run.h5");
    for (int k = 0; k < 2; k++) {
        path_in(dst, sizeof dst, k ? "copies/orig copy 2" : "copies/orig copy");
        mkdir(dst, 0755);
        strcat(dst, "/run.h5");
        copy_file(src, dst);
    }
    skipped = read_dir("copies", &rs, buf, sizeof buf);
    assert_int_equal(rs.n, 3); /* orig, other, rerun */
    assert_int_equal(skipped, 3); /* the placeholder and the two copies */
    /* the first of the three in path order is kept ("orig copy 2"), the others named */
    assert_non_null(strstr(buf, "copies/orig copy/run.h5: the same run as "));
    assert_non_null(strstr(buf, "copies/orig/run.h5: the same run as "));
    assert_non_null(strstr(buf, "orig copy 2/run.h5 (the same stored config, N, D and final loss 3.1: a copy), "
                                "counted once"));
    assert_null(strstr(buf, "rerun"));
    qat_fit_runs_free(&rs);
}

/* Run `qat fit` with stdout captured into a file; returns the exit code. */
static int run_fit(char **argv, int argc, char *out, size_t cap) {
    char p[512];
    path_in(p, sizeof p, "stdout.txt");
    return qat_test_capture(qat_fit_main, argc, argv, p, out, cap);
}

/* An exact Chinchilla-law table at path: ni values of N (1e6·3^i) times nj of D
 * (10·N·2.5^j), L = 1.8 + 400·N^-0.34 + 1800·D^-0.37, header N,D,loss. */
static void write_law_csv(const char *path, int ni, int nj) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "N,D,loss\n");
    for (int i = 0; i < ni; i++)
        for (int j = 0; j < nj; j++) {
            double N = 1e6 * pow(3, i), D = N * 10 * pow(2.5, j);
            fprintf(f, "%.6g,%.6g,%.10g\n", N, D, 1.8 + 400 * pow(N, -0.34) + 1800 * pow(D, -0.37));
        }
    assert_int_equal(fclose(f), 0);
}

static void test_fit_command(void **s) {
    (void)s;
    /* A small exact Chinchilla-law table: the fit must find it again. */
    char p[512], csv_out[512], h5[512], text[1 << 14];
    path_in(p, sizeof p, "law.csv");
    write_law_csv(p, 5, 4);
    path_in(csv_out, sizeof csv_out, "out.csv");
    path_in(h5, sizeof h5, "fit.h5");
    char *argv[] = {"fit", p, "--json", "--csv", csv_out, "--out", h5, "--bootstrap", "20"};
    assert_int_equal(run_fit(argv, 9, text, sizeof text), 0);
    const char *keys[] = {"\"law\": \"chinchilla\"", "\"n_runs\": 20", "\"params\": {\"A\": ", "\"alpha\": ",
                          "\"capacity\": {}", "\"eff\": {}", "\"ci\": {\"A\": [", "\"rmse_log\": "};
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
        if (!strstr(text, keys[k])) fprintf(stderr, "missing %s in %s\n", keys[k], text);
        assert_non_null(strstr(text, keys[k]));
    }
    double alpha = atof(strstr(text, "\"alpha\": ") + 9);
    assert_true(fabs(alpha - 0.34) < 0.005);
    /* The per-run CSV is itself a valid input. */
    qat_fit_runs rs = {0};
    assert_int_equal(qat_fit_read_csv(csv_out, &rs), QAT_OK);
    assert_int_equal(rs.n, 20);
    qat_fit_runs_free(&rs);
    assert_int_equal(H5Fis_hdf5(h5), 1);

    /* --json-out: the table on stdout and, in the file, the very document --json
     * printed (same seed, same fit); a second output on the same path is refused. */
    char jpath[512], table[1 << 14];
    path_in(jpath, sizeof jpath, "fit.json");
    char *both[] = {"fit", p, "--json-out", jpath, "--bootstrap", "20"};
    assert_int_equal(run_fit(both, 6, table, sizeof table), 0);
    assert_null(strstr(table, "\"law\": ")); /* stdout has the table, not JSON */
    assert_non_null(strstr(table, "alpha"));
    FILE *jf = fopen(jpath, "r");
    assert_non_null(jf);
    static char jtext[1 << 14];
    size_t jn = fread(jtext, 1, sizeof jtext - 1, jf);
    jtext[jn] = 0;
    fclose(jf);
    assert_string_equal(jtext, text);
    char *clash[] = {"fit", p, "--json-out", csv_out, "--csv", csv_out};
    assert_int_equal(run_fit(clash, 6, table, sizeof table), 2);
    assert_non_null(strstr(qat_errmsg(), "--csv and --json-out are the same file"));
    /* the same file spelled two ways, before it exists (it was written twice, the CSV lost) */
    char dotted[520], tmpname[520];
    char *slash = strrchr(csv_out, '/');
    snprintf(dotted, sizeof dotted, "%.*s/./%s", (int)(slash - csv_out), csv_out, slash + 1);
    remove(csv_out);
    char *spelled[] = {"fit", p, "--json-out", dotted, "--csv", csv_out};
    assert_int_equal(run_fit(spelled, 6, table, sizeof table), 2);
    assert_non_null(strstr(qat_errmsg(), "--csv and --json-out are the same file"));
    /* an output named as another's temporary: the second writer removed the first's file */
    snprintf(tmpname, sizeof tmpname, "%s.tmp", jpath);
    char *tmpclash[] = {"fit", p, "--csv", tmpname, "--json-out", jpath};
    assert_int_equal(run_fit(tmpclash, 6, table, sizeof table), 2);
    assert_non_null(strstr(qat_errmsg(), "one is the other's temporary"));
    /* --svg is an output too: with --csv on one file, chen wrote the CSV, then
     * refused the SVG over it (exit 2 after the fit, the file written) */
    char svg_csv[512];
    path_in(svg_csv, sizeof svg_csv, "both.out");
    remove(svg_csv);
    char *svgclash[] = {"fit", p, "--law", "chen", "--csv", svg_csv, "--svg", svg_csv};
    assert_int_equal(run_fit(svgclash, 8, table, sizeof table), 2);
    assert_non_null(strstr(qat_errmsg(), "--csv and --svg are the same file"));
    assert_int_equal(access(svg_csv, F_OK), -1);
    assert_string_equal(table, "");
    char *svgjson[] = {"fit", p, "--json-out", jpath, "--svg", jpath};
    assert_int_equal(run_fit(svgjson, 6, table, sizeof table), 2);
    assert_non_null(strstr(qat_errmsg(), "--json-out and --svg are the same file"));
    char *svgout[] = {"fit", p, "--law", "chen", "--svg", tmpname, "--out", jpath};
    assert_int_equal(run_fit(svgout, 8, table, sizeof table), 2);
    assert_non_null(strstr(qat_errmsg(), "one is the other's temporary"));
    char *dash[] = {"fit", p, "--json-out", "-"};
    assert_int_equal(run_fit(dash, 4, table, sizeof table), 2);
    assert_non_null(strstr(qat_errmsg(), "use --json"));

    /* Exit codes: usage and input errors are 2 and name the problem. */
    char *help[] = {"fit", "--help"};
    assert_int_equal(run_fit(help, 2, text, sizeof text), 0);
    assert_non_null(strstr(text, "--bootstrap"));
    /* The usage text goes out with fputs, not printf: no printf escapes in it. */
    assert_non_null(strstr(text, "95% percentile"));
    assert_null(strstr(text, "%%"));
    /* --help wins over an incomplete option after it, as in every other command */
    char *help_first[] = {"fit", "--help", "--out"};
    assert_int_equal(run_fit(help_first, 3, text, sizeof text), 0);
    assert_non_null(strstr(text, "--bootstrap"));
    char *bad_opt[] = {"fit", p, "--frobnicate"};
    assert_int_equal(run_fit(bad_opt, 3, text, sizeof text), 2);
    char *bad_fix[] = {"fit", p, "--fix", "gamma=1"};
    assert_int_equal(run_fit(bad_fix, 4, text, sizeof text), 2);
    assert_non_null(strstr(qat_errmsg(), "gamma"));
    /* a parameter held twice (before: the last won silently) and a value out of range (before: accepted) */
    char *twice[] = {"fit", p, "--fix", "alpha=0.3", "--fix", "alpha=0.4"};
    assert_int_equal(run_fit(twice, 6, text, sizeof text), 2);
    assert_string_equal(qat_errmsg(), "--fix alpha=0.4: alpha is already held by --fix alpha=0.3; give each parameter once");
    char *negative[] = {"fit", p, "--fix", "alpha=-5"};
    assert_int_equal(run_fit(negative, 4, text, sizeof text), 2);
    assert_string_equal(qat_errmsg(), "--fix alpha=-5: alpha is out of range, expected a number in (0, inf) (a decay exponent)");
    char *zero_e[] = {"fit", p, "--fix", "E=0"};
    assert_int_equal(run_fit(zero_e, 4, text, sizeof text), 2);
    assert_non_null(strstr(qat_errmsg(), "E is out of range, expected a number in (0, inf)"));
    write_file("broken.csv", "N,D,loss\n1e6,2e7,3.1\n1e6,2e7,oops\n");
    char b[512];
    path_in(b, sizeof b, "broken.csv");
    char *bad_csv[] = {"fit", b};
    assert_int_equal(run_fit(bad_csv, 2, text, sizeof text), 2);
    assert_non_null(strstr(qat_errmsg(), "broken.csv:3:"));
    char *bad_law[] = {"fit", p, "--law", "kaplan"};
    assert_int_equal(run_fit(bad_law, 4, text, sizeof text), 2);
}

/* What a user's CSV can hold that used to be accepted silently or turned into
 * garbage: each refused at file:line naming the value, or warned about. */
static void test_csv_checked_values(void **s) {
    (void)s;
    /* a NUL byte inside a line (it ended the line early: "3.1\0junk" read as 3.1) */
    char p[512];
    path_in(p, sizeof p, "bad.csv");
    FILE *f = fopen(p, "w");
    fputs("N,D,loss\n1e6,2e7,3.1\n1e6,4e7,3.", f);
    fputc(0, f);
    fputs("0junk\n", f);
    fclose(f);
    qat_fit_runs rs = {0};
    assert_int_equal(qat_fit_read_csv(p, &rs), QAT_EINPUT);
    assert_non_null(strstr(qat_errmsg(), "bad.csv:3:11: a NUL byte"));
    qat_fit_runs_free(&rs);
    /* values out of range (the SVG drew them at NaN) */
    expect_csv_error("N,D,loss\n1e6,2e7,1e308\n", "bad.csv:2:9: loss 1e+308 is out of range");
    expect_csv_error("N,D,loss\n1e300,2e7,3.1\n", "bad.csv:2:1: N 1e+300 is out of range");
    expect_csv_error("N,D,loss\n1e6,1e300,3.1\n", "bad.csv:2:5: D 1e+300 is out of range");
    expect_csv_error("N,D,loss\n0.5,2e7,3.1\n", "bad.csv:2:1: N 0.5 is out of range");
    expect_csv_error("Model Size,Training FLOP,loss\n1e6,6e30,3.1\n", "bad.csv:2:5: D = FLOP/(6N) 1e+24");
    /* one column named twice, or two names of one column */
    expect_csv_error("N,D,loss,loss\n1e6,2e7,3.1,3.2\n", "bad.csv:1:10: column 'loss' names the same column");
    expect_csv_error("N,params,D,loss\n1e6,1e6,2e7,3.1\n", "bad.csv:1:3: column 'params'");
    /* a seventh field without a header has no column */
    expect_csv_error("1e6,2e7,3.1,fp32,fp32,fp32,1\n", "bad.csv:1:");
    /* the backward scheme: exactly fp32 or FORMAT[@sr][@hBLOCK], checked by the
     * trainer's own parser of compress.gradients.* (compress/gradq.c) */
    expect_csv_error("N,D,loss,grad_format\n1e6,2e7,3.1,INT4\n", "bad.csv:2:13: backward scheme 'INT4'");
    expect_csv_error("N,D,loss,grad_format\n1e6,2e7,3.1,int4@h3\n", "@hBLOCK needs BLOCK a power of two");
    expect_csv_error("N,D,loss,grad_format\n1e6,2e7,3.1,int4@h1\n", "@hBLOCK needs BLOCK a power of two");
    expect_csv_error("N,D,loss,grad_format\n1e6,2e7,3.1,int4@h032\n", "without leading zeros");
    expect_csv_error("N,D,loss,grad_format\n1e6,2e7,3.1,fp32@sr\n", "the fp32 backward is the unquantized baseline");
    expect_csv_error("N,D,loss,grad_format\n1e6,2e7,3.1,bogus@sr\n", "'bogus' cannot quantize a backward operand");
    /* what the trainer refuses as compress.gradients.* is refused here, naming
     * the cell (each was once an effD of its own) */
    static const char *const refused[] = {"sp50", "noise(int4)", "vq2x2", "aq1x4g4", "mxfp6e3m2", "nvfp4@46",
                                          "nvfp4@2d", "int4@g32", "int4@g32@sr", "2:4", "sp50+int4"};
    for (size_t k = 0; k < sizeof refused / sizeof *refused; k++) {
        char csv[256], want[128];
        snprintf(csv, sizeof csv, "N,D,loss,format,grad_format\n1e6,2e7,3.1,int4,%s\n", refused[k]);
        snprintf(want, sizeof want, "bad.csv:2:18: backward scheme '%s' is not fp32 or FORMAT[@sr][@hBLOCK]",
                 refused[k]);
        expect_csv_error(csv, want);
        expect_csv_error(csv, "cannot quantize a backward operand; expected one of: fp32 (off), int1..int8");
    }
    expect_csv_error("N,D,loss,grad_format\n1e6,2e7,3.1,mxfp4@sr@sr\n", "bad.csv:2:13: backward scheme 'mxfp4@sr@sr' "
                     "is not fp32 or FORMAT[@sr][@hBLOCK] as compress.gradients.* takes it: @sr is given twice");
    expect_csv_error("N,D,loss,grad_format\n1e6,2e7,3.1,mxfp4@h32@h32\n", "@hBLOCK is given twice");
    expect_csv_error("N,D,loss,grad_format\n1e6,2e7,3.1,mxfp4@h2048\n", "compress.gradients.hadamard: 2048");
    /* either order of @sr and @hB, spelled as a run log's config gives it */
    write_file("grads.csv", "N,D,loss,grad_format\n1e6,2e7,3.1,int4@sr@h64\n1e6,4e7,3.0,\n2e6,2e7,3.0,mxfp4@h16@sr\n"
                            "2e6,4e7,2.9,int4@h32@sr\n4e6,4e7,2.8,nvfp4@sr\n");
    path_in(p, sizeof p, "grads.csv");
    assert_int_equal(qat_fit_read_csv(p, &rs), QAT_OK);
    assert_string_equal(rs.run[0].gfmt, "int4@sr@h64");
    assert_string_equal(rs.run[1].gfmt, "fp32");
    assert_string_equal(rs.run[2].gfmt, "mxfp4@sr@h16");
    assert_string_equal(rs.run[3].gfmt, "int4@sr@h32");
    assert_string_equal(rs.run[4].gfmt, "nvfp4@sr");
    qat_fit_runs_free(&rs);

    /* an unknown column is named with the known ones; Epoch's plot columns are not */
    write_file("cols.csv", "x,N,D,loss,grad,hex_color\n1,1e6,2e7,3.1,int4,#fff\n");
    path_in(p, sizeof p, "cols.csv");
    char w[512];
    path_in(w, sizeof w, "warn.txt");
    FILE *wf = fopen(w, "w+");
    assert_int_equal(qat_fit_read_csv_warn(p, &rs, wf), QAT_OK);
    rewind(wf);
    char text[2048] = "";
    size_t nr = fread(text, 1, sizeof text - 1, wf);
    text[nr] = 0;
    fclose(wf);
    assert_non_null(strstr(text, "cols.csv:1: unknown column 'grad' ignored; known columns: N ("));
    assert_non_null(strstr(text, "grad_format (gradient_format)"));
    assert_null(strstr(text, "'x'"));
    assert_null(strstr(text, "'hex_color'"));
    assert_string_equal(rs.run[0].gfmt, "fp32");
    /* --exclude GLOB matches a CSV row by its file, as a run log */
    assert_int_equal(qat_fit_exclude(&rs, "*/cols.csv"), 1);
    assert_int_equal(rs.n, 0);
    qat_fit_runs_free(&rs);
}

/* A format with two runs among 20: about one resample in eight draws none of
 * them and cannot tell its eff; such resamples are dropped and counted, not
 * kept at the start value (which narrowed the interval). */
static void test_bootstrap_drops_blind_resamples(void **s) {
    (void)s;
    qat_fit_runs rs = {0};
    for (int i = 0; i < 20; i++) {
        int q = i >= 18;
        qat_fit_run r = {.N = 1e6 * pow(2, i % 6), .D = 2e7 * pow(1.7, i / 6 + (i % 5)), .n_terms = -1};
        r.loss = 1.8 + 400 * pow(r.N * (q ? 0.7 : 1), -0.34) + 1800 * pow(r.D, -0.37);
        snprintf(r.wfmt, sizeof r.wfmt, "%s", q ? "int4" : "fp32");
        snprintf(r.afmt, sizeof r.afmt, "%s", q ? "int4" : "fp32");
        qat_fit_runs_push(&rs, &r);
    }
    qat_fit_problem p;
    qat_fit_result r;
    assert_int_equal(qat_fit_problem_init(&p, QAT_LAW_DECOUPLED, &rs), QAT_OK);
    assert_int_equal(qat_fit_problem_fix(&p, "E", 1.8), QAT_OK);
    assert_int_equal(qat_fit_identify(&p, NULL), QAT_OK);
    qat_fit_opts o = {.bootstrap = 40, .seed = 3, .max_starts = 8};
    assert_int_equal(qat_fit_run_fit(&p, &o, &r), QAT_OK);
    /* (18/20)^20 = 0.12 of 40: P(none dropped) = 0.88^40 < 0.01, and the seed is fixed */
    printf("  bootstrap: %d used, %d dropped of 40\n", r.n_boot, r.n_boot_dropped);
    assert_true(r.n_boot_dropped > 0);
    assert_int_equal(r.n_boot + r.n_boot_dropped, 40);
    /* qat fit on the same runs: FIT.h5 records both counts, the resamples drawn
     * (`bootstrap`) and those the intervals rest on (`bootstrap_used`), the same the
     * library reported (it recorded only the first) */
    char csv[512], h5[512], text[1 << 14];
    path_in(csv, sizeof csv, "blind.csv");
    path_in(h5, sizeof h5, "blind.h5");
    FILE *f = fopen(csv, "w");
    assert_non_null(f);
    fprintf(f, "N,D,loss,weight_format,act_format\n");
    for (int i = 0; i < rs.n; i++)
        fprintf(f, "%.17g,%.17g,%.17g,%s,%s\n", rs.run[i].N, rs.run[i].D, rs.run[i].loss, rs.run[i].wfmt, rs.run[i].afmt);
    assert_int_equal(fclose(f), 0);
    char *argv[] = {"fit", csv, "--law", "decoupled", "--fix", "E=1.8", "--bootstrap", "40", "--seed", "3", "--no-loo", "--out", h5};
    assert_int_equal(run_fit(argv, 13, text, sizeof text), 0);
    hid_t fh = H5Fopen(h5, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(fh >= 0);
    int drawn = -1, used = -1;
    hid_t a = H5Aopen(fh, "bootstrap", H5P_DEFAULT);
    assert_true(a >= 0 && H5Aread(a, H5T_NATIVE_INT, &drawn) >= 0);
    H5Aclose(a);
    a = H5Aopen(fh, "bootstrap_used", H5P_DEFAULT);
    assert_true(a >= 0 && H5Aread(a, H5T_NATIVE_INT, &used) >= 0);
    H5Aclose(a);
    H5Fclose(fh);
    printf("  FIT.h5: bootstrap %d, bootstrap_used %d\n", drawn, used);
    assert_int_equal(drawn, 40);
    assert_true(used > 0 && used < 40);
    qat_fit_result_free(&r);
    qat_fit_problem_free(&p);
    qat_fit_runs_free(&rs);
}

/* qat fit's own arguments, checked before any work. */
static void test_fit_arguments_first(void **s) {
    (void)s;
    char p[512], out[512], text[1 << 14];
    path_in(p, sizeof p, "args.csv");
    write_law_csv(p, 3, 3);
    /* an output in a missing directory: exit 2 before the fit, nothing printed */
    path_in(out, sizeof out, "nodir/fit.h5");
    char *nodir[] = {"fit", p, "--json", "--no-loo", "--out", out};
    assert_int_equal(run_fit(nodir, 6, text, sizeof text), 2);
    assert_non_null(strstr(qat_errmsg(), "--out"));
    assert_non_null(strstr(qat_errmsg(), "nodir does not exist"));
    assert_string_equal(text, "");
    path_in(out, sizeof out, "nodir/fit.csv");
    char *nodir_csv[] = {"fit", p, "--json", "--no-loo", "--csv", out};
    assert_int_equal(run_fit(nodir_csv, 6, text, sizeof text), 2);
    assert_string_equal(text, "");
    /* an output in a directory we cannot write: exit 2 before the fit, and the
     * other outputs not written (it was exit 1 after the fit, the CSV written) */
    char ro[512], ro_json[600], side_csv[512];
    path_in(ro, sizeof ro, "readonly");
    assert_int_equal(mkdir(ro, 0555), 0);
    snprintf(ro_json, sizeof ro_json, "%s/fit.json", ro);
    path_in(side_csv, sizeof side_csv, "side.csv");
    char *unwritable[] = {"fit", p, "--no-loo", "--csv", side_csv, "--json-out", ro_json};
    if (geteuid() == 0) /* root may write anywhere: access() says yes, and so would the fit */
        fprintf(stderr, "test_fit_arguments_first: running as root, mode 0555 does not stop us; "
                        "skipping the mode-0555 case (the /proc/sys case below still runs)\n");
    else {
        assert_int_equal(run_fit(unwritable, 7, text, sizeof text), 2);
        assert_non_null(strstr(qat_errmsg(), "--json-out"));
        assert_non_null(strstr(qat_errmsg(), ro_json));
        assert_non_null(strstr(qat_errmsg(), "cannot write in the directory"));
        assert_string_equal(text, "");
        assert_int_equal(access(side_csv, F_OK), -1);
    }
    /* /proc/sys is not writable even for root (the kernel refuses it any write), so
     * this case runs under root too; skipped where no such directory is found */
    if (access("/proc/sys", F_OK) != 0 || access("/proc/sys", W_OK) == 0)
        fprintf(stderr, "test_fit_arguments_first: no /proc/sys that refuses writes here; skipping that case\n");
    else {
        const char *opts[] = {"--out", "--csv", "--json-out"};
        for (int k = 0; k < 3; k++) {
            char *sys[] = {"fit", p, "--no-loo", "--csv", side_csv, (char *)opts[k], "/proc/sys/qat_fit.out"};
            if (k == 1) sys[3] = "--json-out", sys[4] = side_csv; /* the other output still in a good place */
            assert_int_equal(run_fit(sys, 7, text, sizeof text), 2);
            assert_non_null(strstr(qat_errmsg(), opts[k]));
            assert_non_null(strstr(qat_errmsg(), "/proc/sys/qat_fit.out: cannot write in the directory /proc/sys"));
            assert_string_equal(text, "");
            assert_int_equal(access(side_csv, F_OK), -1);
        }
    }
    char *dash[] = {"fit", p, "--csv", "-"};
    assert_int_equal(run_fit(dash, 4, text, sizeof text), 2);
    assert_non_null(strstr(qat_errmsg(), "--csv -"));
    /* an option where a value belongs: --json-out took "--csv" for its file name
     * (and the CSV's path for a run); "-1" still reaches the number's own check */
    char *optval[] = {"fit", p, "--no-loo", "--json-out", "--csv", side_csv};
    assert_int_equal(run_fit(optval, 6, text, sizeof text), 2);
    assert_string_equal(qat_errmsg(), "--json-out: expected a value, got the option --csv (see qat fit --help)");
    assert_string_equal(text, "");
    char *minus1[] = {"fit", p, "--drop-highest", "-1"};
    assert_int_equal(run_fit(minus1, 4, text, sizeof text), 2);
    assert_non_null(strstr(qat_errmsg(), "--drop-highest -1: expected an integer"));
    char *plotval[] = {"plot", p, "-o", "--kind", "law"};
    char sp[512];
    path_in(sp, sizeof sp, "stdout.txt");
    assert_int_equal(qat_test_capture(qat_plot_main, 5, plotval, sp, text, sizeof text), 2);
    assert_string_equal(qat_errmsg(), "-o: expected a value, got the option --kind (see qat plot --help)");
    char *boot1[] = {"fit", p, "--bootstrap", "1"};
    assert_int_equal(run_fit(boot1, 4, text, sizeof text), 2);
    assert_non_null(strstr(qat_errmsg(), "at least 20 resamples"));
    /* one run left: "1 usable run" */
    char *excl[] = {"fit", p, "--exclude", "*args.csv"};
    assert_int_equal(run_fit(excl, 4, text, sizeof text), 2);
    assert_non_null(strstr(qat_errmsg(), "0 usable runs"));
    /* losses rising with N and D: both exponents come out negative, and one
     * message names both (it used to name one, then the other on the next try) */
    path_in(p, sizeof p, "rise.csv");
    FILE *f = fopen(p, "w");
    fprintf(f, "N,D,loss\n");
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            double N = 1e6 * pow(3.16, i), D = 1e8 * pow(3.16, j);
            fprintf(f, "%.6g,%.6g,%.6f\n", N, D, 1.5 + 0.02 * pow(N, 0.1) + 0.03 * pow(D, 0.1));
        }
    fclose(f);
    char *rise[] = {"fit", p, "--no-loo"};
    assert_int_equal(run_fit(rise, 3, text, sizeof text), 2);
    assert_non_null(strstr(qat_errmsg(), "alpha and beta are not identified"));
    assert_non_null(strstr(qat_errmsg(), "--fix alpha=VALUE --fix beta=VALUE"));
    write_file("one.csv", "N,D,loss\n1e6,2e7,3.1\n");
    path_in(p, sizeof p, "one.csv");
    char *one[] = {"fit", p};
    assert_int_equal(run_fit(one, 2, text, sizeof text), 2);
    assert_non_null(strstr(qat_errmsg(), "1 usable run after"));
    /* a .h5 whose first byte no longer says HDF5 (or an empty one) is no run log: it
     * was read as a CSV, "unknown column 'XHDF' ignored", "the header has no column for N" */
    static const char sig[8] = "XHDF\r\n\032\n";
    const char *h5[] = {"notsig.h5", "empty.h5", "notsig.HDF5"};
    for (int k = 0; k < 3; k++) {
        path_in(p, sizeof p, h5[k]);
        f = fopen(p, "wb");
        assert_non_null(f);
        if (k != 1) fwrite(sig, 1, sizeof sig, f), fputs("\001\002 binary tail\n", f);
        assert_int_equal(fclose(f), 0);
        char *bad[] = {"fit", p, "--no-loo"};
        assert_int_equal(run_fit(bad, 3, text, sizeof text), 2);
        assert_non_null(strstr(qat_errmsg(), "not an HDF5 file (its first bytes are not HDF5's signature"));
        assert_null(strstr(qat_errmsg(), "column"));
    }
}

/* In a child process: `act` on the run log at `p`, then die by SIGKILL with the
 * file still open, as a crash would leave it. */
enum { DIE_REOPENED = 0, DIE_MID_RUN = 1, DIE_CREATING = 2 };
static void die_in_child(const char *p, int act) {
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
        H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
        H5Pset_file_locking(fapl, 0, 1);
        if (act == DIE_REOPENED) {
            /* What qat_runlog_finish and qat_runlog_resume do outside SWMR mode:
             * the superblock now says "open for writing", without SWMR. */
            if (H5Fopen(p, H5F_ACC_RDWR, fapl) < 0) _exit(3);
        } else if (act == DIE_MID_RUN) {
            qat_runlog_attrs at = {.name = "mid", .config_yaml = "", .n_params = 3000000,
                                   .n_params_total = 3000000, .tokens_target = 100000000,
                                   .weight_format = "fp32", .act_format = "fp32", .estimator = "ste"};
            qat_runlog *rl;
            if (qat_runlog_create(p, &at, &rl) || qat_runlog_train(rl, 0, 1, 5.0, 1e-3, 1.0, 0.1) ||
                qat_runlog_flush(rl))
                _exit(4);
        } else {
            /* Killed between creating the file and starting SWMR: no attributes yet. */
            hid_t f = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
            if (f < 0 || H5Fflush(f, H5F_SCOPE_GLOBAL) < 0) _exit(5);
        }
        raise(SIGKILL);
        _exit(6);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

/* Run logs left by killed writers: every one is read or skipped by name, and
 * `qat fit` on the directory fits the completed ones. */
static void test_killed_runlogs(void **s) {
    (void)s;
    const double N[3] = {1e6, 4e6, 1.6e7};
    char p[512];
    path_in(p, sizeof p, "killed");
    mkdir(p, 0755);
    for (int i = 0; i < 3; i++) {
        char sub[64];
        snprintf(sub, sizeof sub, "killed/r%d", i);
        write_runlog(sub, "completed", N[i], "fp32", 1.817 + 482 * pow(N[i], -0.348) + 2085 * pow(2e8, -0.366),
                     2e8, 1);
    }
    /* r1 completed, then a writer reopened it and was killed before closing it. */
    char r1[512];
    path_in(r1, sizeof r1, "killed/r1/run.h5");
    die_in_child(r1, DIE_REOPENED);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    hid_t f;
    H5E_BEGIN_TRY { f = H5Fopen(r1, H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, fapl); } H5E_END_TRY;
    assert_true(f < 0); /* the state this test is about: SWMR reading refuses it */
    H5Pclose(fapl);
    qat_runlog_summary sum;
    assert_int_equal(qat_runlog_read_final(r1, &sum), QAT_OK);
    assert_string_equal(sum.status, "completed");
    assert_true(sum.has_final && sum.final.val_loss > 1.8);

    /* A run killed mid-training (SWMR) and one killed while being created. */
    char mid[512], born[512];
    path_in(mid, sizeof mid, "killed/mid");
    mkdir(mid, 0755);
    strcat(mid, "/run.h5");
    die_in_child(mid, DIE_MID_RUN);
    path_in(born, sizeof born, "killed/born");
    mkdir(born, 0755);
    strcat(born, "/run.h5");
    die_in_child(born, DIE_CREATING);

    qat_fit_runs rs = {0};
    char buf[4096];
    assert_int_equal(read_dir("killed", &rs, buf, sizeof buf), 2);
    assert_int_equal(rs.n, 3);
    assert_non_null(strstr(buf, "killed/mid/run.h5: skipped: status is 'running'"));
    assert_non_null(strstr(buf, "killed/born/run.h5: skipped:"));
    qat_fit_runs_free(&rs);

    /* The command: three completed runs at one D, B and beta held. */
    char text[1 << 14];
    char *argv[] = {"fit", p, "--fix", "B=2085", "--fix", "beta=0.366", "--json"};
    assert_int_equal(run_fit(argv, 7, text, sizeof text), 0);
    assert_non_null(strstr(text, "\"n_runs\": 3"));
    double alpha = atof(strstr(text, "\"alpha\": ") + 9);
    assert_true(fabs(alpha - 0.348) < 0.01);
    /* one input skipped is one, not "1 inputs" */
    char r[3][512];
    for (int i = 0; i < 3; i++) {
        char sub[64];
        snprintf(sub, sizeof sub, "killed/r%d/run.h5", i);
        path_in(r[i], sizeof r[i], sub);
    }
    char *one_skip[] = {"fit", r[0], r[1], r[2], mid, "--fix", "B=2085", "--fix", "beta=0.366", "--no-loo"};
    assert_int_equal(run_fit(one_skip, 10, text, sizeof text), 0);
    assert_non_null(strstr(text, "3 runs (1 input skipped, see warnings)"));
}

/* A completed run log whose stored config is `config_yaml`, on an exact Chinchilla law. */
static void write_run_with_config(const char *sub, const char *config_yaml, double N, double D, double E) {
    char p[512];
    path_in(p, sizeof p, sub);
    mkdir(p, 0755);
    strcat(p, "/run.h5");
    double loss = E + 400 * pow(N, -0.34) + 1800 * pow(D, -0.37);
    qat_runlog_attrs at = {.name = sub, .config_yaml = config_yaml, .n_params = (int64_t)N,
                           .n_params_total = (int64_t)N, .tokens_target = (int64_t)D,
                           .weight_format = "fp32", .act_format = "fp32", .estimator = "ste"};
    qat_runlog *rl;
    assert_int_equal(qat_runlog_create(p, &at, &rl), QAT_OK);
    qat_runlog_final fin = {loss, loss, (int64_t)D, 1, 1.0};
    assert_int_equal(qat_runlog_finish(rl, QAT_RUN_COMPLETED, &fin), QAT_OK);
    assert_int_equal(qat_runlog_close(rl), QAT_OK);
}

/* --where on a format key compares formats, not spellings: the name the fit
 * prints (nvfp4@46@sr, recorded in run.h5) selected nothing when the config
 * held nvfp4@sr@46, and NVFP4 or a backward format the trainer refuses was
 * taken as a value that simply matched no run. A weights format matches the
 * format in effect as the log records it: mxfp4 selected a run configured as
 * mxfp4 with hadamard: 32 (logged mxfp4@h32), so asking for unrotated MXFP4
 * gave rotated runs. */
static void test_where_formats_canonical(void **s) {
    (void)s;
    char d[512];
    path_in(d, sizeof d, "wfmt");
    mkdir(d, 0755);
    const char *sub[4] = {"wfmt/nv", "wfmt/mx", "wfmt/dense", "wfmt/mx0"};
    const char *cfg[4] = {"train: {tokens: 1e5}\ncompress: {weights: {format: nvfp4@sr@46}, gradients: {format: mxfp4}}\n",
                          "train: {tokens: 1e5}\ncompress: {weights: {format: mxfp4, hadamard: 32}}\n",
                          "train: {tokens: 1e5}\n", "train: {tokens: 1e5}\ncompress: {weights: {format: mxfp4}}\n"};
    const char *rec[4] = {"nvfp4@46@sr", "mxfp4@h32", "fp32", "mxfp4"}; /* what qat train records */
    for (int k = 0; k < 4; k++) {
        char p[512];
        path_in(p, sizeof p, sub[k]);
        mkdir(p, 0755);
        strcat(p, "/run.h5");
        qat_runlog_attrs at = {.name = sub[k], .config_yaml = cfg[k], .n_params = 1000000,
                               .n_params_total = 1000000, .tokens_target = 100000,
                               .weight_format = rec[k], .act_format = "fp32", .estimator = "ste"};
        qat_runlog *rl;
        assert_int_equal(qat_runlog_create(p, &at, &rl), QAT_OK);
        qat_runlog_final fin = {3.0, 3.0, 100000, 1, 1.0};
        assert_int_equal(qat_runlog_finish(rl, QAT_RUN_COMPLETED, &fin), QAT_OK);
        assert_int_equal(qat_runlog_close(rl), QAT_OK);
    }
    char *paths[1] = {d};
    struct { const char *where, *kept; } cases[] = {
        {"compress.weights.format=nvfp4@46@sr", "/nv/"},  /* as the fit prints it */
        {"compress.weights.format=nvfp4@sr@46", "/nv/"},  /* as the config wrote it */
        {"compress.weights.format=\"nvfp4@46@sr\"", "/nv/"},
        {"compress.weights.format=mxfp4@h32", "/mx/"},    /* hadamard: 32 folded in, as recorded */
        {"compress.weights.format=mxfp4", "/mx0/"},       /* unrotated only: not the run whose config says mxfp4 */
        {"compress.gradients.format=mxfp4", "/nv/"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        const char *w[1] = {cases[c].where};
        qat_fit_select *sel;
        assert_int_equal(qat_fit_select_new(w, 1, &sel), QAT_OK);
        qat_fit_runs rs = {0};
        int skipped = 0, unselected = 0;
        assert_int_equal(qat_fit_read_inputs_sel(paths, 1, &rs, &skipped, &unselected, NULL, sel), QAT_OK);
        if (rs.n != 1) fprintf(stderr, "--where %s kept %d runs\n", cases[c].where, rs.n);
        assert_int_equal(rs.n, 1);
        assert_non_null(strstr(rs.run[0].origin, cases[c].kept));
        assert_int_equal(unselected, 3);
        qat_fit_runs_free(&rs);
        qat_fit_select_free(sel);
    }
    /* a value that is no format of its key is exit 2 naming the --where */
    struct { const char *where, *msg; } bad[] = {
        {"compress.weights.format=NVFP4", "--where compress.weights.format=NVFP4: unknown format 'NVFP4'"},
        {"compress.activations.format=int4@g032", "--where compress.activations.format=int4@g032: "},
        {"compress.gradients.format=sp50", "--where compress.gradients.format=sp50: compress.gradients.format: "
                                           "'sp50' cannot quantize a backward operand"},
        {"compress.gradients.format=mxfp4@sr", "cannot quantize a backward operand"},
    };
    for (size_t c = 0; c < sizeof bad / sizeof *bad; c++) {
        const char *w[1] = {bad[c].where};
        qat_fit_select *sel;
        assert_int_equal(qat_fit_select_new(w, 1, &sel), QAT_EINPUT);
        if (!strstr(qat_errmsg(), bad[c].msg)) fprintf(stderr, "message: %s\n", qat_errmsg());
        assert_non_null(strstr(qat_errmsg(), bad[c].msg));
        qat_fit_select_free(sel);
    }
}

/* The hint of the mixed-data error selects one group: with three groups, of
 * which two share data.source, it names every key the first group differs in
 * (before: only --where data.source=..., which left two groups and the same
 * error). Following it, word for word, leaves one group. */
static void test_mixed_data_hint_selects_one_group(void **s) {
    (void)s;
    char d[512], sub[64];
    path_in(d, sizeof d, "mixed3");
    mkdir(d, 0755);
    const char *cfgs[3] = {"data: {source: synthetic}\ntrain: {tokens: 1e5}\n",
                           "data: {text: [a.txt]}\nmodel: {seq_len: 64}\ntrain: {tokens: 1e5}\n",
                           "data: {source: synthetic}\nmodel: {seq_len: 64}\ntrain: {tokens: 1e5}\n"};
    for (int g = 0; g < 3; g++)
        for (int k = 0; k < 2; k++) {
            snprintf(sub, sizeof sub, "mixed3/g%d_%d", g, k);
            write_run_with_config(sub, cfgs[g], 1e6 * (k + 1), 1e7, 1.8 + 0.1 * g);
        }
    qat_fit_select *sel;
    assert_int_equal(qat_fit_select_new(NULL, 0, &sel), QAT_OK);
    qat_fit_runs rs = {0};
    int skipped = 0, unselected = 0;
    char *paths[1] = {d};
    assert_int_equal(qat_fit_read_inputs_sel(paths, 1, &rs, &skipped, &unselected, NULL, sel), QAT_OK);
    assert_int_equal(rs.n, 6);
    assert_int_equal(qat_fit_check_data(&rs, sel, 0, NULL), QAT_EINPUT);
    char msg[8192];
    snprintf(msg, sizeof msg, "%s", qat_errmsg());
    printf("  %s\n", msg);
    qat_fit_runs_free(&rs);
    qat_fit_select_free(sel);
    /* take the --where 'K=V' of the hint as they are */
    const char *w[8];
    char buf[8][512];
    int nw = 0;
    for (const char *p = strstr(msg, "--where '"); p && nw < 8; p = strstr(p + 1, "--where '")) {
        const char *b = p + strlen("--where '"), *e = strchr(b, '\'');
        assert_non_null(e);
        snprintf(buf[nw], sizeof buf[nw], "%.*s", (int)(e - b), b);
        w[nw] = buf[nw];
        nw++;
    }
    assert_true(nw >= 2);
    assert_int_equal(qat_fit_select_new(w, nw, &sel), QAT_OK);
    assert_int_equal(qat_fit_read_inputs_sel(paths, 1, &rs, &skipped, &unselected, NULL, sel), QAT_OK);
    assert_int_equal(rs.n, 2);
    assert_int_equal(qat_fit_check_data(&rs, sel, 0, NULL), QAT_OK);
    qat_fit_runs_free(&rs);
    qat_fit_select_free(sel);
}

/* Runs on two corpora (synthetic at seq_len 128, a text file at seq_len 64) are not
 * one fit: refused naming both groups, unless --mixed-data; --where KEY=VALUE picks
 * one group by any config key (values compared as the config reads them). */
static void test_fit_where_and_mixed_data(void **s) {
    (void)s;
    char d[512], sub[64], text[1 << 14];
    path_in(d, sizeof d, "mixed");
    mkdir(d, 0755);
    int k = 0;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++, k++) {
            double N = 1e6 * pow(3, i), D = N * 10 * pow(2.5, j);
            snprintf(sub, sizeof sub, "mixed/syn%d", k);
            write_run_with_config(sub, "data: {source: synthetic}\ntrain: {tokens: 1e5}\n", N, D, 1.8);
            snprintf(sub, sizeof sub, "mixed/txt%d", k);
            write_run_with_config(sub, "data: {text: [a.txt]}\nmodel: {seq_len: 64}\ntrain: {tokens: 1e5}\n", N, D,
                                  1.2);
        }
    /* the library: two groups, each named with the keys that differ */
    qat_fit_select *sel;
    assert_int_equal(qat_fit_select_new(NULL, 0, &sel), QAT_OK);
    qat_fit_runs rs = {0};
    int skipped = 0, unselected = 0;
    char *paths[1] = {d};
    assert_int_equal(qat_fit_read_inputs_sel(paths, 1, &rs, &skipped, &unselected, NULL, sel), QAT_OK);
    assert_int_equal(rs.n, 18);
    assert_int_equal(qat_fit_check_data(&rs, sel, 0, NULL), QAT_EINPUT);
    const char *m = qat_errmsg();
    printf("  %s\n", m);
    assert_non_null(strstr(m, "9 runs with data.source=\"synthetic\""));
    assert_non_null(strstr(m, "9 runs with data.source=\"text\""));
    assert_non_null(strstr(m, "data.text=[\"a.txt\"]"));
    assert_non_null(strstr(m, "model.seq_len=64"));
    assert_non_null(strstr(m, "--mixed-data"));
    assert_int_equal(qat_fit_check_data(&rs, sel, 1, NULL), QAT_OK);
    qat_fit_runs_free(&rs);
    qat_fit_select_free(sel);

    /* one group left: no complaint */
    const char *w[2] = {"model.seq_len=6.4e1", "train.tokens=100000"};
    assert_int_equal(qat_fit_select_new(w, 2, &sel), QAT_OK);
    unselected = 0;
    assert_int_equal(qat_fit_read_inputs_sel(paths, 1, &rs, &skipped, &unselected, NULL, sel), QAT_OK);
    assert_int_equal(rs.n, 9);
    assert_int_equal(unselected, 9);
    for (int i = 0; i < rs.n; i++) assert_non_null(strstr(rs.run[i].origin, "/txt"));
    assert_int_equal(qat_fit_check_data(&rs, sel, 0, NULL), QAT_OK);
    qat_fit_runs_free(&rs);
    qat_fit_select_free(sel);

    /* the command: refused (exit 2), --where selects, --mixed-data fits all */
    char *a1[] = {"fit", d, "--no-loo", NULL};
    assert_int_equal(run_fit(a1, 3, text, sizeof text), 2);
    assert_non_null(strstr(qat_errmsg(), "trained on different data"));
    char *a2[] = {"fit", d, "--no-loo", "--where", "data.source=text", NULL};
    assert_int_equal(run_fit(a2, 5, text, sizeof text), 0);
    assert_non_null(strstr(text, "--where kept 9 runs (9 other completed runs not selected)"));
    /* --mixed-data lets the fit go past the data check; what it then makes of two flat
     * groups (losses 1.8 and 1.2 at every N and D) is the identifiability rules' business:
     * a constant they cannot determine is refused by name, never for the data. */
    char *a3[] = {"fit", d, "--no-loo", "--mixed-data", NULL};
    int rc3 = run_fit(a3, 4, text, sizeof text);
    if (rc3) {
        assert_int_equal(rc3, 2);
        assert_null(strstr(qat_errmsg(), "trained on different data"));
        assert_non_null(strstr(qat_errmsg(), "is not identified"));
    }
    /* bad --where: unknown key, bad value, no config to select a CSV by */
    char *a4[] = {"fit", d, "--where", "model.seqlen=64", NULL};
    assert_int_equal(run_fit(a4, 4, text, sizeof text), 2);
    assert_non_null(strstr(qat_errmsg(), "--where model.seqlen=64: unknown config key 'model.seqlen' (did you mean 'model.seq_len'?)"));
    char *a5[] = {"fit", d, "--where", "model.seq_len=abc", NULL};
    assert_int_equal(run_fit(a5, 4, text, sizeof text), 2);
    assert_non_null(strstr(qat_errmsg(), "--where model.seq_len=abc: model.seq_len: expected an integer"));
    char csv[512];
    path_in(csv, sizeof csv, "where.csv");
    FILE *f = fopen(csv, "w");
    fputs("N,D,loss\n1e6,2e7,3\n", f);
    fclose(f);
    char *a6[] = {"fit", csv, "--where", "seed=0", NULL};
    assert_int_equal(run_fit(a6, 4, text, sizeof text), 2);
    assert_non_null(strstr(qat_errmsg(), "a CSV has no run configs"));
}

/* Messages are printed as "qat: MESSAGE": a message that starts with its
 * command's name again reads "qat: qat fit: ...". */
static void test_messages_have_one_prefix(void **s) {
    (void)s;
    char text[4096];
    char *a1[] = {"fit", "--bogus", NULL};
    assert_int_equal(run_fit(a1, 2, text, sizeof text), 2);
    assert_int_not_equal(strncmp(qat_errmsg(), "qat ", 4), 0);
    assert_non_null(strstr(qat_errmsg(), "unknown option '--bogus'"));
    char *a2[] = {"fit", NULL};
    assert_int_equal(run_fit(a2, 1, text, sizeof text), 2);
    assert_int_not_equal(strncmp(qat_errmsg(), "qat ", 4), 0);
    char *a3[] = {"plot", "x.h5", NULL};
    char p[512];
    path_in(p, sizeof p, "stdout.txt");
    assert_int_equal(qat_test_capture(qat_plot_main, 2, a3, p, text, sizeof text), 2);
    assert_int_not_equal(strncmp(qat_errmsg(), "qat ", 4), 0);
    assert_non_null(strstr(qat_errmsg(), "no output given"));
}

/* What qat writes it reads back, and numbers are numbers one way: a fit's own
 * --csv as input warned about five unknown columns (rho, eff_d, pred,
 * resid_log, origin); an empty CSV was "f.csv:0: no data rows", as if line 0
 * existed; --fix alpha=0x10 was taken as 16, though the CSV refuses hex. */
static void test_own_csv_and_numbers(void **s) {
    (void)s;
    char in[512], out[512], empty[512], wpath[512], buf[8192];
    path_in(in, sizeof in, "own-in.csv");
    path_in(out, sizeof out, "own-out.csv");
    FILE *f = fopen(in, "w");
    fprintf(f, "N,D,loss\n");
    const double N[] = {1e6, 3e6, 1e7, 3e7}, D[] = {2e7, 6e7, 2e8};
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++)
            fprintf(f, "%g,%g,%.10g\n", N[i], D[j], 1.817 + 482 * pow(N[i], -0.348) + 2085 * pow(D[j], -0.366));
    fclose(f);
    char *argv[] = {"fit", in, "--no-loo", "--csv", out};
    assert_int_equal(run_fit(argv, 5, buf, sizeof buf), 0);
    path_in(wpath, sizeof wpath, "own-warnings.txt");
    FILE *warn = fopen(wpath, "w+");
    qat_fit_runs rs = {0};
    assert_int_equal(qat_fit_read_csv_warn(out, &rs, warn), QAT_OK);
    rewind(warn);
    size_t len = fread(buf, 1, sizeof buf - 1, warn);
    buf[len] = 0;
    fclose(warn);
    assert_int_equal(rs.n, 12);
    assert_string_equal(buf, ""); /* no "unknown column" */
    qat_fit_runs_free(&rs);
    /* an input whose name holds a line end: its --csv output (the name quoted
     * in `origin`) reads back, every row */
    for (int k = 0; k < 2; k++) {
        char nl[512], nl_out[512];
        path_in(nl, sizeof nl, k ? "new\rline.csv" : "new\nline.csv");
        path_in(nl_out, sizeof nl_out, "own-nl-out.csv");
        assert_int_equal(rename(in, nl), 0);
        char *nlargv[] = {"fit", nl, "--no-loo", "--csv", nl_out};
        assert_int_equal(run_fit(nlargv, 5, buf, sizeof buf), 0);
        assert_int_equal(qat_fit_read_csv(nl_out, &rs), QAT_OK);
        assert_int_equal(rs.n, 12);
        qat_fit_runs_free(&rs);
        assert_int_equal(rename(nl, in), 0);
    }
    /* a column qat does not know is still named */
    f = fopen(in, "w");
    fprintf(f, "N,D,loss,grad\n1e6,2e7,3.2,mxfp4\n");
    fclose(f);
    warn = fopen(wpath, "w+");
    assert_int_equal(qat_fit_read_csv_warn(in, &rs, warn), QAT_OK);
    rewind(warn);
    len = fread(buf, 1, sizeof buf - 1, warn);
    buf[len] = 0;
    fclose(warn);
    assert_non_null(strstr(buf, "unknown column 'grad' ignored"));
    qat_fit_runs_free(&rs);

    path_in(empty, sizeof empty, "empty.csv");
    fclose(fopen(empty, "w"));
    assert_int_equal(qat_fit_read_csv(empty, &rs), QAT_EINPUT);
    assert_non_null(strstr(qat_errmsg(), "empty.csv: no data rows (the file is empty)"));
    assert_null(strstr(qat_errmsg(), ":0:"));
    qat_fit_runs_free(&rs);

    const char *hex[] = {"alpha=0x10", "E=0x1p0", "beta=0X.8"};
    for (int k = 0; k < 3; k++) {
        char *av[] = {"fit", out, "--no-loo", "--fix", (char *)hex[k]};
        assert_int_equal(run_fit(av, 5, buf, sizeof buf), 2);
        assert_non_null(strstr(qat_errmsg(), "is not a number (decimal or scientific notation, as in a CSV)"));
    }
    char *inf[] = {"fit", out, "--no-loo", "--fix", "alpha=inf"};
    assert_int_equal(run_fit(inf, 5, buf, sizeof buf), 2);
    assert_non_null(strstr(qat_errmsg(), "--fix alpha: value is not a finite number"));
    char *sci[] = {"fit", out, "--no-loo", "--fix", "beta=3.66e-1"};
    assert_int_equal(run_fit(sci, 5, buf, sizeof buf), 0);
}

/* A run directory is walked once however its links run: a link back up
 * (`latest -> .`, an absolute link to the folder itself) made the walk follow
 * it forever, growing (or, with one link, end in "the same file as ...: a path
 * given twice", though one path was given). Each directory is entered once (by
 * device and inode), and a run log reached twice through links inside one walk
 * counts once, by its real path where it has one, without a word; the same
 * directory given twice on the command line is still refused. */
static void test_directory_walk_links(void **s) {
    (void)s;
    write_runlog("walk", "completed", 0, "fp32", 0, 0, 0); /* placeholder: skipped */
    write_runlog("walk/a", "completed", 1e6, "fp32", 3.2, 2e7, 1);
    write_runlog("walk/b", "completed", 2e6, "fp32", 3.1, 2e7, 1);
    write_runlog("walk/b/c", "completed", 4e6, "fp32", 3.0, 2e7, 1);
    char w[512], l[600], abs[600];
    path_in(w, sizeof w, "walk");
    snprintf(l, sizeof l, "%s/self", w);
    assert_int_equal(symlink(".", l), 0);
    snprintf(l, sizeof l, "%s/abs", w);
    assert_int_equal(symlink(w, l), 0);
    snprintf(l, sizeof l, "%s/b/up", w);
    assert_int_equal(symlink("..", l), 0);
    snprintf(l, sizeof l, "%s/0-latest", w); /* sorts before a: the run is still named by a/ */
    assert_int_equal(symlink("a", l), 0);
    mkdir(strcat(strcpy(abs, w), "/d"), 0755);
    snprintf(l, sizeof l, "%s/d/run.h5", w); /* a run log linked into another directory */
    assert_int_equal(symlink("../b/run.h5", l), 0);
    snprintf(l, sizeof l, "%s/dangling", w); /* a link to nothing is no directory to walk */
    assert_int_equal(symlink("nowhere", l), 0);
    alarm(20); /* the walk that never ended fails the test instead of hanging it */
    qat_fit_runs rs = {0};
    char buf[4096];
    assert_int_equal(read_dir("walk", &rs, buf, sizeof buf), 1); /* the placeholder only */
    alarm(0);
    assert_int_equal(rs.n, 3);
    const char *want[3] = {"walk/a/run.h5", "walk/b/c/run.h5", "walk/b/run.h5"};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(rs.run[i].origin), m = strlen(want[i]);
        assert_true(n >= m);
        assert_string_equal(rs.run[i].origin + n - m, want[i]);
        assert_null(strstr(rs.run[i].origin, "self"));
    }
    assert_null(strstr(buf, "the same"));
    qat_fit_runs_free(&rs);
    /* what the outputs are checked against: each run log once, by the same names */
    char **files;
    int nf;
    char *one[1] = {w};
    assert_int_equal(qat_fit_input_files(one, 1, &files, &nf), QAT_OK);
    assert_int_equal(nf, 4); /* a, b, b/c and the placeholder */
    for (int i = 0; i < nf; i++) free(files[i]);
    free(files);
    /* the same directory given twice on the command line: still refused */
    char again[600];
    snprintf(again, sizeof again, "%s/self", w);
    char *two[2] = {w, again};
    int skipped = 0;
    assert_int_equal(qat_fit_read_inputs(two, 2, &rs, &skipped, NULL), QAT_EINPUT);
    assert_non_null(strstr(qat_errmsg(), "the same file as"));
    qat_fit_runs_free(&rs);
}

/* A subdirectory of a runs directory that cannot be read was passed over in
 * silence: the fit went on with the other runs, exit 0, its runs lost. Now one
 * line names the directory and the reason, exit 1. Permissions do not stop
 * root, so as root the reading is done in a child that drops to nobody. */
static void test_unreadable_run_directory(void **s) {
    (void)s;
    write_runlog("locked", "completed", 0, "fp32", 0, 0, 0); /* placeholder */
    write_runlog("locked/ok", "completed", 1e6, "fp32", 3.2, 2e7, 1);
    write_runlog("locked/shut", "completed", 2e6, "fp32", 3.1, 2e7, 1);
    char d[512], shut[512];
    path_in(d, sizeof d, "locked");
    path_in(shut, sizeof shut, "locked/shut");
    assert_int_equal(chmod(dir, 0755), 0); /* the child may be nobody */
    assert_int_equal(chmod(shut, 0), 0);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        if (geteuid() == 0 && (setgid(65534) || setuid(65534))) _exit(100);
        qat_fit_runs rs = {0};
        int skipped = 0;
        char *paths[1] = {d};
        int rc = qat_fit_read_inputs(paths, 1, &rs, &skipped, NULL);
        char msg[1024];
        int n = snprintf(msg, sizeof msg, "%d runs: %s", rs.n, rc ? qat_errmsg() : "");
        if (write(fds[1], msg, (size_t)n) != n) _exit(101);
        _exit(rc);
    }
    close(fds[1]);
    char msg[1024] = "";
    ssize_t n = read(fds[0], msg, sizeof msg - 1);
    msg[n > 0 ? n : 0] = 0;
    close(fds[0]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    chmod(shut, 0755);
    chmod(dir, 0700);
    assert_true(WIFEXITED(st));
    if (WEXITSTATUS(st) == 100) { fprintf(stderr, "test_unreadable_run_directory: cannot drop to nobody; skipped\n"); return; }
    if (WEXITSTATUS(st) != QAT_ERUNTIME) fprintf(stderr, "child: exit %d, %s\n", WEXITSTATUS(st), msg);
    assert_int_equal(WEXITSTATUS(st), QAT_ERUNTIME);
    assert_non_null(strstr(msg, "locked/shut: cannot read this directory: Permission denied"));
}

/* Line ends and headers as other tools write them: a CSV saved with CR line
 * ends (classic Mac, some exports) read as one line, its rows lost (19 of 20
 * without a header, "no data rows" with one); CRLF and LF were fine. A header
 * with trailing commas (spreadsheets pad rows) named two columns '' and was
 * refused; a header-less first row with an empty N was taken for a header.
 * A quoted field may hold a line end (RFC 4180), as --csv writes an origin
 * whose file name has one. */
static void test_csv_line_ends_and_headers(void **s) {
    (void)s;
    const char *ends[3] = {"\r", "\r\n", "\n"};
    for (int e = 0; e < 3; e++) {
        char text[512];
        for (int h = 0; h < 2; h++) {
            const char *E = ends[e];
            snprintf(text, sizeof text, "%s%s1e6,2e7,3.5%s2e6,2e7,3.4%s%s4e6,2e7,3.3%s", h ? "N,D,loss" : "", h ? E : "",
                     E, E, E, E);
            write_file("ends.csv", text);
            qat_fit_runs rs = {0};
            char p[512];
            path_in(p, sizeof p, "ends.csv");
            int rc = qat_fit_read_csv(p, &rs);
            if (rc || rs.n != 3) fprintf(stderr, "line end %d, header %d: rc %d, %d rows: %s\n", e, h, rc, rs.n, qat_errmsg());
            assert_int_equal(rc, QAT_OK);
            assert_int_equal(rs.n, 3);
            char want[32];
            snprintf(want, sizeof want, "ends.csv:%d", h + 4); /* a blank line before the third row */
            assert_non_null(strstr(rs.run[2].origin, want));
            qat_fit_runs_free(&rs);
        }
        /* line numbers count CR-ended lines too */
        snprintf(text, sizeof text, "N,D,loss%s1e6,2e7,3.5%s1e6,abc,3.2%s", ends[e], ends[e], ends[e]);
        expect_csv_error(text, "bad.csv:3:5:");
    }
    /* trailing empty header fields are nothing, as on data rows */
    write_file("pad.csv", "N,D,loss,,\n1e6,2e7,3.5,,\n2e6,2e7,3.4\n");
    char p[512], wpath[512], buf[2048];
    path_in(p, sizeof p, "pad.csv");
    path_in(wpath, sizeof wpath, "pad-warn.txt");
    FILE *warn = fopen(wpath, "w+");
    qat_fit_runs rs = {0};
    int rc = qat_fit_read_csv_warn(p, &rs, warn);
    rewind(warn);
    size_t len = fread(buf, 1, sizeof buf - 1, warn);
    buf[len] = 0;
    fclose(warn);
    if (rc) fprintf(stderr, "pad.csv: %s\n", qat_errmsg());
    assert_int_equal(rc, QAT_OK);
    assert_int_equal(rs.n, 2);
    assert_string_equal(buf, "");
    qat_fit_runs_free(&rs);
    /* ... but a value under such a column is a shifted row */
    expect_csv_error("N,D,loss,,\n1e6,2e7,3.5,,7\n", "bad.csv:2:");
    /* a first row with an empty N is a data row with an error, not a header */
    expect_csv_error(",1e9,3\n2e6,1e9,3\n", "bad.csv:1:1: expected a positive number for N, got an empty cell");
    expect_csv_error("  ,1e9,3\n", "bad.csv:1:3: expected a positive number for N");
    /* a quoted field across lines is one field; the rows after it keep their numbers */
    write_file("multi.csv", "N,D,loss,origin\n1e6,2e7,3.5,\"a\nb.csv:2\"\r\n2e6,2e7,3.4,\"x\"\"y\"\n");
    path_in(p, sizeof p, "multi.csv");
    assert_int_equal(qat_fit_read_csv(p, &rs), QAT_OK);
    assert_int_equal(rs.n, 2);
    assert_non_null(strstr(rs.run[1].origin, "multi.csv:4"));
    qat_fit_runs_free(&rs);
    expect_csv_error("N,D,loss,origin\n1e6,2e7,3.5,x\n1e6,2e7,3.5,\"open\n2e6,2e7,3.4,x\n",
                     "bad.csv:3:13: a quoted field is not closed");
}

/* Files of another kind given to qat fit were a warning and exit 0 ("skipped:
 * not a readable qat run log (q.h5: string attribute status is missing)"),
 * a FIT.h5 or a checkpoint passed where a run log belongs lost without an
 * error. Each is now named for what it is, exit 2; a completed run log missing
 * a part it must have is damaged, exit 1; an unfinished run still a warning. */
static void test_other_hdf5_inputs(void **s) {
    (void)s;
    char law[512], fit[512], text[1 << 14];
    path_in(law, sizeof law, "kinds.csv");
    write_law_csv(law, 3, 3);
    path_in(fit, sizeof fit, "kinds-fit.h5");
    char *mk[] = {"fit", law, "--no-loo", "--out", fit};
    assert_int_equal(run_fit(mk, 5, text, sizeof text), 0);
    char ckpt[512], other[512], empty[512];
    path_in(ckpt, sizeof ckpt, "kinds-ckpt.h5");
    path_in(other, sizeof other, "kinds-other.h5");
    path_in(empty, sizeof empty, "kinds-empty.h5");
    const char *groups[2][2] = {{"params", "state"}, {"images", "labels"}};
    const char *names[2] = {ckpt, other};
    for (int k = 0; k < 2; k++) {
        hid_t h = H5Fcreate(names[k], H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        for (int g = 0; g < 2; g++) H5Gclose(H5Gcreate2(h, groups[k][g], H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
        H5Fclose(h);
    }
    H5Fclose(H5Fcreate(empty, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
    struct { const char *path, *msg; int code; } cases[] = {
        {fit, "kinds-fit.h5 is a fit file (qat fit --out), not a run log", QAT_EINPUT},
        {ckpt, "kinds-ckpt.h5 is a checkpoint (ckpt.h5, written by qat train), not a run log", QAT_EINPUT},
        {other, "kinds-other.h5 is an HDF5 file but not a qat run log", QAT_EINPUT},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        qat_fit_runs rs = {0};
        int skipped = 0;
        char *paths[2] = {law, (char *)cases[c].path};
        int rc = qat_fit_read_inputs(paths, 2, &rs, &skipped, NULL);
        if (rc != cases[c].code || !strstr(qat_errmsg(), cases[c].msg))
            fprintf(stderr, "%s: rc %d: %s\n", cases[c].path, rc, qat_errmsg());
        assert_int_equal(rc, cases[c].code);
        assert_non_null(strstr(qat_errmsg(), cases[c].msg));
        qat_fit_runs_free(&rs);
        char *cmd[] = {"fit", law, (char *)cases[c].path, "--no-loo"};
        assert_int_equal(run_fit(cmd, 4, text, sizeof text), cases[c].code);
        assert_string_equal(text, "");
    }
    /* an HDF5 file with nothing in it is what a run killed as it created its log
     * leaves: a warning, as before */
    qat_fit_runs rs = {0};
    int skipped = 0;
    char *ep[1] = {empty};
    assert_int_equal(qat_fit_read_inputs(ep, 1, &rs, &skipped, NULL), QAT_OK);
    assert_int_equal(skipped, 1);
    qat_fit_runs_free(&rs);
    /* a completed run log with a dataset it must have missing: damaged, exit 1 */
    const char *cut[2] = {"/final/val_loss", "/train/step"};
    for (int k = 0; k < 2; k++) {
        char sub[64], p[512];
        snprintf(sub, sizeof sub, "kinds-damaged%d", k);
        write_runlog(sub, "completed", 1e6, "fp32", 3.2, 2e7, 1);
        path_in(p, sizeof p, sub);
        strcat(p, "/run.h5");
        hid_t h = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
        assert_true(h >= 0);
        assert_true(H5Ldelete(h, cut[k], H5P_DEFAULT) >= 0);
        H5Fclose(h);
        char *paths[1] = {p};
        int rc = qat_fit_read_inputs(paths, 1, &rs, &skipped, NULL);
        if (rc != QAT_ERUNTIME) fprintf(stderr, "%s without %s: rc %d: %s\n", sub, cut[k], rc, qat_errmsg());
        assert_int_equal(rc, QAT_ERUNTIME);
        assert_non_null(strstr(qat_errmsg(), sub)); /* named (the wording is runlog/'s or ours) */
        qat_fit_runs_free(&rs);
        char *cmd[] = {"fit", law, p, "--no-loo"};
        assert_int_equal(run_fit(cmd, 4, text, sizeof text), QAT_ERUNTIME);
    }
    /* a run still running (and one whose /train is not there yet) is skipped, as ever */
    write_runlog("kinds-running", "running", 1e6, "fp32", 3.2, 2e7, 0);
    char p[512];
    path_in(p, sizeof p, "kinds-running/run.h5");
    hid_t h = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(h >= 0);
    assert_true(H5Ldelete(h, "/train", H5P_DEFAULT) >= 0);
    H5Fclose(h);
    char *rp[1] = {p};
    skipped = 0;
    assert_int_equal(qat_fit_read_inputs(rp, 1, &rs, &skipped, NULL), QAT_OK);
    assert_int_equal(skipped, 1);
    qat_fit_runs_free(&rs);
}

/* --exclude by what the glob looks like, never by how an input path is spelled:
 * '*' crossed '/' and the file path was matched too, so the docs' own
 * '*' '/' '*' '/' 'mxfp4*' (a backward scheme) dropped every row of
 * exp/quartet/mxfp4-study.csv, and 'mxfp4*' (a weight format) every row of
 * mxfp4-study.csv. One part is a weight format, two a W/A pair, three a W/A/G
 * key, each part one part; a glob ending in .csv or .h5 a file. */
static void test_exclude_rule(void **s) {
    (void)s;
    char p[512];
    path_in(p, sizeof p, "exp");
    mkdir(p, 0755);
    path_in(p, sizeof p, "exp/quartet");
    mkdir(p, 0755);
    write_file("exp/quartet/mxfp4-study.csv", "N,D,loss,format,act_format,grad_format\n"
                                               "1e6,2e7,3.5,fp32,fp32,fp32\n"       /* 2 */
                                               "1e6,2e7,3.5,mxfp4,mxfp4,mxfp4@sr\n" /* 3 */
                                               "1e6,2e7,3.5,fp32,int4,fp32\n"       /* 4 */
                                               "1e6,2e7,3.5,int4,fp32,mxfp4\n");    /* 5 */
    path_in(p, sizeof p, "exp/quartet/mxfp4-study.csv");
    struct { const char *glob; int removed; } cases[] = {
        {"*/*/mxfp4*", 2},   /* the backward scheme: rows 3 and 5, not the file */
        {"mxfp4*", 1},       /* the weight format: row 3, not the file */
        {"*int4", 1},        /* the weight format: row 5 (not act int4 through "fp32/int4") */
        {"*/int4", 1},       /* the pair: row 4 */
        {"*", 4},
        {"*/*", 4},
        {"*mxfp4-study.csv", 4}, /* the file, however the path is spelled before it */
        {"*/quartet/*.csv", 4},
        {"quartet", 0},
        {"*/*/*/*", 0},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        qat_fit_runs rs = {0};
        assert_int_equal(qat_fit_read_csv(p, &rs), QAT_OK);
        int n = qat_fit_exclude(&rs, cases[c].glob);
        if (n != cases[c].removed) fprintf(stderr, "--exclude %s removed %d\n", cases[c].glob, n);
        assert_int_equal(n, cases[c].removed);
        assert_int_equal(rs.n, 4 - n);
        qat_fit_runs_free(&rs);
    }
}

/* The messages of qat fit's selection: "--where kept N runs" printed on stdout
 * before a fit that then failed; a group named as a key got "did you mean
 * 'model'?" back; runs all dropped by --drop-highest were "0 usable runs after
 * skipping, selecting and excluding" without a word of --drop-highest. */
static void test_selection_messages(void **s) {
    (void)s;
    char d[512], text[1 << 14];
    path_in(d, sizeof d, "sel");
    mkdir(d, 0755);
    for (int i = 0; i < 3; i++) {
        char sub[32];
        snprintf(sub, sizeof sub, "sel/r%d", i);
        write_run_with_config(sub, i ? "model: {preset: s2}\n" : "model: {preset: s1}\n", 1e6 * (i + 1), 2e7, 1.8);
    }
    char *few[] = {"fit", d, "--no-loo", "--where", "model.preset=s1"};
    assert_int_equal(run_fit(few, 5, text, sizeof text), 2);
    assert_string_equal(text, "");
    assert_non_null(strstr(qat_errmsg(), "1 usable run after"));
    assert_non_null(strstr(qat_errmsg(), "2 not selected by --where"));
    char *group[] = {"fit", d, "--where", "model={}"};
    assert_int_equal(run_fit(group, 4, text, sizeof text), 2);
    assert_null(strstr(qat_errmsg(), "did you mean 'model'"));
    assert_non_null(strstr(qat_errmsg(), "--where model={}: 'model' is a group of config keys, not a key"));
    char csv[512];
    path_in(csv, sizeof csv, "sel.csv");
    FILE *f = fopen(csv, "w");
    fputs("N,D,loss\n1e6,2e7,3.2\n2e6,2e7,3.1\n4e6,4e7,3.0\n8e6,4e7,2.9\n", f);
    fclose(f);
    char *drop[] = {"fit", csv, "--drop-highest", "100"};
    assert_int_equal(run_fit(drop, 4, text, sizeof text), 2);
    assert_non_null(strstr(qat_errmsg(), "0 usable runs after"));
    assert_non_null(strstr(qat_errmsg(), "4 dropped by --drop-highest 100"));
    char *excl[] = {"fit", csv, "--drop-highest", "1", "--exclude", "*"};
    assert_int_equal(run_fit(excl, 6, text, sizeof text), 2);
    assert_non_null(strstr(qat_errmsg(), "1 dropped by --drop-highest 1, 3 dropped by --exclude '*'"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_layouts), cmocka_unit_test(test_csv_errors),
        cmocka_unit_test(test_csv_canonical_formats),
        cmocka_unit_test(test_runlogs), cmocka_unit_test(test_fit_command),
        cmocka_unit_test(test_killed_runlogs), cmocka_unit_test(test_csv_checked_values),
        cmocka_unit_test(test_fit_arguments_first), cmocka_unit_test(test_bootstrap_drops_blind_resamples),
        cmocka_unit_test(test_fit_where_and_mixed_data),
        cmocka_unit_test(test_where_formats_canonical),
        cmocka_unit_test(test_mixed_data_hint_selects_one_group),
        cmocka_unit_test(test_messages_have_one_prefix),
        cmocka_unit_test(test_own_csv_and_numbers),
        cmocka_unit_test(test_directory_walk_links),
        cmocka_unit_test(test_unreadable_run_directory),
        cmocka_unit_test(test_csv_line_ends_and_headers),
        cmocka_unit_test(test_other_hdf5_inputs),
        cmocka_unit_test(test_exclude_rule),
        cmocka_unit_test(test_selection_messages),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

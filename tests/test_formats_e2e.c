/*
 * tests/test_formats_e2e.c — every format × every estimator that applies to it
 * trains end-to-end from YAML through the `qat` binary without NaN.
 *
 * Weights get (format, estimator); activations get the same pair when the
 * estimator applies to activations too (PV is for weights, so its runs keep
 * fp32 activations). Each run is a few steps of a tiny model: the point is that
 * forward, backward, optimizer, checkpoint and run log all work for the
 * combination, not how well it learns (experiments/ measure that).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "compress/estimator.h"
#include "compress/format.h"
#include "runlog/runlog.h"

static const char *FORMATS[] = {"int1", "int2", "int3", "int4", "int8", "ternary", "fp4", "sp50", "sp75",
                                "2:4", "4:8", "sp50+int4", "2:4+int4", "vq2x2", "vq4x2", "noise(int4)"};
static const char *ESTIMATORS[] = {"ste", "clip", "trust", "lsq", "rbbm", "pv", "masked"};

static int applies(const char *fmt, const char *est, int is_weight) {
    qat_fmt f;
    if (qat_fmt_parse(fmt, &f)) return 0;
    qat_compress_side side;
    memset(&side, 0, sizeof side);
    snprintf(side.format, sizeof side.format, "%s", fmt);
    snprintf(side.estimator, sizeof side.estimator, "%s", est);
    snprintf(side.scale, sizeof side.scale, "rms");
    side.hadamard = -1;
    side.clip_scale = 1.0;
    side.rbbm_p = 0.1;
    side.pv_tau = 0.01;
    side.pv_group = 8;
    qat_est e;
    return qat_est_resolve(&f, &side, is_weight, &e) == 0;
}

static void test_every_format_and_estimator_trains(void **state) {
    (void)state;
    const char *bin = getenv("QAT_BIN");
    assert_non_null(bin);
    char dir[] = "/tmp/qat-formats-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cfg[256];
    snprintf(cfg, sizeof cfg, "%s/tiny.yaml", dir);
    FILE *f = fopen(cfg, "w");
    assert_non_null(f);
    fputs("threads: 1\nmodel: {preset: s1, seq_len: 32}\ndata: {source: synthetic}\n" /* many short runs: no 40 MB load each */
          "train: {tokens: 4096, batch_tokens: 512, eval_tokens: 512, eval_every: 4, checkpoint_every: 4, log_every: 2}\n", f);
    fclose(f);
    int runs = 0, failures = 0;
    printf("  %-12s %-7s %-12s %s\n", "format", "est", "act", "val loss");
    for (size_t i = 0; i < sizeof FORMATS / sizeof *FORMATS; i++)
        for (size_t j = 0; j < sizeof ESTIMATORS / sizeof *ESTIMATORS; j++) {
            const char *fmt = FORMATS[i], *est = ESTIMATORS[j];
            if (!applies(fmt, est, 1)) continue;
            int act = applies(fmt, est, 0);
            char name[64], sw[128], se[64], sa[128], sae[64], sn[96], out[256];
            snprintf(name, sizeof name, "r%d", runs);
            snprintf(sw, sizeof sw, "compress.weights.format=%s", fmt);
            snprintf(se, sizeof se, "compress.weights.estimator=%s", est);
            snprintf(sa, sizeof sa, "compress.activations.format=%s", act ? fmt : "fp32");
            snprintf(sae, sizeof sae, "compress.activations.estimator=%s", act ? est : "");
            snprintf(sn, sizeof sn, "name=%s", name);
            snprintf(out, sizeof out, "%s/runs", dir);
            pid_t pid = fork();
            assert_true(pid >= 0);
            if (pid == 0) {
                execl(bin, bin, "train", cfg, "--set", sw, "--set", se, "--set", sa, "--set", sae, "--set", sn,
                      "--out", out, "--quiet", (char *)NULL);
                _exit(127);
            }
            int st;
            waitpid(pid, &st, 0);
            char path[512];
            snprintf(path, sizeof path, "%s/%s/run.h5", out, name);
            qat_runlog_summary s;
            int ok = WIFEXITED(st) && WEXITSTATUS(st) == 0 && qat_runlog_read_final(path, &s) == 0 && s.has_final &&
                     !strcmp(s.status, "completed") && isfinite(s.final.val_loss) && isfinite(s.final.train_loss);
            printf("  %-12s %-7s %-12s %s %.4f\n", fmt, est, act ? fmt : "fp32", ok ? "ok " : "FAIL",
                   ok ? s.final.val_loss : NAN);
            failures += !ok;
            runs++;
        }
    printf("  %d combinations trained, %d failed\n", runs, failures);
    assert_true(runs >= 40);
    assert_int_equal(failures, 0);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_every_format_and_estimator_trains)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}

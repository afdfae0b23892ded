/*
 * tests/test_limits_e2e.c — model sizes the keys allow but a machine cannot
 * hold, with the real binary (QAT_BIN), each child under RLIMIT_AS = 512 MiB
 * (an allocation past it fails, as on a machine that small; nothing here
 * allocates more):
 *
 *   - `qat train --print-config` validates and prints any size without building
 *     the model (docs/cli.md): model.dim 65536 (a one-layer model of it was
 *     206 GB and died of SIGABRT), 1024 layers of dim 8192, train.batch_tokens
 *     2147483520 exit 0 with the config printed; a format that does not fit the
 *     widths is still exit 2;
 *   - training a model whose lower-bound memory estimate (train/trainer.c)
 *     exceeds any machine's memory (tens of TiB) is exit 1 with one line giving the estimate,
 *     the machine's memory and the keys, before anything is allocated or any
 *     run directory is made;
 *   - running out of memory anyway (a 205 MB buffer under the 512 MiB limit) is
 *     one line naming the size and exit 1, not an abort (exit 134).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "testutil.h"

#pragma GCC diagnostic ignored "-Wformat-truncation"

/* RLIMIT_AS of every child. Not under AddressSanitizer (make test-asan): its
 * shadow memory is a multi-terabyte reservation that no address-space limit
 * admits, so every child died at start (exit 134). There the children run
 * unlimited: the first two tests still check that nothing is built (a build of
 * these sizes would fail loudly in ASan's allocator), and the third, which
 * needs the limit to run out of memory, is skipped. */
#if defined(__SANITIZE_ADDRESS__)
#define LIMIT 0LL
#else
#define LIMIT (512LL << 20)
#endif

static char g_dir[256];

static const char *at(const char *name) {
    static char buf[4][600];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
    return buf[k];
}

/* s3 on the synthetic corpus: the base every size below overrides. */
static const char SMALL[] = "name: small\nthreads: 1\nmodel: {preset: s3, vocab: 256, seq_len: 128}\n"
                            "data: {source: synthetic}\ntrain: {tokens: 2e6, batch_tokens: 4096, eval_every: 0}\n";

/* One layer of width 2048: 205 MB of weights, 0.8 GB by the estimate (far below
 * any machine's memory), more than the 512 MiB limit leaves. */
static const char WIDE[] = "name: wide\nthreads: 1\nmodel: {preset: \"\", layers: 1, dim: 2048, heads: 64, vocab: 256, "
                           "seq_len: 32}\ndata: {source: synthetic}\ntrain: {tokens: 64, batch_tokens: 32, "
                           "eval_every: 0, eval_tokens: 32}\n";

static int setup(void **state) {
    (void)state;
    if (!getenv("QAT_BIN") || qat_test_mkdtemp(g_dir, sizeof g_dir, "limits")) return -1;
    if (qat_test_write_text(at("small.yaml"), SMALL) || qat_test_write_text(at("wide.yaml"), WIDE)) return -1;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    return qat_test_rmtree(g_dir);
}

/* `qat ARGS...` under the limit: exit code; stdout and stderr in out/err. */
static int run(char *out, size_t n_out, char *err, size_t n_err, char *const args[]) {
    int rc = qat_test_wait_stderr(qat_test_spawn_as(g_dir, args, LIMIT), g_dir, err, n_err);
    qat_test_read_in(g_dir, "stdout.txt", out, n_out);
    return rc;
}

static int lines_of(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

static void test_print_config_builds_no_model(void **state) {
    (void)state;
    static char out[65536], err[8192];
    char *const cfg = (char *)at("small.yaml");
    static const struct { const char *set1, *set2, *shows; } cases[] = {
        {"model.dim=65536", NULL, "  dim: 65536 "},
        {"model.layers=1024", "model.dim=8192", "  layers: 1024 "},
        {"train.batch_tokens=2147483520", NULL, "  batch_tokens: 2147483520 "},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = cases[i].set2 ? run(out, sizeof out, err, sizeof err, (char *[]){"train", cfg, "--print-config", "--set",
                                     (char *)cases[i].set1, "--set", (char *)cases[i].set2, NULL})
                               : run(out, sizeof out, err, sizeof err, (char *[]){"train", cfg, "--print-config", "--set",
                                     (char *)cases[i].set1, NULL});
        printf("  --print-config --set %s%s%s: exit %d %s", cases[i].set1, cases[i].set2 ? " --set " : "",
               cases[i].set2 ? cases[i].set2 : "", rc, err);
        assert_int_equal(rc, 0);
        assert_string_equal(err, "");
        assert_non_null(strstr(out, cases[i].shows));
        assert_non_null(strstr(out, "# qat run config (docs/config.md): every key, defaults included."));
    }
    /* still validated at that size: a scale group that does not divide the width */
    int rc = run(out, sizeof out, err, sizeof err, (char *[]){"train", cfg, "--print-config", "--set", "model.dim=65536",
                 "--set", "compress.weights.format=int4", "--set", "compress.weights.group=48", NULL});
    printf("  --print-config, dim 65536, group 48: exit %d %s", rc, err);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(err, "group 48 does not divide the input dim 65536"));
    assert_int_equal(lines_of(err), 1);
}

static void test_too_large_for_the_machine(void **state) {
    (void)state;
    static char out[65536], err[8192];
    char *const cfg = (char *)at("small.yaml"), *const runs = (char *)at("runs");
    /* 201 TiB and 43 TiB by the estimate: more than any machine this runs on */
    static const struct { const char *set1, *set2, *key; } cases[] = {
        {"model.dim=65536", "model.layers=256", "model.dim 65536"},
        {"train.batch_tokens=2147483520", "seed=1", "train.batch_tokens 2147483520"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = run(out, sizeof out, err, sizeof err, (char *[]){"train", cfg, "--set", (char *)cases[i].set1, "--set",
                     (char *)cases[i].set2, "--out", runs, NULL});
        printf("  train --set %s --set %s: exit %d %s", cases[i].set1, cases[i].set2, rc, err);
        assert_int_equal(rc, 1);
        assert_int_equal(lines_of(err), 1);
        assert_true(!strncmp(err, "qat: ", 5));
        assert_non_null(strstr(err, "small.yaml: the run needs at least "));
        assert_non_null(strstr(err, " TiB of memory and this machine has "));
        assert_non_null(strstr(err, cases[i].key));
        assert_non_null(strstr(err, "model.layers"));
        assert_non_null(strstr(err, "train.batch_tokens"));
        struct stat st;
        assert_int_equal(stat(runs, &st), -1); /* refused before any run directory */
    }
}

static void test_out_of_memory_is_exit_1(void **state) {
    (void)state;
    if (!LIMIT) { /* AddressSanitizer: no address-space limit to run out of (above) */
        skip();
        return;
    }
    static char out[65536], err[8192];
    int rc = run(out, sizeof out, err, sizeof err, (char *[]){"train", (char *)at("wide.yaml"), "--out",
                 (char *)at("wide_runs"), "--quiet", NULL});
    printf("  train wide.yaml under %lld MiB: exit %d %s", (long long)(LIMIT >> 20), rc, err);
    assert_int_equal(rc, 1);
    assert_int_equal(lines_of(err), 1);
    assert_true(!strncmp(err, "qat: out of memory allocating ", 30));
    assert_non_null(strstr(err, " bytes ("));
}

int main(void) {
    if (!getenv("QAT_BIN")) {
        fprintf(stderr, "QAT_BIN is not set: skipped\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_print_config_builds_no_model),
        cmocka_unit_test(test_too_large_for_the_machine),
        cmocka_unit_test(test_out_of_memory_is_exit_1),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/*
 * tests/test_data_cli.c — `qat data synth|pack|inspect` run in-process: the files
 * they write are valid shards with the promised contents, --help exits 0, and
 * usage or input mistakes exit 2 with a message naming the file or option.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <cmocka.h>

#include "testutil.h"

#include "core/error.h"
#include "data/data_cli.h"
#include "data/shard.h"
#include "data/synth.h"

static char dir[64];

static int setup(void **state) {
    (void)state;
    return qat_test_mkdtemp(dir, sizeof dir, "data_cli");
}

static int teardown(void **state) {
    (void)state;
    return qat_test_rmtree(dir);
}

#define RUN(...) run((char *[]){"data", __VA_ARGS__, NULL})
static int run(char **argv) {
    int argc = 0;
    while (argv[argc]) argc++;
    fflush(stdout);
    return qat_data_main(argc, argv);
}

static void test_synth_writes_train_and_val(void **state) {
    (void)state;
    char out[128], val[128];
    sprintf(out, "%s/c.bin", dir);
    sprintf(val, "%s/c_val.bin", dir);
    assert_int_equal(RUN("synth", "--tokens", "5e4", "--seed", "3", "--val", "20000", "-o", out), 0);
    uint16_t *t, *v;
    int64_t n, nv;
    assert_int_equal(qat_shard_read(out, 256, &t, &n), QAT_OK);
    assert_int_equal(qat_shard_read(val, 256, &v, &nv), QAT_OK);
    assert_int_equal(n, 50000);
    assert_int_equal(nv, 20000);
    /* Same bytes as the library with the same seed. */
    qat_synth_params p;
    qat_synth_params_default(&p, 3, 256, 16);
    qat_synth *s;
    assert_int_equal(qat_synth_create(&p, &s), QAT_OK);
    uint16_t *ref = malloc(50000 * 2);
    qat_synth_generate(s, 0, 50000, ref, NULL);
    assert_memory_equal(t, ref, 50000 * 2);
    qat_synth_generate(s, QAT_SYNTH_VAL_DOC0, 20000, ref, NULL);
    assert_memory_equal(v, ref, 20000 * 2);
    qat_synth_free(s);
    free(ref); free(t); free(v);
    assert_int_equal(RUN("inspect", out, val), 0);
}

static void test_pack_and_inspect(void **state) {
    (void)state;
    char a[128], b[128], out[128];
    sprintf(a, "%s/a.txt", dir);
    sprintf(b, "%s/b.txt", dir);
    sprintf(out, "%s/text.bin", dir);
    FILE *f = fopen(a, "wb"); fputs("hello ", f); fclose(f);
    f = fopen(b, "wb"); fputs("world", f); fclose(f);
    assert_int_equal(RUN("pack", a, b, "-o", out), 0);
    uint16_t *t;
    int64_t n;
    assert_int_equal(qat_shard_read(out, 256, &t, &n), QAT_OK);
    assert_int_equal(n, 11);
    for (int i = 0; i < 11; i++) assert_int_equal(t[i], (unsigned char)"hello world"[i]);
    free(t);
    assert_int_equal(RUN("inspect", out), 0);
    /* A text file is not a shard: inspect names it and exits 2. */
    assert_int_equal(RUN("inspect", out, a), 2);
    assert_non_null(strstr(qat_errmsg(), "invalid"));
    /* Packing reads gzip by its magic bytes, whatever the name (issue: .gz input). */
    char gz[128];
    sprintf(gz, "%s/hello.txt", dir);
    gzFile g = gzopen(gz, "wb");
    gzputs(g, "hello gzip");
    gzclose(g);
    assert_int_equal(RUN("pack", gz, b, "-o", out), 0);
    assert_int_equal(qat_shard_read(out, 256, &t, &n), QAT_OK);
    assert_int_equal(n, 15);
    for (int i = 0; i < 15; i++) assert_int_equal(t[i], (unsigned char)"hello gzipworld"[i]);
    free(t);
}

/* Issue 11 d: an empty shard (header count 0) beside a good one is named and fails inspect. */
static void test_inspect_names_empty_shard(void **state) {
    (void)state;
    char good[128], empty[128], log[128];
    sprintf(good, "%s/good.bin", dir);
    sprintf(empty, "%s/empty.bin", dir);
    sprintf(log, "%s/inspect.err", dir);
    uint16_t t[100] = {1, 2, 3};
    assert_int_equal(qat_shard_write(good, t, 100), QAT_OK);
    assert_int_equal(qat_shard_write(empty, t, 0), QAT_OK);
    fflush(stderr);
    int saved = dup(2);
    assert_non_null(freopen(log, "w", stderr));
    int rc = RUN("inspect", good, empty);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    assert_int_equal(rc, 2);
    FILE *f = fopen(log, "r");
    char text[2048] = {0};
    assert_true(fread(text, 1, sizeof text - 1, f) > 0);
    fclose(f);
    char want[200];
    sprintf(want, "%s: empty shard", empty);
    if (!strstr(text, want)) fail_msg("stderr '%s' lacks '%s'", text, want);
    if (strstr(text, good)) fail_msg("the good shard was reported: '%s'", text);
}

static void test_usage_errors_exit_2(void **state) {
    (void)state;
    char out[128], missing[128], empty[128];
    sprintf(out, "%s/x.bin", dir);
    sprintf(missing, "%s/missing.txt", dir);
    sprintf(empty, "%s/empty.txt", dir);
    fclose(fopen(empty, "wb"));
    assert_int_equal(RUN("--help"), 0);
    assert_int_equal(RUN("synth", "--help"), 0);
    assert_int_equal(RUN("pack", "--help"), 0);
    assert_int_equal(RUN("inspect", "--help"), 0);
    assert_int_equal(RUN("frobnicate"), 2);
    assert_non_null(strstr(qat_errmsg(), "frobnicate"));
    assert_int_equal(RUN("synth", "-o", out), 2);
    assert_non_null(strstr(qat_errmsg(), "--tokens"));
    assert_int_equal(RUN("synth", "--tokens", "1.5", "-o", out), 2);
    /* counts are decimal or scientific, as in the YAML: no hex, no spaces (strtod took both) */
    assert_int_equal(RUN("synth", "--tokens", "0x100", "-o", out), 2);
    assert_int_equal(RUN("synth", "--tokens", " 100", "-o", out), 2);
    assert_int_equal(RUN("synth", "--tokens", "100", "--vocab", "30", "-o", out), 2);
    assert_string_equal(qat_errmsg(), "data synth: --vocab 30 is too small for 16 topics, expected --vocab >= 66 "
                                      "(BOS, COPY, a token per topic, 16 copy specs, 32 content tokens)");
    assert_int_equal(RUN("synth", "--tokens", "100", "--topics", "65", "-o", out), 2);
    assert_string_equal(qat_errmsg(), "data synth: --topics '65': expected a whole number in [1, 64]");
    /* a one-token split has no entropy rate (it printed nan) */
    assert_int_equal(RUN("synth", "--tokens", "100", "--val", "1", "-o", out), 2);
    assert_non_null(strstr(qat_errmsg(), "--val 1: a validation split needs at least 2 tokens"));
    assert_int_equal(RUN("synth", "--tokens", "100", "--bogus", "-o", out), 2);
    assert_non_null(strstr(qat_errmsg(), "--bogus"));
    assert_int_equal(RUN("synth", "--tokens"), 2);
    /* an option where a value belongs (-o took "--val" for the file name) */
    assert_int_equal(RUN("synth", "--tokens", "100", "-o", "--val", "0"), 2);
    assert_string_equal(qat_errmsg(), "-o: expected a value, got the option --val (see qat data synth --help)");
    assert_int_equal(RUN("pack", empty, "--out", "--help"), 2);
    assert_string_equal(qat_errmsg(), "--out: expected a value, got the option --help (see qat data pack --help)");
    assert_int_equal(RUN("pack", missing, "-o", out), 2);
    assert_non_null(strstr(qat_errmsg(), missing));
    assert_int_equal(RUN("pack", empty, "-o", out), 2);
    assert_non_null(strstr(qat_errmsg(), empty));
    assert_int_equal(RUN("pack", empty), 2);
    /* one file twice: its bytes packed twice, and a split of the shard would hold out what it trains on */
    char text[128], again[128];
    sprintf(text, "%s/twice.txt", dir);
    sprintf(again, "%s/./twice.txt", dir);
    assert_int_equal(qat_test_write_text(text, "some text\n"), 0);
    assert_int_equal(RUN("pack", text, again, "-o", out), 2);
    assert_non_null(strstr(qat_errmsg(), "data pack: files 1 and 2"));
    assert_non_null(strstr(qat_errmsg(), "are the same file"));
    assert_int_equal(RUN("inspect"), 2);
    assert_int_equal(access(out, F_OK), -1); /* nothing written on failure */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_synth_writes_train_and_val),
        cmocka_unit_test(test_pack_and_inspect),
        cmocka_unit_test(test_inspect_names_empty_shard),
        cmocka_unit_test(test_usage_errors_exit_2),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

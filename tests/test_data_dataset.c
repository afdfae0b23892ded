/*
 * tests/test_data_dataset.c — a run's data (data/dataset.h, data/batch.h).
 *
 * Batches must be a pure function of (data, seed, step, B) with targets = inputs
 * shifted by one; one pass over the training windows must visit each exactly once;
 * validation must not depend on the run seed; the synthetic corpus must report
 * its entropies; and every bad input reachable from a config (no matching files,
 * bad magic, truncated shard, token >= vocab, too few tokens, empty text,
 * unknown source) must be QAT_EINPUT naming the file.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "testutil.h"

#include "core/config.h"
#include "core/error.h"
#include "data/batch.h"
#include "data/dataset.h"
#include "data/shard.h"

static char dir[64];

static int setup(void **state) {
    (void)state;
    return qat_test_mkdtemp(dir, sizeof dir, "data_dataset");
}

static int teardown(void **state) {
    (void)state;
    return qat_test_rmtree(dir);
}

static void assert_msg_has(const char *needle) {
    if (!strstr(qat_errmsg(), needle)) fail_msg("message '%s' lacks '%s'", qat_errmsg(), needle);
}

static qat_data_cfg synth_cfg(void) {
    qat_data_cfg c;
    memset(&c, 0, sizeof c);
    strcpy(c.source, "synthetic");
    c.val_fraction = 0.1;
    return c;
}

static void test_permutation_is_bijection(void **state) {
    (void)state;
    const uint64_t ns[] = {1, 2, 3, 7, 64, 100, 1000, 4097};
    for (size_t k = 0; k < sizeof ns / sizeof *ns; k++) {
        uint64_t n = ns[k];
        char *seen = calloc(n, 1);
        int64_t fixed = 0;
        for (uint64_t i = 0; i < n; i++) {
            uint64_t j = qat_data_permute(i, n, 12345);
            assert_true(j < n);
            assert_false(seen[j]);
            seen[j] = 1;
            fixed += j == i;
        }
        if (n >= 100) assert_true(fixed < (int64_t)n / 10); /* it actually shuffles */
        free(seen);
    }
}

static void test_synthetic_batches(void **state) {
    (void)state;
    qat_data_cfg c = synth_cfg();
    const int T = 32, B = 4;
    qat_dataset *a, *b, *o;
    assert_int_equal(qat_dataset_open(&c, 256, T, 20000, 1, &a), QAT_OK);
    assert_int_equal(qat_dataset_open(&c, 256, T, 20000, 1, &b), QAT_OK);
    assert_int_equal(qat_dataset_open(&c, 256, T, 20000, 2, &o), QAT_OK);
    assert_int_equal(qat_dataset_train_tokens(a), 20001);
    assert_int_equal(qat_dataset_val_tokens(a), QAT_DATASET_SYNTH_VAL_TOKENS);
    int32_t in1[B * T], tg1[B * T], in2[B * T], tg2[B * T];
    /* Pure function of (data, seed, step, B): step 7 twice, in any order, equal. */
    qat_dataset_train_batch(a, 7, B, in1, tg1);
    qat_dataset_train_batch(b, 3, B, in2, tg2);
    qat_dataset_train_batch(b, 7, B, in2, tg2);
    assert_memory_equal(in1, in2, sizeof in1);
    assert_memory_equal(tg1, tg2, sizeof tg1);
    for (int r = 0; r < B; r++)
        for (int t = 0; t + 1 < T; t++) assert_int_equal(tg1[r * T + t], in1[r * T + t + 1]);
    /* targets[T-1] is the token after the window's last input. */
    int64_t n;
    const uint16_t *tok = qat_dataset_split(a, 0, &n);
    int64_t s0 = qat_data_train_start(n, T, 1, 7, B, 0);
    assert_int_equal(tg1[T - 1], tok[s0 + T]);
    /* Another step or another run seed gives other rows. */
    qat_dataset_train_batch(a, 8, B, in2, tg2);
    assert_memory_not_equal(in1, in2, sizeof in1);
    qat_dataset_train_batch(o, 7, B, in2, tg2);
    assert_memory_not_equal(in1, in2, sizeof in1);
    /* Validation ignores the run seed. */
    assert_int_equal(qat_dataset_val_batches(a, B), qat_dataset_val_batches(o, B));
    assert_true(qat_dataset_val_batches(a, B) >= (QAT_DATASET_SYNTH_VAL_TOKENS - 1) / T / B);
    qat_dataset_val_batch(a, 3, B, in1, tg1);
    qat_dataset_val_batch(o, 3, B, in2, tg2);
    assert_memory_equal(in1, in2, sizeof in1);
    assert_memory_equal(tg1, tg2, sizeof tg1);
    for (int t = 0; t + 1 < T; t++) assert_int_equal(tg1[t], in1[t + 1]);
    /* Entropies: finite, ordered, and named in the description. */
    double rate = qat_dataset_entropy_rate(a), uni = qat_dataset_unigram_entropy(a);
    assert_true(isfinite(rate) && rate > 1.0 && uni > rate + 1.0);
    assert_non_null(strstr(qat_dataset_describe(a), "entropy rate"));
    assert_non_null(strstr(qat_dataset_describe(a), "synthetic"));
    /* The corpus seed (not the run seed) decides the tokens. */
    c.synth_seed = 99;
    qat_dataset *d;
    assert_int_equal(qat_dataset_open(&c, 256, T, 20000, 1, &d), QAT_OK);
    const uint16_t *tok_d = qat_dataset_split(d, 0, &n);
    assert_memory_not_equal(tok, tok_d, 2000 * sizeof *tok);
    qat_dataset_free(a); qat_dataset_free(b); qat_dataset_free(o); qat_dataset_free(d);
}

/* One pass over W windows covers every window once: no training token repeats. */
static void test_one_pass_visits_each_window_once(void **state) {
    (void)state;
    const int64_t n = 5001;
    const int T = 16, B = 8;
    int64_t W = qat_data_windows(n, T);
    assert_int_equal(W, 312);
    for (int pass = 0; pass < 2; pass++) {
        char *seen = calloc(n, 1);
        int64_t shift = -1;
        for (int64_t k = pass * W; k < (pass + 1) * W; k++) {
            int64_t s = qat_data_train_start(n, T, 42, k / B, B, (int)(k % B));
            assert_true(s >= 0 && s + T < n);
            if (shift < 0) shift = s % T;
            assert_int_equal(s % T, shift); /* one grid per pass */
            assert_false(seen[s]);
            seen[s] = 1;
        }
        free(seen);
    }
}

static void write_shard(const char *name, const uint16_t *t, int64_t n, char *path) {
    sprintf(path, "%s/%s", dir, name);
    assert_int_equal(qat_shard_write(path, t, n), QAT_OK);
}

static void test_shards_and_split(void **state) {
    (void)state;
    uint16_t t[3000];
    for (int i = 0; i < 3000; i++) t[i] = (uint16_t)(i % 251);
    char p[128];
    write_shard("s_000.bin", t, 1000, p);
    write_shard("s_001.bin", t + 1000, 2000, p);
    qat_data_cfg c;
    memset(&c, 0, sizeof c);
    strcpy(c.source, "shards");
    sprintf(c.shards, "%s/s_*.bin", dir);
    c.val_fraction = 0.1;
    qat_dataset *ds;
    assert_int_equal(qat_dataset_open(&c, 256, 16, 1e6, 0, &ds), QAT_OK);
    assert_int_equal(qat_dataset_train_tokens(ds), 2700);
    assert_int_equal(qat_dataset_val_tokens(ds), 300);
    int64_t n;
    const uint16_t *v = qat_dataset_split(ds, 1, &n);
    assert_memory_equal(v, t + 2700, 300 * sizeof *t); /* the tail, in shard order */
    assert_true(isnan(qat_dataset_entropy_rate(ds)));
    assert_true(fabs(qat_dataset_unigram_entropy(ds) - log(251.0)) < 0.05);
    int32_t in[2 * 16], tg[2 * 16];
    qat_dataset_train_batch(ds, 5, 2, in, tg);
    for (int i = 0; i < 2 * 16; i++) assert_int_equal(tg[i], (in[i] + 1) % 251);
    qat_dataset_free(ds);
    /* Explicit validation shards. */
    write_shard("val.bin", t, 500, p);
    strcpy(c.val_shards, p);
    assert_int_equal(qat_dataset_open(&c, 256, 16, 1e6, 0, &ds), QAT_OK);
    assert_int_equal(qat_dataset_train_tokens(ds), 3000);
    assert_int_equal(qat_dataset_val_tokens(ds), 500);
    assert_int_equal(qat_dataset_val_batches(ds, 2), 499 / 16 / 2);
    qat_dataset_free(ds);
}

static void test_text_source(void **state) {
    (void)state;
    qat_data_cfg c;
    memset(&c, 0, sizeof c);
    strcpy(c.source, "text");
    sprintf(c.text[0], "%s/t.txt", dir);
    c.n_text = 1;
    FILE *f = fopen(c.text[0], "wb");
    for (int i = 0; i < 400; i++) fputs("abcd", f);
    fclose(f);
    qat_dataset *ds;
    assert_int_equal(qat_dataset_open(&c, 256, 8, 0, 0, &ds), QAT_OK);
    assert_int_equal(qat_dataset_train_tokens(ds) + qat_dataset_val_tokens(ds), 1600);
    assert_true(fabs(qat_dataset_unigram_entropy(ds) - log(4.0)) < 0.01);
    int32_t in[8], tg[8];
    qat_dataset_val_batch(ds, 0, 1, in, tg);
    for (int i = 0; i < 8; i++) assert_true(in[i] >= 'a' && in[i] <= 'd');
    qat_dataset_free(ds);
}

static void test_errors_name_the_file(void **state) {
    (void)state;
    qat_dataset *ds = (qat_dataset *)1;
    qat_data_cfg c;
    memset(&c, 0, sizeof c);
    strcpy(c.source, "shards");
    /* No files match. */
    sprintf(c.shards, "%s/none_*.bin", dir);
    assert_int_equal(qat_dataset_open(&c, 256, 16, 1e4, 0, &ds), QAT_EINPUT);
    assert_null(ds);
    assert_msg_has(c.shards);
    /* Bad magic in the second of two shards. */
    uint16_t t[600];
    for (int i = 0; i < 600; i++) t[i] = (uint16_t)(i % 200);
    char good[128], bad[128];
    write_shard("e_0.bin", t, 600, good);
    sprintf(bad, "%s/e_1.bin", dir);
    FILE *f = fopen(bad, "wb");
    for (int i = 0; i < 300; i++) fputs("abcdefg", f);
    fclose(f);
    sprintf(c.shards, "%s/e_*.bin", dir);
    assert_int_equal(qat_dataset_open(&c, 256, 16, 1e4, 0, &ds), QAT_EINPUT);
    assert_msg_has(bad);
    assert_msg_has("magic");
    /* Truncated: a valid shard cut short. */
    write_shard("e_1.bin", t, 600, bad);
    assert_int_equal(truncate(bad, 1024 + 2 * 600 - 3), 0);
    assert_int_equal(qat_dataset_open(&c, 256, 16, 1e4, 0, &ds), QAT_EINPUT);
    assert_msg_has(bad);
    assert_msg_has("truncated");
    /* Token >= vocab: the model's vocab is smaller than the data's. */
    write_shard("e_1.bin", t, 600, bad);
    assert_int_equal(qat_dataset_open(&c, 150, 16, 1e4, 0, &ds), QAT_EINPUT);
    assert_msg_has(good);
    assert_msg_has("token index 150");
    /* Too few tokens for one sequence per split. */
    assert_int_equal(qat_dataset_open(&c, 256, 1000, 1e4, 0, &ds), QAT_EINPUT);
    assert_msg_has(c.shards);
    assert_msg_has("too few");
    /* Explicit validation shards that are too short. */
    char small[128];
    write_shard("small.bin", t, 10, small);
    strcpy(c.val_shards, small);
    assert_int_equal(qat_dataset_open(&c, 256, 16, 1e4, 0, &ds), QAT_EINPUT);
    assert_msg_has(small);
    /* Empty text file. */
    qat_data_cfg x;
    memset(&x, 0, sizeof x);
    strcpy(x.source, "text");
    sprintf(x.text[0], "%s/empty.txt", dir);
    x.n_text = 1;
    fclose(fopen(x.text[0], "wb"));
    assert_int_equal(qat_dataset_open(&x, 256, 16, 1e4, 0, &ds), QAT_EINPUT);
    assert_msg_has(x.text[0]);
    assert_msg_has("empty");
    /* Missing text file. */
    sprintf(x.text[0], "%s/missing.txt", dir);
    assert_int_equal(qat_dataset_open(&x, 256, 16, 1e4, 0, &ds), QAT_EINPUT);
    assert_msg_has(x.text[0]);
    /* Unknown source; synthetic vocabulary larger than the model's. */
    strcpy(x.source, "parquet");
    assert_int_equal(qat_dataset_open(&x, 256, 16, 1e4, 0, &ds), QAT_EINPUT);
    assert_msg_has("parquet");
    qat_data_cfg s = synth_cfg();
    s.synth_vocab = 512;
    assert_int_equal(qat_dataset_open(&s, 256, 16, 1e4, 0, &ds), QAT_EINPUT);
    assert_msg_has("synth_vocab");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_permutation_is_bijection),
        cmocka_unit_test(test_synthetic_batches),
        cmocka_unit_test(test_one_pass_visits_each_window_once),
        cmocka_unit_test(test_shards_and_split),
        cmocka_unit_test(test_text_source),
        cmocka_unit_test(test_errors_name_the_file),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

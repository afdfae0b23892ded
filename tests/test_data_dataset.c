/*
 * tests/test_data_dataset.c — a run's data (data/dataset.h, data/batch.h).
 *
 * Batches must be a pure function of (data, seed, step, B) with targets = inputs
 * shifted by one; one pass over the training windows must visit each exactly once;
 * validation must not depend on the run seed; real data must hold out evenly
 * spaced blocks (the same for every seed) that no training window touches; the
 * synthetic corpus must report its entropies; and every bad input reachable from
 * a config (no matching files, an empty shard, bad magic, truncated shard, token
 * >= vocab, too few tokens, a val_fraction that leaves one side without a
 * sequence, empty or corrupt text, a missing English corpus, unknown source) must
 * be QAT_EINPUT naming the file, or the key and its config line.
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
#include <zlib.h>
#include <cmocka.h>

#include "testutil.h"

#include "core/config.h"
#include "core/error.h"
#include "data/batch.h"
#include "data/dataset.h"
#include "data/shard.h"
#include "data/split.h"
#include "data/text.h"

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
    const qat_data_split *sp = qat_dataset_split(a, 0);
    const uint16_t *tok = sp->tok;
    int64_t s0 = qat_data_train_start(sp, T, 1, 7, B, 0);
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
    const uint16_t *tok_d = qat_dataset_split(d, 0)->tok;
    assert_memory_not_equal(tok, tok_d, 2000 * sizeof *tok);
    qat_dataset_free(a); qat_dataset_free(b); qat_dataset_free(o); qat_dataset_free(d);
}

/* One pass over W windows covers every window once: no training token repeats. */
static void test_one_pass_visits_each_window_once(void **state) {
    (void)state;
    const int64_t n = 5001;
    const int T = 16, B = 8;
    qat_data_span all = {0, n};
    qat_data_split sp;
    qat_data_split_init(&sp, NULL, &all, 1, T);
    int64_t W = sp.windows;
    assert_int_equal(W, 312);
    assert_int_equal(W, qat_data_windows(n, T));
    for (int pass = 0; pass < 2; pass++) {
        char *seen = calloc(n, 1);
        int64_t shift = -1;
        for (int64_t k = pass * W; k < (pass + 1) * W; k++) {
            int64_t s = qat_data_train_start(&sp, T, 42, k / B, B, (int)(k % B));
            assert_true(s >= 0 && s + T < n);
            if (shift < 0) shift = s % T;
            assert_int_equal(s % T, shift); /* one grid per pass */
            assert_false(seen[s]);
            seen[s] = 1;
        }
        free(seen);
    }
    qat_data_split_free(&sp);
}

/* Several spans (with a gap and a span too short for a window): each pass visits
 * every window once and no window leaves its span. */
static void test_windows_stay_inside_spans(void **state) {
    (void)state;
    const int T = 8, B = 3;
    const qat_data_span spans[] = {{5, 40}, {60, 5}, {70, 100}, {300, 9}};
    qat_data_split sp;
    qat_data_split_init(&sp, NULL, spans, 4, T);
    assert_int_equal(sp.windows, 4 + 0 + 12 + 1);
    assert_int_equal(sp.tokens, 154);
    for (int pass = 0; pass < 3; pass++) {
        char seen[400] = {0};
        for (int64_t k = pass * sp.windows; k < (pass + 1) * sp.windows; k++) {
            int64_t s = qat_data_train_start(&sp, T, 7, k / B, B, (int)(k % B));
            int inside = 0;
            for (int i = 0; i < 4; i++) inside |= s >= spans[i].start && s + T < spans[i].start + spans[i].len;
            assert_true(inside);
            assert_false(seen[s]);
            seen[s] = 1;
        }
    }
    for (int64_t j = 0; j < 2 * sp.windows; j++) {
        int64_t s = qat_data_val_start(&sp, T, j, 1, 0);
        int inside = 0;
        for (int i = 0; i < 4; i++) inside |= s >= spans[i].start && s + T < spans[i].start + spans[i].len;
        assert_true(inside);
    }
    qat_data_split_free(&sp);
}

/* The block rule itself: evenly spaced, round(nb·f) blocks, 64 Ki blocks on a large corpus. */
static void test_block_split_rule(void **state) {
    (void)state;
    qat_data_blocks b;
    qat_data_block_split(40000000, 0.05, 128, &b); /* the size of the English corpus */
    assert_int_equal(b.block, QAT_SPLIT_BLOCK);
    assert_int_equal(b.blocks, (40000000 + 65535) / 65536);
    assert_int_equal(b.held_blocks, (int64_t)llround(b.blocks * 0.05));
    assert_int_equal(b.n_val, b.held_blocks); /* never two held-out blocks in a row */
    assert_int_equal(b.train_tokens + b.val_tokens, 40000000);
    for (int i = 0; i < b.n_val; i++) {
        assert_int_equal(b.val[i].start % QAT_SPLIT_BLOCK, 0);
        if (i) assert_int_equal(b.val[i].start - b.val[i - 1].start, 20 * QAT_SPLIT_BLOCK); /* one in 20 */
    }
    assert_true(b.val[0].start > 0 && b.val[0].start < 20 * QAT_SPLIT_BLOCK); /* not the opening lines */
    qat_data_blocks_free(&b);
    /* A share that is not 1/k still holds out round(nb·f) blocks. */
    qat_data_block_split(1000 * 65536, 0.3, 128, &b);
    assert_int_equal(b.held_blocks, 300);
    qat_data_blocks_free(&b);
}

static void write_shard(const char *name, const uint16_t *t, int64_t n, char *path) {
    sprintf(path, "%s/%s", dir, name);
    assert_int_equal(qat_shard_write(path, t, n), QAT_OK);
}

static int span_has(const qat_data_split *s, int64_t pos) {
    for (int i = 0; i < s->n_span; i++)
        if (pos >= s->span[i].start && pos < s->span[i].start + s->span[i].len) return 1;
    return 0;
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
    qat_dataset *ds, *other;
    assert_int_equal(qat_dataset_open(&c, 256, 16, 1e6, 0, &ds), QAT_OK);
    assert_int_equal(qat_dataset_train_tokens(ds), 2700);
    assert_int_equal(qat_dataset_val_tokens(ds), 300);
    /* Held out: evenly spaced blocks over the whole stream, not its tail. */
    const qat_data_split *v = qat_dataset_split(ds, 1), *tr = qat_dataset_split(ds, 0);
    assert_true(v->n_span >= 4);
    assert_true(v->span[0].start < 1000 && v->span[v->n_span - 1].start + v->span[v->n_span - 1].len > 2000);
    for (int i = 0; i < v->n_span; i++) {
        assert_memory_equal(v->tok + v->span[i].start, t + v->span[i].start, (size_t)v->span[i].len * sizeof *t);
        for (int64_t j = v->span[i].start; j < v->span[i].start + v->span[i].len; j++) assert_false(span_has(tr, j));
    }
    assert_non_null(strstr(qat_dataset_describe(ds), "10.00% held out"));
    /* No training row reads a held-out token; validation rows read only held-out ones. */
    int32_t in[2 * 16], tg[2 * 16];
    for (int64_t step = 0; step < 200; step++)
        for (int b = 0; b < 2; b++) {
            int64_t s = qat_data_train_start(tr, 16, 0, step, 2, b);
            for (int64_t j = s; j <= s + 16; j++) assert_false(span_has(v, j));
        }
    for (int64_t i = 0; i < 20; i++) {
        int64_t s = qat_data_val_start(v, 16, i, 2, 1);
        for (int64_t j = s; j <= s + 16; j++) assert_true(span_has(v, j));
    }
    /* The same tokens are held out whatever the run seed. */
    assert_int_equal(qat_dataset_open(&c, 256, 16, 1e6, 99, &other), QAT_OK);
    const qat_data_split *v2 = qat_dataset_split(other, 1);
    assert_int_equal(v2->n_span, v->n_span);
    assert_memory_equal(v2->span, v->span, (size_t)v->n_span * sizeof *v->span);
    qat_dataset_free(other);
    assert_true(isnan(qat_dataset_entropy_rate(ds)));
    /* 300 held-out tokens in 4 blocks: at most 251 distinct values, at least one block's 75 */
    assert_true(qat_dataset_unigram_entropy(ds) <= log(251.0) + 1e-9 && qat_dataset_unigram_entropy(ds) > log(75.0));
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

/* Issue 11 c: val_fraction is never changed silently; errors name the key and counts. */
static void test_val_fraction_is_what_it_says(void **state) {
    (void)state;
    uint16_t t[5000];
    for (int i = 0; i < 5000; i++) t[i] = (uint16_t)(i % 7);
    char p[128];
    write_shard("vf.bin", t, 5000, p);
    qat_data_cfg c;
    memset(&c, 0, sizeof c);
    strcpy(c.source, "shards");
    strcpy(c.shards, p);
    qat_dataset *ds;
    /* 0 used to become 0.1 silently. */
    c.val_fraction = 0;
    assert_int_equal(qat_dataset_open(&c, 256, 16, 1e4, 0, &ds), QAT_EINPUT);
    assert_msg_has("data.val_fraction 0 ");
    /* Too small: used to be raised to one window while the banner printed the request. */
    c.val_fraction = 0.001;
    assert_int_equal(qat_dataset_open(&c, 256, 32, 1e4, 0, &ds), QAT_EINPUT);
    assert_msg_has("data.val_fraction 0.001");
    assert_msg_has("of 5000 tokens");
    assert_msg_has("validation sequence");
    /* Too large, 0.95 of 100 tokens: used to say only "too few tokens". */
    write_shard("vf100.bin", t, 100, p);
    strcpy(c.shards, p);
    c.val_fraction = 0.95;
    assert_int_equal(qat_dataset_open(&c, 256, 16, 1e4, 0, &ds), QAT_EINPUT);
    assert_msg_has("data.val_fraction 0.95");
    assert_msg_has("of 100 tokens for training");
    /* The banner prints the share actually held out. */
    write_shard("vf.bin", t, 5000, p);
    strcpy(c.shards, p);
    c.val_fraction = 0.3;
    assert_int_equal(qat_dataset_open(&c, 256, 16, 1e4, 0, &ds), QAT_OK);
    char want[64];
    snprintf(want, sizeof want, "%.2f%% held out", 100.0 * (double)qat_dataset_val_tokens(ds) / 5000);
    assert_non_null(strstr(qat_dataset_describe(ds), want));
    assert_true(fabs((double)qat_dataset_val_tokens(ds) / 5000 - 0.3) < 0.02);
    qat_dataset_free(ds);
}

/* A corpus large enough for blocks of QAT_SPLIT_BLOCK cannot hold a sequence of
 * 65536 (65537 tokens) on both sides whatever val_fraction: the message names
 * model.seq_len and its limit, not data.val_fraction (it asked for a larger one).
 * 65535 fits. (New runs are refused by their config already: this is for a
 * stored run's config or eval --data.) */
static void test_seq_len_past_a_block(void **state) {
    (void)state;
    int64_t n = 8 * (int64_t)QAT_SPLIT_BLOCK; /* 0.5 wants 8 blocks: exactly large enough */
    uint16_t *t = malloc((size_t)n * sizeof *t);
    for (int64_t i = 0; i < n; i++) t[i] = (uint16_t)(i % 251);
    char p[128];
    write_shard("long.bin", t, n, p);
    free(t);
    qat_data_cfg c;
    memset(&c, 0, sizeof c);
    strcpy(c.source, "shards");
    strcpy(c.shards, p);
    c.val_fraction = 0.5;
    qat_dataset *ds;
    assert_int_equal(qat_dataset_open(&c, 256, 65536, 1e6, 0, &ds), QAT_EINPUT);
    char want[400];
    snprintf(want, sizeof want, "%s: model.seq_len 65536 does not fit its split: 524288 tokens cut into blocks of "
             "65536, and a sequence (seq_len + 1 = 65537 tokens) must fit in one block (docs/data.md, \"The split\"); "
             "expected model.seq_len <= 65535", p);
    assert_string_equal(qat_errmsg(), want);
    assert_int_equal(qat_dataset_open(&c, 256, 65535, 1e6, 0, &ds), QAT_OK);
    assert_int_equal(qat_dataset_val_tokens(ds), 4 * (int64_t)QAT_SPLIT_BLOCK);
    qat_dataset_free(ds);
    unlink(p);
}

/* Issue 11 d, e: an empty shard beside a good one is named; an unmatched glob names its config line. */
static void test_empty_shard_and_glob_position(void **state) {
    (void)state;
    uint16_t t[2000];
    for (int i = 0; i < 2000; i++) t[i] = (uint16_t)(i % 50);
    char good[128], empty[128];
    write_shard("z_0.bin", t, 2000, good);
    write_shard("z_1.bin", t, 0, empty);
    qat_data_cfg c;
    memset(&c, 0, sizeof c);
    strcpy(c.source, "shards");
    c.val_fraction = 0.1;
    sprintf(c.shards, "%s/z_*.bin", dir);
    qat_dataset *ds;
    assert_int_equal(qat_dataset_open(&c, 256, 16, 1e4, 0, &ds), QAT_EINPUT);
    assert_msg_has(empty);
    assert_msg_has("empty shard");
    /* The glob's config position comes from the loader. */
    char yaml[128];
    sprintf(yaml, "%s/g.yaml", dir);
    FILE *f = fopen(yaml, "w");
    fprintf(f, "model: {preset: s1}\ndata:\n  shards: \"%s/nothing_*.bin\"\n", dir);
    fclose(f);
    qat_config cfg;
    assert_int_equal(qat_config_load(yaml, NULL, 0, &cfg), QAT_OK);
    assert_int_equal(qat_dataset_open(&cfg.data, 256, 16, 1e4, 0, &ds), QAT_EINPUT);
    char want[256];
    snprintf(want, sizeof want, "%s:3:3: data.shards: %s/nothing_*.bin: no data files match", yaml, dir);
    if (strncmp(qat_errmsg(), want, strlen(want))) fail_msg("'%s' does not start with '%s'", qat_errmsg(), want);
    /* From --set, the override is named. */
    const char *sets[] = {"data.shards=none/*.bin"};
    assert_int_equal(qat_config_load(NULL, sets, 1, &cfg), QAT_OK);
    assert_int_equal(qat_dataset_open(&cfg.data, 256, 16, 1e4, 0, &ds), QAT_EINPUT);
    assert_msg_has("--set data.shards=none/*.bin: data.shards: none/*.bin");
    /* data.val_shards is named by its line too (it had the key alone) */
    f = fopen(yaml, "w");
    fprintf(f, "model: {preset: s1}\ndata:\n  shards: \"%s\"\n  val_shards: \"%s/nothing_*.bin\"\n", good, dir);
    fclose(f);
    assert_int_equal(qat_config_load(yaml, NULL, 0, &cfg), QAT_OK);
    assert_int_equal(qat_dataset_open(&cfg.data, 256, 16, 1e4, 0, &ds), QAT_EINPUT);
    snprintf(want, sizeof want, "%s:4:3: data.val_shards: %s/nothing_*.bin: no data files match", yaml, dir);
    if (strncmp(qat_errmsg(), want, strlen(want))) fail_msg("'%s' does not start with '%s'", qat_errmsg(), want);
    /* data an option gave (eval --data) is named by the option, not by a key nobody wrote */
    qat_config_forget_origin(&cfg);
    memset(cfg.data.val_shards, 0, sizeof cfg.data.val_shards);
    snprintf(cfg.data.shards, sizeof cfg.data.shards, "%s/nothing_*.bin", dir);
    strcpy(cfg.data.option, "--data");
    assert_int_equal(qat_dataset_open(&cfg.data, 256, 16, 1e4, 0, &ds), QAT_EINPUT);
    snprintf(want, sizeof want, "--data: %s/nothing_*.bin: no data files match", dir);
    if (strncmp(qat_errmsg(), want, strlen(want))) fail_msg("'%s' does not start with '%s'", qat_errmsg(), want);
    strcpy(cfg.data.source, "text");
    cfg.data.n_text = 1;
    snprintf(cfg.data.text[0], sizeof cfg.data.text[0], "%s/none.txt", dir);
    assert_int_equal(qat_dataset_open(&cfg.data, 256, 16, 1e4, 0, &ds), QAT_EINPUT);
    snprintf(want, sizeof want, "--data: %s/none.txt: cannot open", dir);
    if (strncmp(qat_errmsg(), want, strlen(want))) fail_msg("'%s' does not start with '%s'", qat_errmsg(), want);
}

static void test_text_source(void **state) {
    (void)state;
    qat_data_cfg c;
    memset(&c, 0, sizeof c);
    strcpy(c.source, "text");
    c.val_fraction = 0.05;
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

/* gzip/dictzip text is read through zlib, told apart by its magic bytes, not its name. */
static void test_gzip_text(void **state) {
    (void)state;
    char plain[128], packed[128], bad[128];
    sprintf(plain, "%s/plain.gz", dir);   /* plain text, misleading name */
    sprintf(packed, "%s/packed.txt", dir); /* gzip, plain name */
    sprintf(bad, "%s/bad.dz", dir);
    FILE *f = fopen(plain, "wb");
    gzFile g = gzopen(packed, "wb9");
    for (int i = 0; i < 3000; i++) {
        fprintf(f, "line %d of the text\n", i);
        gzprintf(g, "line %d of the text\n", i);
    }
    fclose(f);
    gzclose(g);
    assert_int_equal(qat_text_is_gzip(packed), 1);
    assert_int_equal(qat_text_is_gzip(plain), 0);
    const char *files[] = {plain, packed};
    uint16_t *t;
    int64_t n;
    int ngz;
    assert_int_equal(qat_text_read_files(files, 2, 256, &t, &n, &ngz), QAT_OK);
    assert_int_equal(ngz, 1);
    assert_int_equal(n % 2, 0);
    assert_memory_equal(t, t + n / 2, (size_t)(n / 2) * sizeof *t); /* both halves decode the same */
    assert_int_equal(t[0], 'l');
    free(t);
    /* Through a run config, with the description naming gzip. */
    qat_data_cfg c;
    memset(&c, 0, sizeof c);
    strcpy(c.source, "text");
    c.val_fraction = 0.05;
    strcpy(c.text[0], packed);
    c.n_text = 1;
    qat_dataset *ds;
    assert_int_equal(qat_dataset_open(&c, 256, 32, 1e4, 0, &ds), QAT_OK);
    assert_non_null(strstr(qat_dataset_describe(ds), "gzip"));
    qat_dataset_free(ds);
    /* A corrupt gzip stream (a truncated copy) is an input error naming the file. */
    f = fopen(packed, "rb");
    unsigned char buf[4096];
    size_t got = fread(buf, 1, sizeof buf, f);
    fclose(f);
    f = fopen(bad, "wb");
    fwrite(buf, 1, got / 2, f);
    fclose(f);
    strcpy(c.text[0], bad);
    assert_int_equal(qat_dataset_open(&c, 256, 32, 1e4, 0, &ds), QAT_EINPUT);
    assert_msg_has(bad);
    /* A flipped bit in the trailer's CRC-32: the data inflates whole, then fails
     * its check; the message names the checksum, not "after 0 bytes", and the
     * path once (zlib's message repeats it). */
    f = fopen(packed, "rb");
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long whole = ftell(f);
    rewind(f);
    unsigned char *all = malloc((size_t)whole);
    assert_int_equal(fread(all, 1, (size_t)whole, f), (size_t)whole);
    fclose(f);
    all[whole - 8] ^= 1; /* the first byte of the CRC-32 */
    f = fopen(bad, "wb");
    fwrite(all, 1, (size_t)whole, f);
    fclose(f);
    free(all);
    assert_int_equal(qat_dataset_open(&c, 256, 32, 1e4, 0, &ds), QAT_EINPUT);
    assert_msg_has("does not match its data: the file is damaged");
    assert_null(strstr(qat_errmsg(), "after 0 bytes"));
    assert_null(strstr(strstr(qat_errmsg(), bad) + 1, bad));
}

/* Write `parts` (gzip members when gz[i], raw bytes otherwise) one after another into path. */
static void write_parts(const char *path, int n, const char *const *parts, const int *gz) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    for (int i = 0; i < n; i++) {
        size_t len = strlen(parts[i]);
        if (!gz[i]) { fwrite(parts[i], 1, len, f); continue; }
        unsigned char z[4096];
        z_stream s;
        memset(&s, 0, sizeof s);
        assert_int_equal(deflateInit2(&s, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
        s.next_in = (Bytef *)parts[i];
        s.avail_in = (uInt)len;
        s.next_out = z;
        s.avail_out = sizeof z;
        assert_int_equal(deflate(&s, Z_FINISH), Z_STREAM_END);
        fwrite(z, 1, sizeof z - s.avail_out, f);
        deflateEnd(&s);
    }
    fclose(f);
}

/* Bytes after a gzip member are another member (read on), zeros (padding, as
 * gzip -d accepts) or an input error naming the file and the offset where they
 * begin: gzread had packed the gzip part alone, exit 0. */
static void test_gzip_trailing_data(void **state) {
    (void)state;
    char p[128];
    sprintf(p, "%s/members.gz", dir);
    const char *const files[1] = {p};
    uint16_t *t;
    int64_t n;
    const char *two[2] = {"first member, ", "second member"};
    write_parts(p, 2, two, (int[]){1, 1});
    assert_int_equal(qat_text_read_files(files, 1, 0, &t, &n, NULL), QAT_OK);
    assert_int_equal(n, 27);
    for (int i = 0; i < 27; i++) assert_int_equal(t[i], (unsigned char)"first member, second member"[i]);
    free(t);
    const char *padded[1] = {"padded"};
    write_parts(p, 1, padded, (int[]){1});
    FILE *f = fopen(p, "ab");
    fwrite((char[512]){0}, 1, 512, f);
    fclose(f);
    assert_int_equal(qat_text_read_files(files, 1, 0, &t, &n, NULL), QAT_OK);
    assert_int_equal(n, 6);
    free(t);
    /* (gzip -c a.txt; cat a.txt) > x.gz: the junk starts where the member ends */
    const char *member[1] = {"the corpus\n"};
    write_parts(p, 1, member, (int[]){1});
    f = fopen(p, "ab");
    fseek(f, 0, SEEK_END);
    long off = ftell(f);
    fputs("the corpus\n", f);
    fclose(f);
    assert_int_equal(qat_text_read_files(files, 1, 0, &t, &n, NULL), QAT_EINPUT);
    assert_null(t);
    assert_msg_has(p);
    char at[64];
    sprintf(at, "at byte offset %ld", off);
    assert_msg_has(at);
    assert_msg_has("not gzip");
    /* after a second member too */
    const char *three[3] = {"a", "b", "junk"};
    write_parts(p, 3, three, (int[]){1, 1, 0});
    assert_int_equal(qat_text_read_files(files, 1, 0, &t, &n, NULL), QAT_EINPUT);
    assert_msg_has("not gzip");
    /* a single stray byte after the member is not padding either */
    const char *stray[2] = {"text", "\x1f"};
    write_parts(p, 2, stray, (int[]){1, 0});
    assert_int_equal(qat_text_read_files(files, 1, 0, &t, &n, NULL), QAT_EINPUT);
    assert_msg_has("not gzip");
}

/* One file twice, however spelled (another path, a hard link, a symbolic link),
 * is refused: in data.text the held-out blocks of one copy are training tokens
 * of the other, and val_shards sharing a shard with shards scores training
 * tokens as held-out (docs/data.md: every run evaluates on held-out text). */
static void test_same_file_twice(void **state) {
    (void)state;
    char a[128], other[128], hard[128], soft[128];
    sprintf(a, "%s/twice.txt", dir);
    sprintf(other, "%s/../%s/twice.txt", dir, strrchr(dir, '/') + 1);
    sprintf(hard, "%s/twice-hard.txt", dir);
    sprintf(soft, "%s/twice-soft.txt", dir);
    FILE *f = fopen(a, "wb");
    for (int i = 0; i < 400; i++) fputs("abcd", f);
    fclose(f);
    assert_int_equal(link(a, hard), 0);
    assert_int_equal(symlink(a, soft), 0);
    qat_data_cfg c;
    memset(&c, 0, sizeof c);
    strcpy(c.source, "text");
    c.val_fraction = 0.05;
    c.n_text = 3;
    qat_dataset *ds;
    const char *dups[3] = {a, other, hard};
    for (int k = 0; k < 3; k++) {
        char second[128];
        strcpy(second, k == 0 ? a : k == 1 ? other : soft);
        sprintf(c.text[0], "%s/t.txt", dir); /* test_text_source's file */
        strcpy(c.text[1], dups[k == 2 ? 2 : 0]);
        strcpy(c.text[2], second);
        assert_int_equal(qat_dataset_open(&c, 256, 8, 0, 0, &ds), QAT_EINPUT);
        assert_msg_has("data.text: entries 2 and 3");
        assert_msg_has("the same file");
        assert_msg_has(second);
    }
    /* the config of a run already on disk (made before this check) is read as made:
     * refusing it would strand the run, which then could not be resumed or evaluated */
    c.stored = 1;
    assert_int_equal(qat_dataset_open(&c, 256, 8, 0, 0, &ds), QAT_OK);
    qat_dataset_free(ds);
    c.stored = 0;
    c.n_text = 1;
    strcpy(c.text[0], a);
    assert_int_equal(qat_dataset_open(&c, 256, 8, 0, 0, &ds), QAT_OK);
    qat_dataset_free(ds);
    /* shards: the validation glob matching a training shard, from a YAML file */
    uint16_t t[3000];
    for (int i = 0; i < 3000; i++) t[i] = (uint16_t)(i % 50);
    char s0[128], s1[128], yaml[128];
    write_shard("ov_train.bin", t, 3000, s0);
    write_shard("ov_val.bin", t, 3000, s1);
    sprintf(yaml, "%s/ov.yaml", dir);
    f = fopen(yaml, "w");
    fprintf(f, "model: {preset: s1}\ndata:\n  shards: \"%s\"\n  val_shards: \"%s/ov_*.bin\"\n", s0, dir);
    fclose(f);
    qat_config cfg;
    assert_int_equal(qat_config_load(yaml, NULL, 0, &cfg), QAT_OK);
    assert_int_equal(qat_dataset_open(&cfg.data, 256, 16, 1e4, 0, &ds), QAT_EINPUT);
    char want[512];
    snprintf(want, sizeof want, "%s:4:3: data.val_shards \"%s/ov_*.bin\" matches %s, which data.shards", yaml, dir, s0);
    if (strncmp(qat_errmsg(), want, strlen(want))) fail_msg("'%s' does not start with '%s'", qat_errmsg(), want);
    /* data.text from a YAML file: the message starts at the key's line, as the shards' does */
    char tyaml[128];
    sprintf(tyaml, "%s/twice.yaml", dir);
    f = fopen(tyaml, "w");
    fprintf(f, "model: {preset: s1}\ndata:\n  text: [\"%s\", \"%s\"]\n", a, hard);
    fclose(f);
    qat_config tcfg;
    assert_int_equal(qat_config_load(tyaml, NULL, 0, &tcfg), QAT_OK);
    assert_int_equal(qat_dataset_open(&tcfg.data, 256, 8, 0, 0, &ds), QAT_EINPUT);
    snprintf(want, sizeof want, "%s:3:3: data.text: entries 1 and 2 (%s and %s) are the same file", tyaml, a, hard);
    if (strncmp(qat_errmsg(), want, strlen(want))) fail_msg("'%s' does not start with '%s'", qat_errmsg(), want);
    /* distinct files are fine */
    snprintf(cfg.data.val_shards, sizeof cfg.data.val_shards, "%s", s1);
    assert_int_equal(qat_dataset_open(&cfg.data, 256, 16, 1e4, 0, &ds), QAT_OK);
    qat_dataset_free(ds);
    unlink(hard);
    unlink(soft);
}

/* data.source english: a clear input error when the package is missing; the real corpus when present. */
static void test_english_corpus(void **state) {
    (void)state;
    qat_data_cfg c;
    memset(&c, 0, sizeof c);
    strcpy(c.source, "english");
    c.val_fraction = 0.05;
    char missing[128];
    sprintf(missing, "%s/no-gcide.dict.dz", dir);
    setenv("QAT_ENGLISH_PATH", missing, 1);
    qat_dataset *ds;
    assert_int_equal(qat_dataset_open(&c, 256, 128, 1e6, 0, &ds), QAT_EINPUT);
    assert_msg_has("data.source english");
    assert_msg_has(missing);
    assert_msg_has("apt-get install dict-gcide");
    unsetenv("QAT_ENGLISH_PATH");
    if (access(QAT_DATASET_ENGLISH_PATH, R_OK)) {
        printf("  (skipped the real corpus: %s is not installed; `make deps` installs dict-gcide)\n",
               QAT_DATASET_ENGLISH_PATH);
        return;
    }
    assert_int_equal(qat_dataset_open(&c, 256, 128, 1e6, 0, &ds), QAT_OK);
    int64_t tr = qat_dataset_train_tokens(ds), va = qat_dataset_val_tokens(ds);
    assert_true(tr + va > 30000000); /* ~40 MB of text */
    assert_true(fabs((double)va / (double)(tr + va) - 0.05) < 0.002);
    assert_non_null(strstr(qat_dataset_describe(ds), "english"));
    /* English bytes: the unigram entropy of letters and spaces, well below log 256. */
    double h = qat_dataset_unigram_entropy(ds);
    assert_true(h > 2.5 && h < 3.6);
    qat_dataset_free(ds);
}

static void test_errors_name_the_file(void **state) {
    (void)state;
    qat_dataset *ds = (qat_dataset *)1;
    qat_data_cfg c;
    memset(&c, 0, sizeof c);
    strcpy(c.source, "shards");
    c.val_fraction = 0.05;
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
    /* Truncated: a valid shard cut short (written where the text was: a shard replaces only a shard). */
    assert_int_equal(unlink(bad), 0);
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
        cmocka_unit_test(test_windows_stay_inside_spans),
        cmocka_unit_test(test_block_split_rule),
        cmocka_unit_test(test_shards_and_split),
        cmocka_unit_test(test_val_fraction_is_what_it_says),
        cmocka_unit_test(test_seq_len_past_a_block),
        cmocka_unit_test(test_empty_shard_and_glob_position),
        cmocka_unit_test(test_text_source),
        cmocka_unit_test(test_gzip_text),
        cmocka_unit_test(test_gzip_trailing_data),
        cmocka_unit_test(test_same_file_twice),
        cmocka_unit_test(test_english_corpus),
        cmocka_unit_test(test_errors_name_the_file),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

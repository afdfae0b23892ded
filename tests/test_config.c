/*
 * tests/test_config.c — the YAML run config (core/config.h): defaults, block and
 * flow mappings, dotted keys, --set overrides, every error kind with its exact
 * FILE:LINE:COL, the nearest-key suggestion, cross-key validation, and the round
 * trip config -> YAML -> config that checkpoints and --print-config rely on.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "testutil.h"

#include "core/config.h"
#include "core/error.h"

static char tmpdir[256];

/* Configs made by the loader are zero-filled past every string's end, so that
 * equal configs are byte-identical; code that edits a field keeps that up. */
#define SETS(dst, src) (memset(dst, 0, sizeof dst), strcpy(dst, src))

/* Write `text` to a file in the test's temp dir; returns its path (static buffer). */
static const char *write_yaml(const char *name, const char *text) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* Load `text` as file `name` and expect failure with exactly `want` after "DIR/". */
static void expect_file_error(const char *name, const char *text, const char *want) {
    qat_config c;
    const char *path = write_yaml(name, text);
    assert_int_equal(qat_config_load(path, NULL, 0, &c), QAT_EINPUT);
    char full[1024];
    snprintf(full, sizeof full, "%s/%s", tmpdir, want);
    if (strcmp(qat_errmsg(), full)) fprintf(stderr, "got:  %s\nwant: %s\n", qat_errmsg(), full);
    assert_string_equal(qat_errmsg(), full);
}

static void expect_set_error(const char *set, const char *want) {
    qat_config c;
    const char *sets[1] = {set};
    assert_int_equal(qat_config_load(NULL, sets, 1, &c), QAT_EINPUT);
    if (strcmp(qat_errmsg(), want)) fprintf(stderr, "got:  %s\nwant: %s\n", qat_errmsg(), want);
    assert_string_equal(qat_errmsg(), want);
}

static void test_defaults(void **state) {
    (void)state;
    qat_config c;
    qat_config_defaults(&c);
    assert_string_equal(c.name, "run");
    assert_int_equal(c.seed, 0);
    assert_int_equal(c.threads, 0);
    assert_string_equal(c.model.preset, "s3");
    assert_int_equal(c.model.layers, 0);
    assert_int_equal(c.model.vocab, 256);
    assert_int_equal(c.model.seq_len, 128);
    assert_true(c.model.rope_theta == 10000.0 && c.model.norm_eps == 1e-5 && c.model.init_std == 0.02);
    assert_string_equal(c.data.source, "english");
    assert_int_equal(c.data.n_text, 0);
    assert_true(c.data.val_fraction == 0.05);
    assert_int_equal(c.data.synth_seed, 1234);
    assert_int_equal(c.data.synth_topics, 16);
    assert_true(c.train.tokens == 0 && c.train.tokens_per_param == 20);
    assert_int_equal(c.train.batch_tokens, 4096);
    assert_true(c.train.lr == 3e-3 && c.train.warmup == 0.1 && c.train.min_lr_ratio == 0.1);
    assert_string_equal(c.train.schedule, "cosine");
    assert_true(c.train.weight_decay == 0.1 && c.train.beta1 == 0.9 && c.train.beta2 == 0.95);
    assert_true(c.train.eps == 1e-8 && c.train.grad_clip == 1.0);
    assert_int_equal(c.train.eval_every, 200);
    assert_int_equal(c.train.eval_tokens, 65536);
    assert_int_equal(c.train.checkpoint_every, 500);
    assert_int_equal(c.train.log_every, 10);
    const qat_compress_side *sides[2] = {&c.weights, &c.activations};
    for (int i = 0; i < 2; i++) {
        assert_string_equal(sides[i]->format, "fp32");
        assert_string_equal(sides[i]->estimator, "");
        assert_int_equal(sides[i]->hadamard, -1);
        assert_string_equal(sides[i]->scale, "rms");
        assert_int_equal(sides[i]->group, 0);
        assert_true(sides[i]->clip_scale == 1.0 && sides[i]->trust == 0);
        assert_true(sides[i]->rbbm_p == 0.1 && sides[i]->pv_tau == 0.01);
        assert_int_equal(sides[i]->pv_group, 8);
        assert_int_equal(sides[i]->per_row, 0);
    }
    assert_int_equal(qat_config_validate(&c), QAT_OK);

    /* No file at all: defaults, validated, byte-identical to qat_config_defaults. */
    qat_config d;
    assert_int_equal(qat_config_load(NULL, NULL, 0, &d), QAT_OK);
    assert_memory_equal(&c, &d, sizeof c);
    /* An empty file is the same. */
    assert_int_equal(qat_config_load(write_yaml("empty.yaml", "# nothing\n"), NULL, 0, &d), QAT_OK);
    assert_string_equal(d.source_path, write_yaml("empty.yaml", "# nothing\n"));
    memset(d.source_path, 0, sizeof d.source_path);
    assert_memory_equal(&c, &d, sizeof c);
}

static void test_block_flow_and_dotted(void **state) {
    (void)state;
    const char *text =
        "name: my-run\n"
        "seed: 7\n"
        "model: {preset: \"\", layers: 4, dim: 128, heads: 4, vocab: 512, seq_len: 64}\n"
        "data:\n"
        "  text: [\"a.txt\", b.txt]\n"
        "  val_fraction: .1\n"
        "train: {tokens: 2e6, tokens_per_param: 20, batch_tokens: 4096, lr: 1e-3, warmup: 0.1,\n"
        "        schedule: linear, eval_tokens: 6.4e4}\n"
        "compress:\n"
        "  weights:     {format: int4, estimator: trust, hadamard: 128, scale: rms}\n"
        "  activations:\n"
        "    format: sp50+int4\n"
        "    per_row: yes\n"
        "    estimator: ~\n"
        "train.grad_clip: 0.5      # dotted keys work at the top level too\n";
    qat_config c;
    int rc = qat_config_load(write_yaml("ok.yaml", text), NULL, 0, &c);
    if (rc) fprintf(stderr, "%s\n", qat_errmsg());
    assert_int_equal(rc, QAT_OK);
    assert_string_equal(c.name, "my-run");
    assert_int_equal(c.seed, 7);
    assert_string_equal(c.model.preset, "");
    assert_int_equal(c.model.layers, 4);
    assert_int_equal(c.model.dim, 128);
    assert_int_equal(c.model.heads, 4);
    assert_int_equal(c.model.vocab, 512);
    assert_int_equal(c.model.seq_len, 64);
    assert_string_equal(c.data.source, "text"); /* implied by data.text */
    assert_int_equal(c.data.n_text, 2);
    assert_string_equal(c.data.text[0], "a.txt");
    assert_string_equal(c.data.text[1], "b.txt");
    assert_true(c.data.val_fraction == 0.1);
    assert_true(c.train.tokens == 2e6);
    assert_true(c.train.lr == 1e-3);
    assert_string_equal(c.train.schedule, "linear");
    assert_int_equal(c.train.eval_tokens, 64000);
    assert_true(c.train.grad_clip == 0.5);
    assert_string_equal(c.weights.format, "int4");
    assert_string_equal(c.weights.estimator, "trust");
    assert_int_equal(c.weights.hadamard, 128);
    assert_string_equal(c.activations.format, "sp50+int4");
    assert_int_equal(c.activations.per_row, 1);
    assert_string_equal(c.activations.estimator, "");
    assert_int_equal(c.activations.hadamard, -1);
}

static void test_file_errors(void **state) {
    (void)state;
    expect_file_error("syntax.yaml", "train:\n  lr: 1\n   warmup: 2\n",
                      "syntax.yaml:3:10: YAML syntax error: mapping values are not allowed in this context");
    expect_file_error("flow.yaml", "train: {lr: 1\n",
                      "flow.yaml:2:1: YAML syntax error: did not find expected ',' or '}' "
                      "(while parsing a flow mapping at line 1)");
    expect_file_error("unknown.yaml", "name: t\ntrain:\n  lrr: 1e-3\n",
                      "unknown.yaml:3:3: unknown key 'train.lrr' (did you mean 'train.lr'?)");
    expect_file_error("unknown2.yaml", "model: {preset: s2, lr: 1}\n",
                      "unknown2.yaml:1:21: unknown key 'model.lr' (did you mean 'train.lr'?)");
    expect_file_error("group.yaml", "trian:\n  lr: 1\n", "group.yaml:1:1: unknown key 'trian' (did you mean 'train'?)");
    expect_file_error("type.yaml", "train: {lr: abc}\n", "type.yaml:1:13: train.lr: expected a number, got 'abc'");
    expect_file_error("int.yaml", "model:\n  layers: 2.5\n",
                      "int.yaml:2:11: model.layers: expected an integer, got '2.5'");
    expect_file_error("bool.yaml", "compress: {weights: {per_row: maybe}}\n",
                      "bool.yaml:1:31: compress.weights.per_row: expected true or false, got 'maybe'");
    expect_file_error("map.yaml", "train:\n  lr: [1, 2]\n", "map.yaml:2:7: train.lr: expected a number, got a list");
    expect_file_error("range.yaml", "train:\n  warmup: 0.1\n  lr: -1\n",
                      "range.yaml:3:7: train.lr: -1 is out of range, expected a number > 0");
    expect_file_error("range2.yaml", "train: {beta2: 1}\n",
                      "range2.yaml:1:16: train.beta2: 1 is out of range, expected a number in [0, 1)");
    expect_file_error("range3.yaml", "compress:\n  activations:\n    hadamard: 12\n",
                      "range3.yaml:3:15: compress.activations.hadamard: 12 is out of range, expected an "
                      "integer in [-1, 65536] (-1, 0 or a power of two)");
    expect_file_error("allowed.yaml", "train: {schedule: cosin}\n",
                      "allowed.yaml:1:19: train.schedule: 'cosin' is not allowed, expected one of "
                      "cosine, constant, linear (did you mean 'cosine'?)");
    expect_file_error("dup.yaml", "name: a\nseed: 1\nname: b\n",
                      "dup.yaml:3:1: duplicate key 'name' (first given at 1:1)");
    /* A repeated mapping key is refused too, at any depth, not merged. */
    expect_file_error("dupmap.yaml", "name: a\ntrain: {lr: 1e-3}\nseed: 1\ntrain: {tokens: 2e6}\n",
                      "dupmap.yaml:4:1: duplicate key 'train' (first given at 2:1)");
    expect_file_error("dupdeep.yaml", "compress:\n  weights: {format: int4}\n  activations: {format: int4}\n"
                      "  weights:\n    per_row: true\n",
                      "dupdeep.yaml:4:3: duplicate key 'compress.weights' (first given at 2:3)");
    expect_file_error("dupleaf.yaml", "train:\n  lr: 1\n  warmup: 2\n  lr: 3\n",
                      "dupleaf.yaml:4:3: duplicate key 'train.lr' (first given at 2:3)");
    expect_file_error("duptwoways.yaml", "train.lr: 1\ntrain: {lr: 2}\n",
                      "duptwoways.yaml:2:9: duplicate key 'train.lr' (first given at 1:1)");
    expect_file_error("top.yaml", "- 1\n- 2\n",
                      "top.yaml:1:1: expected a mapping of config keys at the top level, got a list");
    expect_file_error("notmap.yaml", "model: s3\n",
                      "notmap.yaml:1:8: model: expected a mapping of model.* keys, got a scalar");
    /* Cross-key rules point at the key that broke them. */
    expect_file_error("heads.yaml", "model: {preset: \"\", layers: 2, dim: 128,\n        heads: 3}\n",
                      "heads.yaml:2:9: model.heads = 3 must divide model.dim = 128");
    expect_file_error("nolayers.yaml", "model:\n  preset: \"\"\n  dim: 64\n  heads: 4\n",
                      "nolayers.yaml: model.layers must be given (> 0) when model.preset is \"\"");
    expect_file_error("twosrc.yaml", "data:\n  source: synthetic\n  shards: \"d/*.bin\"\n",
                      "twosrc.yaml:2:3: data.source is synthetic but data.shards is set; give exactly one data source");
    expect_file_error("both.yaml", "data:\n  shards: \"d/*.bin\"\n  text: [a.txt]\n",
                      "both.yaml:2:3: both data.shards and data.text are set; give exactly one data source");
    expect_file_error("budget.yaml", "train: {tokens: 0, tokens_per_param: 0}\n",
                      "budget.yaml:1:9: train.tokens and train.tokens_per_param are both 0; give a token budget");
    expect_file_error("batch.yaml", "train:\n  batch_tokens: 1000\n",
                      "batch.yaml:2:3: train.batch_tokens = 1000 must be a multiple of model.seq_len = 128");

    /* Missing file: the path and the system's reason. */
    qat_config c;
    char path[512];
    snprintf(path, sizeof path, "%s/nope.yaml", tmpdir);
    assert_int_equal(qat_config_load(path, NULL, 0, &c), QAT_EINPUT);
    char want[600];
    snprintf(want, sizeof want, "%s: cannot open: No such file or directory", path);
    assert_string_equal(qat_errmsg(), want);
}

static void test_set_overrides(void **state) {
    (void)state;
    const char *path = write_yaml("base.yaml", "train: {lr: 1e-2, tokens: 1e6}\ndata: {shards: \"d/*.bin\"}\n");
    const char *sets[] = {"train.lr=1e-3", "model={preset: s5, vocab: 512}", " seed = 42",
                          "compress.weights.format=2:4", "data.val_shards=v/*.bin", "train.schedule=\"constant\""};
    qat_config c;
    int rc = qat_config_load(path, sets, 6, &c);
    if (rc) fprintf(stderr, "%s\n", qat_errmsg());
    assert_int_equal(rc, QAT_OK);
    assert_true(c.train.lr == 1e-3);
    assert_true(c.train.tokens == 1e6);
    assert_string_equal(c.model.preset, "s5");
    assert_int_equal(c.model.vocab, 512);
    assert_int_equal(c.seed, 42);
    assert_string_equal(c.weights.format, "2:4");
    assert_string_equal(c.data.source, "shards");
    assert_string_equal(c.data.val_shards, "v/*.bin");
    assert_string_equal(c.train.schedule, "constant");

    /* qat_config_set on a loaded config: applies, does not validate, leaves the
     * config untouched on error. */
    assert_int_equal(qat_config_set(&c, "data.text=one.txt"), QAT_OK);
    assert_int_equal(c.data.n_text, 1);
    assert_string_equal(c.data.text[0], "one.txt");
    assert_int_equal(qat_config_validate(&c), QAT_EINPUT); /* shards and text both set */
    assert_int_equal(qat_config_set(&c, "data.shards="), QAT_OK);
    assert_int_equal(qat_config_set(&c, "data.val_shards=\"\""), QAT_OK);
    assert_int_equal(qat_config_validate(&c), QAT_OK);
    qat_config before = c;
    assert_int_equal(qat_config_set(&c, "model={vocab: 300, heads: x}"), QAT_EINPUT);
    assert_memory_equal(&before, &c, sizeof c);

    expect_set_error("train.lrr=1", "--set train.lrr=1: unknown key 'train.lrr' (did you mean 'train.lr'?)");
    expect_set_error("lr=1", "--set lr=1: unknown key 'lr' (did you mean 'train.lr'?)");
    expect_set_error("train={lr: 1, lr: 2}",
                     "--set train={lr: 1, lr: 2}: duplicate key 'train.lr' in the value (first given at column 2)");
    expect_set_error("train.lr=abc", "--set train.lr=abc: train.lr: expected a number, got 'abc'");
    expect_set_error("train.lr", "--set train.lr: expected key=value, e.g. train.lr=1e-3");
}

/* The cross-key message for an override names the override. */
static void test_set_cross_key(void **state) {
    (void)state;
    qat_config c;
    const char *sets[] = {"model.dim=64", "model.heads=5"};
    assert_int_equal(qat_config_load(NULL, sets, 2, &c), QAT_EINPUT);
    assert_string_equal(qat_errmsg(), "--set model.heads=5: model.heads = 5 must divide model.dim = 64");
    const char *sets2[] = {"data.shards=x/*.bin", "data.source=synthetic"};
    assert_int_equal(qat_config_load(NULL, sets2, 2, &c), QAT_EINPUT);
    assert_string_equal(qat_errmsg(), "--set data.source=synthetic: data.source is synthetic but data.shards is "
                                      "set; give exactly one data source");
}

static void test_round_trip(void **state) {
    (void)state;
    qat_config c, d;
    qat_config_defaults(&c);
    SETS(c.name, "rt \"quoted\" \\ name:");
    c.seed = 18446744073709551615ull;
    SETS(c.model.preset, "");
    c.model.layers = 3;
    c.model.dim = 96;
    c.model.heads = 3;
    c.model.norm_eps = 1.0 / 3.0;
    c.model.rope_theta = 5e5;
    SETS(c.data.source, "text");
    c.data.n_text = 2;
    SETS(c.data.text[0], "a b.txt");
    SETS(c.data.text[1], "yes");
    c.data.synth_tokens = 1.2345678901234567e9;
    c.train.tokens = 2e6;
    c.train.lr = 0.1 + 0.2; /* not a short decimal */
    SETS(c.train.schedule, "linear");
    SETS(c.weights.format, "2:4+int4");
    SETS(c.weights.estimator, "rbbm");
    c.weights.hadamard = 0;
    c.weights.trust = -0.5;
    c.activations.per_row = 1;
    SETS(c.activations.format, "noise(int4)");
    assert_int_equal(qat_config_validate(&c), QAT_OK);
    char *yaml = qat_config_to_yaml(&c);
    int rc = qat_config_load_string(yaml, "", &d);
    if (rc) fprintf(stderr, "%s\n%s\n", qat_errmsg(), yaml);
    assert_int_equal(rc, QAT_OK);
    assert_memory_equal(&c, &d, sizeof c);
    /* Every key appears, block style, grouped. */
    assert_non_null(strstr(yaml, "\ncompress:\n  weights:\n    format: \"2:4+int4\""));
    assert_non_null(strstr(yaml, "\n  activations:\n    format: \"noise(int4)\""));
    assert_non_null(strstr(yaml, "\n  text: "));
    assert_non_null(strstr(yaml, "\n    - \"a b.txt\"\n    - \"yes\"\n"));
    assert_non_null(strstr(yaml, "  tokens: 2000000 "));
    free(yaml);

    /* Defaults too, through a file this time. */
    qat_config_defaults(&c);
    yaml = qat_config_to_yaml(&c);
    const char *path = write_yaml("resolved.yaml", yaml);
    assert_int_equal(qat_config_load(path, NULL, 0, &d), QAT_OK);
    SETS(c.source_path, path);
    assert_memory_equal(&c, &d, sizeof c);
    free(yaml);

    /* The origin names embedded YAML in errors. */
    assert_int_equal(qat_config_load_string("train: {lr: 0}\n", "ckpt.h5:config", &d), QAT_EINPUT);
    assert_string_equal(qat_errmsg(), "ckpt.h5:config:1:13: train.lr: 0 is out of range, expected a number > 0");
}

static void test_nearest_key(void **state) {
    (void)state;
    assert_string_equal(qat_config_nearest_key("train.lrr"), "train.lr");
    assert_string_equal(qat_config_nearest_key("train.sched"), "train.schedule");
    assert_string_equal(qat_config_nearest_key("model.lr"), "train.lr");
    assert_string_equal(qat_config_nearest_key("compress.weights.fromat"), "compress.weights.format");
    assert_string_equal(qat_config_nearest_key("compress.activation.format"), "compress.activations.format");
    assert_string_equal(qat_config_nearest_key("batch_tokens"), "train.batch_tokens");
    assert_string_equal(qat_config_nearest_key("modle"), "model");
    assert_string_equal(qat_config_nearest_key("seqlen"), "model.seq_len");
}

/* The one-line help of a key with a fixed set of values (what --print-config
 * prints next to it) names every value the key accepts: the accepted list is
 * read back from the error for a bad value, so the check follows the table. */
static void test_help_names_every_choice(void **state) {
    (void)state;
    static const char *const keys[][2] = {{"compress.weights.estimator", "estimator"},
                                          {"compress.activations.scale", "scale"},
                                          {"train.schedule", "schedule"},
                                          {"data.source", "source"}};
    qat_config c;
    qat_config_defaults(&c);
    char *yaml = qat_config_to_yaml(&c);
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
        char set[128], list[512];
        snprintf(set, sizeof set, "%s=no_such_value", keys[k][0]);
        assert_int_equal(qat_config_set(&c, set), QAT_EINPUT);
        const char *from = strstr(qat_errmsg(), "expected one of ");
        assert_non_null(from);
        snprintf(list, sizeof list, "%s", from + strlen("expected one of "));
        char *paren = strstr(list, " (did you mean");
        if (paren) *paren = 0;
        /* Every printed line whose key is the leaf (both sides for compress keys). */
        int lines = 0;
        for (const char *ln = yaml; ln && *ln; ln = strchr(ln, '\n') ? strchr(ln, '\n') + 1 : NULL) {
            while (*ln == ' ') ln++;
            size_t leaf = strlen(keys[k][1]);
            if (strncmp(ln, keys[k][1], leaf) || ln[leaf] != ':') continue;
            const char *end = strchr(ln, '\n'), *help = strstr(ln, "# ");
            assert_true(help && (!end || help < end));
            lines++;
            char copy[512], *save = NULL;
            snprintf(copy, sizeof copy, "%s", list);
            for (char *w = strtok_r(copy, ", ", &save); w; w = strtok_r(NULL, ", ", &save)) {
                if (!strcmp(w, "\"\"")) continue; /* the empty value is explained in words */
                const char *hit = strstr(help, w);
                if (!hit || (end && hit > end)) fail_msg("the help of %s does not name '%s'", keys[k][0], w);
            }
        }
        assert_true(lines >= 1);
    }
    free(yaml);
}

static int setup(void **state) {
    (void)state;
    return qat_test_mkdtemp(tmpdir, sizeof tmpdir, "config");
}

static int teardown(void **state) {
    (void)state;
    return qat_test_rmtree(tmpdir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_block_flow_and_dotted),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_set_overrides),
        cmocka_unit_test(test_set_cross_key),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_nearest_key),
        cmocka_unit_test(test_help_names_every_choice),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

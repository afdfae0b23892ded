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
#include "core/num.h"

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
    assert_int_equal(c.train.schedule, QAT_SCHEDULE_COSINE);
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
    assert_int_equal(c.train.schedule, QAT_SCHEDULE_LINEAR);
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
    expect_file_error("two.yaml", "seed: 1\n---\nseed: 2\n", "two.yaml:3:1: expected a single YAML document, found a "
                      "second one");
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
                      "range3.yaml:3:15: compress.activations.hadamard: 12 is not a power of two, expected -1 "
                      "(auto), 0 (off) or a power of two from 2 to 65536; the nearest are 8 and 16");
    expect_file_error("range4.yaml", "compress:\n  activations:\n    hadamard: 131072\n",
                      "range4.yaml:3:15: compress.activations.hadamard: 131072 is out of range, expected -1 "
                      "(auto), 0 (off) or a power of two from 2 to 65536");
    expect_file_error("range5.yaml", "compress:\n  weights:\n    hadamard: 65535\n",
                      "range5.yaml:3:15: compress.weights.hadamard: 65535 is not a power of two, expected -1 "
                      "(auto), 0 (off) or a power of two from 2 to 65536; the nearest are 32768 and 65536");
    /* the gradients' rotation has no auto (-1) and no block of 1; the message
     * states the rule the loader applies, at most 1024 */
    const char *gh[] = {"-1", "48", "2048"}; /* 1 passes the key, the model refuses it (test_compress_gradq) */
    for (int i = 0; i < 3; i++) {
        char text[128], want[256];
        snprintf(text, sizeof text, "compress:\n  gradients: {format: int4, hadamard: %s}\n", gh[i]);
        snprintf(want, sizeof want, "gh.yaml:2:39: compress.gradients.hadamard: %s is %s, expected "
                 "0 (off) or a power of two from 2 to 1024%s", gh[i], i == 1 ? "not a power of two" : "out of range",
                 i == 1 ? "; the nearest are 32 and 64" : "");
        expect_file_error("gh.yaml", text, want);
    }
    /* rounding and rotation of an fp32 (unquantized) backward would be ignored */
    expect_file_error("gsr.yaml", "compress:\n  gradients: {rounding: sr}\n",
                      "gsr.yaml:2:15: compress.gradients.rounding: 'sr' has no effect while "
                      "compress.gradients.format is fp32; set a format (e.g. mxfp4) or drop the key");
    expect_file_error("gh16.yaml", "compress:\n  gradients: {format: fp32, hadamard: 16}\n",
                      "gh16.yaml:2:29: compress.gradients.hadamard: 16 has no effect while "
                      "compress.gradients.format is fp32; set a format (e.g. mxfp4) or drop the key");
    expect_file_error("long.yaml", "compress:\n  activations:\n    scale: absmaximum\n",
                      "long.yaml:3:12: compress.activations.scale: 'absmaximum' is not allowed, expected one of "
                      "rms, absmax, lsq (did you mean 'absmax'?)");
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
                      "nolayers.yaml:2:3: model.layers must be given (> 0) when model.preset is \"\"");
    expect_file_error("twosrc.yaml", "data:\n  source: synthetic\n  shards: \"d/*.bin\"\n",
                      "twosrc.yaml:3:3: data.source is synthetic but data.shards is set; give exactly one data source");
    expect_file_error("both.yaml", "data:\n  shards: \"d/*.bin\"\n  text: [a.txt]\n",
                      "both.yaml:3:3: both data.shards and data.text are set; give exactly one data source");
    expect_file_error("budget.yaml", "train: {tokens: 0, tokens_per_param: 0}\n",
                      "budget.yaml:1:20: train.tokens and train.tokens_per_param are both 0; give a token budget");
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

/* Raw control bytes in a config file: a NUL used to cut the text short (the
 * rest of the file silently ignored, exit 0) and \x00\x01\x02 loaded as an
 * empty config. Both are refused naming the first offending byte. */
static void write_raw(const char *name, const char *bytes, size_t n, char *path, size_t cap) {
    snprintf(path, cap, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, n, f), n);
    fclose(f);
}

static void test_control_bytes(void **state) {
    (void)state;
    struct {
        const char *bytes;
        size_t n;
        const char *where; /* expected LINE:COL */
    } cases[] = {
        {"name: ab\0cd\nseed: 5\n", 20, "1:9"},
        {"\0\1\2", 3, "1:1"},
        {"seed: 5\nname: x\033y\n", 18, "2:8"},
        {"name: \xc3\xa9\x7f\n", 10, "1:8"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char path[512], want[600];
        qat_config c;
        write_raw("ctl.yaml", cases[i].bytes, cases[i].n, path, sizeof path);
        assert_int_equal(qat_config_load(path, NULL, 0, &c), QAT_EINPUT);
        snprintf(want, sizeof want, "%s:%s: contains a NUL byte/control character, expected YAML text", path,
                 cases[i].where);
        assert_string_equal(qat_errmsg(), want);
    }
    /* bytes that are not UTF-8 (Latin-1 é): libyaml's reader gives a byte offset
     * only; the message gives the line and column (in characters) like the others */
    {
        char lp[512];
        qat_config lc;
        const char *lat = "seed: 5\nname: caf\xc3\xa9 x\xe9y\n";
        write_raw("lat1.yaml", lat, strlen(lat), lp, sizeof lp);
        assert_int_equal(qat_config_load(lp, NULL, 0, &lc), QAT_EINPUT);
        char want[600];
        snprintf(want, sizeof want, "%s:2:14: YAML syntax error: invalid trailing UTF-8 octet (byte 22; expected UTF-8 "
                 "text)", lp);
        assert_string_equal(qat_errmsg(), want);
    }
    /* tab, CR and UTF-8 stay allowed */
    char path[512];
    qat_config c;
    write_raw("ok.yaml", "seed:\t5\r\nname: \xc3\xa9\n", 18, path, sizeof path);
    assert_int_equal(qat_config_load(path, NULL, 0, &c), QAT_OK);
    assert_int_equal((int)c.seed, 5);
    /* a YAML escape puts a control character into the value itself: not in a run
     * name, which becomes a directory and is printed to the terminal */
    const char *esc = "name: \"x\\ny\\x1b[31m\"\n";
    write_raw("esc.yaml", esc, strlen(esc), path, sizeof path);
    assert_int_equal(qat_config_load(path, NULL, 0, &c), QAT_EINPUT);
    assert_non_null(strstr(qat_errmsg(), "esc.yaml:1:7: name: contains the control character U+000A"));
    const char *c1 = "name: \"a\\x9b31m\"\n"; /* CSI, a C1 control, UTF-8 C2 9B */
    write_raw("c1.yaml", c1, strlen(c1), path, sizeof path);
    assert_int_equal(qat_config_load(path, NULL, 0, &c), QAT_EINPUT);
    assert_non_null(strstr(qat_errmsg(), "name: contains the control character U+009B"));
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
    assert_int_equal(c.train.schedule, QAT_SCHEDULE_CONSTANT);

    /* qat_config_set on a loaded config: applies, does not validate, leaves the
     * config untouched on error. */
    assert_int_equal(qat_config_set(&c, "data.text=one.txt"), QAT_OK);
    assert_int_equal(c.data.n_text, 1);
    assert_string_equal(c.data.text[0], "one.txt");
    assert_int_equal(qat_config_validate(&c), QAT_EINPUT); /* shards and text both set */
    assert_int_equal(qat_config_set(&c, "data.shards="), QAT_OK);
    assert_int_equal(qat_config_set(&c, "data.val_shards=\"\""), QAT_OK);
    assert_int_equal(qat_config_validate(&c), QAT_OK);
    c.train.schedule = (qat_schedule)3; /* not a name's number: refused like any bad value */
    assert_int_equal(qat_config_validate(&c), QAT_EINPUT);
    assert_non_null(strstr(qat_errmsg(), "train.schedule"));
    c.train.schedule = QAT_SCHEDULE_CONSTANT;
    qat_config before = c;
    assert_int_equal(qat_config_set(&c, "model={vocab: 300, heads: x}"), QAT_EINPUT);
    assert_memory_equal(&before, &c, sizeof c);

    expect_set_error("train.lrr=1", "--set train.lrr=1: unknown key 'train.lrr' (did you mean 'train.lr'?)");
    expect_set_error("lr=1", "--set lr=1: unknown key 'lr' (did you mean 'train.lr'?)");
    expect_set_error("train={lr: 1, lr: 2}",
                     "--set train={lr: 1, lr: 2}: duplicate key 'train.lr' in the value (first given at column 2)");
    expect_set_error("train.lr=abc", "--set train.lr=abc: train.lr: expected a number, got 'abc'");
    expect_set_error("train.lr", "--set train.lr: expected key=value, e.g. train.lr=1e-3");
    /* a word longer than any allowed one is a wrong word, not a long one: the list,
     * not "value is too long (10 characters, at most 7)" */
    expect_set_error("compress.gradients.rounding=stochastic",
                     "--set compress.gradients.rounding=stochastic: compress.gradients.rounding: 'stochastic' is not "
                     "allowed, expected one of rtn, sr (did you mean 'rtn'?)");
    expect_set_error("compress.weights.estimator=straight-through",
                     "--set compress.weights.estimator=straight-through: compress.weights.estimator: "
                     "'straight-through' is not allowed, expected one of \"\", ste, clip, trust, lsq, rbbm, pv, "
                     "masked (did you mean 'trust'?)");
    expect_set_error("train.precision=bfloat16x",
                     "--set train.precision=bfloat16x: train.precision: 'bfloat16x' is not allowed, expected one of "
                     "fp32, bf16 (did you mean 'bf16'?)");
}

/* The cross-key message for an override names the override. */
static void test_set_cross_key(void **state) {
    (void)state;
    /* int keys hold 32 bits: the message states that bound rather than contradict the value */
    expect_set_error("train.eval_tokens=2147483648", "--set train.eval_tokens=2147483648: train.eval_tokens: "
                     "2147483648 is out of range, expected an integer in [1, 2147483647]");
    expect_set_error("train.checkpoint_every=1e12", "--set train.checkpoint_every=1e12: train.checkpoint_every: "
                     "1e12 is out of range, expected an integer in [0, 2147483647]");
    qat_config big;
    const char *top[] = {"train.eval_tokens=2147483647"};
    assert_int_equal(qat_config_load(NULL, top, 1, &big), QAT_OK);
    assert_int_equal(big.train.eval_tokens, 2147483647);
    qat_config c;
    const char *sets[] = {"model.dim=64", "model.heads=5"};
    assert_int_equal(qat_config_load(NULL, sets, 2, &c), QAT_EINPUT);
    assert_string_equal(qat_errmsg(), "--set model.heads=5: model.heads = 5 must divide model.dim = 64");
    const char *sets2[] = {"data.shards=x/*.bin", "data.source=synthetic"};
    assert_int_equal(qat_config_load(NULL, sets2, 2, &c), QAT_EINPUT);
    assert_string_equal(qat_errmsg(), "--set data.source=synthetic: data.source is synthetic but data.shards is "
                                      "set; give exactly one data source");
}

/* A check between keys points at the one given last, so a key left at its default
 * (train.batch_tokens here) no longer leaves the message without a line, and an
 * override that breaks a file's valid pair is the one named. */
static void test_cross_key_names_the_later_key(void **state) {
    (void)state;
    expect_file_error("cross1.yaml", "model: {seq_len: 100}\n",
                      "cross1.yaml:1:9: train.batch_tokens = 4096 must be a multiple of model.seq_len = 100");
    expect_file_error("cross2.yaml", "train: {batch_tokens: 1024}\nmodel: {seq_len: 100}\n",
                      "cross2.yaml:2:9: train.batch_tokens = 1024 must be a multiple of model.seq_len = 100");
    expect_file_error("cross3.yaml", "name: p\nmodel: {preset: \"\"}\n",
                      "cross3.yaml:2:9: model.layers must be given (> 0) when model.preset is \"\"");
    expect_file_error("cross4.yaml", "model: {seq_len: 64}\ntrain: {eval_tokens: 32}\n",
                      "cross4.yaml:2:9: train.eval_tokens = 32 must hold at least one sequence (model.seq_len = 64)");
    expect_file_error("cross5.yaml", "data: {source: synthetic, synth_vocab: 300}\nmodel: {vocab: 256}\n",
                      "cross5.yaml:2:9: data.synth_vocab = 300 exceeds model.vocab = 256");
    /* what the synthetic corpus cannot generate is refused at the key, with the
     * generator's own limits (data/synth.c): topics in [1, 64], a vocabulary of at
     * least 50 + topics; a larger synth_topics failed only when the corpus was built */
    expect_file_error("topics.yaml", "data:\n  source: synthetic\n  synth_topics: 100\n",
                      "topics.yaml:3:17: data.synth_topics: 100 is out of range, expected an integer in [1, 64]");
    expect_file_error("svocab.yaml", "model: {vocab: 40}\ndata: {source: synthetic, synth_topics: 2}\n",
                      "svocab.yaml:2:27: model.vocab = 40 is too small for the synthetic corpus with "
                      "data.synth_topics = 2, expected model.vocab >= 52 (BOS, COPY, a token per topic, 16 copy "
                      "specs, 32 content tokens)");
    expect_file_error("svocab2.yaml", "data: {source: synthetic, synth_vocab: 60}\n",
                      "svocab2.yaml:1:27: data.synth_vocab = 60 is too small for the synthetic corpus with "
                      "data.synth_topics = 16, expected data.synth_vocab >= 66 (BOS, COPY, a token per topic, 16 copy "
                      "specs, 32 content tokens)");
    qat_config c;
    const char *big[] = {"model.vocab=100000", "data.source=synthetic"};
    assert_int_equal(qat_config_load(NULL, big, 2, &c), QAT_EINPUT);
    assert_string_equal(qat_errmsg(), "--set data.source=synthetic: model.vocab = 100000 is more than the synthetic "
                                      "corpus's 65536 token ids; expected model.vocab <= 65536, or data.synth_vocab <= 65536");
    const char *vs[] = {"model.vocab=52", "data.source=synthetic", "data.synth_topics=2"};
    assert_int_equal(qat_config_load(NULL, vs, 3, &c), QAT_OK); /* the smallest that works */
    const char *sets[] = {"model.seq_len=100"};
    assert_int_equal(qat_config_load(write_yaml("cross6.yaml", "train: {batch_tokens: 1024}\n"), sets, 1, &c),
                     QAT_EINPUT);
    assert_string_equal(qat_errmsg(), "--set model.seq_len=100: train.batch_tokens = 1024 must be a multiple of "
                                      "model.seq_len = 100");
    /* after loading: the later of several keys or sections, a --set after the file */
    const char *sets2[] = {"train.lr=0.01"};
    const char *path = write_yaml("late.yaml", "model: {dim: 32}\ncompress:\n  weights: {format: int4}\n");
    assert_int_equal(qat_config_load_ex(path, sets2, 1, 0, &c), QAT_OK);
    char buf[1200], want[1200];
    const char *k1[] = {"compress.weights", "model.dim", NULL}, *k2[] = {"model", "train.lr", NULL},
               *k3[] = {"model.heads", "compress.activations", NULL};
    snprintf(want, sizeof want, "%s:3:13", path);
    assert_string_equal(qat_config_where_last(&c, k1, buf, sizeof buf), want);
    assert_string_equal(qat_config_where_last(&c, k2, buf, sizeof buf), "--set train.lr=0.01");
    assert_string_equal(qat_config_where_last(&c, k3, buf, sizeof buf), path); /* neither given */
}

/* model.seq_len against a corpus split into blocks of 65536 tokens: a sequence of
 * seq_len + 1 tokens must fit in one, so 65536 is refused at its key, naming the
 * limit (it used to fail only when the corpus was split, blaming data.val_fraction
 * and asking for a larger one, which no value could satisfy). */
static void test_seq_len_against_the_split(void **state) {
    (void)state;
    qat_config c;
    char want[1200];
    const char *path = write_yaml("long.yaml", "model: {seq_len: 65536}\ntrain: {batch_tokens: 65536, eval_tokens: 65536}\n");
    assert_int_equal(qat_config_load(path, NULL, 0, &c), QAT_OK); /* the key's range allows it */
    assert_int_equal(qat_config_check_split(&c), QAT_EINPUT);
    snprintf(want, sizeof want, "%s:1:9: model.seq_len = 65536 does not fit the split of data.source english: a real "
             "corpus is cut into blocks of 65536 tokens, one in every 1/data.val_fraction held out, and a sequence "
             "(seq_len + 1 tokens) must fit in one block (docs/data.md, \"The split\"), whatever data.val_fraction; "
             "expected model.seq_len <= 65535", path);
    assert_string_equal(qat_errmsg(), want);
    /* a run already made is taken as made (core/config.h, stored) */
    qat_config_mark_stored(&c);
    assert_int_equal(qat_config_check_split(&c), QAT_OK);
    const char *fits[] = {"model.seq_len=65535", "train.batch_tokens=65535", "train.eval_tokens=65535"};
    assert_int_equal(qat_config_load(NULL, fits, 3, &c), QAT_OK);
    assert_int_equal(qat_config_check_split(&c), QAT_OK);
    /* the synthetic corpus and explicit validation shards are not split */
    const char *synth[] = {"model.seq_len=65536", "train.batch_tokens=65536", "train.eval_tokens=65536",
                           "data.source=synthetic"};
    assert_int_equal(qat_config_load(NULL, synth, 4, &c), QAT_OK);
    assert_int_equal(qat_config_check_split(&c), QAT_OK);
    const char *val[] = {"model.seq_len=65536", "train.batch_tokens=65536", "train.eval_tokens=65536",
                         "data.shards=x/*.bin", "data.val_shards=v/*.bin"};
    assert_int_equal(qat_config_load(NULL, val, 5, &c), QAT_OK);
    assert_int_equal(qat_config_check_split(&c), QAT_OK);
    /* shards without them are split: named, with the way out; the key given last is blamed */
    assert_int_equal(qat_config_load(NULL, val, 4, &c), QAT_OK);
    assert_int_equal(qat_config_check_split(&c), QAT_EINPUT);
    if (strncmp(qat_errmsg(), "--set data.shards=x/*.bin: model.seq_len = 65536 does not fit the split of data.shards:",
                87) || !strstr(qat_errmsg(), "expected model.seq_len <= 65535, or data.val_shards (a validation set "
                                             "of its own, not split)"))
        fail_msg("%s", qat_errmsg());
    const char *text[] = {"data.text=[a.txt]", "model.seq_len=1048576", "train.batch_tokens=1048576",
                          "train.eval_tokens=1048576"};
    assert_int_equal(qat_config_load(NULL, text, 4, &c), QAT_OK);
    assert_int_equal(qat_config_check_split(&c), QAT_EINPUT);
    if (!strstr(qat_errmsg(), "--set model.seq_len=1048576: model.seq_len = 1048576 does not fit the split of data.text:"))
        fail_msg("%s", qat_errmsg());
}

/* A synthetic corpus's knob given under another data source shapes nothing: it was
 * accepted, recorded in run.h5 and ignored. Refused at its line for a new run; the
 * default given, the synthetic source, and a stored config pass. */
static void test_synth_keys_need_the_synthetic_source(void **state) {
    (void)state;
    qat_config c;
    char want[1200];
    const char *path = write_yaml("synth.yaml", "data:\n  source: english\n  synth_topics: 8\n");
    assert_int_equal(qat_config_load(path, NULL, 0, &c), QAT_OK);
    assert_int_equal(qat_config_check_synth(&c), QAT_EINPUT);
    snprintf(want, sizeof want, "%s:3:3: data.synth_topics: 8 has no effect with data.source english: it shapes "
             "the synthetic corpus only (docs/data.md); expected data.source: synthetic, or data.synth_topics left at "
             "its default", path);
    assert_string_equal(qat_errmsg(), want);
    qat_config_mark_stored(&c);
    assert_int_equal(qat_config_check_synth(&c), QAT_OK);
    const char *seed[] = {"data.text=[a.txt]", "data.synth_seed=7"};
    assert_int_equal(qat_config_load(NULL, seed, 2, &c), QAT_OK);
    assert_int_equal(qat_config_check_synth(&c), QAT_EINPUT);
    if (strncmp(qat_errmsg(), "--set data.synth_seed=7: data.synth_seed: 7 has no effect with data.source text:", 80))
        fail_msg("%s", qat_errmsg());
    const char *ok[][2] = {{"data.source=synthetic", "data.synth_topics=8"}, {"data.source=english", "data.synth_topics=16"}};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(qat_config_load(NULL, ok[i], 2, &c), QAT_OK);
        assert_int_equal(qat_config_check_synth(&c), QAT_OK);
    }
}

/* data.text's entries are counted from 1 in every message, as the same-file check
 * counts them ("entries 1 and 2"): an empty one was "entry 1" when it was the second
 * and "entry 0" when it was the only one. Refused at the entry itself. */
static void test_text_entries_count_from_one(void **state) {
    (void)state;
    expect_set_error("data.text=[c.txt, '']", "--set data.text=[c.txt, '']: data.text: entry 2 is empty, expected a file name");
    expect_set_error("data.text=['', c.txt]", "--set data.text=['', c.txt]: data.text: entry 1 is empty, expected a file name");
    expect_set_error("data.text=''", "--set data.text='': data.text: entry 1 is empty, expected a file name");
    expect_file_error("text_empty.yaml", "data:\n  text:\n    - a.txt\n    - b.txt\n    - \"\"\n",
                      "text_empty.yaml:5:7: data.text: entry 3 is empty, expected a file name");
    /* a struct filled by code goes through the validator, which counts alike */
    qat_config c;
    assert_int_equal(qat_config_load(NULL, NULL, 0, &c), QAT_OK);
    strcpy(c.data.source, "text");
    c.data.n_text = 2;
    strcpy(c.data.text[0], "a.txt");
    assert_int_equal(qat_config_validate(&c), QAT_EINPUT);
    if (!strstr(qat_errmsg(), "data.text: entry 2 is empty or not terminated")) fail_msg("%s", qat_errmsg());
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
    c.train.schedule = QAT_SCHEDULE_LINEAR;
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
    /* where each key was written (line:col) is not a value: d has positions, c none */
    for (int i = 0; i < QAT_CONFIG_KEYS_MAX; i++) assert_true(d.key_at[i].line >= 0 && !d.key_at[i].set);
    memset(d.key_at, 0, sizeof d.key_at);
    memset(d.data.text_at, 0, sizeof d.data.text_at); /* where data.text was written, likewise */
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
    memset(d.key_at, 0, sizeof d.key_at); /* positions, not values */
    assert_memory_equal(&c, &d, sizeof c);
    free(yaml);

    /* The origin names embedded YAML in errors. */
    assert_int_equal(qat_config_load_string("train: {lr: 0}\n", "ckpt.h5:config", &d), QAT_EINPUT);
    assert_string_equal(qat_errmsg(), "ckpt.h5:config:1:13: train.lr: 0 is out of range, expected a number > 0");
    /* white space in a format is named and placed, a tab as a tab (it said "contains white space") */
    assert_int_equal(qat_config_load_string("compress: {weights: {format: \"mxfp4\\t\"}}\n", "c.yaml", &d), QAT_EINPUT);
    assert_non_null(strstr(qat_errmsg(), "c.yaml:1:30: compress.weights.format: 'mxfp4\t' has a trailing tab at character 6"));
    assert_int_equal(qat_config_load_string("compress: {gradients: {format: \"int 4\"}}\n", "c.yaml", &d), QAT_EINPUT);
    assert_non_null(strstr(qat_errmsg(), "'int 4' has a space at character 4"));
}

/* Checks made after loading (the model's shape, a side's format and estimator) name the
 * line of the key they concern: qat_config_where gives a key's position, a section's
 * first key in file order, "--set KEY" for an override, else the file name. */
static void test_where_names_the_line(void **state) {
    (void)state;
    static const char *yaml = "name: w\nmodel:\n  heads: 3\n  dim: 30\n"
                              "compress:\n  weights: {format: fp32, estimator: trust}\n";
    const char *sets[] = {"train.lr=0.01"};
    qat_config c;
    char path[] = "/tmp/qat_where_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
    close(fd);
    assert_int_equal(qat_config_load_ex(path, sets, 1, 0, &c), QAT_OK);
    char buf[1200], want[1200];
    snprintf(want, sizeof want, "%s:4:3", path);
    assert_string_equal(qat_config_where(&c, "model.dim", buf, sizeof buf), want);
    snprintf(want, sizeof want, "%s:3:3", path); /* the section: heads comes first in the file */
    assert_string_equal(qat_config_where(&c, "model", buf, sizeof buf), want);
    snprintf(want, sizeof want, "%s:6:13", path);
    assert_string_equal(qat_config_where(&c, "compress.weights", buf, sizeof buf), want);
    snprintf(want, sizeof want, "%s:6:27", path);
    assert_string_equal(qat_config_where(&c, "compress.weights.estimator", buf, sizeof buf), want);
    assert_string_equal(qat_config_where(&c, "train.lr", buf, sizeof buf), "--set train.lr=0.01");
    assert_string_equal(qat_config_where(&c, "train.warmup", buf, sizeof buf), path); /* a default */
    assert_string_equal(qat_config_where(&c, "compress.activations", buf, sizeof buf), path);
    unlink(path);
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

/* A file's aliases cost no more than its size (docs/config.md, "YAML"): libyaml
 * keeps an alias as the anchored node, so a walk that revisits shared nodes makes
 * `aN: [*aN-1, *aN-1, *aN-1]` cost 3^N. Here N = 24 (3^23 visits, which never
 * finishes before the fix): the unknown first key is named at once. Nesting and
 * anchors that would make libyaml itself quadratic are refused where they pass
 * the limit, and aliases within the limits still mean their anchored values. */
static void test_yaml_aliases_and_depth(void **state) {
    (void)state;
    char *text = malloc(1 << 16), *p;
    expect_file_error("bomb.yaml", qat_test_alias_levels(text, "a0: &a0 [x]\n", 24, "a%d: &a%d [*a%d, *a%d, *a%d]\n"),
                      "bomb.yaml:1:1: unknown key 'a0' (did you mean 'train.lr'?)");
    /* the same shared subtree below a known key: its first list is the mistake */
    qat_test_alias_levels(text, "train:\n  lr: 1e-3\n  warmup: &a0 [x]\n", 24, "  w%d: &a%d [*a%d, *a%d, *a%d]\n");
    expect_file_error("bomb2.yaml", text, "bomb2.yaml:3:11: train.warmup: expected a number, got a list");
    /* the block mapping is level 1, so the 64th '[' (column 8 + 63) is level 65 */
    expect_file_error("deep.yaml", qat_test_nested_lists(text, "train: ", 20000, "\n"), "deep.yaml:1:71: nested deeper than 64 levels, expected a config or sweep "
                                         "(a few levels)");
    p = text + sprintf(text, "train: {lr: &l0 1e-3}\nmodel:\n");
    for (int i = 1; i <= 101; i++) p += sprintf(p, "  k%d: &l%d 1\n", i, i);
    expect_file_error("anchors.yaml", text, "anchors.yaml:102:9: more than 100 anchors (&name), expected at most 100");
    expect_set_error("train.lr=[*a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, "
                     "*a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, "
                     "*a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, "
                     "*a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, "
                     "*a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a]",
                     "--set train.lr=[*a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, "
                     "*a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, "
                     "*a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, "
                     "*a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, "
                     "*a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a]: more than 100 aliases (*name), "
                     "expected at most 100");

    /* a key repeated in a wide mapping is still the first repeat in document order */
    p = text + sprintf(text, "model:\n");
    for (int i = 0; i < 2000; i++) p += sprintf(p, "  k%d: 1\n", 1999 - i);
    p += sprintf(p, "  k7: 2\n  k5: 2\n");
    expect_file_error("wide.yaml", text, "wide.yaml:2002:3: duplicate key 'model.k7' (first given at 1994:3)");

    qat_config c;
    assert_int_equal(qat_config_load(write_yaml("alias_ok.yaml", "train: {lr: &v 0.002, min_lr_ratio: *v}\n"
                                                                  "model: &m {dim: 32}\n"),
                                     NULL, 0, &c),
                     QAT_OK);
    assert_true(c.train.lr == 0.002 && c.train.min_lr_ratio == 0.002 && c.model.dim == 32);
    free(text);
}

static int setup(void **state) {
    (void)state;
    return qat_test_mkdtemp(tmpdir, sizeof tmpdir, "config");
}

static int teardown(void **state) {
    (void)state;
    return qat_test_rmtree(tmpdir);
}

/* ---- docs/config.md's key table against the binary's (core/config.c) ---------- */

/* Shortest decimal text of a bound, as docs/config.md writes it: whole numbers in
 * full (1048576, 9007199254740992), others in %g (0.5, 1e-05 is written 1e-5). */
static void fmt_bound(char *buf, size_t n, double v) {
    if (v == floor(v) && fabs(v) < 1e16) {
        snprintf(buf, n, "%.0f", v);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) return;
    }
}

/* Split a markdown table row into cells at '|' not escaped as '\|'; trims spaces.
 * Returns the cell count (at most max). */
static int split_row(char *line, char **cell, int max) {
    int n = 0;
    char *p = line;
    if (*p == '|') p++;
    char *start = p;
    for (; *p && n < max; p++) {
        if (*p == '|' && p[-1] != '\\') {
            *p = 0;
            cell[n++] = start;
            start = p + 1;
        }
    }
    for (int i = 0; i < n; i++) {
        while (*cell[i] == ' ') cell[i]++;
        size_t l = strlen(cell[i]);
        while (l && (cell[i][l - 1] == ' ' || cell[i][l - 1] == '\n')) cell[i][--l] = 0;
    }
    return n;
}

/* The backticked words of a cell ("`fp32` \| `bf16`" -> fp32, bf16), '""' as "". */
static int backticked(const char *cell, char words[][64], int max) {
    int n = 0;
    for (const char *p = strchr(cell, '`'); p && n < max; p = strchr(p, '`')) {
        const char *q = strchr(p + 1, '`');
        if (!q) break;
        snprintf(words[n], 64, "%.*s", (int)(q - p - 1), p + 1);
        if (!strcmp(words[n], "\"\"")) words[n][0] = 0;
        n++;
        p = q + 1;
    }
    return n;
}

/* One documented row against one table row; failures are counted and printed. */
static int check_doc_row(const char *key, const char *type, const char *def, const qat_config_key_info *k) {
    int bad = 0;
    char words[32][64], want[256];
    /* default */
    const char *dq = def;
    char d[256];
    int nd = backticked(dq, words, 1);
    snprintf(d, sizeof d, "%s", nd ? words[0] : dq);
    if (strcmp(d, k->def)) {
        printf("  %s: docs default '%s', binary '%s'\n", key, d, k->def);
        bad++;
    }
    /* kind of value */
    if (strncmp(type, k->type, strlen(k->type)) && !(k->allowed && !strcmp(k->type, "string")) &&
        !(!strcmp(k->type, "string") && strstr(type, "string"))) {
        printf("  %s: docs type '%s', binary %s\n", key, type, k->type);
        bad++;
    }
    /* allowed values: the same set */
    if (k->allowed) {
        int nw = backticked(type, words, 32), na = 0;
        for (; k->allowed[na]; na++) {
            int found = 0;
            for (int j = 0; j < nw; j++) found |= !strcmp(words[j], k->allowed[na]);
            if (!found) printf("  %s: allowed value '%s' is not in the docs (%s)\n", key, k->allowed[na], type), bad++;
        }
        if (nw != na) printf("  %s: docs list %d values, binary %d (%s)\n", key, nw, na, type), bad++;
    }
    /* numeric range, in the form docs/config.md uses */
    if (!strcmp(k->type, "int") || !strcmp(k->type, "number")) {
        int has_lo = k->min > -HUGE_VAL, has_hi = k->max < HUGE_VAL;
        char lo[64], hi[64];
        fmt_bound(lo, sizeof lo, k->min);
        fmt_bound(hi, sizeof hi, k->max);
        want[0] = 0;
        if (has_lo && has_hi)
            snprintf(want, sizeof want, "in %c%s, %s%c", k->min_open ? '(' : '[', lo, hi, k->max_open ? ')' : ']');
        else if (has_lo)
            snprintf(want, sizeof want, "%s %s", k->min_open ? ">" : "≥", lo);
        else if (has_hi)
            snprintf(want, sizeof want, "%s %s", k->max_open ? "<" : "≤", hi);
        if (want[0] && !strstr(type, want)) {
            printf("  %s: docs type '%s' does not say '%s'\n", key, type, want);
            bad++;
        }
        if (!want[0] && (strstr(type, "≥") || strstr(type, "in [") || strstr(type, "in ("))) {
            printf("  %s: docs give a range (%s), the binary has none\n", key, type);
            bad++;
        }
        if (k->pow2 && !strstr(type, "power of two")) printf("  %s: docs omit 'power of two'\n", key), bad++;
    }
    return bad;
}

/* docs/config.md documents every key of the binary's table (names, types, defaults,
 * allowed values, ranges) and nothing else, so the two cannot drift apart. */
static void test_docs_key_table_matches_binary(void **state) {
    (void)state;
    const char *root = getenv("QAT_SOURCE_ROOT");
    assert_non_null(root);
    char path[1024];
    snprintf(path, sizeof path, "%s/docs/config.md", root);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    int nk = qat_config_key_count();
    int *documented = calloc((size_t)nk, sizeof *documented);
    char line[4096];
    int in_keys = 0, bad = 0, rows = 0;
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "## ", 3)) in_keys = !strncmp(line, "## Keys", 7);
        if (!in_keys || strncmp(line, "| `", 3)) continue;
        char *cell[8];
        if (split_row(line, cell, 8) < 4) continue;
        char names[1][64];
        assert_int_equal(backticked(cell[0], names, 1), 1);
        const char *key = names[0];
        rows++;
        size_t kl = strlen(key);
        if (kl > 2 && !strcmp(key + kl - 2, ".*")) {
            /* "compress.activations.*": the same keys as compress.weights.*, with the same rows */
            char prefix[64];
            snprintf(prefix, sizeof prefix, "%.*s.", (int)(kl - 2), key);
            int found = 0;
            for (int i = 0; i < nk; i++) {
                qat_config_key_info k, w;
                qat_config_key_get(i, &k);
                if (strncmp(k.key, prefix, strlen(prefix))) continue;
                char twin[128];
                snprintf(twin, sizeof twin, "compress.weights.%s", k.key + strlen(prefix));
                int wi = qat_config_key_find(twin);
                if (wi < 0) { printf("  %s has no compress.weights twin\n", k.key); bad++; continue; }
                qat_config_key_get(wi, &w);
                if (strcmp(k.def, w.def) || strcmp(k.type, w.type) || k.min != w.min || k.max != w.max ||
                    k.allowed != w.allowed)
                    printf("  %s differs from %s, but the docs give them one row\n", k.key, twin), bad++;
                documented[i] = 1;
                found++;
            }
            if (!found) printf("  docs row %s matches no key\n", key), bad++;
            continue;
        }
        int i = qat_config_key_find(key);
        if (i < 0) {
            printf("  docs/config.md documents '%s', which the binary does not have\n", key);
            bad++;
            continue;
        }
        if (documented[i]) printf("  %s is documented twice\n", key), bad++;
        documented[i] = 1;
        qat_config_key_info k;
        qat_config_key_get(i, &k);
        bad += check_doc_row(key, cell[1], cell[2], &k);
    }
    fclose(f);
    for (int i = 0; i < nk; i++)
        if (!documented[i]) {
            qat_config_key_info k;
            qat_config_key_get(i, &k);
            printf("  %s is not in docs/config.md's key table\n", k.key);
            bad++;
        }
    free(documented);
    printf("  %d rows checked against %d keys: %d mismatches\n", rows, nk, bad);
    assert_true(rows > 40);
    assert_int_equal(bad, 0);
}

/* The exported table is the one the loader uses: every row's default reads back
 * as that key's value in a default config, and key_text agrees with the YAML. */
static void test_key_table_export(void **state) {
    (void)state;
    qat_config c;
    qat_config_defaults(&c);
    int n = qat_config_key_count();
    assert_true(n > 50);
    for (int i = 0; i < n; i++) {
        qat_config_key_info k;
        qat_config_key_get(i, &k);
        assert_int_equal(qat_config_key_find(k.key), i);
        char set[512];
        snprintf(set, sizeof set, "%s=%s", k.key, k.def);
        qat_config d = c;
        assert_int_equal(qat_config_set(&d, set), QAT_OK);
        char *a = qat_config_key_text(&c, i), *b = qat_config_key_text(&d, i);
        assert_string_equal(a, b);
        free(a);
        free(b);
    }
    assert_int_equal(qat_config_key_find("train.lrr"), -1);
    const char *sets[2] = {"data.text=[a.txt, \"b c.txt\"]", "model.seq_len=6.4e1"};
    assert_int_equal(qat_config_load(NULL, sets, 2, &c), QAT_OK);
    char *t = qat_config_key_text(&c, qat_config_key_find("data.text"));
    assert_string_equal(t, "[\"a.txt\", \"b c.txt\"]");
    free(t);
    t = qat_config_key_text(&c, qat_config_key_find("model.seq_len"));
    assert_string_equal(t, "64");
    free(t);
    /* seq_len 1 is refused by the table itself (a row is T+1 tokens; the model needs 2) */
    const char *one[1] = {"model.seq_len=1"};
    assert_int_equal(qat_config_load(NULL, one, 1, &c), QAT_EINPUT);
    assert_non_null(strstr(qat_errmsg(), "expected an integer in [2, "));
    const char *huge[1] = {"train.tokens=1e30"};
    assert_int_equal(qat_config_load(NULL, huge, 1, &c), QAT_EINPUT);
    assert_non_null(strstr(qat_errmsg(), "expected a number in [0, 9007199254740992]"));
    /* just above 2^53 a text rounds onto the bound: it is still above it, and refused,
     * never read as 2^53; integers are the number written, not the double nearest */
    expect_set_error("train.tokens=9007199254740993", "--set train.tokens=9007199254740993: train.tokens: "
                     "9007199254740993 is out of range, expected a number in [0, 9007199254740992]");
    expect_set_error("train.tokens=9.007199254740993e15", "--set train.tokens=9.007199254740993e15: train.tokens: "
                     "9.007199254740993e15 is out of range, expected a number in [0, 9007199254740992]");
    expect_set_error("model.rope_theta=100000000000000000001", "--set model.rope_theta=100000000000000000001: "
                     "model.rope_theta: 100000000000000000001 is not exactly a double (whole numbers are exact only up "
                     "to 2^53 = 9007199254740992; it would read as 100000000000000000000), expected a value a double "
                     "holds");
    expect_set_error("model.layers=2.0000000000000001", "--set model.layers=2.0000000000000001: model.layers: "
                     "expected an integer, got '2.0000000000000001'");
    expect_set_error("seed=4503599627370495.7", "--set seed=4503599627370495.7: seed: expected an unsigned integer "
                     "in [0, 18446744073709551615] (digits, or an exact whole number such as 1e6), got "
                     "'4503599627370495.7'");
    /* a number's spelling outside a double's range says so, not "expected a number" */
    expect_set_error("train.lr=1e-400", "--set train.lr=1e-400: train.lr: '1e-400' is below a double's range "
                     "(magnitudes from 2.2e-308 to 1.8e308, or 0), expected a number within it");
    expect_set_error("train.lr=1e400", "--set train.lr=1e400: train.lr: '1e400' is beyond a double's range "
                     "(magnitudes from 2.2e-308 to 1.8e308, or 0), expected a number within it");
    const char *exact[] = {"train.tokens=9007199254740992", "model.rope_theta=1e300", "seed=1e6", "model.layers=2e0"};
    assert_int_equal(qat_config_load(NULL, exact, 4, &c), QAT_OK);
    assert_true(c.train.tokens == 0x1p53 && c.model.rope_theta == 1e300 && c.seed == 1000000 && c.model.layers == 2);
    /* an exact whole number past 2^53 is a seed too (1e16 = 10^16 exactly) */
    const char *big_seed[] = {"seed=1e16"};
    assert_int_equal(qat_config_load(NULL, big_seed, 1, &c), QAT_OK);
    assert_true(c.seed == 10000000000000000ull);
}

/* One rule for a seed wherever it is read: the config's `seed` and
 * `data.synth_seed` and the commands' --seed (capacity, fit, data synth) all
 * call qat_parse_u64. capacity's --seed took only what strtoll did, so
 * 9223372036854775808 (which `seed:` takes) and 1e3 were refused there with
 * "expected a non-negative integer", and data synth read 010 as octal 8 and
 * 0x10 as 16. Each text below is taken by both or refused by both. */
static void test_one_seed_rule(void **state) {
    (void)state;
    struct { const char *s; int ok; uint64_t v; } t[] = {
        {"0", 1, 0}, {"9223372036854775808", 1, 9223372036854775808ull}, {"18446744073709551615", 1, UINT64_MAX},
        {"1e3", 1, 1000}, {"1e6", 1, 1000000}, {"2.5e3", 1, 2500}, {"010", 1, 10}, {"1e16", 1, 10000000000000000ull},
        {"18446744073709551616", 0, 0}, {"1.8446744073709552e19", 0, 0}, {"-1", 0, 0}, {"1.5", 0, 0}, {"0x10", 0, 0},
        {" 3", 0, 0}, {"", 0, 0}, {"abc", 0, 0}, {"4503599627370495.7", 0, 0},
        {"9007199254740992e0", 1, 9007199254740992ull}, {"9007199254740993e0", 0, 0}, /* no double is ...993 */
    };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        uint64_t v = 7;
        int ok = qat_parse_u64(t[i].s, &v);
        if (ok != t[i].ok || (ok && v != t[i].v)) fail_msg("'%s': %d %llu", t[i].s, ok, (unsigned long long)v);
        if (t[i].s[0] == ' ') continue; /* --set's YAML drops the space before the key sees the text */
        char set[64];
        snprintf(set, sizeof set, "seed=%s", t[i].s);
        const char *sets[1] = {set};
        qat_config c;
        qat_clear_error();
        int rc = qat_config_load(NULL, sets, 1, &c);
        if ((rc == QAT_OK) != ok || (ok && c.seed != t[i].v)) fail_msg("--set %s: %s", set, rc ? qat_errmsg() : "taken");
        if (!ok && !strstr(qat_errmsg(), QAT_U64_RULE)) fail_msg("--set %s: %s", set, qat_errmsg());
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_one_seed_rule),
        cmocka_unit_test(test_block_flow_and_dotted),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_yaml_aliases_and_depth),
        cmocka_unit_test(test_cross_key_names_the_later_key),
        cmocka_unit_test(test_control_bytes),
        cmocka_unit_test(test_set_overrides),
        cmocka_unit_test(test_set_cross_key),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_nearest_key),
        cmocka_unit_test(test_seq_len_against_the_split),
        cmocka_unit_test(test_text_entries_count_from_one),
        cmocka_unit_test(test_synth_keys_need_the_synthetic_source),
        cmocka_unit_test(test_where_names_the_line),
        cmocka_unit_test(test_help_names_every_choice),
        cmocka_unit_test(test_docs_key_table_matches_binary),
        cmocka_unit_test(test_key_table_export),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

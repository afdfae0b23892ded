/*
 * tests/test_sweep.c — sweep files expanded into runs (sweep/sweep.h, sweep/slurm.h), without
 * launching anything: the order of the cartesian product and of repeat seeds,
 * run names (readable, safe, unique), the overrides each run gets, every
 * mistake reported at its exact FILE:LINE:COL with the nearest valid key, an
 * impossible combination kept as one run's failure, shards that cover the grid
 * exactly once, a Slurm script that bash accepts, and what --jobs auto picks
 * (runs at once × threads) for machines of 1, 2 and 8 cores.
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

#include "core/config.h"
#include "core/error.h"
#include "core/num.h"
#include "sweep/slurm.h"
#include "sweep/sweep.h"

static char tmpdir[256];

/* Write `text` to a file in the temp dir; returns its path (static buffer). */
static const char *write_file(const char *name, const char *text) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static qat_sweep *load_ok(const char *name, const char *text) {
    qat_sweep *sw = NULL;
    int rc = qat_sweep_load(write_file(name, text), &sw);
    if (rc) fprintf(stderr, "unexpected error: %s\n", qat_errmsg());
    assert_int_equal(rc, QAT_OK);
    assert_non_null(sw);
    return sw;
}

/* Expect qat_sweep_load to fail with exactly "DIR/<want>". */
static void expect_error(const char *name, const char *text, const char *want) {
    qat_sweep *sw = NULL;
    assert_int_equal(qat_sweep_load(write_file(name, text), &sw), QAT_EINPUT);
    assert_null(sw);
    char full[2048];
    snprintf(full, sizeof full, "%s/%s", tmpdir, want);
    if (strcmp(qat_errmsg(), full)) fprintf(stderr, "got:  %s\nwant: %s\n", qat_errmsg(), full);
    assert_string_equal(qat_errmsg(), full);
}

/* A sweep none of whose runs is valid: QAT_EINPUT with "DIR/NAME: HEADER", then
 * a line "  DIR/LINE" for each of `lines`. Without `tail` that is the whole
 * message; with it, `lines` need only appear in order (some may lie between) and
 * the message ends in `tail`. */
static void expect_errors(const char *name, const char *text, const char *header, const char *const *lines,
                          const char *tail) {
    qat_sweep *sw = NULL;
    assert_int_equal(qat_sweep_load(write_file(name, text), &sw), QAT_EINPUT);
    assert_null(sw);
    char want[8192], line[2048];
    size_t l = (size_t)snprintf(want, sizeof want, "%s/%s: %s", tmpdir, name, header);
    const char *got = qat_errmsg(), *at = got + l;
    if (strncmp(got, want, l)) fail_msg("got:\n%s\nwant it to start with:\n%s", got, want);
    for (int i = 0; lines[i]; i++) {
        snprintf(line, sizeof line, "\n  %s/%s", tmpdir, lines[i]);
        l += (size_t)snprintf(want + l, sizeof want - l, "%s", line);
        if (!(at = strstr(at, line))) fail_msg("'%s' not in (or not in order):\n%s", line + 1, got);
        at += strlen(line);
    }
    if (!tail && strcmp(got, want)) fail_msg("got:\n%s\nwant:\n%s", got, want);
    if (tail && (strlen(got) < strlen(tail) || strcmp(got + strlen(got) - strlen(tail), tail)))
        fail_msg("got:\n%s\nwant it to end with:\n%s", got, tail);
}

/* What a worker sees (the re-emitted base plus the run's overrides, as in
 * `qat train OUT/.sweep/base-HASH.yaml --set ...`) is exactly the config checked here. */
static void check_worker_view(const qat_sweep *sw) {
    char *text = qat_config_to_yaml(&sw->base);
    const char *path = write_file("worker_base.yaml", text);
    free(text);
    char copy[600];
    snprintf(copy, sizeof copy, "%s", path);
    const char *sets[64];
    for (int r = 0; r < qat_sweep_run_count(sw); r++) {
        qat_config a, b;
        if (qat_sweep_run_config(sw, r, &a)) continue;
        int n = qat_sweep_run_sets(sw, r, sets, 64);
        assert_int_equal(qat_config_load(copy, sets, n, &b), QAT_OK);
        qat_config_forget_origin(&a);
        qat_config_forget_origin(&b);
        assert_memory_equal(&a, &b, sizeof a);
    }
}

static const char *const TINY_BASE =
    "base:\n"
    "  model: {preset: \"\", layers: 2, dim: 16, heads: 2, seq_len: 16}\n"
    "  train: {tokens: 512, batch_tokens: 64, eval_tokens: 32}\n";

static void test_order_names_and_sets(void **state) {
    (void)state;
    qat_sweep *sw = load_ok("formats.yaml",
                            "base:\n"
                            "  model: {preset: s3}\n"
                            "grid:\n"
                            "  model.preset: [s1, s3]\n"
                            "  compress:\n"
                            "    weights: {format: [int4, fp4]}\n"
                            "  compress.activations.format: [fp32, \"2:4\"]\n"
                            "repeat: 2\n");
    assert_int_equal(qat_sweep_run_count(sw), 16);
    assert_string_equal(sw->out, "runs/formats");
    assert_int_equal(sw->n_axes, 3);
    assert_string_equal(sw->axes[1].key, "compress.weights.format");
    /* last key fastest, seeds fastest of all */
    const char *want[16] = {
        "s1-int4-fp32-seed0", "s1-int4-fp32-seed1", "s1-int4-2_4-seed0", "s1-int4-2_4-seed1",
        "s1-fp4-fp32-seed0",  "s1-fp4-fp32-seed1",  "s1-fp4-2_4-seed0",  "s1-fp4-2_4-seed1",
        "s3-int4-fp32-seed0", "s3-int4-fp32-seed1", "s3-int4-2_4-seed0", "s3-int4-2_4-seed1",
        "s3-fp4-fp32-seed0",  "s3-fp4-fp32-seed1",  "s3-fp4-2_4-seed0",  "s3-fp4-2_4-seed1",
    };
    for (int r = 0; r < 16; r++) {
        assert_string_equal(qat_sweep_run_name(sw, r), want[r]);
        assert_int_equal(qat_sweep_run_seed(sw, r), (uint64_t)(r % 2));
    }
    const char *sets[8];
    int n = qat_sweep_run_sets(sw, 11, sets, 8);
    assert_int_equal(n, 5);
    assert_string_equal(sets[0], "model.preset=s3");
    assert_string_equal(sets[1], "compress.weights.format=int4");
    assert_string_equal(sets[2], "compress.activations.format=\"2:4\"");
    assert_string_equal(sets[3], "seed=1");
    assert_string_equal(sets[4], "name=s3-int4-2_4-seed1");
    qat_config c;
    assert_int_equal(qat_sweep_run_config(sw, 11, &c), QAT_OK);
    assert_string_equal(c.model.preset, "s3");
    assert_string_equal(c.weights.format, "int4");
    assert_string_equal(c.activations.format, "2:4");
    assert_int_equal(c.seed, 1);
    assert_string_equal(c.name, "s3-int4-2_4-seed1");
    assert_int_equal(sw->threads_explicit, 0);
    check_worker_view(sw);
    qat_sweep_free(sw);
}

/* "key1,key2: [values]" gives both keys the same value in a run (W=A sweeps). */
static void test_linked_keys(void **state) {
    (void)state;
    qat_sweep *sw = load_ok("linked.yaml",
                            "base:\n"
                            "  model: {preset: s1}\n"
                            "grid:\n"
                            "  compress.weights.format,compress.activations.format: [int2, int4]\n"
                            "  compress.weights.estimator,compress.activations.estimator: [ste, trust]\n");
    assert_int_equal(qat_sweep_run_count(sw), 4);
    assert_string_equal(qat_sweep_run_name(sw, 1), "int2-trust");
    qat_config c;
    assert_int_equal(qat_sweep_run_config(sw, 2, &c), QAT_OK);
    assert_string_equal(c.weights.format, "int4");
    assert_string_equal(c.activations.format, "int4");
    assert_string_equal(c.weights.estimator, "ste");
    assert_string_equal(c.activations.estimator, "ste");
    check_worker_view(sw);
    qat_sweep_free(sw);
    expect_error("linked_bad.yaml", "grid:\n  compress.weights.format,compress.activations.formt: [int4]\n",
                 "linked_bad.yaml:2:3: unknown key 'compress.activations.formt' in grid "
                 "(did you mean 'compress.activations.format'?)");
    expect_error("linked_bad2.yaml", "grid:\n  train.warmup,train.min_lr_ratio: [0.1, fast]\n",
                 "linked_bad2.yaml:2:42: train.warmup: expected a number, got 'fast'");
}

static void test_numbers_seed_lists_and_base_prefix(void **state) {
    (void)state;
    char text[1024];
    snprintf(text, sizeof text,
             "%s  name: tiny\n  threads: 1\n"
             "grid:\n  model.dim: [16, 32]\n  train.lr: [1e-3]\n  compress.weights.hadamard: [0]\n"
             "repeat: [7, 3]\nout: elsewhere/x\n", TINY_BASE);
    qat_sweep *sw = load_ok("numbers.yml", text);
    assert_int_equal(qat_sweep_run_count(sw), 4);
    assert_string_equal(qat_sweep_run_name(sw, 0), "tiny-dim16-lr1e-3-hadamard0-seed7");
    assert_string_equal(qat_sweep_run_name(sw, 1), "tiny-dim16-lr1e-3-hadamard0-seed3");
    assert_string_equal(qat_sweep_run_name(sw, 3), "tiny-dim32-lr1e-3-hadamard0-seed3");
    assert_int_equal(qat_sweep_run_seed(sw, 2), 7);
    assert_string_equal(sw->out, "elsewhere/x");
    assert_int_equal(sw->threads_explicit, 1);
    qat_config c;
    assert_int_equal(qat_sweep_run_config(sw, 3, &c), QAT_OK);
    assert_int_equal(c.model.dim, 32);
    assert_int_equal(c.seed, 3);
    assert_true(c.train.lr == 1e-3);
    check_worker_view(sw);
    qat_sweep_free(sw);

    /* No grid, no repeat: one run under the base's own name. */
    sw = load_ok("single.yaml", "base: {name: solo, model: {preset: s1}}\n");
    assert_int_equal(qat_sweep_run_count(sw), 1);
    assert_string_equal(qat_sweep_run_name(sw, 0), "solo");
    qat_sweep_free(sw);

    /* repeat: n means seeds 0..n-1; grid `seed` without repeat is a plain axis. */
    sw = load_ok("rep.yaml", "base: {model: {preset: s1}}\nrepeat: 3\n");
    assert_int_equal(qat_sweep_run_count(sw), 3);
    assert_string_equal(qat_sweep_run_name(sw, 2), "seed2");
    qat_sweep_free(sw);
    sw = load_ok("seedgrid.yaml", "base: {model: {preset: s1}}\ngrid: {seed: [5, 6]}\n");
    assert_string_equal(qat_sweep_run_name(sw, 1), "seed6");
    qat_sweep_free(sw);
}

/* A seed in a repeat list follows the one rule of seeds (core/num.h, qat_parse_u64),
 * as `seed:` and every --seed do: 1e6 names 1000000 exactly, and one seed in two
 * spellings is one seed given twice; a sign or hex is still refused at its position.
 * The count form reads its number the same way, within [1, 100000]. */
static void test_repeat_seed_rule(void **state) {
    (void)state;
    qat_sweep *sw = load_ok("rep1e6.yaml", "base: {model: {preset: s1}}\nrepeat: [0, 1e6]\n");
    assert_int_equal(qat_sweep_run_count(sw), 2);
    assert_true(qat_sweep_run_seed(sw, 1) == 1000000);
    assert_string_equal(qat_sweep_run_name(sw, 1), "seed1000000");
    qat_config c;
    assert_int_equal(qat_sweep_run_config(sw, 1, &c), QAT_OK);
    assert_true(c.seed == 1000000);
    qat_sweep_free(sw);
    sw = load_ok("rep1e1.yaml", "base: {model: {preset: s1}}\nrepeat: 1e1\n");
    assert_int_equal(qat_sweep_run_count(sw), 10);
    assert_true(qat_sweep_run_seed(sw, 9) == 9);
    qat_sweep_free(sw);
    expect_error("repneg.yaml", "base: {model: {preset: s1}}\nrepeat: [-1]\n",
                 "repneg.yaml:2:10: repeat: expected a seed, " QAT_U64_RULE ", got -1");
    expect_error("rephex.yaml", "base: {model: {preset: s1}}\nrepeat: [0, 0x10]\n",
                 "rephex.yaml:2:13: repeat: expected a seed, " QAT_U64_RULE ", got 0x10");
    expect_error("reptwice.yaml", "base: {model: {preset: s1}}\nrepeat: [1000000, 1e6]\n",
                 "reptwice.yaml:2:19: repeat: seed 1000000 given twice");
    expect_error("repbig.yaml", "base: {model: {preset: s1}}\nrepeat: 1e6\n",
                 "repbig.yaml:2:9: repeat: expected a number of seeds in [1, 100000] or a list of seeds, got '1e6'");
}

/* Free-form string keys (paths) carry the odd values: a format that does not parse is an
 * error at its position (test_errors), so it cannot stand in for an arbitrary string. */
static void test_safe_unique_names(void **state) {
    (void)state;
    qat_sweep *sw = load_ok("safe.yaml",
                            "base: {model: {preset: s1}}\n"
                            "grid:\n"
                            "  data.shards: [\"2:4\", \"2/4\", sp50+int4, noise(int4), \"a,b\", .hidden]\n"
                            "  compress.weights.estimator: [\"\", ste]\n");
    const char *want[12] = {"2_4-estimator_empty", "2_4-ste", "2_4_v2-estimator_empty", "2_4_v2-ste",
                            "sp50_int4-estimator_empty", "sp50_int4-ste", "noise_int4-estimator_empty", "noise_int4-ste",
                            "a_b-estimator_empty", "a_b-ste", "_hidden-estimator_empty", "_hidden-ste"};
    assert_int_equal(qat_sweep_run_count(sw), 12);
    for (int r = 0; r < 12; r++) assert_string_equal(qat_sweep_run_name(sw, r), want[r]);
    qat_sweep_free(sw);

    /* Values whose joined names collide ("a-b"+"c" vs "a"+"b-c") still get distinct names. */
    sw = load_ok("collide.yaml", "base: {model: {preset: s1}}\n"
                                 "grid:\n  data.shards: [a-b, a]\n  data.val_shards: [c, b-c]\n");
    assert_string_equal(qat_sweep_run_name(sw, 1), "a-b-b-c");
    assert_string_equal(qat_sweep_run_name(sw, 2), "a-c");
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < i; j++) assert_string_not_equal(qat_sweep_run_name(sw, i), qat_sweep_run_name(sw, j));
    qat_sweep_free(sw);
    sw = load_ok("collide2.yaml", "base: {model: {preset: s1}}\n"
                                  "grid:\n  data.shards: [a-b, a]\n  data.val_shards: [c, b-c]\n"
                                  "  compress.weights.scale: [rms]\n");
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < i; j++) assert_string_not_equal(qat_sweep_run_name(sw, i), qat_sweep_run_name(sw, j));
    qat_sweep_free(sw);

    /* Over-long names are cut and keep a hash of the whole, so they stay distinct;
     * values that differ only past the label length are numbered. */
    char text[2048], a[64], b[64];
    memset(a, 'x', 60), a[60] = 0;
    memset(b, 'x', 60), b[60] = 0, b[59] = 'y';
    snprintf(text, sizeof text, "base: {model: {preset: s1}}\ngrid: {data.val_shards: [%s, %s], "
             "train.init: [%s], data.shards: [%s]}\n", a, b, a, b);
    sw = load_ok("long.yaml", text);
    assert_int_equal(strlen(qat_sweep_run_name(sw, 0)), QAT_NAME_MAX - 1 - 24);
    assert_string_not_equal(qat_sweep_run_name(sw, 0), qat_sweep_run_name(sw, 1));
    assert_string_equal(sw->axes[0].label[1] + 47, "_v2");
    qat_sweep_free(sw);
}

static void test_base_from_file(void **state) {
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/sub'", tmpdir);
    assert_int_equal(system(cmd), 0);
    write_file("sub/base.yaml", "model: {preset: s1}\ntrain: {lr: 2e-3}\n");
    /* relative to the sweep file, not to the current directory */
    qat_sweep *sw = load_ok("sub/from_file.yaml", "base: base.yaml\ngrid: {train.lr: [1e-3, 2e-3]}\n");
    assert_int_equal(qat_sweep_run_count(sw), 2);
    assert_true(sw->base.train.lr == 2e-3);
    assert_string_equal(sw->out, "runs/from_file");
    qat_config c;
    assert_int_equal(qat_sweep_run_config(sw, 0, &c), QAT_OK);
    assert_true(c.train.lr == 1e-3);
    assert_string_equal(c.model.preset, "s1");
    qat_sweep_free(sw);

    /* a missing base is named at the base: line; a mistake inside it at its own line */
    sw = NULL;
    assert_int_equal(qat_sweep_load(write_file("sub/missing.yaml", "grid: {train.lr: [1e-3]}\nbase: nothere.yaml\n"), &sw),
                     QAT_EINPUT);
    char want[1024];
    snprintf(want, sizeof want, "%s/sub/missing.yaml:2:7: base: cannot read '%s/sub/nothere.yaml': ", tmpdir, tmpdir);
    assert_memory_equal(qat_errmsg(), want, strlen(want));
    /* a directory reads, but is no config: said at the base: line too */
    char adir[600];
    snprintf(adir, sizeof adir, "%s/sub/adir", tmpdir);
    assert_int_equal(mkdir(adir, 0755), 0);
    char dirwant[1200];
    snprintf(dirwant, sizeof dirwant, "sub/dirbase.yaml:1:7: base: '%s/sub/adir' is a directory; expected a run config "
             "file (a base path is relative to the sweep file)", tmpdir);
    expect_error("sub/dirbase.yaml", "base: adir\n", dirwant);
    write_file("sub/bad.yaml", "model: {preset: s1}\ntrain: {lrr: 2e-3}\n");
    expect_error("sub/bad_base.yaml", "base: bad.yaml\n",
                 "sub/bad.yaml:2:9: unknown key 'train.lrr' (did you mean 'train.lr'?)");
}

static void test_errors(void **state) {
    (void)state;
    /* a second document was ignored in a sweep file (a config refused it) */
    expect_error("two.yaml", "grid:\n  seed: [1]\nout: o\n---\nseed: 2\n",
                 "two.yaml:5:1: expected a single YAML document, found a second one");
    /* a byte that is not UTF-8: its line and column, not 1:1 */
    expect_error("lat1.yaml", "grid:\n  seed: [1]\nout: o\nbase: {name: a\xe9" "b}\n",
                 "lat1.yaml:4:16: YAML syntax error: invalid trailing UTF-8 octet (byte 40; expected UTF-8 text)");
    expect_error("top.yaml", "base: {}\ngird:\n  train.lr: [1e-3]\n",
                 "top.yaml:2:1: unknown key 'gird' in a sweep file (did you mean 'grid'?); expected base, grid, out, repeat");
    expect_error("top2.yaml", "bsae: {}\n",
                 "top2.yaml:1:1: unknown key 'bsae' in a sweep file (did you mean 'base'?); expected base, grid, out, repeat");
    expect_error("gkey.yaml", "base: {model: {preset: s1}}\ngrid:\n  train.lr: [1e-3]\n  train.lrr: [1, 2]\n",
                 "gkey.yaml:4:3: unknown key 'train.lrr' in grid (did you mean 'train.lr'?)");
    expect_error("gkey2.yaml", "base: {model: {preset: s1}}\ngrid:\n  compress:\n    weights: {fromat: [int4]}\n",
                 "gkey2.yaml:4:15: unknown key 'compress.weights.fromat' in grid (did you mean 'compress.weights.format'?)");
    expect_error("gval.yaml", "base: {model: {preset: s1}}\ngrid:\n  train.lr: [1e-3,\n             -1]\n",
                 "gval.yaml:4:14: train.lr: -1 is out of range, expected a number > 0");
    expect_error("gval2.yaml", "base: {model: {preset: s1}}\ngrid:\n  train.schedule: [cosine, cosin]\n",
                 "gval2.yaml:3:28: train.schedule: 'cosin' is not allowed, expected one of cosine, constant, linear "
                 "(did you mean 'cosine'?)");
    expect_error("gscalar.yaml", "base: {model: {preset: s1}}\ngrid:\n  train.lr: 1e-3\n",
                 "gscalar.yaml:3:13: grid.train.lr: expected a list of values, e.g. [a, b], got a scalar "
                 "(a fixed value belongs under base:)");
    expect_error("gempty.yaml", "base: {model: {preset: s1}}\ngrid:\n  train.lr: []\n",
                 "gempty.yaml:3:13: grid.train.lr: expected a non-empty list of values");
    expect_error("gdup.yaml", "base: {model: {preset: s1}}\ngrid:\n  train.lr: [1, 1]\n",
                 "gdup.yaml:3:17: grid.train.lr: value 1 given twice (first at line 3)");
    /* one run in two spellings: a format's modifiers in two orders, a number written two ways */
    expect_error("gdup3.yaml", "base: {model: {preset: s1}}\ngrid:\n  compress.weights.format: [int4, nvfp4@sr@46, nvfp4@46@sr]\n",
                 "gdup3.yaml:3:48: grid.compress.weights.format: value nvfp4@46@sr is nvfp4@sr@46 (line 3:35) written "
                 "another way (both mean nvfp4@46@sr): the two would train the same run twice; expected distinct values");
    expect_error("gdup4.yaml", "base: {model: {preset: s1}}\ngrid:\n  train.tokens: [1e5, 2e5, 100000]\n",
                 "gdup4.yaml:3:28: grid.train.tokens: value 100000 is 1e5 (line 3:18) written another way (both mean "
                 "100000): the two would train the same run twice; expected distinct values");
    expect_error("gdup5.yaml", "base: {model: {preset: s1}}\ngrid:\n  compress.weights.per_row: [true, yes]\n",
                 "gdup5.yaml:3:36: grid.compress.weights.per_row: value yes is true (line 3:30) written another way "
                 "(both mean true): the two would train the same run twice; expected distinct values");
    /* one path with and without brackets is one corpus (config.md: data.text) */
    expect_error("gdup6.yaml", "base: {model: {preset: s1}}\ngrid:\n  data.text: [t/corpus.txt, [t/corpus.txt]]\n",
                 "gdup6.yaml:3:29: grid.data.text: value [t/corpus.txt] is t/corpus.txt (line 3:15) written another "
                 "way (both mean [\"t/corpus.txt\"]): the two would train the same run twice; expected distinct values");
    /* one file under two spellings (./, a link) is one corpus: compared by the files
     * named (device and inode), entry by entry, not by spelling (config.md: data.text) */
    {
        char c1[300], c2[300], ln[300], text[2048], want[2048];
        snprintf(c1, sizeof c1, "%s/c1.txt", tmpdir);
        snprintf(c2, sizeof c2, "%s/c2.txt", tmpdir);
        snprintf(ln, sizeof ln, "%s/c2-link.txt", tmpdir);
        fclose(fopen(c1, "w"));
        fclose(fopen(c2, "w"));
        unlink(ln);
        assert_int_equal(symlink(c2, ln), 0);
        int w = (int)strlen(tmpdir);
        snprintf(text, sizeof text, "base: {model: {preset: s1}}\ngrid:\n  data.text: [%s/c1.txt, %s/./c1.txt]\n",
                 tmpdir, tmpdir);
        snprintf(want, sizeof want, "gdup7.yaml:3:%d: grid.data.text: value %s/./c1.txt names the same file as "
                 "%s/c1.txt (line 3:15): the two would train the same run twice; expected distinct values",
                 15 + w + 9, tmpdir, tmpdir);
        expect_error("gdup7.yaml", text, want);
        snprintf(text, sizeof text, "base: {model: {preset: s1}}\ngrid:\n  data.text: [[%s, %s], [%s/./c1.txt, %s]]\n",
                 c1, c2, tmpdir, ln);
        snprintf(want, sizeof want, "gdup8.yaml:3:%d: grid.data.text: value [%s/./c1.txt, %s] names the same files as "
                 "[%s, %s] (line 3:15): the two would train the same run twice; expected distinct values",
                 15 + 2 * w + 20, tmpdir, ln, c1, c2);
        expect_error("gdup8.yaml", text, want);
        /* another order is another stream; a missing file is the plan's to report */
        snprintf(text, sizeof text, "base: {model: {preset: s1}}\ngrid:\n  data.text: [[%s, %s], [%s, %s], "
                 "%s/none.txt, %s/./none.txt]\n", c1, c2, c2, c1, tmpdir, tmpdir);
        qat_sweep *ok = load_ok("gdup9.yaml", text);
        assert_int_equal(qat_sweep_run_count(ok), 4);
        qat_sweep_free(ok);
        /* a shard glob in two spellings matches the same files (no shard is read) */
        snprintf(text, sizeof text, "%s/sh", tmpdir);
        mkdir(text, 0700);
        snprintf(text, sizeof text, "%s/sh/a.bin", tmpdir);
        fclose(fopen(text, "w"));
        snprintf(text, sizeof text, "base: {model: {preset: s1}}\ngrid:\n  data.shards: [\"%s/sh/*.bin\", "
                 "\"%s/sh/../sh/*.bin\"]\n", tmpdir, tmpdir);
        snprintf(want, sizeof want, "gdup10.yaml:3:%d: grid.data.shards: value \"%s/sh/../sh/*.bin\" names the same "
                 "file as \"%s/sh/*.bin\" (line 3:17): the two would train the same run twice; expected distinct "
                 "values", 17 + w + 13, tmpdir, tmpdir);
        expect_error("gdup10.yaml", text, want);
    }
    /* a format that does not parse is an error at its position, not an invalid run */
    {
        qat_sweep *sw = NULL;
        assert_int_equal(qat_sweep_load(write_file("gfmt.yaml", "base: {model: {preset: s1}}\ngrid:\n"
                                                   "  compress.weights.format: [int4, int04]\n"), &sw), QAT_EINPUT);
        char want[1024];
        snprintf(want, sizeof want, "%s/gfmt.yaml:3:35: grid.compress.weights.format: unknown format 'int04'", tmpdir);
        assert_true(!strncmp(qat_errmsg(), want, strlen(want)));
    }
    expect_error("gdup2.yaml", "base: {model: {preset: s1}}\ngrid:\n  train.lr: [1]\n  train: {lr: [2]}\n",
                 "gdup2.yaml:4:11: grid key 'train.lr' given twice (first at line 3)");
    expect_error("gname.yaml", "base: {model: {preset: s1}}\ngrid:\n  name: [a, b]\n",
                 "gname.yaml:3:3: name cannot be a grid key: each run's name is made from its grid values");
    expect_error("gseed.yaml", "base: {model: {preset: s1}}\ngrid:\n  seed: [1, 2]\nrepeat: 2\n",
                 "gseed.yaml:3:3: seed is a grid key and repeat: is given too; use one of them");
    expect_error("tpp.yaml", "base: {model: {preset: s1}, train: {tokens: 1e5}}\ngrid:\n  train.tokens_per_param: [10, 20]\n",
                 "tpp.yaml:3:3: grid.train.tokens_per_param has no effect: the base sets train.tokens, which wins; "
                 "remove train.tokens from the base");
    expect_error("rep.yaml", "base: {model: {preset: s1}}\nrepeat: 0\n",
                 "rep.yaml:2:9: repeat: expected a number of seeds in [1, 100000] or a list of seeds, got '0'");
    expect_error("rep2.yaml", "base: {model: {preset: s1}}\nrepeat: [1, x]\n",
                 "rep2.yaml:2:13: repeat: expected a seed, " QAT_U64_RULE ", got x");
    /* inside an inline base: the sweep file's own lines and columns */
    expect_error("ibase.yaml", "out: x\nbase:\n  model:\n    dimm: 16\n",
                 "ibase.yaml:4:5: unknown key 'model.dimm' (did you mean 'model.dim'?)");
    expect_error("ibase2.yaml", "base: {train: {lr: -1}}\n",
                 "ibase2.yaml:1:20: train.lr: -1 is out of range, expected a number > 0");
    expect_error("syntax.yaml", "base: {model: [\n",
                 "syntax.yaml:2:1: YAML syntax error: did not find expected node content (while parsing a flow node at line 2)");
    /* A key repeated in one mapping, at any depth, is refused rather than merged. */
    expect_error("dtop.yaml", "base: {model: {preset: s1}}\nout: x\nbase: {train: {lr: 1}}\n",
                 "dtop.yaml:3:1: duplicate key 'base' (first given at 1:1)");
    expect_error("dbase.yaml", "base:\n  train: {lr: 1e-3}\n  model: {preset: s1}\n  train: {tokens: 2e6}\n",
                 "dbase.yaml:4:3: duplicate key 'base.train' (first given at 2:3)");
    expect_error("dgrid.yaml", "base: {model: {preset: s1}}\ngrid:\n  train: {lr: [1, 2]}\n  train: {warmup: [0, 1]}\n",
                 "dgrid.yaml:4:3: duplicate key 'grid.train' (first given at 3:3)");
    expect_error("notmap.yaml", "- a\n- b\n", "notmap.yaml:1:1: expected a sweep: a mapping with base, grid, out and repeat");
}

static void test_impossible_combination(void **state) {
    (void)state;
    char text[1024];
    snprintf(text, sizeof text, "%sgrid:\n  model.heads: [2, 3]\n  model.layers: [1, 2]\n", TINY_BASE);
    qat_sweep *sw = load_ok("heads.yaml", text);
    assert_int_equal(qat_sweep_run_count(sw), 4);
    qat_config c;
    assert_int_equal(qat_sweep_run_config(sw, 0, &c), QAT_OK);
    assert_int_equal(qat_sweep_run_config(sw, 1, &c), QAT_OK);
    assert_int_equal(qat_sweep_run_config(sw, 2, &c), QAT_EINPUT);
    char want[1024];
    /* the run's own error: a list that names runs (the sweep's table, the error below) adds the name */
    snprintf(want, sizeof want, "%s/heads.yaml:5:20: model.heads = 3 must divide model.dim = 16", tmpdir);
    assert_string_equal(qat_errmsg(), want);
    check_worker_view(sw);
    qat_sweep_free(sw);

    /* The grid may complete an incomplete base: dim only in the grid. */
    sw = load_ok("complete.yaml", "base:\n  model: {preset: \"\", layers: 1, heads: 2, seq_len: 16}\n"
                                  "  train: {batch_tokens: 64, eval_tokens: 32}\n"
                                  "grid:\n  model.dim: [16, 32]\n");
    assert_int_equal(qat_sweep_run_config(sw, 1, &c), QAT_OK);
    assert_int_equal(c.model.dim, 32);
    qat_sweep_free(sw);

    /* ... but when no run at all is possible, the file is wrong, and the error names
     * every run's mistake, not only the first run's: both values are to be fixed */
    expect_errors("allbad.yaml",
                  "base:\n  model: {preset: \"\", layers: 1, dim: 16, seq_len: 16}\ngrid:\n  model.heads: [3, 5]\n",
                  "no run of the sweep is valid; the errors of its 2 runs:",
                  (const char *[]){"allbad.yaml:4:17: model.heads = 3 must divide model.dim = 16 (run heads3)",
                                   "allbad.yaml:4:20: model.heads = 5 must divide model.dim = 16 (run heads5)", NULL},
                  NULL);
    /* checks made when the model is built are made before the sweep starts too:
     * heads against a preset's width, a Hadamard block against the linears' widths
     * (s1: width 32); with no possible run the file is wrong (exit 2) */
    expect_errors("presetbad.yaml", "grid: {model.heads: [3, 5]}\n", "no run of the sweep is valid; the errors of its 2 runs:",
                  (const char *[]){"presetbad.yaml:1:22: model.heads = 3 does not divide model.dim = 64 (run heads3)",
                                   "presetbad.yaml:1:25: model.heads = 5 does not divide model.dim = 64 (run heads5)",
                                   NULL},
                  NULL);
    /* one mistake stops many runs (repeat seeds, another axis): said once, with its runs */
    expect_errors("seedsbad.yaml", "grid: {model.heads: [3, 5], train.lr: [1e-3, 2e-3]}\nrepeat: 2\n",
                  "no run of the sweep is valid; the errors of its 8 runs:",
                  (const char *[]){"seedsbad.yaml:1:22: model.heads = 3 does not divide model.dim = 64 (runs "
                                   "heads3-lr1e-3-seed0, heads3-lr1e-3-seed1, heads3-lr2e-3-seed0 and 1 more)",
                                   "seedsbad.yaml:1:25: model.heads = 5 does not divide model.dim = 64 (runs "
                                   "heads5-lr1e-3-seed0, heads5-lr1e-3-seed1, heads5-lr2e-3-seed0 and 1 more)", NULL},
                  NULL);
    /* past ten distinct mistakes, the first ten and a count of the runs the others stop */
    expect_errors("manybad.yaml", "grid: {model.heads: [3, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 17]}\n",
                  "no run of the sweep is valid; the errors of its 12 runs:",
                  (const char *[]){"manybad.yaml:1:22: model.heads = 3 does not divide model.dim = 64 (run heads3)",
                                   "manybad.yaml:1:53: model.heads = 14 does not divide model.dim = 64 (run heads14)",
                                   NULL},
                  "\n  and 2 more runs with other errors");
    expect_error("hadbad.yaml", "grid: {compress.weights.format: [mxfp4@h128]}\nbase: {model: {preset: s1}}\n",
                 "hadbad.yaml:1:34: @h128 of compress.weights.format mxfp4@h128: Hadamard block 128 does not divide "
                 "the input dim 32, expected a power of two dividing it (or -1 for auto) (run mxfp4_h128)");
    /* ... and one such run among valid ones is that run's failure, named by its grid value */
    sw = load_ok("hadhalf.yaml", "grid: {compress.weights.format: [mxfp4@h128, mxfp4@h32]}\n"
                                 "base: {model: {preset: s1}}\n");
    assert_int_equal(qat_sweep_run_config(sw, 0, &c), QAT_EINPUT);
    snprintf(want, sizeof want, "%s/hadhalf.yaml:1:34: @h128 of compress.weights.format mxfp4@h128: Hadamard block "
             "128 does not divide the input dim 32, expected a power of two dividing it (or -1 for auto)", tmpdir);
    assert_string_equal(qat_errmsg(), want);
    assert_int_equal(qat_sweep_run_config(sw, 1, &c), QAT_OK);
    qat_sweep_free(sw);
    /* cross-key errors from the base itself point into the inline base */
    expect_error("basebad.yaml", "base:\n  model: {preset: \"\", layers: 1, dim: 16, heads: 3, seq_len: 16}\n",
                 "basebad.yaml:2:43: model.heads = 3 must divide model.dim = 16 (run run)");
    /* spaces and slashes in values (globs) become '_' in names */
    qat_sweep *g = load_ok("globs.yaml", "base: {model: {preset: s1}}\n"
                                         "grid: {data.shards: [\"my dir/*.bin\", \"x:y/*.bin\", \"/d/*.bin\", \"(*)\", \"[]\"]}\n");
    assert_string_equal(qat_sweep_run_name(g, 0), "my_dir_.bin");
    assert_string_equal(qat_sweep_run_name(g, 1), "x_y_.bin");
    assert_string_equal(qat_sweep_run_name(g, 2), "d_.bin");
    assert_string_equal(qat_sweep_run_name(g, 3), "shards");
    assert_string_equal(qat_sweep_run_name(g, 4), "shards_v5");
    assert_int_equal(qat_sweep_run_config(g, 1, &c), QAT_OK);
    assert_string_equal(c.data.source, "shards");
    /* the worker reads the re-emitted base, where data.source is written out:
     * the run's overrides name the source the shards imply */
    const char *sets[8];
    assert_int_equal(qat_sweep_run_sets(g, 1, sets, 8), 3);
    assert_string_equal(sets[0], "data.shards=\"x:y/*.bin\"");
    assert_string_equal(sets[1], "data.source=shards");
    char *base = qat_config_to_yaml(&g->base);
    FILE *bf = fopen(write_file("emitted.yaml", base), "r");
    free(base);
    fclose(bf);
    char emitted[600];
    snprintf(emitted, sizeof emitted, "%s/emitted.yaml", tmpdir);
    qat_config c2;
    assert_int_equal(qat_config_load(emitted, sets, 3, &c2), QAT_OK);
    qat_config_forget_origin(&c2);
    qat_config_forget_origin(&c);
    assert_memory_equal(&c, &c2, sizeof c);
    qat_sweep_free(g);
}

static void test_shards_cover_once(void **state) {
    (void)state;
    qat_sweep *sw = load_ok("shards.yaml", "base: {model: {preset: s1}}\n"
                                           "grid: {train.lr: [1e-3, 2e-3, 3e-3], compress.weights.format: [int4, fp4]}\n"
                                           "repeat: 2\n");
    int n = qat_sweep_run_count(sw);
    assert_int_equal(n, 12);
    for (int count = 1; count <= 15; count++) {
        int hits[12] = {0};
        for (int index = 0; index < count; index++) {
            char text[32];
            int i, c;
            snprintf(text, sizeof text, "%d/%d", index, count);
            assert_int_equal(qat_sweep_parse_shard(text, &i, &c), QAT_OK);
            assert_int_equal(i, index);
            assert_int_equal(c, count);
            for (int r = 0; r < n; r++) hits[r] += qat_sweep_in_shard(r, i, c);
        }
        for (int r = 0; r < n; r++) assert_int_equal(hits[r], 1);
    }
    const char *bad[] = {"2/2", "-1/3", "1/0", "a/b", "1", "1/2x", "/2", "1/", NULL};
    for (int k = 0; bad[k]; k++) {
        int i, c;
        assert_int_equal(qat_sweep_parse_shard(bad[k], &i, &c), QAT_EINPUT);
        assert_non_null(strstr(qat_errmsg(), "expected I/N with 0 <= I < N"));
    }
    qat_sweep_free(sw);
}

static void test_slurm_script(void **state) {
    (void)state;
    qat_sweep *sw = load_ok("slurm it.yaml", "base: {model: {preset: s1}}\ngrid: {train.lr: [1e-3, 2e-3, 3e-3]}\n"
                                             "out: /tmp/qat sweep's out\n");
    char script[512], cmd[4096];
    snprintf(script, sizeof script, "%s/job.sh", tmpdir);
    assert_int_equal(qat_sweep_write_slurm(sw, script, "/opt/qat dir/qat", "/data/it's/slurm it.yaml", "/work dir", 0, 2),
                     QAT_OK);
    snprintf(cmd, sizeof cmd, "bash -n '%s'", script);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "grep -qx '#SBATCH --array=0-2' '%s'", script);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "grep -q 'sweep .*--shard \"${SLURM_ARRAY_TASK_ID}/3\" --jobs 2$' '%s'", script);
    assert_int_equal(system(cmd), 0);
    /* The command line it builds, run with a stand-in for qat, gets the paths intact. */
    char fake[512];
    snprintf(fake, sizeof fake, "%s/fake dir", tmpdir);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", fake);
    assert_int_equal(system(cmd), 0);
    char q[1200];
    snprintf(q, sizeof q, "%s", write_file("fake dir/qat", "#!/bin/sh\nprintf '%s|' \"$@\"\n"));
    snprintf(cmd, sizeof cmd, "chmod +x '%s'", q);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(qat_sweep_write_slurm(sw, script, q, "/data/it's/slurm it.yaml", tmpdir, 2, 0), QAT_OK);
    snprintf(cmd, sizeof cmd, "grep -qx '#SBATCH --array=0-1' '%s' && test \"$(SLURM_ARRAY_TASK_ID=1 bash '%s')\" = "
             "\"sweep|/data/it's/slurm it.yaml|--shard|1/2|\"", script, script);
    assert_int_equal(system(cmd), 0);
    qat_sweep_free(sw);
}

/* The CPUs a task asks for: `ask` for sweep `text` with --jobs `jobs` (0 = not given). */
static void expect_cpus(const char *text, int jobs, int ask) {
    qat_sweep *sw = load_ok("cpus.yaml", text);
    char script[512], cmd[1200];
    snprintf(script, sizeof script, "%s/cpus.sh", tmpdir);
    assert_int_equal(qat_sweep_write_slurm(sw, script, "/q", "/s.yaml", "/w", 0, jobs), QAT_OK);
    snprintf(cmd, sizeof cmd, "grep -qx '#SBATCH --cpus-per-task=%d' '%s' && bash -n '%s'", ask, script, script);
    if (system(cmd)) fail_msg("expected --cpus-per-task=%d for jobs %d and:\n%s", ask, jobs, text);
    qat_sweep_free(sw);
}

static void test_slurm_cpus(void **state) {
    (void)state;
    /* threads left to the machine: one CPU per run trained at once */
    expect_cpus("base: {model: {preset: s1}}\ngrid: {train.lr: [1e-3, 2e-3]}\nout: o\n", 0, 1);
    expect_cpus("base: {model: {preset: s1}}\ngrid: {train.lr: [1e-3, 2e-3]}\nout: o\n", 3, 3);
    /* threads fixed by the base, or by the grid (the largest value wins) */
    expect_cpus("base: {model: {preset: s1}, threads: 3}\ngrid: {train.lr: [1e-3, 2e-3]}\nout: o\n", 0, 3);
    expect_cpus("base: {model: {preset: s1}, threads: 8}\ngrid: {threads: [1, 4, 2]}\nout: o\n", 2, 8);
    /* threads 0 in the grid is "every core", which Slurm cannot be asked for */
    qat_sweep *sw = load_ok("zero.yaml", "base: {model: {preset: s1}}\ngrid:\n  threads: [2, 0]\nout: o\n");
    char script[512];
    snprintf(script, sizeof script, "%s/zero.sh", tmpdir);
    assert_int_equal(qat_sweep_write_slurm(sw, script, "/q", "/s.yaml", "/w", 0, 0), QAT_EINPUT);
    assert_non_null(strstr(qat_errmsg(), "zero.yaml:3:16: threads 0 (every core) cannot be asked of Slurm"));
    qat_clear_error();
    assert_int_equal(access(script, F_OK), -1); /* nothing half-written */
    qat_sweep_free(sw);
}

/* qat_sweep_auto_jobs with its outputs checked: jobs at once, threads each, and why. */
static void expect_pick(int cores, int64_t n, int runs, int sweep_threads, int jobs, int threads, qat_sweep_pick why) {
    int j = -1, t = -1;
    qat_sweep_pick p = qat_sweep_auto_jobs(cores, n, runs, sweep_threads, &j, &t);
    if (j != jobs || t != threads || p != why)
        fail_msg("cores %d, N %lld, runs %d, sweep threads %d: got %d × %d (why %d), want %d × %d (why %d)", cores,
                 (long long)n, runs, sweep_threads, j, t, (int)p, jobs, threads, (int)why);
}

static void test_auto_jobs(void **state) {
    (void)state;
    const int64_t small = 238640, big = 4820224, edge = QAT_SWEEP_SIDE_BY_SIDE_MAX_N; /* s4, d256/L6, the threshold */
    for (int cores = 2; cores <= 8; cores += 6) {
        /* small models: one one-thread run per core, never more runs than there are */
        expect_pick(cores, small, 24, 0, cores, 1, QAT_SWEEP_PICK_SIDE_BY_SIDE);
        expect_pick(cores, edge, 24, 0, cores, 1, QAT_SWEEP_PICK_SIDE_BY_SIDE);
        expect_pick(cores, small, 2, 0, 2, 1, QAT_SWEEP_PICK_SIDE_BY_SIDE);
        /* a model above the threshold: one run on every core */
        expect_pick(cores, edge + 1, 24, 0, 1, cores, QAT_SWEEP_PICK_ALL_CORES);
        expect_pick(cores, big, 24, 0, 1, cores, QAT_SWEEP_PICK_ALL_CORES);
        /* a single run (or none) to train gets every core, however small */
        expect_pick(cores, small, 1, 0, 1, cores, QAT_SWEEP_PICK_ONE_RUN);
        expect_pick(cores, 0, 0, 0, 1, cores, QAT_SWEEP_PICK_ONE_RUN);
        /* the sweep's own threads are kept: as many at once as fit */
        expect_pick(cores, small, 24, 1, cores, 0, QAT_SWEEP_PICK_SWEEP_THREADS);
        expect_pick(cores, big, 24, 2, cores / 2, 0, QAT_SWEEP_PICK_SWEEP_THREADS);
        expect_pick(cores, small, 24, cores + 1, 1, 0, QAT_SWEEP_PICK_SWEEP_THREADS);
        expect_pick(cores, small, 1, 1, 1, 0, QAT_SWEEP_PICK_SWEEP_THREADS);
    }
    expect_pick(8, small, 3, 0, 3, 1, QAT_SWEEP_PICK_SIDE_BY_SIDE);
    expect_pick(8, small, 3, 2, 3, 0, QAT_SWEEP_PICK_SWEEP_THREADS);
    /* one core: one run at a time on it, whatever the model */
    expect_pick(1, small, 24, 0, 1, 1, QAT_SWEEP_PICK_ONE_CORE);
    expect_pick(1, big, 24, 0, 1, 1, QAT_SWEEP_PICK_ONE_CORE);
    expect_pick(0, small, 24, 0, 1, 1, QAT_SWEEP_PICK_ONE_CORE); /* an unknown count is one core */
}

static int setup(void **state) {
    (void)state;
    return qat_test_mkdtemp(tmpdir, sizeof tmpdir, "sweep");
}

static int teardown(void **state) {
    (void)state;
    return qat_test_rmtree(tmpdir);
}

/* A sweep file's aliases cost no more than its size: an empty mapping shared
 * 3^23 ways below grid: never finished before the fix; now its first key is the
 * mistake. A deep flow list is refused at the level past the limit. */
static void test_aliases_and_depth(void **state) {
    (void)state;
    char *text = malloc(1 << 16);
    qat_test_alias_levels(text, "base: {model: {preset: s1}}\ngrid:\n  a0: &a0 {}\n", 24,
                          "  a%d: &a%d {b: *a%d, c: *a%d, d: *a%d}\n");
    expect_error("sbomb.yaml", text, "sbomb.yaml:3:3: unknown key 'a0' in grid (did you mean 'train.lr'?)");
    qat_test_nested_lists(text, "grid: {train.lr: ", 20000, "}\n");
    expect_error("sdeep.yaml", text, "sdeep.yaml:1:80: nested deeper than 64 levels, expected a config or sweep "
                                     "(a few levels)");
    expect_error("gmap.yaml", "base: {model: {preset: s1}}\ngrid:\n  train: {lr: {a: [1]}}\n",
                 "gmap.yaml:3:15: grid.train.lr: expected a list of values, e.g. [a, b], got a mapping");
    /* aliases within the limits mean their values */
    qat_sweep *sw = load_ok("salias.yaml", "base: {model: {preset: s1}, train: {lr: &v 0.002}}\n"
                                           "grid: {train.min_lr_ratio: [*v, 0.5]}\nout: o\n");
    assert_int_equal(qat_sweep_run_count(sw), 2);
    qat_config c;
    assert_int_equal(qat_sweep_run_config(sw, 0, &c), QAT_OK);
    assert_true(c.train.min_lr_ratio == 0.002);
    qat_sweep_free(sw);
    free(text);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_names_and_sets),
        cmocka_unit_test(test_linked_keys),
        cmocka_unit_test(test_numbers_seed_lists_and_base_prefix),
        cmocka_unit_test(test_repeat_seed_rule),
        cmocka_unit_test(test_safe_unique_names),
        cmocka_unit_test(test_base_from_file),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_aliases_and_depth),
        cmocka_unit_test(test_impossible_combination),
        cmocka_unit_test(test_shards_cover_once),
        cmocka_unit_test(test_slurm_script),
        cmocka_unit_test(test_slurm_cpus),
        cmocka_unit_test(test_auto_jobs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/*
 * tests/test_sample_e2e.c — `qat sample` as a user runs it, and its sampler.
 *
 *  - The sampler on hand-made logits: greedy ties go to the lowest id, top-k
 *    never leaves the k best, the draw frequencies follow softmax(logits / T).
 *  - Tiny models trained here on text written here (byte tokens, vocab 256):
 *    the same seed prints the same text, other seeds other text; greedy output
 *    is, token by token, the argmax of the cross-entropy `qat eval` computes
 *    (fp32 and W2A2, past the context length, so the sliding window is
 *    checked); a near-zero temperature equals greedy.
 *  - A model trained on "abcabc..." greedily continues the pattern past its
 *    context; the same model after one step does not (the check can fail).
 *  - --help exits 0; a missing file, a non-HDF5 file and bad option values
 *    exit 2 naming the file or the option.
 *  - A checkpoint with one NaN weight is refused (exit 1 naming the tensor) by
 *    sample, eval and grads, which printed NUL bytes and "loss nan" with exit 0.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <hdf5.h>

#include "testutil.h"

#include "autograd/gemm.h"
#include "autograd/tape.h"
#include "core/config.h"
#include "core/rng.h"
#include "model/llama.h"
#include "train/runio.h"
#include "train/sample.h"

static char g_tmp[256];
static char g_out[1 << 16], g_err[8192];

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void slurp(const char *path, char *buf, size_t cap) {
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    buf[n] = 0;
    if (f) fclose(f);
}

/* Run `qat ARGS...`; stdout lands in g_out, stderr in g_err; returns the exit code. */
static int run(char *const args[]) {
    pid_t pid = qat_test_spawn(g_tmp, args);
    assert_true(pid > 0); /* QAT_BIN is set by meson */
    int rc = qat_test_wait(pid);
    char path[512];
    snprintf(path, sizeof path, "%s/stdout.txt", g_tmp);
    slurp(path, g_out, sizeof g_out);
    snprintf(path, sizeof path, "%s/stderr.txt", g_tmp);
    slurp(path, g_err, sizeof g_err);
    return rc;
}

/* ---- the sampler on hand-made logits ------------------------------------------ */

static void test_pick_greedy_and_top_k(void **state) {
    (void)state;
    qat_sampler s;
    qat_sampler_init(&s, 6);
    qat_rng r = qat_rng_make(1, 2);
    const float tie[6] = {1, 3, 0, 3, NAN, 2};
    assert_int_equal(qat_sample_pick(&s, tie, 0.0, 0, &r), 1);   /* ties: the lower id */
    assert_int_equal(qat_sample_pick(&s, tie, 0.0, 3, &r), 1);
    assert_int_equal(qat_sample_pick(&s, tie, 2.0, 1, &r), 1);   /* k = 1 is greedy at any T */
    for (int i = 0; i < 2000; i++) {                              /* k = 3: {1, 3, 5} only */
        int32_t t = qat_sample_pick(&s, tie, 5.0, 3, &r);
        assert_true(t == 1 || t == 3 || t == 5);
    }
    qat_rng before = r;
    qat_sample_pick(&s, tie, 0.0, 0, &r);
    assert_memory_equal(&before, &r, sizeof r); /* greedy draws nothing */
    const float nan_all[6] = {NAN, NAN, NAN, NAN, NAN, NAN};
    assert_int_equal(qat_sample_pick(&s, nan_all, 1.0, 0, &r), 0);
    qat_sampler_free(&s);
}

static void test_pick_frequencies_follow_softmax(void **state) {
    (void)state;
    qat_sampler s;
    qat_sampler_init(&s, 4);
    qat_rng r = qat_rng_make(7, 0);
    const float l[4] = {0.0f, (float)log(3.0), -1.0f, 0.5f};
    const double T = 1.5;
    for (int k = 0; k <= 2; k += 2) { /* all 4, then the top 2 (ids 1 and 3) */
        int cnt[4] = {0};
        const int n = 40000;
        for (int i = 0; i < n; i++) cnt[qat_sample_pick(&s, l, T, k, &r)]++;
        double z = 0, p[4];
        for (int j = 0; j < 4; j++) z += p[j] = (k == 0 || j == 1 || j == 3) ? exp(l[j] / T) : 0.0;
        for (int j = 0; j < 4; j++) {
            double f = (double)cnt[j] / n, sd = sqrt(p[j] / z * (1 - p[j] / z) / n);
            if (fabs(f - p[j] / z) > 5 * sd + 1e-12)
                fail_msg("k=%d id %d: frequency %.4f, softmax %.4f", k, j, f, p[j] / z);
        }
    }
    qat_sampler_free(&s);
}

/* ---- models trained for these tests --------------------------------------------- */

static char g_prose[600], g_w2a2[600], g_abc[600], g_abc0[600]; /* checkpoints */

/* Train NAME on TEXT for `tokens` tokens with formats `fmt` (NULL = fp32); the
 * checkpoint's path into ckpt. */
static void train(const char *name, const char *text, int tokens, const char *fmt, char *ckpt) {
    char cfg[512], yaml[2048], out[512];
    snprintf(cfg, sizeof cfg, "%s/%s.yaml", g_tmp, name);
    snprintf(out, sizeof out, "%s/runs", g_tmp);
    int n = snprintf(yaml, sizeof yaml,
                     "name: %s\nseed: 3\nthreads: 1\nmodel: {preset: s1, seq_len: 32}\n"
                     "data: {source: text, text: [%s]}\n"
                     "train: {tokens: %d, batch_tokens: 256, lr: 3e-3, eval_every: 1000, eval_tokens: 512}\n",
                     name, text, tokens);
    if (fmt) snprintf(yaml + n, sizeof yaml - (size_t)n, "compress:\n  weights: {format: %s}\n  activations: {format: %s}\n",
                      fmt, fmt);
    write_file(cfg, yaml);
    if (run((char *[]){"train", cfg, "--out", out, "--quiet", NULL})) fail_msg("training %s: %s", name, g_err);
    snprintf(ckpt, 600, "%s/%s/ckpt.h5", out, name);
}

static int setup_models(void **state) {
    (void)state;
    if (qat_test_mkdtemp(g_tmp, sizeof g_tmp, "sample_e2e")) return -1;
    char prose[512], abc[512];
    snprintf(prose, sizeof prose, "%s/prose.txt", g_tmp);
    snprintf(abc, sizeof abc, "%s/abc.txt", g_tmp);
    static const char *const words[] = {"the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog",
                                        "and", "runs", "far", "away", "from", "home"};
    FILE *f = fopen(prose, "w");
    if (!f) return -1;
    uint64_t h = 11;
    for (int i = 0; i < 3000; i++) { /* word salad: a distribution worth sampling from */
        h = qat_hash64(h);
        fprintf(f, "%s%s", words[h % 15], h % 9 == 0 ? ".\n" : " ");
    }
    fclose(f);
    f = fopen(abc, "w");
    if (!f) return -1;
    for (int i = 0; i < 3000; i++) fputs("abc", f);
    fclose(f);
    train("prose", prose, 51200, NULL, g_prose);
    train("w2a2", prose, 51200, "int2", g_w2a2);
    train("abc", abc, 25600, NULL, g_abc);
    train("abc0", abc, 256, NULL, g_abc0); /* one step: has not learned the pattern */
    return 0;
}

static int teardown_models(void **state) {
    (void)state;
    return qat_test_rmtree(g_tmp);
}

/* "1 2 3\n" -> ids; returns the count. */
static int parse_ids(const char *s, int32_t *ids, int cap) {
    int n = 0;
    char *end;
    for (long v = strtol(s, &end, 10); end != s && n < cap; v = strtol(s, &end, 10)) {
        ids[n++] = (int32_t)v;
        s = end;
    }
    return n;
}

/* ---- determinism -------------------------------------------------------------- */

static void test_same_seed_same_text_other_seeds_differ(void **state) {
    (void)state;
    char a[sizeof g_out];
    char *args[] = {"sample", "--checkpoint", g_prose, "--prompt", "the fox ", "--tokens", "120", "--seed", "5", NULL};
    assert_int_equal(run(args), 0);
    memcpy(a, g_out, sizeof a);
    assert_int_equal(strncmp(a, "the fox ", 8), 0); /* the prompt, then the continuation */
    assert_true(strlen(a) >= 8 + 120);
    assert_non_null(strstr(g_err, "weights fp32"));
    assert_int_equal(run(args), 0);
    assert_string_equal(a, g_out);
    /* --seed reads as the config's seed does (core/num.h): 5e0 is 5 */
    args[8] = "5e0";
    assert_int_equal(run(args), 0);
    assert_string_equal(a, g_out);
    int differ = 0;
    for (int s = 6; s < 9; s++) { /* temperature 0.8, top-k 40 on word salad: each seed its own text */
        char seed[8];
        snprintf(seed, sizeof seed, "%d", s);
        args[8] = seed;
        assert_int_equal(run(args), 0);
        differ += strcmp(a, g_out) != 0;
    }
    assert_int_equal(differ, 3);
}

/* ---- greedy = argmax of qat eval's cross-entropy ------------------------------- */

/* Greedy ids from `qat sample` are, at every step, the target that minimises the
 * model's mean cross-entropy (qat_model_forward, what `qat eval` averages) of the
 * window of the last seq_len tokens, scored with different right padding than
 * the sampler's. Varying the target at the window's last position changes only
 * that position's term, so its argmin is the argmax of p(next | window). */
static void check_greedy_is_eval_argmax(const char *ckpt, const char *fmt) {
    const char *prompt = "the lazy dog runs";
    const int gen = 40; /* 17 + 40 > 32: the window slides */
    char ntok[16];
    snprintf(ntok, sizeof ntok, "%d", gen);
    assert_int_equal(run((char *[]){"sample", "--checkpoint", (char *)ckpt, "--prompt", (char *)prompt, "--tokens",
                                    ntok, "--temperature", "0", "--ids", NULL}), 0);
    assert_non_null(strstr(g_err, fmt));
    int32_t ids[256];
    int n = parse_ids(g_out, ids, 256), np = (int)strlen(prompt);
    assert_int_equal(n, np + gen);
    for (int i = 0; i < np; i++) assert_int_equal(ids[i], (unsigned char)prompt[i]);

    qat_config cfg;
    qat_model *m = NULL;
    qat_ckpt_use use = {.command = "sample", .checkpoint = 1};
    assert_int_equal(qat_load_checkpoint_model(ckpt, &use, NULL, 0, 1, &cfg, &m), 0);
    const int T = m->s.seq_len, V = m->s.vocab;
    int32_t *in = malloc(sizeof(int32_t) * (size_t)T), *tg = malloc(sizeof(int32_t) * (size_t)T);
    qat_tape tp;
    qat_tape_init(&tp, 0);
    tp.grad_enabled = 0;
    double worst_gap = 0;
    for (int i = np; i < n; i++) {
        int w = i < T ? i : T;
        for (int t = 0; t < T; t++) in[t] = t < w ? ids[i - w + t] : 'z';
        for (int t = 0; t < T; t++) tg[t] = t + 1 < w ? in[t + 1] : 'q';
        double best = INFINITY, mine = NAN;
        for (int c = 0; c < V; c++) {
            tg[w - 1] = c;
            qat_tape_reset(&tp);
            double loss = qat_model_forward(m, &tp, in, tg, 1, 0)->data[0];
            if (loss < best) best = loss;
            if (c == ids[i]) mine = loss;
        }
        /* loss is a float mean over T terms: allow its rounding, nothing more */
        double gap = (mine - best) * T;
        if (gap > worst_gap) worst_gap = gap;
        if (!(gap <= 1e-4)) fail_msg("%s: token %d (%d) is %.3g nats below the eval argmax", ckpt, i - np, ids[i], gap);
    }
    printf("  %s: %d greedy tokens, each the eval argmax (largest gap %.2g nats)\n", fmt, gen, worst_gap);
    qat_tape_free(&tp);
    free(in);
    free(tg);
    qat_model_free(m);
}

static void test_greedy_is_eval_argmax_fp32(void **state) {
    (void)state;
    check_greedy_is_eval_argmax(g_prose, "weights fp32, activations fp32");
}

static void test_greedy_is_eval_argmax_w2a2(void **state) {
    (void)state;
    check_greedy_is_eval_argmax(g_w2a2, "weights int2, activations int2");
}

static void test_tiny_temperature_is_greedy(void **state) {
    (void)state;
    char greedy[sizeof g_out];
    assert_int_equal(run((char *[]){"sample", "--checkpoint", g_w2a2, "--prompt", "a dog", "--tokens", "60",
                                    "--temperature", "0", "--seed", "1", NULL}), 0);
    memcpy(greedy, g_out, sizeof greedy);
    assert_int_equal(run((char *[]){"sample", "--checkpoint", g_w2a2, "--prompt", "a dog", "--tokens", "60",
                                    "--temperature", "1e-6", "--top-k", "0", "--seed", "2", NULL}), 0);
    assert_string_equal(greedy, g_out);
    /* and the default temperature does not collapse to greedy on word salad */
    assert_int_equal(run((char *[]){"sample", "--checkpoint", g_w2a2, "--prompt", "a dog", "--tokens", "60", NULL}), 0);
    assert_string_not_equal(greedy, g_out);
}

/* ---- the forward is right: a learned pattern continues ------------------------- */

static void test_abc_model_continues_the_pattern(void **state) {
    (void)state;
    char want[128];
    for (int i = 0; i < 2 + 90; i++) want[i] = "abc"[i % 3];
    memcpy(want + 92, "\n", 2);
    char *args[] = {"sample", "--checkpoint", g_abc, "--prompt", "ab", "--tokens", "90", "--temperature", "0", NULL};
    assert_int_equal(run(args), 0);
    assert_string_equal(g_out, want); /* 92 > 32: continues after the window slides */
    args[2] = g_abc0;
    assert_int_equal(run(args), 0);
    assert_string_not_equal(g_out, want); /* an untrained model does not: the check can fail */
}

/* ---- a damaged checkpoint ----------------------------------------------------- */

/* Copy src to dst and set element `at` of dataset `name` to v. */
static void poison(const char *src, const char *dst, const char *name, hsize_t at, float v) {
    char buf[1 << 16];
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    assert_non_null(in);
    assert_non_null(out);
    for (size_t n; (n = fread(buf, 1, sizeof buf, in)) > 0;) assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    fclose(out);
    hid_t f = H5Fopen(dst, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    assert_true(d >= 0);
    hid_t fs = H5Dget_space(d);
    int nd = H5Sget_simple_extent_ndims(fs);
    hsize_t start[2] = {0, at}, count[2] = {1, 1}, one = 1;
    if (nd == 1) start[0] = at;
    assert_true(H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) >= 0);
    hid_t ms = H5Screate_simple(1, &one, NULL);
    assert_true(H5Dwrite(d, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, &v) >= 0);
    H5Sclose(ms);
    H5Sclose(fs);
    H5Dclose(d);
    H5Fclose(f);
}

static void test_non_finite_checkpoint_refused(void **state) {
    (void)state;
    char bad[512], inf[512], grads[512];
    snprintf(bad, sizeof bad, "%s/nan_ckpt.h5", g_tmp);
    snprintf(inf, sizeof inf, "%s/inf_ckpt.h5", g_tmp);
    snprintf(grads, sizeof grads, "%s/nan_grads.h5", g_tmp);
    const char *t = "params/model.layers.1.mlp.down_proj.weight";
    poison(g_abc, bad, t, 5, NAN);
    char want[700];
    snprintf(want, sizeof want, "checkpoint %s has non-finite values in %s", bad, t);
    assert_int_equal(run((char *[]){"sample", "--checkpoint", bad, "--tokens", "20", NULL}), 1);
    if (!strstr(g_err, want)) fail_msg("sample: stderr does not say '%s': %s", want, g_err);
    assert_int_equal(g_out[0], 0); /* nothing printed: no NUL bytes passed off as text */
    assert_int_equal(run((char *[]){"eval", "--checkpoint", bad, NULL}), 1);
    if (!strstr(g_err, want)) fail_msg("eval: stderr does not say '%s': %s", want, g_err);
    assert_null(strstr(g_out, "nan"));
    assert_int_equal(run((char *[]){"grads", "--checkpoint", bad, "--out", grads, NULL}), 1);
    if (!strstr(g_err, want)) fail_msg("grads: stderr does not say '%s': %s", want, g_err);
    /* An infinity in the final norm is caught too, and the clean file still works. */
    poison(g_abc, inf, "params/model.norm.weight", 0, INFINITY);
    assert_int_equal(run((char *[]){"eval", "--checkpoint", inf, NULL}), 1);
    assert_non_null(strstr(g_err, "non-finite values in params/model.norm.weight (first at element 0: inf)"));
    assert_int_equal(run((char *[]){"eval", "--checkpoint", g_abc, NULL}), 0);
}

/* ---- bad input ---------------------------------------------------------------- */

static void expect_2(char *const args[], const char *needle) {
    assert_int_equal(run(args), 2);
    if (!strstr(g_err, needle)) fail_msg("stderr does not name '%s': %s", needle, g_err);
}

static void test_help_and_bad_input(void **state) {
    (void)state;
    assert_int_equal(run((char *[]){"sample", "--help", NULL}), 0);
    assert_non_null(strstr(g_out, "usage: qat sample"));
    char missing[512], text[512];
    snprintf(missing, sizeof missing, "%s/no_such_ckpt.h5", g_tmp);
    snprintf(text, sizeof text, "%s/prose.txt", g_tmp);
    expect_2((char *[]){"sample", "--checkpoint", missing, NULL}, missing);
    expect_2((char *[]){"sample", "--checkpoint", text, NULL}, text);
    expect_2((char *[]){"sample", NULL}, "--checkpoint");
    expect_2((char *[]){"sample", "--checkpoint", g_abc, "--temperature", "-0.5", NULL}, "--temperature");
    expect_2((char *[]){"sample", "--checkpoint", g_abc, "--temperature", "hot", NULL}, "--temperature");
    expect_2((char *[]){"sample", "--checkpoint", g_abc, "--tokens", "0", NULL}, "--tokens");
    expect_2((char *[]){"sample", "--checkpoint", g_abc, "--top-k", "-1", NULL}, "--top-k");
    expect_2((char *[]){"sample", "--checkpoint", g_abc, "--seed", "-3", NULL}, "--seed");
    expect_2((char *[]){"sample", "--checkpoint", g_abc, "--seed", "18446744073709551616", NULL},
             "[0, 18446744073709551615]");
    expect_2((char *[]){"sample", "--checkpoint", g_abc, "--prompt-ids", "97,256", NULL}, "256");
    expect_2((char *[]){"sample", "--checkpoint", g_abc, "--prompt-ids", "97,,98", NULL}, "--prompt-ids");
    expect_2((char *[]){"sample", "--checkpoint", g_abc, "--prompt", "a", "--prompt-ids", "97", NULL}, "not both");
    expect_2((char *[]){"sample", "--checkpoint", g_abc, "--tokens", NULL}, "--tokens");
    /* token counts: decimal or scientific in every command, never hex */
    expect_2((char *[]){"sample", "--checkpoint", g_abc, "--tokens", "0x5", NULL}, "--tokens 0x5");
    expect_2((char *[]){"eval", "--checkpoint", g_abc, "--tokens", "0x10", NULL}, "--tokens 0x10");
    assert_int_equal(run((char *[]){"sample", "--checkpoint", g_abc, "--tokens", "1e1", NULL}), 0);
    /* an option where a value belongs is not taken for the value (core/num.h) */
    expect_2((char *[]){"sample", "--checkpoint", g_abc, "--prompt", "--tokens", "5", NULL},
             "--prompt: expected a value, got the option --tokens");
    expect_2((char *[]){"eval", "--checkpoint", "--json", NULL}, "incomplete option '--checkpoint'");
    expect_2((char *[]){"grads", "--checkpoint", g_abc, "--out", "--set", "x=1", NULL}, "incomplete option '--out'");
    expect_2((char *[]){"train", "no_such.yaml", "--out", "--quiet", NULL}, "incomplete option '--out'");
    /* train --out naming a file: the user's mistake, exit 2 (was 1) */
    char abc_cfg[600];
    snprintf(abc_cfg, sizeof abc_cfg, "%s/abc.yaml", g_tmp);
    expect_2((char *[]){"train", abc_cfg, "--out", text, "--quiet", NULL}, "Not a directory");
    /* another of qat's files where a checkpoint belongs: named for what it is */
    char runlog[600];
    snprintf(runlog, sizeof runlog, "%s/runs/abc/run.h5", g_tmp);
    expect_2((char *[]){"eval", "--checkpoint", runlog, NULL}, "is a run log (run.h5), not a checkpoint");
    /* grads' --out naming the text it reads its batch from: refused, the text kept (as a text
     * file, which grads never replaces, before the config that names it as an input is read) */
    static char before[4096], after[4096];
    char set_text[600];
    snprintf(set_text, sizeof set_text, "data.text=%s", text);
    slurp(text, before, sizeof before);
    expect_2((char *[]){"grads", "--checkpoint", g_abc, "--set", "data.source=text", "--set", set_text, "--out", text,
                        NULL},
             "is a text file, not a qat gradients file (qat grads)");
    slurp(text, after, sizeof after);
    assert_string_equal(before, after);
    /* control bytes are escaped, newline and tab kept; no prompt starts after an unprinted newline */
    assert_int_equal(run((char *[]){"sample", "--checkpoint", g_abc, "--prompt", "x\x1b[2J\ty\n", "--tokens", "1",
                                    "--temperature", "0", NULL}), 0);
    assert_int_equal(strncmp(g_out, "x\\x1B[2J\ty\n", 11), 0);
    assert_int_equal(run((char *[]){"sample", "--checkpoint", g_abc, "--tokens", "5", NULL}), 0);
    assert_true(strlen(g_out) >= 6);
    /* an empty --prompt gave that newline's output, byte for byte, as if it had not been
     * given; the model has no start token to begin from nothing, so it is refused */
    expect_2((char *[]){"sample", "--checkpoint", g_abc, "--prompt", "", "--temperature", "0", NULL},
             "qat: sample: --prompt '': expected at least one byte");
    expect_2((char *[]){"sample", "--checkpoint", g_abc, "--prompt-ids", "", NULL}, "--prompt-ids ''");
}

/* A bf16 run's checkpoint on a CPU without native bf16 products (emulated with
 * ONEDNN_MAX_CPU_ISA=AVX2): sample and eval run it in fp32 and say so, instead
 * of refusing with a line number inside the checkpoint's stored YAML. */
static void test_bf16_checkpoint_elsewhere(void **state) {
    (void)state;
    const char *isa;
    if (!qat_gemm_bf16_supported(&isa)) {
        print_message("  no native bf16 products on this CPU (%s): cannot train the bf16 run, skipped\n", isa);
        skip();
    }
    char cfg[512], yaml[1024], out[512], ckpt[600], prose[512];
    snprintf(cfg, sizeof cfg, "%s/bf.yaml", g_tmp);
    snprintf(out, sizeof out, "%s/runs", g_tmp);
    snprintf(prose, sizeof prose, "%s/prose.txt", g_tmp);
    snprintf(yaml, sizeof yaml,
             "name: bf\nseed: 3\nthreads: 1\nmodel: {preset: s1, seq_len: 32}\ndata: {source: text, text: [%s]}\n"
             "train: {tokens: 2560, batch_tokens: 256, lr: 3e-3, eval_every: 1000, eval_tokens: 512, precision: bf16}\n",
             prose);
    write_file(cfg, yaml);
    if (run((char *[]){"train", cfg, "--out", out, "--quiet", NULL})) fail_msg("training bf: %s", g_err);
    snprintf(ckpt, sizeof ckpt, "%s/bf/ckpt.h5", out);
    setenv("ONEDNN_MAX_CPU_ISA", "AVX2", 1);
    int rs = run((char *[]){"sample", "--checkpoint", ckpt, "--tokens", "5", NULL});
    int has_note = strstr(g_err, "running it in fp32") != NULL;
    int re = run((char *[]){"eval", "--checkpoint", ckpt, NULL});
    int rb = run((char *[]){"eval", "--checkpoint", ckpt, "--set", "train.precision=bf16", NULL}); /* asked for: refused */
    unsetenv("ONEDNN_MAX_CPU_ISA");
    assert_int_equal(rs, 0);
    assert_true(has_note);
    assert_int_equal(re, 0);
    assert_int_equal(rb, 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pick_greedy_and_top_k),
        cmocka_unit_test(test_pick_frequencies_follow_softmax),
        cmocka_unit_test(test_same_seed_same_text_other_seeds_differ),
        cmocka_unit_test(test_greedy_is_eval_argmax_fp32),
        cmocka_unit_test(test_greedy_is_eval_argmax_w2a2),
        cmocka_unit_test(test_tiny_temperature_is_greedy),
        cmocka_unit_test(test_bf16_checkpoint_elsewhere),
        cmocka_unit_test(test_abc_model_continues_the_pattern),
        cmocka_unit_test(test_help_and_bad_input),
        cmocka_unit_test(test_non_finite_checkpoint_refused),
    };
    return cmocka_run_group_tests(tests, setup_models, teardown_models);
}

/*
 * tests/test_init_e2e.c — `qat train --init CKPT.h5` as a user runs it, through
 * the binary (docs/cli.md#qat-train, docs/files.md run.h5 init_* attributes).
 *
 * One fp32 s1 model is trained briefly on the English corpus (200 steps, a
 * few seconds); then:
 *  - it is the starting point of an int4 run (LSQ weights, int4 activations):
 *    the first logged training loss is near the recorded PTQ loss and far below
 *    the first loss of the same run started from random weights; run.h5 holds
 *    init_from (the absolute path), init_hash (recomputed here from the
 *    checkpoint's /params as docs/files.md says), init_state and the losses;
 *  - a config of another shape (width, layers, heads) is exit 2 naming the
 *    tensor and both shapes (or the heads), and creates no run directory; a
 *    missing, non-HDF5 or non-finite --init file is a one-line error;
 *  - an --init run stopped with --stop-after and resumed (--init given again,
 *    which the checkpoint overrides) is bit-identical to an uninterrupted one:
 *    every /train/loss and /eval/loss row and every checkpoint array;
 *  - the config key train.init (here through --set) starts the same run as
 *    --init; --init overrides it; changing it on --resume to another file is
 *    refused, another path of the same file is not a change;
 *  - an --init run stopped by SIGINT in its PTQ evaluation leaves a run.h5
 *    recording its source, and --resume without --init starts from it;
 *  - an aq1x4g4 ste source fine-tuned with estimator pv carries its codebooks,
 *    scales and codes (PV-Tuning from the AQ solution): the weights' state is
 *    recorded carried, nothing is fitted, and the PTQ loss is the source's final
 *    validation loss (the same codes decoded, the same held-out batches); a new
 *    activation format or backward leaves the weights' state carried; the pv run
 *    stopped and resumed is bit-identical to an uninterrupted one; so do
 *    aq2x4g4's two books;
 *  - a PV source (pv_lr > 0, unrotated and rotated) into fp32 starts from its
 *    codes, not its stale /params: the PTQ loss is the source's last validation
 *    loss; the same PV config carries the state as before; a carried quantizer
 *    that reads the weight tensor starts from the codes too, aq pv into ste (the
 *    PTQ loss is the source's) and pv into pv_lr: 0 (its V step's buffer is the
 *    tensor): in process, the weights are the source's codes bit for bit, the
 *    state the file's, and one forward keeps it;
 *  - in process, the PTQ evaluation leaves every quantizer state array as it
 *    was, and the LSQ step search lowers the weights' squared error;
 *  - SHA-256 itself against the FIPS 180-4 examples.
 *
 * Thresholds (AMD EPYC Zen 5, gcc 12, release build, a loaded 2-core machine;
 * QAT_INIT_TEST_SEED=S and QAT_TEST_THREADS=N reproduce one row, which the test
 * prints). The first training loss is one 1024-token batch, the PTQ loss 8192
 * held-out tokens, so their difference is the spread of a batch's loss. Measured
 * on 200 training batches of the int4 model (seed 7, lr 1e-9, log_every 1):
 * batch loss − PTQ loss mean +0.077, sd 0.112 (n = 200); the same batches
 * through the fp32 source, paired: (int4 − fp32) − (PTQ − source) mean +0.0004,
 * sd 0.0031, range −0.009..+0.010. Source seeds 1..4 (1 and 2 threads gave the
 * same bits at s1):
 *   seed   source  PTQ     first   first−PTQ  fresh first  paired
 *   1      2.2097  2.2176  2.2212  +0.004     5.5692       +0.0023
 *   2      2.2034  2.2106  1.9325  −0.278     5.5794
 *   3      2.1884  2.1975  2.2910  +0.094     5.5901       +0.0010
 *   4      2.2401  2.2458  2.2665  +0.021     5.5623       −0.0031
 * Thresholds and z (false failure under a normal model with the measured sd):
 *   |first − PTQ| < 0.5:           z = (0.5 − 0.077)/0.112 = 3.8 above and
 *                                  (0.5 + 0.077)/0.112 = 5.2 below, p ≈ 8e-5
 *   |paired| < 0.03:               z = 0.03/0.0031 = 9.7, p < 1e-20
 *   fresh first − first > 2.0:     fresh 5.575 (sd 0.012, n = 4), first 2.295
 *                                  (sd 0.112): mean 3.28, sd 0.113, z = 11
 * Without the init (a random start) the first loss is the fresh one and all three fail.
 * aq1x8g8 weights (fp32 activations) from the same sources, seeds 1..6 (1 and 2
 * threads the same bits): paired +0.0030, −0.0094, +0.0003, +0.0017, −0.0003,
 * −0.0006: mean −0.0009, sd 0.0044 (n = 6), so |paired| < 0.03 has z = 6.8;
 * first − PTQ mean +0.019, sd 0.157 (the batch's spread again), checked against
 * the same NEAR_MAX. The codebooks' largest change over the 20 steps was
 * 9.6e-3..1.0e-2 of values up to ~3 (Adam moves every parameter with a gradient
 * by about lr per step); it is checked to exceed 1e-3 of the largest value,
 * which no training step at all (the fit itself) fails.
 * Needs the English corpus (Debian dict-gcide); skipped (exit 77) without it.
 */
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "testutil.h"

#include <hdf5.h>

#include "runlog/checkpoint.h"
#include "runlog/runlog.h"

#include "ckpt_compare.h"
#include "h5attr.h"
#include "autograd/tape.h"
#include "core/config.h"
#include "core/threads.h"
#include "data/dataset.h"
#include "model/llama.h"
#include "compress/hadamard.h"
#include "compress/quantizer.h"
#include "train/init.h"
#include "train/sha256.h"

#define NEAR_MAX 0.5 /* |first --init loss − PTQ loss| below this */
#define FAR_MIN 2.0   /* random start's first loss − the --init run's, above this */
#define PAIRED_MAX 0.03 /* |(first --init − first of the source) − (PTQ − source loss)| below this */
#define AQ_PAIRED_MAX 0.03 /* the same for aq1x8g8 weights (init_aq_starts_at_the_ptq_loss) */

static char g_tmp[256];
static char g_err[8192];
static char g_src[600]; /* the fp32 source checkpoint */
static int g_seed = 1;
static int g_threads = 1;

static void write_file(const char *path, const char *text) { assert_int_equal(qat_test_write_text(path, text), 0); }

static int run(char *const args[]) {
    pid_t pid = qat_test_spawn(g_tmp, args);
    assert_true(pid > 0);
    return qat_test_wait_stderr(pid, g_tmp, g_err, sizeof g_err);
}

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Where run NAME of config g_tmp/NAME.yaml goes when trained with --out
 * g_tmp/OUT: every test names its files so, and spelt once here. */
typedef struct {
    char cfg[400];  /* g_tmp/NAME.yaml */
    char out[400];  /* g_tmp/OUT, the --out */
    char dir[500];  /* OUT/NAME, the run's directory */
    char log[600];  /* its run.h5 */
    char ckpt[600]; /* its ckpt.h5 (the size of g_src) */
} run_paths;

static run_paths paths_of(const char *name, const char *out) {
    run_paths p;
    snprintf(p.cfg, sizeof p.cfg, "%s/%s.yaml", g_tmp, name);
    snprintf(p.out, sizeof p.out, "%s/%s", g_tmp, out);
    snprintf(p.dir, sizeof p.dir, "%s/%s", p.out, name);
    snprintf(p.log, sizeof p.log, "%s/run.h5", p.dir);
    snprintf(p.ckpt, sizeof p.ckpt, "%s/ckpt.h5", p.dir);
    return p;
}

/* A config file in g_tmp: the run `name`, preset s1 on English, `extra` appended. */
static void config(const char *file, const char *name, double tokens, const char *extra) {
    char text[2048];
    snprintf(text, sizeof text,
             "name: %s\nseed: %d\nthreads: %d\nmodel: {preset: s1, seq_len: 64}\ndata: {source: english}\n"
             "train: {tokens: %.0f, batch_tokens: 1024, lr: %s, eval_tokens: 8192, eval_every: 20,\n"
             "        checkpoint_every: 10, log_every: 10}\n%s",
             name, g_seed, g_threads, tokens, strcmp(name, "src") ? "1e-3" : "3e-3", extra);
    write_file(file, text);
}

static const char INT4[] = "compress:\n  weights: {format: int4, estimator: lsq}\n  activations: {format: int4}\n";

static double first_loss(const char *runh5) {
    double *x;
    int64_t n;
    assert_int_equal(qat_runlog_read_series(runh5, "train/loss", &x, &n), 0);
    assert_true(n > 0);
    double v = x[0];
    free(x);
    return v;
}

/* The header of an --init run says its PTQ loss and the W/A formats it was measured through. */
static void expect_ptq_line(const char *text, double ptq, const char *formats) {
    char line[128];
    snprintf(line, sizeof line, "PTQ loss %.4f on held-out through %s", ptq, formats);
    if (!strstr(text, line)) fail_msg("'%s' not in the output:\n%s", line, text);
}

/* The number printed right after `prefix` in text (which must hold it). */
static double number_after(const char *text, const char *prefix) {
    const char *at = strstr(text, prefix);
    if (!at) fail_msg("'%s' not in the output:\n%s", prefix, text);
    return strtod(at + strlen(prefix), NULL);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The documented init_hash, computed from the file alone: SHA-256 over the
 * /params tensors in byte order of their names (sorted here: a group of the
 * 1.10 format lists its links in hash order, not by name), each as name, NUL,
 * shape (int64 LE) and float32 LE data. */
static void hash_of(const char *ckpt, char out[80]) {
    qat_ckpt_file *f;
    assert_int_equal(qat_ckpt_open(ckpt, &f), 0);
    char **names;
    int n;
    assert_int_equal(qat_ckpt_list(f, "params", &names, &n), 0);
    assert_true(n > 0);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    qat_sha256 s;
    qat_sha256_init(&s);
    for (int i = 0; i < n; i++) {
        if (i) assert_true(strcmp(names[i - 1], names[i]) < 0);
        int nd;
        int64_t shape[QAT_CKPT_MAX_DIMS], cnt = 1;
        assert_int_equal(qat_ckpt_array_shape(f, names[i], &nd, shape), 0);
        for (int d = 0; d < nd; d++) cnt *= shape[d];
        float *x = malloc((size_t)cnt * 4);
        assert_int_equal(qat_ckpt_read_array(f, names[i], nd, shape, x), 0);
        const char *nm = names[i] + strlen("params/");
        qat_sha256_update(&s, nm, strlen(nm) + 1);
        qat_sha256_update(&s, shape, sizeof(int64_t) * (size_t)nd);
        qat_sha256_update(&s, x, (size_t)cnt * 4);
        free(x);
    }
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    qat_ckpt_close(f);
    char hex[65];
    qat_sha256_hex(&s, hex);
    snprintf(out, 80, "sha256:%s", hex);
}

static int group_setup(void **state) {
    (void)state;
    if (access("/usr/share/dictd/gcide.dict.dz", R_OK) && !getenv("QAT_ENGLISH_PATH")) {
        fprintf(stderr, "the English corpus (Debian dict-gcide) is not installed: skipped\n");
        exit(77);
    }
    const char *e = getenv("QAT_INIT_TEST_SEED");
    if (e && *e) g_seed = atoi(e);
    e = getenv("QAT_TEST_THREADS");
    if (e && *e) g_threads = atoi(e);
    if (qat_test_mkdtemp(g_tmp, sizeof g_tmp, "init_e2e")) return -1;
    run_paths src = paths_of("src", "runs");
    config(src.cfg, "src", 204800, "");
    if (run((char *[]){"train", src.cfg, "--out", src.out, "--quiet", NULL})) {
        fprintf(stderr, "training the source failed: %s\n", g_err);
        return -1;
    }
    snprintf(g_src, sizeof g_src, "%s", src.ckpt);
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    return qat_test_rmtree(g_tmp);
}

/* ---- the starting point is used ---------------------------------------------- */

static void init_starts_at_the_ptq_loss(void **state) {
    (void)state;
    run_paths ft = paths_of("ft", "runs"), fr = paths_of("fresh", "runs");
    config(ft.cfg, "ft", 20480, INT4);
    config(fr.cfg, "fresh", 20480, INT4);
    assert_int_equal(run((char *[]){"train", ft.cfg, "--out", ft.out, "--init", g_src, NULL}), 0);
    char *stdout_text = NULL, p[600];
    snprintf(p, sizeof p, "cat '%s/stdout.txt'", g_tmp);
    assert_int_equal(qat_test_popen(&stdout_text, 0, "%s", p), 0);
    assert_int_equal(run((char *[]){"train", fr.cfg, "--out", fr.out, "--quiet", NULL}), 0);

    /* The source's own first loss on the same batch (same seed, same batch 0):
     * its formats and state carried, so its PTQ loss is the source loss. */
    run_paths same = paths_of("same", "runs");
    config(same.cfg, "same", 10240, "");
    assert_int_equal(run((char *[]){"train", same.cfg, "--out", same.out, "--init", g_src, "--quiet", NULL}), 0);

    double ptq = h5attr_f64(ft.log, "init_ptq_loss"), src = h5attr_f64(ft.log, "init_source_loss");
    double first = first_loss(ft.log), fresh = first_loss(fr.log), first_src = first_loss(same.log);
    double paired = (first - first_src) - (ptq - src);
    printf("  seed %d, %d thread(s): source %.4f, PTQ %.4f, first --init %.4f (- PTQ %+.4f), first fresh %.4f "
           "(- first --init %+.4f), first source %.4f, paired %+.4f\n", g_seed, g_threads, src, ptq, first, first - ptq,
           fresh, fresh - first, first_src, paired);
    assert_true(isfinite(ptq) && isfinite(src));
    assert_true(fabs(first - ptq) < NEAR_MAX);
    assert_true(fabs(paired) < PAIRED_MAX);
    assert_true(fresh - first > FAR_MIN);
    /* the fresh run has none of the init attributes */
    assert_true(isnan(h5attr_f64(fr.log, "init_ptq_loss")));

    /* path and hash */
    char from[1100], hash[100], want[80], state_s[32], abs[PATH_MAX];
    h5attr_str(ft.log, "init_from", from, sizeof from);
    h5attr_str(ft.log, "init_hash", hash, sizeof hash);
    h5attr_str(ft.log, "init_state", state_s, sizeof state_s);
    assert_non_null(realpath(g_src, abs));
    assert_string_equal(from, abs);
    hash_of(g_src, want);
    assert_string_equal(hash, want);
    assert_string_equal(state_s, "projected"); /* fp32 -> int4: other compress keys */

    /* The printed line says the same numbers. */
    expect_ptq_line(stdout_text, ptq, "int4/int4");
    /* The search finds better steps than LSQ's default at int4 (about 1.8x the
     * MSE-optimal step of a Gaussian row): measured 0.25x the squared error. */
    double ratio = number_after(stdout_text, "LSQ weight steps by per-row MSE search (8 tensors): squared error ");
    assert_true(ratio > 0 && ratio < 0.9);
    free(stdout_text);

    /* Same compress keys: the state comes along and the PTQ loss is the source's. */
    h5attr_str(same.log, "init_state", state_s, sizeof state_s);
    assert_string_equal(state_s, "carried");
    assert_true(h5attr_f64(same.log, "init_ptq_loss") == h5attr_f64(same.log, "init_source_loss"));
    assert_true(h5attr_f64(same.log, "init_ptq_loss") == src);
}

/* In process, as `qat train CFG --init SRC` starts (one thread): CFG read into *c,
 * its model (one sequence per batch, shape into sh) loaded by qat_init_load into
 * it; the model returned. The caller frees all three. */
static qat_model *init_in_process(const char *cfg, const char *src, qat_config **c, qat_model_shape *sh, qat_init *it) {
    *c = malloc(sizeof **c);
    assert_int_equal(qat_config_load(cfg, NULL, 0, *c), 0);
    qat_threads_init(1);
    assert_int_equal(qat_model_shape_from_config(*c, sh), 0);
    qat_model *m;
    assert_int_equal(qat_model_create(*c, sh, 1, &m), 0);
    assert_int_equal(qat_init_load(it, src, *c, m), 0);
    return m;
}

/* ---- learned codebooks (aqMxBgG) from an fp32 source -------------------------- */

/* The first forward of an aq run fits the codebooks by k-means to the loaded
 * weights; --init's PTQ evaluation does the same fit and restores the state, so
 * the first training step runs through exactly the codebooks the PTQ loss was
 * measured with. Paired with the fp32 source's own first loss on the same batch
 * (the "same" run of init_starts_at_the_ptq_loss, rerun here), the batch's
 * spread cancels (thresholds: the comment at the top). Then the codebooks must
 * have moved: the final checkpoint's against the fit recomputed in process. */
static void init_aq_starts_at_the_ptq_loss(void **state) {
    (void)state;
    static const char AQ[] = "compress:\n  weights: {format: aq1x8g8}\n";
    run_paths aq = paths_of("aq", "runs"), same = paths_of("aqsame", "runs");
    config(aq.cfg, "aq", 20480, AQ);
    config(same.cfg, "aqsame", 10240, "");
    assert_int_equal(run((char *[]){"train", aq.cfg, "--out", aq.out, "--init", g_src, NULL}), 0);
    char *stdout_text = NULL, p[600];
    snprintf(p, sizeof p, "cat '%s/stdout.txt'", g_tmp);
    assert_int_equal(qat_test_popen(&stdout_text, 0, "%s", p), 0);
    assert_int_equal(run((char *[]){"train", same.cfg, "--out", same.out, "--init", g_src, "--quiet", NULL}), 0);
    double ptq = h5attr_f64(aq.log, "init_ptq_loss"), src = h5attr_f64(aq.log, "init_source_loss");
    double first = first_loss(aq.log), first_src = first_loss(same.log);
    double paired = (first - first_src) - (ptq - src);
    printf("  seed %d, %d thread(s): source %.4f, PTQ aq1x8g8 %.4f, first --init %.4f (- PTQ %+.4f), first source "
           "%.4f, paired %+.4f\n", g_seed, g_threads, src, ptq, first, first - ptq, first_src, paired);
    assert_true(isfinite(ptq) && isfinite(src));
    assert_true(ptq > src); /* 1 bit per weight costs something */
    assert_true(fabs(first - ptq) < NEAR_MAX);
    assert_true(fabs(paired) < AQ_PAIRED_MAX);
    expect_ptq_line(stdout_text, ptq, "aq1x8g8/fp32");
    /* the fit's squared error relative to the weights': aq1x8g8's Gaussian MSE is 0.326
     * (docs/formats.md), a k-means fit to the very groups it codes does better */
    double fit_ratio = number_after(stdout_text, "init: aq codebooks by k-means (8 tensors): squared error ");
    printf("  k-means fit: squared error %.4f of the weights'\n", fit_ratio);
    assert_true(fit_ratio > 0 && fit_ratio < 0.326);
    free(stdout_text);

    /* the codebooks trained: the checkpoint's against the k-means fit of the source */
    qat_config *c;
    qat_model_shape sh;
    qat_init it;
    qat_model *m = init_in_process(aq.cfg, g_src, &c, &sh, &it);
    qat_tensor *w = &m->blocks[0].wqkv;
    float *y = malloc(sizeof(float) * (size_t)w->numel), *fit, *g;
    qat_quantizer_forward(m->blocks[0].qw[0], w->data, y, 3 * sh.dim, 0);
    int64_t np = qat_quantizer_params(m->blocks[0].qw[0], &fit, &g);
    float *trained = malloc(sizeof(float) * (size_t)np);
    qat_ckpt_file *f;
    assert_int_equal(qat_ckpt_open(aq.ckpt, &f), 0);
    assert_int_equal(qat_ckpt_read_array(f, "compress/layers.0.qkv.weight.aq_params", 1, &np, trained), 0);
    qat_ckpt_close(f);
    double moved = 0, size = 0;
    for (int64_t i = 0; i < np; i++) moved = fmax(moved, fabs(trained[i] - fit[i])), size = fmax(size, fabs(fit[i]));
    printf("  qkv codebooks and scales: largest change %.3e over 20 steps (largest value %.3e)\n", moved, size);
    assert_true(moved > 1e-3 * size);
    free(y), free(trained);
    qat_init_free(&it);
    qat_model_free(m);
    free(c);
}

/* ---- state carried per side: aq ste -> pv (PV-Tuning from the AQ solution) ----- */

/* The source's codes decoded by its own codebooks and scales are the forward of
 * both estimators (ste re-encodes the final weights to the codes the final
 * evaluation left, M = 1: the nearest codeword; pv keeps them), so the PTQ loss
 * of the carried run is the source's last validation loss up to the summation
 * of the same products: checked to 1e-6 relative, deterministically. Before the
 * state was carried per side, k-means refitted the books and the PTQ loss rose
 * (2.9888 against 2.9811 in the report that found it). */
static const char AQ_STE[] = "compress:\n  weights: {format: aq1x4g4, estimator: ste}\n";

static char *stdout_of_last_run(void) {
    char *text = NULL, p[600];
    snprintf(p, sizeof p, "cat '%s/stdout.txt'", g_tmp);
    assert_int_equal(qat_test_popen(&text, 0, "%s", p), 0);
    return text;
}

/* Train `name` from `src` with `compress` and check what it recorded: init_state,
 * the weights' side carried, no k-means fit, and the PTQ loss against `want`. */
static void expect_weights_carried(const char *name, const char *src, const char *compress, const char *state,
                                   const char *act_state, double want) {
    char s[32];
    run_paths r = paths_of(name, "runs");
    config(r.cfg, name, 20480, compress);
    assert_int_equal(run((char *[]){"train", r.cfg, "--out", r.out, "--init", (char *)src, NULL}), 0);
    char *text = stdout_of_last_run();
    double ptq = h5attr_f64(r.log, "init_ptq_loss");
    printf("  %s: init_state %s, PTQ %.9f, source's last validation loss %.9f (%+.2e relative)\n", name, state, ptq,
           want, (ptq - want) / want);
    h5attr_str(r.log, "init_state", s, sizeof s);
    assert_string_equal(s, state);
    h5attr_str(r.log, "init_state_weights", s, sizeof s);
    assert_string_equal(s, "carried");
    h5attr_str(r.log, "init_state_activations", s, sizeof s);
    assert_string_equal(s, act_state);
    if (!strstr(text, "quantizer state carried from the source") && !strstr(text, "weights' quantizer state carried"))
        fail_msg("no carried weights' state in the header:\n%s", text);
    if (strstr(text, "k-means")) fail_msg("the codebooks were fitted again:\n%s", text);
    if (want == want) assert_true(fabs(ptq - want) <= 1e-6 * fabs(want));
    free(text);
}

/* Train the source `name` (in g_tmp/runs) with `compress` from random weights:
 * its checkpoint's path into src (600 bytes), its last validation loss returned. */
static double train_source(const char *name, double tokens, const char *compress, char *src) {
    run_paths r = paths_of(name, "runs");
    snprintf(src, 600, "%s", r.ckpt);
    config(r.cfg, name, tokens, compress);
    assert_int_equal(run((char *[]){"train", r.cfg, "--out", r.out, "--quiet", NULL}), 0);
    qat_runlog_summary sum;
    assert_int_equal(qat_runlog_read_final(r.log, &sum), 0);
    assert_true(sum.has_final && isfinite(sum.final.val_loss));
    return sum.final.val_loss;
}

static void init_carries_aq_codebooks_into_pv(void **state) {
    (void)state;
    char src[600];
    const double val = train_source("aqsrc", 102400, AQ_STE, src);

    /* ste -> pv, the same format: codebooks, scales and codes carried, PV's buffers fresh */
    static const char PV[] = "compress:\n  weights: {format: aq1x4g4, estimator: pv}\n";
    expect_weights_carried("aqpv", src, PV, "carried", "carried", val);
    char *text = stdout_of_last_run();
    if (!strstr(text, "the aq codebooks, scales and codes of aq1x4g4 (no rotation, estimator ste, scale rms), read by "
                      "aq1x4g4 (no rotation, estimator pv, scale rms); PV's buffers start from them"))
        fail_msg("the header does not say what was carried:\n%s", text);
    free(text);

    /* only the activations' format changes (unrotated, so the weights' quantizer is
     * the same): the activations start afresh, the weights keep their state */
    static const char PV_INT8[] = "compress:\n  weights: {format: aq1x4g4, estimator: pv}\n"
                                  "  activations: {format: int8, hadamard: 0}\n";
    expect_weights_carried("aqpv8", src, PV_INT8, "partial", "projected", NAN);
    /* only the backward changes: both sides carried, the forward is the source's */
    static const char STE_G[] = "compress:\n  weights: {format: aq1x4g4, estimator: ste}\n"
                                "  gradients: {format: mxfp4}\n";
    expect_weights_carried("aqgrad", src, STE_G, "carried", "carried", val);
    run_paths pv8 = paths_of("aqpv8", "runs");
    double ptq8 = h5attr_f64(pv8.log, "init_ptq_loss"), src8 = h5attr_f64(pv8.log, "init_source_loss");
    /* the source through its own formats is its own last evaluation */
    assert_true(fabs(src8 - val) <= 1e-6 * val);
    assert_true(isfinite(ptq8));

    /* the pv run stopped and resumed is the uninterrupted one, bit for bit */
    run_paths a = paths_of("aqpv", "runs"), b = paths_of("aqpv", "aqpv_b");
    assert_int_equal(run((char *[]){"train", b.cfg, "--out", b.out, "--init", src, "--quiet", "--stop-after", "7", NULL}),
                     0);
    assert_int_equal(run((char *[]){"train", b.cfg, "--out", b.out, "--resume", "--quiet", NULL}), 0);
    compare_runs(a.log, b.log, a.ckpt, b.ckpt);
}

/* M = 2 books: ste re-encodes at every forward by one greedy pass from the codes
 * before it, so the source's last evaluation (8 batches, 8 forwards) ran its first
 * batches on codes a pass or more short of those it left in the checkpoint, which
 * pv decodes as they are (M = 1 is exact: the nearest codeword does not depend on
 * the codes before). Measured −8.1e-8 relative (seed 1, 1 and 2 threads): inside
 * the carried runs' 1e-6. */
static void init_carries_aq2_codebooks_into_pv(void **state) {
    (void)state;
    static const char AQ2_STE[] = "compress:\n  weights: {format: aq2x4g4, estimator: ste}\n";
    static const char AQ2_PV[] = "compress:\n  weights: {format: aq2x4g4, estimator: pv}\n";
    char src[600];
    const double val = train_source("aq2src", 102400, AQ2_STE, src);
    expect_weights_carried("aq2pv", src, AQ2_PV, "carried", "carried", val);
}

/* ---- a PV source starts the weights from its codes, not its /params ------------ */

/* PV-Tuning with pv_lr > 0 (the default) computes its forward from its codes and
 * stops reading the weight tensor at its first forward, while the model's AdamW
 * keeps moving that tensor: the source's /params are not the model it ran. When
 * the weights do not carry the PV state (here fp32, with nothing to carry), the
 * new run starts from what the source's quantizer returns, rotated back where it
 * rotated, so the fp32 PTQ loss is the source's last validation loss: the fp32
 * model multiplies the same activations by the same weights, unrotated the very
 * products; rotated, x·(ŴH)ᵀ against (xH)·Ŵᵀ, equal up to float32 rounding of the
 * rotation. Both measured bit-equal (1 and 2 threads); checked to 1e-6 relative
 * like the carried aq runs above. Starting from /params instead, as before, gave
 * 4.7133 against 4.6498 unrotated and 4.7132 against 4.6471 rotated by 32 (seed
 * 1, 40 steps): 1.4e-2 relative. The same PV config carries the state and
 * decodes nothing; the hash names the source's /params as stored either way. */
static void init_from_pv_starts_at_its_codes(void **state) {
    (void)state;
    static const struct {
        const char *name, *compress;
    } srcs[] = {
        {"pvsrc", "compress:\n  weights: {format: int4@g32, estimator: pv}\n"},
        {"pvhsrc", "compress:\n  weights: {format: int4@g32, estimator: pv, hadamard: 32}\n"},
    };
    for (size_t i = 0; i < sizeof srcs / sizeof srcs[0]; i++) {
        char src[600], name[64], s[32], hash[100], want[80];
        const double val = train_source(srcs[i].name, 40960, srcs[i].compress, src);

        /* into fp32: the weights are the source's decoded codes */
        snprintf(name, sizeof name, "%s-fp32", srcs[i].name);
        run_paths r = paths_of(name, "runs");
        config(r.cfg, name, 10240, "");
        assert_int_equal(run((char *[]){"train", r.cfg, "--out", r.out, "--init", src, NULL}), 0);
        char *text = stdout_of_last_run();
        double ptq = h5attr_f64(r.log, "init_ptq_loss");
        printf("  %s: PTQ fp32 %.9f, source's last validation loss %.9f (%+.2e relative)\n", name, ptq, val,
               (ptq - val) / val);
        assert_true(fabs(ptq - val) <= 1e-6 * val);
        h5attr_str(r.log, "init_state_weights", s, sizeof s);
        assert_string_equal(s, "projected");
        if (!strstr(text, "init: weights start from the source's forward (8 tensors): its codes as int4@g32"))
            fail_msg("the header does not say the weights are the source's codes:\n%s", text);
        if ((i == 1) != (strstr(text, ", rotated back, not its /params") != NULL))
            fail_msg("the header's rotation is not the source's:\n%s", text);
        free(text);
        h5attr_str(r.log, "init_hash", hash, sizeof hash);
        hash_of(src, want);
        assert_string_equal(hash, want);

        /* the same PV config: carried, nothing decoded, the source's loss */
        snprintf(name, sizeof name, "%s-same", srcs[i].name);
        expect_weights_carried(name, src, srcs[i].compress, "carried", "carried", val);
        text = stdout_of_last_run();
        if (strstr(text, "start from the source's forward")) fail_msg("carried state was decoded:\n%s", text);
        free(text);
    }
}

/* ---- a carried quantizer that reads /params starts from the source's codes ----- */

/* In process: the model `compress` builds, loaded from src (a PV source, pv_lr > 0,
 * rotated by `block` or not) by qat_init_load. Every weight tensor must be the
 * source's forward, its Ŵ as the checkpoint stores it (pv_what, rotated back by the
 * same Hadamard rows the loader uses), bit for bit; every quantizer state array must
 * be the file's, bit for bit (carried as the source left it: the decode runs the
 * source's own model, never this one's quantizers); and one forward of each weight
 * quantizer on those tensors must leave the state so (ste re-encodes the decoded
 * codes to themselves; pv keeps them). Each mismatch is counted and printed. */
static void expect_weights_are_its_codes(const char *name, const char *src, const char *compress, int block) {
    static const char *which[4] = {"qkv", "o", "gate_up", "down"};
    run_paths r = paths_of(name, "runs");
    const char *path = r.cfg;
    config(path, name, 10240, compress);
    qat_config *c;
    qat_model_shape sh;
    qat_init it;
    qat_model *m = init_in_process(path, src, &c, &sh, &it);
    qat_ckpt_file *f;
    assert_int_equal(qat_ckpt_open(src, &f), 0);
    int64_t off_w = 0, n_w = 0, off_s = 0, off_f = 0;
    double max_w = 0;
    for (int l = 0; l < sh.layers; l++) {
        qat_block *b = &m->blocks[l];
        qat_tensor *w[4] = {&b->wqkv, &b->wo, &b->wgu, &b->wdown};
        for (int j = 0; j < 4; j++) {
            char an[128];
            int64_t n = w[j]->numel;
            float *what = malloc(sizeof(float) * (size_t)n);
            snprintf(an, sizeof an, "compress/layers.%d.%s.weight.pv_what", l, which[j]);
            assert_int_equal(qat_ckpt_read_array(f, an, 1, &n, what), 0);
            if (block) qat_hadamard_rows(what, w[j]->shape[0], w[j]->shape[1], block);
            for (int64_t i = 0; i < n; i++) {
                off_w += what[i] != w[j]->data[i];
                max_w = fmax(max_w, fabs((double)what[i] - w[j]->data[i]));
            }
            n_w += n;
            free(what);
        }
    }
    /* the state as loaded, then after one forward of every weight quantizer */
    for (int pass = 0; pass < 2; pass++) {
        if (pass)
            for (int l = 0; l < sh.layers; l++) {
                qat_block *b = &m->blocks[l];
                qat_tensor *w[4] = {&b->wqkv, &b->wo, &b->wgu, &b->wdown};
                for (int j = 0; j < 4; j++) {
                    float *y = malloc(sizeof(float) * (size_t)w[j]->numel);
                    qat_quantizer_forward(b->qw[j], w[j]->data, y, w[j]->shape[0], 0);
                    free(y);
                }
            }
        for (int i = 0; i < qat_model_compress_state_count(m); i++) {
            char sn[96], an[128];
            float *d;
            int64_t n;
            qat_model_compress_state(m, i, sn, &d, &n);
            snprintf(an, sizeof an, "compress/%s", sn);
            float *x = malloc(sizeof(float) * (size_t)n);
            assert_int_equal(qat_ckpt_read_array(f, an, 1, &n, x), 0);
            for (int64_t k = 0; k < n; k++) *(pass ? &off_f : &off_s) += memcmp(&x[k], &d[k], sizeof(float)) != 0;
            free(x);
        }
    }
    qat_ckpt_close(f);
    printf("  %s: %lld of %lld weights not the source's codes (largest difference %.3e); state values not the "
           "file's: %lld as loaded, %lld after a forward\n", name, (long long)off_w, (long long)n_w, max_w,
           (long long)off_s, (long long)off_f);
    assert_true(n_w > 0);
    assert_int_equal(off_w, 0);
    assert_int_equal(off_s, 0);
    assert_int_equal(off_f, 0);
    qat_init_free(&it);
    qat_model_free(m);
    free(c);
}

/* A PV source (pv_lr > 0) and a quantizer that carries its weights' state and
 * reads the weight tensor. */
typedef struct {
    const char *name;  /* the source's run */
    const char *pv;    /* its compress keys */
    const char *into;  /* the --init run's compress keys */
    const char *key;   /* the source's state key as the header names it, up to the estimator */
    int block;         /* the source's Hadamard block, 0 none */
} pv_into;

/* The source trained (40 steps), then --init into k->into as run NAME-tag: the
 * weights' state recorded carried, the PTQ loss the source's last validation loss,
 * the header's line naming the source's codes; then the same in process
 * (expect_weights_are_its_codes). */
static void expect_carried_from_codes(const pv_into *k, const char *tag) {
    char src[600], name[64], said[200];
    const double val = train_source(k->name, 40960, k->pv, src);
    snprintf(name, sizeof name, "%s-%s", k->name, tag);
    expect_weights_carried(name, src, k->into, "carried", "carried", val);
    char *text = stdout_of_last_run();
    snprintf(said, sizeof said, "init: weights start from the source's forward (8 tensors): its codes as %s", k->key);
    if (!strstr(text, said)) fail_msg("the header does not say the weights are the source's codes:\n%s", text);
    free(text);
    snprintf(name, sizeof name, "%s-%s-inproc", k->name, tag);
    expect_weights_are_its_codes(name, src, k->into, k->block);
}

/* An aqMxBgG pv source (pv_lr > 0) into the same format with ste carries the
 * codebooks, scales and codes, but ste re-encodes the codes from the weight tensor
 * at every forward: from the stale /params the carried codes were lost at the
 * first forward. The weights now start from the source's forward, which ste
 * re-encodes to the codes they decode from: the decoded group divided by its row
 * scale is its codeword sum within a rounding (unrotated: (s·v)/s; rotated: the
 * two Hadamard passes too, ~1e-7 relative), far nearer to it than to any other
 * (M = 2's greedy pass starts at those codes and keeps each: its residual is that
 * book's codeword). A code could flip only if two codewords of a book were within
 * that rounding of each other; the in-process check (exact) found none in seeds
 * 1..4 at 1 and 2 threads, aq1x4g4 and aq2x4g4, unrotated and rotated by 32. So
 * the PTQ loss is the source's last validation loss, the same codes decoded by the
 * same books and scales on the same held-out batches: bit-equal in all 24 runs,
 * checked to the carried runs' 1e-6 relative. From /params, as before (seed 1):
 * PTQ 4.6477 against 4.6258 (aq1x4g4), 4.6638 against 4.6307 (aq2x4g4), 4.6706
 * against 4.6307 (rotated), +4.7e-3..+8.6e-3 relative; every weight off the codes
 * (largest 0.096..0.133), and one forward changed 3652 of 6656 codes (M = 1), 6760
 * and 6787 of 13312 (M = 2); no header line. */
static void init_from_aq_pv_into_ste_starts_at_its_codes(void **state) {
    (void)state;
    static const pv_into cases[] = {
        {"aqpvsrc", "compress:\n  weights: {format: aq1x4g4, estimator: pv}\n",
         "compress:\n  weights: {format: aq1x4g4, estimator: ste}\n", "aq1x4g4 (no rotation, estimator pv", 0},
        {"aq2pvsrc", "compress:\n  weights: {format: aq2x4g4, estimator: pv}\n",
         "compress:\n  weights: {format: aq2x4g4, estimator: ste}\n", "aq2x4g4 (no rotation, estimator pv", 0},
        {"aq2pvhsrc", "compress:\n  weights: {format: aq2x4g4, estimator: pv, hadamard: 32}\n",
         "compress:\n  weights: {format: aq2x4g4, estimator: ste, hadamard: 32}\n",
         "aq2x4g4 (Hadamard block 32, estimator pv", 32},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) expect_carried_from_codes(&cases[i], "ste");
}

/* PV with pv_lr: 0 follows the weight tensor itself (its V step re-projects
 * it), so from a pv_lr > 0 source, whose state it carries whole (the same
 * quantizer key, qat_quantizer_carry), it followed the stale /params from its
 * first step: the PTQ loss was right (the carried codes), the training not (the
 * unrotated source, seed 1, then 20 steps: validation 4.3451 from /params,
 * 4.2549 from the codes, 4.2496 into pv with pv_lr > 0; one seed, not
 * asserted). Its weight tensors now start at the source's codes, unrotated and
 * rotated by 32 (rotated back here with the loader's own Hadamard rows: the
 * same rounding), bit for bit, and the header says so. From /params, as before
 * (seed 1): every weight off the codes (largest 0.386 unrotated, 0.580
 * rotated), no header line; the PTQ loss equal either way. */
static void init_from_pv_into_pv_lr0_starts_at_its_codes(void **state) {
    (void)state;
    static const pv_into cases[] = {
        {"pv0src", "compress:\n  weights: {format: int4@g32, estimator: pv}\n",
         "compress:\n  weights: {format: int4@g32, estimator: pv, pv_lr: 0}\n", "int4@g32 (no rotation, estimator pv",
         0},
        {"pv0hsrc", "compress:\n  weights: {format: int4@g32, estimator: pv, hadamard: 32}\n",
         "compress:\n  weights: {format: int4@g32, estimator: pv, hadamard: 32, pv_lr: 0}\n",
         "int4@g32@h32 (Hadamard block 32, estimator pv", 32},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) expect_carried_from_codes(&cases[i], "lr0");
}

/* ---- wrong input -------------------------------------------------------------- */

static void expect_refused(const char *name, const char *set, int want_rc, const char *const *needles) {
    run_paths r = paths_of(name, "runs");
    config(r.cfg, name, 20480, INT4);
    const char *init = needles[0];
    int rc = set ? run((char *[]){"train", r.cfg, "--out", r.out, "--set", (char *)set, "--init", (char *)init, NULL})
                 : run((char *[]){"train", r.cfg, "--out", r.out, "--init", (char *)init, NULL});
    printf("  %s: exit %d: %s", name, rc, g_err);
    assert_int_equal(rc, want_rc);
    for (int i = 1; needles[i]; i++)
        if (!strstr(g_err, needles[i])) fail_msg("'%s' not in: %s", needles[i], g_err);
    /* one line */
    assert_non_null(strchr(g_err, '\n'));
    assert_true(strchr(g_err, '\n')[1] == 0);
    assert_false(is_dir(r.dir)); /* checked before anything is created */
}

static void mismatched_or_bad_files_are_refused(void **state) {
    (void)state;
    expect_refused("wide", "model.preset=s2", 2,
                   (const char *[]){g_src, "model.embed_tokens.weight", "[256, 32]", "[256, 48]", "--init", NULL});
    expect_refused("deep", "model.layers=3", 2, (const char *[]){g_src, "model.layers.2.", NULL});
    expect_refused("shallow", "model.layers=1", 2, (const char *[]){g_src, "/params/model.layers.1.", "2 layers", NULL});
    expect_refused("heads", "model.heads=4", 2, (const char *[]){g_src, "model.heads = 2", NULL});
    char missing[400], text[400];
    snprintf(missing, sizeof missing, "%s/nothing.h5", g_tmp);
    snprintf(text, sizeof text, "%s/text.h5", g_tmp);
    write_file(text, "not an HDF5 file\n");
    expect_refused("missing", NULL, 2, (const char *[]){missing, "No such file or directory", NULL});
    expect_refused("text", NULL, 2, (const char *[]){text, "not a readable HDF5 checkpoint", NULL});

    /* A checkpoint with a NaN weight: the loaders' non-finite error, exit 1. */
    char bad[400];
    snprintf(bad, sizeof bad, "%s/nan.h5", g_tmp);
    qat_ckpt_file *f;
    assert_int_equal(qat_ckpt_open(g_src, &f), 0);
    qat_ckpt ck;
    memset(&ck, 0, sizeof ck);
    assert_int_equal(qat_ckpt_read_attrs(f, &ck.attrs), 0);
    char *yaml = NULL;
    assert_int_equal(qat_ckpt_read_config(f, &yaml), 0);
    ck.attrs.config_yaml = yaml;
    assert_non_null(ck.attrs.config_yaml);
    assert_int_equal(qat_ckpt_read_state(f, &ck.state), 0);
    char **names;
    int n;
    assert_int_equal(qat_ckpt_list(f, "params", &names, &n), 0);
    qat_ckpt_array *arr = calloc((size_t)n, sizeof *arr);
    for (int i = 0; i < n; i++) {
        arr[i].name = names[i];
        assert_int_equal(qat_ckpt_array_shape(f, names[i], &arr[i].ndim, arr[i].shape), 0);
        int64_t cnt = 1;
        for (int d = 0; d < arr[i].ndim; d++) cnt *= arr[i].shape[d];
        float *x = malloc((size_t)cnt * 4);
        assert_int_equal(qat_ckpt_read_array(f, names[i], arr[i].ndim, arr[i].shape, x), 0);
        if (strstr(names[i], "o_proj")) x[3] = NAN;
        arr[i].data = x;
    }
    qat_ckpt_close(f);
    ck.arrays = arr;
    ck.n_arrays = n;
    assert_int_equal(qat_ckpt_write(bad, &ck), 0);
    for (int i = 0; i < n; i++) free((void *)arr[i].data), free(names[i]);
    free(arr);
    free(names);
    free((void *)ck.attrs.config_yaml);
    expect_refused("nan", NULL, 1, (const char *[]){bad, "non-finite values in params/model.layers.0.self_attn.o_proj", NULL});
}

/* ---- resume ----------------------------------------------------------------- */

static void resume_of_an_init_run_is_bit_exact(void **state) {
    (void)state;
    run_paths a = paths_of("r", "a"), b = paths_of("r", "b");
    config(a.cfg, "r", 40960, INT4);
    assert_int_equal(run((char *[]){"train", a.cfg, "--out", a.out, "--init", g_src, "--quiet", NULL}), 0);
    assert_int_equal(run((char *[]){"train", a.cfg, "--out", b.out, "--init", g_src, "--quiet", "--stop-after", "15", NULL}),
                     0);
    /* without --resume the stopped run is not started over, --init or not */
    assert_int_equal(run((char *[]){"train", a.cfg, "--out", b.out, "--init", g_src, "--quiet", NULL}), 2);
    assert_non_null(strstr(g_err, "already holds a run with a checkpoint"));
    assert_int_equal(run((char *[]){"train", a.cfg, "--out", b.out, "--init", g_src, "--resume", "--quiet", NULL}), 0);
    assert_non_null(strstr(g_err, "qat: note: --init "));
    assert_non_null(strstr(g_err, "not applied"));
    compare_runs(a.log, b.log, a.ckpt, b.ckpt);
    /* given as the key, the note and the errors name the key, not an --init nobody typed */
    char setinit[700], bad[700];
    snprintf(setinit, sizeof setinit, "train.init=%s", g_src);
    assert_int_equal(run((char *[]){"train", a.cfg, "--out", b.out, "--set", setinit, "--resume", "--quiet", NULL}), 0);
    assert_non_null(strstr(g_err, "qat: note: train.init "));
    snprintf(bad, sizeof bad, "train.init=%s/missing.h5", g_tmp);
    assert_int_equal(run((char *[]){"train", a.cfg, "--out", b.out, "--set", bad, "--set", "name=m", "--quiet", NULL}), 2);
    assert_non_null(strstr(g_err, ": train.init: "));
    assert_null(strstr(g_err, "--init "));
    /* the resumed log keeps the init record */
    char ha[100], hb[100];
    h5attr_str(a.log, "init_hash", ha, sizeof ha);
    h5attr_str(b.log, "init_hash", hb, sizeof hb);
    assert_true(ha[0] != 0);
    assert_string_equal(ha, hb);
    assert_true(h5attr_f64(a.log, "init_ptq_loss") == h5attr_f64(b.log, "init_ptq_loss"));
}

/* SIGINT while --init's PTQ evaluation runs (2M held-out tokens: seconds): the
 * run stops between batches, exit 1, and --resume starts it from --init as a run
 * never stopped (before: the signal waited for both evaluations to end). The
 * resume names no source: run.h5, created with status running, no rows and no
 * init_* attributes, records train.init in its config, and the resume starts
 * from it. Before, the stop left no run.h5 and said "continue with --resume",
 * which then trained from random weights (first loss 5.5 instead of ~2.2)
 * without a word. A SIGKILL there leaves only run.h5.lock, whose line names the
 * source: a resume without --init starts from it, with a note. Timing: the signal goes 1 s after the start; reading
 * the corpus and the source takes well under that and the two evaluations ~5 s
 * on one idle core (longer under load or a sanitizer, which only widens the
 * margin). */
static pid_t start_and_signal(char *const args[], int sig) {
    pid_t pid = qat_test_spawn(g_tmp, args);
    assert_true(pid > 0);
    usleep(1000000);
    kill(pid, sig);
    return pid;
}

static void sigint_in_the_ptq_evaluation(void **state) {
    (void)state;
    run_paths a = paths_of("pe", "pea"), b = paths_of("pe", "peb"), c = paths_of("pe", "pec");
    config(a.cfg, "pe", 4096, "compress:\n  weights: {format: int4}\n");
    char *const big[] = {"--set", "train.eval_tokens=2e6", NULL};
    assert_int_equal(run((char *[]){"train", a.cfg, "--out", a.out, "--init", g_src, big[0], big[1], "--quiet", NULL}), 0);
    pid_t pid = start_and_signal((char *[]){"train", a.cfg, "--out", b.out, "--init", g_src, big[0], big[1], "--quiet",
                                            NULL}, SIGINT);
    int rc = qat_test_wait_stderr(pid, g_tmp, g_err, sizeof g_err);
    printf("  SIGINT in the PTQ evaluation: exit %d: %s", rc, g_err);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(g_err, "interrupted before step 1 (while setting up: evaluating the --init start)"));
    assert_non_null(strstr(g_err, "records train.init"));
    assert_int_equal(access(b.ckpt, F_OK), -1);
    qat_runlog_summary *sm = malloc(sizeof *sm);
    assert_non_null(sm);
    assert_int_equal(qat_runlog_read_final(b.log, sm), 0);
    assert_string_equal(sm->status, "running");
    assert_int_equal(sm->n_train, 0);
    free(sm);
    char *yaml = NULL, rec[700], hash[100];
    assert_int_equal(qat_runlog_config(b.log, &yaml), 0);
    snprintf(rec, sizeof rec, "init: \"%s\"", g_src);
    assert_non_null(strstr(yaml, rec));
    free(yaml);
    h5attr_str(b.log, "init_hash", hash, sizeof hash);
    assert_string_equal(hash, ""); /* nothing was measured */
    /* --resume alone: the recorded source, as a run never stopped */
    assert_int_equal(run((char *[]){"train", a.cfg, "--out", b.out, big[0], big[1], "--resume", "--quiet", NULL}), 0);
    printf("  resumed without --init: %s", g_err);
    assert_non_null(strstr(g_err, "starting afresh from train.init"));
    compare_runs(a.log, b.log, a.ckpt, b.ckpt);
    assert_true(h5attr_f64(a.log, "init_ptq_loss") == h5attr_f64(b.log, "init_ptq_loss"));

    /* SIGKILL there: no run.h5 to record the source, but the lock names it; the resume
     * that names none starts from it (before: from random weights, with a note), and
     * the run ends as one never stopped */
    pid = start_and_signal((char *[]){"train", a.cfg, "--out", c.out, "--init", g_src, big[0], big[1], "--quiet", NULL},
                           SIGKILL);
    assert_int_equal(qat_test_wait(pid), 128 + SIGKILL);
    assert_int_equal(access(c.log, F_OK), -1);
    assert_int_equal(run((char *[]){"train", a.cfg, "--out", c.out, big[0], big[1], "--resume", "--quiet", NULL}), 0);
    printf("  resumed after SIGKILL: %s", g_err);
    assert_non_null(strstr(g_err, "only the lock of a run killed before it wrote its log"));
    assert_non_null(strstr(g_err, "which the lock records"));
    compare_runs(a.log, c.log, a.ckpt, c.ckpt);
    assert_true(h5attr_f64(a.log, "init_ptq_loss") == h5attr_f64(c.log, "init_ptq_loss"));
}

/* ---- train.init: --init written in the config ---------------------------------- */

static void config_key_train_init_is_init(void **state) {
    (void)state;
    char h1[100], h2[100];
    run_paths k = paths_of("k", "k"), kc = paths_of("k", "kc");
    /* the same run from the key (given through --set, as a sweep writes it) and from --init:
     * the same init record and the same losses */
    config(k.cfg, "k", 20480, INT4);
    char set[700];
    snprintf(set, sizeof set, "train.init=%s", g_src);
    assert_int_equal(run((char *[]){"train", k.cfg, "--out", k.out, "--set", set, "--quiet", NULL}), 0);
    assert_int_equal(run((char *[]){"train", k.cfg, "--out", kc.out, "--init", g_src, "--quiet", NULL}), 0);
    h5attr_str(k.log, "init_hash", h1, sizeof h1);
    h5attr_str(kc.log, "init_hash", h2, sizeof h2);
    assert_true(h1[0] != 0); /* the key was applied: a fresh start has no init record */
    assert_string_equal(h1, h2);
    assert_true(h5attr_f64(k.log, "init_ptq_loss") == h5attr_f64(kc.log, "init_ptq_loss"));
    compare_series(k.log, kc.log, "train/loss");
    /* --init on the command line wins over the key: a missing file in the key is never opened */
    run_paths k3 = paths_of("k", "k3");
    assert_int_equal(run((char *[]){"train", k.cfg, "--out", k3.out, "--set", "train.init=no-such.h5", "--init", g_src,
                                    "--quiet", "--stop-after", "5", NULL}),
                     0);
    /* and the key alone is read: the missing file is the one-line error naming it */
    run_paths k4 = paths_of("k", "k4");
    assert_int_equal(run((char *[]){"train", k.cfg, "--out", k4.out, "--set", "train.init=no-such.h5", "--quiet", NULL}),
                     2);
    assert_non_null(strstr(g_err, "no-such.h5"));
    /* changing the key on --resume is refused like any other key (another readable checkpoint of
     * the same shape, so that the refusal comes from the resume check, not from reading the file) */
    char other[700];
    snprintf(other, sizeof other, "train.init=%s", k.ckpt);
    assert_int_equal(run((char *[]){"train", k.cfg, "--out", k3.out, "--set", other, "--resume", "--quiet", NULL}), 2);
    assert_non_null(strstr(g_err, "train.init"));
}

/* ---- --init is recorded as train.init, and a resume reads it as a fact ----------- */

static int stored_config_has(const char *ckpt, const char *text) {
    qat_ckpt_file *f;
    assert_int_equal(qat_ckpt_open(ckpt, &f), 0);
    char *yaml = NULL;
    assert_int_equal(qat_ckpt_read_config(f, &yaml), 0);
    qat_ckpt_close(f);
    int has = strstr(yaml, text) != NULL;
    free(yaml);
    return has;
}

/* Runs started with --init stored train.init: "" (only run.h5's init_from said how
 * they began); a run started with the key and resumed with --init was refused
 * ('train.init: "X" -> ""'); and a resume re-read the source, failing with "cannot
 * open" once it had moved, though the checkpoint holds everything. Now --init is
 * written into train.init, the two spellings are one on resume, a resume that names
 * no source keeps the recorded one, and the source is not opened to resume. The
 * same file under another path (`DIR/./src.h5`, a symbolic link) is the same
 * source, as --help and docs/cli.md say ("--init changes nothing"); it was refused
 * as a changed train.init. A copy (another inode) is another file, refused, and
 * so is another path once the recorded file is gone. */
static void init_recorded_and_resumed(void **state) {
    (void)state;
    char cfg[400], src[600], moved[600], key[700], rec[700];
    run_paths a = paths_of("a", "rr"); /* the run a (then b) of config rr.yaml */
    snprintf(cfg, sizeof cfg, "%s/rr.yaml", g_tmp);
    snprintf(src, sizeof src, "%s/rr-src.h5", g_tmp);
    snprintf(moved, sizeof moved, "%s/rr-src-moved.h5", g_tmp);
    config(cfg, "a", 20480, "");
    char cp[1400];
    snprintf(cp, sizeof cp, "cp '%s' '%s'", g_src, src);
    assert_int_equal(system(cp), 0);
    assert_int_equal(run((char *[]){"train", cfg, "--out", a.out, "--init", src, "--quiet", "--stop-after", "3", NULL}), 0);
    snprintf(rec, sizeof rec, "init: \"%s\"", src);
    assert_true(stored_config_has(a.ckpt, rec));
    /* the same file under other paths: a note, and the run goes on */
    char dotted[700], link[600], copy[600];
    snprintf(dotted, sizeof dotted, "%s/./rr-src.h5", g_tmp);
    snprintf(link, sizeof link, "%s/rr-link.h5", g_tmp);
    snprintf(copy, sizeof copy, "%s/rr-copy.h5", g_tmp);
    assert_int_equal(symlink(src, link), 0);
    snprintf(cp, sizeof cp, "cp '%s' '%s'", src, copy);
    assert_int_equal(system(cp), 0);
    const char *same[] = {dotted, link};
    for (int i = 0; i < 2; i++) {
        int rc = run((char *[]){"train", cfg, "--out", a.out, "--init", (char *)same[i], "--resume", "--quiet",
                                "--stop-after", "1", NULL});
        printf("  --init %s on resume: exit %d: %s", same[i], rc, g_err);
        assert_int_equal(rc, 0);
        assert_non_null(strstr(g_err, "not applied"));
    }
    assert_true(stored_config_has(a.ckpt, rec)); /* the recorded spelling is kept */
    /* a copy is another file (its bytes may change apart from the source's) */
    int rc = run((char *[]){"train", cfg, "--out", a.out, "--init", copy, "--resume", "--quiet", NULL});
    printf("  --init COPY on resume: exit %d: %s", rc, g_err);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(g_err, "train.init: "));
    assert_non_null(strstr(g_err, "(another file; a resume needs no --init: leave it out to continue)"));
    /* the source moved: the resume continues from its own checkpoint */
    assert_int_equal(rename(src, moved), 0);
    /* its new path cannot be shown to be the file recorded: refused, with the way on */
    rc = run((char *[]){"train", cfg, "--out", a.out, "--init", moved, "--resume", "--quiet", NULL});
    printf("  --init MOVED on resume: exit %d: %s", rc, g_err);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(g_err, "the recorded file is not there to compare with"));
    assert_int_equal(run((char *[]){"train", cfg, "--out", a.out, "--init", src, "--resume", "--quiet", "--stop-after",
                                    "3", NULL}), 0);
    assert_null(strstr(g_err, "cannot open"));
    /* the key spelling of the same source, and no source at all, continue the same run */
    snprintf(key, sizeof key, "train.init=%s", src);
    assert_int_equal(run((char *[]){"train", cfg, "--out", a.out, "--set", key, "--resume", "--quiet", "--stop-after",
                                    "3", NULL}), 0);
    assert_int_equal(run((char *[]){"train", cfg, "--out", a.out, "--resume", "--quiet", "--stop-after", "3", NULL}), 0);
    assert_true(stored_config_has(a.ckpt, rec)); /* still says how the run began */
    /* another source is another run */
    snprintf(key, sizeof key, "train.init=%s", g_src);
    assert_int_equal(run((char *[]){"train", cfg, "--out", a.out, "--set", key, "--resume", "--quiet", NULL}), 2);
    assert_non_null(strstr(g_err, "train.init"));
    /* started with the key, resumed with --init: the same source */
    config(cfg, "b", 20480, "");
    assert_int_equal(run((char *[]){"train", cfg, "--out", a.out, "--set", key, "--quiet", "--stop-after", "3", NULL}), 0);
    assert_int_equal(run((char *[]){"train", cfg, "--out", a.out, "--init", g_src, "--resume", "--quiet", NULL}), 0);
}

/* run(args) with the current directory cwd, where a relative --init is read from. */
static int run_in(const char *cwd, char *const args[]) {
    char here[1024];
    assert_non_null(getcwd(here, sizeof here));
    assert_int_equal(chdir(cwd), 0);
    int rc = run(args);
    assert_int_equal(chdir(here), 0);
    return rc;
}

/* A relative --init was recorded as typed, and read on --resume from the
 * directory of the resume: an --init run stopped in its PTQ evaluation
 * (`--init src.h5` in D) and resumed from D/elsewhere, where another src.h5
 * lies, fine-tuned that other file (init_from D/elsewhere/src.h5), or failed
 * "cannot open ... restore it" where there was none, though nothing had moved;
 * and a resume naming the recorded file by its absolute path (or `../src.h5`)
 * from another directory was refused ('train.init: "src.h5" -> "D/src.h5"').
 * The run now records its source absolute, read from the directory it started
 * in (docs/config.md: relative to the current directory). */
static void relative_init_resumed_elsewhere(void **state) {
    (void)state;
    char d[400], other_dir[500], runs_dir[500], cfg[500], out[500], src[500], other[600], runh5[600], abs_src[600];
    char from[1100], cp[1400];
    snprintf(d, sizeof d, "%s/rel", g_tmp);
    snprintf(other_dir, sizeof other_dir, "%s/elsewhere", d);
    snprintf(runs_dir, sizeof runs_dir, "%s/runs", d);
    snprintf(cfg, sizeof cfg, "%s/rel.yaml", d);
    snprintf(out, sizeof out, "%s/runs", d);
    snprintf(src, sizeof src, "%s/src.h5", d);
    snprintf(other, sizeof other, "%s/src.h5", other_dir);
    snprintf(runh5, sizeof runh5, "%s/rel/run.h5", out);
    assert_int_equal(mkdir(d, 0755), 0);
    assert_int_equal(mkdir(other_dir, 0755), 0);
    snprintf(cp, sizeof cp, "cp '%s' '%s'", g_src, src);
    assert_int_equal(system(cp), 0);
    /* another source of the same shape in elsewhere/: a short fine-tune of src.h5 */
    config(cfg, "relo", 20480, "compress:\n  weights: {format: int4}\n");
    assert_int_equal(run_in(d, (char *[]){"train", cfg, "--out", out, "--init", "src.h5", "--quiet", "--stop-after",
                                          "10", NULL}), 0);
    snprintf(cp, sizeof cp, "cp '%s/relo/ckpt.h5' '%s'", out, other);
    assert_int_equal(system(cp), 0);

    /* --init src.h5 in D, stopped in its PTQ evaluation (as sigint_in_the_ptq_evaluation) */
    config(cfg, "rel", 4096, "compress:\n  weights: {format: int4}\n");
    char here[1024];
    assert_non_null(getcwd(here, sizeof here));
    assert_int_equal(chdir(d), 0);
    pid_t pid = start_and_signal((char *[]){"train", cfg, "--out", out, "--init", "src.h5", "--set",
                                            "train.eval_tokens=2e6", "--quiet", NULL}, SIGINT);
    int rc = qat_test_wait_stderr(pid, g_tmp, g_err, sizeof g_err);
    assert_int_equal(chdir(here), 0);
    printf("  --init src.h5 stopped in D: exit %d: %s", rc, g_err);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(g_err, "records train.init"));
    /* resumed from elsewhere/: the source it started from, not elsewhere/src.h5 */
    rc = run_in(other_dir, (char *[]){"train", cfg, "--out", out, "--set", "train.eval_tokens=2e6", "--resume",
                                      "--quiet", "--stop-after", "1", NULL});
    printf("  resumed from elsewhere/: exit %d: %s", rc, g_err);
    assert_int_equal(rc, 0);
    char *abs = realpath(src, NULL);
    assert_non_null(abs);
    snprintf(abs_src, sizeof abs_src, "%s", abs);
    free(abs);
    h5attr_str(runh5, "init_from", from, sizeof from);
    assert_string_equal(from, abs_src);
    /* a run started in D/runs with --init ../src.h5 records the same file */
    assert_int_equal(unlink(other), 0);
    assert_int_equal(run_in(out, (char *[]){"train", cfg, "--out", out, "--set", "name=rel2", "--init", "../src.h5",
                                            "--quiet", "--stop-after", "1", NULL}), 0);
    /* the recorded file named from another directory, absolute or relative: the same source */
    char *const by_abs[] = {"train", cfg, "--out", out, "--init", src, "--set", "train.eval_tokens=2e6", "--resume",
                            "--quiet", "--stop-after", "2", NULL};
    char *const by_rel[] = {"train", cfg, "--out", out, "--init", "../src.h5", "--set", "train.eval_tokens=2e6",
                            "--resume", "--quiet", "--stop-after", "3", NULL};
    rc = run_in(g_tmp, by_abs);
    printf("  --resume --init D/src.h5 from elsewhere: exit %d: %s", rc, g_err);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(g_err, "not applied"));
    rc = run_in(runs_dir, by_rel);
    printf("  --resume --init ../src.h5 from D/runs: exit %d: %s", rc, g_err);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(g_err, "not applied"));
    char rel2[600];
    snprintf(rel2, sizeof rel2, "%s/rel2/run.h5", out);
    h5attr_str(rel2, "init_from", from, sizeof from);
    assert_string_equal(from, abs_src);
    /* and resumes, without --init, from a directory with no src.h5 */
    char set_name[] = "name=rel2";
    char *const rel2_resume[] = {"train", cfg, "--out", out, "--set", set_name, "--resume", "--quiet", "--stop-after",
                                 "2", NULL};
    assert_int_equal(run_in(other_dir, rel2_resume), 0);
}

/* ---- qat grads CONFIG honours train.init ----------------------------------------- */

static double grads_loss(const char *h5) {
    hid_t f = H5Fopen(h5, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    hid_t d = H5Dopen2(f, "loss", H5P_DEFAULT);
    assert_true(d >= 0);
    double v = NAN;
    assert_true(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v) >= 0);
    H5Dclose(d);
    H5Fclose(f);
    return v;
}

/* `qat grads CONFIG` took the gradients at a random init whatever train.init said
 * (5.545 nats instead of the checkpoint's 3.25), without a word. It now starts where
 * `qat train` would: the source's weights, so with the source's own (fp32) forward and
 * the same first batch (same seed, data and batch shape) the loss is the one of
 * `qat grads --checkpoint SOURCE` to the last bit. */
static void grads_honours_train_init(void **state) {
    (void)state;
    char cfg[400], g1[400], g2[400], g3[400], set[700], bad[700];
    snprintf(cfg, sizeof cfg, "%s/gi.yaml", g_tmp);
    snprintf(g1, sizeof g1, "%s/gi-init.h5", g_tmp);
    snprintf(g2, sizeof g2, "%s/gi-src.h5", g_tmp);
    snprintf(g3, sizeof g3, "%s/gi-fresh.h5", g_tmp);
    config(cfg, "gi", 20480, "");
    snprintf(set, sizeof set, "train.init=%s", g_src);
    assert_int_equal(run((char *[]){"grads", cfg, "--set", set, "--out", g1, NULL}), 0);
    assert_int_equal(run((char *[]){"grads", "--checkpoint", g_src, "--out", g2, NULL}), 0);
    assert_int_equal(run((char *[]){"grads", cfg, "--out", g3, NULL}), 0);
    double li = grads_loss(g1), ls = grads_loss(g2), lf = grads_loss(g3);
    printf("  grads loss: train.init %.6f, --checkpoint %.6f, random init %.6f\n", li, ls, lf);
    assert_true(li == ls);
    assert_true(lf - li > FAR_MIN);
    /* a file that is not there is named with the key that gave it */
    snprintf(bad, sizeof bad, "train.init=%s/no-such.h5", g_tmp);
    assert_int_equal(run((char *[]){"grads", cfg, "--set", bad, "--out", g1, NULL}), 2);
    assert_non_null(strstr(g_err, "--set train.init="));
    assert_non_null(strstr(g_err, "no-such.h5: cannot open"));
}

/* ---- the PTQ evaluation changes nothing ----------------------------------------- */

/* All quantizer state of m, concatenated (malloc'd), and its length. */
static float *state_of(qat_model *m, int64_t *len) {
    int ns = qat_model_compress_state_count(m);
    float *buf = NULL;
    *len = 0;
    for (int i = 0; i < ns; i++) {
        char nm[96];
        float *d;
        int64_t n;
        qat_model_compress_state(m, i, nm, &d, &n);
        buf = realloc(buf, sizeof(float) * (size_t)(*len + n));
        memcpy(buf + *len, d, sizeof(float) * (size_t)n);
        *len += n;
    }
    return buf;
}

/* In process: after qat_init_load (which chose the LSQ weight steps) the PTQ
 * and source evaluations leave every quantizer state array as they found it.
 * With LSQ activations this fails when the evaluation's first forward keeps
 * the activation step it set from a held-out batch (lsq_init 0 -> 1): training
 * would then start from another state than without the evaluation. */
static void ptq_evaluation_leaves_the_quantizers_alone(void **state) {
    (void)state;
    char path[400];
    snprintf(path, sizeof path, "%s/inproc.yaml", g_tmp);
    config(path, "inproc", 20480,
           "compress:\n  weights: {format: int4, estimator: lsq}\n  activations: {format: int4, estimator: lsq}\n");
    qat_config *cfg = malloc(sizeof *cfg);
    assert_int_equal(qat_config_load(path, NULL, 0, cfg), 0);
    qat_threads_init(1);
    qat_model_shape sh;
    assert_int_equal(qat_model_shape_from_config(cfg, &sh), 0);
    int B = cfg->train.batch_tokens / sh.seq_len;
    qat_model *m;
    assert_int_equal(qat_model_create(cfg, &sh, B, &m), 0);
    qat_init it;
    assert_int_equal(qat_init_load(&it, g_src, cfg, m), 0);
    assert_false(it.carried);
    assert_int_equal(it.n_searched, 4 * sh.layers);
    assert_true(it.mse_best < it.mse_default);
    int64_t n0, n1;
    float *before = state_of(m, &n0);
    qat_dataset *ds;
    assert_int_equal(qat_dataset_open(&cfg->data, sh.vocab, sh.seq_len, 20480, cfg->seed, &ds), 0);
    qat_tape tp;
    qat_tape_init(&tp, 0);
    int32_t *in = malloc(sizeof(int32_t) * (size_t)(B * sh.seq_len)), *tg = malloc(sizeof(int32_t) * (size_t)(B * sh.seq_len));
    assert_int_equal(qat_init_evaluate(&it, cfg, m, &tp, ds, B, in, tg, NULL), 0);
    assert_true(isfinite(it.ptq_loss) && isfinite(it.source_loss));
    float *after = state_of(m, &n1);
    assert_int_equal(n0, n1);
    assert_true(n0 > 0);
    if (memcmp(before, after, sizeof(float) * (size_t)n0)) fail_msg("the PTQ evaluation changed a quantizer's state");
    free(before), free(after), free(in), free(tg);
    qat_tape_free(&tp);
    qat_dataset_free(ds);
    qat_init_free(&it);
    qat_model_free(m);
    free(cfg);
}

/* ---- SHA-256 ------------------------------------------------------------------ */

static void sha256_matches_fips_examples(void **state) {
    (void)state;
    struct {
        const char *msg;
        const char *hex;
    } v[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        qat_sha256 s;
        qat_sha256_init(&s);
        /* in pieces of 1 byte and the rest, across block boundaries */
        size_t n = strlen(v[i].msg);
        qat_sha256_update(&s, v[i].msg, n < 1 ? n : 1);
        if (n > 1) qat_sha256_update(&s, v[i].msg + 1, n - 1);
        char hex[65];
        qat_sha256_hex(&s, hex);
        assert_string_equal(hex, v[i].hex);
    }
    /* one million 'a' in chunks of 1000 */
    qat_sha256 s;
    qat_sha256_init(&s);
    char a[1000];
    memset(a, 'a', sizeof a);
    for (int i = 0; i < 1000; i++) qat_sha256_update(&s, a, sizeof a);
    char hex[65];
    qat_sha256_hex(&s, hex);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sha256_matches_fips_examples),
        cmocka_unit_test(init_starts_at_the_ptq_loss),
        cmocka_unit_test(init_aq_starts_at_the_ptq_loss),
        cmocka_unit_test(init_carries_aq_codebooks_into_pv),
        cmocka_unit_test(init_carries_aq2_codebooks_into_pv),
        cmocka_unit_test(init_from_pv_starts_at_its_codes),
        cmocka_unit_test(init_from_aq_pv_into_ste_starts_at_its_codes),
        cmocka_unit_test(init_from_pv_into_pv_lr0_starts_at_its_codes),
        cmocka_unit_test(mismatched_or_bad_files_are_refused),
        cmocka_unit_test(resume_of_an_init_run_is_bit_exact),
        cmocka_unit_test(sigint_in_the_ptq_evaluation),
        cmocka_unit_test(config_key_train_init_is_init),
        cmocka_unit_test(grads_honours_train_init),
        cmocka_unit_test(init_recorded_and_resumed),
        cmocka_unit_test(relative_init_resumed_elsewhere),
        cmocka_unit_test(ptq_evaluation_leaves_the_quantizers_alone),
    };
    /* QAT_TEST_FILTER=PATTERN runs only the matching tests (cmocka's glob) */
    if (getenv("QAT_TEST_FILTER")) cmocka_set_test_filter(getenv("QAT_TEST_FILTER"));
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

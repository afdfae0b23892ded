/*
 * tests/test_backward_e2e.c — the quantized backward through the `qat` binary
 * (issue 18's acceptance, docs/formats.md "The backward pass"):
 *
 *  - W4A4 (QuEST int4, trust) with a 4-bit stochastic-rounding backward and with a
 *    round-to-nearest one both train on the English corpus: the loss falls far
 *    below its start and below a threshold set from measured seeds and threads;
 *    run.h5 records the backward scheme;
 *  - `--stop-after` then `--resume` equals an uninterrupted run bit for bit (every
 *    checkpoint array, every logged loss), in fp32 and, where the CPU has them,
 *    with bf16 products; so does a run SIGKILLed after a checkpoint and resumed, with
 *    a 4-bit sr backward and with an rtn one;
 *  - `qat grads --compare-backward fp32` reports the cosine of a quantized backward
 *    against the unquantized one (8-bit closer than 4-bit), and bad input exits 2.
 */
#include <fcntl.h>
#include <signal.h>
#include <hdf5.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "testutil.h"

#include "runlog/checkpoint.h"
#include "runlog/runlog.h"
#include "ckpt_compare.h"

static char g_tmp[256];
static char g_err[8192];

static void write_file(const char *path, const char *text) { assert_int_equal(qat_test_write_text(path, text), 0); }

static int run(char *const args[]) {
    assert_non_null(getenv("QAT_BIN"));
    return qat_test_wait_stderr(qat_test_spawn(g_tmp, args), g_tmp, g_err, sizeof g_err);
}

static int setup(void **state) {
    (void)state;
    return qat_test_mkdtemp(g_tmp, sizeof g_tmp, "backward_e2e");
}

static int teardown(void **state) {
    (void)state;
    return qat_test_rmtree(g_tmp);
}

/* A W4A4 config on English text with the given backward and extra lines. */
static void w4a4_config(char *buf, size_t n, int seed, int threads, int steps, const char *rounding, int hadamard,
                        const char *extra) {
    snprintf(buf, n,
             "name: r\n"
             "seed: %d\n"
             "threads: %d\n"
             "model: {preset: s1, seq_len: 64}\n"
             "data: {source: english}\n"
             "train: {tokens: %d, batch_tokens: 1024, lr: 3e-3, eval_every: 0, eval_tokens: 8192,\n"
             "        checkpoint_every: 10, log_every: 10}\n"
             "compress:\n"
             "  weights: {format: int4, estimator: trust}\n"
             "  activations: {format: int4, estimator: trust}\n"
             "  gradients: {format: int4, rounding: %s, hadamard: %d}\n%s",
             seed, threads, steps * 1024, rounding, hadamard, extra);
}

/* Threads per run: QAT_TEST_THREADS when set, else 1. */
static int threads(void) {
    const char *t = getenv("QAT_TEST_THREADS");
    return t ? atoi(t) : 1;
}

/*
 * Learning. 150 steps of s1 (W4A4 QuEST int4 + trust, 4-bit backward with a 32-block
 * rotation) on English; final validation loss (nats/token) measured at seeds 0–4 with
 * the backward's int4 grid k·a/7, |k| <= 7 (the symmetric integer grid with zero,
 * docs/formats.md "The backward pass"):
 *   sr:  2.3540 2.4139 2.3734 2.3611 2.4189   mean 2.3843, sd 0.0302
 *   rtn: 2.3460 2.4069 2.3853 2.3669 2.4267   mean 2.3864, sd 0.0319
 * (AMD Zen 4, AVX-512, 1 thread). On the 16-level grid without zero that the backward
 * used before, the same runs gave sr 2.3448 2.3891 2.3655 2.3623 2.4194 (mean 2.3762,
 * sd 0.0288) and rtn 2.3418 2.4180 2.3748 2.3562 2.4078 (mean 2.3797, sd 0.0327), on
 * that Zen 4 and on the Zen 5 they were first measured on alike: 15 levels are 7%
 * coarser than 16 and these dense operands have no zeros to gain, so the losses rose
 * by ~0.007, a quarter of a seed's sd. Threads and CPUs move the last bits and so the
 * run: on the Zen 5, seed 0 (sr) gave the same bits at 2 threads; on the Zen 4 it does
 * not (2.3459; the old grid's 2.3440 against 2.3448 at 1 thread); the AVX2 kernels of
 * the portable build (QAT_KERNELS=generic) end seed 0 at 2.3493 (sr) and 2.3474 (rtn),
 * and on a Zen 3 the old grid's seed 0 ended at 2.3438 and 2.3482, all within a third
 * of a seed's sd. The thresholds are mean + 3.1·sd of the new grid's runs (one-sided
 * false failure < 1/1000 under a normal model with the measured sd): sr 2.478, rtn
 * 2.485 (the old grid's runs gave 2.466 and 2.481 by the same rule), far below the
 * start (ln 256 = 5.55) and the corpus' unigram entropy 3.237.
 */
#define THRESH_SR 2.478
#define THRESH_RTN 2.485
static void test_w4a4_sr_and_rtn_backward_learn(void **state) {
    (void)state;
    const char *rnd[2] = {"sr", "rtn"};
    const double thresh[2] = {THRESH_SR, THRESH_RTN};
    for (int k = 0; k < 2; k++) {
        char text[1024], cfg[512], out[512], runp[600];
        w4a4_config(text, sizeof text, 0, threads(), 150, rnd[k], 32, "");
        snprintf(cfg, sizeof cfg, "%s/learn_%s.yaml", g_tmp, rnd[k]);
        snprintf(out, sizeof out, "%s/learn_%s", g_tmp, rnd[k]);
        snprintf(runp, sizeof runp, "%s/r/run.h5", out);
        write_file(cfg, text);
        assert_int_equal(run((char *[]){"train", cfg, "--out", out, "--quiet", NULL}), 0);
        qat_runlog_summary s;
        assert_int_equal(qat_runlog_read_final(runp, &s), 0);
        assert_string_equal(s.grad_format, "int4");
        assert_string_equal(s.grad_rounding, rnd[k]);
        assert_int_equal(s.grad_hadamard, 32);
        double *loss;
        int64_t n;
        assert_int_equal(qat_runlog_read_series(runp, "train/loss", &loss, &n), 0);
        printf("  int4 %s backward: first train loss %.4f, final validation loss %.4f (threshold %.4f)\n", rnd[k],
               loss[0], s.final.val_loss, thresh[k]);
        assert_true(loss[0] > 5.0);                      /* ln 256 = 5.55 at the init */
        assert_true(s.final.val_loss < loss[0] - 2.0);   /* the loss falls */
        assert_true(s.final.val_loss < thresh[k]);
        free(loss);
    }
}

/* ---- resume ------------------------------------------------------------------ */

/* `set`: a --set override for all three runs (NULL: none). */
static void resume_is_bit_exact(const char *set, const char *tag) {
    char text[1024], cfg[512], outa[512], outb[512], cka[600], ckb[600], runa[600], runb[600];
    w4a4_config(text, sizeof text, 3, 2, 40, "sr", 32, "");
    char *s1 = set ? "--set" : NULL, *s2 = (char *)set;
    snprintf(cfg, sizeof cfg, "%s/resume_%s.yaml", g_tmp, tag);
    write_file(cfg, text);
    snprintf(outa, sizeof outa, "%s/a_%s", g_tmp, tag);
    snprintf(outb, sizeof outb, "%s/b_%s", g_tmp, tag);
    snprintf(cka, sizeof cka, "%s/r/ckpt.h5", outa);
    snprintf(ckb, sizeof ckb, "%s/r/ckpt.h5", outb);
    snprintf(runa, sizeof runa, "%s/r/run.h5", outa);
    snprintf(runb, sizeof runb, "%s/r/run.h5", outb);
    assert_int_equal(run((char *[]){"train", cfg, "--out", outa, "--quiet", s1, s2, NULL}), 0);
    assert_int_equal(run((char *[]){"train", cfg, "--out", outb, "--quiet", "--stop-after", "17", s1, s2, NULL}), 0);
    qat_runlog_summary s;
    assert_int_equal(qat_runlog_read_final(runb, &s), 0);
    assert_string_equal(s.status, "running");
    /* every part at two threads, the parallel paths included. The same run resumed at
     * another thread count is not bit-exact on every CPU: the products' sums follow the
     * thread count (docs/model.md; on a Zen 3 oneDNN's two-thread AVX2 products added
     * lm_head's gradient in another order even with the row split off). That the
     * backward's draws do not depend on the thread count is test_compress_gradq's
     * (tiles at 1 and 2 threads, element for element). */
    int rc = run((char *[]){"train", cfg, "--out", outb, "--resume", "--quiet", s1, s2, NULL});
    assert_int_equal(rc, 0);
    qat_ckpt_file *fa, *fb;
    assert_int_equal(qat_ckpt_open(cka, &fa), 0);
    assert_int_equal(qat_ckpt_open(ckb, &fb), 0);
    compare_group(fa, fb, "params");
    compare_group(fa, fb, "optim");
    qat_ckpt_close(fa);
    qat_ckpt_close(fb);
    compare_series(runa, runb, "train/loss");
    compare_series(runa, runb, "train/grad_norm");
    compare_series(runa, runb, "eval/loss");
    printf("  %s: stopped after 17 steps at 2 threads, resumed: bit-identical to the uninterrupted run\n", tag);
}

static void test_resume_after_stop_is_bit_exact(void **state) {
    (void)state;
    resume_is_bit_exact(NULL, "fp32");
    if (system("grep -qwE 'avx512_bf16|amx_bf16' /proc/cpuinfo") != 0) {
        printf("  no native bf16 on this CPU: the bf16 resume is skipped\n");
        return;
    }
    resume_is_bit_exact("train.precision=bf16", "bf16");
}

/* The step of ckpt.h5's last checkpoint, or -1 while there is none (or it is being
 * written: the open fails and the poll tries again). */
static int64_t ckpt_step(const char *path) {
    if (access(path, F_OK)) return -1;
    qat_ckpt_file *f;
    if (qat_ckpt_open(path, &f)) return -1;
    qat_ckpt_state st;
    int rc = qat_ckpt_read_state(f, &st);
    qat_ckpt_close(f);
    return rc ? -1 : st.step;
}

/* One W4A4 run with the given backward killed (SIGKILL, no chance to clean up)
 * after its checkpoint at step 10 or later, then `--resume`d: every checkpoint
 * array and every logged loss equal an uninterrupted run's bit for bit. The
 * backward's draws are keyed by (layer, step, operand, element), so the resumed
 * steps redraw exactly what the uninterrupted run drew. */
static void sigkill_resume_is_bit_exact(const char *rounding, int hadamard) {
    char text[1024], cfg[512], outa[512], outb[512], cka[600], ckb[600], runa[600], runb[600];
    /* 60 steps at checkpoint_every 10: the kill lands mid-run with margin */
    w4a4_config(text, sizeof text, 5, threads(), 60, rounding, hadamard, "");
    snprintf(cfg, sizeof cfg, "%s/kill_%s.yaml", g_tmp, rounding);
    write_file(cfg, text);
    snprintf(outa, sizeof outa, "%s/ka_%s", g_tmp, rounding);
    snprintf(outb, sizeof outb, "%s/kb_%s", g_tmp, rounding);
    snprintf(cka, sizeof cka, "%s/r/ckpt.h5", outa);
    snprintf(ckb, sizeof ckb, "%s/r/ckpt.h5", outb);
    snprintf(runa, sizeof runa, "%s/r/run.h5", outa);
    snprintf(runb, sizeof runb, "%s/r/run.h5", outb);
    assert_int_equal(run((char *[]){"train", cfg, "--out", outa, "--quiet", NULL}), 0);

    pid_t pid = qat_test_spawn(g_tmp, (char *[]){"train", cfg, "--out", outb, "--quiet", NULL});
    assert_true(pid > 0);
    int64_t st = -1;
    for (int i = 0; i < 60000 && st < 10; i++) {
        usleep(5000);
        st = ckpt_step(ckb);
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) fail_msg("the run finished before it could be killed");
    }
    assert_true(st >= 10);
    kill(pid, SIGKILL);
    assert_int_equal(qat_test_wait(pid), 128 + SIGKILL);
    int64_t killed_at = ckpt_step(ckb);
    qat_runlog_summary s;
    assert_int_equal(qat_runlog_read_final(runb, &s), 0);
    assert_string_equal(s.status, "running");
    assert_false(s.has_final);
    assert_true(killed_at >= 10 && killed_at < 60);

    assert_int_equal(run((char *[]){"train", cfg, "--out", outb, "--resume", "--quiet", NULL}), 0);
    compare_runs(runa, runb, cka, ckb);
    qat_runlog_summary sa, sb;
    assert_int_equal(qat_runlog_read_final(runa, &sa), 0);
    assert_int_equal(qat_runlog_read_final(runb, &sb), 0);
    assert_string_equal(sb.status, "completed");
    assert_true(sa.has_final && sb.has_final);
    assert_memory_equal(&sa.final.val_loss, &sb.final.val_loss, sizeof(double));
    assert_int_equal(sa.final.steps, sb.final.steps);
    printf("  int4 %s h%d backward: killed with the checkpoint at step %lld, resumed: bit-identical to the "
           "uninterrupted run\n", rounding, hadamard, (long long)killed_at);
}

/* W4A4 with a 4-bit stochastic-rounding backward (rotated) and with a round-to-
 * nearest one (unrotated): SIGKILL mid-run, --resume, same bits. */
static void test_sigkill_resume_sr_and_rtn_backward(void **state) {
    (void)state;
    sigkill_resume_is_bit_exact("sr", 32);
    sigkill_resume_is_bit_exact("rtn", 0);
}

/* ---- qat grads --compare-backward ----------------------------------------------- */

static double read_scalar(hid_t f, const char *name) {
    double v = NAN;
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    assert_true(d >= 0);
    assert_true(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v) >= 0);
    H5Dclose(d);
    return v;
}

static void test_grads_compare_backward(void **state) {
    (void)state;
    char text[1024], cfg[512], o8[512], o4[512], o4r[512];
    w4a4_config(text, sizeof text, 0, 1, 10, "sr", 32, "");
    snprintf(cfg, sizeof cfg, "%s/g.yaml", g_tmp);
    write_file(cfg, text);
    snprintf(o8, sizeof o8, "%s/g8.h5", g_tmp);
    snprintf(o4, sizeof o4, "%s/g4.h5", g_tmp);
    snprintf(o4r, sizeof o4r, "%s/g4r.h5", g_tmp);
    /* the config's int4 sr backward against fp32, and int8 sr against fp32 */
    assert_int_equal(run((char *[]){"grads", cfg, "--out", o4, "--compare-backward", "fp32", NULL}), 0);
    assert_int_equal(run((char *[]){"grads", cfg, "--out", o8, "--set", "compress.gradients.format=int8",
                                    "--compare-backward", "fp32", NULL}), 0);
    assert_int_equal(run((char *[]){"grads", cfg, "--out", o4r, "--set", "compress.gradients.rounding=rtn",
                                    "--compare-backward", "fp32", NULL}), 0);
    const char *names[] = {"model.layers.0.self_attn.q_proj.weight", "model.layers.0.mlp.down_proj.weight",
                           "model.layers.1.self_attn.o_proj.weight", "model.layers.1.mlp.up_proj.weight"};
    hid_t f4 = H5Fopen(o4, H5F_ACC_RDONLY, H5P_DEFAULT), f8 = H5Fopen(o8, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t f4r = H5Fopen(o4r, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f4 >= 0 && f8 >= 0 && f4r >= 0);
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char p[200];
        snprintf(p, sizeof p, "compare/cosine/%s", names[i]);
        double c4 = read_scalar(f4, p), c8 = read_scalar(f8, p), c4r = read_scalar(f4r, p);
        printf("  %-42s cosine vs fp32 backward: int8 sr %.5f, int4 sr %.5f, int4 rtn %.5f\n", names[i], c8, c4, c4r);
        assert_true(c8 > 0.999 && c8 < 1.0);
        assert_true(c4 > 0.5 && c4 < c8);
        assert_true(c4r > 0.5 && c4r < c8);
    }
    /* the same forward: the losses agree exactly */
    double l4 = read_scalar(f4, "loss"), l4c = read_scalar(f4, "compare/loss");
    assert_memory_equal(&l4, &l4c, sizeof l4);
    H5Fclose(f4);
    H5Fclose(f8);
    H5Fclose(f4r);

    char bad[512];
    snprintf(bad, sizeof bad, "%s/bad.h5", g_tmp);
    assert_int_equal(run((char *[]){"grads", cfg, "--out", bad, "--compare-backward", "sp50", NULL}), 2);
    assert_non_null(strstr(g_err, "compress.gradients.format"));
    assert_int_equal(run((char *[]){"grads", cfg, "--out", bad, "--compare-backward", "fp32", "--compare", "int4",
                                    NULL}), 2);
    assert_int_equal(access(bad, F_OK), -1);
    /* a training config the backward cannot use is refused up front, naming the key */
    char badcfg[512], badout[512];
    snprintf(badcfg, sizeof badcfg, "%s/badh.yaml", g_tmp);
    snprintf(badout, sizeof badout, "%s/badruns", g_tmp);
    w4a4_config(text, sizeof text, 0, 1, 10, "sr", 128, ""); /* 128 does not divide seq_len 64 */
    write_file(badcfg, text);
    assert_int_equal(run((char *[]){"train", badcfg, "--out", badout, "--quiet", NULL}), 2);
    printf("  %s", g_err);
    assert_non_null(strstr(g_err, "compress.gradients.hadamard"));
    assert_non_null(strstr(g_err, "badh.yaml"));
}

/* A checkpoint whose quantizers carry state (learned aq codebooks and codes, PV
 * buffers) compared with its own fp32 backward: the second model must be the
 * checkpoint's model too, so the losses agree exactly and every cosine is 1. The
 * compared model used to start from fresh quantizer state (aq2x4g4+pv: loss 3.229
 * against 3.657, cosines down to -0.19). */
static void test_grads_compare_backward_checkpoint_state(void **state) {
    (void)state;
    const char *w[] = {"{format: aq2x4g4, estimator: pv}", "{format: int4, estimator: pv}"};
    for (int k = 0; k < 2; k++) {
        char text[1024], cfg[512], out[512], ck[600], g[512];
        snprintf(text, sizeof text,
                 "name: r\nseed: 0\nthreads: 1\nmodel: {preset: s1, seq_len: 64}\ndata: {source: english}\n"
                 "train: {tokens: 10240, batch_tokens: 1024, lr: 3e-3, eval_every: 0, eval_tokens: 8192,\n"
                 "        checkpoint_every: 10, log_every: 10}\n"
                 "compress:\n  weights: %s\n",
                 w[k]);
        snprintf(cfg, sizeof cfg, "%s/st%d.yaml", g_tmp, k);
        snprintf(out, sizeof out, "%s/st%d", g_tmp, k);
        snprintf(ck, sizeof ck, "%s/r/ckpt.h5", out);
        snprintf(g, sizeof g, "%s/st%d.h5", g_tmp, k);
        write_file(cfg, text);
        assert_int_equal(run((char *[]){"train", cfg, "--out", out, "--quiet", NULL}), 0);
        assert_int_equal(run((char *[]){"grads", "--checkpoint", ck, "--out", g, "--compare-backward", "fp32", NULL}),
                         0);
        hid_t f = H5Fopen(g, H5F_ACC_RDONLY, H5P_DEFAULT);
        assert_true(f >= 0);
        double l = read_scalar(f, "loss"), lc = read_scalar(f, "compare/loss");
        printf("  %s: loss %.6f, compare loss %.6f\n", w[k], l, lc);
        assert_memory_equal(&l, &lc, sizeof l);
        hid_t gc = H5Gopen2(f, "compare/cosine", H5P_DEFAULT);
        assert_true(gc >= 0);
        H5G_info_t info;
        assert_true(H5Gget_info(gc, &info) >= 0);
        assert_true(info.nlinks > 0);
        for (hsize_t i = 0; i < info.nlinks; i++) {
            char name[200], p[260];
            assert_true(H5Lget_name_by_idx(gc, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name, H5P_DEFAULT) > 0);
            snprintf(p, sizeof p, "compare/cosine/%s", name);
            double c = read_scalar(f, p);
            if (!(c >= 0.9999)) printf("  %s: cosine %.6f\n", p, c);
            assert_true(c >= 0.9999);
        }
        H5Gclose(gc);
        H5Fclose(f);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_w4a4_sr_and_rtn_backward_learn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_after_stop_is_bit_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigkill_resume_sr_and_rtn_backward, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grads_compare_backward, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grads_compare_backward_checkpoint_state, setup, teardown),
    };
    /* QAT_TEST_FILTER=PATTERN runs only the matching tests (cmocka's glob) */
    if (getenv("QAT_TEST_FILTER")) cmocka_set_test_filter(getenv("QAT_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * bench/bench_train.c — training speed: tokens/s, achieved GFLOP/s, and the
 * fraction of the oneDNN f32 GEMM peak measured in the same process.
 *
 *   bench_train [--threads N] [--steps S] [--precision fp32|bf16] [--no-peak] [--format W] [--act-format A] [--estimator E] [--ratio R]
 *               [--grad-format G] [--grad-rounding rtn|sr] [--grad-hadamard B] MODEL…
 *   MODEL = dDIM/lLAYERS/hHEADS/tSEQ, e.g. d256/l6/h8/t256
 *
 * --grad-*: compress.gradients of the measured (compressed) model, never of the dense
 * baseline of --ratio: a fully quantized step against the dense one (issue 18's ≤ 1.3×).
 *
 * --ratio R: keep an fp32 model and the compressed model side by side and time their
 * steps alternately, R pairs; report the median step of each and the median and
 * quartiles of the R paired ratios (pairing cancels the machine's drifts, which on a
 * shared machine are as large as the effect; the median drops single outliers).
 *
 * A step is what training does: forward, backward, clipping, AdamW, the
 * quantizers' after-step hook; batches are random token ids (data loading is
 * not timed). FLOPs per step = 3 × forward FLOPs (model/presets.c: every matmul
 * weight twice, attention scores and values at full length T, as computed).
 * The GEMM peak is the best of the model's own linear-layer shapes run alone.
 * Peak memory is the process's maximum resident set.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "autograd/gemm.h"
#include "autograd/tape.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/threads.h"
#include "model/llama.h"
#include "optim/adamw.h"

static const char *g_precision = "fp32"; /* --precision: train.precision of every measured model */
static qat_compress_grad g_grad = {"fp32", "rtn", 0}; /* --grad-*: the compressed model's backward */

/* Best GFLOP/s of x(M,K)·W(N,K)ᵀ over the shapes of one block, in the precision measured. */
static double gemm_peak(int64_t M, int64_t C, int64_t H) {
    int64_t shapes[4][2] = {{3 * C, C}, {C, C}, {2 * H, C}, {C, H}};
    double best = 0;
    for (int s = 0; s < 4; s++) {
        int64_t N = shapes[s][0], K = shapes[s][1];
        float *a = qat_xaligned((size_t)(M * K) * 4), *b = qat_xaligned((size_t)(N * K) * 4), *c = qat_xaligned((size_t)(M * N) * 4);
        for (int64_t i = 0; i < M * K; i++) a[i] = 0.01f * (float)(i % 97);
        for (int64_t i = 0; i < N * K; i++) b[i] = 0.01f * (float)(i % 89);
        uint16_t *ab = qat_xaligned((size_t)(M * K) * 2), *bb = qat_xaligned((size_t)(N * K) * 2);
        qat_to_bf16(a, ab, M * K);
        qat_to_bf16(b, bb, N * K);
        int bf = !strcmp(g_precision, "bf16");
#define PEAK_GEMM() (bf ? qat_gemm_bf16(0, 1, M, N, K, ab, K, bb, K, c, N, 0) : qat_gemm(0, 1, M, N, K, a, K, b, K, c, N, 0))
        for (int w = 0; w < 3; w++) PEAK_GEMM();
        int reps = 20;
        double t0 = qat_now_s();
        for (int r = 0; r < reps; r++) PEAK_GEMM();
#undef PEAK_GEMM
        free(ab); free(bb);
        double g = 2.0 * M * N * K * reps / (qat_now_s() - t0) / 1e9;
        if (g > best) best = g;
        free(a); free(b); free(c);
    }
    return best;
}

typedef struct {
    double step_ms, tok_s, gflops, state_mib, act_mib; /* one configuration's figures */
} bench_result;

/* One model under training: everything a step needs, kept between steps. */
typedef struct {
    qat_model_shape s; /* the model's dimensions */
    qat_model *m;      /* parameters, gradients, quantizers */
    qat_adamw opt;     /* optimizer state */
    qat_tape tp;       /* the step's graph and activation arena */
    int B, T, step;    /* sequences per step, length, steps taken */
    int32_t *in, *tg;  /* (B, T) random token ids and targets */
} bench_model;

/* Build model dDIM/lL/hH/tT under formats wf/af (estimator est on the compressed
 * sides); QAT_EINPUT for a bad model or format. */
static int bench_model_create(bench_model *bm, int d, int l, int h, int t, int tokens_step, const char *wf,
                              const char *af, const char *est) {
    qat_config cfg;
    qat_config_defaults(&cfg);
    cfg.model.preset[0] = 0;
    snprintf(cfg.train.precision, sizeof cfg.train.precision, "%s", g_precision);
    cfg.model.layers = l; cfg.model.dim = d; cfg.model.heads = h; cfg.model.seq_len = t; cfg.model.vocab = 256;
    snprintf(cfg.weights.format, sizeof cfg.weights.format, "%s", wf);
    snprintf(cfg.activations.format, sizeof cfg.activations.format, "%s", af);
    /* the estimator applies to the compressed sides only */
    if (strcmp(wf, "fp32")) snprintf(cfg.weights.estimator, sizeof cfg.weights.estimator, "%s", est);
    if (strcmp(af, "fp32")) snprintf(cfg.activations.estimator, sizeof cfg.activations.estimator, "%s", est);
    if (est) cfg.gradients = g_grad; /* est is NULL for the dense baseline */
    QAT_TRY(qat_model_shape_from_config(&cfg, &bm->s));
    bm->B = tokens_step / t;
    bm->T = t;
    bm->step = 0;
    QAT_TRY(qat_model_create(&cfg, &bm->s, bm->B, &bm->m));
    qat_adamw_init(&bm->opt, bm->m->views, bm->m->n_views, &cfg.train);
    qat_tape_init(&bm->tp, 0);
    int n = bm->B * t;
    bm->in = qat_xmalloc((size_t)n * 4);
    bm->tg = qat_xmalloc((size_t)n * 4);
    qat_rng r = qat_rng_make(1, 2);
    for (int i = 0; i < n; i++) { bm->in[i] = (int32_t)qat_rng_below(&r, 256); bm->tg[i] = (int32_t)qat_rng_below(&r, 256); }
    return QAT_OK;
}

/* One training step as training takes it; returns its wall time in seconds. */
static double bench_model_step(bench_model *bm) {
    double t0 = qat_now_s();
    qat_tape_reset(&bm->tp);
    qat_model_zero_grad(bm->m, bm->tp.epoch);
    qat_tensor *loss = qat_model_forward(bm->m, &bm->tp, bm->in, bm->tg, bm->B, bm->step);
    qat_tape_backward(&bm->tp, loss);
    qat_clip_grad_norm(bm->m->views, bm->m->n_views, 1.0);
    qat_adamw_step(&bm->opt, 1e-3);
    qat_model_after_step(bm->m, bm->step);
    bm->step++;
    return qat_now_s() - t0;
}

static void bench_model_free(bench_model *bm) {
    free(bm->in);
    free(bm->tg);
    qat_tape_free(&bm->tp);
    qat_adamw_free(&bm->opt);
    qat_model_free(bm->m);
}

/* Time `steps` training steps (after two warm-up steps: primitives, arena) of model
 * dDIM/lL/hH/tT under formats wf/af; QAT_EINPUT for a bad model or format. */
static int measure(int d, int l, int h, int t, int tokens_step, const char *wf, const char *af, const char *est,
                   int steps, bench_result *res) {
    bench_model bm;
    QAT_TRY(bench_model_create(&bm, d, l, h, t, tokens_step, wf, af, est));
    for (int st = 0; st < 2; st++) bench_model_step(&bm);
    double total = 0;
    for (int st = 0; st < steps; st++) total += bench_model_step(&bm);
    double dt = total / steps;
    res->step_ms = dt * 1e3;
    res->tok_s = bm.B * t / dt;
    res->gflops = 3.0 * qat_model_flops_per_token(&bm.s) * bm.B * t / dt / 1e9;
    res->state_mib = (double)bm.m->n_total * 4 * 4 / 1048576.0; /* params, grads, m, v */
    res->act_mib = (double)bm.tp.arena.high_water / 1048576.0;
    bench_model_free(&bm);
    return QAT_OK;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int threads = 2, steps = 10, tokens_step = 4096, ratio = 0, peak_on = 1;
    const char *wf = "fp32", *af = "fp32", *est = "";
    int first_model = argc;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--format") && i + 1 < argc) wf = argv[++i];
        else if (!strcmp(argv[i], "--act-format") && i + 1 < argc) af = argv[++i];
        else if (!strcmp(argv[i], "--estimator") && i + 1 < argc) est = argv[++i];
        else if (!strcmp(argv[i], "--tokens") && i + 1 < argc) tokens_step = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--ratio") && i + 1 < argc) ratio = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--grad-format") && i + 1 < argc)
            snprintf(g_grad.format, sizeof g_grad.format, "%s", argv[++i]);
        else if (!strcmp(argv[i], "--grad-rounding") && i + 1 < argc)
            snprintf(g_grad.rounding, sizeof g_grad.rounding, "%s", argv[++i]);
        else if (!strcmp(argv[i], "--grad-hadamard") && i + 1 < argc) g_grad.hadamard = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-peak")) peak_on = 0; /* profiling: time only the steps */
        else if (!strcmp(argv[i], "--precision") && i + 1 < argc) g_precision = argv[++i];
        else { first_model = i; break; }
    }
    if (first_model >= argc || steps < 1) {
        fprintf(stderr, "usage: bench_train [--threads N] [--steps S] [--format W] [--act-format A] [--estimator E] "
                        "[--ratio R] dDIM/lL/hH/tT...\n");
        return 2;
    }
    qat_threads_init(threads);
    if (ratio > 0) {
        printf("| model | threads | precision | formats | fp32 step ms (median of %d) | compressed step ms | ratio (median of pairs) | quartiles |\n", ratio);
        printf("|---|---|---|---|---|---|---|---|\n");
    } else {
        printf("| model | threads | precision | formats | tok/s | GFLOP/s | GEMM peak GFLOP/s | %% of peak | step ms | peak RSS MiB | params+grads+adam+acts MiB |\n");
        printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
    }
    for (int mi = first_model; mi < argc; mi++) {
        int d, l, h, t;
        if (sscanf(argv[mi], "d%d/l%d/h%d/t%d", &d, &l, &h, &t) != 4) {
            fprintf(stderr, "bench_train: bad model '%s', expected dDIM/lLAYERS/hHEADS/tSEQ\n", argv[mi]);
            return 2;
        }
        bench_result res;
        if (ratio > 0) {
            /* both models resident; dense and compressed steps alternate one by one, so
             * each ratio pairs two steps a fraction of a second apart */
            bench_model dense, comp;
            if (bench_model_create(&dense, d, l, h, t, tokens_step, "fp32", "fp32", NULL) ||
                bench_model_create(&comp, d, l, h, t, tokens_step, wf, af, est))
                return qat_report(2);
            for (int st = 0; st < 2; st++) {
                bench_model_step(&dense);
                bench_model_step(&comp);
            }
            double *bt = qat_xmalloc(sizeof(double) * (size_t)ratio * 3), *ct = bt + ratio, *rt = ct + ratio;
            for (int k = 0; k < ratio; k++) {
                bt[k] = bench_model_step(&dense);
                ct[k] = bench_model_step(&comp);
                rt[k] = ct[k] / bt[k];
            }
            qsort(bt, (size_t)ratio, sizeof *bt, cmp_double);
            qsort(ct, (size_t)ratio, sizeof *ct, cmp_double);
            qsort(rt, (size_t)ratio, sizeof *rt, cmp_double);
            printf("| %s | %d | %s | %s/%s %s | %.1f | %.1f | %.3f | %.3f–%.3f |\n", argv[mi], threads, g_precision, wf, af, est,
                   1e3 * bt[ratio / 2], 1e3 * ct[ratio / 2], rt[ratio / 2], rt[ratio / 4], rt[(3 * ratio) / 4]);
            fflush(stdout);
            free(bt);
            bench_model_free(&dense);
            bench_model_free(&comp);
            continue;
        }
        if (measure(d, l, h, t, tokens_step, wf, af, est, steps, &res)) return qat_report(2);
        qat_model_shape s = {.dim = d, .hidden = qat_model_hidden(d)};
        double peak = peak_on ? gemm_peak((int64_t)tokens_step, d, s.hidden) : NAN;
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        printf("| %s | %d | %s | %s/%s %s | %.0f | %.1f | %.1f | %.1f%% | %.1f | %.0f | %.0f |\n", argv[mi], threads, g_precision, wf, af,
               est, res.tok_s, res.gflops, peak, 100 * res.gflops / peak, res.step_ms, ru.ru_maxrss / 1024.0,
               res.state_mib + res.act_mib);
        fflush(stdout);
    }
    return 0;
}

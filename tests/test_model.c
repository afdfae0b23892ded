/*
 * tests/test_model.c — the transformer as a whole: parameter counts of the
 * presets, names and layouts of the views, and the gradient of the full
 * 2-layer model's loss against finite differences for every parameter array.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/config.h"
#include "core/error.h"
#include "core/rng.h"
#include "autograd/gemm.h"
#include "compress/quantizer.h"
#include "model/llama.h"
#include "optim/adamw.h"

static void test_presets_count(void **state) {
    (void)state;
    const char *names[8] = {"s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8"};
    int64_t prev = 0;
    for (int i = 0; i < 8; i++) {
        qat_model_shape s;
        assert_int_equal(qat_model_preset(names[i], &s), 0);
        int64_t d = s.dim, h = s.hidden;
        assert_int_equal(h, 32 * (int64_t)ceil((8.0 * d / 3.0) / 32.0));
        int64_t n = qat_model_count_params(&s);
        assert_int_equal(n, s.layers * (4 * d * d + 3 * d * h + 2 * d) + d);
        int hd = s.dim / s.heads;
        assert_true(hd == 16 || hd == 32);
        if (prev) assert_true(n > 1.6 * prev && n < 2.5 * prev); /* roughly doubling */
        prev = n;
    }
    qat_model_shape s;
    assert_int_equal(qat_model_preset("s1", &s), 0);
    assert_true(qat_model_count_params(&s) > 20000 && qat_model_count_params(&s) < 30000);
    assert_int_equal(qat_model_preset("s9", &s), 2);
}

static void tiny_config(qat_config *cfg) {
    qat_config_defaults(cfg);
    cfg->model.preset[0] = 0;
    cfg->model.layers = 2;
    cfg->model.dim = 16;
    cfg->model.heads = 2;
    cfg->model.vocab = 11;
    cfg->model.seq_len = 5;
    cfg->seed = 3;
}

static void test_views_and_names(void **state) {
    (void)state;
    qat_config cfg;
    tiny_config(&cfg);
    qat_model_shape s;
    assert_int_equal(qat_model_shape_from_config(&cfg, &s), 0);
    qat_model *m;
    assert_int_equal(qat_model_create(&cfg, &s, 2, &m), 0);
    int64_t total = 0, nonemb = 0;
    for (int i = 0; i < m->n_views; i++) {
        total += m->views[i].n;
        if (strcmp(m->views[i].name, "model.embed_tokens.weight") && strcmp(m->views[i].name, "lm_head.weight"))
            nonemb += m->views[i].n;
    }
    assert_int_equal(total, m->n_total);
    assert_int_equal(nonemb, m->n_params);
    assert_string_equal(m->views[2].name, "model.layers.0.self_attn.q_proj.weight");
    assert_int_equal(m->views[2].shape[0], 16);
    assert_string_equal(m->views[8].name, "model.layers.0.mlp.up_proj.weight");
    assert_int_equal(m->views[8].shape[0], s.hidden);
    assert_string_equal(m->views[9].name, "model.layers.0.mlp.down_proj.weight");
    assert_int_equal(m->views[9].shape[1], s.hidden);
    assert_true(m->views[2].decay && !m->views[1].decay && !m->views[0].decay);
    assert_false(m->views[m->n_views - 1].decay); /* lm_head */
    /* o_proj starts narrower than q_proj: N(0, 0.02/sqrt(2L)) */
    double sq = 0, so = 0;
    for (int64_t j = 0; j < m->views[2].n; j++) sq += m->views[2].data[j] * m->views[2].data[j];
    for (int64_t j = 0; j < m->views[5].n; j++) so += m->views[5].data[j] * m->views[5].data[j];
    assert_true(so < 0.5 * sq);
    qat_model_free(m);

    cfg.model.heads = 3; /* does not divide 16 */
    assert_int_equal(qat_model_shape_from_config(&cfg, &s), 2);
}

/* d loss / d θ of the whole model, fp32, every view probed. */
static void test_model_gradient(void **state) {
    (void)state;
    qat_config cfg;
    tiny_config(&cfg);
    qat_model_shape s;
    assert_int_equal(qat_model_shape_from_config(&cfg, &s), 0);
    qat_model *m;
    assert_int_equal(qat_model_create(&cfg, &s, 2, &m), 0);
    /* larger weights than the default init so every path matters */
    qat_rng r = qat_rng_make(9, 9);
    for (int64_t i = 0; i < m->n_total; i++) m->params[i] += (float)(0.3 * qat_rng_normal(&r));
    int B = 2, T = s.seq_len;
    int32_t in[10], tg[10];
    for (int i = 0; i < B * T; i++) { in[i] = (i * 5 + 1) % s.vocab; tg[i] = (i * 3 + 2) % s.vocab; }

    qat_tape tp;
    qat_tape_init(&tp, 1 << 20);
    qat_tape_reset(&tp);
    qat_model_zero_grad(m, tp.epoch);
    qat_tensor *loss = qat_model_forward(m, &tp, in, tg, B, 0);
    qat_tape_backward(&tp, loss);
    float *g = malloc((size_t)m->n_total * sizeof(float));
    memcpy(g, m->grads, (size_t)m->n_total * sizeof(float));
    tp.grad_enabled = 0;
    double h = 1e-2, worst = 0;
    for (int v = 0; v < m->n_views; v++) {
        qat_param_view *pv = &m->views[v];
        int64_t off = pv->data - m->params;
        double gmax = 0, err = 0;
        for (int64_t j = 0; j < pv->n; j++) gmax = fmax(gmax, fabs(g[off + j]));
        int64_t stride = pv->n > 25 ? pv->n / 25 : 1;
        for (int64_t j = 0; j < pv->n; j += stride) {
            float saved = pv->data[j];
            pv->data[j] = saved + (float)h;
            qat_tape_reset(&tp);
            double lp = qat_model_forward(m, &tp, in, tg, B, 0)->data[0];
            pv->data[j] = saved - (float)h;
            qat_tape_reset(&tp);
            double lm = qat_model_forward(m, &tp, in, tg, B, 0)->data[0];
            pv->data[j] = saved;
            double num = (lp - lm) / (2 * h);
            err = fmax(err, fabs(num - g[off + j]) / fmax(gmax, 1e-4));
        }
        printf("  %-44s |g|max %.2e  worst rel err %.2e\n", pv->name, gmax, err);
        worst = fmax(worst, err);
    }
    assert_true(worst < 1e-2);
    free(g);
    qat_tape_free(&tp);
    qat_model_free(m);
}

/* Steady state allocates nothing: after the first step the arena, the tape's node
 * array and oneDNN's primitive cache stay exactly as they are (quantized model,
 * forward + backward + optimizer, evaluation in between). */
static void test_steady_state_allocates_nothing(void **state) {
    (void)state;
    qat_config cfg;
    tiny_config(&cfg);
    snprintf(cfg.weights.format, sizeof cfg.weights.format, "int4");
    snprintf(cfg.activations.format, sizeof cfg.activations.format, "int4");
    qat_model_shape s;
    assert_int_equal(qat_model_shape_from_config(&cfg, &s), 0);
    qat_model *m;
    assert_int_equal(qat_model_create(&cfg, &s, 2, &m), 0);
    qat_adamw opt;
    qat_adamw_init(&opt, m->views, m->n_views, &cfg.train);
    qat_tape tp;
    qat_tape_init(&tp, 1 << 16); /* small blocks: growth would show */
    int32_t in[10], tg[10];
    for (int i = 0; i < 10; i++) { in[i] = i % s.vocab; tg[i] = (i + 1) % s.vocab; }
    size_t cap = 0;
    int grows = 0, nodes_cap = 0, gemms = 0;
    for (int step = 0; step < 5; step++) {
        qat_tape_reset(&tp);
        qat_model_zero_grad(m, tp.epoch);
        qat_tape_backward(&tp, qat_model_forward(m, &tp, in, tg, 2, step));
        qat_clip_grad_norm(m->views, m->n_views, 1.0);
        qat_adamw_step(&opt, 1e-3);
        qat_model_after_step(m, step);
        tp.grad_enabled = 0; /* an evaluation pass between steps */
        qat_tape_reset(&tp);
        qat_model_forward(m, &tp, in, tg, 2, step);
        tp.grad_enabled = 1;
        if (step == 0) {
            cap = qat_arena_capacity(&tp.arena);
            grows = tp.arena.grows;
            nodes_cap = tp.cap;
            gemms = qat_gemm_cache_size();
        } else {
            assert_int_equal(qat_arena_capacity(&tp.arena), cap);
            assert_int_equal(tp.arena.grows, grows);
            assert_int_equal(tp.cap, nodes_cap);
            assert_int_equal(qat_gemm_cache_size(), gemms);
        }
    }
    qat_tape_free(&tp);
    qat_adamw_free(&opt);
    qat_model_free(m);
}

/* Gradients of one s3-sized batch (d64 L2 H4, T128, 4 sequences) with
 * train.precision: bf16 point the same way as in fp32: cosine >= 0.999 for every
 * parameter array of the fp32 model. Under W4A4 + trust (quantizers run in f32,
 * the bf16 rounding comes after them) the bound is 0.99: a product's bf16
 * rounding (2^-9 relative) moves the next layer's activations across int4
 * rounding boundaries and trust-mask edges, and those discrete flips, not the
 * bf16 products themselves, set the gap (0.993 measured on the worst tensor). */
static double cosine(const float *a, const float *b, int64_t n) {
    double ab = 0, aa = 0, bb = 0;
    for (int64_t i = 0; i < n; i++) { ab += (double)a[i] * b[i]; aa += (double)a[i] * a[i]; bb += (double)b[i] * b[i]; }
    return ab / sqrt(aa * bb + 1e-300);
}

static void bf16_grads(const char *fmt, const char *est, double bound) {
    const char *isa;
    if (!qat_gemm_bf16_supported(&isa)) {
        printf("  no native bf16 on this CPU (%s): skipped\n", isa);
        return;
    }
    qat_config cfg;
    qat_config_defaults(&cfg);
    snprintf(cfg.model.preset, sizeof cfg.model.preset, "s3");
    cfg.model.seq_len = 128;
    snprintf(cfg.weights.format, sizeof cfg.weights.format, "%s", fmt);
    snprintf(cfg.activations.format, sizeof cfg.activations.format, "%s", fmt);
    if (est[0]) {
        snprintf(cfg.weights.estimator, sizeof cfg.weights.estimator, "%s", est);
        snprintf(cfg.activations.estimator, sizeof cfg.activations.estimator, "%s", est);
    }
    qat_model_shape s;
    assert_int_equal(qat_model_shape_from_config(&cfg, &s), 0);
    int B = 4, T = s.seq_len;
    int32_t *in = malloc((size_t)B * T * sizeof *in), *tg = malloc((size_t)B * T * sizeof *tg);
    /* a learnable-looking sequence: a noisy walk over the vocabulary */
    qat_rng r = qat_rng_make(5, 6);
    int32_t cur = 0;
    for (int i = 0; i < B * T + 1; i++) {
        cur = (int32_t)((cur + 1 + qat_rng_below(&r, 3)) % s.vocab);
        if (i < B * T) in[i] = cur;
        if (i > 0) tg[i - 1] = cur;
    }
    float *g[2];
    qat_model *m[2];
    for (int p = 0; p < 2; p++) {
        snprintf(cfg.train.precision, sizeof cfg.train.precision, "%s", p ? "bf16" : "fp32");
        assert_int_equal(qat_model_create(&cfg, &s, B, &m[p]), 0);
        qat_tape tp;
        qat_tape_init(&tp, 0);
        qat_tape_reset(&tp);
        qat_model_zero_grad(m[p], tp.epoch);
        qat_tensor *loss = qat_model_forward(m[p], &tp, in, tg, B, 0);
        qat_tape_backward(&tp, loss);
        printf("  %s %s/%s: loss %.6f\n", p ? "bf16" : "fp32", fmt, est, loss->data[0]);
        g[p] = m[p]->grads;
        qat_tape_free(&tp);
    }
    double worst = 1;
    for (int v = 0; v < m[0]->n_views; v++) {
        qat_param_view *pv = &m[0]->views[v];
        int64_t off = pv->data - m[0]->params;
        double c = cosine(g[0] + off, g[1] + off, pv->n);
        if (c < worst) worst = c;
        if (c < 0.9995) printf("  %-44s cosine %.6f\n", pv->name, c);
    }
    printf("  worst per-tensor cosine %.6f over %d tensors\n", worst, m[0]->n_views);
    assert_true(worst >= bound);
    qat_model_free(m[0]);
    qat_model_free(m[1]);
    free(in);
    free(tg);
}

static void test_bf16_gradients_fp32_model(void **state) {
    (void)state;
    bf16_grads("fp32", "", 0.999);
}

static void test_bf16_gradients_w4a4_trust(void **state) {
    (void)state;
    bf16_grads("int4", "trust", 0.99);
}

/* The model's checks between a side's Hadamard block and the model's widths or the
 * other side's block name the line of the later key, like every config error (they
 * named the file alone). */
/* Case i: the model `yaml` (as m.yaml) describes is refused with a message that opens with `want`. */
static void expect_refused(size_t i, const char *yaml, const char *want) {
    qat_config cfg;
    assert_int_equal(qat_config_load_string(yaml, "m.yaml", &cfg), 0);
    qat_model_shape s;
    assert_int_equal(qat_model_shape_from_config(&cfg, &s), 0);
    qat_model *m = NULL;
    assert_int_equal(qat_model_create(&cfg, &s, 1, &m), QAT_EINPUT);
    if (strncmp(qat_errmsg(), want, strlen(want))) fail_msg("case %zu: got %s, want %s...", i, qat_errmsg(), want);
    /* the check without the model (qat train --print-config) says the same */
    char made[4096];
    snprintf(made, sizeof made, "%s", qat_errmsg());
    qat_clear_error();
    assert_int_equal(qat_model_check(&cfg, &s), QAT_EINPUT);
    assert_string_equal(qat_errmsg(), made);
}

/* An explicit hadamard: 0 beside a side that rotates (on auto or set) was silently
 * rotated to the other side's block (--print-config still showed 0); it is now
 * exit 2 at the key given last, and 0 on both sides builds (nothing rotated). */
static void test_explicit_zero_hadamard_is_not_overridden(void **state) {
    (void)state;
    static const struct { const char *yaml, *want; } cases[] = {
        {"model: {preset: s1}\ncompress:\n  weights: {format: int4, hadamard: 0}\n  activations: {format: int4}\n",
         "m.yaml:4:17: compress.weights.hadamard: 0 asks for no rotation of the weights, but the activations rotate "
         "with Hadamard block 32 (compress.activations.hadamard auto picks 32 for int4)"},
        {"model: {preset: s1}\ncompress:\n  activations: {format: int4, hadamard: 16}\n  weights: {format: int4, "
         "hadamard: 0}\n",
         "m.yaml:4:27: compress.weights.hadamard: 0 asks for no rotation of the weights, but the activations rotate "
         "with Hadamard block 16 (compress.activations.hadamard: 16)"},
        {"model: {preset: s1}\ncompress:\n  weights: {format: int4}\n  activations: {format: fp32, hadamard: 0}\n",
         "m.yaml:4:31: compress.activations.hadamard: 0 asks for no rotation of the activations, but the weights "
         "rotate with Hadamard block 32"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        expect_refused(i, cases[i].yaml, cases[i].want);
        assert_non_null(strstr(qat_errmsg(), "hadamard: 0 too (neither side rotated), or"));
    }
    qat_config cfg;
    assert_int_equal(qat_config_load_string("model: {preset: s1}\ncompress:\n  weights: {format: int4, hadamard: 0}\n"
                                            "  activations: {format: int4, hadamard: 0}\n", "m.yaml", &cfg), 0);
    qat_model_shape s;
    assert_int_equal(qat_model_shape_from_config(&cfg, &s), 0);
    qat_model *m = NULL;
    assert_int_equal(qat_model_create(&cfg, &s, 1, &m), 0);
    for (int j = 0; j < 4; j++) {
        assert_int_equal(qat_quantizer_hadamard(m->blocks[0].qw[j]), 0);
        assert_int_equal(qat_quantizer_hadamard(m->blocks[0].qa[j]), 0);
    }
    qat_model_free(m);
}

static void test_pairing_errors_name_the_line(void **state) {
    (void)state;
    static const struct { const char *yaml, *want; } cases[] = {
        {"model: {preset: s2}\ncompress:\n  weights: {format: mxfp4@h32}\n",
         "m.yaml:3:13: @h32 of compress.weights.format mxfp4@h32: Hadamard block 32 does not divide the input dim 48"},
        {"compress:\n  weights: {format: mxfp4@h32}\nmodel: {preset: s2}\n",
         "m.yaml:3:9: @h32 of compress.weights.format mxfp4@h32: Hadamard block 32 does not divide the input dim 48"},
        {"model: {preset: s1}\ncompress:\n  weights: {format: mxfp4@h16}\n  activations: {format: int4, hadamard: 32}\n",
         "m.yaml:4:31: the weights rotate with Hadamard block 16"},
        {"model: {preset: s2}\ncompress:\n  weights: {format: int4@g32}\n  activations: {format: int4}\n",
         "m.yaml:4:17: compress.weights: int4@g32 would be rotated by the activations' auto Hadamard blocks"},
        /* the key a gradients message is about, not the section's first line */
        {"model: {preset: s1}\ncompress:\n  gradients:\n    format: int4\n    hadamard: 64\n",
         "m.yaml:5:5: compress.gradients.hadamard: 64 does not divide the model width (32)"},
        {"model: {preset: s1}\ncompress:\n  gradients:\n    hadamard: 16\n    rounding: sr\n    format: int4@g8\n",
         "m.yaml:6:5: compress.gradients.format: 'int4@g8' cannot quantize a backward operand"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) expect_refused(i, cases[i].yaml, cases[i].want);
}

/* qat_model_step_bytes, what a run's memory estimate counts for activations
 * (train/trainer.c), is a lower bound on the tape's high water after a forward
 * and backward, and a close one for fp32 (within 15%: the estimate would
 * otherwise refuse nothing); quantized models keep more (their quantized
 * inputs), still above the bound. Shapes: s2-like and wider, T 32 and 64. */
static void test_step_bytes_bound_the_tape(void **state) {
    (void)state;
    static const struct { int layers, dim, heads, vocab, T, B; const char *fmt; } cases[] = {
        {2, 64, 4, 256, 32, 4, "fp32"}, {3, 128, 4, 512, 64, 2, "fp32"}, {2, 64, 4, 256, 32, 4, "int4"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        qat_config cfg;
        qat_config_defaults(&cfg);
        cfg.model.preset[0] = 0;
        cfg.model.layers = cases[i].layers;
        cfg.model.dim = cases[i].dim;
        cfg.model.heads = cases[i].heads;
        cfg.model.vocab = cases[i].vocab;
        cfg.model.seq_len = cases[i].T;
        snprintf(cfg.weights.format, sizeof cfg.weights.format, "%s", cases[i].fmt);
        snprintf(cfg.activations.format, sizeof cfg.activations.format, "%s", cases[i].fmt);
        qat_model_shape s;
        assert_int_equal(qat_model_shape_from_config(&cfg, &s), 0);
        int B = cases[i].B, T = cases[i].T;
        qat_model *m;
        assert_int_equal(qat_model_create(&cfg, &s, B, &m), 0);
        qat_tape tp;
        qat_tape_init(&tp, 0);
        int32_t *in = malloc(sizeof(int32_t) * (size_t)(B * T)), *tg = malloc(sizeof(int32_t) * (size_t)(B * T));
        for (int k = 0; k < B * T; k++) in[k] = k % s.vocab, tg[k] = (k * 7 + 1) % s.vocab;
        qat_tape_reset(&tp);
        qat_model_zero_grad(m, tp.epoch);
        qat_tape_backward(&tp, qat_model_forward(m, &tp, in, tg, B, 0));
        double est = qat_model_step_bytes(&s, (int64_t)B * T), got = (double)tp.arena.high_water;
        printf("  L%d d%d V%d T%d B%d %s: estimate %.0f, tape high water %.0f (x%.3f)\n", cases[i].layers, cases[i].dim,
               cases[i].vocab, T, B, cases[i].fmt, est, got, got / est);
        assert_true(est <= got);
        if (!strcmp(cases[i].fmt, "fp32")) assert_true(got <= 1.15 * est);
        free(in);
        free(tg);
        qat_tape_free(&tp);
        qat_model_free(m);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bf16_gradients_fp32_model),
        cmocka_unit_test(test_bf16_gradients_w4a4_trust),
        cmocka_unit_test(test_presets_count),
        cmocka_unit_test(test_views_and_names),
        cmocka_unit_test(test_pairing_errors_name_the_line),
        cmocka_unit_test(test_explicit_zero_hadamard_is_not_overridden),
        cmocka_unit_test(test_model_gradient),
        cmocka_unit_test(test_steady_state_allocates_nothing),
        cmocka_unit_test(test_step_bytes_bound_the_tape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

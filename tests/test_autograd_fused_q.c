/*
 * tests/test_autograd_fused_q.c — an activation quantizer run inside the passes
 * around its linear (autograd/ops.h qat_linear_feed, autograd/tensor.h deferred
 * gradients) computes exactly what the separate passes compute.
 *
 * For each producer (RMSNorm, add+RMSNorm, SwiGLU) feeding a quantized linear,
 * the graph producer → linear(qa) → Σ z·R is built twice: plainly (the producer
 * writes its f32 output, the linear rounds it and runs the quantizer's backward
 * itself) and the way the model builds it (qat_*_for: each row rounded as it is
 * written; qat_tensor_grad_by_rows: the quantizer's backward applied as the
 * producer's backward reads each row). The output z and every gradient must be
 * the same bits, in fp32 and (where the CPU multiplies bf16) bf16 steps, for
 * formats with and without a Hadamard rotation, a trust mask, block scales and
 * N:M sparsity; and the fused graph must really have taken both shortcuts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <cmocka.h>

#include <string.h>

#include "gradcheck.h"
#include "autograd/gemm.h"
#include "compress/quantizer.h"
#include "core/config.h"
#include "core/error.h"

enum { NORM, ADD_NORM, SWIGLU };
static const char *producer_name[] = {"rmsnorm", "add_rmsnorm", "swiglu"};

typedef struct {
    qat_tensor *a, *b, *w, *W; /* producer inputs (b: add+RMSNorm only), norm weight, linear weight */
} graph_params;

/* Builds and differentiates the graph; returns z's values (malloc'd). *took: the
 * fused graph rounded in the producer and deferred the backward. */
static float *run_graph(int producer, int fused, int bf16, qat_quantizer *qa, const graph_params *p, int *took) {
    qat_tensor *ps[4] = {p->a, p->b, p->w, p->W};
    qat_tape tp;
    qat_tape_init(&tp, 1 << 20);
    qat_tape_reset(&tp);
    tp.bf16 = bf16;
    for (int i = 0; i < 4; i++)
        if (ps[i]) {
            memset(ps[i]->grad, 0, (size_t)ps[i]->numel * sizeof(float));
            ps[i]->grad_epoch = tp.epoch;
        }
    const int64_t step = 7;
    qat_tensor *h, *s;
    qat_out plain = bf16 ? QAT_OUT_F32 : QAT_OUT_BOTH; /* what the linear's quantizer reads */
    if (producer == NORM)
        h = fused ? qat_rmsnorm_for(&tp, p->a, p->w, 1e-5f, qa, step) : qat_rmsnorm(&tp, p->a, p->w, 1e-5f);
    else if (producer == ADD_NORM)
        h = fused ? qat_add_rmsnorm_for(&tp, p->a, p->b, p->w, 1e-5f, &s, qa, step)
                  : qat_add_rmsnorm_out(&tp, p->a, p->b, p->w, 1e-5f, &s, plain);
    else
        h = fused ? qat_swiglu_for(&tp, p->a, qa, step) : qat_swiglu_out(&tp, p->a, plain);
    if (fused) qat_tensor_grad_by_rows(h);
    qat_tensor *z = qat_linear(&tp, h, p->W, qa, NULL, step);
    float *out = malloc((size_t)z->numel * sizeof(float));
    memcpy(out, z->data, (size_t)z->numel * sizeof(float));
    float *R = malloc((size_t)z->numel * sizeof(float));
    gc_fill(R, z->numel, 77, 1.0f);
    qat_tensor *loss;
    gc_dot(&tp, z, R, &loss);
    qat_tape_backward(&tp, loss);
    *took = h->data == NULL && h->quant_by == qa && (bf16 ? h->quant_bf16 != NULL : h->quant != NULL) &&
            h->grad_row_epoch == tp.epoch;
    free(R);
    qat_tape_free(&tp);
    return out;
}

static qat_quantizer *make_qa(const char *format, int hadamard, int64_t rows, int64_t cols) {
    qat_config cfg;
    qat_config_defaults(&cfg);
    qat_compress_side side = cfg.activations;
    snprintf(side.format, sizeof side.format, "%s", format);
    side.hadamard = hadamard;
    qat_quantizer *q = NULL;
    if (qat_quantizer_create(&side, 0, rows, cols, 1, 99, &q) != QAT_OK) fail_msg("%s: %s", format, qat_errmsg());
    return q;
}

static void test_fused_same_bits(void **state) {
    (void)state;
    const char *isa;
    const int have_bf16 = qat_gemm_bf16_supported(&isa);
    if (!have_bf16) print_message("  no native bf16 products on this CPU (%s): fp32 steps only\n", isa);
    /* M not a multiple of add+RMSNorm's 8-row groups; C and H split into Hadamard blocks */
    const int64_t M = 45, C = 64, H = 96, N = 24;
    const struct {
        const char *format;
        int hadamard;
    } fmts[] = {{"int4", -1}, {"int4", 0}, {"mxfp4", -1}, {"2:4+int4", -1}, {"int2", 32}};
    for (int producer = 0; producer < 3; producer++)
        for (size_t f = 0; f < sizeof fmts / sizeof fmts[0]; f++)
            for (int bf16 = 0; bf16 <= have_bf16; bf16++) {
                const int64_t K = producer == SWIGLU ? H : C; /* the linear's input width */
                graph_params p = {0};
                p.a = gc_param(2, (int64_t[]){M, producer == SWIGLU ? 2 * H : C}, 11, 1.0f);
                if (producer == ADD_NORM) p.b = gc_param(2, (int64_t[]){M, C}, 12, 1.0f);
                if (producer != SWIGLU) p.w = gc_param(1, (int64_t[]){C}, 13, 1.0f);
                p.W = gc_param(2, (int64_t[]){N, K}, 14, 0.3f);
                qat_quantizer *qa = make_qa(fmts[f].format, fmts[f].hadamard, M, K);
                assert_true(qat_quantizer_forward_by_rows(qa) && qat_quantizer_backward_by_rows(qa));
                qat_tensor *ps[4] = {p.a, p.b, p.w, p.W};
                float *ref[4] = {0};
                int took;
                float *z0 = run_graph(producer, 0, bf16, qa, &p, &took);
                assert_false(took);
                for (int i = 0; i < 4; i++)
                    if (ps[i]) {
                        ref[i] = malloc((size_t)ps[i]->numel * sizeof(float));
                        memcpy(ref[i], ps[i]->grad, (size_t)ps[i]->numel * sizeof(float));
                    }
                float *z1 = run_graph(producer, 1, bf16, qa, &p, &took);
                assert_true(took);
                int64_t bad = 0, nonzero = 0;
                for (int64_t j = 0; j < M * N; j++) bad += memcmp(&z0[j], &z1[j], sizeof(float)) != 0;
                for (int i = 0; i < 4; i++)
                    if (ps[i])
                        for (int64_t j = 0; j < ps[i]->numel; j++) {
                            bad += memcmp(&ref[i][j], &ps[i]->grad[j], sizeof(float)) != 0;
                            nonzero += ref[i][j] != 0.0f;
                        }
                print_message("  %-11s %-8s hadamard %2d %s: %lld values differ (%lld nonzero gradients)\n",
                              producer_name[producer], fmts[f].format, fmts[f].hadamard, bf16 ? "bf16" : "fp32",
                              (long long)bad, (long long)nonzero);
                assert_int_equal(bad, 0);
                assert_true(nonzero > 0);
                free(z0), free(z1);
                for (int i = 0; i < 4; i++)
                    if (ps[i]) free(ref[i]), gc_param_free(ps[i]);
                qat_quantizer_free(qa);
            }
}

/* A quantizer whose backward does more than map rows (LSQ trains its step from
 * the whole gradient) is never deferred, and one with per-tensor statistics
 * (NVFP4's tensor scale) is never rounded in the producer: the linear does both
 * itself, and the graph still differentiates. */
static void test_not_fused_when_not_row_local(void **state) {
    (void)state;
    const int64_t M = 16, C = 64;
    qat_config cfg;
    qat_config_defaults(&cfg);
    qat_compress_side side = cfg.activations;
    snprintf(side.format, sizeof side.format, "int4");
    snprintf(side.estimator, sizeof side.estimator, "lsq");
    qat_quantizer *lsq = NULL, *nv = make_qa("nvfp4", -1, M, C);
    assert_int_equal(qat_quantizer_create(&side, 0, M, C, 1, 5, &lsq), QAT_OK);
    assert_false(qat_quantizer_backward_by_rows(lsq));
    assert_false(qat_quantizer_forward_by_rows(nv));
    qat_quantizer *qs[2] = {lsq, nv};
    for (int i = 0; i < 2; i++) {
        graph_params p = {0};
        p.a = gc_param(2, (int64_t[]){M, C}, 21, 1.0f);
        p.w = gc_param(1, (int64_t[]){C}, 22, 1.0f);
        p.W = gc_param(2, (int64_t[]){8, C}, 23, 0.3f);
        int took;
        free(run_graph(NORM, 1, 0, qs[i], &p, &took));
        assert_false(took);
        gc_param_free(p.a), gc_param_free(p.w), gc_param_free(p.W);
    }
    qat_quantizer_free(lsq), qat_quantizer_free(nv);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fused_same_bits),
        cmocka_unit_test(test_not_fused_when_not_row_local),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

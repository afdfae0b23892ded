/*
 * tests/test_autograd_bf16.c — the shortcuts a bf16 training step takes outside
 * the products (train.precision: bf16):
 *   - SwiGLU's σ from core/fastexp.h: its error against a double reference and
 *     against the expf-based σ of fp32 steps, the edges (±0, ±inf, NaN, ±large,
 *     subnormal results), and the vector and scalar paths giving the same bits;
 *   - the producers' bf16 copies (qat_tensor.bf16: RMSNorm, add+RMSNorm, SwiGLU)
 *     equal to qat_to_bf16 of their f32 outputs, bit for bit, and multiplied as
 *     they are by qat_linear;
 *   - SwiGLU's backward differentiating the σ its forward used;
 *   - the bf16 copy of a linear's dy written by dy's producer (add+RMSNorm,
 *     SwiGLU backward), equal to qat_to_bf16(dy), and dropped when dy is handed
 *     out again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <cmocka.h>

#include <float.h>

#include "gradcheck.h"
#include "autograd/gemm.h"
#include "core/cpu.h"
#include "core/fastexp.h"

/* σ as fp32 steps compute it (autograd/ops_elementwise.c: expf's bits) */
static float sigmoid_expf(float x) { return 1.0f / (1.0f + expf(-x)); }

/* Relative error of a σ whose true value is a normal float. */
static double sig_err(float got, double ref) { return fabs((double)got - ref) / ref; }

/* Every 257th bit pattern (all exponents, both signs), every float within 64 ulps
 * of the clamps and of the subnormal-result range, and the special values. */
static void test_fast_sigmoid(void **state) {
    (void)state;
    enum { CHUNK = 4096 };
    static float in[CHUNK], out[CHUNK];
    double worst_ref = 0, worst_expf = 0;
    double worst_exp = 0;              /* e^x itself, where it is a normal float */
    double sub_fast = 0, sub_expf = 0; /* absolute errors where σ < FLT_MIN (x < -87.3) */
    float worst_x = 0;
    int64_t n = 0, mismatch = 0;
    uint64_t u = 0;
    const float edges[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, -NAN, 88.72f, -88.72f, 89.0f, -89.0f, 104.0f,
                           -104.0f, 87.3f, -87.3f, 103.9f, -103.9f, 16.6f, -16.6f, 1e-30f, -1e-30f, 0x1p-149f};
    size_t ne = sizeof edges / sizeof *edges, e = 0;
    while (u < (1ull << 32) || e < ne) {
        int k = 0;
        if (u < (1ull << 32)) {
            for (; k < CHUNK - 1 && u < (1ull << 32); k++, u += 257) {
                uint32_t b = (uint32_t)u;
                memcpy(&in[k], &b, 4);
            }
        } else {
            for (; e < ne && k + 128 <= CHUNK; e++) {
                float x = edges[e], y = edges[e];
                for (int d = 0; d < 64; d++, x = nextafterf(x, 0.0f), y = nextafterf(y, y > 0 ? INFINITY : -INFINITY)) {
                    in[k++] = x;
                    in[k++] = y;
                }
            }
        }
        qat_fast_sigmoid_row(in, out, k); /* k odd: the masked tail runs too */
        for (int i = 0; i < k; i++) {
            float x = in[i], s = out[i], f = qat_fast_sigmoidf(x);
            if (memcmp(&s, &f, 4) && mismatch++ < 5) print_message("σ(%a): row %a, scalar %a\n", x, s, f);
            if (isnan(x)) {
                assert_true(isnan(s));
                continue;
            }
            double ex = exp((double)x);
            if (ex >= FLT_MIN && ex <= FLT_MAX) worst_exp = fmax(worst_exp, fabs(qat_fastexpf(x) - ex) / ex);
            double ref = 1.0 / (1.0 + exp(-(double)x));
            assert_true(s >= 0.0f && s <= 1.0f);
            if (ref < FLT_MIN) {
                /* 1/(1 + e^-x) loses σ's tail where e^-x overflows (x < -88.72): σ = 0
                 * there, for expf's σ as for this one; gradual underflow elsewhere */
                sub_fast = fmax(sub_fast, fabs(s - ref));
                sub_expf = fmax(sub_expf, fabs(sigmoid_expf(x) - ref));
                continue;
            }
            double er = sig_err(s, ref), ee = fabs((double)s - sigmoid_expf(x)) / ref;
            if (er > worst_ref) worst_ref = er, worst_x = x;
            if (ee > worst_expf) worst_expf = ee;
        }
        n += k;
    }
    print_message("  fast σ over %lld values: worst rel err %.3g (%.2f × 2⁻²⁴) at %a vs double, %.3g vs expf's σ\n",
                  (long long)n, worst_ref, worst_ref / 0x1p-24, worst_x, worst_expf);
    print_message("  fast e^x: worst rel err %.3g (%.2f × 2⁻²⁴)\n", worst_exp, worst_exp / 0x1p-24);
    print_message("  where σ < FLT_MIN: worst abs err %.3g (expf's σ: %.3g)\n", sub_fast, sub_expf);
    assert_int_equal(mismatch, 0);
    assert_true(sub_fast <= sub_expf + 0x1p-149);
    assert_true(worst_exp < 2 * 0x1p-24);  /* e^x: within 2·2⁻²⁴ (about 1 ulp) */
    assert_true(worst_ref < 4 * 0x1p-24);  /* σ, after its addition and division: 2 ulps */
    assert_true(worst_expf < 5 * 0x1p-24); /* and as close to the fp32 step's σ */
    /* the exact edges */
    assert_true(qat_fast_sigmoidf(0.0f) == 0.5f && qat_fast_sigmoidf(-0.0f) == 0.5f);
    assert_true(qat_fast_sigmoidf(INFINITY) == 1.0f && qat_fast_sigmoidf(-INFINITY) == 0.0f);
    assert_true(qat_fast_sigmoidf(200.0f) == 1.0f && qat_fast_sigmoidf(-200.0f) == 0.0f);
    float sub = qat_fast_sigmoidf(-88.0f); /* ≈ e^-88 ≈ 6.1e-39: a subnormal result, not 0 */
    assert_true(sub > 0.0f && sub < FLT_MIN && fabs(sub - 1 / (1 + exp(88.0))) <= 0x1p-149);
    /* e^x itself at its clamps: overflow to inf, underflow to 0, exact 1 at 0 */
    assert_true(isinf(qat_fastexpf(89.0f)) && qat_fastexpf(88.5f) < INFINITY && qat_fastexpf(-104.0f) == 0.0f);
    assert_true(qat_fastexpf(0.0f) == 1.0f && isnan(qat_fastexpf(NAN)));
}

/* Skip the calling test on a CPU without native bf16 products (cmocka's skip
 * leaves the test from here). */
static void need_bf16_products(void) {
    const char *isa;
    if (!qat_gemm_bf16_supported(&isa)) {
        print_message("  no native bf16 products on this CPU (%s): skipped\n", isa);
        skip();
    }
}

/* the fused ops with the tape in bf16 mode */
typedef struct {
    qat_tensor *a, *b, *w; /* inputs */
} fz_case;

static void expect_bf16_copy(const qat_tensor *t, const char *what) {
    assert_non_null(t->bf16);
    uint16_t *ref = malloc((size_t)t->numel * sizeof *ref);
    qat_to_bf16(t->data, ref, t->numel);
    int64_t bad = 0;
    for (int64_t i = 0; i < t->numel; i++) bad += ref[i] != t->bf16[i];
    print_message("  %s: bf16 copy of %lld values, %lld differ from qat_to_bf16\n", what, (long long)t->numel,
                  (long long)bad);
    assert_int_equal(bad, 0);
    free(ref);
}

/* RMSNorm, add+RMSNorm and SwiGLU write bf16 copies equal to qat_to_bf16 of their
 * f32 outputs (at row lengths that are and are not multiples of 16), and only in
 * bf16 mode; the norms' f32 outputs are the fp32 mode's bits. */
static void test_fused_bf16_copies(void **state) {
    (void)state;
    const int64_t shapes[][2] = {{37, 256}, {8, 48}, {5, 20}};
    for (size_t sh = 0; sh < sizeof shapes / sizeof *shapes; sh++) {
        int64_t M = shapes[sh][0], C = shapes[sh][1];
        qat_tensor *a = gc_param(2, (int64_t[]){M, C}, 11, 1.0f), *b = gc_param(2, (int64_t[]){M, C}, 12, 0.5f);
        qat_tensor *w = gc_param(1, (int64_t[]){C}, 13, 1.0f), *gu = gc_param(2, (int64_t[]){M, 2 * C}, 14, 3.0f);
        float *ref_rms = malloc((size_t)M * C * sizeof(float)), *ref_arms = malloc((size_t)M * C * sizeof(float));
        for (int bf = 0; bf < 2; bf++) {
            qat_tape tp;
            qat_tape_init(&tp, 1 << 20);
            tp.bf16 = bf;
            qat_tensor *x, *h = qat_rmsnorm(&tp, a, w, 1e-5f), *h2 = qat_add_rmsnorm(&tp, a, b, w, 1e-5f, &x);
            qat_tensor *act = qat_swiglu(&tp, gu);
            if (!bf) {
                assert_null(h->bf16);
                assert_null(h2->bf16);
                assert_null(act->bf16);
                memcpy(ref_rms, h->data, (size_t)M * C * sizeof(float));
                memcpy(ref_arms, h2->data, (size_t)M * C * sizeof(float));
            } else {
                assert_memory_equal(h->data, ref_rms, (size_t)M * C * sizeof(float));
                assert_memory_equal(h2->data, ref_arms, (size_t)M * C * sizeof(float));
                expect_bf16_copy(h, "rmsnorm");
                expect_bf16_copy(h2, "add_rmsnorm");
                expect_bf16_copy(act, "swiglu");
                /* the copy of the sum stream is not wanted by anyone */
                assert_null(x->bf16);
                /* a consumer that reads the f32 values only (a quantizer): the same values, no copy */
                qat_tensor *x2, *h3 = qat_add_rmsnorm_out(&tp, a, b, w, 1e-5f, &x2, QAT_OUT_F32);
                qat_tensor *act2 = qat_swiglu_out(&tp, gu, QAT_OUT_F32);
                assert_null(h3->bf16);
                assert_null(act2->bf16);
                assert_memory_equal(h3->data, ref_arms, (size_t)M * C * sizeof(float));
                assert_memory_equal(act2->data, act->data, (size_t)M * C * sizeof(float));
            }
            qat_tape_free(&tp);
        }
        free(ref_rms);
        free(ref_arms);
        gc_param_free(a), gc_param_free(b), gc_param_free(w), gc_param_free(gu);
    }
}

/* qat_linear in bf16 mode multiplies its input's bf16 copy as is: the product of
 * a norm's output equals the product of the same values converted by the linear
 * itself, and stays so when the f32 values are changed after the copy was made
 * (so the copy, not a new conversion, is what was multiplied). */
static void test_linear_uses_copy(void **state) {
    (void)state;
    need_bf16_products();
    int64_t M = 24, K = 64, N = 40;
    qat_tensor *a = gc_param(2, (int64_t[]){M, K}, 21, 1.0f), *w = gc_param(1, (int64_t[]){K}, 22, 1.0f);
    qat_tensor *W = gc_param(2, (int64_t[]){N, K}, 23, 0.2f);
    qat_tape tp;
    qat_tape_init(&tp, 1 << 20);
    tp.bf16 = 1;
    tp.grad_enabled = 0;
    qat_tensor *h = qat_rmsnorm(&tp, a, w, 1e-5f);
    qat_tensor *plain = qat_tape_tensor(&tp, 2, (int64_t[]){M, K}); /* same values, no copy */
    memcpy(plain->data, h->data, (size_t)M * K * sizeof(float));
    assert_null(plain->bf16);
    qat_tensor *y0 = qat_linear(&tp, plain, W, NULL, NULL, 0);
    for (int64_t i = 0; i < M * K; i++) h->data[i] *= 3.0f;
    qat_tensor *y1 = qat_linear(&tp, h, W, NULL, NULL, 0);
    assert_memory_equal(y0->data, y1->data, (size_t)M * N * sizeof(float));
    qat_tape_free(&tp);
    gc_param_free(a), gc_param_free(w), gc_param_free(W);
}

/* SwiGLU in bf16 mode: finite differences agree with its backward, and the
 * backward's σ is the forward's to the bit: with u = 1 and d(out) = 1,
 * d(u) = g·σ(g) is exactly what the forward wrote. */
static qat_tensor *f_swiglu_bf16(qat_tape *tp, void *u) {
    tp->bf16 = 1;
    return qat_swiglu(tp, ((fz_case *)u)->a);
}

static void test_swiglu_bf16_backward(void **state) {
    (void)state;
    fz_case c = {0};
    c.a = gc_param(2, (int64_t[]){6, 40}, 31, 2.0f);
    double worst = gc_check(f_swiglu_bf16, &c, &c.a, 1, 240, 1e-2, "swiglu bf16");
    assert_true(worst < 2e-3);
    gc_param_free(c.a);

    int64_t M = 9, H = 300; /* two σ blocks per row, the second partial */
    qat_tensor *gu = gc_param(2, (int64_t[]){M, 2 * H}, 32, 8.0f);
    for (int64_t r = 0; r < M; r++)
        for (int64_t j = 0; j < H; j++) gu->data[r * 2 * H + H + j] = 1.0f;
    qat_tape tp;
    qat_tape_init(&tp, 1 << 20);
    qat_tape_reset(&tp);
    gu->grad_epoch = tp.epoch;
    memset(gu->grad, 0, (size_t)gu->numel * sizeof(float));
    tp.bf16 = 1;
    qat_tensor *out = qat_swiglu(&tp, gu);
    float *R = malloc((size_t)out->numel * sizeof(float));
    for (int64_t i = 0; i < out->numel; i++) R[i] = 1.0f;
    qat_tensor *loss;
    gc_dot(&tp, out, R, &loss);
    qat_tape_backward(&tp, loss);
    int64_t bad = 0;
    for (int64_t r = 0; r < M; r++)
        for (int64_t j = 0; j < H; j++) bad += memcmp(&gu->grad[r * 2 * H + H + j], &out->data[r * H + j], 4) != 0;
    assert_int_equal(bad, 0);
    free(R);
    qat_tape_free(&tp);
    gc_param_free(gu);
}

/* dy's bf16 copy. A probe node sits between a linear and the op consuming its
 * output y, so in the backward it runs after that op wrote dy and before the
 * linear reads it: mode 0 checks the copy is marked valid and equals qat_to_bf16
 * of dy; mode 1 takes dy out (qat_grad, as another writer would), which must
 * mark the copy stale so the linear converts dy itself. Both modes must give the
 * linear's input and weight the same gradients, bit for bit. */
typedef struct {
    qat_tensor *y; /* the linear's output */
    int mode;      /* 0: check the copy, 1: hand dy out */
    int64_t bad;   /* values differing from qat_to_bf16(dy), or -1: copy not valid */
} probe_ctx;

static void probe_backward(qat_tape *tp, void *p) {
    probe_ctx *c = p;
    qat_tensor *y = c->y;
    if (c->mode == 1) {
        (void)qat_grad(tp, y);
        c->bad = y->grad_bf16_epoch == 0 ? 0 : -2;
        return;
    }
    if (!y->grad_bf16 || y->grad_bf16_epoch != tp->epoch) {
        c->bad = -1;
        return;
    }
    uint16_t *ref = malloc((size_t)y->numel * sizeof *ref);
    qat_to_bf16(y->grad, ref, y->numel); /* y->grad read directly: qat_grad would mark the copy stale */
    c->bad = 0;
    for (int64_t i = 0; i < y->numel; i++) c->bad += ref[i] != y->grad_bf16[i];
    free(ref);
}

/* linear → probe → add+RMSNorm (consumer 0) or SwiGLU (consumer 1) → Σ out·R;
 * returns the probe's verdict, leaves the gradients in x and W. */
static int64_t dy_graph(int consumer, int mode, qat_tensor *x, qat_tensor *W, qat_tensor *a, qat_tensor *w) {
    qat_tape tp;
    qat_tape_init(&tp, 1 << 20);
    qat_tape_reset(&tp);
    tp.bf16 = 1;
    memset(x->grad, 0, (size_t)x->numel * sizeof(float));
    memset(W->grad, 0, (size_t)W->numel * sizeof(float));
    x->grad_epoch = W->grad_epoch = tp.epoch;
    qat_tensor *y = qat_linear(&tp, x, W, NULL, NULL, 0);
    assert_non_null(y->grad_bf16);
    probe_ctx *pc = qat_tape_ctx(&tp, sizeof *pc);
    pc->y = y, pc->mode = mode, pc->bad = -3;
    qat_tape_push(&tp, probe_backward, pc);
    qat_tensor *s, *out = consumer == 0 ? qat_add_rmsnorm(&tp, a, y, w, 1e-5f, &s) : qat_swiglu(&tp, y);
    float *R = malloc((size_t)out->numel * sizeof(float));
    gc_fill(R, out->numel, 99, 1.0f);
    qat_tensor *loss;
    gc_dot(&tp, out, R, &loss);
    qat_tape_backward(&tp, loss);
    int64_t bad = pc->bad;
    free(R);
    qat_tape_free(&tp);
    return bad;
}

static void test_dy_bf16_copy(void **state) {
    (void)state;
    need_bf16_products();
    int64_t M = 40, K = 48, C = 64, H = 272; /* H: a full and a partial σ block per row */
    for (int consumer = 0; consumer < 2; consumer++) {
        int64_t N = consumer == 0 ? C : 2 * H;
        qat_tensor *x = gc_param(2, (int64_t[]){M, K}, 41, 1.0f), *W = gc_param(2, (int64_t[]){N, K}, 42, 0.3f);
        qat_tensor *a = gc_param(2, (int64_t[]){M, C}, 43, 1.0f), *w = gc_param(1, (int64_t[]){C}, 44, 1.0f);
        assert_int_equal(dy_graph(consumer, 0, x, W, a, w), 0);
        float *gx = malloc((size_t)x->numel * sizeof(float)), *gW = malloc((size_t)W->numel * sizeof(float));
        memcpy(gx, x->grad, (size_t)x->numel * sizeof(float));
        memcpy(gW, W->grad, (size_t)W->numel * sizeof(float));
        assert_int_equal(dy_graph(consumer, 1, x, W, a, w), 0);
        assert_memory_equal(gx, x->grad, (size_t)x->numel * sizeof(float));
        assert_memory_equal(gW, W->grad, (size_t)W->numel * sizeof(float));
        print_message("  %s: dy's bf16 copy = qat_to_bf16(dy); dx, dW the same from it as from a fresh conversion\n",
                      consumer == 0 ? "add_rmsnorm" : "swiglu");
        free(gx), free(gW);
        gc_param_free(x), gc_param_free(W), gc_param_free(a), gc_param_free(w);
    }
}

/* linear → add+RMSNorm (consumer 0), SwiGLU (consumer 1) or rope attention over
 * q|k|v (consumer 2: two sequences of M/2 tokens, hd 32) → linear → Σ z·R, built
 * plainly or, with declared = 1, the way the model builds it: the first linear's
 * output declared bf16-only (qat_tensor_grad_bf16_only) and the consumer's f32
 * output skipped (QAT_OUT_BF16; attention always writes its output). Leaves every
 * gradient in its tensor; *skipped: the consumer really wrote dy's bf16 copy only,
 * and out->data is NULL (but for attention). */
static void declared_graph(int consumer, int declared, qat_tensor *x, qat_tensor *W, qat_tensor *a, qat_tensor *w,
                           qat_tensor *W2, int *skipped) {
    qat_tensor *ps[5] = {x, W, a, w, W2};
    qat_tape tp;
    qat_tape_init(&tp, 1 << 20);
    qat_tape_reset(&tp);
    tp.bf16 = 1;
    for (int i = 0; i < 5; i++) {
        memset(ps[i]->grad, 0, (size_t)ps[i]->numel * sizeof(float));
        ps[i]->grad_epoch = tp.epoch;
    }
    qat_tensor *y = qat_linear(&tp, x, W, NULL, NULL, 0), *s, *out;
    if (declared) qat_tensor_grad_bf16_only(y);
    if (consumer == 0)
        out = declared ? qat_add_rmsnorm_out(&tp, a, y, w, 1e-5f, &s, QAT_OUT_BF16) : qat_add_rmsnorm(&tp, a, y, w, 1e-5f, &s);
    else if (consumer == 1)
        out = declared ? qat_swiglu_out(&tp, y, QAT_OUT_BF16) : qat_swiglu(&tp, y);
    else
        out = qat_rope_attention(&tp, y, 2, qat_tensor_rows(y) / 2, 2, 10000.0);
    qat_tensor *z = qat_linear(&tp, out, W2, NULL, NULL, 0);
    float *R = malloc((size_t)z->numel * sizeof(float));
    gc_fill(R, z->numel, 98, 1.0f);
    qat_tensor *loss;
    gc_dot(&tp, z, R, &loss);
    qat_tape_backward(&tp, loss);
    *skipped = y->grad_skip_epoch == tp.epoch && (consumer == 2 || out->data == NULL);
    free(R);
    qat_tape_free(&tp);
}

/* The model's bf16-only declarations (autograd/tensor.h) change no bit: every
 * gradient of the declared graph equals the plain graph's, and the declared one
 * did skip the f32 gradient of y and the consumer's f32 output. */
static void test_bf16_only_declared(void **state) {
    (void)state;
    need_bf16_products();
    int64_t K = 48, C = 64, H = 272, N2 = 32;
    for (int consumer = 0; consumer < 3; consumer++) {
        int64_t M = consumer == 2 ? 42 : 40; /* attention: T = 21, odd, neither tile size divides it */
        int64_t N = consumer == 0 ? C : consumer == 1 ? 2 * H : 3 * C, O = consumer == 1 ? H : C;
        qat_tensor *x = gc_param(2, (int64_t[]){M, K}, 51, 1.0f), *W = gc_param(2, (int64_t[]){N, K}, 52, 0.3f);
        qat_tensor *a = gc_param(2, (int64_t[]){M, C}, 53, 1.0f), *w = gc_param(1, (int64_t[]){C}, 54, 1.0f);
        qat_tensor *W2 = gc_param(2, (int64_t[]){N2, O}, 55, 0.2f);
        qat_tensor *ps[5] = {x, W, a, w, W2};
        float *ref[5];
        int skipped;
        declared_graph(consumer, 0, x, W, a, w, W2, &skipped);
        assert_false(skipped);
        for (int i = 0; i < 5; i++) {
            ref[i] = malloc((size_t)ps[i]->numel * sizeof(float));
            memcpy(ref[i], ps[i]->grad, (size_t)ps[i]->numel * sizeof(float));
        }
        declared_graph(consumer, 1, x, W, a, w, W2, &skipped);
        assert_true(skipped);
        int64_t bad = 0, nonzero = 0;
        for (int i = 0; i < 5; i++)
            for (int64_t j = 0; j < ps[i]->numel; j++) {
                bad += memcmp(&ref[i][j], &ps[i]->grad[j], sizeof(float)) != 0;
                nonzero += ref[i][j] != 0.0f;
            }
        print_message("  %s: %lld of the gradients' values differ between the plain and the declared graph "
                      "(%lld nonzero)\n", consumer == 0 ? "add_rmsnorm" : consumer == 1 ? "swiglu" : "rope attention",
                      (long long)bad, (long long)nonzero);
        assert_int_equal(bad, 0);
        assert_true(nonzero > 0);
        for (int i = 0; i < 5; i++) free(ref[i]), gc_param_free(ps[i]);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fast_sigmoid),
        cmocka_unit_test(test_fused_bf16_copies),
        cmocka_unit_test(test_linear_uses_copy),
        cmocka_unit_test(test_swiglu_bf16_backward),
        cmocka_unit_test(test_dy_bf16_copy),
        cmocka_unit_test(test_bf16_only_declared),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

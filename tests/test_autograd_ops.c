/*
 * tests/test_autograd_ops.c — every op's backward against finite differences.
 *
 * Each case builds the op on small random inputs, reduces its output to a scalar
 * with fixed random weights, and compares the tape's gradients with central
 * differences (tests/gradcheck.h). Shapes are chosen to exercise the interesting
 * paths: several heads and batch rows in attention, columns taken out of a fused
 * tensor, repeated ids in the embedding.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <cmocka.h>

#include "gradcheck.h"
#include "autograd/gemm.h"
#include <omp.h>
#include <string.h>
#include "core/bf16.h"
#include "core/cpu.h"
#include "core/vexpf.h"

#define TOL 2e-3

typedef struct {
    qat_tensor *a, *b, *c; /* inputs */
    int32_t ids[64];       /* token ids / targets */
    int64_t B, T;          /* batch, sequence */
    int heads;
} gc_case;

static qat_tensor *f_add(qat_tape *tp, void *u) { gc_case *c = u; return qat_add(tp, c->a, c->b); }
static qat_tensor *f_mul(qat_tape *tp, void *u) { gc_case *c = u; return qat_mul(tp, c->a, c->b); }
static qat_tensor *f_scale(qat_tape *tp, void *u) { gc_case *c = u; return qat_scale(tp, c->a, -1.7f); }
static qat_tensor *f_silu(qat_tape *tp, void *u) { gc_case *c = u; return qat_silu(tp, c->a); }
static qat_tensor *f_swiglu(qat_tape *tp, void *u) { gc_case *c = u; return qat_swiglu(tp, c->a); }
static qat_tensor *f_emb(qat_tape *tp, void *u) { gc_case *c = u; return qat_embedding(tp, c->a, c->ids, 12); }
static qat_tensor *f_rms(qat_tape *tp, void *u) { gc_case *c = u; return qat_rmsnorm(tp, c->a, c->b, 1e-5f); }
/* residual add + norm: the sum also feeds a later residual (as in the model) */
static qat_tensor *f_addrms(qat_tape *tp, void *u) {
    gc_case *c = u;
    qat_tensor *x, *h = qat_add_rmsnorm(tp, c->a, c->b, c->c, 1e-5f, &x);
    return qat_add(tp, h, qat_scale(tp, x, 0.7f));
}
/* the last block's: the sum feeds only the norm */
static qat_tensor *f_addrms_end(qat_tape *tp, void *u) {
    gc_case *c = u;
    qat_tensor *x;
    return qat_add_rmsnorm(tp, c->a, c->b, c->c, 1e-5f, &x);
}
/* a + a */
static qat_tensor *f_addrms_self(qat_tape *tp, void *u) {
    gc_case *c = u;
    qat_tensor *x, *h = qat_add_rmsnorm(tp, c->a, c->a, c->c, 1e-5f, &x);
    return qat_add(tp, h, x);
}
/* the same graph as f_addrms from the separate ops */
static qat_tensor *f_addrms_unfused(qat_tape *tp, void *u) {
    gc_case *c = u;
    qat_tensor *x = qat_add(tp, c->a, c->b), *h = qat_rmsnorm(tp, x, c->c, 1e-5f);
    return qat_add(tp, h, qat_scale(tp, x, 0.7f));
}
static qat_tensor *f_lin(qat_tape *tp, void *u) { gc_case *c = u; return qat_linear(tp, c->a, c->b, NULL, NULL, 0); }
static qat_tensor *f_ce(qat_tape *tp, void *u) { gc_case *c = u; return qat_cross_entropy(tp, c->a, c->ids); }
static qat_tensor *f_rope(qat_tape *tp, void *u) {
    gc_case *c = u;
    /* the middle third of a fused (M, 3C) tensor */
    int64_t C = qat_tensor_cols(c->a) / 3;
    return qat_rope(tp, qat_cols_of(c->a, C, C), c->T, c->heads, 10000.0);
}
static qat_tensor *f_att(qat_tape *tp, void *u) {
    gc_case *c = u;
    int64_t C = qat_tensor_cols(c->a) / 3;
    return qat_attention(tp, qat_cols_of(c->a, 0, C), qat_cols_of(c->a, C, C),
                         qat_cols_of(c->a, 2 * C, C), c->B, c->T, c->heads);
}
/* attention fed by rope outputs, as in the model */
static qat_tensor *f_rope_att(qat_tape *tp, void *u) {
    gc_case *c = u;
    int64_t C = qat_tensor_cols(c->a) / 3;
    qat_tensor *q = qat_rope(tp, qat_cols_of(c->a, 0, C), c->T, c->heads, 10000.0);
    qat_tensor *k = qat_rope(tp, qat_cols_of(c->a, C, C), c->T, c->heads, 10000.0);
    return qat_attention(tp, qat_cols_of(q, 0, C), qat_cols_of(k, 0, C),
                         qat_cols_of(c->a, 2 * C, C), c->B, c->T, c->heads);
}

/* the model's attention head: q|k|v as column blocks of a linear's output, an
 * arena tensor whose gradient is filled by three first writers (attention, rope k,
 * rope q) without ever being cleared */
static qat_tensor *f_lin_rope_att(qat_tape *tp, void *u) {
    gc_case *c = u;
    qat_tensor *qkv = qat_linear(tp, c->a, c->b, NULL, NULL, 0);
    int64_t C = qat_tensor_cols(qkv) / 3;
    qat_tensor *q = qat_rope(tp, qat_cols_of(qkv, 0, C), c->T, c->heads, 10000.0);
    qat_tensor *k = qat_rope(tp, qat_cols_of(qkv, C, C), c->T, c->heads, 10000.0);
    qat_tensor *att = qat_attention(tp, qat_cols_of(q, 0, C), qat_cols_of(k, 0, C),
                                    qat_cols_of(qkv, 2 * C, C), c->B, c->T, c->heads);
    /* and a residual into a norm: q gets a second, accumulating user */
    return qat_rmsnorm(tp, qat_add(tp, att, q), c->c, 1e-5f);
}

/* the model's wiring: q and k rotated in one rope call over 2H heads, attention
 * reading both out of that one tensor (first writers on disjoint columns) */
static qat_tensor *f_lin_rope2_att(qat_tape *tp, void *u) {
    gc_case *c = u;
    qat_tensor *qkv = qat_linear(tp, c->a, c->b, NULL, NULL, 0);
    int64_t C = qat_tensor_cols(qkv) / 3;
    qat_tensor *qk = qat_rope(tp, qat_cols_of(qkv, 0, 2 * C), c->T, 2 * c->heads, 10000.0);
    qat_tensor *att = qat_attention(tp, qat_cols_of(qk, 0, C), qat_cols_of(qk, C, C),
                                    qat_cols_of(qkv, 2 * C, C), c->B, c->T, c->heads);
    return qat_rmsnorm(tp, att, c->c, 1e-5f);
}

/* the fused op (q and k rotated as each head is loaded) and its composition */
static qat_tensor *f_rope_att_fused(qat_tape *tp, void *u) {
    gc_case *c = u;
    tp->bf16 = c->ids[0];
    return qat_rope_attention(tp, c->a, c->B, c->T, c->heads, 10000.0);
}
/* the fused op when q|k|v's gradient already has a writer: a product of qkv
 * recorded after the attention runs its backward first, so the attention's dq, dk
 * and dv (rotated back) add to what is there instead of storing */
static qat_tensor *f_rope_att_fused_acc(qat_tape *tp, void *u) {
    gc_case *c = u;
    qat_tensor *att = qat_rope_attention(tp, c->a, c->B, c->T, c->heads, 10000.0);
    return qat_add(tp, att, qat_linear(tp, c->a, c->b, NULL, NULL, 0));
}
static qat_tensor *f_rope_att_parts(qat_tape *tp, void *u) {
    gc_case *c = u;
    tp->bf16 = c->ids[0];
    int64_t C = qat_tensor_cols(c->a) / 3;
    qat_tensor *qk = qat_rope(tp, qat_cols_of(c->a, 0, 2 * C), c->T, 2 * c->heads, 10000.0);
    return qat_attention(tp, qat_cols_of(qk, 0, C), qat_cols_of(qk, C, C), qat_cols_of(c->a, 2 * C, C), c->B, c->T,
                         c->heads);
}

static void run(gc_forward_fn f, gc_case *c, int n, const char *label, double h) {
    qat_tensor *in[3] = {c->a, c->b, c->c};
    double worst = gc_check(f, c, in, n, 200, h, label);
    assert_true(worst < TOL);
}

static void test_elementwise(void **state) {
    (void)state;
    gc_case c = {0};
    c.a = gc_param(2, (int64_t[]){6, 10}, 1, 1.0f);
    c.b = gc_param(2, (int64_t[]){6, 10}, 2, 1.0f);
    run(f_add, &c, 2, "add", 1e-2);
    run(f_mul, &c, 2, "mul", 1e-2);
    run(f_scale, &c, 1, "scale", 1e-2);
    run(f_silu, &c, 1, "silu", 1e-2);
    run(f_swiglu, &c, 1, "swiglu", 1e-2);
    gc_param_free(c.a);
    gc_param_free(c.b);
}

static void test_embedding_and_norm(void **state) {
    (void)state;
    gc_case c = {0};
    c.a = gc_param(2, (int64_t[]){5, 8}, 3, 1.0f);
    int32_t ids[12] = {0, 3, 3, 1, 4, 0, 2, 3, 3, 4, 1, 0}; /* repeats on purpose */
    memcpy(c.ids, ids, sizeof ids);
    run(f_emb, &c, 1, "embedding", 1e-2);
    gc_param_free(c.a);

    c.a = gc_param(2, (int64_t[]){7, 16}, 4, 1.5f);
    c.b = gc_param(1, (int64_t[]){16}, 5, 1.0f);
    run(f_rms, &c, 2, "rmsnorm", 1e-2);
    gc_param_free(c.a);
    gc_param_free(c.b);
}

/* One forward and backward of f with output weights R: output and the three
 * inputs' gradients, concatenated into buf. */
static void addrms_run(gc_forward_fn f, gc_case *c, float *buf) {
    qat_tape tp;
    qat_tape_init(&tp, 1 << 20);
    qat_tape_reset(&tp);
    qat_tensor *in[3] = {c->a, c->b, c->c};
    for (int k = 0; k < 3; k++) memset(in[k]->grad, 0, (size_t)in[k]->numel * sizeof(float)), in[k]->grad_epoch = tp.epoch;
    qat_tensor *o = f(&tp, c), *loss;
    float *R = malloc((size_t)o->numel * sizeof(float));
    gc_fill(R, o->numel, 31, 1.0f);
    gc_dot(&tp, o, R, &loss);
    qat_tape_backward(&tp, loss);
    memcpy(buf, o->data, (size_t)o->numel * sizeof(float));
    buf += o->numel;
    for (int k = 0; k < 3; k++) memcpy(buf, in[k]->grad, (size_t)in[k]->numel * sizeof(float)), buf += in[k]->numel;
    free(R);
    qat_tape_free(&tp);
}

/* The fused residual add + RMSNorm: finite differences with and without a later
 * user of the sum and with a == b, and the same bits as qat_add then qat_rmsnorm. */
static void test_add_rmsnorm(void **state) {
    (void)state;
    gc_case c = {0};
    c.a = gc_param(2, (int64_t[]){7, 48}, 14, 1.5f);
    c.b = gc_param(2, (int64_t[]){7, 48}, 15, 1.0f);
    c.c = gc_param(1, (int64_t[]){48}, 16, 1.0f);
    run(f_addrms, &c, 3, "add+rmsnorm", 1e-2);
    run(f_addrms_end, &c, 3, "add+rmsnorm (sum unused)", 1e-2);
    gc_case s = c;
    s.b = s.c; /* inputs a and the weight */
    qat_tensor *in[2] = {s.a, s.c};
    assert_true(gc_check(f_addrms_self, &s, in, 2, 200, 1e-2, "add+rmsnorm (a + a)") < TOL);
    int64_t n = 4 * 7 * 48;
    float *u = malloc((size_t)n * sizeof(float)), *v = malloc((size_t)n * sizeof(float));
    addrms_run(f_addrms, &c, u);
    addrms_run(f_addrms_unfused, &c, v);
    assert_memory_equal(u, v, (size_t)(3 * 7 * 48 + 48) * sizeof(float));
    free(u); free(v);
    gc_param_free(c.a);
    gc_param_free(c.b);
    gc_param_free(c.c);
}

/* One forward and backward of f on c->a with output weights from seed 33: the
 * output and a's gradient, concatenated into buf. */
static void rope_att_run(gc_forward_fn f, gc_case *c, float *buf) {
    qat_tape tp;
    qat_tape_init(&tp, 1 << 22);
    qat_tape_reset(&tp);
    memset(c->a->grad, 0, (size_t)c->a->numel * sizeof(float));
    c->a->grad_epoch = tp.epoch;
    qat_tensor *o = f(&tp, c), *loss;
    float *R = malloc((size_t)o->numel * sizeof(float));
    gc_fill(R, o->numel, 33, 1.0f);
    gc_dot(&tp, o, R, &loss);
    qat_tape_backward(&tp, loss);
    memcpy(buf, o->data, (size_t)o->numel * sizeof(float));
    memcpy(buf + o->numel, c->a->grad, (size_t)c->a->numel * sizeof(float));
    free(R);
    qat_tape_free(&tp);
}

/* qat_rope_attention, which rotates q and k as each head is loaded and rotates
 * their gradients back as it stores them: the same values as qat_rope over q|k
 * then qat_attention, at T = 37, 64, 5, 9 and 13 and head dims 16 and 32 (the
 * vector kernels) and 8 and 24 (the plain loops). In f32 the same bits (same
 * formulas in the same order); under the bf16 kernels equal values (== lets the
 * sign of a zero differ). Finite differences in f32, also with q|k|v's gradient
 * accumulated into rather than stored. */
static void test_rope_attention_fused(void **state) {
    (void)state;
    static const int64_t shapes[5][4] = {{2, 37, 3, 16}, {1, 64, 2, 32}, {1, 5, 2, 16}, {2, 9, 2, 8}, {1, 13, 2, 24}};
    for (int sh = 0; sh < 5; sh++)
        for (int bf = 0; bf < 2; bf++) {
            gc_case c = {0};
            c.B = shapes[sh][0]; c.T = shapes[sh][1]; c.heads = (int)shapes[sh][2];
            int64_t C = c.heads * shapes[sh][3], M = c.B * c.T, n = M * C + M * 3 * C;
            c.a = gc_param(2, (int64_t[]){M, 3 * C}, 40 + (uint64_t)sh, 1.5f);
            c.ids[0] = bf;
            c.b = gc_param(2, (int64_t[]){C, 3 * C}, 50 + (uint64_t)sh, 0.5f);
            float *u = malloc((size_t)n * sizeof(float)), *v = malloc((size_t)n * sizeof(float));
            rope_att_run(f_rope_att_fused, &c, u);
            rope_att_run(f_rope_att_parts, &c, v);
            int64_t diff = 0;
            for (int64_t i = 0; i < n; i++) diff += !(u[i] == v[i]);
            printf("  rope+attention %s B%lld T%lld H%d: %lld of %lld values differ\n", bf ? "bf16" : "f32",
                   (long long)c.B, (long long)c.T, c.heads, (long long)diff, (long long)n);
            assert_int_equal(diff, 0);
            if (!bf) assert_memory_equal(u, v, (size_t)n * sizeof(float));
            if (!bf && sh >= 2) {
                run(f_rope_att_fused, &c, 1, "rope_attention (fused)", 1e-2);
                run(f_rope_att_fused_acc, &c, 2, "rope_attention (fused), gradient accumulated", 1e-2);
            }
            free(u); free(v);
            gc_param_free(c.a);
            gc_param_free(c.b);
        }
}

static void test_linear(void **state) {
    (void)state;
    gc_case c = {0};
    c.a = gc_param(2, (int64_t[]){9, 12}, 6, 1.0f);
    c.b = gc_param(2, (int64_t[]){7, 12}, 7, 0.5f);
    run(f_lin, &c, 2, "linear (fp32)", 1e-2);
    gc_param_free(c.a);
    gc_param_free(c.b);
}

static void test_rope_and_attention(void **state) {
    (void)state;
    gc_case c = {0};
    c.B = 2; c.T = 5; c.heads = 2;
    int64_t C = 8;
    c.a = gc_param(2, (int64_t[]){c.B * c.T, 3 * C}, 8, 1.0f);
    run(f_rope, &c, 1, "rope", 1e-2);
    run(f_att, &c, 1, "attention", 1e-2);
    run(f_rope_att, &c, 1, "rope+attention", 1e-2);
    gc_param_free(c.a);
}

static void test_fused_qkv_gradients(void **state) {
    (void)state;
    gc_case c = {0};
    c.B = 2; c.T = 5; c.heads = 2;
    int64_t C = 32; /* head dim 16: the SIMD kernels */
    c.a = gc_param(2, (int64_t[]){c.B * c.T, 12}, 11, 1.0f);
    c.b = gc_param(2, (int64_t[]){3 * C, 12}, 12, 0.5f);
    c.c = gc_param(1, (int64_t[]){C}, 13, 1.0f);
    run(f_lin_rope_att, &c, 3, "linear -> rope/attention -> add -> rmsnorm", 1e-2);
    run(f_lin_rope2_att, &c, 3, "linear -> rope(q|k)/attention -> rmsnorm", 1e-2);
    gc_param_free(c.a);
    gc_param_free(c.b);
    gc_param_free(c.c);
}

/* First-writer bookkeeping of qat_tensor_grad_cols: column blocks written by
 * first writers leave no clear behind; an accumulating user or a block that is
 * not adjacent to what was written gets the rest of the buffer zeroed. */
static void test_grad_first_writer(void **state) {
    (void)state;
    qat_tape tp;
    qat_tape_init(&tp, 1 << 20);
    qat_tape_reset(&tp);
    qat_tensor *t = qat_tape_tensor(&tp, 2, (int64_t[]){3, 9});
    for (int64_t i = 0; i < t->numel; i++) t->grad[i] = 7.0f; /* garbage from a past step */
    int first;
    assert_non_null(qat_tensor_grad_cols(t, tp.epoch, 6, 3, &first));
    assert_int_equal(first, 1);
    qat_tensor_grad_cols(t, tp.epoch, 6, 3, &first); /* same block again: accumulate */
    assert_int_equal(first, 0);
    qat_tensor_grad_cols(t, tp.epoch, 3, 3, &first); /* adjacent below */
    assert_int_equal(first, 1);
    for (int64_t r = 0; r < 3; r++)
        for (int64_t j = 3; j < 9; j++) t->grad[r * 9 + j] = 1.0f; /* what the writers stored */
    float *g = qat_grad(&tp, t); /* a reader: columns 0..2 are cleared, the rest kept */
    for (int64_t r = 0; r < 3; r++)
        for (int64_t j = 0; j < 9; j++) assert_float_equal(g[r * 9 + j], j < 3 ? 0.0f : 1.0f, 0);
    qat_tensor_grad_cols(t, tp.epoch, 0, 3, &first); /* already cleared: accumulate */
    assert_int_equal(first, 0);
    /* next pass: a non-adjacent block makes the tensor clear the uncovered columns */
    qat_tape_reset(&tp);
    t->grad_epoch = 0;
    for (int64_t i = 0; i < t->numel; i++) t->grad[i] = 7.0f;
    qat_tensor_grad_cols(t, tp.epoch, 0, 2, &first);
    assert_int_equal(first, 1);
    for (int64_t r = 0; r < 3; r++) t->grad[r * 9] = t->grad[r * 9 + 1] = 1.0f;
    qat_tensor_grad_cols(t, tp.epoch, 5, 2, &first);
    assert_int_equal(first, 0);
    for (int64_t r = 0; r < 3; r++)
        for (int64_t j = 0; j < 9; j++) assert_float_equal(t->grad[r * 9 + j], j < 2 ? 1.0f : 0.0f, 0);
    qat_tape_free(&tp);
}

/* The tape keeps the first RoPE table it builds; a rope of another length or
 * head size on the same tape must still get its own table. */
static void test_rope_table_per_shape(void **state) {
    (void)state;
    qat_tensor *x = gc_param(2, (int64_t[]){12, 8}, 14, 1.0f);
    qat_tape a, b;
    qat_tape_init(&a, 1 << 20);
    qat_tape_init(&b, 1 << 20);
    a.grad_enabled = b.grad_enabled = 0;
    qat_tensor *first = qat_rope(&a, qat_cols_of(x, 0, 8), 6, 2, 10000.0);  /* T 6, hd 4: cached */
    qat_tensor *other = qat_rope(&a, qat_cols_of(x, 0, 8), 4, 1, 10000.0);  /* T 4, hd 8: not */
    qat_tensor *again = qat_rope(&a, qat_cols_of(x, 0, 8), 6, 2, 10000.0);  /* the cached one */
    qat_tensor *fresh = qat_rope(&b, qat_cols_of(x, 0, 8), 4, 1, 10000.0);  /* T 4, hd 8 first */
    for (int64_t i = 0; i < 96; i++) {
        assert_float_equal(other->data[i], fresh->data[i], 0);
        assert_float_equal(again->data[i], first->data[i], 0);
    }
    int differ = 0;
    for (int64_t i = 0; i < 96; i++) differ += first->data[i] != other->data[i];
    assert_true(differ > 0);
    qat_tape_free(&a);
    qat_tape_free(&b);
    gc_param_free(x);
}

static void test_cross_entropy(void **state) {
    (void)state;
    gc_case c = {0};
    c.a = gc_param(2, (int64_t[]){10, 11}, 9, 2.0f);
    for (int i = 0; i < 10; i++) c.ids[i] = (i * 7) % 11;
    run(f_ce, &c, 1, "cross_entropy", 1e-2);
    /* value check: uniform logits give log(V) */
    qat_tape tp;
    qat_tape_init(&tp, 1 << 20);
    tp.grad_enabled = 0;
    for (int64_t i = 0; i < c.a->numel; i++) c.a->data[i] = 0.25f;
    qat_tensor *l = qat_cross_entropy(&tp, c.a, c.ids);
    assert_float_equal(l->data[0], logf(11.0f), 1e-5);
    qat_tape_free(&tp);
    gc_param_free(c.a);
}

/* Attention is causal: changing a later token leaves earlier outputs alone. */
static void test_attention_is_causal(void **state) {
    (void)state;
    int64_t B = 1, T = 6, C = 8;
    qat_tensor *x = gc_param(2, (int64_t[]){B * T, 3 * C}, 10, 1.0f);
    qat_tape tp;
    qat_tape_init(&tp, 1 << 20);
    tp.grad_enabled = 0;
    qat_tensor *o1 = qat_attention(&tp, qat_cols_of(x, 0, C), qat_cols_of(x, C, C), qat_cols_of(x, 2 * C, C), B, T, 2);
    float before[3 * 8];
    memcpy(before, o1->data, sizeof before);
    for (int64_t j = 0; j < 3 * C; j++) x->data[(T - 1) * 3 * C + j] += 3.0f;
    qat_tensor *o2 = qat_attention(&tp, qat_cols_of(x, 0, C), qat_cols_of(x, C, C), qat_cols_of(x, 2 * C, C), B, T, 2);
    for (int i = 0; i < 3 * 8; i++) assert_float_equal(before[i], o2->data[i], 0);
    int changed = 0; /* o1 was not overwritten: the arena only grows until reset */
    for (int64_t j = 0; j < C; j++) changed += o2->data[(T - 1) * C + j] != o1->data[(T - 1) * C + j];
    assert_true(changed > 0);
    qat_tape_free(&tp);
    gc_param_free(x);
}

/* The row-wise causal kernel against attention written out in double, at a
 * length that is no multiple of any vector width (T = 37), head dims 16 and 32,
 * q/k/v as column blocks of one fused buffer: outputs and all three gradients
 * for a fixed output gradient R. */
static void attention_vs_reference_at(int64_t B, int64_t T, int H, int64_t hd, int bf16, double tol) {
    int64_t C = H * hd, M = B * T;
    qat_tape tp;
    qat_tape_init(&tp, 1 << 22);
    qat_tape_reset(&tp);
    tp.bf16 = bf16;
    qat_tensor *x = qat_tape_tensor(&tp, 2, (int64_t[]){M, 3 * C});
    gc_fill(x->data, x->numel, 21, 1.5f);
    float *R = malloc((size_t)(M * C) * sizeof(float));
    gc_fill(R, M * C, 22, 1.0f);
    qat_tensor *o = qat_attention(&tp, qat_cols_of(x, 0, C), qat_cols_of(x, C, C), qat_cols_of(x, 2 * C, C), B, T, H);
    qat_tensor *loss;
    gc_dot(&tp, o, R, &loss);
    qat_tape_backward(&tp, loss);
    double *gref = calloc((size_t)(M * 3 * C), sizeof(double));
    double *p = malloc((size_t)T * sizeof(double)), *dp = malloc((size_t)T * sizeof(double));
    double a = 1.0 / sqrt((double)hd), worst_o = 0, worst_g = 0, gmax = 0;
    for (int64_t b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int64_t i = 0; i < T; i++) {
                const float *q = x->data + (b * T + i) * 3 * C + h * hd;
                double mx = -INFINITY, sum = 0;
                for (int64_t j = 0; j <= i; j++) {
                    const float *k = x->data + (b * T + j) * 3 * C + C + h * hd;
                    double s = 0;
                    for (int64_t d = 0; d < hd; d++) s += (double)q[d] * k[d];
                    p[j] = a * s;
                    mx = fmax(mx, p[j]);
                }
                for (int64_t j = 0; j <= i; j++) sum += (p[j] = exp(p[j] - mx));
                const float *r = R + (b * T + i) * C + h * hd;
                double D = 0;
                for (int64_t j = 0; j <= i; j++) {
                    p[j] /= sum;
                    const float *v = x->data + (b * T + j) * 3 * C + 2 * C + h * hd;
                    dp[j] = 0;
                    for (int64_t d = 0; d < hd; d++) dp[j] += (double)r[d] * v[d];
                    D += p[j] * dp[j];
                }
                for (int64_t d = 0; d < hd; d++) {
                    double od = 0;
                    for (int64_t j = 0; j <= i; j++) od += p[j] * x->data[(b * T + j) * 3 * C + 2 * C + h * hd + d];
                    worst_o = fmax(worst_o, fabs(od - o->data[(b * T + i) * C + h * hd + d]));
                }
                for (int64_t j = 0; j <= i; j++) {
                    double ds = p[j] * (dp[j] - D);
                    const float *k = x->data + (b * T + j) * 3 * C + C + h * hd;
                    for (int64_t d = 0; d < hd; d++) {
                        gref[(b * T + i) * 3 * C + h * hd + d] += a * ds * k[d];
                        gref[(b * T + j) * 3 * C + C + h * hd + d] += a * ds * q[d];
                        gref[(b * T + j) * 3 * C + 2 * C + h * hd + d] += p[j] * r[d];
                    }
                }
            }
    for (int64_t i = 0; i < M * 3 * C; i++) gmax = fmax(gmax, fabs(gref[i]));
    for (int64_t i = 0; i < M * 3 * C; i++) worst_g = fmax(worst_g, fabs(gref[i] - x->grad[i]) / gmax);
    printf("  attention%s B%lld T%lld H%d hd%lld: max |out - ref| %.2e, worst grad rel err %.2e\n", bf16 ? " bf16" : "",
           (long long)B, (long long)T, H, (long long)hd, worst_o, worst_g);
    assert_true(worst_o < tol);
    assert_true(worst_g < tol);
    /* the bf16 products did run where the CPU has them (f32 is <1e-6 off) */
    if (bf16 && qat_cpu_avx512bf16() && (hd == 16 || hd == 32)) assert_true(worst_o > 1e-5);
    free(gref); free(p); free(dp); free(R);
    qat_tape_free(&tp);
}

static void attention_vs_reference(int64_t B, int64_t T, int H, int64_t hd) {
    attention_vs_reference_at(B, T, H, hd, 0, 1e-5);
}

/* train.precision: bf16 runs attention's four products on bf16 operands (f32
 * accumulation, f32 softmax): within bf16 rounding of the double reference, at
 * odd and even lengths, several blocks, head dims 16 and 32 and one (64) the bf16
 * kernels leave to the f32 path. */
static void test_attention_bf16_vs_reference(void **state) {
    (void)state;
    attention_vs_reference_at(2, 37, 3, 16, 1, 5e-2);
    attention_vs_reference_at(1, 70, 2, 32, 1, 5e-2);
    attention_vs_reference_at(1, 64, 2, 32, 1, 5e-2);
    attention_vs_reference_at(3, 1, 2, 16, 1, 5e-2);
    attention_vs_reference_at(2, 9, 2, 32, 1, 5e-2);  /* one 8-row forward block and a row; one partial 16-row backward block */
    attention_vs_reference_at(1, 17, 2, 16, 1, 5e-2); /* 8 + 8 + 1 forward rows, 16 + 1 backward rows */
    attention_vs_reference_at(1, 19, 1, 64, 1, 1e-5);
}

static void test_attention_kernel_vs_reference(void **state) {
    (void)state;
    attention_vs_reference(2, 37, 3, 16);
    attention_vs_reference(1, 37, 2, 32);
    attention_vs_reference(3, 1, 2, 16); /* a single position: output = v */
}

/* The 16-lane exp of SwiGLU and the cross-entropy (core/vexpf.h) writes expf's bits:
 * every 257th bit pattern of all 2³² floats (the patterns step through every
 * exponent and sign), every float within 64 ulps of the ±88 switch to the library
 * path, ±0, ±inf and NaN. */
static void test_vexpf_matches_expf(void **state) {
    (void)state;
    enum { CHUNK = 4096 };
    static float in[CHUNK], out[CHUNK];
    int64_t n = 0, bad = 0;
    uint64_t u = 0;
    while (u < (1ull << 32)) {
        int k = 0;
        for (; k < CHUNK && u < (1ull << 32); k++, u += 257) {
            uint32_t b = (uint32_t)u;
            memcpy(&in[k], &b, 4);
        }
        qat_vexpf_row(in, out, k);
        for (int i = 0; i < k; i++) {
            float e = expf(in[i]);
            if (memcmp(&e, &out[i], 4) && bad++ < 5) print_message("expf(%a): %a, library %a\n", in[i], out[i], e);
        }
        n += k;
    }
    int k = 0;
    const float edges[] = {88.0f, -88.0f, 0.0f, -0.0f, INFINITY, -INFINITY, NAN, 89.0f, -104.0f, -87.5f};
    for (size_t e = 0; e < sizeof edges / sizeof *edges; e++) {
        float x = edges[e];
        for (int d = 0; d < 64 && k < CHUNK; d++) {
            in[k++] = x;
            x = nextafterf(x, 0.0f);
        }
    }
    qat_vexpf_row(in, out, k);
    for (int i = 0; i < k; i++) {
        float e = expf(in[i]);
        if (memcmp(&e, &out[i], 4) && bad++ < 5) print_message("expf(%a): %a, library %a\n", in[i], out[i], e);
    }
    if (bad) fail_msg("%lld of %lld values differ from expf", (long long)bad, (long long)(n + k));
}

/* The shapes and transposes of a linear layer's three products, and odd rows,
 * for the tests of the product's variants below. */
static const int64_t gemm_shapes[][5] = {
    /* M, N, K, ta, tb */
    {512, 96, 64, 0, 1},  /* forward: x (M,K) · Wᵀ, W (N,K) */
    {512, 64, 96, 0, 0},  /* dX: dy (M,N) · W (N,K) */
    {96, 64, 512, 1, 0},  /* dW: dyᵀ · x */
    {333, 48, 80, 0, 1},  /* odd rows: never split */
};

#define GEMM_NSHAPES ((int)(sizeof gemm_shapes / sizeof *gemm_shapes))

/* Case c of 2·GEMM_NSHAPES·(1 + bf16): a shape, with or without accumulation,
 * in f32 or bf16; its operands A (M, K) or, with ta, (K, M) and B (K, N) or
 * (N, K), filled from seed, with their bf16 roundings. */
typedef struct {
    int64_t M, N, K;
    int ta, tb;
    int acc, bf;  /* accumulate into C; bf16 operands */
    float *A, *B;
    uint16_t *Ab, *Bb;
} gemm_case;

static gemm_case gemm_case_make(int c, uint64_t seed) {
    int sh = (c / 2) % GEMM_NSHAPES;
    gemm_case g = {gemm_shapes[sh][0], gemm_shapes[sh][1], gemm_shapes[sh][2], (int)gemm_shapes[sh][3],
                   (int)gemm_shapes[sh][4], c % 2, c / (2 * GEMM_NSHAPES), NULL, NULL, NULL, NULL};
    g.A = malloc((size_t)(g.M * g.K) * sizeof(float)), g.B = malloc((size_t)(g.K * g.N) * sizeof(float));
    g.Ab = malloc((size_t)(g.M * g.K) * sizeof(uint16_t)), g.Bb = malloc((size_t)(g.K * g.N) * sizeof(uint16_t));
    gc_fill(g.A, g.M * g.K, seed + (uint64_t)sh, 1.0f);
    gc_fill(g.B, g.K * g.N, seed + 1 + (uint64_t)sh, 0.3f);
    qat_to_bf16(g.A, g.Ab, g.M * g.K);
    qat_to_bf16(g.B, g.Bb, g.K * g.N);
    return g;
}

static void gemm_case_free(gemm_case *g) { free(g->A), free(g->B), free(g->Ab), free(g->Bb); }

/* oneDNN's ISA into isa; *exact = 1 where the variants were checked to keep the
 * bits (AVX-512 without AMX). Returns 1 when bf16 products run natively. */
static int gemm_isa(const char **isa, int *exact) {
    int have_bf16 = qat_gemm_bf16_supported(isa);
    *exact = !strncmp(*isa, "avx512_core", 11) && strcmp(*isa, "avx512_core_amx") != 0;
    return have_bf16;
}

/* B packing (autograd/gemm.h): the same products with B reordered into the
 * kernel's layout first (mode 2: every 2-D product; mode 1: bf16 or narrow B) and
 * with B read as given (mode 0) agree bit for bit, in both precisions, for the
 * shapes and transposes of a linear layer's three products, with and without
 * accumulation and output scale; and the packed modes did pack. Packing runs on
 * AVX-512 only (below it oneDNN picks another kernel: nothing packs here); the
 * bits were checked on avx512_core_bf16, and on AMX, where they were not, the
 * products must agree to float rounding (|Δ| <= 1e-5·(|c| + 1)). */
static void test_gemm_packing_same_bits(void **state) {
    (void)state;
    const char *isa;
    int exact, have_bf16 = gemm_isa(&isa, &exact);
    const int packs = !strncmp(isa, "avx512_core", 11);
    print_message("  oneDNN ISA %s: %s\n", isa, !packs ? "no packing" : exact ? "same bits expected" : "same values to rounding");
    qat_gemm_set_split(0); /* whole products: a one-thread slice may take a kernel that does not pack */
    for (int cs = 0; cs < 2 * GEMM_NSHAPES * (1 + have_bf16); cs++) {
        gemm_case g = gemm_case_make(cs, 71);
        int64_t M = g.M, N = g.N, K = g.K;
        int ta = g.ta, tb = g.tb, bf = g.bf, acc = g.acc;
        const void *a = bf ? (const void *)g.Ab : g.A, *b = bf ? (const void *)g.Bb : g.B;
        float *C[3];
        int packed[3];
        for (int mode = 0; mode < 3; mode++) {
            qat_gemm_set_packing(mode);
            C[mode] = malloc((size_t)(M * N) * sizeof(float));
            gc_fill(C[mode], M * N, 73, 1.0f); /* what an accumulating product adds to */
            qat_gemm_scaled(bf, ta, tb, M, N, K, a, ta ? M : K, b, tb ? K : N, C[mode], N, acc,
                            acc ? 1.0f : 0.5f);
            packed[mode] = qat_gemm_cache_packed();
        }
        int64_t bad = 0;
        for (int mode = 1; mode < 3; mode++)
            for (int64_t i = 0; i < M * N; i++)
                bad += exact || !packs ? memcmp(&C[0][i], &C[mode][i], sizeof(float)) != 0
                                       : fabsf(C[0][i] - C[mode][i]) > 1e-5f * (fabsf(C[0][i]) + 1.0f);
        print_message("  %s %lldx%lldx%lld ta=%d tb=%d acc=%d: packed %d/%d/%d, %lld values differ\n",
                      bf ? "bf16" : "f32", (long long)M, (long long)N, (long long)K, ta, tb, acc, packed[0],
                      packed[1], packed[2], (long long)bad);
        assert_int_equal(bad, 0);
        assert_int_equal(packed[0], 0);
        assert_int_equal(packed[1], packs && (bf || 4 * N <= M)); /* the rule */
        assert_int_equal(packed[2], packs);
        for (int mode = 0; mode < 3; mode++) free(C[mode]);
        gemm_case_free(&g);
    }
    qat_gemm_set_packing(1);
    qat_gemm_set_split(1);
}

static float bf16_value(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Row split (autograd/gemm.h): at 2 threads a product whose M is a multiple of
 * 32 runs as two one-thread products on half the rows each (mode 1) and did
 * split; odd rows do not. The forward and dX products (A row-major) give the
 * whole product's bits on AVX-512 without AMX, where that was checked; a weight
 * gradient's product (A transposed) is summed by another kernel, so there and
 * elsewhere each value must lie within the classic bound of a K-term sum taken in
 * any order: |Δ| <= 2(K + 2)·2⁻²⁴·(|α| Σ_k |a_ik b_kj| + |c_ij|), Higham's γ_K for
 * each of the two results plus the accumulated c. */
static void test_gemm_split(void **state) {
    (void)state;
    const char *isa;
    int exact_rows, have_bf16 = gemm_isa(&isa, &exact_rows);
    const int threads = omp_get_max_threads();
    omp_set_num_threads(2);
    for (int cs = 0; cs < 2 * GEMM_NSHAPES * (1 + have_bf16); cs++) {
        gemm_case g = gemm_case_make(cs, 81);
        int64_t M = g.M, N = g.N, K = g.K;
        int ta = g.ta, tb = g.tb, bf = g.bf, acc = g.acc;
        int64_t lda = ta ? M : K, ldb = tb ? K : N;
        float alpha = acc ? 1.0f : 0.5f;
        float *A = g.A, *B = g.B;
        if (bf) { /* the bound below on the values the product sees */
            for (int64_t i = 0; i < M * K; i++) A[i] = bf16_value(g.Ab[i]);
            for (int64_t i = 0; i < K * N; i++) B[i] = bf16_value(g.Bb[i]);
        }
        const void *a = bf ? (const void *)g.Ab : A, *b = bf ? (const void *)g.Bb : B;
        float *C[2];
        int split[2];
        for (int mode = 0; mode < 2; mode++) {
            qat_gemm_set_split(mode);
            qat_gemm_shutdown(); /* count this product's entry alone */
            C[mode] = malloc((size_t)(M * N) * sizeof(float));
            gc_fill(C[mode], M * N, 83, 1.0f); /* what an accumulating product adds to */
            qat_gemm_scaled(bf, ta, tb, M, N, K, a, lda, b, ldb, C[mode], N, acc, alpha);
            split[mode] = qat_gemm_cache_split();
        }
        float *C0 = malloc((size_t)(M * N) * sizeof(float));
        gc_fill(C0, M * N, 83, 1.0f);
        int64_t bad = 0, differ = 0;
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double s = 0;
                for (int64_t k = 0; k < K; k++)
                    s += fabs((double)A[ta ? k * lda + i : i * lda + k] * B[tb ? j * ldb + k : k * ldb + j]);
                double bound = 2.0 * (double)(K + 2) * ldexp(1.0, -24) * (alpha * s + (acc ? fabs(C0[i * N + j]) : 0));
                float x = C[0][i * N + j], y = C[1][i * N + j];
                differ += memcmp(&x, &y, sizeof x) != 0;
                bad += fabs((double)x - y) > bound;
            }
        print_message("  %s %lldx%lldx%lld ta=%d tb=%d acc=%d: split %d/%d, %lld values differ, %lld past the bound\n",
                      bf ? "bf16" : "f32", (long long)M, (long long)N, (long long)K, ta, tb, acc, split[0], split[1],
                      (long long)differ, (long long)bad);
        assert_int_equal(split[0], 0);
        assert_int_equal(split[1], M % 32 == 0);
        assert_int_equal(bad, 0);
        if (exact_rows && !ta) assert_int_equal(differ, 0);
        free(C[0]), free(C[1]), free(C0);
        gemm_case_free(&g);
    }
    qat_gemm_set_split(1);
    omp_set_num_threads(threads);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_elementwise),
        cmocka_unit_test(test_embedding_and_norm),
        cmocka_unit_test(test_linear),
        cmocka_unit_test(test_rope_and_attention),
        cmocka_unit_test(test_cross_entropy),
        cmocka_unit_test(test_attention_is_causal),
        cmocka_unit_test(test_attention_kernel_vs_reference),
        cmocka_unit_test(test_attention_bf16_vs_reference),
        cmocka_unit_test(test_add_rmsnorm),
        cmocka_unit_test(test_rope_attention_fused),
        cmocka_unit_test(test_fused_qkv_gradients),
        cmocka_unit_test(test_grad_first_writer),
        cmocka_unit_test(test_rope_table_per_shape),
        cmocka_unit_test(test_vexpf_matches_expf),
        cmocka_unit_test(test_gemm_packing_same_bits),
        cmocka_unit_test(test_gemm_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

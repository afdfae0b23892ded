/*
 * tests/gradcheck.h — finite-difference checking of tape gradients.
 *
 * A check builds a scalar L = Σ_i out_i·R_i from an op's output and fixed random
 * weights R, runs the tape backward, and compares every input gradient against
 * central differences (L(θ+h) − L(θ−h)) / 2h computed in double over the same
 * forward. The tolerance is relative to the gradient's overall scale, since
 * float32 forwards limit the accuracy of the differences.
 */
#ifndef QAT_TESTS_GRADCHECK_H
#define QAT_TESTS_GRADCHECK_H

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "autograd/ops.h"
#include "core/rng.h"

typedef qat_tensor *(*gc_forward_fn)(qat_tape *tp, void *user);

typedef struct {
    qat_tensor *out;  /* the op output being probed */
    const float *R;   /* fixed random weights, out->numel */
    qat_tensor *loss; /* scalar */
} gc_dot_ctx;

static void gc_dot_backward(qat_tape *tp, void *p) {
    gc_dot_ctx *c = p;
    float *g = qat_grad(tp, c->out);
    float s = c->loss->grad[0];
    for (int64_t i = 0; i < c->out->numel; i++) g[i] += s * c->R[i];
}

/* L = Σ out·R as a tape op (kept in double for the value). */
static inline double gc_dot(qat_tape *tp, qat_tensor *out, const float *R, qat_tensor **loss_out) {
    double s = 0;
    for (int64_t i = 0; i < out->numel; i++) s += (double)out->data[i] * R[i];
    qat_tensor *loss = qat_tape_tensor(tp, 1, (int64_t[]){1});
    loss->data[0] = (float)s;
    if (tp->grad_enabled) {
        gc_dot_ctx *c = qat_tape_ctx(tp, sizeof *c);
        c->out = out; c->R = R; c->loss = loss;
        qat_tape_push(tp, gc_dot_backward, c);
    }
    if (loss_out) *loss_out = loss;
    return s;
}

static inline void gc_fill(float *x, int64_t n, uint64_t seed, float scale) {
    qat_rng r = qat_rng_make(seed, 77);
    for (int64_t i = 0; i < n; i++) x[i] = (float)(scale * qat_rng_normal(&r));
}

/* Compare the analytic gradient of every tensor in `inputs` with central
 * differences; returns the worst relative error (max |a − n| / max(|n|∞, tiny)). */
static inline double gc_check(gc_forward_fn fwd, void *user, qat_tensor **inputs, int n_inputs,
                              int64_t max_probe, double h, const char *label) {
    qat_tape tp;
    qat_tape_init(&tp, 1 << 22);
    /* Poison the arena as a past step would leave it: gradients whose first
     * writer stores instead of adding must never read it (NaN would show). */
    float *junk = qat_tape_floats(&tp, (1 << 22) / sizeof(float));
    for (int64_t i = 0; i < (1 << 22) / (int64_t)sizeof(float); i++) junk[i] = NAN;
    /* analytic */
    for (int k = 0; k < n_inputs; k++) memset(inputs[k]->grad, 0, (size_t)inputs[k]->numel * sizeof(float));
    qat_tape_reset(&tp);
    for (int k = 0; k < n_inputs; k++) inputs[k]->grad_epoch = tp.epoch;
    qat_tensor *out = fwd(&tp, user);
    float *R = malloc((size_t)out->numel * sizeof(float));
    gc_fill(R, out->numel, 4242, 1.0f);
    qat_tensor *loss;
    gc_dot(&tp, out, R, &loss);
    qat_tape_backward(&tp, loss);

    double worst = 0;
    tp.grad_enabled = 0;
    for (int k = 0; k < n_inputs; k++) {
        qat_tensor *t = inputs[k];
        double gmax = 0;
        for (int64_t i = 0; i < t->numel; i++) gmax = isnan(t->grad[i]) ? INFINITY : fmax(gmax, fabs(t->grad[i]));
        if (isinf(gmax)) printf("  %-28s input %d: NaN in the analytic gradient\n", label, k);
        int64_t stride = t->numel > max_probe ? t->numel / max_probe : 1;
        double err_max = 0;
        for (int64_t i = 0; i < t->numel; i += stride) {
            float saved = t->data[i];
            t->data[i] = saved + (float)h;
            qat_tape_reset(&tp);
            double lp = gc_dot(&tp, fwd(&tp, user), R, NULL);
            t->data[i] = saved - (float)h;
            qat_tape_reset(&tp);
            double lm = gc_dot(&tp, fwd(&tp, user), R, NULL);
            t->data[i] = saved;
            double num = (lp - lm) / (2 * h);
            double err = fabs(num - t->grad[i]) / fmax(gmax, 1e-6);
            err_max = isnan(err) ? INFINITY : fmax(err_max, err); /* fmax would drop a NaN */
        }
        printf("  %-28s input %d: |grad|max %.3e, worst rel err %.2e\n", label, k, gmax, err_max);
        worst = isinf(gmax) ? INFINITY : fmax(worst, err_max);
    }
    free(R);
    qat_tape_free(&tp);
    return worst;
}

/* A parameter-like tensor with its own value and gradient buffers. */
static inline qat_tensor *gc_param(int ndim, const int64_t *shape, uint64_t seed, float scale) {
    qat_tensor *t = calloc(1, sizeof *t);
    qat_tensor_set_shape(t, ndim, shape);
    t->data = malloc((size_t)t->numel * sizeof(float));
    t->grad = malloc((size_t)t->numel * sizeof(float));
    gc_fill(t->data, t->numel, seed, scale);
    return t;
}

static inline void gc_param_free(qat_tensor *t) {
    free(t->data);
    free(t->grad);
    free(t);
}

#endif

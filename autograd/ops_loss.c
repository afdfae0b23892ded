/*
 * autograd/ops_loss.c — fused log-softmax cross-entropy.
 *
 * loss = mean_r [ logsumexp(logits_r) − logits_r[target_r] ]. The forward keeps
 * only the per-row log-sum-exp; the backward rebuilds softmax from it, so no
 * (M, V) probability buffer is stored.
 */
#include <math.h>

#include "core/error.h"
#include "core/vexpf.h"
#include "ops.h"

typedef struct {
    qat_tensor *logits, *out; /* (M, V) and the scalar loss */
    const int32_t *targets;   /* M ids (caller-owned) */
    float *lse;               /* (M) log-sum-exp per row */
} ce_ctx;

static void ce_backward(qat_tape *tp, void *p) {
    ce_ctx *c = p;
    int first;
    float *gl = qat_grad_all(tp, c->logits, &first);
    if (!gl) return;
    int64_t M = qat_tensor_rows(c->logits), V = qat_tensor_cols(c->logits);
    float scale = qat_grad(tp, c->out)[0] / (float)M;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < M; r++) {
        const float *l = c->logits->data + r * V;
        float *g = gl + r * V;
        float lse = c->lse[r], e[256];
        for (int64_t j0 = 0; j0 < V; j0 += 256) {
            int64_t n = V - j0 < 256 ? V - j0 : 256;
            for (int64_t j = 0; j < n; j++) e[j] = l[j0 + j] - lse;
            qat_vexpf_row(e, e, n); /* expf's bits, 16 at a time */
            for (int64_t j = 0; j < n; j++) {
                float d = scale * e[j];
                g[j0 + j] = first ? d : g[j0 + j] + d; /* first writer stores: no clear needed */
            }
        }
        g[c->targets[r]] -= scale;
    }
}

qat_tensor *qat_cross_entropy(qat_tape *tp, qat_tensor *logits, const int32_t *targets) {
    int64_t M = qat_tensor_rows(logits), V = qat_tensor_cols(logits);
    float *lse = qat_tape_floats(tp, M);
    float *row_loss = qat_tape_floats(tp, M);
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < M; r++) {
        const float *l = logits->data + r * V;
        QAT_ASSERT(targets[r] >= 0 && targets[r] < V);
        float mx = l[0];
        for (int64_t j = 1; j < V; j++) mx = l[j] > mx ? l[j] : mx;
        float s = 0, e[256];
        for (int64_t j0 = 0; j0 < V; j0 += 256) {
            int64_t n = V - j0 < 256 ? V - j0 : 256;
            for (int64_t j = 0; j < n; j++) e[j] = l[j0 + j] - mx;
            qat_vexpf_row(e, e, n);
            for (int64_t j = 0; j < n; j++) s += e[j]; /* the same order as one expf at a time */
        }
        lse[r] = mx + logf(s);
        row_loss[r] = lse[r] - l[targets[r]];
    }
    double total = 0; /* fixed order: the loss is bit-reproducible */
    for (int64_t r = 0; r < M; r++) total += row_loss[r];
    qat_tensor *o = qat_tape_tensor(tp, 1, (int64_t[]){1});
    o->data[0] = (float)(total / (double)M);
    if (tp->grad_enabled) {
        ce_ctx *c = qat_tape_ctx(tp, sizeof *c);
        c->logits = logits; c->out = o; c->targets = targets; c->lse = lse;
        qat_tape_push(tp, ce_backward, c);
    }
    return o;
}

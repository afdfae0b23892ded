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
#pragma omp parallel for schedule(dynamic, 32)
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

#define CE_RG 16 /* rows whose sequential sums run side by side (see the forward) */

qat_tensor *qat_cross_entropy(qat_tape *tp, qat_tensor *logits, const int32_t *targets) {
    int64_t M = qat_tensor_rows(logits), V = qat_tensor_cols(logits);
    float *lse = qat_tape_floats(tp, M);
    float *row_loss = qat_tape_floats(tp, M);
    /* Each row's Σ exp is summed one term at a time in j order (the bits of one
     * expf after another), a chain of dependent adds: CE_RG rows run side by side
     * so their chains overlap, each row's order (so its bits) unchanged. The row
     * maximum is exact whatever the order, so it is a vector reduction. */
#pragma omp parallel for schedule(dynamic, 2)
    for (int64_t r0 = 0; r0 < M; r0 += CE_RG) {
        int nr = M - r0 < CE_RG ? (int)(M - r0) : CE_RG;
        float mx[CE_RG], s[CE_RG], e[CE_RG][256];
        for (int r = 0; r < nr; r++) {
            const float *l = logits->data + (r0 + r) * V;
            QAT_ASSERT(targets[r0 + r] >= 0 && targets[r0 + r] < V);
            float m = l[0];
#pragma omp simd reduction(max : m)
            for (int64_t j = 1; j < V; j++) m = l[j] > m ? l[j] : m;
            mx[r] = m, s[r] = 0;
        }
        for (int64_t j0 = 0; j0 < V; j0 += 256) {
            int64_t n = V - j0 < 256 ? V - j0 : 256;
            for (int r = 0; r < nr; r++) {
                const float *l = logits->data + (r0 + r) * V + j0;
                for (int64_t j = 0; j < n; j++) e[r][j] = l[j] - mx[r];
                qat_vexpf_row(e[r], e[r], n);
            }
            if (nr == CE_RG)
                for (int64_t j = 0; j < n; j++)
                    for (int r = 0; r < CE_RG; r++) s[r] += e[r][j];
            else
                for (int r = 0; r < nr; r++)
                    for (int64_t j = 0; j < n; j++) s[r] += e[r][j];
        }
        for (int r = 0; r < nr; r++) {
            int64_t i = r0 + r;
            lse[i] = mx[r] + logf(s[r]);
            row_loss[i] = lse[i] - logits->data[i * V + targets[i]];
        }
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

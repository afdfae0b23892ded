/*
 * compress/estimator_pv.c — PV-Tuning's V step with stored codes (estimators.md §4,
 * docs/formats.md "pv", after Malinovskii et al. 2024 and its reference code).
 *
 * The quantizer keeps Ŵ, the current codes dequantized (in the rotated domain);
 * the forward returns Ŵ as is and the backward is the STE at Ŵ. Which latent
 * buffer B the V step follows depends on pv_lr:
 *   pv_lr > 0 (the published algorithm, the default): B is the quantizer's own
 *     full-precision buffer, set to the (rotated) latent weights at the first
 *     forward, as STE's latent weights start, and moved after each
 *     optimizer step by its own Adam on dL/dŴ with β1 = 0, β2 = pv_beta2, bias
 *     correction and ε = 1e-6 (the reference optimizer's defaults), at the
 *     constant rate pv_lr. The model's AdamW still moves the weight tensor, but
 *     after the first forward nothing reads it.
 *   pv_lr = 0 (the earlier qat variant): B is the weight tensor itself, moved
 *     by the model's AdamW.
 * The V step then re-projects only the top-τ fraction of groups ranked by
 * ‖B_g − Ŵ_g‖²; the other groups keep their codes. "Re-project" means: take
 * the full projection of B (scales from the current B, static-scale rule) and
 * copy it into the chosen groups, so with τ = 1 Ŵ is exactly the STE forward of
 * B, bit for bit. Finally (pv_lr > 0) B ← d·Ŵ + (1 − d)·B with d = pv_delta_decay:
 * 0 keeps a persistent STE-like buffer, 1 restarts each step from the codes.
 * Top-k uses exact radix selection; ties at the threshold are taken in index
 * order so exactly k groups change.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compress/estimator_hooks.h"
#include "compress/quantizer_impl.h"
#include "compress/sparse.h"
#include "core/error.h"

int qat_pv_check(qat_quantizer *q, int natural_group) {
    const qat_compress_side *side = &q->side;
    const int64_t cols = q->cols;
    const int ng = natural_group;
    int64_t pv_group = side->pv_group > 0 ? side->pv_group : ng;
    if (cols % pv_group || pv_group % ng)
        return qat_fail(QAT_EINPUT, "pv_group %lld must divide the input dim %lld and be a multiple of %d for '%s'",
                        (long long)pv_group, (long long)cols, ng, q->fmt.name);
    if (side->pv_tau > 1.0)
        return qat_fail(QAT_EINPUT, "pv_tau %g is not valid, expected a fraction in (0, 1]", side->pv_tau);
    q->pv_group = pv_group;
    q->pv_tau = side->pv_tau > 0 ? side->pv_tau : 0.01;
    if (!(side->pv_lr >= 0) || !(side->pv_beta2 >= 0 && side->pv_beta2 < 1) ||
        !(side->pv_delta_decay >= 0 && side->pv_delta_decay <= 1))
        return qat_fail(QAT_EINPUT, "pv_lr %g, pv_beta2 %g, pv_delta_decay %g: expected lr >= 0, beta2 in [0, 1), "
                        "delta_decay in [0, 1]", side->pv_lr, side->pv_beta2, side->pv_delta_decay);
    q->pv_lr = side->pv_lr;
    q->pv_beta2 = side->pv_beta2;
    q->pv_delta_decay = side->pv_delta_decay;
    return QAT_OK;
}

void qat_pv_alloc(qat_quantizer *q) {
    size_t n = (size_t)(q->max_rows * q->cols);
    q->pv_what = qat_xaligned(sizeof(float) * n);
    q->pv_rot = qat_xaligned(sizeof(float) * n);
    q->pv_new = qat_xaligned(sizeof(float) * n);
    q->pv_prio = qat_xaligned(sizeof(float) * (n / (size_t)q->pv_group));
    q->pv_take = qat_xaligned(n / (size_t)q->pv_group);
    /* Ŵ is filled by the first forward, but a checkpoint written or checked before it
     * (train.init checks every state array for NaN) must see zeros, not heap garbage */
    memset(q->pv_what, 0, sizeof(float) * n);
    /* the buffer and its Adam state exist in both modes so the checkpoint layout does not depend on pv_lr */
    q->pv_buf = qat_xaligned(sizeof(float) * n);
    q->pv_v = qat_xaligned(sizeof(float) * n);
    q->pv_g = qat_xaligned(sizeof(float) * n);
    memset(q->pv_buf, 0, sizeof(float) * n);
    memset(q->pv_v, 0, sizeof(float) * n);
    memset(q->pv_g, 0, sizeof(float) * n);
    q->pv_t = 0.0f;
    q->use_mask = 0; /* the backward is the STE at the stored codes */
}

void qat_pv_release(qat_quantizer *q) {
    free(q->pv_what);
    free(q->pv_rot);
    free(q->pv_new);
    free(q->pv_prio);
    free(q->pv_take);
    free(q->pv_buf);
    free(q->pv_v);
    free(q->pv_g);
}

void qat_pv_state(qat_quantizer *q, int i, const char **name, float **data, int64_t *n) {
    const int64_t all = q->max_rows * q->cols;
    switch (i) {
    case 0: *name = "pv_what"; *data = q->pv_what; *n = all; break;
    case 1: *name = "pv_init"; *data = &q->pv_init; *n = 1; break;
    case 2: *name = "pv_buf"; *data = q->pv_buf; *n = all; break;
    case 3: *name = "pv_v"; *data = q->pv_v; *n = all; break;
    default: *name = "pv_t"; *data = &q->pv_t; *n = 1; break;
    }
}

void qat_pv_forward(qat_quantizer *q, const float *x, float *y, int64_t rows) {
    QAT_ASSERT(rows == q->max_rows); /* a weight: always the whole tensor */
    if (q->pv_init == 0.0f) {
        qat_quantizer_rotate(q, x, q->pv_what, rows);
        /* B starts at the latent weights, as STE's do (the reference's buffer starts at the
         * dequantized weights because its model has no others) */
        memcpy(q->pv_buf, q->pv_what, sizeof(float) * (size_t)(rows * q->cols));
        qat_quantizer_project(q, q->pv_what, rows);
        q->pv_init = 1.0f;
    }
    memcpy(y, q->pv_what, sizeof(float) * (size_t)(rows * q->cols));
}

/* dL/dŴ of this step (summed over accumulation micro-steps) for the buffer's Adam. */
void qat_pv_backward(qat_quantizer *q, const float *gy, int64_t rows) {
    if (q->pv_lr <= 0) return;
    const int64_t n = rows * q->cols;
#pragma omp parallel for schedule(static) num_threads(q->nthreads)
    for (int64_t i = 0; i < n; i++) q->pv_g[i] += gy[i];
}

/* B ← B − lr·√(1−β2^t)·g/(√v + ε), v ← β2·v + (1−β2)·g², β1 = 0 (no first moment). */
static void pv_adam(qat_quantizer *q, int64_t n) {
    const double b2 = q->pv_beta2;
    q->pv_t += 1.0f;
    const double corr = b2 > 0 ? sqrt(1.0 - pow(b2, (double)q->pv_t)) : 1.0;
    const float lr = (float)(q->pv_lr * corr), fb2 = (float)b2, eps = 1e-6f;
#pragma omp parallel for schedule(static) num_threads(q->nthreads)
    for (int64_t i = 0; i < n; i++) {
        float g = q->pv_g[i];
        float v = fb2 * q->pv_v[i] + (1.0f - fb2) * g * g;
        q->pv_v[i] = v;
        q->pv_buf[i] -= lr * g / (sqrtf(v) + eps);
        q->pv_g[i] = 0.0f;
    }
}

/* The V step's buffer B into pv_rot: its Adam step (pv_lr > 0), or the rotated weights. */
void qat_pv_buffer_step(qat_quantizer *q, const float *w) {
    const int64_t rows = q->max_rows, n = rows * q->cols;
    if (q->pv_lr > 0) {
        pv_adam(q, n);
        memcpy(q->pv_rot, q->pv_buf, sizeof(float) * (size_t)n);
    } else {
        qat_quantizer_rotate(q, w, q->pv_rot, rows);
    }
}

/* take[g] = 1 for exactly the top-τ groups by ‖B_g − Ŵ_g‖² (pv_rot against pv_what). */
void qat_pv_top_groups(qat_quantizer *q, uint8_t *take) {
    const int64_t n = q->max_rows * q->cols, G = q->pv_group, ng = n / G;
#pragma omp parallel for schedule(static) num_threads(q->nthreads)
    for (int64_t g = 0; g < ng; g++) {
        double s = 0;
        for (int64_t i = g * G; i < (g + 1) * G; i++) {
            double d = (double)q->pv_rot[i] - q->pv_what[i];
            s += d * d;
        }
        q->pv_prio[g] = (float)s;
    }
    int64_t k = (int64_t)ceil(q->pv_tau * (double)ng - 1e-9);
    if (k < 1) k = 1;
    if (k > ng) k = ng;
    float thr = qat_sparse_kth_abs(q->pv_prio, ng, k, 1);
    int64_t above = 0;
    for (int64_t g = 0; g < ng; g++) above += q->pv_prio[g] > thr;
    int64_t ties = k - above;
    for (int64_t g = 0; g < ng; g++) {
        int t = q->pv_prio[g] > thr;
        if (!t && q->pv_prio[g] == thr && ties > 0) {
            t = 1;
            ties--;
        }
        take[g] = (uint8_t)t;
    }
}

/* B ← d·Ŵ + (1 − d)·B after the codes moved (pv_lr > 0). */
void qat_pv_decay(qat_quantizer *q) {
    if (!(q->pv_lr > 0 && q->pv_delta_decay > 0)) return;
    const int64_t n = q->max_rows * q->cols;
    const float d = (float)q->pv_delta_decay;
#pragma omp parallel for schedule(static) num_threads(q->nthreads)
    for (int64_t i = 0; i < n; i++) q->pv_buf[i] = d * q->pv_what[i] + (1.0f - d) * q->pv_buf[i];
}

void qat_pv_after_step(qat_quantizer *q, const float *w) {
    if (q->pv_init == 0.0f) return; /* nothing stored yet: the next forward projects fully */
    const int64_t rows = q->max_rows, n = rows * q->cols, G = q->pv_group, ng = n / G;
    qat_pv_buffer_step(q, w);
    memcpy(q->pv_new, q->pv_rot, sizeof(float) * (size_t)n);
    qat_quantizer_project(q, q->pv_new, rows);
    uint8_t *take = q->pv_take;
    qat_pv_top_groups(q, take);
    for (int64_t g = 0; g < ng; g++)
        if (take[g]) memcpy(q->pv_what + g * G, q->pv_new + g * G, sizeof(float) * (size_t)G);
    qat_pv_decay(q);
}

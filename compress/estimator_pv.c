/*
 * compress/estimator_pv.c — PV-style training with stored codes (estimators.md §4).
 *
 * The latent buffer B is the weight tensor itself, moved by the caller's AdamW
 * with the gradient taken at the compressed point (the backward is the STE).
 * The quantizer keeps Ŵ, the current codes dequantized (in the rotated domain),
 * and the forward returns Ŵ as is. After each optimizer step the V step
 * re-projects only the top-τ fraction of groups ranked by ‖B_g − Ŵ_g‖²; the other
 * groups keep their codes. "Re-project" means: take the full projection of the
 * current B (scales from the current B, static-scale rule) and copy it into the
 * chosen groups, so with τ = 1 Ŵ is exactly the STE forward of B, bit for bit.
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
    return QAT_OK;
}

void qat_pv_alloc(qat_quantizer *q) {
    size_t n = (size_t)(q->max_rows * q->cols);
    q->pv_what = qat_xaligned(sizeof(float) * n);
    q->pv_rot = qat_xaligned(sizeof(float) * n);
    q->pv_new = qat_xaligned(sizeof(float) * n);
    q->pv_prio = qat_xaligned(sizeof(float) * (n / (size_t)q->pv_group));
    q->use_mask = 0; /* the backward is the STE at the stored codes */
}

void qat_pv_release(qat_quantizer *q) {
    free(q->pv_what);
    free(q->pv_rot);
    free(q->pv_new);
    free(q->pv_prio);
}

void qat_pv_state(qat_quantizer *q, int i, const char **name, float **data, int64_t *n) {
    if (i == 0) { *name = "pv_what"; *data = q->pv_what; *n = q->max_rows * q->cols; }
    else { *name = "pv_init"; *data = &q->pv_init; *n = 1; }
}

void qat_pv_forward(qat_quantizer *q, const float *x, float *y, int64_t rows) {
    QAT_ASSERT(rows == q->max_rows); /* a weight: always the whole tensor */
    if (q->pv_init == 0.0f) {
        qat_quantizer_rotate(q, x, q->pv_what, rows);
        qat_quantizer_project(q, q->pv_what, rows);
        q->pv_init = 1.0f;
    }
    memcpy(y, q->pv_what, sizeof(float) * (size_t)(rows * q->cols));
}

void qat_pv_after_step(qat_quantizer *q, const float *w) {
    if (q->pv_init == 0.0f) return; /* nothing stored yet: the next forward projects fully */
    const int64_t rows = q->max_rows, n = rows * q->cols, G = q->pv_group, ng = n / G;
    qat_quantizer_rotate(q, w, q->pv_rot, rows);
    memcpy(q->pv_new, q->pv_rot, sizeof(float) * (size_t)n);
    qat_quantizer_project(q, q->pv_new, rows);
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
        int take = q->pv_prio[g] > thr;
        if (!take && q->pv_prio[g] == thr && ties > 0) {
            take = 1;
            ties--;
        }
        if (take) memcpy(q->pv_what + g * G, q->pv_new + g * G, sizeof(float) * (size_t)G);
    }
}

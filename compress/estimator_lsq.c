/*
 * compress/estimator_lsq.c — LSQ: a uniform int grid with a learned step.
 *
 * Grid (QuEST's raise_zero LSQ, the same centred 2^b levels as the int format):
 *     u = v/s − 1/2,  q = s·(round(clip(u, −Q_N, Q_P)) + 1/2),  Q_N = 2^(b−1), Q_P = 2^(b−1) − 1.
 * Gradients (Esser et al. 2019): ∂q/∂v = 1 inside (−Q_N < u < Q_P), else 0;
 * ∂q/∂s = round(u) − u inside, −Q_N + 1/2 below, Q_P + 1/2 above; the step's
 * gradient is scaled by g = 1/sqrt(n·Q_P), n = the row length (the elements
 * sharing the step for a per-row weight step; the features for activations).
 * Init from the first batch: s = 2·mean|v|/sqrt(Q_P). For 1 bit Q_P = 0, so the
 * init and the gradient scale use max(Q_P, 1) while the grid keeps ±s/2.
 * One step per row for weights, one per tensor for activations (whose row count
 * changes between calls).
 */
#include <math.h>
#include <stdlib.h>

#include "compress/estimator_hooks.h"
#include "compress/quantizer_impl.h"
#include "core/error.h"

void qat_lsq_alloc(qat_quantizer *q) {
    const int64_t max_rows = q->max_rows, cols = q->cols;
    q->lsq_n = q->is_weight ? max_rows : 1;
    q->lsq_s = qat_xcalloc((size_t)q->lsq_n, sizeof(float));
    q->lsq_g = qat_xcalloc((size_t)q->lsq_n, sizeof(float));
    q->lsq_qn = 1 << (q->fmt.bits - 1);
    q->lsq_qp = (1 << (q->fmt.bits - 1)) - 1;
    q->lsq_gscale = 1.0 / sqrt((double)cols * (q->lsq_qp > 1 ? q->lsq_qp : 1));
    q->lsq_dqds = qat_xaligned(sizeof(float) * (size_t)(max_rows * cols));
    q->lsq_part = qat_xcalloc((size_t)max_rows, sizeof(double));
    q->use_mask = 1; /* ∂q/∂v is 0 outside the grid: the mask the forward writes */
    if (!q->mask) q->mask = qat_xaligned((size_t)(max_rows * cols));
}

void qat_lsq_release(qat_quantizer *q) {
    free(q->lsq_s);
    free(q->lsq_g);
    free(q->lsq_dqds);
    free(q->lsq_part);
}

int64_t qat_lsq_params(qat_quantizer *q, float **value, float **grad) {
    *value = q->lsq_s;
    *grad = q->lsq_g;
    return q->lsq_n;
}

void qat_lsq_state(qat_quantizer *q, int i, const char **name, float **data, int64_t *n) {
    if (i == 0) { *name = "lsq_step"; *data = q->lsq_s; *n = q->lsq_n; }
    else { *name = "lsq_init"; *data = &q->lsq_init; *n = 1; }
}

static void lsq_init(qat_quantizer *q, const float *y, int64_t rows) {
    const int64_t cols = q->cols;
    const double root = sqrt((double)(q->lsq_qp > 1 ? q->lsq_qp : 1));
    if (q->is_weight) {
        for (int64_t r = 0; r < rows; r++) {
            double a = 0;
            for (int64_t c = 0; c < cols; c++) a += fabs((double)y[r * cols + c]);
            double s = 2.0 * a / (double)cols / root;
            q->lsq_s[r] = (float)(s > 1e-8 ? s : 1e-8);
        }
    } else {
        double a = 0;
        for (int64_t i = 0; i < rows * cols; i++) a += fabs((double)y[i]);
        double s = 2.0 * a / (double)(rows * cols) / root;
        q->lsq_s[0] = (float)(s > 1e-8 ? s : 1e-8);
    }
    q->lsq_init = 1.0f;
}

void qat_lsq_forward(qat_quantizer *q, float *y, int64_t rows) {
    if (q->lsq_init == 0.0f) lsq_init(q, y, rows);
    const int64_t cols = q->cols;
    const float qn = (float)q->lsq_qn, qp = (float)q->lsq_qp;
    const float below = -qn + 0.5f, above = qp + 0.5f;
#pragma omp parallel for schedule(static) num_threads(q->nthreads)
    for (int64_t r = 0; r < rows; r++) {
        const float s = q->lsq_s[q->is_weight ? r : 0];
        const float inv = 1.0f / s;
        float *v = y + r * cols;
        uint8_t *m = q->mask + r * cols;
        float *d = q->lsq_dqds + r * cols;
        for (int64_t c = 0; c < cols; c++) {
            float u0 = v[c] * inv - 0.5f;
            int lo = u0 <= -qn, hi = u0 >= qp;
            float u = lo ? -qn : (hi ? qp : u0);
            float rr = nearbyintf(u);
            v[c] = s * (rr + 0.5f);
            m[c] = !(lo | hi);
            d[c] = lo ? below : (hi ? above : rr - u0);
        }
    }
}

void qat_lsq_step_grads(qat_quantizer *q, const float *gy, int64_t rows) {
    const int64_t cols = q->cols;
    const double gs = q->lsq_gscale;
#pragma omp parallel for schedule(static) num_threads(q->nthreads)
    for (int64_t r = 0; r < rows; r++) {
        const float *g = gy + r * cols, *d = q->lsq_dqds + r * cols;
        double acc = 0;
        for (int64_t c = 0; c < cols; c++) acc += (double)g[c] * d[c];
        q->lsq_part[r] = acc * gs;
    }
    if (q->is_weight) {
        for (int64_t r = 0; r < rows; r++) q->lsq_g[r] += (float)q->lsq_part[r];
    } else {
        double t = 0; /* fixed row order: independent of the thread count */
        for (int64_t r = 0; r < rows; r++) t += q->lsq_part[r];
        q->lsq_g[0] += (float)t;
    }
}

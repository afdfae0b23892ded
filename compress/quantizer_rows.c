/*
 * compress/quantizer_rows.c — the two row passes of a quantizer that both the
 * orchestration (quantizer.c) and stateful estimators (estimator_pv.c) build on:
 * rotate rows into the Hadamard domain, and the full projection of rotated rows
 * with per-segment statistics. Kept apart from quantizer.c so calls run one way
 * (quantizer.c → estimator hooks → these passes), with no include cycle.
 */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "compress/hadamard.h"
#include "compress/quantizer_impl.h"
#include "core/bf16.h"
#include "core/error.h"

void qat_quantizer_rotate(const qat_quantizer *q, const float *x, float *y, int64_t rows) {
    const int64_t cols = q->cols;
    const int block = q->block;
#pragma omp parallel for schedule(static) num_threads(q->nthreads)
    for (int64_t r = 0; r < rows; r++) {
        if (block) qat_hadamard_row_copy(x + r * cols, y + r * cols, cols, block);
        else memcpy(y + r * cols, x + r * cols, sizeof(float) * (size_t)cols);
    }
}

void qat_quantizer_project(qat_quantizer *q, float *y, int64_t rows) { qat_quantizer_project_rows(q, y, NULL, rows, NULL); }

/* max of n row maxima with qat_blk_absmax's rule: NaN wins over everything. */
static float max_of(const float *a, int64_t n) {
    float m = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(a[i])) return NAN;
        m = a[i] > m ? a[i] : m;
    }
    return m;
}

void qat_quantizer_project_rows(qat_quantizer *q, float *y, uint16_t *yb, int64_t rows, const float *row_amax) {
    const int64_t cols = q->cols;
    /* per-tensor statistics per segment (weights); activations use per-row top-k */
    int segs = q->is_weight ? q->segments : 1;
    QAT_ASSERT(rows % segs == 0);
    int64_t seg_rows = rows / segs;
    const int64_t tiles_per_seg = ((seg_rows + 15) / 16) * ((cols + 15) / 16);
    qat_proj_seg seg[64];
    qat_proj_seg *sp = segs <= 64 ? seg : qat_xmalloc(sizeof(qat_proj_seg) * (size_t)segs);
    for (int s = 0; s < segs; s++) {
        if (row_amax && q->proj.tensor_stats) {
            memset(&sp[s], 0, sizeof sp[s]);
            sp[s].index0 = (uint64_t)(s * seg_rows * cols);
            sp[s].tensor_scale = qat_blk_tensor_scale(&q->proj.blk, max_of(row_amax + s * seg_rows, seg_rows));
            continue;
        }
        qat_proj_segment_stats_2d(&q->proj, y + s * seg_rows * cols, seg_rows, cols,
                                  q->tiles ? q->tiles + s * tiles_per_seg : NULL, (uint64_t)(s * seg_rows * cols), &sp[s], 1);
    }
    const qat_proj *P = &q->proj;
    uint8_t *mask = q->mask;
#pragma omp parallel for schedule(static) num_threads(q->nthreads)
    for (int64_t r = 0; r < rows; r++) {
        qat_proj_row_at(P, y + r * cols, cols, &sp[r / seg_rows], mask + r * cols, r % seg_rows);
        if (yb) qat_bf16_row(y + r * cols, yb + r * cols, cols);
    }
    if (sp != seg) free(sp);
}

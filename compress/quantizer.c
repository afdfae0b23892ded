/*
 * compress/quantizer.c — quantizer.h: one compressed operand, forward and backward.
 *
 * Forward: rotate (copy + in-place Hadamard), then project every row with the
 * format (project.c), writing the backward mask in the same pass. The output
 * stays in the rotated domain (QuEST's HalfHadamard): both operands of a linear
 * are rotated by the same H, so y = Q(xH)·Q(WH)ᵀ needs no inverse rotation.
 * Backward: g ← gy ⊙ mask, then g·Hᵀ (= g·H, H symmetric), added into gx.
 * What differs between estimators (the mask, learned steps, stored codes) comes
 * from the estimator's row of the hook table (estimator.h); this file names none.
 *
 * Every buffer is sized at create for max_rows, so forward/backward never touch
 * the heap; rows are processed by OpenMP with a static schedule, and all
 * cross-row quantities (segment thresholds, LSQ's tensor step gradient) are
 * computed in a fixed order, so results do not depend on the thread count.
 */
#include "compress/quantizer.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#include "compress/estimator.h"
#include "compress/format_table.h"
#include "compress/gmse.h"
#include "compress/hadamard.h"
#include "compress/quantizer_impl.h"
#include "core/bf16.h"
#include "core/error.h"
#include "core/prefetch.h"
#include "core/rng.h"

/* Every check of a side's settings against the operand, and the fields they
 * decide, with no buffer: qat_quantizer_check stops here, qat_quantizer_create
 * then sizes the buffers. */
static int quantizer_new(const qat_compress_side *side, int is_weight, int64_t max_rows, int64_t cols, int segments,
                         uint64_t seed, qat_quantizer **out) {
    *out = NULL;
    qat_fmt f;
    QAT_TRY(qat_fmt_parse(side->format, &f));
    qat_est est;
    QAT_TRY(qat_est_resolve(&f, side, is_weight, &est));
    int block;
    int hcfg = side->hadamard;
    if (f.had) QAT_TRY(qat_fmt_hadamard(&f, hcfg, cols, &hcfg)); /* @hB stands for hadamard: B */
    QAT_TRY(qat_hadamard_block(hcfg, cols, &block));
    if (max_rows < 1 || cols < 1) return qat_fail(QAT_EINPUT, "quantizer: empty operand (%lld x %lld)", (long long)max_rows, (long long)cols);
    if (segments < 1) segments = 1;
    if (is_weight && max_rows % segments)
        return qat_fail(QAT_EINPUT, "quantizer: %lld rows do not split into %d equal segments", (long long)max_rows, segments);
    int64_t group = side->group > 0 ? side->group : 0;
    if (group && cols % group)
        return qat_fail(QAT_EINPUT, "format '%s': group %lld does not divide the input dim %lld, expected a divisor",
                        f.name, (long long)group, (long long)cols);
    if (qat_fmt_is_block(&f) && group)
        return qat_fail(QAT_EINPUT, "format '%s' carries its own block size: group must be 0 (the default), got %lld",
                        f.name, (long long)group);
    const char *refused = qat_fmt_side_refusal(&f, is_weight);
    if (refused) return qat_fail(QAT_EINPUT, "format '%s': %s, expected another activation format", f.name, refused);
    int ng = qat_fmt_group(&f);
    if (cols % ng || (group && group % ng))
        return qat_fail(QAT_EINPUT, "format '%s' works on groups of %d along the input dim, which must divide %lld%s",
                        f.name, ng, (long long)(group ? group : cols), group ? " (the scale group)" : "");
    qat_quantizer *q = qat_xcalloc(1, sizeof *q);
    q->side = *side;
    q->is_weight = is_weight;
    q->max_rows = max_rows;
    q->cols = cols;
    q->segments = segments;
    q->seed = seed;
    q->fmt = f;
    q->est = est;
    const qat_fmt_traits *kind = qat_fmt_traits_of(&f);
    /* a kind with learned state of its own runs the estimator through its own hooks */
    q->hooks = kind->est_hooks && !f.noise ? kind->est_hooks(est) : qat_est_hooks_of(est);
    q->block = block;
    q->identity = qat_fmt_is_dense(&f) && block == 0;
    const qat_est_hooks *H = q->hooks;
    if (H->check) {
        int rc = H->check(q, ng);
        if (rc) {
            free(q);
            return rc;
        }
    }
    *out = q;
    return QAT_OK;
}

int qat_quantizer_check(const qat_compress_side *side, int is_weight, int64_t max_rows, int64_t cols, int segments,
                        qat_quantizer **out) {
    return quantizer_new(side, is_weight, max_rows, cols, segments, 0, out);
}

int qat_quantizer_create(const qat_compress_side *side, int is_weight, int64_t max_rows, int64_t cols, int segments,
                         uint64_t seed, qat_quantizer **out) {
    qat_quantizer *q;
    QAT_TRY(quantizer_new(side, is_weight, max_rows, cols, segments, seed, &q));
    const qat_fmt f = q->fmt;
    const qat_est_hooks *H = q->hooks;
    const int64_t group = side->group > 0 ? side->group : 0;
    qat_fmt core = f;
    core.noise = 0;
    if (f.noise) {
        double g, se;
        qat_fmt_gmse_parsed(&core, 0, 0, &g, &se);
        q->noise_sd = sqrt(g);
    } else if (!qat_fmt_is_dense(&f)) {
        qat_proj_setup(&q->proj, &f);
        q->proj.absmax = !strcmp(side->scale, "absmax");
        q->proj.group = group;
        q->proj.per_row_sparse = !is_weight || side->per_row;
        q->proj.mask = QAT_MASK_NONE;
        if (H->proj) H->proj(q);
        q->use_mask = q->proj.mask != QAT_MASK_NONE;
        q->mask = qat_xaligned((size_t)(max_rows * cols));
        if (q->proj.tensor_stats && !(f.mods & QAT_MOD_2D)) q->row_amax = qat_xaligned(sizeof(float) * (size_t)max_rows);
        if (f.mods & QAT_MOD_2D)
            q->tiles = qat_xaligned(sizeof(float) * (size_t)(q->segments * ((max_rows / q->segments + 15) / 16) * ((cols + 15) / 16)));
    }
    q->nthreads = omp_get_max_threads();
    q->rowbuf = qat_xaligned(sizeof(float) * (size_t)(q->nthreads * cols));
    if (H->alloc) H->alloc(q);
    *out = q;
    return QAT_OK;
}

void qat_quantizer_free(qat_quantizer *q) {
    if (!q) return;
    if (q->hooks->release) q->hooks->release(q);
    free(q->mask);
    free(q->tiles);
    free(q->row_amax);
    free(q->rowbuf);
    free(q);
}

int qat_quantizer_is_identity(const qat_quantizer *q) { return q->identity; }

int qat_quantizer_hadamard(const qat_quantizer *q) { return q->block; }

/* noise(F): y = x_h + N(0, GMSE_F·RMS²), one draw per (seed, step, element). */
static void noise_forward(qat_quantizer *q, float *y, int64_t rows, int64_t step) {
    const int64_t cols = q->cols;
    const int64_t g = q->side.group > 0 ? q->side.group : cols;
    const uint64_t key = qat_hash3(q->seed, (uint64_t)step, 0x401CE5ull);
    const double sd = q->noise_sd;
#pragma omp parallel for schedule(static) num_threads(q->nthreads)
    for (int64_t r = 0; r < rows; r++) {
        float *v = y + r * cols;
        for (int64_t u = 0; u < cols; u += g) {
            double ss = 0;
            for (int64_t i = u; i < u + g; i++) ss += (double)v[i] * v[i];
            double sig = sd * sqrt(ss / (double)g);
            for (int64_t i = u; i < u + g; i++) v[i] += (float)(sig * qat_normal_at(key, (uint64_t)(r * cols + i)));
        }
    }
}

/* 1 when rows can be rotated and rounded one at a time: a value grid or sparsity
 * with no per-tensor statistics to gather first, no noise, no learned scales. */
static int row_local(const qat_quantizer *q) {
    const qat_proj *P = &q->proj;
    return !q->hooks->forward && !q->hooks->project && !qat_fmt_is_dense(&q->fmt) && !q->fmt.noise &&
           (P->f.sp != QAT_SP_MAGNITUDE || P->per_row_sparse) && !P->tensor_stats;
}

/* Stochastic rounding draws by (seed, step, element): a resumed run repeats them. */
static void sr_key(qat_quantizer *q, int64_t step) {
    if (q->fmt.mods & QAT_MOD_SR) q->proj.sr_key = qat_hash3(q->seed, (uint64_t)step, 0x5E0DA11Dull);
}

/* Rotate and round each row while it is still in cache, one pass over memory
 * instead of two (the same numbers as rotating all rows, then rounding). With yb
 * the rounded row goes on to bf16 from a per-thread row buffer and y is not
 * written. */
static void forward_rows(qat_quantizer *q, const float *x, float *y, uint16_t *yb, int64_t rows) {
    const qat_proj *P = &q->proj;
    const int64_t cols = q->cols;
    const int block = q->block;
    qat_proj_seg seg;
    qat_proj_segment_stats_2d(P, x, 0, cols, NULL, 0, &seg, 0); /* the statistics-free segment */
    uint8_t *mask = q->mask;
#pragma omp parallel num_threads(q->nthreads)
    {
        float *t = q->rowbuf + (int64_t)omp_get_thread_num() * cols;
#pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; r++) {
            float *yr = yb ? t : y + r * cols;
            if (block) qat_hadamard_row_copy(x + r * cols, yr, cols, block);
            else memcpy(yr, x + r * cols, sizeof(float) * (size_t)cols);
            qat_proj_row_at(P, yr, cols, &seg, mask + r * cols, r);
            if (yb) qat_bf16_row(yr, yb + r * cols, cols);
        }
    }
}


/* Rotate rows into y and note each rotated row's absmax (blockfmt's NaN/inf rule). */
static void tensor_rows(qat_quantizer *q, const float *x, float *y, int64_t rows) {
    const int64_t cols = q->cols;
    const int block = q->block;
#pragma omp parallel for schedule(static) num_threads(q->nthreads)
    for (int64_t r = 0; r < rows; r++) {
        float *yr = y + r * cols;
        if (block) qat_hadamard_row_copy(x + r * cols, yr, cols, block);
        else memcpy(yr, x + r * cols, sizeof(float) * (size_t)cols);
        q->row_amax[r] = qat_blk_absmax(yr, cols);
    }
}

int qat_quantizer_forward_by_rows(const qat_quantizer *q) { return !q->identity && row_local(q); }

void qat_quantizer_rows_begin(qat_quantizer *q, int64_t rows, int64_t step) {
    QAT_ASSERT(rows <= q->max_rows && qat_quantizer_forward_by_rows(q));
    sr_key(q, step);
    q->last_rows = rows;
    qat_proj_segment_stats_2d(&q->proj, NULL, 0, q->cols, NULL, 0, &q->row_seg, 0); /* as forward_rows */
}

void qat_quantizer_forward_row(qat_quantizer *q, float *x, int64_t r, uint16_t *yb) {
    QAT_ASSERT(r < q->last_rows);
    const int64_t cols = q->cols;
    /* forward_rows' steps on this row: rotate (in place: the same butterflies), round, bf16 */
    if (q->block) qat_hadamard_row(x, cols, q->block);
    qat_proj_row_at(&q->proj, x, cols, &q->row_seg, q->mask + r * cols, r);
    if (yb) qat_bf16_row(x, yb, cols);
}

void qat_quantizer_forward(qat_quantizer *q, const float *x, float *y, int64_t rows, int64_t step) {
    QAT_ASSERT(rows <= q->max_rows);
    sr_key(q, step);
    q->last_rows = rows;
    if (q->hooks->forward) {
        q->hooks->forward(q, x, y, rows);
        return;
    }
    if (row_local(q)) {
        forward_rows(q, x, y, NULL, rows);
        return;
    }
    if (q->row_amax && !q->hooks->project) {
        /* a tensor scale from the absmax: taken row by row while each rotated row
         * is in cache, so the statistics cost no pass of their own */
        tensor_rows(q, x, y, rows);
        qat_quantizer_project_rows(q, y, NULL, rows, q->row_amax);
        return;
    }
    qat_quantizer_rotate(q, x, y, rows);
    if (qat_fmt_is_dense(&q->fmt)) return;
    if (q->fmt.noise) {
        noise_forward(q, y, rows, step);
        return;
    }
    if (q->hooks->project) q->hooks->project(q, y, rows);
    else qat_quantizer_project(q, y, rows);
}

void qat_quantizer_forward_bf16(qat_quantizer *q, const float *x, uint16_t *yb, float *scratch, int64_t rows,
                                int64_t step) {
    QAT_ASSERT(rows <= q->max_rows);
    sr_key(q, step);
    if (row_local(q)) {
        q->last_rows = rows;
        forward_rows(q, x, NULL, yb, rows);
        return;
    }
    if (q->row_amax && !q->hooks->forward && !q->hooks->project) {
        /* nvfp4: rotate + absmax, then project and round to bf16 in one pass over the rows */
        q->last_rows = rows;
        tensor_rows(q, x, scratch, rows);
        qat_quantizer_project_rows(q, scratch, yb, rows, q->row_amax);
        return;
    }
    qat_quantizer_forward(q, x, scratch, rows, step);
    const int64_t cols = q->cols;
#pragma omp parallel for schedule(static) num_threads(q->nthreads)
    for (int64_t r = 0; r < rows; r++) qat_bf16_row(scratch + r * cols, yb + r * cols, cols);
}

/* The backward walks rows in order, and gy comes cold from a product: asking for
 * the row after next now keeps its loads from stalling the butterflies (the
 * hardware's stream prefetch alone left the masked rotation waiting on memory
 * for half its time). g and m point at row r of gy and of the mask (or NULL). */
static inline void prefetch_row_after_next(const qat_quantizer *q, const float *g, const uint8_t *m, int64_t r) {
    if (r + 2 >= q->last_rows) return;
    const int64_t cols = q->cols;
    qat_prefetch(g + 2 * cols, sizeof(float) * (size_t)cols);
    if (m) qat_prefetch(m + 2 * cols, (size_t)cols);
}

void qat_quantizer_backward(qat_quantizer *q, const float *gy, float *gx, int64_t rows) {
    qat_quantizer_backward_into(q, gy, gx, rows, 0);
}

void qat_quantizer_backward_into(qat_quantizer *q, const float *gy, float *gx, int64_t rows, int store) {
    QAT_ASSERT(rows == q->last_rows);
    const int64_t cols = q->cols;
    if (q->hooks->backward) q->hooks->backward(q, gy, rows);
    const int use_mask = q->use_mask;
    const int block = q->block;
    const uint8_t *mask = q->mask;
    if (!block) {
        /* no rotation: gx += gy ⊙ mask directly, vectorised over the whole tensor */
        const int64_t n = rows * cols;
        if (use_mask && store) {
#pragma omp parallel for schedule(static) num_threads(q->nthreads)
            for (int64_t i = 0; i < n; i++) gx[i] = qat_kept_or_zero(gy[i], mask[i]);
        } else if (use_mask) {
#pragma omp parallel for schedule(static) num_threads(q->nthreads)
            for (int64_t i = 0; i < n; i++) gx[i] += qat_kept_or_zero(gy[i], mask[i]);
        } else if (store) {
            memcpy(gx, gy, sizeof(float) * (size_t)n);
        } else {
#pragma omp parallel for schedule(static) num_threads(q->nthreads)
            for (int64_t i = 0; i < n; i++) gx[i] += gy[i];
        }
        return;
    }
#pragma omp parallel num_threads(q->nthreads)
    {
        float *t = q->rowbuf + (int64_t)omp_get_thread_num() * cols;
#pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; r++) {
            const float *g = gy + r * cols;
            const uint8_t *m = mask + r * cols;
            float *o = gx + r * cols;
            /* select by the mask (if any) while loading, rotate, store or add: one pass */
            prefetch_row_after_next(q, g, use_mask ? m : NULL, r);
            qat_hadamard_row_masked(g, use_mask ? m : NULL, o, cols, block, !store, t);
        }
    }
}

int qat_quantizer_backward_by_rows(const qat_quantizer *q) { return !q->identity && !q->hooks->backward; }

void qat_quantizer_backward_row(const qat_quantizer *q, const float *gy, int64_t r, float *gx, float *scratch) {
    QAT_ASSERT(qat_quantizer_backward_by_rows(q) && r < q->last_rows);
    const int64_t cols = q->cols;
    const uint8_t *m = q->use_mask ? q->mask + r * cols : NULL;
    prefetch_row_after_next(q, gy, m, r);
    if (q->block) {
        qat_hadamard_row_masked(gy, m, gx, cols, q->block, 0, scratch);
    } else if (m) {
        for (int64_t i = 0; i < cols; i++) gx[i] = qat_kept_or_zero(gy[i], m[i]);
    } else {
        memcpy(gx, gy, sizeof(float) * (size_t)cols);
    }
}

int64_t qat_quantizer_params(qat_quantizer *q, float **value, float **grad) {
    if (q->hooks->params) return q->hooks->params(q, value, grad);
    *value = *grad = NULL;
    return 0;
}

void qat_quantizer_after_step(qat_quantizer *q, const float *w, int64_t step) {
    (void)step;
    if (q->hooks->after_step) q->hooks->after_step(q, w);
}

int qat_quantizer_state_count(const qat_quantizer *q) { return q->hooks->nstate; }

void qat_quantizer_state(qat_quantizer *q, int i, const char **name, float **data, int64_t *n) {
    QAT_ASSERT(i >= 0 && i < qat_quantizer_state_count(q));
    q->hooks->state(q, i, name, data, n);
}

const char *qat_quantizer_format(const qat_quantizer *q) { return q->fmt.name; }

/* The state key, with or without the estimator (qat_quantizer_carry compares the rest). */
static void key_text(const qat_quantizer *q, int with_estimator, char *buf, size_t n) {
    char rot[40], grp[40] = "", est[48] = "";
    if (q->block) snprintf(rot, sizeof rot, "Hadamard block %d", q->block);
    else snprintf(rot, sizeof rot, "no rotation");
    if (q->side.group > 0) snprintf(grp, sizeof grp, ", group %d", q->side.group);
    if (with_estimator) snprintf(est, sizeof est, "estimator %s, ", qat_est_name(q->est));
    snprintf(buf, n, "%s (%s, %sscale %s%s)", q->fmt.name, rot, est,
             q->est == QAT_EST_LSQ ? "lsq" : q->side.scale[0] ? q->side.scale : "rms", grp);
}

void qat_quantizer_state_key(const qat_quantizer *q, char *buf, size_t n) { key_text(q, 1, buf, n); }

qat_carry qat_quantizer_carry(const qat_quantizer *to, const qat_quantizer *from) {
    char a[200], b[200];
    key_text(to, 0, a, sizeof a);
    key_text(from, 0, b, sizeof b);
    if (strcmp(a, b) || to->is_weight != from->is_weight) return QAT_CARRY_NONE;
    /* a format whose state is its own (aq: ste or pv) keeps it across estimators */
    const qat_carry format = to->hooks->nformat_state > 0 ? QAT_CARRY_FORMAT : QAT_CARRY_NONE;
    if (to->est != from->est) return format;
    if (to->est == QAT_EST_PV && from->pv_lr <= 0 && to->pv_lr > 0) return format;
    return QAT_CARRY_ALL;
}

int qat_quantizer_state_of_format(const qat_quantizer *q, int i) {
    QAT_ASSERT(i >= 0 && i < qat_quantizer_state_count(q));
    return i < q->hooks->nformat_state;
}

int qat_quantizer_follows_weights(const qat_quantizer *q) { return !(q->est == QAT_EST_PV && q->pv_lr > 0); }

const char *qat_quantizer_estimator(const qat_quantizer *q) { return qat_est_name(q->est); }

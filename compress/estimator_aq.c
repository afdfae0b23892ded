/*
 * compress/estimator_aq.c — the estimators on learned additive codebooks
 * (aqMxBgG, compress/aq.h; docs/formats.md "aqMxBgG").
 *
 * The format has trainable state of its own: M codebooks of K = 2^B codewords
 * of G values and one scale per output row, registered with the optimizer as
 * the quantizer's parameters (AdamW, no decay) and saved with its codes. So the
 * format's row of the table (format_table.c, est_hooks) replaces the
 * estimator's hooks with these:
 *   forward   Ŵ[r, group g] = s_r · Σ_m C_m[code(r, g, m)]   (rotated domain)
 *   backward  ∂L/∂C_m[k] = Σ over the groups coded k by book m of s_r·∂L/∂Ŵ_g,
 *             ∂L/∂s_r = Σ_g ⟨∂L/∂Ŵ_g, Ŵ_g/s_r⟩, and the straight-through
 *             ∂L/∂W = ∂L/∂Ŵ for the latent weights (quantizer.c).
 * ste: before every forward the codes are re-chosen from the latent weights
 *   (divided by their row's scale): the nearest codeword for M = 1, one greedy
 *   pass over the books from the previous codes for M > 1 (beam 1; the error
 *   never rises). The codes are therefore state, and are checkpointed.
 * pv (PV-Tuning, Malinovskii et al. 2024; AQLM's src/pv_optimizer.py): the
 *   forward keeps the codes, so the optimizer's step on the codebooks and
 *   scales is the P step; after it, the V step of estimator_pv.c moves the
 *   buffer B by its own Adam, ranks groups by ‖B_g − Ŵ_g‖² and re-encodes the
 *   top τ by beam search (QAT_AQ_BEAM) from B_g/s_r, starting from their codes.
 * Both start from a k-means fit of the first forward's weights (aq.c): the row
 * scale s_r = RMS of the row, the books fitted to the scaled groups with
 * k-means++ seeds drawn from the quantizer's seed. A run's first forward (or
 * `--init`'s PTQ evaluation, which restores the state afterwards and is then
 * repeated bit for bit) does it, so a fresh run and an --init run start alike.
 * `--init` from an ste run into pv carries the books, scales and codes (they
 * mean the same under both: qat_quantizer_carry) but no PV state: then the
 * first forward starts B at the latent weights and keeps the codes, so PV-Tuning
 * starts from the AQ solution, as in AQLM.
 * The codebook gradient is summed serially over rows: the same bits for any
 * thread count.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compress/aq.h"
#include "compress/estimator_hooks.h"
#include "compress/quantizer_impl.h"
#include "core/error.h"

struct qat_aq_state {
    int64_t rows, cols, groups; /* operand shape; groups = rows·cols/G code groups */
    int64_t ncw;                /* M·K·G codeword floats at the head of par */
    float *par, *grad;          /* (ncw + rows) codebooks then row scales, and their gradients */
    qat_aq_books books;         /* views over par with their search layout */
    float *codes;               /* (groups, M) current codes */
    float init;                 /* 1 once the books were fitted */
    float *rot;                 /* (rows, cols) rotated latent weights (scratch) */
    float *xs;                  /* (groups, G) scaled targets to encode (scratch) */
    float *xc;                  /* (groups, M) their codes (scratch) */
    int64_t *idx;               /* (groups) which group each target is (scratch) */
};

static int aq_is_pv(const qat_quantizer *q) { return q->est == QAT_EST_PV; }

static int aq_check(qat_quantizer *q, int natural_group) {
    QAT_ASSERT(q->is_weight); /* qat_quantizer_create refused it on activations (qat_fmt_side_refusal) */
    if (q->side.group > 0)
        return qat_fail(QAT_EINPUT, "format '%s' has one learned scale per output row: group must be 0 "
                        "(the default), got %lld", q->fmt.name, (long long)q->side.group);
    if (q->side.scale[0] && strcmp(q->side.scale, "rms"))
        return qat_fail(QAT_EINPUT, "format '%s' learns its row scales: scale must be rms (the default), got '%s'",
                        q->fmt.name, q->side.scale);
    return aq_is_pv(q) ? qat_pv_check(q, natural_group) : QAT_OK;
}

static void aq_alloc(qat_quantizer *q) {
    struct qat_aq_state *a = qat_xcalloc(1, sizeof *a);
    const int M = q->fmt.aq_books, B = q->fmt.bits, G = q->fmt.vq_dim;
    a->rows = q->max_rows;
    a->cols = q->cols;
    a->groups = a->rows * a->cols / G;
    a->ncw = (int64_t)M * (1 << B) * G;
    a->par = qat_xcalloc((size_t)(a->ncw + a->rows), sizeof(float));
    a->grad = qat_xcalloc((size_t)(a->ncw + a->rows), sizeof(float));
    qat_aq_books_init(&a->books, M, B, G, a->par);
    a->codes = qat_xcalloc((size_t)(a->groups * M), sizeof(float));
    a->rot = qat_xaligned(sizeof(float) * (size_t)(a->rows * a->cols));
    a->xs = qat_xaligned(sizeof(float) * (size_t)(a->rows * a->cols));
    a->xc = qat_xaligned(sizeof(float) * (size_t)(a->groups * M));
    a->idx = qat_xaligned(sizeof(int64_t) * (size_t)a->groups);
    q->aq = a;
    if (aq_is_pv(q)) {
        qat_pv_alloc(q);
        /* Ŵ is filled by the first forward, but the --init loader checks every state
         * array for NaN/Inf before that: undefined heap bytes refused the run */
        memset(q->pv_what, 0, sizeof(float) * (size_t)(a->rows * a->cols));
    }
    q->use_mask = 0; /* straight through to the latent weights */
}

static void aq_release(qat_quantizer *q) {
    struct qat_aq_state *a = q->aq;
    if (aq_is_pv(q)) qat_pv_release(q);
    if (!a) return;
    qat_aq_books_free(&a->books);
    free(a->par), free(a->grad), free(a->codes), free(a->rot), free(a->xs), free(a->xc), free(a->idx);
    free(a);
    q->aq = NULL;
}

static int64_t aq_params(qat_quantizer *q, float **value, float **grad) {
    *value = q->aq->par;
    *grad = q->aq->grad;
    return q->aq->ncw + q->aq->rows;
}

static void aq_state(qat_quantizer *q, int i, const char **name, float **data, int64_t *n) {
    struct qat_aq_state *a = q->aq;
    switch (i) {
    case 0: *name = "aq_params"; *data = a->par; *n = a->ncw + a->rows; break;
    case 1: *name = "aq_codes"; *data = a->codes; *n = a->groups * a->books.m; break;
    case 2: *name = "aq_init"; *data = &a->init; *n = 1; break;
    default: qat_pv_state(q, i - 3, name, data, n); break;
    }
}

/* A row's scale as a divisor (a learned scale could reach 0). */
static float safe_scale(float s) { return fabsf(s) > 1e-12f ? s : 1e-12f; }

/* xs := the groups of rot divided by their row's scale, all of them. */
static void scaled_targets(struct qat_aq_state *a, const float *rot) {
    const float *s = a->par + a->ncw;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < a->rows; r++) {
        const float inv = 1.0f / safe_scale(s[r]);
        for (int64_t c = 0; c < a->cols; c++) a->xs[r * a->cols + c] = rot[r * a->cols + c] * inv;
    }
}

/* y := s_r · decode(codes), the whole tensor. */
static void decode_all(struct qat_aq_state *a, float *y) {
    const int G = a->books.g, M = a->books.m;
    const int64_t per_row = a->cols / G;
    const float *s = a->par + a->ncw;
#pragma omp parallel for schedule(static)
    for (int64_t v = 0; v < a->groups; v++) {
        float *out = y + v * G;
        qat_aq_decode(&a->books, a->codes + v * M, out);
        const float sr = s[v / per_row];
        for (int t = 0; t < G; t++) out[t] *= sr;
    }
}

/* The k-means fit of the first forward (see the top of the file). */
static void aq_fit(qat_quantizer *q, struct qat_aq_state *a) {
    float *s = a->par + a->ncw;
    for (int64_t r = 0; r < a->rows; r++) {
        double ss = 0;
        for (int64_t c = 0; c < a->cols; c++) ss += (double)a->rot[r * a->cols + c] * a->rot[r * a->cols + c];
        s[r] = (float)(sqrt(ss / (double)a->cols) + 1e-8);
    }
    scaled_targets(a, a->rot);
    qat_aq_fit(&a->books, a->xs, a->groups, qat_hash3(q->seed, 0xA0F17ull, 0), a->codes);
    a->init = 1.0f;
}

static void aq_forward(qat_quantizer *q, const float *x, float *y, int64_t rows) {
    struct qat_aq_state *a = q->aq;
    QAT_ASSERT(rows == a->rows); /* a weight: always the whole tensor */
    qat_quantizer_rotate(q, x, a->rot, rows);
    if (a->init == 0.0f) {
        aq_fit(q, a);
        if (aq_is_pv(q)) {
            /* B starts at the latent weights, as in estimator_pv.c */
            memcpy(q->pv_buf, a->rot, sizeof(float) * (size_t)(rows * a->cols));
            q->pv_init = 1.0f;
        }
    } else if (aq_is_pv(q) && q->pv_init == 0.0f) {
        /* codebooks, scales and codes carried from an ste run (`qat train --init`,
         * qat_quantizer_carry) without PV's state: B starts at the latent weights,
         * as after the fit above, and the codes stay those learned */
        memcpy(q->pv_buf, a->rot, sizeof(float) * (size_t)(rows * a->cols));
        q->pv_init = 1.0f;
    } else if (!aq_is_pv(q)) {
        qat_aq_books_refresh(&a->books); /* the optimizer moved the codewords */
        scaled_targets(a, a->rot);
        qat_aq_encode(&a->books, a->xs, a->groups, a->codes, 1);
    }
    decode_all(a, y);
}

static void aq_backward(qat_quantizer *q, const float *gy, int64_t rows) {
    struct qat_aq_state *a = q->aq;
    const int G = a->books.g, M = a->books.m, K = a->books.k;
    const int64_t per_row = a->cols / G;
    const float *s = a->par + a->ncw;
    float *gs = a->grad + a->ncw;
    /* serial over rows: the codebook sums do not depend on the thread count */
    for (int64_t r = 0; r < rows; r++) {
        double ds = 0;
        const float sr = s[r];
        for (int64_t j = 0; j < per_row; j++) {
            const int64_t v = r * per_row + j;
            const float *g = gy + v * G;
            float dec[QAT_AQ_MAX_GROUP];
            qat_aq_decode(&a->books, a->codes + v * M, dec);
            for (int t = 0; t < G; t++) ds += (double)g[t] * dec[t];
            for (int m = 0; m < M; m++) {
                float *gc = a->grad + ((int64_t)m * K + (int64_t)a->codes[v * M + m]) * G;
                for (int t = 0; t < G; t++) gc[t] += sr * g[t];
            }
        }
        gs[r] += (float)ds;
    }
    if (aq_is_pv(q)) qat_pv_backward(q, gy, rows);
}

/* The V step: the buffer's Adam step, then the top-τ groups re-encoded. */
static void aq_after_step(qat_quantizer *q, const float *w) {
    struct qat_aq_state *a = q->aq;
    if (a->init == 0.0f) return;
    const int G = a->books.g, M = a->books.m;
    const int64_t per_pv = q->pv_group / G, n_pv = a->rows * a->cols / q->pv_group, per_row = a->cols / G;
    const float *s = a->par + a->ncw;
    qat_aq_books_refresh(&a->books);
    decode_all(a, q->pv_what); /* Ŵ after the P step moved the books and scales */
    qat_pv_buffer_step(q, w);
    qat_pv_top_groups(q, q->pv_take);
    int64_t n = 0;
    for (int64_t p = 0; p < n_pv; p++) {
        if (!q->pv_take[p]) continue;
        for (int64_t j = 0; j < per_pv; j++) {
            const int64_t v = p * per_pv + j;
            const float inv = 1.0f / safe_scale(s[v / per_row]);
            for (int t = 0; t < G; t++) a->xs[n * G + t] = q->pv_rot[v * G + t] * inv;
            memcpy(a->xc + n * M, a->codes + v * M, sizeof(float) * (size_t)M);
            a->idx[n++] = v;
        }
    }
    qat_aq_encode(&a->books, a->xs, n, a->xc, QAT_AQ_BEAM);
    for (int64_t i = 0; i < n; i++) {
        const int64_t v = a->idx[i];
        memcpy(a->codes + v * M, a->xc + i * M, sizeof(float) * (size_t)M);
        qat_aq_decode(&a->books, a->codes + v * M, q->pv_what + v * G);
        const float sr = s[v / per_row];
        for (int t = 0; t < G; t++) q->pv_what[v * G + t] *= sr;
    }
    qat_pv_decay(q);
}

static const qat_est_hooks AQ_STE = {
    .formats = QAT_ESTF_AQ, .nstate = 3, .nformat_state = 3, .check = aq_check, .alloc = aq_alloc, .release = aq_release,
    .forward = aq_forward, .backward = aq_backward, .params = aq_params, .state = aq_state};
static const qat_est_hooks AQ_PV = {
    .formats = QAT_ESTF_AQ, .weights_only = 1, .nstate = 8, .nformat_state = 3, .check = aq_check, .alloc = aq_alloc,
    .release = aq_release, .forward = aq_forward, .backward = aq_backward, .after_step = aq_after_step,
    .params = aq_params, .state = aq_state};

const qat_est_hooks *qat_aq_est_hooks(qat_est e) {
    /* estimator.c admits only ste and pv for QAT_ESTF_AQ */
    QAT_ASSERT(e == QAT_EST_STE || e == QAT_EST_PV);
    return e == QAT_EST_PV ? &AQ_PV : &AQ_STE;
}

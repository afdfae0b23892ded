/*
 * autograd/ops_norm.c — token embedding lookup and RMSNorm.
 *
 * Both reduce over rows in their backward (the embedding table and the norm
 * weight collect contributions from every token). Those reductions are split
 * into a fixed number of row chunks whatever the thread count, then summed in
 * chunk order, so gradients are bit-identical from run to run.
 *
 * In a bf16 step (tp->bf16) both norms also write their output's bf16 copy
 * (out->bf16, autograd/tensor.h: the operand of the next linear layer) row by
 * row in the same pass, with qat_bf16_row: the bits qat_to_bf16 gives; and
 * add+RMSNorm's backward writes the bf16 copy of b's gradient (b is the output of
 * o_proj or down_proj, whose backward products want it: autograd/tensor.h).
 */
#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "compress/quantizer.h"
#include "core/bf16.h"
#include "core/error.h"
#include "ops.h"

#define QAT_RED_CHUNKS 32 /* fixed partition for deterministic reductions */

/* ---- embedding ---- */
typedef struct {
    qat_tensor *table, *out; /* (V, C) and (M, C) */
    const int32_t *ids;      /* M token ids (caller-owned, alive through backward) */
} emb_ctx;

static void embedding_backward(qat_tape *tp, void *p) {
    emb_ctx *c = p;
    float *gt = qat_grad(tp, c->table);
    if (!gt) return;
    int64_t M = qat_tensor_rows(c->out), C = qat_tensor_cols(c->out);
    const float *g = qat_grad(tp, c->out);
    /* Parallel over columns: each thread owns a column range of the whole
     * table, so rows repeated in ids never race and the order is fixed. */
#pragma omp parallel
    {
        int nt = 1, t = 0;
#ifdef _OPENMP
        nt = omp_get_num_threads();
        t = omp_get_thread_num();
#endif
        int64_t c0 = C * t / nt, c1 = C * (t + 1) / nt;
        for (int64_t r = 0; r < M; r++) {
            float *dst = gt + (int64_t)c->ids[r] * C;
            const float *src = g + r * C;
            for (int64_t j = c0; j < c1; j++) dst[j] += src[j];
        }
    }
}

qat_tensor *qat_embedding(qat_tape *tp, qat_tensor *table, const int32_t *ids, int64_t M) {
    int64_t V = table->shape[0], C = table->shape[1];
    qat_tensor *o = qat_tape_tensor(tp, 2, (int64_t[]){M, C});
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < M; r++) {
        QAT_ASSERT(ids[r] >= 0 && ids[r] < V); /* the data loader validated every id */
        memcpy(o->data + r * C, table->data + (int64_t)ids[r] * C, (size_t)C * sizeof(float));
    }
    if (tp->grad_enabled) {
        emb_ctx *c = qat_tape_ctx(tp, sizeof *c);
        c->table = table; c->out = o; c->ids = ids;
        qat_tape_push(tp, embedding_backward, c);
    }
    return o;
}

/* ---- rmsnorm ---- */
typedef struct {
    qat_tensor *x, *w, *out; /* (M, C), (C), (M, C) */
    float *rstd;             /* (M) saved 1/rms */
} rms_ctx;

static void rmsnorm_backward(qat_tape *tp, void *p) {
    rms_ctx *c = p;
    int64_t M = qat_tensor_rows(c->x), C = qat_tensor_cols(c->x);
    /* the output's gradient: its buffer, or rows its consumer deferred (autograd/tensor.h) */
    const int deferred = qat_grad_deferred(tp, c->out);
    const float *x = c->x->data, *w = c->w->data, *g = deferred ? NULL : qat_grad(tp, c->out);
    int fx; /* first writer of dx stores */
    float *gx = qat_grad_all(tp, c->x, &fx), *gw = qat_grad(tp, c->w);
    float *partial = gw ? qat_tape_floats(tp, QAT_RED_CHUNKS * C) : NULL;
    float *grows = deferred ? qat_tape_floats(tp, QAT_RED_CHUNKS * 2 * C) : NULL; /* a row and its scratch per chunk */
#pragma omp parallel for schedule(dynamic, 1)
    for (int k = 0; k < QAT_RED_CHUNKS; k++) {
        int64_t r0 = M * k / QAT_RED_CHUNKS, r1 = M * (k + 1) / QAT_RED_CHUNKS;
        float *pw = partial ? partial + (int64_t)k * C : NULL;
        float *gbuf = grows ? grows + (int64_t)k * 2 * C : NULL;
        if (pw) memset(pw, 0, (size_t)C * sizeof(float));
        for (int64_t r = r0; r < r1; r++) {
            const float *xr = x + r * C, *gr = qat_grad_row(c->out, g, r, C, gbuf, gbuf + C);
            float rs = c->rstd[r];
            if (gx) {
                double dot = 0; /* mean(dxhat · xhat) */
                for (int64_t j = 0; j < C; j++) dot += (double)gr[j] * w[j] * xr[j];
                float m = (float)(dot / C) * rs * rs;
                float *gxr = gx + r * C;
                for (int64_t j = 0; j < C; j++) {
                    float d = rs * (gr[j] * w[j] - xr[j] * m);
                    gxr[j] = fx ? d : gxr[j] + d;
                }
            }
            if (pw)
                for (int64_t j = 0; j < C; j++) pw[j] += gr[j] * xr[j] * rs;
        }
    }
    if (gw)
        for (int k = 0; k < QAT_RED_CHUNKS; k++)
            for (int64_t j = 0; j < C; j++) gw[j] += partial[(int64_t)k * C + j];
}

/* Where a norm's output row i goes (qat_linear_feed, autograd/ops.h): o's values,
 * the quantizer's f32 rows, or (nothing of it kept whole) the thread's scratch row;
 * after it is written, out_row_done rounds it (to bf16 and/or through the quantizer). */
static float *out_row(const qat_tensor *o, int64_t i, int64_t C, float *scratch) {
    if (o->data) return o->data + i * C;
    if (o->quant) return o->quant + i * C;
    int th = 0;
#ifdef _OPENMP
    th = omp_get_thread_num();
#endif
    return scratch + (int64_t)th * C;
}

static void out_row_done(const qat_tensor *o, qat_quantizer *fq, int64_t i, int64_t C, float *row) {
    if (fq) qat_quantizer_forward_row(fq, row, i, o->quant_bf16 ? o->quant_bf16 + i * C : NULL);
    else if (o->bf16) qat_bf16_row(row, o->bf16 + i * C, C);
}

/* Set o up for its consumer: the copies `want` asks for in a bf16 step, or (feed)
 * what the linear with input quantizer qa reads. Returns the quantizer each row
 * goes through, or NULL; *scratch: per-thread rows when o keeps no f32 rows. */
static qat_quantizer *out_setup(qat_tape *tp, qat_tensor *o, qat_out want, int feed, qat_quantizer *qa, int64_t step,
                                float **scratch) {
    int64_t M = qat_tensor_rows(o), C = qat_tensor_cols(o);
    qat_quantizer *fq = feed ? qat_linear_feed(tp, o, qa, step, &want) : NULL;
    if (!fq && tp->bf16 && want != QAT_OUT_F32) o->bf16 = qat_arena_alloc(&tp->arena, (size_t)(M * C) * sizeof(uint16_t));
    if (!fq && tp->bf16 && want == QAT_OUT_BF16) o->data = NULL; /* nobody reads it: a consumer that would asserts (qat_linear) */
    int nth = 1;
#ifdef _OPENMP
    nth = omp_get_max_threads();
#endif
    *scratch = o->data || o->quant ? NULL : qat_tape_floats(tp, (int64_t)nth * C);
    return fq;
}

static qat_tensor *rmsnorm(qat_tape *tp, qat_tensor *x, qat_tensor *w, float eps, int feed, qat_quantizer *qa,
                           int64_t step) {
    int64_t M = qat_tensor_rows(x), C = qat_tensor_cols(x);
    QAT_ASSERT(w->numel == C);
    qat_tensor *o = qat_tape_tensor(tp, x->ndim, x->shape);
    float *rstd = tp->grad_enabled ? qat_tape_floats(tp, M) : NULL;
    float *scratch;
    qat_quantizer *fq = out_setup(tp, o, QAT_OUT_BOTH, feed, qa, step, &scratch);
#pragma omp parallel for schedule(dynamic, 32)
    for (int64_t r = 0; r < M; r++) {
        const float *xr = x->data + r * C;
        float *orow = out_row(o, r, C, scratch);
        float ss = 0;
        for (int64_t j = 0; j < C; j++) ss += xr[j] * xr[j];
        float rs = 1.0f / sqrtf(ss / (float)C + eps);
        if (rstd) rstd[r] = rs;
        for (int64_t j = 0; j < C; j++) orow[j] = xr[j] * rs * w->data[j];
        out_row_done(o, fq, r, C, orow);
    }
    if (tp->grad_enabled) {
        rms_ctx *c = qat_tape_ctx(tp, sizeof *c);
        c->x = x; c->w = w; c->out = o; c->rstd = rstd;
        qat_tape_push(tp, rmsnorm_backward, c);
    }
    return o;
}

qat_tensor *qat_rmsnorm(qat_tape *tp, qat_tensor *x, qat_tensor *w, float eps) {
    return rmsnorm(tp, x, w, eps, 0, NULL, 0);
}

qat_tensor *qat_rmsnorm_for(qat_tape *tp, qat_tensor *x, qat_tensor *w, float eps, qat_quantizer *qa, int64_t step) {
    return rmsnorm(tp, x, w, eps, 1, qa, step);
}

/* ---- residual add + rmsnorm, one pass ----
 * x = a + b (the residual stream, returned through *sum) and h = rmsnorm(x)·w.
 * The backward forms x's total gradient (what x's later users left, plus the
 * norm's) row by row and hands it straight to a and b, so neither the sum's
 * gradient nor a separate add pass is ever written. Same arithmetic in the same
 * order as qat_add followed by qat_rmsnorm: bit-identical results. */
#define RG 8 /* rows whose sequential sums run side by side (hides the add latency;
             * each row's summation order, so its bits, unchanged) */

typedef struct {
    qat_tensor *a, *b, *x, *w, *out; /* (M, C) ×3, (C), (M, C) */
    float *rstd;                     /* (M) saved 1/rms */
} addrms_ctx;

static void add_rmsnorm_backward(qat_tape *tp, void *p) {
    addrms_ctx *c = p;
    int64_t M = qat_tensor_rows(c->x), C = qat_tensor_cols(c->x);
    /* the output's gradient: its buffer, or rows its consumer deferred (autograd/tensor.h) */
    const int deferred = qat_grad_deferred(tp, c->out);
    const float *x = c->x->data, *w = c->w->data, *g = deferred ? NULL : qat_grad(tp, c->out);
    /* x's gradient from its other users, when any wrote one this pass */
    const float *gs = c->x->grad && c->x->grad_epoch == tp->epoch ? qat_grad(tp, c->x) : NULL;
    int fa, fb; /* first writers store; a == b is fine: per element a's store comes first */
    float *ga = qat_grad_all(tp, c->a, &fa), *gb = qat_grad_all(tp, c->b, &fb), *gw = qat_grad(tp, c->w);
    float *partial = gw ? qat_tape_floats(tp, QAT_RED_CHUNKS * C) : NULL;
    /* bf16 copies of a's and b's gradients where a product wants them (b is a linear's output) */
    uint16_t *ga16 = ga ? c->a->grad_bf16 : NULL, *gb16 = gb ? c->b->grad_bf16 : NULL;
    /* b's only consumer, declared so: its bf16 copy alone (autograd/tensor.h), rounded
     * from a's row when that row is d itself, else from a row of scratch */
    const int only16 = gb16 && fb && c->b->grad_bf16_only && c->a != c->b;
    float *drows = only16 && !(ga && fa) ? qat_tape_floats(tp, QAT_RED_CHUNKS * C) : NULL;
    /* deferred: a group's RG gradient rows and one row of scratch per chunk */
    float *grows = deferred ? qat_tape_floats(tp, QAT_RED_CHUNKS * (RG + 1) * C) : NULL;
#pragma omp parallel for schedule(dynamic, 1)
    for (int k = 0; k < QAT_RED_CHUNKS; k++) {
        int64_t r0 = M * k / QAT_RED_CHUNKS, r1 = M * (k + 1) / QAT_RED_CHUNKS;
        float *pw = partial ? partial + (int64_t)k * C : NULL;
        float *drow = drows ? drows + (int64_t)k * C : NULL; /* d of the current row, for gb16 */
        float *gbuf = grows ? grows + (int64_t)k * (RG + 1) * C : NULL;
        if (pw) memset(pw, 0, (size_t)C * sizeof(float));
        for (int64_t q0 = r0; q0 < r1; q0 += RG) {
            int nr = r1 - q0 < RG ? (int)(r1 - q0) : RG;
            const float *xq[RG], *gq[RG];
            double dot[RG]; /* mean(dxhat · xhat) of each row */
            for (int r = 0; r < RG; r++) {
                int64_t i = q0 + (r < nr ? r : 0);
                xq[r] = x + i * C, dot[r] = 0;
                if (r < nr) gq[r] = qat_grad_row(c->out, g, i, C, gbuf ? gbuf + r * C : NULL, gbuf ? gbuf + RG * C : NULL);
            }
            for (int r = nr; r < RG; r++) gq[r] = gq[0]; /* rows past r1 repeat the first, unused */
            if (ga || gb)
                for (int64_t j = 0; j < C; j++)
                    for (int r = 0; r < RG; r++) dot[r] += (double)gq[r][j] * w[j] * xq[r][j];
            for (int r = 0; r < nr; r++) {
                int64_t i = q0 + r;
                const float *xr = xq[r], *gr = gq[r];
                float rs = c->rstd[i];
                if (ga || gb) {
                    float m = (float)(dot[r] / C) * rs * rs;
                    float *gar = ga ? ga + i * C : NULL, *gbr = gb && !only16 ? gb + i * C : drow;
                    const float *gsr = gs ? gs + i * C : NULL;
                    for (int64_t j = 0; j < C; j++) {
                        float d = rs * (gr[j] * w[j] - xr[j] * m);
                        if (gsr) d = gsr[j] + d;
                        if (gar) gar[j] = fa ? d : gar[j] + d;
                        if (gbr) gbr[j] = fb ? d : gbr[j] + d;
                    }
                    if (ga16) qat_bf16_row(gar, ga16 + i * C, C); /* a == b: after both writes */
                    if (gb16) qat_bf16_row(gbr ? gbr : gar, gb16 + i * C, C); /* gbr NULL: a's row is d */
                }
                if (pw)
                    for (int64_t j = 0; j < C; j++) pw[j] += gr[j] * xr[j] * rs;
            }
        }
    }
    if (ga16) c->a->grad_bf16_epoch = tp->epoch;
    if (gb16) c->b->grad_bf16_epoch = tp->epoch;
    if (only16) c->b->grad_skip_epoch = tp->epoch;
    if (gw)
        for (int k = 0; k < QAT_RED_CHUNKS; k++)
            for (int64_t j = 0; j < C; j++) gw[j] += partial[(int64_t)k * C + j];
}

static qat_tensor *add_rmsnorm(qat_tape *tp, qat_tensor *a, qat_tensor *b, qat_tensor *w, float eps, qat_tensor **sum,
                               qat_out want, int feed, qat_quantizer *qa, int64_t step) {
    int64_t M = qat_tensor_rows(a), C = qat_tensor_cols(a);
    QAT_ASSERT(a->numel == b->numel && a->ndim == b->ndim && w->numel == C);
    qat_tensor *x = qat_tape_tensor(tp, a->ndim, a->shape), *o = qat_tape_tensor(tp, a->ndim, a->shape);
    float *rstd = tp->grad_enabled ? qat_tape_floats(tp, M) : NULL;
    /* without o's f32 rows each thread writes its rows into one row of scratch, kept in cache */
    float *scratch;
    qat_quantizer *fq = out_setup(tp, o, want, feed, qa, step, &scratch);
#pragma omp parallel for schedule(dynamic, 4)
    for (int64_t r0 = 0; r0 < M; r0 += RG) {
        int nr = M - r0 < RG ? (int)(M - r0) : RG;
        const float *xr[RG];
        float ss[RG];
        for (int r = 0; r < RG; r++) {
            int64_t i = r0 + (r < nr ? r : 0); /* rows past M repeat the first, unused */
            xr[r] = x->data + i * C;
            ss[r] = 0;
        }
        for (int r = 0; r < nr; r++) {
            const float *ar = a->data + (r0 + r) * C, *br = b->data + (r0 + r) * C;
            float *xw = x->data + (r0 + r) * C;
            for (int64_t j = 0; j < C; j++) xw[j] = ar[j] + br[j];
        }
        for (int64_t j = 0; j < C; j++)
            for (int r = 0; r < RG; r++) ss[r] += xr[r][j] * xr[r][j];
        for (int r = 0; r < nr; r++) {
            float rs = 1.0f / sqrtf(ss[r] / (float)C + eps);
            if (rstd) rstd[r0 + r] = rs;
            float *orow = out_row(o, r0 + r, C, scratch);
            for (int64_t j = 0; j < C; j++) orow[j] = xr[r][j] * rs * w->data[j];
            out_row_done(o, fq, r0 + r, C, orow);
        }
    }
    if (tp->grad_enabled) {
        addrms_ctx *c = qat_tape_ctx(tp, sizeof *c);
        c->a = a; c->b = b; c->x = x; c->w = w; c->out = o; c->rstd = rstd;
        qat_tape_push(tp, add_rmsnorm_backward, c);
    }
    *sum = x;
    return o;
}

qat_tensor *qat_add_rmsnorm_out(qat_tape *tp, qat_tensor *a, qat_tensor *b, qat_tensor *w, float eps,
                                qat_tensor **sum, qat_out want) {
    return add_rmsnorm(tp, a, b, w, eps, sum, want, 0, NULL, 0);
}

qat_tensor *qat_add_rmsnorm_for(qat_tape *tp, qat_tensor *a, qat_tensor *b, qat_tensor *w, float eps,
                                qat_tensor **sum, qat_quantizer *qa, int64_t step) {
    return add_rmsnorm(tp, a, b, w, eps, sum, QAT_OUT_BOTH, 1, qa, step);
}

qat_tensor *qat_add_rmsnorm(qat_tape *tp, qat_tensor *a, qat_tensor *b, qat_tensor *w, float eps, qat_tensor **sum) {
    return qat_add_rmsnorm_out(tp, a, b, w, eps, sum, QAT_OUT_BOTH);
}

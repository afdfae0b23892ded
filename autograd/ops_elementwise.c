/*
 * autograd/ops_elementwise.c — add, mul, scale, SiLU and the SwiGLU product.
 *
 * All memory-bound: one OpenMP pass each, forward and backward.
 */
#include <math.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "compress/quantizer.h"
#include "core/bf16.h"
#include "core/error.h"
#include "core/fastexp.h"
#include "core/prefetch.h"
#include "core/vexpf.h"
#include "ops.h"

typedef struct {
    qat_tensor *a, *b, *out; /* inputs and output */
    float s;                 /* scale factor (qat_scale) */
} ew_ctx;

static void same_shape(const qat_tensor *a, const qat_tensor *b) {
    QAT_ASSERT(a->numel == b->numel && a->ndim == b->ndim);
}

static qat_tensor *like(qat_tape *tp, const qat_tensor *a) { return qat_tape_tensor(tp, a->ndim, a->shape); }

/* ---- add ---- */
static void add_backward(qat_tape *tp, void *p) {
    ew_ctx *c = p;
    const float *g = qat_grad(tp, c->out);
    int fa, fb; /* first writers store; a == b is fine: per element a's store comes first */
    float *ga = qat_grad_all(tp, c->a, &fa), *gb = qat_grad_all(tp, c->b, &fb);
    int64_t n = c->out->numel;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        if (ga) ga[i] = fa ? g[i] : ga[i] + g[i];
        if (gb) gb[i] = fb ? g[i] : gb[i] + g[i];
    }
}

qat_tensor *qat_add(qat_tape *tp, qat_tensor *a, qat_tensor *b) {
    same_shape(a, b);
    qat_tensor *o = like(tp, a);
    const float *x = a->data, *y = b->data;
    float *z = o->data;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < o->numel; i++) z[i] = x[i] + y[i];
    if (tp->grad_enabled) {
        ew_ctx *c = qat_tape_ctx(tp, sizeof *c);
        c->a = a; c->b = b; c->out = o;
        qat_tape_push(tp, add_backward, c);
    }
    return o;
}

/* ---- mul ---- */
static void mul_backward(qat_tape *tp, void *p) {
    ew_ctx *c = p;
    const float *g = qat_grad(tp, c->out), *x = c->a->data, *y = c->b->data;
    int fa, fb;
    float *ga = qat_grad_all(tp, c->a, &fa), *gb = qat_grad_all(tp, c->b, &fb);
    int64_t n = c->out->numel;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        if (ga) ga[i] = (fa ? 0.0f : ga[i]) + g[i] * y[i];
        if (gb) gb[i] = (fb ? 0.0f : gb[i]) + g[i] * x[i];
    }
}

qat_tensor *qat_mul(qat_tape *tp, qat_tensor *a, qat_tensor *b) {
    same_shape(a, b);
    qat_tensor *o = like(tp, a);
    const float *x = a->data, *y = b->data;
    float *z = o->data;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < o->numel; i++) z[i] = x[i] * y[i];
    if (tp->grad_enabled) {
        ew_ctx *c = qat_tape_ctx(tp, sizeof *c);
        c->a = a; c->b = b; c->out = o;
        qat_tape_push(tp, mul_backward, c);
    }
    return o;
}

/* ---- scale ---- */
static void scale_backward(qat_tape *tp, void *p) {
    ew_ctx *c = p;
    const float *g = qat_grad(tp, c->out);
    int fa;
    float *ga = qat_grad_all(tp, c->a, &fa);
    if (!ga) return;
    int64_t n = c->out->numel;
    float s = c->s;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) ga[i] = (fa ? 0.0f : ga[i]) + s * g[i];
}

qat_tensor *qat_scale(qat_tape *tp, qat_tensor *a, float s) {
    qat_tensor *o = like(tp, a);
    const float *x = a->data;
    float *z = o->data;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < o->numel; i++) z[i] = s * x[i];
    if (tp->grad_enabled) {
        ew_ctx *c = qat_tape_ctx(tp, sizeof *c);
        c->a = a; c->out = o; c->s = s;
        qat_tape_push(tp, scale_backward, c);
    }
    return o;
}

/* ---- silu ---- */
static inline float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

/* s[j] = sigmoidf(x[j]) for n values, the exponentials 16 at a time (core/vexpf.h:
 * the same bits as expf, so the same bits as sigmoidf). */
static void sigmoid_row(const float *x, float *s, int64_t n) {
    for (int64_t j = 0; j < n; j++) s[j] = -x[j];
    qat_vexpf_row(s, s, n);
    for (int64_t j = 0; j < n; j++) s[j] = 1.0f / (1.0f + s[j]);
}

static void silu_backward(qat_tape *tp, void *p) {
    ew_ctx *c = p;
    const float *g = qat_grad(tp, c->out), *x = c->a->data;
    int fa;
    float *ga = qat_grad_all(tp, c->a, &fa);
    if (!ga) return;
    int64_t n = c->out->numel;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float s = sigmoidf(x[i]);
        ga[i] = (fa ? 0.0f : ga[i]) + g[i] * s * (1.0f + x[i] * (1.0f - s));
    }
}

qat_tensor *qat_silu(qat_tape *tp, qat_tensor *a) {
    qat_tensor *o = like(tp, a);
    const float *x = a->data;
    float *z = o->data;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < o->numel; i++) z[i] = x[i] * sigmoidf(x[i]);
    if (tp->grad_enabled) {
        ew_ctx *c = qat_tape_ctx(tp, sizeof *c);
        c->a = a; c->out = o;
        qat_tape_push(tp, silu_backward, c);
    }
    return o;
}

/* ---- swiglu: out (M, H) = silu(g) ⊙ u with [g | u] = gu (M, 2H) ----
 * The backward recomputes σ(g) 256 columns at a time with the vectorized exp
 * (core/vexpf.h, the bits of expf, so the forward's values exactly): cheaper than
 * writing an (M, H) σ array in the forward and reading it back, which was the
 * largest memory traffic of the pair.
 *
 * In a bf16 step (tp->bf16) σ is core/fastexp.h's instead (16 float lanes, ~1
 * ulp; the output is rounded to bf16 before its product anyway), in the forward
 * and the backward alike, so the gradient is the derivative of what the forward
 * computed; and the forward also writes out's bf16 copy (out->bf16, the operand
 * of the down projection, autograd/tensor.h) in the same pass, the backward gu's
 * gradient's (gu->grad_bf16, for the gate/up projection's backward). */
typedef struct {
    qat_tensor *gu, *out; /* (M, 2H) and (M, H) */
    int fast;             /* σ from core/fastexp.h (bf16 step), else from core/vexpf.h */
} swiglu_ctx;

/* σ of n values with the exp the step's precision uses. */
static inline void swiglu_sigmoid(int fast, const float *x, float *s, int64_t n) {
    if (fast) qat_fast_sigmoid_row(x, s, n);
    else sigmoid_row(x, s, n);
}

static void swiglu_backward(qat_tape *tp, void *p) {
    swiglu_ctx *c = p;
    int64_t M = qat_tensor_rows(c->out), H = qat_tensor_cols(c->out);
    /* the output's gradient: its buffer, or rows its consumer deferred (autograd/tensor.h) */
    const int deferred = qat_grad_deferred(tp, c->out);
    const float *gout = deferred ? NULL : qat_grad(tp, c->out), *gu = c->gu->data;
    int first;
    float *ggu = qat_grad_all(tp, c->gu, &first);
    if (!ggu) return;
    uint16_t *gb = c->gu->grad_bf16; /* gu's product wants the gradient in bf16 too */
    /* the only consumer of gu, declared so: its bf16 copy alone (autograd/tensor.h) */
    const int only16 = gb && first && c->gu->grad_bf16_only;
    int nth = 1;
#ifdef _OPENMP
    nth = omp_get_max_threads();
#endif
    float *grows = deferred ? qat_tape_floats(tp, (int64_t)nth * 2 * H) : NULL; /* a row and scratch per thread */
#pragma omp parallel for schedule(dynamic, 32)
    for (int64_t r = 0; r < M; r++) {
        float sbuf[256], dgbuf[256], dubuf[256];
        float *gbuf = NULL;
        if (grows) {
            int th = 0;
#ifdef _OPENMP
            th = omp_get_thread_num();
#endif
            gbuf = grows + (int64_t)th * 2 * H;
        }
        if (r + 2 < M) { /* the row after next: gu comes from memory, dy from the down product (core/prefetch.h) */
            qat_prefetch(gu + (r + 2) * 2 * H, sizeof(float) * (size_t)(2 * H));
            qat_prefetch(gout ? gout + (r + 2) * H : c->out->grad_row_src + (r + 2) * H, sizeof(float) * (size_t)H);
        }
        const float *gorow = qat_grad_row(c->out, gout, r, H, gbuf, gbuf ? gbuf + H : NULL);
        for (int64_t j0 = 0; j0 < H; j0 += 256) {
            int64_t n = H - j0 < 256 ? H - j0 : 256;
            const float *restrict g = gu + r * 2 * H + j0, *restrict u = g + H, *restrict go = gorow + j0;
            float *restrict dg = only16 ? dgbuf : ggu + r * 2 * H + j0, *restrict du = only16 ? dubuf : dg + H;
            float *restrict sg = sbuf;
            swiglu_sigmoid(c->fast, g, sg, n);
            if (first) {
                for (int64_t j = 0; j < n; j++) {
                    float s = sg[j];
                    float silu = g[j] * s;
                    du[j] = go[j] * silu;
                    dg[j] = go[j] * u[j] * s * (1.0f + g[j] * (1.0f - s));
                }
            } else {
                for (int64_t j = 0; j < n; j++) {
                    float s = sg[j];
                    float silu = g[j] * s;
                    du[j] = du[j] + go[j] * silu;
                    dg[j] = dg[j] + go[j] * u[j] * s * (1.0f + g[j] * (1.0f - s));
                }
            }
            if (gb) {
                qat_bf16_row(dg, gb + r * 2 * H + j0, n);
                qat_bf16_row(du, gb + r * 2 * H + H + j0, n);
            }
        }
    }
    if (gb) c->gu->grad_bf16_epoch = tp->epoch;
    if (only16) c->gu->grad_skip_epoch = tp->epoch;
}

static qat_tensor *swiglu(qat_tape *tp, qat_tensor *gu, qat_out want, int feed, qat_quantizer *qa, int64_t step) {
    int64_t M = qat_tensor_rows(gu), H2 = qat_tensor_cols(gu);
    QAT_ASSERT(H2 % 2 == 0);
    int64_t H = H2 / 2;
    qat_tensor *o = qat_tape_tensor(tp, 2, (int64_t[]){M, H});
    const int fast = tp->bf16;
    /* a linear with input quantizer qa reads the output (qat_linear_feed): each
     * whole row goes through fq as soon as it is written */
    qat_quantizer *fq = feed ? qat_linear_feed(tp, o, qa, step, &want) : NULL;
    if (!fq && fast && want != QAT_OUT_F32) o->bf16 = qat_arena_alloc(&tp->arena, (size_t)(M * H) * sizeof(uint16_t));
    if (!fq && fast && want == QAT_OUT_BF16) o->data = NULL; /* nobody reads it: a consumer that would asserts (qat_linear) */
    int nth = 1;
#ifdef _OPENMP
    nth = omp_get_max_threads();
#endif
    float *rows = fq && !o->quant ? qat_tape_floats(tp, (int64_t)nth * H) : NULL; /* a row per thread for fq */
    const float *x = gu->data;
    float *z = o->data ? o->data : o->quant;
    uint16_t *zb = o->bf16;
#pragma omp parallel for schedule(dynamic, 32)
    for (int64_t r = 0; r < M; r++) {
        const float *g = x + r * 2 * H, *u = g + H;
        float sg[256], ob[256]; /* σ(g) of these n columns; the outputs when no row is kept */
        if (r + 2 < M) qat_prefetch(g + 4 * H, sizeof(float) * (size_t)(2 * H)); /* the row after next (core/prefetch.h) */
        float *zr = z ? z + r * H : NULL;
        if (rows) {
            int th = 0;
#ifdef _OPENMP
            th = omp_get_thread_num();
#endif
            zr = rows + (int64_t)th * H;
        }
        for (int64_t j0 = 0; j0 < H; j0 += 256) {
            int64_t n = H - j0 < 256 ? H - j0 : 256;
            float *out = zr ? zr + j0 : ob;
            swiglu_sigmoid(fast, g + j0, sg, n);
            for (int64_t j = 0; j < n; j++) out[j] = g[j0 + j] * sg[j] * u[j0 + j];
            if (zb) qat_bf16_row(out, zb + r * H + j0, n);
        }
        if (fq) qat_quantizer_forward_row(fq, zr, r, o->quant_bf16 ? o->quant_bf16 + r * H : NULL);
    }
    if (tp->grad_enabled) {
        swiglu_ctx *c = qat_tape_ctx(tp, sizeof *c);
        c->gu = gu; c->out = o; c->fast = fast;
        qat_tape_push(tp, swiglu_backward, c);
    }
    return o;
}

qat_tensor *qat_swiglu_out(qat_tape *tp, qat_tensor *gu, qat_out want) { return swiglu(tp, gu, want, 0, NULL, 0); }

qat_tensor *qat_swiglu_for(qat_tape *tp, qat_tensor *gu, qat_quantizer *qa, int64_t step) {
    return swiglu(tp, gu, QAT_OUT_BOTH, 1, qa, step);
}

qat_tensor *qat_swiglu(qat_tape *tp, qat_tensor *gu) { return qat_swiglu_out(tp, gu, QAT_OUT_BOTH); }

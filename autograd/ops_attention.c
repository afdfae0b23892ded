/*
 * autograd/ops_attention.c — rotary position embedding and causal attention.
 *
 * Attention runs as batched oneDNN products over (B, H) whose operands are
 * addressed in place by strides: head h of q is columns [h·hd, (h+1)·hd) of the
 * (B·T, ·) row-major buffer it lives in, so there is no split/transpose copy.
 *
 *     S = q·kᵀ/√hd (B,H,T,T) → causal softmax in place → P (kept for backward)
 *     out[b, t, h·hd + j] = (P·v)[b, h, t, j]                      (B·T, C)
 *
 *     dv += Pᵀ·dout     dP = dout·vᵀ     dS = P ⊙ (dP − rowsum(dP ⊙ P))
 *     dq += dS·k/√hd    dk += dSᵀ·q/√hd
 *
 * The full T×T scores are computed and the upper triangle masked: simpler than
 * tiling, and at T ≤ 256 the products are a minor part of the step.
 */
#include <math.h>
#include <string.h>

#include "core/error.h"
#include "gemm.h"
#include "ops.h"

/* ---- rope (HF rotate-half) ---- */
typedef struct {
    qat_cols x;          /* input columns (B·T, H·hd) */
    qat_tensor *out;     /* (B·T, H·hd) */
    const float *cs;     /* (T, hd/2) cos then (T, hd/2) sin */
    int64_t T;
    int heads;
} rope_ctx;

static float *rope_table(qat_tape *tp, int64_t T, int64_t hd, double theta) {
    int64_t half = hd / 2;
    float *cs = qat_tape_floats(tp, 2 * T * half);
    for (int64_t t = 0; t < T; t++)
        for (int64_t j = 0; j < half; j++) {
            double inv = pow(theta, -2.0 * (double)j / (double)hd);
            double a = (double)t * inv;
            cs[t * half + j] = (float)cos(a);
            cs[T * half + t * half + j] = (float)sin(a);
        }
    return cs;
}

static void rope_backward(qat_tape *tp, void *p) {
    rope_ctx *c = p;
    float *gx = qat_grad(tp, c->x.t);
    if (!gx) return;
    int64_t M = qat_tensor_rows(c->out), C = c->x.cols, ld = qat_tensor_cols(c->x.t);
    int64_t hd = C / c->heads, half = hd / 2, T = c->T;
    const float *g = c->out->grad;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < M; r++) {
        const float *co = c->cs + (r % T) * half, *si = c->cs + T * half + (r % T) * half;
        for (int h = 0; h < c->heads; h++) {
            const float *g1 = g + r * C + h * hd, *g2 = g1 + half;
            float *d1 = gx + r * ld + c->x.off + h * hd, *d2 = d1 + half;
            for (int64_t j = 0; j < half; j++) {
                d1[j] += g1[j] * co[j] + g2[j] * si[j];
                d2[j] += g2[j] * co[j] - g1[j] * si[j];
            }
        }
    }
}

qat_tensor *qat_rope(qat_tape *tp, qat_cols x, int64_t T, int heads, double theta) {
    int64_t M = qat_tensor_rows(x.t), C = x.cols, ld = qat_tensor_cols(x.t);
    QAT_ASSERT(C % heads == 0 && (C / heads) % 2 == 0 && M % T == 0);
    int64_t hd = C / heads, half = hd / 2;
    const float *cs = rope_table(tp, T, hd, theta);
    qat_tensor *o = qat_tape_tensor(tp, 2, (int64_t[]){M, C});
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < M; r++) {
        const float *co = cs + (r % T) * half, *si = cs + T * half + (r % T) * half;
        for (int h = 0; h < heads; h++) {
            const float *x1 = x.t->data + r * ld + x.off + h * hd, *x2 = x1 + half;
            float *o1 = o->data + r * C + h * hd, *o2 = o1 + half;
            for (int64_t j = 0; j < half; j++) {
                o1[j] = x1[j] * co[j] - x2[j] * si[j];
                o2[j] = x2[j] * co[j] + x1[j] * si[j];
            }
        }
    }
    if (tp->grad_enabled) {
        rope_ctx *c = qat_tape_ctx(tp, sizeof *c);
        c->x = x; c->out = o; c->cs = cs; c->T = T; c->heads = heads;
        qat_tape_push(tp, rope_backward, c);
    }
    return o;
}

/* ---- attention ---- */
typedef struct {
    qat_cols q, k, v;   /* (B·T, C) column blocks */
    qat_tensor *out;    /* (B·T, C) */
    float *P;           /* (B, H, T, T) softmax probabilities */
    int64_t B, T;
    int heads;
} att_ctx;

/* Descriptor of a (B, H) batch of (T, hd) head matrices inside column block c. */
static void head_operand(qat_cols c, int64_t T, int64_t hd, int transpose,
                         int64_t *s0, int64_t *s1, int64_t *rs, int64_t *cs) {
    int64_t ld = qat_tensor_cols(c.t);
    *s0 = T * ld;
    *s1 = hd;
    if (!transpose) { *rs = ld; *cs = 1; } else { *rs = 1; *cs = ld; }
}

static const float *cols_ptr(qat_cols c) { return c.t->data + c.off; }

static void scores_operand(int64_t H, int64_t T, int transpose,
                           int64_t *s0, int64_t *s1, int64_t *rs, int64_t *cs) {
    *s0 = H * T * T;
    *s1 = T * T;
    if (!transpose) { *rs = T; *cs = 1; } else { *rs = 1; *cs = T; }
}

static void att_backward(qat_tape *tp, void *p) {
    att_ctx *c = p;
    int64_t B = c->B, T = c->T, H = c->heads, C = c->q.cols, hd = C / H;
    float alpha = 1.0f / sqrtf((float)hd);
    qat_cols dout = qat_cols_of(c->out, 0, C);
    const float *gout = c->out->grad;
    float *dP = qat_tape_floats(tp, B * H * T * T);
    qat_gemm_desc d;

    /* dv += Pᵀ · dout */
    float *gv = qat_grad(tp, c->v.t);
    if (gv) {
        memset(&d, 0, sizeof d);
        d.b0 = B; d.b1 = H; d.M = T; d.N = hd; d.K = T; d.accumulate = 1;
        scores_operand(H, T, 1, &d.a_s0, &d.a_s1, &d.a_rs, &d.a_cs);
        head_operand(dout, T, hd, 0, &d.b_s0, &d.b_s1, &d.b_rs, &d.b_cs);
        head_operand(c->v, T, hd, 0, &d.c_s0, &d.c_s1, &d.c_rs, &d.c_cs);
        qat_gemm_run(&d, c->P, gout, gv + c->v.off);
    }
    /* dP = dout · vᵀ */
    memset(&d, 0, sizeof d);
    d.b0 = B; d.b1 = H; d.M = T; d.N = T; d.K = hd;
    head_operand(dout, T, hd, 0, &d.a_s0, &d.a_s1, &d.a_rs, &d.a_cs);
    head_operand(c->v, T, hd, 1, &d.b_s0, &d.b_s1, &d.b_rs, &d.b_cs);
    scores_operand(H, T, 0, &d.c_s0, &d.c_s1, &d.c_rs, &d.c_cs);
    qat_gemm_run(&d, gout, cols_ptr(c->v), dP);

    /* dS = P ⊙ (dP − Σ_j dP·P), causal part only; stored over dP */
#pragma omp parallel for schedule(static)
    for (int64_t row = 0; row < B * H * T; row++) {
        int64_t i = row % T;
        const float *pr = c->P + row * T;
        float *dr = dP + row * T;
        float dot = 0;
        for (int64_t j = 0; j <= i; j++) dot += pr[j] * dr[j];
        for (int64_t j = 0; j <= i; j++) dr[j] = pr[j] * (dr[j] - dot);
        for (int64_t j = i + 1; j < T; j++) dr[j] = 0;
    }
    /* dq += α·dS · k */
    float *gq = qat_grad(tp, c->q.t);
    if (gq) {
        memset(&d, 0, sizeof d);
        d.b0 = B; d.b1 = H; d.M = T; d.N = hd; d.K = T; d.accumulate = 1; d.alpha = alpha;
        scores_operand(H, T, 0, &d.a_s0, &d.a_s1, &d.a_rs, &d.a_cs);
        head_operand(c->k, T, hd, 0, &d.b_s0, &d.b_s1, &d.b_rs, &d.b_cs);
        head_operand(c->q, T, hd, 0, &d.c_s0, &d.c_s1, &d.c_rs, &d.c_cs);
        qat_gemm_run(&d, dP, cols_ptr(c->k), gq + c->q.off);
    }
    /* dk += α·dSᵀ · q */
    float *gk = qat_grad(tp, c->k.t);
    if (gk) {
        memset(&d, 0, sizeof d);
        d.b0 = B; d.b1 = H; d.M = T; d.N = hd; d.K = T; d.accumulate = 1; d.alpha = alpha;
        scores_operand(H, T, 1, &d.a_s0, &d.a_s1, &d.a_rs, &d.a_cs);
        head_operand(c->q, T, hd, 0, &d.b_s0, &d.b_s1, &d.b_rs, &d.b_cs);
        head_operand(c->k, T, hd, 0, &d.c_s0, &d.c_s1, &d.c_rs, &d.c_cs);
        qat_gemm_run(&d, dP, cols_ptr(c->q), gk + c->k.off);
    }
}

qat_tensor *qat_attention(qat_tape *tp, qat_cols q, qat_cols k, qat_cols v,
                          int64_t B, int64_t T, int heads) {
    int64_t C = q.cols, H = heads, hd = C / H;
    QAT_ASSERT(k.cols == C && v.cols == C && C % H == 0);
    QAT_ASSERT(qat_tensor_rows(q.t) == B * T && qat_tensor_rows(k.t) == B * T && qat_tensor_rows(v.t) == B * T);
    float alpha = 1.0f / sqrtf((float)hd);
    float *P = qat_tape_floats(tp, B * H * T * T);
    qat_tensor *o = qat_tape_tensor(tp, 2, (int64_t[]){B * T, C});
    qat_gemm_desc d;

    /* S = α·q·kᵀ */
    memset(&d, 0, sizeof d);
    d.b0 = B; d.b1 = H; d.M = T; d.N = T; d.K = hd; d.alpha = alpha;
    head_operand(q, T, hd, 0, &d.a_s0, &d.a_s1, &d.a_rs, &d.a_cs);
    head_operand(k, T, hd, 1, &d.b_s0, &d.b_s1, &d.b_rs, &d.b_cs);
    scores_operand(H, T, 0, &d.c_s0, &d.c_s1, &d.c_rs, &d.c_cs);
    qat_gemm_run(&d, cols_ptr(q), cols_ptr(k), P);

    /* causal softmax in place */
#pragma omp parallel for schedule(static)
    for (int64_t row = 0; row < B * H * T; row++) {
        int64_t i = row % T;
        float *s = P + row * T;
        float mx = s[0];
        for (int64_t j = 1; j <= i; j++) mx = s[j] > mx ? s[j] : mx;
        float sum = 0;
        for (int64_t j = 0; j <= i; j++) { s[j] = expf(s[j] - mx); sum += s[j]; }
        float inv = 1.0f / sum;
        for (int64_t j = 0; j <= i; j++) s[j] *= inv;
        for (int64_t j = i + 1; j < T; j++) s[j] = 0;
    }

    /* out = P · v, written head-interleaved into (B·T, C) */
    memset(&d, 0, sizeof d);
    d.b0 = B; d.b1 = H; d.M = T; d.N = hd; d.K = T;
    scores_operand(H, T, 0, &d.a_s0, &d.a_s1, &d.a_rs, &d.a_cs);
    head_operand(v, T, hd, 0, &d.b_s0, &d.b_s1, &d.b_rs, &d.b_cs);
    head_operand(qat_cols_of(o, 0, C), T, hd, 0, &d.c_s0, &d.c_s1, &d.c_rs, &d.c_cs);
    qat_gemm_run(&d, P, cols_ptr(v), o->data);

    if (tp->grad_enabled) {
        att_ctx *c = qat_tape_ctx(tp, sizeof *c);
        c->q = q; c->k = k; c->v = v; c->out = o; c->P = P; c->B = B; c->T = T; c->heads = heads;
        qat_tape_push(tp, att_backward, c);
    }
    return o;
}

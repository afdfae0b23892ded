/*
 * autograd/ops_rope.c — the rotary position embedding (RoPE, HF rotate-half) as an
 * op of its own, and the model's attention entry qat_rope_attention, which hands
 * the rotation to the attention kernels instead.
 *
 * The (T, hd/2) cos/sin table is built here once, in double, and kept by the tape.
 * qat_rope rotates a column block into a new tensor (tests and any caller that
 * wants the rotated values); qat_rope_attention passes the table to
 * qat_attention_rot (ops_attention.c), whose kernels rotate q and k as each head
 * is loaded and rotate dq and dk back as they are stored, with the same row
 * formulas (rope_kernels.h), so the two give the same bits and the model pays no
 * pass of its own and no rotated copy for RoPE.
 * Formula: Su et al., "RoFormer" (2021), in the rotate-half layout of Hugging Face's
 * Llama: docs/model.md.
 */
#include <math.h>

#include "core/error.h"
#include "ops.h"
#include "rope_kernels.h"

/* ---- rope (HF rotate-half) ---- */
typedef struct {
    qat_cols x;          /* input columns (B·T, H·hd) */
    qat_tensor *out;     /* (B·T, H·hd) */
    const float *cs;     /* (T, hd/2) cos then (T, hd/2) sin */
    int64_t T;
    int heads;
} rope_ctx;

/* The (T, hd/2) cos and sin table, computed in double. The tape keeps the first
 * one it builds for the rest of its life (a model uses one (T, hd, theta)); any
 * other goes to the arena for this step, so a saved table is never replaced
 * under a recorded backward. */
static const float *rope_table(qat_tape *tp, int64_t T, int64_t hd, double theta) {
    if (tp->rope_cs && tp->rope_T == T && tp->rope_hd == hd && tp->rope_theta == theta) return tp->rope_cs;
    int64_t half = hd / 2;
    int keep = tp->rope_cs == NULL;
    float *cs = keep ? qat_xmalloc((size_t)(2 * T * half) * sizeof(float)) : qat_tape_floats(tp, 2 * T * half);
    for (int64_t t = 0; t < T; t++)
        for (int64_t j = 0; j < half; j++) {
            double inv = pow(theta, -2.0 * (double)j / (double)hd);
            double a = (double)t * inv;
            cs[t * half + j] = (float)cos(a);
            cs[T * half + t * half + j] = (float)sin(a);
        }
    if (keep) tp->rope_cs = cs, tp->rope_T = T, tp->rope_hd = hd, tp->rope_theta = theta;
    return cs;
}

static void rope_backward(qat_tape *tp, void *p) {
    rope_ctx *c = p;
    int first; /* first writer of these columns: store, no clear */
    float *gx = qat_tensor_grad_cols(c->x.t, tp->epoch, c->x.off, c->x.cols, &first);
    if (!gx) return;
    int64_t M = qat_tensor_rows(c->out), C = c->x.cols, ld = qat_tensor_cols(c->x.t);
    int64_t hd = C / c->heads, half = hd / 2, T = c->T;
    const float *g = qat_grad(tp, c->out);
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < M; r++) {
        const float *restrict co = c->cs + (r % T) * half, *restrict si = c->cs + T * half + (r % T) * half;
        for (int h = 0; h < c->heads; h++) {
            const float *g1 = g + r * C + h * hd;
            float *d1 = gx + r * ld + c->x.off + h * hd;
            qat_rope_half_back(d1, d1 + half, g1, g1 + half, co, si, half, first);
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
        const float *restrict co = cs + (r % T) * half, *restrict si = cs + T * half + (r % T) * half;
        for (int h = 0; h < heads; h++) {
            const float *x1 = x.t->data + r * ld + x.off + h * hd;
            float *o1 = o->data + r * C + h * hd;
            qat_rope_half_fwd(o1, o1 + half, x1, x1 + half, co, si, half);
        }
    }
    if (tp->grad_enabled) {
        rope_ctx *c = qat_tape_ctx(tp, sizeof *c);
        c->x = x; c->out = o; c->cs = cs; c->T = T; c->heads = heads;
        qat_tape_push(tp, rope_backward, c);
    }
    return o;
}

qat_tensor *qat_rope_attention(qat_tape *tp, qat_tensor *qkv, int64_t B, int64_t T, int heads, double theta) {
    int64_t C = qat_tensor_cols(qkv) / 3;
    QAT_ASSERT(qat_tensor_cols(qkv) == 3 * C && C % heads == 0 && (C / heads) % 2 == 0);
    return qat_attention_rot(tp, qat_cols_of(qkv, 0, C), qat_cols_of(qkv, C, C), qat_cols_of(qkv, 2 * C, C), B, T,
                             heads, rope_table(tp, T, C / heads, theta));
}

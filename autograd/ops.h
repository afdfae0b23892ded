/*
 * autograd/ops.h — the differentiable operations a Llama needs, and nothing else.
 *
 * Every op takes the tape first, computes its output immediately and records
 * its backward when the tape has grad_enabled. Shapes are written next to each
 * argument; M is the number of token rows (B·T) and C the model width.
 *
 * A forward pass of one transformer block reads like the math:
 *
 *     h    = qat_rmsnorm(tp, x, w_norm1, eps);                   // (M, C)
 *     qkv  = qat_linear(tp, h, w_qkv, qa, qw, step);             // (M, 3C)
 *     att  = qat_rope_attention(tp, qkv, B, T, H, theta);        // (M, C)
 *     h2   = qat_add_rmsnorm(tp, x, qat_linear(tp, att, w_o, ...), w_norm2, eps, &x);
 *
 * qat_cols names a block of columns of a row-major tensor without copying it, so
 * attention reads q, k and v straight out of the fused projection's output.
 * Gradients accumulate (+=) into every input that has a gradient buffer.
 */
#ifndef QAT_AUTOGRAD_OPS_H
#define QAT_AUTOGRAD_OPS_H

#include <stdint.h>

#include "tape.h"

struct qat_quantizer;
struct qat_gradq;

/* Columns [off, off + cols) of a tensor seen as (rows, t->shape[last]). */
typedef struct {
    qat_tensor *t;  /* the underlying tensor */
    int64_t off;    /* first column */
    int64_t cols;   /* number of columns */
} qat_cols;

static inline qat_cols qat_cols_of(qat_tensor *t, int64_t off, int64_t cols) {
    qat_cols c = {t, off, cols};
    return c;
}

/* ---- elementwise ---------------------------------------------------------- */
qat_tensor *qat_add(qat_tape *tp, qat_tensor *a, qat_tensor *b);   /* a + b, same shape */
qat_tensor *qat_mul(qat_tape *tp, qat_tensor *a, qat_tensor *b);   /* a ⊙ b, same shape */
qat_tensor *qat_scale(qat_tape *tp, qat_tensor *a, float s);       /* s·a */
qat_tensor *qat_silu(qat_tape *tp, qat_tensor *a);                 /* a·σ(a) */
/* SwiGLU product of a fused gate/up projection: gu (M, 2H) → silu(gu[:, :H]) ⊙ gu[:, H:] (M, H). */
qat_tensor *qat_swiglu(qat_tape *tp, qat_tensor *gu);
/* Which copies of an op's output its one consumer reads, in a bf16 step: both
 * (the plain ops), the bf16 copy only (a linear with unquantized input: data is
 * then NULL), or the f32 values only (a linear whose input quantizer reads f32:
 * bf16 is then NULL). Each skipped copy is an (M, ·) array not written. An fp32
 * step writes f32 values only, whatever is asked. */
typedef enum { QAT_OUT_BOTH, QAT_OUT_BF16, QAT_OUT_F32 } qat_out;
/* qat_swiglu writing the copies `out` asks for. */
qat_tensor *qat_swiglu_out(qat_tape *tp, qat_tensor *gu, qat_out out);
/* qat_swiglu whose output feeds one linear, with input quantizer qa (NULL: none)
 * at `step`: it writes what that linear reads (qat_linear_feed below). */
qat_tensor *qat_swiglu_for(qat_tape *tp, qat_tensor *gu, struct qat_quantizer *qa, int64_t step);

/* ---- embedding and normalisation ---------------------------------------- */
/* table (V, C), ids[M] in [0, V) → (M, C). */
qat_tensor *qat_embedding(qat_tape *tp, qat_tensor *table, const int32_t *ids, int64_t M);
/* x (M, C), weight (C) → x / sqrt(mean(x²) + eps) ⊙ weight (M, C). */
qat_tensor *qat_rmsnorm(qat_tape *tp, qat_tensor *x, qat_tensor *weight, float eps);
/* The residual add and the norm after it in one pass: *sum = a + b (M, C), returns
 * rmsnorm(*sum, weight, eps) (M, C); the same bits as qat_add then qat_rmsnorm. */
qat_tensor *qat_add_rmsnorm(qat_tape *tp, qat_tensor *a, qat_tensor *b, qat_tensor *weight, float eps,
                            qat_tensor **sum);
/* qat_add_rmsnorm writing the copies `out` asks for (qat_out above); *sum is always f32. */
qat_tensor *qat_add_rmsnorm_out(qat_tape *tp, qat_tensor *a, qat_tensor *b, qat_tensor *weight, float eps,
                                qat_tensor **sum, qat_out out);
/* qat_rmsnorm and qat_add_rmsnorm whose output feeds one linear, with input
 * quantizer qa (NULL: none) at `step`: they write what that linear reads
 * (qat_linear_feed below). */
qat_tensor *qat_rmsnorm_for(qat_tape *tp, qat_tensor *x, qat_tensor *weight, float eps, struct qat_quantizer *qa,
                            int64_t step);
qat_tensor *qat_add_rmsnorm_for(qat_tape *tp, qat_tensor *a, qat_tensor *b, qat_tensor *weight, float eps,
                                qat_tensor **sum, struct qat_quantizer *qa, int64_t step);

/* ---- linear --------------------------------------------------------------- */
/* For the op producing t (M, K), t's one consumer being a linear with input
 * quantizer qa (NULL: none) at `step`: what to write. When qa rounds rows one at
 * a time (compress/quantizer.h), returns qa, having set t up for it: data NULL,
 * t->quant (f32 step) or t->quant_bf16 (bf16 step) allocated, the forward begun;
 * the producer then writes each row r of its output into t->quant's row (f32) or
 * into scratch (bf16) and calls qat_quantizer_forward_row on it, so the values are
 * rounded while in cache and never written whole, and the linear multiplies those
 * rows (the same bits as rounding t afterwards). Else returns NULL and sets *out:
 * the bf16 copy alone for an unquantized bf16 product, the f32 values alone for a
 * quantizer that reads them. */
struct qat_quantizer *qat_linear_feed(qat_tape *tp, qat_tensor *t, struct qat_quantizer *qa, int64_t step,
                                      qat_out *out);
/* x (M, K), W (N, K) → y = Q_a(x)·Q_w(W)ᵀ (M, N). qa/qw may be NULL (fp32).
 * `step` keys per-step randomness of the quantizers. */
qat_tensor *qat_linear(qat_tape *tp, qat_tensor *x, qat_tensor *W,
                       struct qat_quantizer *qa, struct qat_quantizer *qw, int64_t step);
/* The same with a quantized backward (compress/gradq.h; NULL or fp32 = qat_linear):
 * the backward products multiply operands quantized along their inner dim, with
 * random draws keyed by (gkey, step). */
qat_tensor *qat_linear_gq(qat_tape *tp, qat_tensor *x, qat_tensor *W, struct qat_quantizer *qa,
                          struct qat_quantizer *qw, const struct qat_gradq *gq, uint64_t gkey, int64_t step);

/* ---- attention ------------------------------------------------------------ */
/* Rotary embedding, Hugging Face rotate-half convention, on x (B·T, H·hd) given
 * as columns: position = row mod T; returns a contiguous (B·T, H·hd) tensor. */
qat_tensor *qat_rope(qat_tape *tp, qat_cols x, int64_t T, int heads, double theta);
/* Causal multi-head attention, softmax(q·kᵀ/√hd + mask)·v per head;
 * q, k, v are (B·T, H·hd) column blocks → (B·T, H·hd). */
qat_tensor *qat_attention(qat_tape *tp, qat_cols q, qat_cols k, qat_cols v,
                          int64_t B, int64_t T, int heads);
/* The model's attention: q|k|v the column blocks [0, C), [C, 2C), [2C, 3C) of qkv
 * (B·T, 3C), q and k rotated (qat_rope) → (B·T, C); head dim C/heads even. The
 * values of qat_rope over q|k followed by qat_attention, but each head's q and k
 * are rotated as the kernels load them and their gradients rotated back as they
 * are stored, so no rotated (B·T, 2C) copy and no pass over it exist. In fp32 the
 * bits are those of the two ops (same formulas, same order); under the bf16
 * kernels the values, up to the sign of a zero. */
qat_tensor *qat_rope_attention(qat_tape *tp, qat_tensor *qkv, int64_t B, int64_t T, int heads, double theta);

/* ---- loss ----------------------------------------------------------------- */
/* Mean cross-entropy of logits (M, V) against targets[M] (fused log-softmax);
 * a scalar (1) tensor, in nats. */
qat_tensor *qat_cross_entropy(qat_tape *tp, qat_tensor *logits, const int32_t *targets);

#endif

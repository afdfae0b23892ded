/*
 * model/llama.h — the Llama-style transformer that qat trains (docs/model.md).
 *
 *   tokens (B, T) → embed (M, C) → L × [ x += o(attn(rope(q), rope(k), v)(rmsnorm x))
 *                                       x += down(swiglu(gate|up(rmsnorm x))) ]
 *                 → rmsnorm → lm_head (M, V) → cross-entropy
 *
 * Pre-RMSNorm, multi-head causal attention with RoPE (HF rotate-half), SwiGLU
 * MLP with h = 32·ceil((8d/3)/32), no biases, untied head. q/k/v and gate/up are
 * stored fused ([q; k; v] is (3C, C), [gate; up] is (2H, C)) so each block runs
 * four products instead of seven; in a checkpoint they appear under their Hugging
 * Face names as row slices of the fused matrices (PyTorch layout [out, in]).
 *
 * Every block linear has a weight quantizer and an input-activation quantizer
 * (compress/quantizer.h); embeddings, head, norms and attention stay fp32.
 * All parameters live in one flat buffer, listed as named views for the
 * optimizer (which decays only the block linears) and the checkpoint.
 */
#ifndef QAT_MODEL_LLAMA_H
#define QAT_MODEL_LLAMA_H

#include <stdint.h>

#include "autograd/tape.h"
#include "compress/gradq.h"
#include "core/config.h"
#include "optim/param.h"

struct qat_quantizer;

typedef struct {
    int layers, dim, heads, hidden, vocab, seq_len; /* sizes */
    double rope_theta, norm_eps, init_std;          /* RoPE base, RMSNorm epsilon, init std */
} qat_model_shape;


typedef struct {
    qat_tensor norm1, wqkv, wo, norm2, wgu, wdown; /* (C), (3C, C), (C, C), (C), (2H, C), (C, H) */
    struct qat_quantizer *qa[4], *qw[4];           /* act / weight quantizers of qkv, o, gu, down */
    uint64_t gkey[4];                              /* keys of the quantized backward's draws, per linear */
} qat_block;

typedef struct qat_model {
    qat_model_shape s;      /* resolved sizes */
    int64_t n_params;       /* non-embedding N = L(4d²+3dh+2d)+d */
    int64_t n_total;        /* every float of the flat buffer */
    float *params, *grads;  /* flat buffers, n_total each */
    qat_tensor wte;         /* (V, C) token embedding */
    qat_tensor norm_f;      /* (C) final norm */
    qat_tensor lm_head;     /* (V, C) untied head */
    qat_block *blocks;      /* layers */
    qat_param_view *views;  /* every trainable array, checkpoint order */
    int n_views;
    int max_batch;          /* B the activation quantizers were sized for */
    int bf16;               /* train.precision: bf16 — linear products on bf16 operands */
    qat_gradq gq;           /* compress.gradients: the backward products' operands (off = fp32) */
} qat_model;

/* The sizes of preset "s1".."s8"; QAT_EINPUT for another name. */
int qat_model_preset(const char *name, qat_model_shape *out);
/* Sizes from a run config: the preset, overridden by explicit model keys,
 * then checked (heads divide dim, even head dim, ...). */
int qat_model_shape_from_config(const qat_config *cfg, qat_model_shape *out);
/* SwiGLU hidden size for width d. */
int qat_model_hidden(int dim);
/* Non-embedding parameter count and forward FLOPs per token (matmuls and attention). */
int64_t qat_model_count_params(const qat_model_shape *s);
double qat_model_flops_per_token(const qat_model_shape *s);

/* Every check qat_model_create makes of a config against sizes `s` (the gradient
 * quantizer, bf16 on this CPU, each side's format, Hadamard block and scale against
 * the linears' widths), without the weights: one block's quantizers are made
 * unsized (qat_quantizer_check) and freed, so it costs kilobytes whatever the
 * size. What a sweep tells an impossible run by before it starts, and what
 * qat train --print-config validates with. */
int qat_model_check(const qat_config *cfg, const qat_model_shape *s);
/* Build a model: sizes, initialised weights (seeded), quantizers of cfg->weights /
 * cfg->activations sized for batches of up to max_batch sequences.
 * train.precision: bf16 on a CPU without native bf16 products is QAT_EINPUT. */
int qat_model_create(const qat_config *cfg, const qat_model_shape *s, int max_batch, qat_model **out);
void qat_model_free(qat_model *m);

/* Bytes the tape holds for one training step over `tokens` = B·T tokens: the
 * activations qat_model_forward records and their gradients, a lower bound on
 * the arena's high water (the few small buffers it leaves out are listed in
 * model/llama.c). */
double qat_model_step_bytes(const qat_model_shape *s, int64_t tokens);

/* Next-token logits (B·T, V) of B sequences of inputs (B, T): the forward that
 * qat_model_forward scores, block linears compressed as in training. Row b·T + t
 * depends only on inputs[b][0..t] (causal attention, per-row activation
 * quantizers), so a shorter sequence may be padded on the right. Records on the
 * tape when tp->grad_enabled; the tensor lives until the next qat_tape_reset. */
qat_tensor *qat_model_logits(qat_model *m, qat_tape *tp, const int32_t *inputs, int B, int64_t step);

/* Mean cross-entropy of next-token prediction for B sequences: inputs and
 * targets are (B, T). Records on the tape when tp->grad_enabled. Sets
 * tp->bf16 from the model's precision. */
qat_tensor *qat_model_forward(qat_model *m, qat_tape *tp, const int32_t *inputs, const int32_t *targets,
                              int B, int64_t step);

/* Clear every parameter gradient for backward pass `epoch`. */
void qat_model_zero_grad(qat_model *m, uint64_t epoch);

/* After the optimizer step: let quantizers with state react (PV's V step). */
void qat_model_after_step(qat_model *m, int64_t step);

/* Quantizer state arrays for checkpoints: count, and the i-th as a view. */
int qat_model_compress_state_count(const qat_model *m);
void qat_model_compress_state(qat_model *m, int i, char name[96], float **data, int64_t *n);
/* Who keeps the i-th array: its quantizer, the array's index k there, the linear j
 * (0 q/k/v, 1 o, 2 gate/up, 3 down) and the side (1 weight, 0 input). */
struct qat_quantizer *qat_model_compress_state_owner(qat_model *m, int i, int *k, int *j, int *is_weight);

/* Effective format strings and estimator, for logs ("fp32" when uncompressed). */
const char *qat_model_weight_format(const qat_model *m);
const char *qat_model_act_format(const qat_model *m);
const char *qat_model_estimator(const qat_model *m);

#endif

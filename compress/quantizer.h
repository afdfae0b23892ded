/*
 * compress/quantizer.h — one compressed operand of a linear layer.
 *
 * A block linear layer y = x·Wᵀ in qat multiplies two compressed operands
 * (QuEST, docs/formats.md):
 *
 *     y = Q_a(x·H) · Q_w(W·H)ᵀ          H = block-diagonal orthonormal Hadamard
 *
 * Each operand has one qat_quantizer: it owns the format, the estimator (the
 * backward rule), the Hadamard rotation, the scratch it needs and any state
 * (masks, learned scales, PV codes). The linear op never looks inside:
 *
 *     forward:  y  = Q(x)               rows × cols, in the rotated domain
 *     backward: gx += Hᵀ(est(gy))       back in the original domain
 *
 * For fp32 with the Hadamard off, the quantizer is the identity and the op skips it.
 * Weights are (out, in) row-major; activations (tokens, in). Rows are independent
 * (per-row scales) except for per-tensor statistics such as top-k sparsity, which
 * are taken per *segment*: a fused weight [q; k; v] is 3 segments of equal rows.
 */
#ifndef QAT_COMPRESS_QUANTIZER_H
#define QAT_COMPRESS_QUANTIZER_H

#include <stddef.h>
#include <stdint.h>

#include "core/config.h"

typedef struct qat_quantizer qat_quantizer;

/* Make a quantizer for one operand. `side` is compress.weights or
 * compress.activations of the run config; `is_weight` selects the role; the
 * operand has at most `max_rows` rows of `cols` elements, split into `segments`
 * equal row blocks for per-tensor statistics. `seed` keys any randomness (noise
 * injection). Returns QAT_EINPUT (with the list of valid formats/estimators in
 * qat_errmsg()) for a bad format, estimator or option. */
int qat_quantizer_create(const qat_compress_side *side, int is_weight, int64_t max_rows, int64_t cols,
                         int segments, uint64_t seed, qat_quantizer **out);
/* The same checks as qat_quantizer_create, with no buffer sized for the operand:
 * an unsized quantizer that answers qat_quantizer_format, _hadamard and
 * _estimator only (and is freed with qat_quantizer_free), so that a config can
 * be validated for a model too large to build (qat train --print-config). */
int qat_quantizer_check(const qat_compress_side *side, int is_weight, int64_t max_rows, int64_t cols,
                        int segments, qat_quantizer **out);
void qat_quantizer_free(qat_quantizer *q);

/* 1 when forward would return its input unchanged (fp32, Hadamard off). */
int qat_quantizer_is_identity(const qat_quantizer *q);

/* y = Q(x): x and y are (rows, cols), rows <= max_rows; y must not alias x.
 * Remembers what the backward needs (mask, scales) for these rows. `step` keys
 * per-step randomness. */
void qat_quantizer_forward(qat_quantizer *q, const float *x, float *y, int64_t rows, int64_t step);

/* yb = bf16(Q(x)) (core/bf16.h rounding), the operand of a bf16 product: the same
 * bits as qat_quantizer_forward followed by rounding to bf16, and the same state for
 * the backward. Formats rounded row by row never write the f32 rows (one pass over
 * memory fewer); the others stage them in scratch, (rows, cols) floats. */
void qat_quantizer_forward_bf16(qat_quantizer *q, const float *x, uint16_t *yb, float *scratch, int64_t rows,
                                int64_t step);

/* The forward one row at a time, for the pass that produces x (autograd/ops.h:
 * RMSNorm, add+RMSNorm, SwiGLU), so that x is rounded while its row is in cache
 * and never written whole. 1 when q rounds rows independently (a value grid or
 * per-row sparsity: no per-tensor statistics, noise or learned state). */
int qat_quantizer_forward_by_rows(const qat_quantizer *q);
/* Start a forward of `rows` rows at `step` (the state qat_quantizer_forward
 * keeps for the backward), before any qat_quantizer_forward_row. */
void qat_quantizer_rows_begin(qat_quantizer *q, int64_t rows, int64_t step);
/* Row r of that forward, in place: x (cols) holds the row and gets Q(x), and yb
 * (cols) bf16(Q(x)) when non-NULL. The bits qat_quantizer_forward and
 * qat_quantizer_forward_bf16 give that row. Rows may be done in any order, by
 * any thread. */
void qat_quantizer_forward_row(qat_quantizer *q, float *x, int64_t r, uint16_t *yb);

/* gx += dL/dx given gy = dL/dy for the last forward (same rows). Also
 * accumulates the gradients of the quantizer's own parameters (LSQ scales). */
void qat_quantizer_backward(qat_quantizer *q, const float *gy, float *gx, int64_t rows);
/* The same, storing into gx instead of adding when `store` is set (the caller is
 * gx's first writer in this backward pass, so gx holds no gradient yet and needs
 * no clearing); bit for bit what clearing and adding would give. */
void qat_quantizer_backward_into(qat_quantizer *q, const float *gy, float *gx, int64_t rows, int store);

/* 1 when the backward maps each row on its own and does nothing else (the mask
 * and the inverse rotation; no estimator state or parameter gradients): then a
 * consumer may apply it row by row with qat_quantizer_backward_row, fused into
 * its own pass over the rows (autograd/tensor.h, deferred gradients). */
int qat_quantizer_backward_by_rows(const qat_quantizer *q);
/* gx (cols) = dL/dx of row r of the last forward, given gy (cols) = its dL/dy:
 * the bits qat_quantizer_backward_into(..., store = 1) writes for that row.
 * scratch: cols floats. Only when qat_quantizer_backward_by_rows(q). */
void qat_quantizer_backward_row(const qat_quantizer *q, const float *gy, int64_t r, float *gx, float *scratch);

/* The quantizer's trainable parameters (LSQ step sizes; PV continuous scales):
 * *value and *grad point at n floats owned by q (grad zeroed by the caller each
 * step). Returns n, 0 when there are none. The optimizer trains them with AdamW
 * and no weight decay. */
int64_t qat_quantizer_params(qat_quantizer *q, float **value, float **grad);

/* Called after every optimizer step with the latent weights w (rows, cols):
 * PV's V step (re-project the top-τ groups). No-op for STE-family estimators. */
void qat_quantizer_after_step(qat_quantizer *q, const float *w, int64_t step);

/* Checkpoint state (params included): array i has a name, a pointer into q's
 * memory and a length in floats. Saving reads through the pointers; restoring
 * writes through them. Returns the number of arrays. */
int qat_quantizer_state_count(const qat_quantizer *q);
void qat_quantizer_state(qat_quantizer *q, int i, const char **name, float **data, int64_t *n);

/* What learned state (LSQ steps, PV codes, aq codebooks) was learned for, as text:
 * the format as named (with an effective @hB), the Hadamard block, the estimator
 * in effect, the scale rule and group, e.g. "int4@g32 (no rotation, estimator pv,
 * scale rms)". Two quantizers with the same text read the same state the same way;
 * another text reads it as something it is not (int4 codes as int2, unrotated
 * codes in a rotated product). */
void qat_quantizer_state_key(const qat_quantizer *q, char *buf, size_t n);

/* How much of the learned state of `from`, the same operand's quantizer in another
 * run (the source of `qat train --init`), `to` reads as it was learned:
 *   QAT_CARRY_ALL     every array: the same state key, and for pv a buffer of the
 *                     same kind (a pv_lr = 0 buffer is set once at the first forward
 *                     and never moved, so read as pv_lr > 0's it would hold the
 *                     source's starting weights);
 *   QAT_CARRY_FORMAT  the arrays the format owns (qat_quantizer_state_of_format):
 *                     aqMxBgG across ste and pv, or pv into another kind of buffer,
 *                     the rest of the key equal; the estimator's own state starts
 *                     fresh, from them, at the first forward;
 *   QAT_CARRY_NONE    nothing: another format, rotation, scale, group or estimator. */
typedef enum { QAT_CARRY_NONE, QAT_CARRY_FORMAT, QAT_CARRY_ALL } qat_carry;
qat_carry qat_quantizer_carry(const qat_quantizer *to, const qat_quantizer *from);

/* 1 when state array i of q belongs to the format (aq codebooks and scales, codes,
 * their fitted flag), not to the estimator (LSQ steps, PV's buffers). */
int qat_quantizer_state_of_format(const qat_quantizer *q, int i);

/* 1 when the latent weights passed to forward are what the quantizer follows, so
 * that another quantizer may quantize them afresh; 0 for PV with pv_lr > 0, whose
 * forward returns its stored codes and whose V step follows its own buffer: the
 * weight tensor is not read after the first forward. */
int qat_quantizer_follows_weights(const qat_quantizer *q);

/* The Hadamard block the operand is rotated by (0 = none): the basis of forward's output. */
int qat_quantizer_hadamard(const qat_quantizer *q);

/* For the run log: the format string, the estimator in effect, the format's GMSE. */
const char *qat_quantizer_format(const qat_quantizer *q);
const char *qat_quantizer_estimator(const qat_quantizer *q);

#endif

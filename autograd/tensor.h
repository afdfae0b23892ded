/*
 * autograd/tensor.h — f32 tensors and the arena that holds a step's activations.
 *
 * A qat_tensor is a view: a shape and two pointers (values, gradient). It owns
 * nothing. Parameters point into one flat buffer made by the model (so the
 * optimizer sweeps a single array); activations point into a qat_arena that is
 * reset at the start of every step and hands out the same addresses in the same
 * order each time, so the steady-state step allocates nothing.
 *
 * Gradients of activations are zeroed lazily: the first op that accumulates into
 * a tensor's gradient during a backward pass clears it (qat_tensor_grad), which
 * touches the buffer right before it is written rather than in one big memset.
 * Better still, an op that writes every element of a column block can ask
 * qat_tensor_grad_cols whether it is that block's first writer and then store
 * (=) instead of accumulating (+=), so the clear never happens: at qat's sizes
 * those memsets were ~6% of a training step. A tensor remembers the one column
 * interval first writers have covered so far (the fused q|k|v gradient is
 * filled by three ops, one block each); anything outside it is cleared before
 * an accumulating user or a reader (qat_tensor_grad) sees the buffer.
 *
 * In a bf16 step (train.precision: bf16) the ops whose output is the input of a
 * linear layer (RMSNorm, add+RMSNorm, SwiGLU) also write that output rounded to
 * bf16 into t->bf16 while the row is still in cache, and qat_linear multiplies it
 * directly instead of converting the f32 values in a pass of its own. Same bits
 * as qat_to_bf16 (both round with qat_bf16_row), except that a row whose length
 * is not a multiple of 16 ends in the scalar rounding, which keeps a subnormal
 * that VCVTNEPS2BF16 would flush (core/bf16.h); qat's widths are multiples of 16. Likewise
 * in the backward: a linear's output asks for its gradient's bf16 copy
 * (grad_bf16), and the op that writes that gradient (add+RMSNorm, SwiGLU) rounds
 * each row it has finished and marks the copy valid; handing the gradient out
 * to anyone afterwards marks it stale, so the linear then converts it itself.
 *
 * Where the graph's builder knows a linear's output has exactly one consumer
 * (the model: gate|up feeds SwiGLU only, o_proj and down_proj feed add+RMSNorm
 * only, q|k|v feeds attention only), it says so with qat_tensor_grad_bf16_only:
 * that consumer, when it is the gradient's first writer, then writes the bf16
 * copy alone and never the f32 gradient, which nobody would read (a bf16
 * linear's backward multiplies the copy). At d256 that saves writing
 * 2·(M, H) + 5·(M, C) floats per block, the largest memory traffic of a bf16
 * step outside the products. Attention does so with its bf16 kernels only (the
 * f32 kernels write the f32 gradient, and the linear converts it). Handing out
 * an f32 gradient that was skipped is a bug and asserts.
 *
 * Deferred gradients. A quantized linear's input gradient is its activation
 * quantizer's backward (trust mask, inverse rotation) of the product dY·Ŵ. That
 * backward maps each row on its own, so where the builder declares that the
 * linear is the input's only consumer and that the input's producer reads its
 * output gradient row by row (qat_tensor_grad_by_rows: RMSNorm, add+RMSNorm,
 * SwiGLU), the linear leaves dY·Ŵ in the tape's deferred buffer
 * (qat_tape_defer) with the row map (grad_row) and the producer's backward
 * applies it to each row as it reads it (qat_grad_row), while the row is in
 * cache: the f32 gradient is never written nor read back, and handing it out
 * asserts, as for a skipped one. Same arithmetic per row, so the same bits.
 */
#ifndef QAT_AUTOGRAD_TENSOR_H
#define QAT_AUTOGRAD_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#define QAT_MAX_DIMS 4

typedef struct qat_tensor {
    float *data;                 /* values, row-major, contiguous */
    float *grad;                 /* dL/d(values), same layout; NULL = no gradient wanted */
    int ndim;                    /* 1..4 */
    int64_t shape[QAT_MAX_DIMS]; /* sizes, outermost first */
    int64_t numel;               /* product of shape */
    uint64_t grad_epoch;         /* backward pass in which grad was last cleared or first written */
    int64_t grad_lo, grad_hi;    /* grad_hi > 0: in pass grad_epoch only columns [lo, hi) hold
                                    gradient yet, the rest is garbage; 0: the whole buffer does */
    const char *name;            /* parameters only, for messages */
    uint16_t *bf16;              /* NULL, or (bf16 step, activations only) the values rounded to
                                    bf16 as qat_to_bf16 would, written by the producer in the
                                    same pass as data, for the next product (arena memory) */
    uint16_t *grad_bf16;         /* NULL, or (bf16 step, output of a linear) room for the gradient's
                                    bf16 copy, the operand of that linear's backward products */
    uint64_t grad_bf16_epoch;    /* grad_bf16 holds qat_to_bf16(grad) in this backward pass; any
                                    later handout of grad (qat_tensor_grad*) resets it to 0 */
    int grad_bf16_only;          /* 1: the builder declared that only grad_bf16 is wanted and the
                                    tensor has one consumer (qat_tensor_grad_bf16_only) */
    uint64_t grad_skip_epoch;    /* pass in which that consumer wrote grad_bf16 only: grad holds
                                    garbage then, and any handout of it asserts */
    const void *quant_by;        /* NULL, or the activation quantizer of the linear this tensor feeds,
                                    which rounded each row as the producer wrote it (autograd/ops.h,
                                    qat_rmsnorm_for): data is NULL and quant or quant_bf16 is set */
    int64_t quant_step;          /* the training step that forward was keyed with */
    float *quant;                /* (rows, cols) Q(values), f32 step (arena memory) */
    uint16_t *quant_bf16;        /* (rows, cols) bf16(Q(values)), bf16 step (arena memory) */
    int grad_by_rows;            /* 1: the builder declared that the one consumer may defer the
                                    gradient to the producer's row-by-row read (qat_tensor_grad_by_rows) */
    void (*grad_row)(const void *ctx, const float *src, int64_t r, float *dst, float *scratch);
                                 /* the deferred map: dst (cols) = gradient row r from src's row r
                                    (src points at row r; scratch: cols floats) */
    const void *grad_row_ctx;    /* its context (the activation quantizer) */
    const float *grad_row_src;   /* (rows, cols) the rows it maps: the tape's deferred buffer */
    uint64_t grad_row_epoch;     /* pass in which the gradient was deferred (else 0) */
    uint64_t grad_row_gen;       /* the deferred buffer's generation then (qat_tape_defer) */
} qat_tensor;

/* Declare that t's gradient is wanted only as its bf16 copy (autograd/tensor.h's
 * comment above): t is the output of a bf16 linear (t->grad_bf16 != NULL, else
 * this does nothing) and the next op applied to t is its only consumer. */
static inline void qat_tensor_grad_bf16_only(qat_tensor *t) {
    if (t->grad_bf16) t->grad_bf16_only = 1;
}

/* Declare that t's gradient may be deferred (the comment above): t's producer
 * reads its gradient with qat_grad_row and the next op applied to t is its only
 * consumer. */
static inline void qat_tensor_grad_by_rows(qat_tensor *t) { t->grad_by_rows = 1; }

/* Fill the shape fields: qat_tensor_set_shape(&t, 2, (int64_t[]){B*T, C}). */
void qat_tensor_set_shape(qat_tensor *t, int ndim, const int64_t *shape);

/* Rows of a tensor seen as a matrix (all dims but the last) and its last dim. */
static inline int64_t qat_tensor_rows(const qat_tensor *t) { return t->numel / t->shape[t->ndim - 1]; }
static inline int64_t qat_tensor_cols(const qat_tensor *t) { return t->shape[t->ndim - 1]; }

/* The gradient buffer ready for accumulation in backward pass `epoch`:
 * cleared on first use in that pass. NULL when the tensor wants no gradient. */
float *qat_tensor_grad(qat_tensor *t, uint64_t epoch);
/* The gradient buffer for columns [off, off + cols) in pass `epoch`. *first = 1:
 * those columns hold garbage and the caller must store (=) every element of
 * them, in every row, before anything else touches them; *first = 0: they hold
 * gradient, accumulate (+=). NULL (and *first = 0) when no gradient is wanted. */
float *qat_tensor_grad_cols(qat_tensor *t, uint64_t epoch, int64_t off, int64_t cols, int *first);

/* ---- arena ---------------------------------------------------------------- */

typedef struct qat_arena_block {
    struct qat_arena_block *next; /* next block in allocation order */
    size_t size, used;            /* capacity and bytes handed out since reset */
    char *mem;                    /* 64-byte aligned storage */
} qat_arena_block;

typedef struct {
    qat_arena_block *first, *cur; /* blocks, and the one being filled */
    size_t block_size;            /* default size of a new block */
    size_t high_water;            /* most bytes ever used in one cycle */
    size_t in_use;                /* bytes handed out since reset */
    int grows;                    /* blocks allocated so far (steady state: constant) */
} qat_arena;

void qat_arena_init(qat_arena *a, size_t block_size);
void qat_arena_free(qat_arena *a);
/* Start a new cycle: all memory is handed out again from the beginning. */
void qat_arena_reset(qat_arena *a);
/* n bytes, 64-byte aligned, uninitialised; valid until the next reset. */
void *qat_arena_alloc(qat_arena *a, size_t n);
/* Bytes of all blocks. */
size_t qat_arena_capacity(const qat_arena *a);

#endif

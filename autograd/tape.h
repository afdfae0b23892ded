/*
 * autograd/tape.h — reverse-mode differentiation by recording.
 *
 * Ops called with a tape (autograd/ops.h) compute their output at once and, when
 * gradients are wanted, push a node: a backward function and a small context
 * holding the tensors and saved values it needs. qat_tape_backward walks the nodes
 * in reverse. Outputs, contexts and scratch come from the tape's arena, which
 * qat_tape_reset rewinds, so a training step is:
 *
 *     qat_tape_reset(&tape);                    // new step, arena rewound
 *     qat_tensor *loss = model_forward(&tape, ...);
 *     qat_tape_backward(&tape, loss);           // fills .grad of every input
 *
 * With tape.grad_enabled = 0 (evaluation) nothing is recorded and activations
 * get no gradient buffers.
 */
#ifndef QAT_AUTOGRAD_TAPE_H
#define QAT_AUTOGRAD_TAPE_H

#include "core/error.h"
#include "tensor.h"

struct qat_tape;
typedef void (*qat_backward_fn)(struct qat_tape *tape, void *ctx);

typedef struct {
    qat_backward_fn fn; /* propagates the output gradient to the inputs */
    void *ctx;          /* op-specific: tensors and saved values (arena memory) */
} qat_tape_node;

typedef struct qat_tape {
    qat_tape_node *nodes;  /* recorded ops in forward order */
    int n_nodes, cap;      /* used and allocated nodes (cap grows in the first step only) */
    qat_arena arena;       /* activations, gradients, contexts, scratch */
    int grad_enabled;      /* record and allocate gradients? */
    uint64_t epoch;        /* id of the current backward pass, for lazy grad clearing */
    int bf16;              /* linear products on bf16 operands (train.precision: bf16) */
    /* RoPE's cos/sin table, a pure function of (T, hd, theta): built on first
     * use and kept across steps (heap, not arena) instead of per call */
    float *rope_cs;        /* (T, hd/2) cos then (T, hd/2) sin, or NULL */
    int64_t rope_T, rope_hd;
    double rope_theta;
    /* one scratch for products consumed at once (qat_tape_reuse): the same memory
     * for every layer, so it stays in cache instead of a fresh arena region each */
    float *reuse;
    int64_t reuse_n;
    /* the quantized backward's two operand buffers (compress/gradq.h): one region
     * for the product being computed, shared by every linear, so the quantized
     * operands cost one product's worth of memory, not one per layer */
    void *gq;
    size_t gq_bytes;
    /* the rows of a deferred gradient (autograd/tensor.h): one buffer, held from a
     * linear's backward to its input producer's, the next node; the generation
     * counts hand-outs so a reader can assert its rows are still there */
    float *defer;
    int64_t defer_n;
    uint64_t defer_gen;
} qat_tape;

void qat_tape_init(qat_tape *tape, size_t arena_block);
void qat_tape_free(qat_tape *tape);
/* Forget the recorded ops and rewind the arena. */
void qat_tape_reset(qat_tape *tape);
/* Record a node (only when grad_enabled). */
void qat_tape_push(qat_tape *tape, qat_backward_fn fn, void *ctx);
/* Seed d(loss)/d(loss) = 1 on a scalar tensor and run every node in reverse. */
void qat_tape_backward(qat_tape *tape, qat_tensor *loss);

/* A fresh activation tensor in the arena (with a gradient buffer when the tape
 * records). Values are uninitialised. */
qat_tensor *qat_tape_tensor(qat_tape *tape, int ndim, const int64_t *shape);
/* Arena scratch of n floats (uninitialised), valid until the next reset. */
float *qat_tape_floats(qat_tape *tape, int64_t n);
/* Scratch of n floats (uninitialised) shared by every caller: valid only until the
 * next call, for a product that one op writes and reads back before returning. */
float *qat_tape_reuse(qat_tape *tape, int64_t n);
/* Scratch of `bytes` bytes (uninitialised) for the operands of one quantized
 * backward product: valid until the next call (grown in the first step only). */
void *qat_tape_gq_scratch(qat_tape *tape, size_t bytes);
/* Scratch of n floats (uninitialised) for a deferred gradient's rows (autograd/
 * tensor.h): valid until the next call, which bumps tape->defer_gen. */
float *qat_tape_defer(qat_tape *tape, int64_t n);
/* Arena memory for an op's context, zeroed. */
void *qat_tape_ctx(qat_tape *tape, size_t size);

/* Gradient of t ready for accumulation in the current backward pass. */
static inline float *qat_grad(qat_tape *tape, qat_tensor *t) { return qat_tensor_grad(t, tape->epoch); }
/* Gradient of all of t for an op that writes every element: *first = 1 means store, not add. */
static inline float *qat_grad_all(qat_tape *tape, qat_tensor *t, int *first) {
    return qat_tensor_grad_cols(t, tape->epoch, 0, t->numel ? t->shape[t->ndim - 1] : 1, first);
}

/* Whether t's gradient was deferred in this pass (autograd/tensor.h). Then its
 * producer reads it with qat_grad_row only, never qat_grad. */
static inline int qat_grad_deferred(const qat_tape *tape, const qat_tensor *t) {
    if (t->grad_row_epoch != tape->epoch) return 0;
    QAT_ASSERT(t->grad_row_gen == tape->defer_gen); /* no later deferral overwrote the rows */
    return 1;
}
/* Row r (cols floats) of t's gradient: g + r·cols when g is t's gradient buffer,
 * or with g NULL (deferred) the row mapped into buf; scratch: cols floats. */
static inline const float *qat_grad_row(const qat_tensor *t, const float *g, int64_t r, int64_t cols, float *buf,
                                        float *scratch) {
    if (g) return g + r * cols;
    t->grad_row(t->grad_row_ctx, t->grad_row_src + r * cols, r, buf, scratch);
    return buf;
}

#endif

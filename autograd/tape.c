/*
 * autograd/tape.c — the node list and the backward walk.
 */
#include "tape.h"

#include <string.h>

#include "core/error.h"

void qat_tape_init(qat_tape *tape, size_t arena_block) {
    memset(tape, 0, sizeof *tape);
    qat_arena_init(&tape->arena, arena_block);
    tape->grad_enabled = 1;
    tape->epoch = 1;
}

void qat_tape_free(qat_tape *tape) {
    free(tape->nodes);
    free(tape->rope_cs);
    free(tape->reuse);
    free(tape->gq);
    free(tape->defer);
    qat_arena_free(&tape->arena);
    memset(tape, 0, sizeof *tape);
}

void qat_tape_reset(qat_tape *tape) {
    tape->n_nodes = 0;
    qat_arena_reset(&tape->arena);
    /* A new epoch: gradients handed out from now on must be cleared before use,
     * even though the arena gives back the same addresses. */
    tape->epoch++;
}

void qat_tape_push(qat_tape *tape, qat_backward_fn fn, void *ctx) {
    if (!tape->grad_enabled) return;
    if (tape->n_nodes == tape->cap) {
        tape->cap = tape->cap ? 2 * tape->cap : 256;
        tape->nodes = qat_xrealloc(tape->nodes, (size_t)tape->cap * sizeof *tape->nodes);
    }
    tape->nodes[tape->n_nodes].fn = fn;
    tape->nodes[tape->n_nodes].ctx = ctx;
    tape->n_nodes++;
}

void qat_tape_backward(qat_tape *tape, qat_tensor *loss) {
    QAT_ASSERT(loss->numel == 1 && loss->grad);
    float *g = qat_grad(tape, loss);
    g[0] = 1.0f;
    for (int i = tape->n_nodes - 1; i >= 0; i--) tape->nodes[i].fn(tape, tape->nodes[i].ctx);
}

qat_tensor *qat_tape_tensor(qat_tape *tape, int ndim, const int64_t *shape) {
    qat_tensor *t = qat_arena_alloc(&tape->arena, sizeof *t);
    memset(t, 0, sizeof *t);
    qat_tensor_set_shape(t, ndim, shape);
    t->data = qat_arena_alloc(&tape->arena, (size_t)t->numel * sizeof(float));
    if (tape->grad_enabled) t->grad = qat_arena_alloc(&tape->arena, (size_t)t->numel * sizeof(float));
    return t;
}

float *qat_tape_floats(qat_tape *tape, int64_t n) {
    return qat_arena_alloc(&tape->arena, (size_t)n * sizeof(float));
}

float *qat_tape_reuse(qat_tape *tape, int64_t n) {
    if (n > tape->reuse_n) {
        free(tape->reuse);
        tape->reuse = qat_xaligned(sizeof(float) * (size_t)n);
        tape->reuse_n = n;
    }
    return tape->reuse;
}

float *qat_tape_defer(qat_tape *tape, int64_t n) {
    if (n > tape->defer_n) {
        free(tape->defer);
        tape->defer = qat_xaligned(sizeof(float) * (size_t)n);
        tape->defer_n = n;
    }
    tape->defer_gen++;
    return tape->defer;
}

void *qat_tape_gq_scratch(qat_tape *tape, size_t bytes) {
    if (bytes > tape->gq_bytes) {
        free(tape->gq);
        tape->gq = qat_xaligned(bytes);
        tape->gq_bytes = bytes;
    }
    return tape->gq;
}

void *qat_tape_ctx(qat_tape *tape, size_t size) {
    void *p = qat_arena_alloc(&tape->arena, size);
    memset(p, 0, size);
    return p;
}

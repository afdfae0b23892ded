/*
 * autograd/tensor.c — shapes, lazily cleared gradients, and the bump arena.
 *
 * The arena is a chain of large blocks. Allocation bumps a pointer; when a block
 * is full the next one in the chain is used, and only if none is left is a new
 * block made. After the first training step the chain is long enough for every
 * later step (same ops, same sizes), so steady state never calls malloc.
 */
#include "tensor.h"

#include <string.h>

#include "core/error.h"

void qat_tensor_set_shape(qat_tensor *t, int ndim, const int64_t *shape) {
    QAT_ASSERT(ndim >= 1 && ndim <= QAT_MAX_DIMS);
    t->ndim = ndim;
    t->numel = 1;
    for (int i = 0; i < QAT_MAX_DIMS; i++) {
        t->shape[i] = i < ndim ? shape[i] : 1;
        if (i < ndim) t->numel *= shape[i];
    }
}

/* Zero the columns first writers have not covered yet; the whole buffer is then gradient. */
static void clear_uncovered(qat_tensor *t) {
    int64_t R = qat_tensor_rows(t), C = qat_tensor_cols(t), lo = t->grad_lo, hi = t->grad_hi;
    for (int64_t r = 0; r < R; r++) {
        memset(t->grad + r * C, 0, (size_t)lo * sizeof(float));
        memset(t->grad + r * C + hi, 0, (size_t)(C - hi) * sizeof(float));
    }
    t->grad_lo = t->grad_hi = 0;
}

float *qat_tensor_grad(qat_tensor *t, uint64_t epoch) {
    if (!t->grad) return NULL;
    QAT_ASSERT(t->grad_skip_epoch != epoch); /* its consumer wrote the bf16 copy only */
    t->grad_bf16_epoch = 0; /* the caller may write: a bf16 copy is stale from now on */
    if (t->grad_epoch != epoch) {
        memset(t->grad, 0, (size_t)t->numel * sizeof(float));
        t->grad_epoch = epoch;
        t->grad_lo = t->grad_hi = 0;
    } else if (t->grad_hi > 0) {
        clear_uncovered(t);
    }
    return t->grad;
}

float *qat_tensor_grad_cols(qat_tensor *t, uint64_t epoch, int64_t off, int64_t cols, int *first) {
    *first = 0;
    if (!t->grad) return NULL;
    QAT_ASSERT(t->grad_skip_epoch != epoch); /* its consumer wrote the bf16 copy only */
    t->grad_bf16_epoch = 0; /* the caller may write: a bf16 copy is stale from now on */
    int64_t C = qat_tensor_cols(t), end = off + cols;
    QAT_ASSERT(off >= 0 && cols > 0 && end <= C);
    if (t->grad_epoch != epoch) { /* nothing written yet this pass */
        t->grad_epoch = epoch;
        *first = 1;
        if (off == 0 && end == C) t->grad_lo = t->grad_hi = 0;
        else t->grad_lo = off, t->grad_hi = end;
    } else if (t->grad_hi > 0) { /* partly written: extend the interval or give up on it */
        if (off >= t->grad_lo && end <= t->grad_hi) return t->grad;
        if (end == t->grad_lo) t->grad_lo = off, *first = 1;
        else if (off == t->grad_hi) t->grad_hi = end, *first = 1;
        else clear_uncovered(t);
        if (t->grad_lo == 0 && t->grad_hi == C) t->grad_lo = t->grad_hi = 0;
    }
    return t->grad;
}

void qat_arena_init(qat_arena *a, size_t block_size) {
    memset(a, 0, sizeof *a);
    a->block_size = block_size ? block_size : ((size_t)64 << 20);
}

void qat_arena_free(qat_arena *a) {
    qat_arena_block *b = a->first;
    while (b) {
        qat_arena_block *n = b->next;
        free(b->mem);
        free(b);
        b = n;
    }
    memset(a, 0, sizeof *a);
}

void qat_arena_reset(qat_arena *a) {
    for (qat_arena_block *b = a->first; b; b = b->next) b->used = 0;
    a->cur = a->first;
    a->in_use = 0;
}

void *qat_arena_alloc(qat_arena *a, size_t n) {
    n = (n + 63) & ~(size_t)63;
    if (n == 0) n = 64;
    qat_arena_block *b = a->cur;
    while (b && b->used + n > b->size) b = b->next;
    if (!b) {
        size_t size = n > a->block_size ? n : a->block_size;
        b = qat_xcalloc(1, sizeof *b);
        b->mem = qat_xaligned(size);
        qat_advise_huge(b->mem, size);
        b->size = size;
        /* append at the end of the chain */
        qat_arena_block **p = &a->first;
        while (*p) p = &(*p)->next;
        *p = b;
        a->grows++;
    }
    void *mem = b->mem + b->used;
    b->used += n;
    a->cur = b;
    a->in_use += n;
    if (a->in_use > a->high_water) a->high_water = a->in_use;
    return mem;
}

size_t qat_arena_capacity(const qat_arena *a) {
    size_t s = 0;
    for (qat_arena_block *b = a->first; b; b = b->next) s += b->size;
    return s;
}

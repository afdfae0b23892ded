/*
 * data/split.c — the interleaved block split of a real corpus (see split.h).
 *
 * The held-out test is written in integers (q/D instead of the double f) so the
 * same corpus and val_fraction give the same blocks on every machine and in
 * every run, with no rounding at block boundaries.
 */
#include "data/split.h"

#include <math.h>
#include <stdlib.h>

#include "core/error.h"

#define SPLIT_D (1LL << 20) /* denominator of the held-out share */

static int held(int64_t i, int64_t q) {
    return ((i + 1) * q + SPLIT_D / 2) / SPLIT_D > (i * q + SPLIT_D / 2) / SPLIT_D;
}

/* Append [start, start+len) to spans, merging with the previous span when adjacent. */
static void push(qat_data_span **v, int *n, int64_t start, int64_t len) {
    if (*n > 0 && (*v)[*n - 1].start + (*v)[*n - 1].len == start) {
        (*v)[*n - 1].len += len;
        return;
    }
    *v = qat_xrealloc(*v, (size_t)(*n + 1) * sizeof **v);
    (*v)[*n].start = start;
    (*v)[*n].len = len;
    (*n)++;
}

void qat_data_block_split(int64_t n, double f, int T, qat_data_blocks *out) {
    QAT_ASSERT(n >= 0 && f > 0 && f < 1 && T >= 1);
    *out = (qat_data_blocks){0};
    int64_t q = llround(f * (double)SPLIT_D);
    if (q < 1) q = 1;
    if (q > SPLIT_D - 1) q = SPLIT_D - 1;
    int64_t want_blocks = (int64_t)ceil(4.0 / f); /* about four held-out blocks at least */
    int64_t L = QAT_SPLIT_BLOCK;
    if (n / want_blocks < L) {
        L = (n + want_blocks - 1) / want_blocks;
        if (L < (int64_t)T + 1) L = (int64_t)T + 1;
    }
    out->block = L;
    out->blocks = n > 0 ? (n + L - 1) / L : 0;
    for (int64_t i = 0; i < out->blocks; i++) {
        int64_t s = i * L, len = n - s < L ? n - s : L;
        if (held(i, q)) {
            push(&out->val, &out->n_val, s, len);
            out->held_blocks++;
            out->val_tokens += len;
        } else {
            push(&out->train, &out->n_train, s, len);
            out->train_tokens += len;
        }
    }
}

void qat_data_blocks_free(qat_data_blocks *b) {
    free(b->train);
    free(b->val);
    *b = (qat_data_blocks){0};
}

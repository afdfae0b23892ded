/*
 * data/batch.h — where the rows of a batch come from.
 *
 * A split is a list of spans (contiguous runs of tokens) of one token buffer:
 * the whole stream for the synthetic corpus or explicit val_shards, the
 * interleaved training and held-out blocks of docs/data.md otherwise. Windows
 * live inside one span, so a training row never reads a held-out token and a
 * validation row never joins two distant parts of the corpus.
 *
 * Training windows: each span is cut into windows of T+1 tokens at stride T
 * (consecutive windows share one token, so every token after the first is a
 * target exactly once per pass), shifted by a per-pass offset within the span's
 * slack. The windows of all spans are numbered 0..W-1 in span order. Row b of
 * step s is global row k = s·B + b; pass e = k / W takes window π_e(k mod W),
 * where π_e is a keyed bijection of [0, W) derived from qat_hash3(seed, e, ·).
 * Each row is therefore uniform over the windows, no token repeats within a
 * pass (a corpus sized to the run is seen exactly once), and the batch of any
 * step is computed directly from (seed, step, B): resume needs only the step,
 * and rows can be filled in parallel. With one span this is exactly the
 * single-stream rule earlier versions used, so synthetic runs are unchanged.
 *
 * Validation windows: row j = i·B + b of batch i is window j mod W_val, the
 * windows at stride T from each span's start — fixed for every run on the
 * same data.
 */
#ifndef QAT_DATA_BATCH_H
#define QAT_DATA_BATCH_H

#include <stdint.h>

typedef struct {
    int64_t start; /* first token (index into the split's buffer) */
    int64_t len;   /* tokens */
} qat_data_span;

typedef struct {
    const uint16_t *tok;    /* the buffer the spans index into (not owned) */
    qat_data_span *span;    /* (n_span) spans in increasing order (owned) */
    int64_t *first;         /* (n_span + 1) windows before span i; first[n_span] = windows */
    int n_span;             /* spans */
    int64_t windows;        /* W: windows of T+1 tokens over all spans */
    int64_t tokens;         /* Σ span lengths */
} qat_data_split;

/* Windows of T+1 tokens at stride T in a span of n tokens (0 when n < T+1). */
int64_t qat_data_windows(int64_t n, int T);

/* A split over tok made of spans[0..n) (copied), windows for context T. */
void qat_data_split_init(qat_data_split *s, const uint16_t *tok, const qat_data_span *spans, int n, int T);
void qat_data_split_free(qat_data_split *s);

/* A keyed bijection of [0, n) (n >= 1): i -> π(i), cycle-walking a mod-2^k mixer. */
uint64_t qat_data_permute(uint64_t i, uint64_t n, uint64_t key);

/* Start (index into s->tok) of training row b of step `step` (requires s->windows >= 1). */
int64_t qat_data_train_start(const qat_data_split *s, int T, uint64_t seed, int64_t step, int B, int b);

/* Start (index into s->tok) of validation row b of batch i (requires s->windows >= 1). */
int64_t qat_data_val_start(const qat_data_split *s, int T, int64_t i, int B, int b);

/* inputs[t] = tok[start + t], targets[t] = tok[start + t + 1], t < T. */
void qat_data_fill_row(const uint16_t *tok, int64_t start, int T, int32_t *inputs, int32_t *targets);

#endif

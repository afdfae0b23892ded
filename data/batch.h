/*
 * data/batch.h — where the rows of a batch come from.
 *
 * Training windows: the split is cut into windows of T+1 tokens at stride T
 * (consecutive windows share one token, so every token after the first is a
 * target exactly once per pass), shifted by a per-pass offset. Row b of step s
 * is global row k = s·B + b; pass e = k / W (W windows) takes window
 * π_e(k mod W), where π_e is a keyed bijection of [0, W) derived from
 * qat_hash3(seed, e, ·). Each row is therefore uniform over the window grid, no
 * token repeats within a pass (a corpus sized to the run is seen exactly once),
 * and the batch of any step is computed directly from (seed, step, B): resume
 * needs only the step, and rows can be filled in parallel.
 *
 * Validation windows: row j = i·B + b of batch i is window j mod W_val at
 * stride T from the start of the split — fixed for every run on the same data.
 */
#ifndef QAT_DATA_BATCH_H
#define QAT_DATA_BATCH_H

#include <stdint.h>

/* Windows of T+1 tokens at stride T in a split of n tokens (0 when n < T+1). */
int64_t qat_data_windows(int64_t n, int T);

/* A keyed bijection of [0, n) (n >= 1): i -> π(i), cycle-walking a mod-2^k mixer. */
uint64_t qat_data_permute(uint64_t i, uint64_t n, uint64_t key);

/* Start of training row b of step `step` (requires n >= T+1). */
int64_t qat_data_train_start(int64_t n, int T, uint64_t seed, int64_t step, int B, int b);

/* Start of validation row b of batch i (requires n >= T+1). */
int64_t qat_data_val_start(int64_t n, int T, int64_t i, int B, int b);

/* inputs[t] = tok[start + t], targets[t] = tok[start + t + 1], t < T. */
void qat_data_fill_row(const uint16_t *tok, int64_t start, int T, int32_t *inputs, int32_t *targets);

#endif

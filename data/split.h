/*
 * data/split.h — which tokens of a real corpus are held out for validation.
 *
 * Real corpora are ordered (the dictionary is alphabetical, shard lists are by
 * source), so holding out the tail would validate on a different distribution
 * than the one trained on. The stream is instead cut into blocks and one block
 * in every 1/val_fraction is held out, spread evenly over the whole corpus
 * (docs/data.md, "The split"):
 *
 *   block length L = 65536 tokens, or, for a corpus too short to give about
 *     4/val_fraction blocks of that size, ceil(n / ceil(4/val_fraction)) but at
 *     least T+1 (a held-out block must hold one validation sequence);
 *   block i (0-based, nb = ceil(n/L) blocks, the last one possibly short) is
 *     held out when floor(((i+1)·q + D/2) / D) > floor((i·q + D/2) / D) with
 *     D = 2^20 and q = round(val_fraction·D): a Bresenham walk, so the held-out
 *     blocks are evenly spaced, their count is round(nb·val_fraction), and the
 *     first is half a period in (not the corpus's opening lines).
 *
 * The rule is integer arithmetic on (n, val_fraction, and T only for tiny
 * corpora): every run of a sweep holds out the same tokens, whatever its seed.
 */
#ifndef QAT_DATA_SPLIT_H
#define QAT_DATA_SPLIT_H

#include <stdint.h>

#include "core/config.h"
#include "data/batch.h"

/* QAT_SPLIT_BLOCK, the tokens per block of a large corpus, is in core/config.h:
 * the config refuses a model.seq_len that cannot fit one (qat_config_check_split) */

typedef struct {
    qat_data_span *train; /* (n_train) maximal runs of training blocks (owned) */
    qat_data_span *val;   /* (n_val) maximal runs of held-out blocks (owned) */
    int n_train, n_val;   /* span counts */
    int64_t block;        /* L: tokens per block */
    int64_t blocks;       /* nb */
    int64_t held_blocks;  /* blocks held out */
    int64_t train_tokens; /* Σ training span lengths */
    int64_t val_tokens;   /* Σ held-out span lengths */
} qat_data_blocks;

/* Split n tokens with held-out share f in (0, 1) for context T (see above). Never fails:
 * whether each side has a whole sequence is the caller's check, so it can name its key. */
void qat_data_block_split(int64_t n, double f, int T, qat_data_blocks *out);
void qat_data_blocks_free(qat_data_blocks *b);

#endif

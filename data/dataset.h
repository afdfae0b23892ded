/*
 * data/dataset.h — the token data of a run: train/validation splits and batches.
 *
 * One object hides the four sources of docs/data.md (the built-in English corpus,
 * plain or gzip text as bytes, llm.c shards, the synthetic corpus) behind the same
 * batch functions, so the training loop never branches on where tokens came from.
 * Everything is loaded into memory at open (2 bytes per token: the English
 * corpus takes 80 MB), after which the object is read-only: batch functions are
 * pure functions of (data, seed, step, B) and safe to call from several threads.
 *
 * Splits: real data (english, text, shards without val_shards) holds out
 * val_fraction of the stream as evenly spaced blocks (data/split.h), the same
 * blocks for every run; explicit val_shards are the validation split as they
 * are; the synthetic corpus draws validation from a separate range of document
 * indices, a fixed QAT_DATASET_SYNTH_VAL_TOKENS tokens whatever the run's
 * budget. Batch positions are described in data/batch.h.
 */
#ifndef QAT_DATA_DATASET_H
#define QAT_DATA_DATASET_H

#include <stdint.h>

#include "core/config.h"
#include "data/batch.h"

#define QAT_DATASET_SYNTH_VAL_TOKENS 524288 /* validation split of the synthetic corpus */
/* The built-in English corpus (data.source english): Debian's dict-gcide. The
 * environment variable QAT_ENGLISH_PATH, when set, replaces the path. */
#define QAT_DATASET_ENGLISH_PATH "/usr/share/dictd/gcide.dict.dz"
#define QAT_DATASET_SYNTH_TOPICS 16         /* topics when synth_topics <= 0 */

typedef struct qat_dataset qat_dataset;

/* Open the data of a run: cfg->source is "english" (the file above, byte tokens, vocab
 * 256), "text" (cfg->text[0..n_text-1], plain or gzip, byte tokens), "shards" (glob
 * cfg->shards; optional cfg->val_shards) or "synthetic"; an empty source is inferred
 * from which of shards/text is set, else english.
 * vocab/seq_len come from the model; train_tokens is how many tokens the run will consume
 * (the synthetic corpus generates train_tokens + 1 training tokens, so with the window
 * order of batch.h no training token repeats; cfg->synth_tokens > 0 overrides);
 * seed = run seed (batch order).
 * Errors (QAT_EINPUT, message naming the file, and the config line of data.shards
 * or data.val_shards when the loader recorded it, or cfg->option, the option that
 * gave the data, in place of any key): no files match, an empty shard, bad magic/version,
 * truncated/size mismatch, token id >= vocab (file and token index), corrupt gzip,
 * the English corpus not installed, val_fraction outside (0, 1), too few tokens for
 * one sequence on either side of the split. */
int qat_dataset_open(const qat_data_cfg *cfg, int vocab, int seq_len, double train_tokens, uint64_t seed,
                     qat_dataset **out);
void qat_dataset_free(qat_dataset *ds);

/* Training batch of optimizer step `step`: B rows of T+1 consecutive tokens -> inputs (B,T)
 * and targets (B,T) (targets = inputs shifted by one). A pure function of (data, seed,
 * step, B), so resume needs only the step. Thread-safe (const). */
void qat_dataset_train_batch(const qat_dataset *ds, int64_t step, int B, int32_t *inputs, int32_t *targets);

/* Validation: number of distinct fixed batches of B rows available (at least 1), and
 * batch i (same for every run on the same data, independent of the run seed; i wraps). */
int64_t qat_dataset_val_batches(const qat_dataset *ds, int B);
/* The validation split's distinct windows of T tokens (batches repeat them when
 * there are fewer than B). */
int64_t qat_dataset_val_windows(const qat_dataset *ds);
void qat_dataset_val_batch(const qat_dataset *ds, int64_t i, int B, int32_t *inputs, int32_t *targets);

/* CRC-32 (zlib) of the training then the validation split's tokens, for a data
 * source read from files (english, text, shards), which can change between a
 * run's start and its resume; 0 for the synthetic corpus, a function of the
 * config. Together with the split sizes it identifies the data a run trains on. */
uint32_t qat_dataset_fingerprint(const qat_dataset *ds);

int64_t qat_dataset_train_tokens(const qat_dataset *ds); /* size of the training split */
int64_t qat_dataset_val_tokens(const qat_dataset *ds);   /* size of the validation split */
int qat_dataset_vocab(const qat_dataset *ds);
int qat_dataset_seq_len(const qat_dataset *ds);
/* The spans of a split (val = 0: training, 1: validation), for checks and tools. */
const qat_data_split *qat_dataset_split(const qat_dataset *ds, int val);
/* Path of the English corpus: $QAT_ENGLISH_PATH or QAT_DATASET_ENGLISH_PATH. */
const char *qat_dataset_english_path(void);

/* nats/token: the synthetic source's true conditional entropy averaged over the
 * validation split (a perfect model's validation loss); NaN for real data. */
double qat_dataset_entropy_rate(const qat_dataset *ds);
/* nats/token of the validation split's unigram distribution. */
double qat_dataset_unigram_entropy(const qat_dataset *ds);
/* One line: source, tokens train/val, vocab, entropies. */
const char *qat_dataset_describe(const qat_dataset *ds);

/* 1 when two of paths[0..n) are the same file (device and inode, however spelled:
 * another path, a hard or symbolic link), the first such pair in list order in
 * *first < *second; 0 otherwise. Paths that cannot be stat'ed are skipped (their
 * reader says why). For data.text, the shard globs and `qat data pack`. */
int qat_data_same_file(const char *const *paths, int n, int *first, int *second);

/* QAT_EINPUT when two of cfg->text name the same file (qat_data_same_file):
 * "AT: data.text: entries I and J (A and B) are the same file: ...", AT being
 * `at` when given (a sweep's grid entry), else cfg->text_at (none under
 * cfg->option); QAT_OK for a stored config (core/config.h). Reads no file: the
 * loader checks it first, and a sweep's plan before starting a run. */
int qat_data_text_distinct(const qat_data_cfg *cfg, const char *at);

/* Unigram entropy (nats) of t[0..n) over ids < vocab; shared by `qat data inspect`. */
double qat_data_unigram_entropy(const uint16_t *t, int64_t n, int vocab);

#endif

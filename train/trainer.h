/*
 * train/trainer.h — one training run from a resolved config to a finished run
 * directory: OUT/NAME/run.h5 (the log of docs/files.md) and OUT/NAME/ckpt.h5 (docs/files.md).
 *
 * The loop, per optimizer step s (0-based):
 *     batch(s) → forward → backward → clip → AdamW(lr(s)) → quantizer V step
 *     every log_every: a progress line and a flush of the log
 *     every eval_every: validation loss on held-out tokens
 *     every checkpoint_every: an atomic checkpoint (and at the end)
 * Everything a step reads is a function of (config, s) and the checkpointed
 * state, so `--resume` continues bit-for-bit.
 */
#ifndef QAT_TRAIN_TRAINER_H
#define QAT_TRAIN_TRAINER_H

#include <signal.h>
#include <stdint.h>

#include "core/config.h"

typedef struct {
    const char *out_dir;  /* parent of the run directory ("runs" by default) */
    int resume;           /* continue from OUT/NAME/ckpt.h5 */
    int progress;         /* 1: live progress line (terminal), 0: plain lines, -1: silent */
    int64_t stop_after;   /* testing aid: stop (as if killed) after this many steps; 0 = off */
    const char *init;     /* --init CKPT.h5: start from its weights (train/init.h); NULL = random init */
    int init_from_key;    /* 1: init is the config's train.init, not --init (messages name the key) */
} qat_train_opts;

/* Check everything a run needs from its config without touching data or disk:
 * model sizes, schedule, batch plan, formats. */
int qat_train_validate(const qat_config *cfg);

/* Train; returns 0, QAT_ERUNTIME (I/O, divergence) or QAT_EINPUT. */
int qat_train_run(const qat_config *cfg, const qat_train_opts *opts);

/* Mean validation loss of model m over about `tokens` held-out tokens (at least
 * one batch of B sequences); in/tg are (B, T) scratch. */
struct qat_model;
struct qat_tape;
struct qat_dataset;
double qat_train_evaluate(struct qat_model *m, struct qat_tape *tp, const struct qat_dataset *ds, int B,
                          int64_t tokens, int32_t *in, int32_t *tg, int64_t step);
/* The same, checking *stop (a signal's flag; NULL: never) between batches:
 * 1 with the mean in *loss, or 0 when it stopped (*loss untouched). */
int qat_train_evaluate_until(struct qat_model *m, struct qat_tape *tp, const struct qat_dataset *ds, int B,
                             int64_t tokens, int32_t *in, int32_t *tg, int64_t step, const volatile sig_atomic_t *stop,
                             double *loss);

/* Sizes a run derives from its config: sequences per step, total steps, tokens. */
typedef struct {
    int batch;           /* sequences per step, B = batch_tokens / seq_len */
    int64_t steps;       /* optimizer steps */
    double tokens;       /* tokens the run will see = steps · B · T */
} qat_run_plan;
int qat_train_plan(const qat_config *cfg, int64_t n_params, int seq_len, qat_run_plan *plan);

#endif

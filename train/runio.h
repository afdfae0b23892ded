/*
 * train/runio.h — what a training run writes to disk, and reads back on resume.
 *
 * The bridge between the trainer (which knows the model, the optimizer and the
 * step) and runlog/ (which knows HDF5): it fills run.h5's attributes from the
 * config and model, appends the series, and packs everything `--resume` needs
 * into ckpt.h5: parameters under their Hugging Face names, AdamW moments, the
 * quantizers' state and the step counters. Since batches and the schedule are
 * pure functions of the step, the step is the only cursor to restore.
 */
#ifndef QAT_TRAIN_RUNIO_H
#define QAT_TRAIN_RUNIO_H

#include <stdint.h>

#include "core/config.h"
#include "model/llama.h"
#include "optim/adamw.h"
#include "runlog/runlog.h"

struct qat_runlog;

/* Called by qat_runio_open when the run starts at step 0 (a fresh run, or
 * --resume with nothing to resume), under the run's writer lock and before
 * run.h5 is created: it may fill the init_* attributes (`qat train --init`
 * evaluates its starting point here). cfg is the config the run starts with:
 * the one given, or with the train.init an unfinished run.h5 records when a
 * --resume gave none (qat_runio_open), so the source to start from is
 * cfg->train.init. Not called when a checkpoint is loaded. A non-zero return
 * stops the open with that error and writes nothing; a hook stopped by a
 * signal returns 0 without the init_* attributes, so that run.h5 is still
 * created and records the config (with its train.init) for the --resume that
 * continues it. */
typedef int (*qat_runio_start_fn)(void *ctx, const qat_config *cfg, qat_runlog_attrs *attrs);

typedef struct {
    char dir[2 * QAT_PATH_MAX];  /* run directory */
    char ckpt[2 * QAT_PATH_MAX + 16]; /* dir/ckpt.h5 */
    const qat_config *cfg;       /* the run's config (own_cfg when a resume kept the recorded train.init) */
    qat_config *own_cfg;         /* the given config with the recorded train.init (checkpoint or run.h5), or NULL (owned) */
    qat_model *model;            /* borrowed */
    qat_adamw *opt;              /* borrowed */
    struct qat_runlog *log;      /* open run.h5 */
    int completed;               /* --resume found a completed run: nothing was opened or changed */
    double completed_val_loss;   /* its final validation loss */
    char note[8192];             /* what opening decided that the user should hear ("" = nothing) */
    uint32_t data_crc;           /* the data's fingerprint and size (qat_runio_open's arguments), */
    int64_t data_tokens;         /* stored in every checkpoint (0 tokens: not stored) */
} qat_runio;

/* Open the run directory: a fresh run.h5, or with `resume` load ckpt.h5 into
 * model and optimizer and reopen run.h5 truncated to the checkpoint (a new
 * run.h5 when it is missing). *start_step and *wall_before say where to
 * continue. Without `resume`, a checkpoint or a completed run.h5 in the
 * directory is QAT_EINPUT (never overwritten). With `resume`, the config given
 * must equal the checkpoint's except for the safe keys (docs/config.md#resuming),
 * else QAT_EINPUT listing every changed key; changed safe keys are recorded in
 * run.h5 (`resumes`, `config`, `tokens_target`). A completed run with the same
 * budget is left untouched (io->completed); a larger budget extends it; a budget
 * changed to one at or below the checkpoint's step is QAT_EINPUT. Only once the
 * configs agree are data_crc and data_tokens (qat_dataset_fingerprint and the
 * splits' size, stored in every checkpoint; 0 tokens: none) compared with the
 * checkpoint's: QAT_EINPUT naming both when it was written on other data (a
 * corpus file edited or replaced since would silently make the resume another
 * run), while a changed key is reported as the key, not as changed data. A
 * --resume that finds an unfinished run.h5 and no checkpoint starts afresh,
 * from the train.init the log records when none is given (an --init run
 * stopped before its first checkpoint stays a fine-tune). io->note says what
 * was decided when the user should hear it. at_start (may be NULL) is called
 * as described above it. */
int qat_runio_open(qat_runio *io, const char *dir, const qat_config *cfg, qat_model *m, qat_adamw *opt,
                   int resume, double tokens_target, uint32_t data_crc, int64_t data_tokens, int64_t *start_step,
                   double *wall_before, qat_runio_start_fn at_start, void *start_ctx);
void qat_runio_train(qat_runio *io, int64_t step, double tokens, double loss, double lr, double gnorm, double time_s);
void qat_runio_eval(qat_runio *io, int64_t step, double tokens, double loss);
int qat_runio_flush(qat_runio *io);
/* Atomic checkpoint after `steps_done` steps. */
int qat_runio_checkpoint(qat_runio *io, int64_t steps_done, double tokens, double wall_s);
/* Final values and status (completed | failed | diverged). */
int qat_runio_finish(qat_runio *io, const char *status, double val_loss, double train_loss, double tokens,
                     int64_t steps, double wall_s);
/* After a runtime error with the log open: status `failed`, no /final, so the
 * run is not mistaken for a live or merely interrupted one. Best effort (the
 * error may be the disk itself); the caller's error message is kept. Nothing
 * happens when the end was already recorded or the log is not open. */
void qat_runio_fail(qat_runio *io);
void qat_runio_close(qat_runio *io);

/* Load a checkpoint into a model built from the same config (and, when opt is
 * not NULL, the optimizer); *step and *wall_s (may be NULL) say where it was.
 * With an optimizer (resuming) the model's formats must be the checkpoint's;
 * without one (evaluation) the weights are read whatever formats the model
 * was built with, which is how a checkpoint is evaluated as another format. */
int qat_runio_load_checkpoint(const char *path, const qat_config *cfg, qat_model *m, qat_adamw *opt,
                              int64_t *step, double *wall_s);

/* The config stored in checkpoint `path` (its YAML text) into cfg. Its messages
 * name "the config stored in PATH", never PATH:LINE:COL: a line of the embedded
 * YAML read as one of the .h5 file would point nowhere; the line is given as a
 * line of that YAML. After loading, cfg records no key positions and names
 * itself (qat_config_source) "the config stored in PATH", so that a check made
 * later blames the stored config, not a line of a file. */
int qat_runio_stored_config(const char *yaml, const char *path, qat_config *cfg);

/* ---- whether a run on disk is the run asked for (train/resume_check.c) ---- */

/* The absolute form of a train.init path, as a run records it: a relative one
 * joined to the current directory (the directory it is relative to,
 * docs/config.md), lexically (a symbolic link stays the link named). Non-zero
 * when it does not fit in n or the current directory cannot be read. */
int qat_runio_absolute_init(const char *path, char *out, size_t n);

/* 1 when a run started with config `old` would train something else under `cfg`:
 * any key differs but name, threads, the cadences train.eval_every,
 * checkpoint_every and log_every, and the budget keys train.tokens and
 * tokens_per_param (two spellings of one budget: the caller compares the tokens
 * they resolve to); formats compare by their canonical form, as --resume
 * compares them. qat sweep asks this of its completed runs, so that a changed
 * sweep file never passes an old run off as the new one (sweep/pool.c). */
int qat_runio_config_changes_run(const qat_config *old, const qat_config *cfg);

/* ---- a checkpoint loaded as a model to use (train/ckpt_model.c) ---- */

/* What a command does with the config it reads, so that an override it has no use
 * for is refused rather than ignored (qat_check_set_effect). None of these commands
 * takes an optimizer step. */
typedef struct {
    const char *command; /* "eval", "sample", "grads": named in messages */
    int backward;        /* 1: it runs a backward pass (grads) */
    int checkpoint;      /* 1: the weights are a checkpoint's, not drawn by model.init_std or read from train.init */
    const char *tokens;  /* eval: the option that sets the held-out tokens instead of train.eval_tokens, when given
                            ("--tokens 4096"), else ""; NULL: the command reads no held-out tokens (grads, sample) */
    const char *data;    /* eval: "--data SOURCE" when given, which replaces data.source, .shards, .val_shards and
                            .text; else NULL */
} qat_ckpt_use;

/* QAT_EINPUT naming the first of `sets` that assigns a key with no effect on what
 * `use` runs: "--set KEY=VALUE: KEY has no effect in COMMAND: WHY; expected ...". The
 * training loop's keys (the optimizer, its schedule and budget, the cadences, the run's
 * name), PV-Tuning's V step, and without a backward compress.gradients.* and the
 * estimators' backward parameters (clip_scale, trust, rbbm_p); the keys an option
 * of the command replaces (train.eval_tokens by --tokens, the data's by --data).
 * QAT_OK otherwise. Keys whose effect depends on the formats (seed in eval) are
 * checked once the model is built (qat_load_checkpoint_model). */
int qat_check_set_effect(const qat_ckpt_use *use, const char *const *sets, int n_set);

/* Build the model a checkpoint was trained as: its stored config (with `sets`,
 * "key=value" overrides, applied), the model with quantizers sized for
 * max_batch sequences (0: the run's batch) and the checkpoint's weights and
 * quantizer state. An override without effect on `use` is refused
 * (qat_check_set_effect); messages name use->command. Errors name the file
 * (train/eval_cli.c). */
int qat_load_checkpoint_model(const char *path, const qat_ckpt_use *use, const char *const *sets, int n_set,
                              int max_batch, qat_config *cfg, qat_model **out);

/* rc, an error opening the data of a checkpoint's stored config, with what a
 * user running `qat eval --checkpoint` from another directory needs to know
 * before the file's name: that the path came from the checkpoint (data.text,
 * data.shards), is read from the current directory, and `instead`, how the
 * command points elsewhere. rc unchanged for 0, built-in corpora, and data
 * given by --set or by an option (cfg->data.option). */
int qat_ckpt_data_context(int rc, const char *path, const qat_config *cfg, const char *instead);

/* QAT_ERUNTIME "checkpoint PATH has non-finite values in TENSOR" when a weight,
 * quantizer state or (opt not NULL) AdamW moment just read is NaN or Inf
 * (train/eval_cli.c); every checkpoint loader calls it. */
int qat_checkpoint_check_finite(const char *path, qat_model *m, qat_adamw *opt);

#endif

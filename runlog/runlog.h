/*
 * runlog/runlog.h — the run log, OUT/NAME/run.h5 (docs/files.md).
 *
 * One HDF5 file per run, readable by h5py and by `qat fit` while the run is
 * alive, after it ends, and after it is killed with SIGKILL. Layout:
 *
 *   /                 attributes qat_version, cpu, name, config, seed, n_params,
 *                     n_params_total, tokens_target, weight_format, act_format,
 *                     estimator, gmse_w, gmse_a, rho_pred, status (and init_from,
 *                     init_hash, init_state, init_state_weights,
 *                     init_state_activations, init_ptq_loss, init_source_loss
 *                     for a run started with --init)
 *   /train/{step,tokens,loss,lr,grad_norm,time_s}   1-D, chunked, unlimited
 *   /eval/{step,tokens,loss}                         1-D, chunked, unlimited
 *   /final/{val_loss,train_loss,tokens,steps,wall_s} scalars (only once ended)
 *
 * The backward scheme (compress.gradients.*) is in the root attributes grad_format,
 * grad_rounding and grad_hadamard, beside the forward formats.
 *
 * step and tokens are int64, everything else float64; strings are UTF-8
 * fixed-length, null-terminated (h5py returns bytes; logs of an earlier qat
 * hold variable-length strings, still read: runlog/h5util.h).
 *
 * Typical use by the trainer:
 *
 *     qat_runlog *rl;
 *     qat_runlog_attrs a = {.name = cfg.name, .config_yaml = yaml, .seed = cfg.seed, ...};
 *     QAT_TRY(resuming ? qat_runlog_resume(path, step0, &rl) : qat_runlog_create(path, &a, &rl));
 *     for (step ...) {
 *         qat_runlog_train(rl, step, tokens, loss, lr, gnorm, secs);   // buffered, no I/O
 *         if (step % log_every == 0) QAT_TRY(qat_runlog_flush(rl));     // now on disk
 *         if (eval) qat_runlog_eval(rl, step, tokens, val_loss);
 *     }
 *     qat_runlog_final fin = {val_loss, train_loss, tokens, steps, wall_s};
 *     QAT_TRY(qat_runlog_finish(rl, QAT_RUN_COMPLETED, &fin));
 *     qat_runlog_close(rl);
 *
 * How it survives SIGKILL (HDF5 1.10 SWMR, "single writer, multiple readers"):
 * the file is created with the latest format, every attribute and dataset is
 * created up front, then H5Fstart_swmr_write; each flush appends the buffered
 * rows and H5Dflush-es every dataset, `step` last, so a row counted in `step`
 * is complete in every other dataset of its group. Nothing else is written
 * during the run: HDF5 1.10 cannot create objects or attributes under SWMR
 * (and an attribute rewritten under SWMR corrupted what readers saw when we
 * tried), so qat_runlog_finish closes the SWMR file, reopens it normally, sets
 * `status` and creates /final. A killed run therefore keeps status "running"
 * and has no /final; qat_runlog_is_live tells an interrupted run from a live one.
 *
 * Reading (runlog/README.md has the recipes): while the writer is alive, or
 * after a SIGKILL, open read-only in SWMR mode — h5py.File(p, "r", swmr=True),
 * or H5F_ACC_RDONLY|H5F_ACC_SWMR_READ in C; a plain open fails with "file is
 * already open for write" because the superblock still carries the writer's
 * flag. Once the run has finished (or been resumed), a plain open works too.
 * The readers below use SWMR mode, and for a file whose writer was killed in a
 * non-SWMR step (creation, finish, resume) a read-only open that ignores the
 * stale "open for write" flag once no writer holds the lock.
 *
 * One writer per file: SWMR writers drop HDF5's own file lock, so a second
 * writer (a resume racing a live run) would corrupt the file. The writer
 * therefore holds an flock on a sidecar file PATH.lock for its lifetime (the
 * kernel releases it on SIGKILL), and opens run.h5 with HDF5's locking off so
 * that a reader holding the file open never blocks the run. The sidecar is left
 * in place: deleting a lock file races with the next locker.
 */
#ifndef QAT_RUNLOG_RUNLOG_H
#define QAT_RUNLOG_RUNLOG_H

#include <stdint.h>

#include "core/config.h"

typedef struct qat_runlog qat_runlog;

/* Root attributes fixed when the run is created. Strings are copied. */
typedef struct {
    const char *name;          /* run name (cfg.name) */
    const char *config_yaml;   /* resolved config, qat_config_to_yaml(); NULL = "" */
    uint64_t seed;             /* run seed */
    int64_t n_params;          /* N: non-embedding parameters */
    int64_t n_params_total;    /* every parameter, embeddings and head included */
    int64_t tokens_target;     /* D: training tokens the run is planned for */
    const char *weight_format; /* compress.weights.format */
    const char *act_format;    /* compress.activations.format */
    const char *estimator;     /* the estimator in effect (after defaults) */
    double gmse_w, gmse_a;     /* Gaussian MSE of the two formats (fp32: 0) */
    double rho_pred;           /* capacity predicted from the GMSEs */
    const char *grad_format;   /* compress.gradients.format (the backward scheme); NULL = "fp32" */
    const char *grad_rounding; /* compress.gradients.rounding; NULL = "rtn" */
    int64_t grad_hadamard;     /* compress.gradients.hadamard (0 = off) */
    const char *precision;     /* train.precision (fp32 | bf16); NULL = "fp32" */
    const char *resumes;       /* attribute `resumes` (what each resume changed); NULL = none */
    /* `qat train --init` (all written only when init_from is not NULL): */
    const char *init_from;     /* absolute path of the source checkpoint */
    const char *init_hash;     /* "sha256:HEX" of its /params (docs/files.md) */
    const char *init_state;    /* quantizer state: "carried" (both sides), "partial" or "projected" */
    const char *init_state_weights, *init_state_activations; /* per side: "carried" or "projected" */
    double init_ptq_loss;      /* held-out loss before step 0 through this run's formats */
    double init_source_loss;   /* the same through the source's own formats */
} qat_runlog_attrs;

/* The end-of-run scalars, /final/... */
typedef struct {
    double val_loss;   /* last evaluation, nats/token */
    double train_loss; /* training loss of the last step's batch, as logged (not smoothed) */
    int64_t tokens;    /* training tokens seen */
    int64_t steps;     /* optimizer steps taken */
    double wall_s;     /* wall time of the whole run, resumes included */
} qat_runlog_final;

/* The `status` attribute. */
typedef enum {
    QAT_RUN_RUNNING,   /* being written, or killed (see qat_runlog_is_live) */
    QAT_RUN_COMPLETED, /* reached its token budget */
    QAT_RUN_FAILED,    /* stopped by a runtime error (I/O) after the log was opened */
    QAT_RUN_DIVERGED,  /* stopped because the loss became NaN/inf or exploded */
} qat_run_status;

/* "running", "completed", ...; and back (-1 for an unknown string). */
const char *qat_run_status_name(qat_run_status s);
int qat_run_status_parse(const char *s);

/* Create (or truncate) the run log at `path` and start SWMR writing.
 * QAT_ERUNTIME if the directory is not writable or another process writes the
 * run (its lock is held). */
int qat_runlog_create(const char *path, const qat_runlog_attrs *attrs, qat_runlog **out);

/* Reopen an existing run log to continue it from `step` (the checkpoint's
 * step): rows with step > `step` are dropped from /train and /eval, /final is
 * removed, status goes back to "running". Works on a log left by SIGKILL (it
 * clears the writer flags and recovers the end-of-file address, as h5clear -s
 * --increment would). QAT_EINPUT when the file is not a qat run log. */
int qat_runlog_resume(const char *path, int64_t step, qat_runlog **out);

/* The writer lock on its own, for a caller that must decide under it what to
 * do with a run (resume it, start it afresh, leave a completed one alone), so
 * that no other process can finish or start the run between the decision and
 * the write. Takes PATH.lock; *fd then holds it until qat_runlog_unlock or until
 * it is handed to qat_runlog_create_locked / qat_runlog_resume_locked, which own
 * it from then on (and release it on failure too). QAT_ERUNTIME naming the
 * holder's pid when another process holds it (*busy = 1; busy may be NULL). */
int qat_runlog_lock(const char *path, int *fd, int *busy);
void qat_runlog_unlock(int fd);
/* What the holder of the lock on fd is doing before its run.h5 exists, said in
 * PATH.lock on a second line after its pid (`starting`, a line, no newline;
 * NULL: the pid alone again): a process killed in that window leaves the line,
 * and qat_runlog_lock_said reads it back for whoever comes next. The sweep's
 * qat_runlog_lock, which rewrites the pid, clears it, so a lock that is only
 * the sweep's decision (a run it starts afresh) says nothing. Informative, as
 * the pid: errors are ignored. */
void qat_runlog_lock_say(int fd, const char *starting);
/* The line qat_runlog_lock_say left in PATH.lock of run log PATH, into buf ("":
 * no lock file, or nothing said). Read before taking the lock, which rewrites it. */
void qat_runlog_lock_said(const char *path, char *buf, size_t n);
int qat_runlog_create_locked(const char *path, const qat_runlog_attrs *attrs, int lock_fd, qat_runlog **out);
int qat_runlog_resume_locked(const char *path, int64_t step, int lock_fd, qat_runlog **out);
/* As qat_runlog_resume_locked, and before writing starts: append the line `note`
 * (NULL: none) to the root attribute `resumes`, and replace `config` (NULL: keep)
 * and `tokens_target` (< 0: keep) — a resume that changed a safe key
 * (docs/config.md#resuming) leaves what it changed in the log. */
int qat_runlog_resume_noted(const char *path, int64_t step, const char *note, const char *config_yaml,
                            int64_t tokens_target, int lock_fd, qat_runlog **out);

/* Buffer one row; no I/O unless the buffer (1024 train / 256 eval rows) is
 * full, in which case it flushes. Returns that flush's status. */
int qat_runlog_train(qat_runlog *rl, int64_t step, int64_t tokens, double loss, double lr, double grad_norm,
                     double time_s);
int qat_runlog_eval(qat_runlog *rl, int64_t step, int64_t tokens, double loss);

/* Append the buffered rows and make them visible to readers (and durable
 * against the process being killed; not against power loss: no fsync). */
int qat_runlog_flush(qat_runlog *rl);

/* Flush, then record the outcome: status, and /final when `fin` is not NULL.
 * After this only qat_runlog_close is allowed. A failing flush stops it, except
 * for QAT_RUN_FAILED: the rows that could not be written are lost either way,
 * and the status is still worth recording (its error is returned after). */
int qat_runlog_finish(qat_runlog *rl, qat_run_status status, const qat_runlog_final *fin);

/* Whether qat_runlog_finish has closed the SWMR writer (successfully or not). */
int qat_runlog_is_finished(const qat_runlog *rl);

/* Flush (when not finished), close the file, release the lock, free.
 * Without qat_runlog_finish the status stays "running" (an interrupted run). */
int qat_runlog_close(qat_runlog *rl);

/* The rows written so far (flushed or buffered), e.g. for a progress line. */
int64_t qat_runlog_rows(const qat_runlog *rl, int eval);
/* Column `col` ("step", "loss", ...) of the last row written (flushed or
 * buffered; after a resume, the last row kept) of the train or (eval) the eval
 * series, in *value: 1, or 0 when there is none or it cannot be read. */
int qat_runlog_last(const qat_runlog *rl, int eval, const char *col, double *value);

/* ------------------------------------------------------------------ reading */

/* What scripts and `qat fit` need from a run log, in one call. */
typedef struct {
    char status[16];                /* running|completed|failed|diverged */
    int live;                       /* 1 when a writer holds the run right now */
    char qat_version[32];
    char name[QAT_NAME_MAX];
    char weight_format[QAT_FMT_MAX];
    char act_format[QAT_FMT_MAX];
    char estimator[16];
    uint64_t seed;
    int64_t n_params, n_params_total, tokens_target;
    double gmse_w, gmse_a, rho_pred;
    char grad_format[QAT_FMT_MAX];  /* the backward scheme ("fp32" in a log that predates it) */
    char grad_rounding[8];          /* rtn | sr */
    int64_t grad_hadamard;          /* 0 = off */
    char init_from[512];            /* `init_from`: the checkpoint a `qat train --init` run started
                                       from (cut to fit); "" for a run trained from scratch */
    int has_final;                  /* /final exists: the run ended */
    qat_runlog_final final;         /* valid when has_final */
    int64_t n_train, n_eval;        /* complete rows in /train and /eval (length of `step`) */
} qat_runlog_summary;

/* Read the attributes, /final and the series lengths of `path`, in SWMR mode
 * (works while alive, after SIGKILL and after the end). QAT_EINPUT naming the
 * file when it is missing or not a run log. */
int qat_runlog_read_final(const char *path, qat_runlog_summary *out);

/* The resolved config text stored in `path` into *yaml (caller frees; NULL on
 * error): QAT_ERUNTIME when it does not match its checksum (the file is damaged),
 * QAT_EINPUT when the file is not a run log or has no config. */
int qat_runlog_config(const char *path, char **yaml);
/* The same, the text alone: NULL on any error, with qat_errmsg set. */
char *qat_runlog_read_config(const char *path);

/* One series as doubles: `series` is "train/loss", "eval/step", ...; only the
 * complete rows (as counted by that group's `step`). *values is malloc'd. */
int qat_runlog_read_series(const char *path, const char *series, double **values, int64_t *n);

/* 1 when a writer currently holds the run at `path` (its PATH.lock is locked),
 * 0 otherwise: a "running" run that is not live was interrupted. A lock this
 * process holds itself (qat_runlog_lock) does not count. */
int qat_runlog_is_live(const char *path);

#endif

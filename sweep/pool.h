/*
 * sweep/pool.h — the process pool that runs a sweep's runs (pool.c), shared
 * with the command that plans and reports them (sweep_cli.c). Internal to sweep/.
 */
#ifndef QAT_SWEEP_POOL_H
#define QAT_SWEEP_POOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sweep/sweep.h"

/* What happens to a run: planned when the sweep starts (for --dry-run and the
 * ETA), decided again under the run's lock when it is launched. */
enum { A_START, A_RESUME, A_SKIP, A_KEEP_DIVERGED, A_INVALID, A_LIVE, A_DAMAGED, N_ACTIONS };
extern const char *const qat_sweep_action_names[N_ACTIONS]; /* for --dry-run */

/* Where a run ended up. */
enum { S_PENDING, S_RUNNING, S_COMPLETED, S_SKIPPED, S_FAILED, S_DIVERGED, S_INTERRUPTED, S_BUSY };
extern const char *const qat_sweep_state_names[]; /* per S_*, for the table */

typedef struct {
    int run;              /* index in the sweep */
    int action;           /* A_* */
    int state;            /* S_* */
    pid_t pid;            /* while running */
    double t0, t1;        /* launch and end, seconds since the sweep started */
    double cost;          /* planned training FLOPs (3 × forward FLOPs per token × tokens), for the ETA */
    int64_t n_params;     /* non-embedding N of its model (docs/model.md), for --jobs auto; 0 if invalid */
    int threads;          /* its config's threads (0 = every core), for --jobs auto */
    int changed;          /* completed under another config: resumed, and `qat train --resume` decides */
    char *reason;         /* why it failed or is invalid (may span lines) */
} qat_sweep_job;

/* The final numbers of a run, from run.h5. */
typedef struct {
    char status[32];      /* "" when run.h5 is missing or unreadable; "damaged" when a checksum failed */
    char why[512];        /* the reader's message for a damaged run.h5 */
    int live;             /* a writer holds the run right now (another sweep or shard) */
    double val_loss;      /* NaN when absent */
    double tokens;
    double wall_s;
} qat_sweep_run_info;

/* One sweep invocation: its runs and how they are run. */
typedef struct {
    const qat_sweep *sw;
    const char *qat_bin;     /* this executable */
    char base_yaml[3 * QAT_PATH_MAX]; /* OUT/.sweep/base-HASH.yaml once written (write_base), "" before */
    int jobs;                /* children at once */
    int threads;             /* per child; 0 = leave the config's */
    char pick[512];          /* "N runs to train, J at once × T threads each (why)", printed before launching */
    int tty;                 /* stderr is a terminal: rewrite the progress line */
    int live;                /* a progress line is on screen */
    double start;            /* qat_now_s() at launch of the sweep */
    const char *shard_text;  /* "I/N" or NULL, for messages */
    qat_sweep_job *job;          /* the runs of this shard */
    int n_job;
} qat_sweep_ctx;

/* The text of the base file the workers read, resolved (caller frees), and its
 * path OUT/.sweep/base-HASH.yaml in path[0..n): HASH is the first 16 hex digits
 * of the text's SHA-256, so another base is another file (pool.c, write_base). */
char *qat_sweep_base_text(const qat_sweep *sw, char *path, size_t n);
/* OUT/NAME/FILE of run `run`. */
void qat_sweep_run_path(const qat_sweep_ctx *c, int run, const char *file, char *buf, size_t n);
/* Status and final numbers of run.h5 at path; a missing or unreadable file leaves status "". */
void qat_sweep_read_run(const char *path, qat_sweep_run_info *ri);
/* Plan a run from its config and its directory (a forecast: decided again at launch). */
void qat_sweep_plan_job(qat_sweep_ctx *c, qat_sweep_job *j);
/* Run the pending jobs, c->jobs at a time, passing SIGINT/SIGTERM/SIGHUP on to them.
 * Returns QAT_OK or a launch failure. */
int qat_sweep_execute(qat_sweep_ctx *c);

#endif

/*
 * sweep/sweep.h — a sweep file (docs/config.md) expanded into its runs (expand.c,
 * each run's overrides, config and checks in runs.c) and their names (names.c),
 * and how those runs are divided (split.c).
 *
 * A sweep is one base run config, a grid of dotted keys each with a list of
 * values, and optional repeat seeds. Its runs are the cartesian product of the
 * grid in file order, the last key varying fastest, with the seeds varying
 * fastest of all (the runs of one configuration are neighbours, and a seed is
 * the last part of a run's name). Run i is described entirely by `--set`
 * overrides on the base, the same syntax `qat train` takes, so a sweep worker is
 * nothing more than `qat train BASE --set ...` and a run is reproducible by hand.
 *
 * This half is pure: it parses, checks and names, and never touches the run
 * directories, so the expansion is unit-testable without launching anything.
 * Execution (workers, skip/resume, progress) lives in pool.c, the command in
 * sweep_cli.c, the Slurm script in slurm.c.
 *
 * Every mistake in the sweep file is reported as SWEEP:LINE:COL with the
 * nearest valid key: the inline base is applied as a node of the sweep's own
 * YAML document (qat_config_load_node), and each grid value is tried on the base
 * as an override whose message is moved to the grid entry's position.
 */
#ifndef QAT_SWEEP_SWEEP_H
#define QAT_SWEEP_SWEEP_H

#include <stddef.h>
#include <stdint.h>

#include "core/config.h"

#define QAT_SWEEP_MAX_RUNS 1000000

/* One grid key and its values. */
typedef struct {
    char key[128];       /* dotted config key, e.g. "compress.weights.format" */
    int line, col;       /* where the key is written in the sweep file (1-based) */
    int n;               /* number of values (>= 1) */
    char **set;          /* per value: "key=value", the override handed to qat train */
    char **label;        /* per value: its part of a run name ("int4", "dim16") */
    char **implied;      /* per value: a second override or NULL: the linked key's "key2=value" for a
                          * grid key "key1,key2", or "data.source=shards|text" that data.shards/data.text imply
                          * (the worker reads the re-emitted base, where data.source is written out and
                          * would otherwise stand against the grid's shards) */
    int *vline, *vcol;   /* per value: where it is written */
} qat_sweep_axis;

typedef struct qat_sweep {
    char path[QAT_PATH_MAX];      /* the sweep file, as given */
    char out[QAT_PATH_MAX];       /* output directory (relative to the current directory) */
    char base_path[QAT_PATH_MAX]; /* base run-config file ("" when base is inline) */
    qat_config base;              /* the base, parsed but not cross-validated (the grid may complete it) */
    int threads_explicit;         /* base or grid sets `threads`: --jobs must not override it */
    qat_sweep_axis *axes;         /* grid keys, in file order */
    int n_axes;
    uint64_t *seeds;              /* repeat seeds; NULL without repeat */
    char **seed_set;              /* per seed: "seed=S" */
    int n_seeds;                  /* 0 without repeat */
    int repeat_line, repeat_col;  /* where `repeat:` is written */
    int n_runs;                   /* product of the axis sizes times max(1, n_seeds) */
    char **names;                 /* per run: its unique name (the run directory) */
    char **name_set;              /* per run: "name=NAME" */
    void *doc;                    /* the parsed sweep file (yaml_document_t), kept for per-run checks of an inline base */
    int base_node;                /* index of the inline base's node in doc; 0 = none */
} qat_sweep;

/* Parse and check `path`; on success *out owns everything (qat_sweep_free).
 * QAT_EINPUT with FILE:LINE:COL on any mistake, including a grid whose every
 * run is invalid, whose message lists each distinct run error once with the
 * runs it stops, one a line (one invalid combination alone is a run failure,
 * not an error). */
int qat_sweep_load(const char *path, qat_sweep **out);
void qat_sweep_free(qat_sweep *sw);

int qat_sweep_run_count(const qat_sweep *sw);
const char *qat_sweep_run_name(const qat_sweep *sw, int run);
/* Index into axes[axis] of run `run`'s value (mixed radix, last axis fastest). */
int qat_sweep_run_value(const qat_sweep *sw, int run, int axis);
/* The run's seed (the base seed without repeat). */
uint64_t qat_sweep_run_seed(const qat_sweep *sw, int run);
/* The overrides that turn the base into run `run`: one per grid key (two for
 * data.shards/data.text, which also name data.source), then "seed=S" with
 * repeat, then "name=NAME". Pointers into sw; returns how many (max must be at
 * least QAT_SWEEP_MAX_SETS(sw)). */
#define QAT_SWEEP_MAX_SETS(sw) (2 * (sw)->n_axes + 2)
int qat_sweep_run_sets(const qat_sweep *sw, int run, const char **sets, int max);
/* The run's full config, validated; a cross-key error names the grid entry or
 * base line that caused it (SWEEP:LINE:COL), not the run: each caller lists it
 * under or beside the run's name. */
int qat_sweep_run_config(const qat_sweep *sw, int run, qat_config *cfg);

/* The checkpoint a run starts from (train.init), checked as cheaply as a sweep
 * can before launching anything: it exists, is readable and is not a
 * directory (its contents are the worker's to check, when it loads it).
 * QAT_EINPUT naming where train.init was given (SWEEP:LINE:COL of the grid
 * value, or the base's line), the key and the file. Not part of
 * qat_sweep_run_config: a run that resumes from its own checkpoint never reads
 * it again, so only a run about to start needs it (pool.c decides which). */
int qat_sweep_check_init(const qat_sweep *sw, int run, const qat_config *cfg);

/* The text files a run trains on (data.text, for data.source text), checked
 * like train.init and for the same runs: each exists, is readable and is not a
 * directory, and no file is given twice (device and inode, data/'s
 * qat_data_text_distinct), without reading them. QAT_EINPUT at SWEEP:LINE:COL
 * of the run's data.text grid value, or where the base gave it. A stored
 * config (a run already on disk, core/config.h) is not checked. */
int qat_sweep_check_text(const qat_sweep *sw, int run, const qat_config *cfg);

/* QAT_EINPUT for a set of runs none of which is valid, in the form qat_sweep_load
 * gives a sweep with no valid run: msgs[i] is the error of runs[i]; each distinct
 * error is listed once with the runs it stops; `what` names the set ("shard 1/4"). */
int qat_sweep_fail_runs(const qat_sweep *sw, const char *what, const int *runs, char *const *msgs, int n);

/* (names.c) `in` made safe for a directory and a shell, into out[0..n): [A-Za-z0-9._-]
 * kept, any other run of characters one '_', no leading '.' (run names, the
 * Slurm job name). */
void qat_sweep_sanitize(const char *in, char *out, size_t n);

/* "I/N" with 0 <= I < N; QAT_EINPUT otherwise. */
int qat_sweep_parse_shard(const char *text, int *index, int *count);
/* Run `run` belongs to shard index/count: run % count == index. */
int qat_sweep_in_shard(int run, int index, int count);

/* The largest non-embedding parameter count N (docs/model.md) at which `qat
 * sweep` without --jobs (--jobs auto) trains one-thread runs side by side, one
 * per core, instead of one run at a time on every core. Below it a training step
 * is so short that OpenMP's fork/join barriers eat most of what a second thread
 * adds, while independent runs share nothing. On a 2-core AMD EPYC (Zen 5) two
 * one-thread runs trained 5–15% more tokens per second than one two-thread run
 * at every preset measured, s3 to s8 (bench/README.md, "Jobs × threads"), so the
 * line sits just above s8 (3,213,568); larger models were not measured and keep
 * one run on every core. */
#define QAT_SWEEP_SIDE_BY_SIDE_MAX_N 3300000

/* Why qat_sweep_auto_jobs chose what it did (for the line the sweep prints). */
typedef enum {
    QAT_SWEEP_PICK_SIDE_BY_SIDE,  /* largest N <= QAT_SWEEP_SIDE_BY_SIDE_MAX_N: min(cores, runs) × 1 thread */
    QAT_SWEEP_PICK_ALL_CORES,     /* largest N above it: 1 × cores threads */
    QAT_SWEEP_PICK_ONE_RUN,       /* at most one run to train: 1 × cores threads */
    QAT_SWEEP_PICK_ONE_CORE,      /* a single core: 1 × 1 thread */
    QAT_SWEEP_PICK_SWEEP_THREADS, /* the sweep sets threads: max(1, cores / its threads) × its own */
} qat_sweep_pick;

/* --jobs auto, as a pure function of what it depends on, so it is testable for
 * any machine: `cores` the CPUs the sweep may use, `largest_n` the largest
 * non-embedding N among the runs to train, `runs` how many runs there are to
 * train, `sweep_threads` the most threads a run of the sweep asks for itself (0
 * when the sweep leaves threads to the machine; a run's threads 0 counts as
 * `cores`). Sets *jobs (runs at once, 1 <= *jobs <= max(1, runs)) and *threads
 * (per run; 0 = leave each run's own threads). */
qat_sweep_pick qat_sweep_auto_jobs(int cores, int64_t largest_n, int runs, int sweep_threads, int *jobs, int *threads);

#endif

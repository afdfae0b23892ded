/*
 * scaling/inputs.h — where the runs of a fit come from: HDF5 run logs (docs/files.md,
 * files or directories searched for run.h5) and CSV tables.
 *
 * Every rejected input is either an error naming file:line (QAT_EINPUT, the
 * command exits 2) or a warning on stderr naming the file and why it was
 * skipped (an unfinished run). Nothing is dropped silently.
 */
#ifndef QAT_SCALING_INPUTS_H
#define QAT_SCALING_INPUTS_H

#include <stdio.h>

#include "scaling/fit.h"

/* Append the rows of a CSV: `N,D,loss[,format[,act_format[,grad_format]]]` with or without a
 * header, or any header naming the columns (Epoch's `Model Size`, `Training
 * FLOP` → D = FLOP/(6N), `loss`; see csv.c for the accepted names). */
int qat_fit_read_csv(const char *path, qat_fit_runs *rs);
/* The same, with unknown header columns warned about on `warn` (may be NULL). */
int qat_fit_read_csv_warn(const char *path, qat_fit_runs *rs, FILE *warn);
/* A number as a CSV cell or a --fix value is written: decimal or scientific
 * notation (not hex, which strtod also takes), or inf/nan for the caller to
 * refuse as not finite; 1 when s is one (its value in *v, ±HUGE_VAL past a
 * double's range). */
int qat_fit_parse_number(const char *s, double *v);

/* Append one run log if it is a completed run; otherwise, when it is an
 * unfinished run (or one started from a checkpoint), warn on `warn` (naming
 * the file) and count it in *skipped. QAT_EINPUT for a file that is no run
 * log (named by its kind: a FIT.h5, a checkpoint, ...), QAT_ERUNTIME for a
 * damaged one (a checksum, a completed run's log missing a required part). */
int qat_fit_read_runlog(const char *path, qat_fit_runs *rs, int *skipped, FILE *warn);

/* Each path: a directory (every run.h5 below it, sorted; links followed, each
 * directory entered once and each file listed once, by device and inode; a
 * subdirectory that cannot be read is QAT_ERUNTIME), an HDF5 file (a run log;
 * another of qat's files, or one that is no run log, is QAT_EINPUT naming it,
 * a damaged run log QAT_ERUNTIME), or anything else (a CSV). A file met twice
 * across the paths (by device and inode: a path given twice, a run log inside a
 * directory also given, a link) is QAT_EINPUT naming both paths, since its runs
 * would count twice. */
int qat_fit_read_inputs(char *const *paths, int n, qat_fit_runs *rs, int *skipped, FILE *warn);

/* What the run logs' stored configs (docs/files.md `config`) say, for selecting
 * runs by config key (`qat fit --where KEY=VALUE`) and for refusing a fit over
 * runs trained on different data. Runs from CSV files have no config. */
typedef struct qat_fit_select qat_fit_select;

/* Check each "KEY=VALUE" (a config key of docs/config.md and a value it
 * accepts; for a format key, a format the trainer takes there); QAT_EINPUT
 * naming the --where otherwise. `where` is borrowed. Format keys are
 * compared by canonical spelling, against the run's config and the formats
 * its run log records. */
int qat_fit_select_new(const char *const *where, int n_where, qat_fit_select **out);
void qat_fit_select_free(qat_fit_select *sel);

/* As qat_fit_read_inputs; with `sel` (may be NULL) a run log is kept only when
 * its config has every --where value (others are counted in *unselected, not
 * warned about one by one), and each kept run's data is remembered for
 * qat_fit_check_data. With --where, a CSV input or a run log without a readable
 * config is QAT_EINPUT: there is nothing to select it by. */
int qat_fit_read_inputs_sel(char *const *paths, int n, qat_fit_runs *rs, int *skipped, int *unselected, FILE *warn,
                            qat_fit_select *sel);

/* QAT_EINPUT when the runs left in rs (after drops and exclusions) were trained
 * on different data: data source and corpus (files, synthetic seed/vocab/topics,
 * held-out fraction), model.vocab or model.seq_len, so that their losses are
 * not on one scale. The message names each group with its run count and one
 * file, and how to select one. With allow_mixed the same text is a warning on
 * `warn` and QAT_OK. Runs without a config (CSV rows) are not checked. */
int qat_fit_check_data(const qat_fit_runs *rs, const qat_fit_select *sel, int allow_mixed, FILE *warn);

/* Every file the inputs stand for: each path that is not a directory, and
 * each run.h5 below each directory (what qat_fit_read_inputs reads), so that
 * no output of the fit can be one of them. Caller frees each and the list. */
int qat_fit_input_files(char *const *paths, int n, char ***files, int *nf);

/* Remove the k runs with the highest loss (Epoch drops the 5 highest of the
 * Chinchilla table: they are off the trend). Ties go by input order. */
void qat_fit_drop_highest(qat_fit_runs *rs, int k);

/* Remove the runs the glob matches, told by its shape (docs/cli.md --exclude):
 * a glob ending in .csv or .h5 matches the run's file (FNM flags 0: '*'
 * crosses '/'); any other matches with FNM_PATHNAME, by its '/'-separated
 * parts, the weight format (one part), the "W/A" pair (two) or the "W/A/G"
 * format key (three; G the backward scheme). Returns how many were removed. */
int qat_fit_exclude(qat_fit_runs *rs, const char *glob);

#endif

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

/* Append the rows of a CSV: `N,D,loss[,format[,act_format]]` with or without a
 * header, or any header naming the columns (Epoch's `Model Size`, `Training
 * FLOP` → D = FLOP/(6N), `loss`; see csv.c for the accepted names). */
int qat_fit_read_csv(const char *path, qat_fit_runs *rs);

/* Append one run log if it is a completed run; otherwise warn on `warn`
 * (naming the file) and count it in *skipped. QAT_EINPUT if not readable. */
int qat_fit_read_runlog(const char *path, qat_fit_runs *rs, int *skipped, FILE *warn);

/* Each path: a directory (every run.h5 below it, sorted), an HDF5 file (a run
 * log), or anything else (a CSV). */
int qat_fit_read_inputs(char *const *paths, int n, qat_fit_runs *rs, int *skipped, FILE *warn);

/* Every file the inputs stand for: each path that is not a directory, and
 * each run.h5 below each directory (what qat_fit_read_inputs reads), so that
 * no output of the fit can be one of them. Caller frees each and the list. */
int qat_fit_input_files(char *const *paths, int n, char ***files, int *nf);

/* Remove the k runs with the highest loss (Epoch drops the 5 highest of the
 * Chinchilla table: they are off the trend). Ties go by input order. */
void qat_fit_drop_highest(qat_fit_runs *rs, int k);

/* Remove runs whose weight format, "W/A" pair or origin matches the glob;
 * returns how many were removed. */
int qat_fit_exclude(qat_fit_runs *rs, const char *glob);

#endif

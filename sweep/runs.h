/*
 * sweep/runs.h — the two pieces of runs.c that reading the sweep file needs, for
 * expand.c only: the per-run half is public in sweep.h (qat_sweep_run_*,
 * qat_sweep_check_*, qat_sweep_fail_runs).
 */
#ifndef QAT_SWEEP_RUNS_H
#define QAT_SWEEP_RUNS_H

#include "sweep/sweep.h"

/* The error just raised by the loader for the override `set` ("--set k=v: why"),
 * raised again as "SWEEP:LINE:COL: why" at the grid value (or repeat) that gave
 * it; "SWEEP: why" when line is 0. Returns QAT_EINPUT. */
int qat_sweep_move_set_error(const qat_sweep *sw, const char *set, int line, int col);

/* QAT_OK once some run of sw has a valid config (qat_sweep_run_config); when none
 * has, QAT_EINPUT with the error qat_sweep_load gives for it: each distinct run
 * error once, with the runs it stops (sw->names made). */
int qat_sweep_check_runs(const qat_sweep *sw);

#endif

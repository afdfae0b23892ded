/*
 * sweep/slurm.h — the Slurm job-array script of a sweep (`qat sweep --emit-slurm`).
 */
#ifndef QAT_SWEEP_SLURM_H
#define QAT_SWEEP_SLURM_H

#include <stdio.h>

#include "sweep/sweep.h"

/* Write a Slurm job-array script: task t of `shards` runs
 *   cd WORKDIR && QAT_BIN sweep SWEEP_ABS --shard t/shards [--jobs jobs]
 * (jobs <= 0: not passed). shards <= 0 means one shard per run. Paths should be
 * absolute; they are quoted for bash (qat_sweep_put_shell_word), and OUT/.sweep
 * for the #SBATCH --output line as sbatch reads it ('%' doubled); a log
 * directory sbatch cannot be given (a backslash, a line break) is QAT_EINPUT. Each task asks for
 * --cpus-per-task = max(1, jobs) × the runs' largest `threads`, or × 1 when the
 * sweep leaves threads at 0 (every core); a grid value threads 0 is QAT_EINPUT. */
int qat_sweep_write_slurm(const qat_sweep *sw, const char *file, const char *qat_bin, const char *sweep_abs,
                          const char *workdir, int shards, int jobs);

/* `s` as one bash word: as it is when every character is safe unquoted and
 * `always` is 0, else '...' (each ' as '\''), or $'...' when it holds a control
 * character, so that it stays on one line (the script's comments, the hint). */
void qat_sweep_put_shell_word(FILE *f, const char *s, int always);

#endif

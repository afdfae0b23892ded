/*
 * sweep/slurm.h — the Slurm job-array script of a sweep (`qat sweep --emit-slurm`).
 */
#ifndef QAT_SWEEP_SLURM_H
#define QAT_SWEEP_SLURM_H

#include "sweep/sweep.h"

/* Write a Slurm job-array script: task t of `shards` runs
 *   cd WORKDIR && QAT_BIN sweep SWEEP_ABS --shard t/shards [--jobs jobs]
 * (jobs <= 0: not passed). shards <= 0 means one shard per run. Paths should be
 * absolute; they are single-quoted for bash. Each task asks for
 * --cpus-per-task = max(1, jobs) × the runs' largest `threads`, or × 1 when the
 * sweep leaves threads at 0 (every core); a grid value threads 0 is QAT_EINPUT. */
int qat_sweep_write_slurm(const qat_sweep *sw, const char *file, const char *qat_bin, const char *sweep_abs,
                          const char *workdir, int shards, int jobs);

#endif

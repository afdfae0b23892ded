/*
 * sweep/split.c — how the runs of a sweep are divided: between the array tasks
 * of a Slurm job (--shard I/N) and, within one process, between runs at once and
 * threads per run (--jobs auto). Pure functions of their arguments, so they are
 * unit-tested for any machine (tests/test_sweep.c).
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

#include "core/error.h"
#include "sweep/sweep.h"

/* ---------------------------------------------------------------- shards */

int qat_sweep_parse_shard(const char *text, int *index, int *count) {
    char *end;
    errno = 0;
    long i = strtol(text, &end, 10);
    if (end == text || *end != '/' || !isdigit((unsigned char)*text)) goto bad;
    const char *s = end + 1;
    if (!isdigit((unsigned char)*s)) goto bad;
    long n = strtol(s, &end, 10);
    if (*end || errno || n < 1 || n > QAT_SWEEP_MAX_RUNS || i < 0 || i >= n) goto bad;
    *index = (int)i;
    *count = (int)n;
    return QAT_OK;
bad:
    return qat_fail(QAT_EINPUT, "--shard '%s': expected I/N with 0 <= I < N, e.g. --shard 0/4", text);
}

int qat_sweep_in_shard(int run, int index, int count) { return run % count == index; }

/* ------------------------------------------------------------- jobs auto */

qat_sweep_pick qat_sweep_auto_jobs(int cores, int64_t largest_n, int runs, int sweep_threads, int *jobs, int *threads) {
    if (cores < 1) cores = 1;
    int most = runs > 1 ? runs : 1; /* never more workers than runs to train */
    if (sweep_threads > 0) {
        int j = cores / sweep_threads;
        *jobs = j < 1 ? 1 : j < most ? j : most;
        *threads = 0;
        return QAT_SWEEP_PICK_SWEEP_THREADS;
    }
    *jobs = 1;
    *threads = cores;
    if (cores == 1) return QAT_SWEEP_PICK_ONE_CORE;
    if (runs <= 1) return QAT_SWEEP_PICK_ONE_RUN;
    if (largest_n > QAT_SWEEP_SIDE_BY_SIDE_MAX_N) return QAT_SWEEP_PICK_ALL_CORES;
    *jobs = cores < most ? cores : most;
    *threads = 1;
    return QAT_SWEEP_PICK_SIDE_BY_SIDE;
}

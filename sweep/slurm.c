/*
 * sweep/slurm.c — `qat sweep --emit-slurm`: the Slurm job-array script whose
 * task t runs shard t of a sweep (sweep/slurm.h, docs/cli.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/fsutil.h"
#include "sweep/slurm.h"

/* 'text' for bash: single quotes, with each ' written as '\''. */
static void put_quoted(FILE *f, const char *s) {
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') fputs("'\\''", f);
        else fputc(*s, f);
    }
    fputc('\'', f);
}

/* The CPUs one array task asks for (--cpus-per-task), from the runs' `threads`
 * and the runs a task trains at once (jobs). When the sweep fixes threads (base
 * or grid), a task needs jobs × the largest of them. When it does not, threads 0
 * means "every core of the machine a run lands on", which is no quantity Slurm
 * can be asked for: the submitting host says nothing about the compute nodes, and
 * a whole node per task would serialise the array. A scaling-law sweep has many
 * small runs whose parallelism is the array itself, so a task asks for one CPU
 * per concurrent run; the sweep divides SLURM_CPUS_PER_TASK among its runs, so
 * raising --cpus-per-task in the script gives each run more threads. A grid
 * value threads 0 is refused, naming where it is written. */
static int slurm_cpus(const qat_sweep *sw, int jobs, int *cpus, int *fixed) {
    int most = sw->base.threads, in_grid = 0;
    for (int a = 0; a < sw->n_axes; a++)
        for (int j = 0; j < sw->axes[a].n; j++) {
            const char *v[2] = {sw->axes[a].set[j], sw->axes[a].implied[j]};
            for (int k = 0; k < 2; k++) {
                if (!v[k] || strncmp(v[k], "threads=", 8)) continue;
                int t = atoi(v[k] + 8);
                if (t <= 0)
                    return qat_fail(QAT_EINPUT, "%s:%d:%d: threads %s (every core) cannot be asked of Slurm; "
                                    "give each run a thread count, or leave threads out of the sweep",
                                    sw->path, sw->axes[a].vline[j], sw->axes[a].vcol[j], v[k] + 8);
                if (!in_grid || t > most) most = t;
                in_grid = 1;
            }
        }
    *fixed = most > 0;
    *cpus = (jobs > 0 ? jobs : 1) * (most > 0 ? most : 1);
    return QAT_OK;
}

int qat_sweep_write_slurm(const qat_sweep *sw, const char *file, const char *qat_bin, const char *sweep_abs,
                          const char *workdir, int shards, int jobs) {
    if (shards <= 0 || shards > sw->n_runs) shards = sw->n_runs;
    int cpus = 1, fixed = 0;
    QAT_TRY(slurm_cpus(sw, jobs, &cpus, &fixed));
    int at_once = jobs > 0 ? jobs : 1;
    /* like every output (core/fsutil.h): never over the sweep file or a device, atomically */
    qat_out o;
    const char *inputs[2] = {sw->path, sw->base_path[0] ? sw->base_path : NULL};
    QAT_TRY(qat_out_begin(&o, file, 0, inputs, 2));
    FILE *f = qat_out_stream(&o);
    char stem[64];
    const char *b = strrchr(sw->path, '/');
    qat_sweep_sanitize(b ? b + 1 : sw->path, stem, sizeof stem);
    char *dot = strrchr(stem, '.');
    if (dot && dot != stem) *dot = 0;
    /* Slurm does not create the --output directory; this path is made by the
     * caller before submission (qat sweep --emit-slurm creates OUT/.sweep). */
    char logdir[2 * QAT_PATH_MAX + 16];
    if (sw->out[0] == '/') snprintf(logdir, sizeof logdir, "%s/.sweep", sw->out);
    else snprintf(logdir, sizeof logdir, "%s/%s/.sweep", workdir, sw->out);
    fprintf(f, "#!/bin/bash\n");
    fprintf(f, "# Slurm job array for the qat sweep %s: %d runs in %d shards, written by\n", sweep_abs, sw->n_runs, shards);
    fprintf(f, "# `qat sweep --emit-slurm`. Submit with `sbatch %s`. Task t runs the runs whose\n", file);
    fprintf(f, "# index %% %d == t; finished runs are skipped and interrupted ones resumed, so\n", shards);
    fprintf(f, "# resubmitting the same array completes only what is missing.\n");
    if (fixed)
        fprintf(f, "# CPUs: a task trains %d run(s) at a time, each with the threads the sweep\n"
                   "# gives it (at most %d), so it asks for %d.\n", at_once, cpus / at_once, cpus);
    else if (jobs > 0)
        fprintf(f, "# CPUs: the sweep leaves threads to the machine (threads 0), which Slurm cannot\n"
                   "# be asked for, so a task asks for one CPU per run it trains at once (%d).\n"
                   "# Each run gets --cpus-per-task / %d threads: raise --cpus-per-task to give\n"
                   "# runs more, or set threads in the sweep.\n", at_once, at_once);
    else
        fprintf(f, "# CPUs: the sweep leaves threads to the machine (threads 0), which Slurm cannot\n"
                   "# be asked for, so a task asks for one CPU. Without --jobs a task splits the\n"
                   "# CPUs it gets between runs at once and threads by the size of its models\n"
                   "# (qat sweep --jobs auto, docs/cli.md): raise --cpus-per-task to give it more,\n"
                   "# or set threads in the sweep.\n");
    fprintf(f, "# Add your site's options (--time, --partition, --mem) below.\n");
    fprintf(f, "#SBATCH --job-name=qat-%s\n", stem);
    fprintf(f, "#SBATCH --array=0-%d\n", shards - 1);
    fprintf(f, "#SBATCH --ntasks=1\n");
    fprintf(f, "#SBATCH --cpus-per-task=%d\n", cpus);
    fprintf(f, "#SBATCH --output=%s/slurm-%%A_%%a.log\n", logdir);
    if (shards > 1000) fprintf(f, "# Note: many clusters cap arrays at MaxArraySize (often 1001); use --shards K to emit fewer tasks.\n");
    fprintf(f, "set -euo pipefail\n");
    fprintf(f, "cd ");
    put_quoted(f, workdir);
    fprintf(f, "\nexec ");
    put_quoted(f, qat_bin);
    fprintf(f, " sweep ");
    put_quoted(f, sweep_abs);
    fprintf(f, " --shard \"${SLURM_ARRAY_TASK_ID}/%d\"", shards);
    if (jobs > 0) fprintf(f, " --jobs %d", jobs);
    fprintf(f, "\n");
    return qat_out_commit(&o);
}

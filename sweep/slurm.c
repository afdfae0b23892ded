/*
 * sweep/slurm.c — `qat sweep --emit-slurm`: the Slurm job-array script whose
 * task t runs shard t of a sweep (sweep/slurm.h, docs/cli.md).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/fsutil.h"
#include "sweep/slurm.h"

void qat_sweep_put_shell_word(FILE *f, const char *s, int always) {
    int plain = !always && *s, ctrl = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (!isalnum(*p) && !strchr("_./,:+=@%-", *p)) plain = 0;
        if (*p < 0x20 || *p == 0x7f) ctrl = 1;
    }
    if (plain) {
        fputs(s, f);
    } else if (ctrl) { /* $'...': a line break in single quotes would end a comment line */
        fputs("$'", f);
        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
            if (*p == '\n') fputs("\\n", f);
            else if (*p == '\t') fputs("\\t", f);
            else if (*p < 0x20 || *p == 0x7f) fprintf(f, "\\x%02x", *p);
            else if (*p == '\'' || *p == '\\') fprintf(f, "\\%c", *p);
            else fputc(*p, f);
        }
        fputc('\'', f);
    } else {
        fputc('\'', f);
        for (; *s; s++) {
            if (*s == '\'') fputs("'\\''", f);
            else fputc(*s, f);
        }
        fputc('\'', f);
    }
}

/* A filename pattern as the value of an #SBATCH line. sbatch splits such a line
 * at white space, takes an unescaped '#' for the start of a comment, drops
 * quotes and reads '\' as "take the next character as it is" (src/sbatch/opt.c,
 * _get_argument; older versions knew only double quotes, and took a '#' even
 * inside them for a comment); then the pattern's "%%" is one '%' and any other
 * '%' a replacement symbol (man sbatch, "filename pattern"). So: double quotes,
 * '"' and '#' escaped with '\', '%' doubled. A '\' left in the pattern would
 * turn every replacement symbol off (all tasks in one file named "%A_%a") and a
 * line break cannot be written on the line: such paths are refused beforehand
 * (sbatch_path_ok). */
static void put_sbatch_pattern(FILE *f, const char *dir, const char *pattern) {
    fputc('"', f);
    for (const char *p = dir; *p; p++) {
        if (*p == '%') fputs("%%", f);
        else if (*p == '"' || *p == '#') fprintf(f, "\\%c", *p);
        else fputc(*p, f);
    }
    fprintf(f, "%s\"", pattern);
}

/* QAT_EINPUT when `dir` cannot be written in an #SBATCH line (put_sbatch_pattern). */
static int sbatch_path_ok(const qat_sweep *sw, const char *dir) {
    const char *bad = strpbrk(dir, "\\\n\r");
    if (!bad) return QAT_OK;
    return qat_fail(QAT_EINPUT, "%s: out: the Slurm tasks' log directory %s holds %s, which an #SBATCH --output "
                    "line cannot carry (%s); expected an out directory (and a current directory) without it",
                    sw->path, dir, *bad == '\\' ? "a backslash" : "a line break",
                    *bad == '\\' ? "sbatch would then expand no %A or %a, and every task would write one file"
                                 : "an #SBATCH directive is one line");
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
    /* Slurm does not create the --output directory; this path is made by the
     * caller before submission (qat sweep --emit-slurm creates OUT/.sweep). */
    char logdir[2 * QAT_PATH_MAX + 16];
    if (sw->out[0] == '/') snprintf(logdir, sizeof logdir, "%s/.sweep", sw->out);
    else snprintf(logdir, sizeof logdir, "%s/%s/.sweep", workdir, sw->out);
    QAT_TRY(sbatch_path_ok(sw, logdir));
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
    fprintf(f, "#!/bin/bash\n");
    fprintf(f, "# Slurm job array for the qat sweep ");
    qat_sweep_put_shell_word(f, sweep_abs, 0);
    fprintf(f, ": %d runs in %d shards, written by\n", sw->n_runs, shards);
    fprintf(f, "# `qat sweep --emit-slurm`. Submit with `sbatch ");
    qat_sweep_put_shell_word(f, file, 0);
    fprintf(f, "`. Task t runs the runs whose\n");
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
    fprintf(f, "#SBATCH --output=");
    put_sbatch_pattern(f, logdir, "/slurm-%A_%a.log");
    fprintf(f, "\n");
    if (shards > 1000) fprintf(f, "# Note: many clusters cap arrays at MaxArraySize (often 1001); use --shards K to emit fewer tasks.\n");
    fprintf(f, "set -euo pipefail\n");
    fprintf(f, "cd ");
    qat_sweep_put_shell_word(f, workdir, 1);
    fprintf(f, "\nexec ");
    qat_sweep_put_shell_word(f, qat_bin, 1);
    fprintf(f, " sweep ");
    qat_sweep_put_shell_word(f, sweep_abs, 1);
    fprintf(f, " --shard \"${SLURM_ARRAY_TASK_ID}/%d\"", shards);
    if (jobs > 0) fprintf(f, " --jobs %d", jobs);
    fprintf(f, "\n");
    return qat_out_commit(&o);
}

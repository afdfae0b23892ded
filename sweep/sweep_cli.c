/*
 * sweep/sweep_cli.c — `qat sweep SWEEP.yaml` (docs/cli.md): its options, the
 * plan of every run, --jobs auto's choice, --dry-run, --emit-slurm and the final
 * table. The runs themselves are run by the process pool (pool.c), whose header
 * comment says how a run's fate is decided and why each run is a process.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/fsutil.h"
#include "core/num.h"
#include "core/stop.h"
#include "sweep/pool.h"
#include "sweep/slurm.h"
#include "sweep/sweep_cli.h"

static const char SWEEP_HELP[] =
    "usage: qat sweep SWEEP.yaml [--jobs N|auto] [--shard I/N] [--dry-run] [--emit-slurm FILE [--shards K]]\n"
    "\n"
    "Run every run of a sweep file: a base run config, a grid of dotted keys (cartesian product,\n"
    "last key fastest), optional repeat seeds, and an output directory (docs/config.md). Each run is\n"
    "`qat train` in its own process, logging to OUT/NAME/train.log. Each run's fate is decided when\n"
    "it is launched, under its lock: finished runs are skipped, interrupted ones resumed from their\n"
    "checkpoint, and runs another process is writing (an overlapping sweep) left alone and reported\n"
    "busy. A failed run is reported with its reason while the others go on; the exit status is 1 if\n"
    "any run failed or was left busy.\n"
    "\n"
    "  --jobs N          run N at once, each with max(1, cores/N) threads unless the sweep sets threads\n"
    "  --jobs auto       the default: when the largest model to train is small (non-embedding N at\n"
    "                    most a threshold, docs/cli.md), one run per core with 1 thread each, since\n"
    "                    short steps lose a second thread to OpenMP barriers; above it, one run on\n"
    "                    every core; a single run gets every core; if the sweep sets threads,\n"
    "                    max(1, cores/threads) at once. What was chosen, and why, is printed first\n"
    "  --shard I/N       only the runs whose index % N == I (0 <= I < N)\n"
    "  --dry-run         list the runs, their overrides and what would happen to each; run nothing\n"
    "  --emit-slurm FILE write a Slurm job-array script, one shard per array task, and exit; each\n"
    "                    task asks for --cpus-per-task = jobs × the runs' threads (1 per run when\n"
    "                    the sweep leaves threads to the machine); resubmit it to finish what is missing\n"
    "  --shards K        with --emit-slurm: K array tasks (default: one per run)\n";

/* ---------------------------------------------------------------- output */

static int name_width(const qat_sweep_ctx *c) {
    int w = 4;
    for (int i = 0; i < c->n_job; i++) {
        int n = (int)strlen(qat_sweep_run_name(c->sw, c->job[i].run));
        if (n > w) w = n;
    }
    return w;
}

static void dry_run(const qat_sweep_ctx *c) {
    const qat_sweep *sw = c->sw;
    int w = name_width(c), counts[N_ACTIONS] = {0};
    /* the file the workers read: `qat train BASE --set OVERRIDES --out OUT` is each
     * run by hand (config.md), also for an inline base, which has no file of its own */
    char base[3 * QAT_PATH_MAX];
    free(qat_sweep_base_text(sw, base, sizeof base));
    printf("qat sweep %s: %d runs%s%s%s, out %s, base %s%s%s", sw->path, qat_sweep_run_count(sw),
           c->shard_text ? ", shard " : "", c->shard_text ? c->shard_text : "", c->shard_text ? " of them" : "", sw->out,
           sw->base_path[0] ? sw->base_path : "inline", sw->base_path[0] ? ", resolved as " : " (written as ", base);
    printf("%s\n%s\n", sw->base_path[0] ? "" : " when a run starts)", c->pick);
    printf("%6s  %-*s  %-16s  %s\n", "index", w, "name", "action", "overrides");
    int max = QAT_SWEEP_MAX_SETS(sw);
    const char **sets = qat_xmalloc((size_t)max * sizeof *sets);
    for (int i = 0; i < c->n_job; i++) {
        const qat_sweep_job *j = &c->job[i];
        counts[j->action]++;
        /* every override its worker gets, name=NAME and the threads the sweep chose included */
        int n = qat_sweep_run_sets(sw, j->run, sets, max);
        printf("%6d  %-*s  %-16s ", j->run, w, qat_sweep_run_name(sw, j->run), qat_sweep_action_names[j->action]);
        for (int k = 0; k < n; k++) printf(" %s", sets[k]);
        if (c->threads > 0) printf(" threads=%d", c->threads);
        printf("\n");
        if (j->action == A_INVALID) printf("%6s  %s\n", "", j->reason);
        if (j->changed)
            printf("%6s  completed under another config than the sweep's: `qat train --resume` decides (a larger "
                   "token budget continues it, any other change is refused)\n", "");
    }
    free(sets);
    printf("would start %d, resume %d, skip %d completed; %d kept diverged, %d invalid, %d busy", counts[A_START],
           counts[A_RESUME], counts[A_SKIP], counts[A_KEEP_DIVERGED], counts[A_INVALID], counts[A_LIVE]);
    if (counts[A_DAMAGED]) printf(", %d kept damaged", counts[A_DAMAGED]);
    printf("\n");
}

static void fmt_num(char *buf, size_t n, double v, const char *fmt) {
    if (isfinite(v)) snprintf(buf, n, fmt, v);
    else snprintf(buf, n, "-");
}

/* The table, the reasons, and one line of counts. Returns how many runs did
 * not complete. `stopped`: the sweep stopped on an error (reported after),
 * so the runs it did not reach are "not started", not interrupted. */
static int summary(const qat_sweep_ctx *c, int stopped) {
    int w = name_width(c), n_state[8] = {0}, started = 0, resumed = 0;
    printf("\n%-*s  %-11s  %10s  %12s  %9s\n", w, "name", "status", "val_loss", "tokens", "wall_s");
    for (int i = 0; i < c->n_job; i++) {
        const qat_sweep_job *j = &c->job[i];
        char h5[3 * QAT_PATH_MAX], vl[32], tk[32], ws[32];
        qat_sweep_run_path(c, j->run, "run.h5", h5, sizeof h5);
        qat_sweep_run_info ri;
        qat_sweep_read_run(h5, &ri);
        fmt_num(vl, sizeof vl, ri.val_loss, "%.4f");
        fmt_num(tk, sizeof tk, ri.tokens, "%.0f");
        fmt_num(ws, sizeof ws, ri.wall_s, "%.1f");
        /* a run the sweep never reached is "not started" here as in the list and count below */
        const char *st = j->state == S_PENDING ? "not started" : qat_sweep_state_names[j->state];
        printf("%-*s  %-11s  %10s  %12s  %9s\n", w, qat_sweep_run_name(c->sw, j->run), st, vl, tk, ws);
        n_state[j->state]++;
        if ((j->t1 > 0 || j->state == S_RUNNING) && j->state != S_BUSY) {
            started += j->action == A_START;
            resumed += j->action == A_RESUME;
        }
    }
    int bad = n_state[S_FAILED] + n_state[S_DIVERGED] + n_state[S_INTERRUPTED] + n_state[S_PENDING] + n_state[S_BUSY];
    if (bad) {
        printf("\nruns that did not complete:\n");
        for (int i = 0; i < c->n_job; i++) {
            const qat_sweep_job *j = &c->job[i];
            if (j->state == S_COMPLETED || j->state == S_SKIPPED) continue;
            printf("  %s:%s\n", qat_sweep_run_name(c->sw, j->run),
                   j->action == A_INVALID ? " not started (invalid config)"
                   : j->state != S_PENDING ? ""
                   : stopped               ? " not started (the sweep stopped on the error below)"
                                           : " not started (the sweep was interrupted)");
            for (const char *p = j->reason; p && *p;) {
                const char *nl = strchr(p, '\n');
                int len = nl ? (int)(nl - p) : (int)strlen(p);
                printf("      %.*s\n", len, p);
                p = nl ? nl + 1 : p + len;
            }
        }
    }
    printf("\nqat sweep: %d runs: %d started, %d resumed, %d skipped (already completed); "
           "%d completed, %d failed, %d diverged, %d interrupted, %d busy",
           c->n_job, started, resumed, n_state[S_SKIPPED], n_state[S_COMPLETED] + n_state[S_SKIPPED],
           n_state[S_FAILED], n_state[S_DIVERGED], n_state[S_INTERRUPTED], n_state[S_BUSY]);
    /* runs never reached are "not started" in the count as in the list above, whether
     * the sweep stopped on an error or was interrupted (they were counted as interrupted) */
    if (n_state[S_PENDING] || stopped) printf(", %d not started", n_state[S_PENDING]);
    printf("\n");
    fflush(stdout);
    return bad;
}

/* ------------------------------------------------------------------ main */

static int parse_int(const char *s, int lo, int hi, int *v) {
    long long x;
    if (!qat_parse_ll(s, lo, hi, &x)) return 0;
    *v = (int)x;
    return 1;
}

/* The CPUs this process may use: its affinity mask, capped by the CPUs Slurm
 * gave the task (SLURM_CPUS_PER_TASK, set by --cpus-per-task). The cap matters
 * where the site's task plugin does not bind (task/none): the mask is then the
 * whole node, and runs sized from it would oversubscribe what was allocated. */
static int cpu_count(void) {
    cpu_set_t set;
    int n = 0;
    if (!sched_getaffinity(0, sizeof set, &set)) n = CPU_COUNT(&set);
    if (n <= 0) {
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        n = online > 0 ? (int)online : 1;
    }
    int slurm = 0;
    const char *s = getenv("SLURM_CPUS_PER_TASK");
    if (s && parse_int(s, 1, 1 << 20, &slurm) && slurm < n) n = slurm;
    return n;
}

/* v with a comma every three digits: 238640 -> "238,640". */
static void fmt_count(char *buf, size_t n, int64_t v) {
    char digits[32];
    int len = snprintf(digits, sizeof digits, "%lld", (long long)(v < 0 ? 0 : v)), o = 0;
    for (int i = 0; i < len && o + 2 < (int)n; i++) {
        if (i && (len - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = 0;
}

/* Set c->jobs and c->threads, from --jobs N (given > 0, as it always was) or
 * from qat_sweep_auto_jobs over the runs there are to train, and put the line
 * that says what was chosen, and why, in c->pick. */
static void choose_jobs(qat_sweep_ctx *c, int given) {
    int cores = cpu_count(), runs = 0, most_threads = 0;
    int64_t largest = 0;
    for (int i = 0; i < c->n_job; i++) {
        const qat_sweep_job *j = &c->job[i];
        if (j->action != A_START && j->action != A_RESUME) continue;
        runs++;
        if (j->n_params > largest) largest = j->n_params;
        int t = j->threads > 0 ? j->threads : cores;
        if (t > most_threads) most_threads = t;
    }
    char why[320];
    if (given > 0) {
        c->jobs = given;
        c->threads = 0;
        if (!c->sw->threads_explicit) {
            int t = cores / given;
            c->threads = t > 1 ? t : 1;
        }
        snprintf(why, sizeof why, "--jobs %d given", given);
    } else {
        int sweep_threads = !c->sw->threads_explicit ? 0 : most_threads > 0 ? most_threads : cores;
        qat_sweep_pick p = qat_sweep_auto_jobs(cores, largest, runs, sweep_threads, &c->jobs, &c->threads);
        char n[32], max[32];
        fmt_count(n, sizeof n, largest);
        fmt_count(max, sizeof max, QAT_SWEEP_SIDE_BY_SIDE_MAX_N);
        switch (p) {
        case QAT_SWEEP_PICK_SIDE_BY_SIDE:
            snprintf(why, sizeof why, "auto: largest model %s parameters ≤ %s, where one-thread runs side by side "
                     "train faster", n, max);
            break;
        case QAT_SWEEP_PICK_ALL_CORES:
            snprintf(why, sizeof why, "auto: largest model %s parameters > %s, where one run on every core trains faster",
                     n, max);
            break;
        case QAT_SWEEP_PICK_ONE_RUN:
            snprintf(why, sizeof why, "auto: a single run to train gets every core");
            break;
        case QAT_SWEEP_PICK_ONE_CORE:
            snprintf(why, sizeof why, "auto: a single core, so one run at a time");
            break;
        case QAT_SWEEP_PICK_SWEEP_THREADS:
            snprintf(why, sizeof why, "auto: the sweep sets threads, at most %d a run, on %d core%s", sweep_threads, cores,
                     cores == 1 ? "" : "s");
            break;
        }
        size_t len = strlen(why);
        snprintf(why + len, sizeof why - len, "; --jobs N to choose");
    }
    if (!runs) {
        /* nothing is launched: "1 at once × N threads" (or "the sweep's threads") would describe no run */
        if (!c->n_job)
            snprintf(c->pick, sizeof c->pick, "qat sweep: 0 runs to train: shard %s holds none of the sweep's %d runs",
                     c->shard_text ? c->shard_text : "-", qat_sweep_run_count(c->sw));
        else
            snprintf(c->pick, sizeof c->pick, "qat sweep: 0 runs to train: nothing to launch (each of the %d run%s is "
                     "completed, kept, invalid or busy)", c->n_job, c->n_job == 1 ? "" : "s");
        return;
    }
    char each[64];
    if (c->threads > 0) snprintf(each, sizeof each, "%d thread%s each", c->threads, c->threads == 1 ? "" : "s");
    else if (most_threads > 0) snprintf(each, sizeof each, "the sweep's threads (at most %d) each", most_threads);
    else snprintf(each, sizeof each, "the sweep's threads each");
    snprintf(c->pick, sizeof c->pick, "qat sweep: %d run%s to train, %d at once × %s (%s)", runs, runs == 1 ? "" : "s",
             c->jobs, each, why);
}

/* `out` is a directory, or a path one can be made at: neither it nor any
 * directory above it exists as something else. A path under a file (out:
 * t/a.txt/sub) is the same mistake as out naming the file, and as `qat train
 * --out` under a file (core/fsutil.c): the user's, exit 2, said before the plan
 * and --dry-run's list rather than by the first launch after them. */
static int check_out(const qat_sweep *sw) {
    char p[sizeof sw->out];
    snprintf(p, sizeof p, "%s", sw->out);
    for (size_t len = strlen(p); len > 0;) {
        struct stat st;
        p[len] = 0;
        if (!stat(p, &st)) {
            if (S_ISDIR(st.st_mode)) return QAT_OK;
            if (!strcmp(p, sw->out))
                return qat_fail(QAT_EINPUT, "%s: out: %s exists and is not a directory; expected a directory for the "
                                "runs (or a path not yet there)", sw->path, sw->out);
            return qat_fail(QAT_EINPUT, "%s: out: %s lies under %s, which exists and is not a directory; expected a "
                            "directory for the runs (or a path not yet there)", sw->path, sw->out, p);
        }
        /* up one level, past repeated slashes */
        while (len > 0 && p[len - 1] != '/') len--;
        while (len > 1 && p[len - 1] == '/') len--;
        if (len == 1 && p[0] == '/') return QAT_OK;
    }
    return QAT_OK;
}

int qat_sweep_main(int argc, char **argv) {
    const char *path = NULL, *shard = NULL, *slurm = NULL;
    int jobs = 0, shards = 0, dry = 0; /* jobs 0: --jobs auto */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { fputs(SWEEP_HELP, stdout); return 0; }
        else if (!strcmp(a, "--jobs") && qat_opt_has_value(argc, argv, i)) {
            if (!strcmp(argv[++i], "auto")) jobs = 0;
            else if (!parse_int(argv[i], 1, 4096, &jobs))
                return qat_report(qat_fail(QAT_EINPUT, "--jobs '%s': expected an integer in [1, 4096] or auto", argv[i]));
        } else if (!strcmp(a, "--shard") && qat_opt_has_value(argc, argv, i)) shard = argv[++i];
        else if (!strcmp(a, "--shards") && qat_opt_has_value(argc, argv, i)) {
            if (!parse_int(argv[++i], 1, QAT_SWEEP_MAX_RUNS, &shards))
                return qat_report(qat_fail(QAT_EINPUT, "--shards '%s': expected a positive integer", argv[i]));
        } else if (!strcmp(a, "--dry-run")) dry = 1;
        else if (!strcmp(a, "--emit-slurm") && qat_opt_has_value(argc, argv, i)) slurm = argv[++i];
        else if (a[0] == '-') {
            fprintf(stderr, "qat sweep: unknown or incomplete option '%s'\n\n%s", a, SWEEP_HELP);
            return 2;
        } else if (!path) path = a;
        else {
            fprintf(stderr, "qat sweep: one sweep file expected, got '%s' and '%s'\n", path, a);
            return 2;
        }
    }
    if (!path) { fprintf(stderr, "qat sweep: missing SWEEP.yaml\n\n%s", SWEEP_HELP); return 2; }
    if (qat_in_check("sweep: SWEEP.yaml", path, "a sweep YAML file") ||
        (slurm && qat_in_check("sweep: --emit-slurm", slurm, "a file name to write the Slurm script to")))
        return qat_report(QAT_EINPUT);
    if (shards && !slurm) return qat_report(qat_fail(QAT_EINPUT, "--shards is only used with --emit-slurm"));
    if (slurm && (shard || dry))
        return qat_report(qat_fail(QAT_EINPUT, "--emit-slurm writes a script for all shards; drop --shard/--dry-run"));
    int sh_i = 0, sh_n = 1;
    if (shard && qat_sweep_parse_shard(shard, &sh_i, &sh_n)) return qat_report(QAT_EINPUT);
    /* A sweep that runs stops cleanly on SIGINT/SIGTERM/SIGHUP from here (core/stop.h),
     * before the file is read and every run planned, which a large sweep takes a
     * while to do: one then starts nothing and reports every run not started
     * (exit 1), where it used to die of the signal. --dry-run and --emit-slurm
     * run nothing and die of them like any other command. */
    if (!dry && !slurm) qat_stop_catch(0);

    qat_sweep *sw = NULL;
    int rc = qat_sweep_load(path, &sw);
    if (rc) return qat_report(rc);
    /* said before anything, --dry-run included: the runs could never go there */
    if ((rc = check_out(sw))) {
        qat_sweep_free(sw);
        return qat_report(rc);
    }

    char self[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) {
        qat_sweep_free(sw);
        return qat_report(qat_fail(QAT_ERUNTIME, "cannot find the qat executable (/proc/self/exe): %s", strerror(errno)));
    }
    self[len] = 0;

    if (slurm) {
        char abs[PATH_MAX], cwd[PATH_MAX], logdir[2 * QAT_PATH_MAX];
        if (!realpath(path, abs) || !getcwd(cwd, sizeof cwd)) {
            rc = qat_fail(QAT_ERUNTIME, "%s: cannot resolve the absolute path: %s", path, strerror(errno));
        } else {
            /* --jobs auto (the default) is not written: each task picks for itself from its own CPUs */
            rc = qat_sweep_write_slurm(sw, slurm, self, abs, cwd, shards, jobs);
            /* Slurm will not create the directory of --output itself; made only once
             * the script is written, so a refused sweep leaves nothing behind. */
            snprintf(logdir, sizeof logdir, "%s/.sweep", sw->out);
            if (!rc) rc = qat_mkdirs(logdir);
        }
        if (!rc) {
            int k = shards > 0 && shards < qat_sweep_run_count(sw) ? shards : qat_sweep_run_count(sw);
            printf("wrote %s: %d runs in %d array tasks", slurm, qat_sweep_run_count(sw), k);
            if (shards > k) printf(" (--shards %d: at most one task per run)", shards);
            printf("; submit with: sbatch ");
            qat_sweep_put_shell_word(stdout, slurm, 0); /* a line a shell takes as it is */
            printf("\n");
        }
        qat_sweep_free(sw);
        return qat_report(rc);
    }

    qat_sweep_ctx c;
    memset(&c, 0, sizeof c);
    c.sw = sw;
    c.qat_bin = self;
    c.tty = isatty(2);
    c.shard_text = shard;
    c.job = qat_xcalloc((size_t)qat_sweep_run_count(sw), sizeof *c.job);
    for (int r = 0; r < qat_sweep_run_count(sw); r++)
        if (qat_sweep_in_shard(r, sh_i, sh_n)) c.job[c.n_job++].run = r;
    for (int i = 0; i < c.n_job; i++) qat_sweep_plan_job(&c, &c.job[i]);
    /* No run of this invocation is valid (a shard's, or every run to start refused
     * for its train.init, which only the plan checks): the file's mistake, exit 2
     * before anything, as a sweep with no valid run is (qat_sweep_load). */
    int n_invalid = 0;
    for (int i = 0; i < c.n_job; i++) n_invalid += c.job[i].action == A_INVALID;
    if (c.n_job && n_invalid == c.n_job) {
        int *runs = qat_xmalloc((size_t)c.n_job * sizeof *runs);
        char **msgs = qat_xmalloc((size_t)c.n_job * sizeof *msgs);
        for (int i = 0; i < c.n_job; i++) runs[i] = c.job[i].run, msgs[i] = c.job[i].reason;
        char what[64];
        snprintf(what, sizeof what, "%s%s", shard ? "shard " : "the sweep", shard ? shard : "");
        rc = qat_sweep_fail_runs(sw, what, runs, msgs, c.n_job);
        free(runs);
        free(msgs);
    }
    if (!rc) choose_jobs(&c, jobs);

    int bad = 0;
    if (rc) {
        qat_report(rc);
    } else if (dry) {
        dry_run(&c);
    } else {
        printf("%s\n", c.pick);
        fflush(stdout); /* before any fork, so no child inherits it unwritten */
        c.start = qat_now_s();
        rc = qat_sweep_execute(&c);
        /* the summary reads every run.h5, which clears the message: keep it */
        char *why = rc ? qat_xstrdup(qat_errmsg()) : NULL;
        bad = summary(&c, rc);
        if (rc) qat_report(qat_fail(rc, "%s", why));
        free(why);
    }
    for (int i = 0; i < c.n_job; i++) free(c.job[i].reason);
    free(c.job);
    qat_sweep_free(sw);
    if (rc) return rc;
    return bad ? 1 : 0;
}

/*
 * sweep/pool.c — the process pool of `qat sweep` (docs/cli.md): launch, claim,
 * finish and execute the runs of a sweep; options, plan and summary are sweep_cli.c.
 *
 * Every run is a child process, `qat train OUT/.sweep/base-HASH.yaml --set ...
 * --out OUT --resume --quiet`, with its stdout and stderr appended to
 * OUT/NAME/train.log. A process per run, rather than threads in this one,
 * because a run that fails (an impossible config, divergence, out of memory, a
 * crash) must take nothing else down, and because each run then is exactly what
 * a person would type to reproduce it. The base is written out once, resolved,
 * so every worker reads what was validated here, in a file named by the hash of
 * its text (write_base), so that another sweep over the same directory cannot
 * swap it for its own between two launches.
 *
 * Idempotent by construction, from what is on disk alone (no sweep state file
 * to get out of step): at the moment a run is launched, not when the sweep
 * starts, its run.h5 `status` decides — completed: skip; diverged: keep
 * (re-running would diverge again, bit for bit); otherwise (running, i.e.
 * interrupted, or failed on an I/O error) a ckpt.h5 means resume, and no
 * checkpoint means start afresh (a stale run.h5 is removed). A run killed with
 * the sweep is thus resumed by the next invocation, and shards of a Slurm array
 * never touch each other's runs.
 *
 * That decision is taken holding the run's writer lock (run.h5.lock, the one
 * the trainer holds while it writes), so two sweeps over one output directory
 * cannot both act on a run: a run whose lock is held is left alone and
 * reported busy, and one the other sweep completed a moment ago is skipped,
 * never restarted (a decision made at the start of a long sweep would be stale
 * by then, and "start" deletes what is there). The lock is released for the
 * worker to take; the worker is always `--resume`, and the trainer decides
 * again under the lock (train/runio.c), so a run that changed hands in that
 * instant is still not overwritten.
 *
 * `--jobs N` runs N children at once with `threads = max(1, cores / N)` each
 * (cores = the CPUs this process may use, capped by SLURM_CPUS_PER_TASK, so a
 * Slurm allocation is respected even where Slurm does not bind tasks to CPUs),
 * unless the base or the grid sets threads itself. Without --jobs (--jobs
 * auto) the split follows the largest model among the runs to train
 * (qat_sweep_auto_jobs): small models train faster as one-thread runs side by
 * side than as one run whose short steps are dominated by OpenMP barriers,
 * large ones faster on every core; the choice and its reason are printed.
 * SIGINT/SIGTERM/SIGHUP are passed on to the children (as SIGTERM), which
 * checkpoint and stop; the sweep then reports them as interrupted. Children get
 * SIGTERM too if the sweep itself dies (SIGKILL). Each child is started with the
 * three blocked, so that one sent before its `qat train` has caught them
 * (core/stop.h: the dynamic loader alone takes milliseconds) waits for it
 * instead of killing it: a hangup reaches the workers directly too, since they
 * share the sweep's process group.
 *
 * run.h5 is read with runlog's reader (SWMR mode, so a log left by SIGKILL
 * opens too).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/error.h"
#include "core/fsutil.h"
#include "core/stop.h"
#include "model/llama.h"
#include "runlog/runlog.h"
#include "sweep/pool.h"
#include "sweep/slurm.h"
#include "train/progress.h"
#include "train/runio.h"
#include "train/sha256.h"
#include "train/trainer.h"

const char *const qat_sweep_action_names[N_ACTIONS] = {"start", "resume", "skip (completed)", "keep (diverged)",
                                                       "invalid", "busy (live)", "keep (damaged)"};
const char *const qat_sweep_state_names[] = {"pending", "running", "completed", "skipped", "FAILED", "DIVERGED",
                                             "interrupted", "busy"};

static int file_exists(const char *path) { return access(path, F_OK) == 0; }

/* ---------------------------------------------------------------- run.h5 */

/* Status and final numbers; a missing or unreadable file leaves status "". */
void qat_sweep_read_run(const char *path, qat_sweep_run_info *ri) {
    memset(ri, 0, sizeof *ri);
    ri->val_loss = ri->tokens = ri->wall_s = NAN;
    if (!file_exists(path)) return;
    qat_runlog_summary *s = qat_xmalloc(sizeof *s);
    int e = qat_runlog_read_final(path, s);
    if (e == QAT_ERUNTIME) {
        /* a checksum did not match: the run's record cannot be trusted, and
         * starting afresh would delete it; it is kept and reported instead */
        snprintf(ri->status, sizeof ri->status, "damaged");
        snprintf(ri->why, sizeof ri->why, "%s", qat_errmsg());
    } else if (!e) {
        snprintf(ri->status, sizeof ri->status, "%s", s->status);
        ri->live = s->live;
        if (s->has_final) {
            ri->val_loss = s->final.val_loss;
            ri->tokens = (double)s->final.tokens;
            ri->wall_s = s->final.wall_s;
        }
    }
    qat_clear_error(); /* a half-written or foreign file just means "start afresh" */
    free(s);
}


void qat_sweep_run_path(const qat_sweep_ctx *c, int run, const char *file, char *buf, size_t n) {
    snprintf(buf, n, "%s/%s/%s", c->sw->out, qat_sweep_run_name(c->sw, run), file);
}

/* The tokens a config trains (qat_train_plan), -1 when it cannot say. */
static double budget(const qat_config *cfg) {
    qat_model_shape shape;
    qat_run_plan plan;
    if (qat_model_shape_from_config(cfg, &shape) ||
        qat_train_plan(cfg, qat_model_count_params(&shape), shape.seq_len, &plan)) {
        qat_clear_error();
        return -1;
    }
    return plan.tokens;
}

/* Whether the completed run in run.h5 `path` was trained under another config
 * than the sweep gives it now (qat_runio_config_changes_run, and the token
 * budget each resolves to: tokens and tokens_per_param spell one budget in two
 * ways); 0 when either config cannot be read (the run is then reported as it
 * is), -1 with *why set when the stored one is damaged (its checksum). */
static int config_changed(const qat_sweep_ctx *c, int run, const char *path, char *why, size_t n) {
    char *yaml = NULL;
    if (qat_runlog_config(path, &yaml) == QAT_ERUNTIME) {
        snprintf(why, n, "%s", qat_errmsg());
        qat_clear_error();
        return -1;
    }
    qat_config *old = qat_xmalloc(sizeof *old), *now = qat_xmalloc(sizeof *now);
    int changed = yaml && !qat_config_load_string(yaml, path, old) && !qat_sweep_run_config(c->sw, run, now) &&
                  (qat_runio_config_changes_run(old, now) || budget(old) != budget(now));
    qat_clear_error();
    free(yaml);
    free(old);
    free(now);
    return changed;
}

/* What to do with a run, from its directory: A_SKIP, A_KEEP_DIVERGED,
 * A_RESUME or A_START. Final only when the caller holds the run's lock.
 * A completed run whose stored config differs from the sweep's in what it
 * trains (a base or grid value edited since, the names unchanged) is not
 * skipped as if it were the new run: it is resumed (*changed = 1), so that
 * `qat train --resume` applies its own rules to it: a larger token budget
 * continues it, any other change is refused with the keys listed (the run
 * then shows as FAILED with that message, its files untouched). */
static int decide(const qat_sweep_ctx *c, int run, int *changed) {
    char path[3 * QAT_PATH_MAX];
    qat_sweep_run_info ri;
    qat_sweep_run_path(c, run, "run.h5", path, sizeof path);
    qat_sweep_read_run(path, &ri);
    *changed = 0;
    if (!strcmp(ri.status, "completed")) {
        char why[1024];
        int ch = config_changed(c, run, path, why, sizeof why);
        if (ch < 0) return A_DAMAGED;
        *changed = ch;
        return *changed ? A_RESUME : A_SKIP;
    }
    if (!strcmp(ri.status, "diverged")) return A_KEEP_DIVERGED;
    if (!strcmp(ri.status, "damaged")) return A_DAMAGED;
    /* resuming needs both halves: the checkpoint and the log it continues */
    qat_sweep_run_path(c, run, "ckpt.h5", path, sizeof path);
    return file_exists(path) && ri.status[0] ? A_RESUME : A_START;
}

/* Plan a run from its config and its directory. */
void qat_sweep_plan_job(qat_sweep_ctx *c, qat_sweep_job *j) {
    char path[3 * QAT_PATH_MAX];
    qat_config *cfg = qat_xmalloc(sizeof *cfg);
    int rc = qat_sweep_run_config(c->sw, j->run, cfg);
    if (!rc) rc = qat_train_validate(cfg);
    if (!rc) {
        qat_model_shape shape;
        qat_run_plan plan;
        if (!qat_model_shape_from_config(cfg, &shape)) {
            j->n_params = qat_model_count_params(&shape);
            if (!qat_train_plan(cfg, j->n_params, shape.seq_len, &plan))
                j->cost = 3.0 * qat_model_flops_per_token(&shape) * plan.tokens;
        }
        j->threads = cfg->threads;
    }
    j->state = S_PENDING;
    if (!rc) {
        /* Only a forecast: every pending run is decided again when it is launched. */
        qat_sweep_run_path(c, j->run, "run.h5", path, sizeof path);
        j->action = qat_runlog_is_live(path) ? A_LIVE : decide(c, j->run, &j->changed);
        /* a run to start reads its train.init checkpoint first thing: one that is
         * not there would fail every such run, so it is said now, by --dry-run too
         * (a run that resumes or is done never reads it again) */
        if (j->action == A_START) rc = qat_sweep_check_init(c->sw, j->run, cfg);
        /* so do its text files: each missing, or one file twice, would fail it in its
         * worker after the plan listed it as "start" */
        if (!rc && j->action == A_START) rc = qat_sweep_check_text(c->sw, j->run, cfg);
    }
    free(cfg);
    if (rc) {
        j->action = A_INVALID;
        j->reason = qat_xstrdup(qat_errmsg());
        j->state = S_FAILED;
    }
}

/* ------------------------------------------------------------- progress */

static void progress(qat_sweep_ctx *c, const char *event, ...) __attribute__((format(printf, 2, 3)));
static void progress(qat_sweep_ctx *c, const char *event, ...) {
    int done = 0, running = 0, failed = 0, queued = 0, stopped = 0;
    double secs = 0, flops = 0, now = qat_now_s() - c->start, ahead = 0;
    for (int i = 0; i < c->n_job; i++) {
        const qat_sweep_job *j = &c->job[i];
        if (j->state == S_RUNNING) running++;
        else if (j->state == S_PENDING) queued++;
        else if (j->state == S_INTERRUPTED) stopped++; /* not done: a later sweep resumes it */
        else done++;
        if (j->state == S_FAILED || j->state == S_DIVERGED) failed++;
        if (j->t1 > 0 && j->state == S_COMPLETED && j->cost > 0) { secs += j->t1 - j->t0; flops += j->cost; }
    }
    /* ETA: runs differ in cost by orders of magnitude (size × tokens), so the
     * rate is FLOPs per worker-second of the runs finished here, applied to
     * the planned FLOPs still ahead, spread over the workers. */
    double eta = NAN;
    if (flops > 0 && secs > 0) {
        double rate = flops / secs;
        for (int i = 0; i < c->n_job; i++) {
            const qat_sweep_job *j = &c->job[i];
            if (j->state == S_PENDING && (j->action == A_START || j->action == A_RESUME)) ahead += j->cost / rate;
            else if (j->state == S_RUNNING) ahead += fmax(0, j->cost / rate - (now - j->t0));
        }
        eta = ahead / c->jobs;
    } else if (!running && !queued) {
        eta = 0;
    }
    char el[32], et[32], line[512];
    qat_format_duration(now, el, sizeof el);
    qat_format_duration(eta, et, sizeof et);
    char intr[48] = "";
    if (stopped) snprintf(intr, sizeof intr, ", %d interrupted", stopped);
    snprintf(line, sizeof line, "sweep%s%s: %d/%d done, %d running, %d failed%s | elapsed %s | ETA %s",
             c->shard_text ? " shard " : "", c->shard_text ? c->shard_text : "", done, c->n_job, running, failed, intr,
             el, et);
    if (c->tty) fputs("\r\033[K", stderr);
    if (event) {
        va_list ap;
        va_start(ap, event);
        vfprintf(stderr, event, ap);
        va_end(ap);
        fputc('\n', stderr);
    }
    if (c->tty) {
        fputs(line, stderr);
        c->live = 1;
    } else if (event) {
        fprintf(stderr, "%s\n", line);
    }
    fflush(stderr);
}

/* ---------------------------------------------------------------- workers */

/* The last few non-empty lines of train.log written by this attempt. */
static char *log_tail(const char *path, int lines) {
    FILE *f = fopen(path, "rb");
    if (!f) return qat_xstrdup("(no train.log)");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    long from = size > 8192 ? size - 8192 : 0;
    fseek(f, from, SEEK_SET);
    char *buf = qat_xcalloc(8193, 1);
    size_t n = fread(buf, 1, 8192, f);
    fclose(f);
    buf[n] = 0;
    /* Only what follows the last header this sweep wrote. */
    char *start = buf, *h;
    while ((h = strstr(start, "== qat sweep")) != NULL) {
        char *nl = strchr(h, '\n');
        if (!nl) break;
        start = nl + 1;
    }
    char *ends[64];
    int k = 0;
    for (char *p = start; *p;) {
        char *nl = strchr(p, '\n');
        char *e = nl ? nl : p + strlen(p);
        int blank = 1;
        for (char *q = p; q < e; q++) blank &= *q == ' ' || *q == '\t' || *q == '\r';
        if (!blank) {
            if (k == 64) { memmove(ends, ends + 1, 63 * sizeof *ends); k--; }
            ends[k++] = p;
        }
        if (!nl) break;
        *nl = 0;
        p = nl + 1;
    }
    char *out = qat_xstrdup("");
    for (int i = k > lines ? k - lines : 0; i < k; i++) {
        char *o = out;
        size_t len = strlen(o) + strlen(ends[i]) + 2;
        out = qat_xmalloc(len);
        snprintf(out, len, "%s%s%s", o, *o ? "\n" : "", ends[i]);
        free(o);
    }
    free(buf);
    if (!*out) {
        free(out);
        out = qat_xstrdup("(train.log is empty)");
    }
    return out;
}

/* Decide, holding the run's lock, what to do with a pending run now: its
 * action, or a final state (S_SKIPPED, S_DIVERGED, S_BUSY) when there is
 * nothing to launch. Returns QAT_OK or a runtime failure (the lock file or a
 * stale file cannot be handled). */
static int claim(qat_sweep_ctx *c, qat_sweep_job *j) {
    const char *name = qat_sweep_run_name(c->sw, j->run);
    char dir[2 * QAT_PATH_MAX], h5[3 * QAT_PATH_MAX];
    snprintf(dir, sizeof dir, "%s/%s", c->sw->out, name);
    QAT_TRY(qat_mkdirs(dir));
    qat_sweep_run_path(c, j->run, "run.h5", h5, sizeof h5);
    int fd, busy, planned = j->action;
    int rc = qat_runlog_lock(h5, &fd, &busy);
    if (rc && busy) {
        free(j->reason);
        size_t len = strlen(qat_errmsg()) + 128;
        j->reason = qat_xmalloc(len);
        snprintf(j->reason, len, "%s; left alone, run the sweep again once it has ended", qat_errmsg());
        qat_clear_error();
        j->state = S_BUSY;
        progress(c, "%s: busy (another process is writing it), left alone", name);
        return QAT_OK;
    }
    if (rc) {
        /* The lock cannot even be created (a read-only file system, a directory
         * that is not ours): a completed or diverged run needs nothing written,
         * so it is still reported as it is; any other is this error. */
        char saved[1024];
        snprintf(saved, sizeof saved, "%s", qat_errmsg());
        int a = decide(c, j->run, &j->changed);
        if (a != A_SKIP && a != A_KEEP_DIVERGED && a != A_DAMAGED) return qat_fail(rc, "%s", saved);
        fd = -1;
        rc = QAT_OK;
        j->action = a;
    } else {
        j->action = decide(c, j->run, &j->changed);
    }
    if (j->action == A_START) {
        /* a run.h5 without a checkpoint (or the reverse) cannot be continued:
         * start clean, as the trainer refuses to overwrite a checkpoint. Under
         * the lock, and only for a run that is not completed. */
        static const char *const stale[] = {"run.h5", "ckpt.h5"};
        for (int i = 0; i < 2 && !rc; i++) {
            qat_sweep_run_path(c, j->run, stale[i], h5, sizeof h5);
            if (unlink(h5) && errno != ENOENT) rc = qat_fail(QAT_ERUNTIME, "%s: cannot remove: %s", h5, strerror(errno));
        }
    }
    qat_runlog_unlock(fd);
    if (rc) return rc;
    if (j->action == A_SKIP) {
        j->state = S_SKIPPED;
        if (planned != A_SKIP) progress(c, "%s: completed meanwhile by another process, skipped", name);
    } else if (j->action == A_KEEP_DIVERGED) {
        j->state = S_DIVERGED;
        free(j->reason);
        j->reason = qat_xstrdup("diverged in an earlier invocation (run.h5 status diverged); delete its directory to retry");
    } else if (j->action == A_DAMAGED) {
        qat_sweep_run_info ri;
        qat_sweep_run_path(c, j->run, "run.h5", h5, sizeof h5);
        qat_sweep_read_run(h5, &ri);
        if (!ri.why[0]) { /* the log reads, its stored config does not (config_changed) */
            char *yaml = NULL;
            if (qat_runlog_config(h5, &yaml)) snprintf(ri.why, sizeof ri.why, "%s", qat_errmsg());
            qat_clear_error();
            free(yaml);
        }
        j->state = S_FAILED;
        free(j->reason);
        size_t len = strlen(ri.why) + 64;
        j->reason = qat_xmalloc(len);
        snprintf(j->reason, len, "%s; kept as it is, delete its directory to retry", ri.why);
        progress(c, "%s: FAILED: %s", qat_sweep_run_name(c->sw, j->run), j->reason);
    }
    return QAT_OK;
}

static int launch(qat_sweep_ctx *c, qat_sweep_job *j) {
    const qat_sweep *sw = c->sw;
    char logp[3 * QAT_PATH_MAX], threads[32];
    qat_sweep_run_path(c, j->run, "train.log", logp, sizeof logp);

    int max = QAT_SWEEP_MAX_SETS(sw);
    const char **sets = qat_xmalloc((size_t)max * sizeof *sets);
    int n_set = qat_sweep_run_sets(sw, j->run, sets, max);
    char **argv = qat_xcalloc((size_t)(2 * n_set + 16), sizeof *argv);
    int a = 0;
    argv[a++] = (char *)c->qat_bin;
    argv[a++] = "train";
    argv[a++] = c->base_yaml;
    for (int i = 0; i < n_set; i++) {
        argv[a++] = "--set";
        argv[a++] = (char *)sets[i];
    }
    if (c->threads > 0) {
        snprintf(threads, sizeof threads, "threads=%d", c->threads);
        argv[a++] = "--set";
        argv[a++] = threads;
    }
    argv[a++] = "--out";
    argv[a++] = (char *)sw->out;
    /* always --resume: the worker decides again under the lock, so a run another
     * process completed since claim() released it is left as it is */
    argv[a++] = "--resume";
    argv[a++] = "--quiet";
    argv[a] = NULL;

    int fd = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
    if (fd < 0) {
        free(argv);
        free(sets);
        return qat_fail(QAT_ERUNTIME, "%s: cannot open: %s", logp, strerror(errno));
    }
    /* A header per attempt, so a log that spans a resume reads in order and the
     * failure reason is taken from this attempt only. */
    time_t now = time(NULL);
    char when[64];
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime(&now));
    /* the command as a shell reads it back (docs/cli.md: the header is the command):
     * a path with a space, a quote or a '$' is one quoted word, as in --emit-slurm */
    char *cmd = NULL;
    size_t cmd_len = 0;
    FILE *m = open_memstream(&cmd, &cmd_len);
    if (m) {
        for (int i = 0; argv[i]; i++) {
            fputc(' ', m);
            qat_sweep_put_shell_word(m, argv[i], 0);
        }
        fclose(m);
    }
    dprintf(fd, "== qat sweep %s: %s:%s\n", when, j->action == A_RESUME ? "resume" : "start", cmd ? cmd : "");
    free(cmd);

    /* blocked from before the fork to the child's own qat_stop_catch, across exec,
     * so that no instant of the child dies of a SIGTERM sent to it or a SIGINT or
     * SIGHUP of the terminal's; the parent gets its mask back at once (a SIGHUP
     * the sweep ignores, under nohup, the child inherits ignored, and keeps so) */
    sigset_t stops, mask;
    sigemptyset(&stops);
    sigaddset(&stops, SIGINT);
    sigaddset(&stops, SIGTERM);
    sigaddset(&stops, SIGHUP);
    sigprocmask(SIG_BLOCK, &stops, &mask);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0) sigprocmask(SIG_SETMASK, &mask, NULL);
    if (pid < 0) {
        close(fd);
        free(argv);
        free(sets);
        return qat_fail(QAT_ERUNTIME, "cannot start a worker: %s", strerror(errno));
    }
    if (pid == 0) {
        /* die with the sweep, and write to train.log only */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) _exit(1);
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0) dup2(nul, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(c->qat_bin, argv);
        dprintf(2, "qat sweep: cannot run %s: %s\n", c->qat_bin, strerror(errno));
        _exit(127);
    }
    close(fd);
    free(argv);
    free(sets);
    j->pid = pid;
    j->state = S_RUNNING;
    j->t0 = qat_now_s() - c->start;
    return QAT_OK;
}

/* A worker ended with wait status `st`: completed, diverged, interrupted or failed. */
static void finish(qat_sweep_ctx *c, qat_sweep_job *j, int st) {
    char h5[3 * QAT_PATH_MAX], logp[3 * QAT_PATH_MAX];
    j->t1 = qat_now_s() - c->start;
    j->pid = 0;
    qat_sweep_run_path(c, j->run, "run.h5", h5, sizeof h5);
    qat_sweep_run_path(c, j->run, "train.log", logp, sizeof logp);
    qat_sweep_run_info ri;
    qat_sweep_read_run(h5, &ri);
    const char *name = qat_sweep_run_name(c->sw, j->run);
    int ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
    if (ok && !strcmp(ri.status, "completed")) {
        j->state = S_COMPLETED;
        progress(c, "%s: completed in %.1f s, val loss %.4f", name, j->t1 - j->t0, ri.val_loss);
        return;
    }
    char how[96];
    if (WIFEXITED(st)) snprintf(how, sizeof how, "exit %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st)) snprintf(how, sizeof how, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
    else snprintf(how, sizeof how, "wait status %d", st);
    char *tail = log_tail(logp, 4);
    size_t len = strlen(tail) + 256 + strlen(logp);
    free(j->reason);
    j->reason = qat_xmalloc(len);
    if (!ok && strstr(tail, "is writing this run")) {
        /* another process took the run in the instant between claim() and the
         * worker's own lock; the worker left it alone */
        j->state = S_BUSY;
        snprintf(j->reason, len, "%s; left alone, run the sweep again once it has ended", tail);
    } else if (!strcmp(ri.status, "diverged")) {
        j->state = S_DIVERGED;
        snprintf(j->reason, len, "diverged (%s; %s):\n%s", how, logp, tail);
    } else if (qat_stop_count()) {
        j->state = S_INTERRUPTED;
        char ck[3 * QAT_PATH_MAX];
        qat_sweep_run_path(c, j->run, "ckpt.h5", ck, sizeof ck);
        snprintf(j->reason, len, "interrupted (%s); the next `qat sweep` %s", how,
                 file_exists(ck) ? "resumes it from its checkpoint"
                                 : "starts it afresh (it stopped before its first checkpoint)");
    } else if (ok) {
        j->state = S_FAILED;
        snprintf(j->reason, len, "exited 0 but run.h5 status is '%s' (%s):\n%s", ri.status, logp, tail);
    } else {
        j->state = S_FAILED;
        snprintf(j->reason, len, "%s (%s):\n%s", how, logp, tail);
    }
    free(tail);
    /* on the progress stream, the last line of the log: usually the error itself */
    const char *last = strrchr(j->reason, '\n');
    progress(c, "%s: %s after %.1f s: %s", name, qat_sweep_state_names[j->state], j->t1 - j->t0, last ? last + 1 : j->reason);
}

/* Write OUT/.sweep/base-HASH.yaml, HASH the first 16 hex digits of the SHA-256
 * of its text, and point c->base_yaml at it. The base every worker of this
 * sweep reads is named by its content: another sweep over the same output
 * directory (another base: another file) can never replace what this one's
 * later workers read, while the shards of one sweep share one file. A file
 * already there with that text is used as it is, written by whichever shard
 * came first; otherwise (absent, or not what its name says) it is written
 * atomically (QAT_OUT_UNIQUE: each writer renames its own complete copy), so
 * a reader sees either nothing or the whole text the name stands for. Only
 * once a run is to be launched: a sweep whose runs are all done writes
 * nothing, so it also works on an output directory that has become read-only.
 *
 * The text depends on nothing but the resolved base and the sweep file's own
 * name, never on how its path was spelled: it once named the path as given,
 * so `qat sweep t/s.yaml` and the Slurm tasks of --emit-slurm (which run
 * `qat sweep /abs/t/s.yaml`) wrote two bases for one sweep, and the file
 * --dry-run named was not the one the tasks' workers read. */
char *qat_sweep_base_text(const qat_sweep *sw, char *path, size_t n) {
    char hex[65];
    char *y = qat_config_to_yaml(&sw->base);
    const char *slash = strrchr(sw->path, '/'), *name = slash ? slash + 1 : sw->path;
    size_t len = strlen(y) + strlen(name) + 128;
    char *text = qat_xmalloc(len);
    /* the name for a reader, one line whatever it holds: the file is YAML */
    char *safe = qat_xstrdup(name);
    for (char *p = safe; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
    snprintf(text, len, "# the base of sweep %s, resolved; each run adds its --set overrides\n%s", safe, y);
    free(safe);
    free(y);
    qat_sha256 h;
    qat_sha256_init(&h);
    qat_sha256_update(&h, text, strlen(text));
    qat_sha256_hex(&h, hex);
    snprintf(path, n, "%s/.sweep/base-%.16s.yaml", sw->out, hex);
    return text;
}

static int write_base(qat_sweep_ctx *c) {
    if (c->base_yaml[0]) return QAT_OK;
    char dir[2 * QAT_PATH_MAX], path[sizeof c->base_yaml];
    char *text = qat_sweep_base_text(c->sw, path, sizeof path);
    size_t len = strlen(text);
    snprintf(dir, sizeof dir, "%s/.sweep", c->sw->out);
    int rc = QAT_OK, same = 0;
    FILE *f = fopen(path, "rb");
    if (f) {
        char *have = qat_xmalloc(len + 1);
        same = fread(have, 1, len + 1, f) == len && !memcmp(have, text, len);
        free(have);
        fclose(f);
    }
    if (!same) {
        qat_out o;
        const char *inputs[2] = {c->sw->path, c->sw->base_path[0] ? c->sw->base_path : NULL};
        rc = qat_mkdirs(dir);
        if (!rc) rc = qat_out_begin(&o, path, QAT_OUT_UNIQUE, inputs, 2);
        if (!rc) {
            fputs(text, qat_out_stream(&o));
            rc = qat_out_commit(&o);
        }
    }
    free(text);
    if (!rc) snprintf(c->base_yaml, sizeof c->base_yaml, "%s", path);
    return rc;
}

/* Run the pending jobs, `jobs` at a time. Returns QAT_OK or a launch failure. */
int qat_sweep_execute(qat_sweep_ctx *c) {
    /* caught already by `qat sweep` before it read the sweep (core/stop.h); a stop
     * that came while it planned launches nothing */
    qat_stop_catch(0);
    int rc = QAT_OK, next = 0, running = 0, forwarded = 0;
    double last_draw = 0;
    /* what will not run is said first, so a long sweep shows it before the wait */
    for (int i = 0; i < c->n_job; i++)
        if (c->job[i].action == A_INVALID)
            fprintf(stderr, "%s: FAILED (invalid config): %s\n", qat_sweep_run_name(c->sw, c->job[i].run),
                    c->job[i].reason);
    progress(c, NULL);
    for (;;) {
        while (!qat_stop_count() && !rc && running < c->jobs && next < c->n_job) {
            qat_sweep_job *j = &c->job[next++];
            if (j->state != S_PENDING) continue;
            /* the base first when the run is expected to train: claim() may
             * remove a stale log, which should not happen for nothing */
            if (j->action == A_START || j->action == A_RESUME) rc = write_base(c);
            if (!rc) rc = claim(c, j);
            if (!rc && j->state == S_PENDING) rc = write_base(c);
            if (!rc && j->state == S_PENDING) rc = launch(c, j);
            if (rc) break;
            if (j->state != S_RUNNING) continue;
            running++;
            progress(c, "%s: %s", qat_sweep_run_name(c->sw, j->run),
                     j->changed ? "completed under another config than the sweep's: resumed, `qat train --resume` decides"
                     : j->action == A_RESUME ? "resumed" : "started");
        }
        int stops = qat_stop_count(); /* read once: a signal may come while this acts on it */
        if (stops && forwarded < stops) {
            /* first signal: let workers checkpoint; a second one: stop them now */
            for (int i = 0; i < c->n_job; i++)
                if (c->job[i].state == S_RUNNING) kill(c->job[i].pid, stops > 1 ? SIGKILL : SIGTERM);
            forwarded = stops;
        }
        for (int i = 0; i < c->n_job; i++) {
            qat_sweep_job *j = &c->job[i];
            if (j->state != S_RUNNING) continue;
            int st;
            pid_t p = waitpid(j->pid, &st, WNOHANG);
            if (p == j->pid) {
                running--;
                finish(c, j, st);
            }
        }
        if (!running && (qat_stop_count() || rc || next >= c->n_job)) break;
        if (c->tty && qat_now_s() - last_draw > 1) {
            progress(c, NULL);
            last_draw = qat_now_s();
        }
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    /* a run left alone because another process was writing it may have been
     * completed by that process by now: then it is done, not busy */
    for (int i = 0; i < c->n_job; i++) {
        qat_sweep_job *j = &c->job[i];
        char h5[3 * QAT_PATH_MAX];
        if (j->state != S_BUSY) continue;
        qat_sweep_run_path(c, j->run, "run.h5", h5, sizeof h5);
        qat_sweep_run_info ri;
        qat_sweep_read_run(h5, &ri);
        if (!ri.live && !strcmp(ri.status, "completed")) {
            j->state = S_SKIPPED;
            progress(c, "%s: completed by the other process", qat_sweep_run_name(c->sw, j->run));
        }
    }
    if (c->live) fputs("\r\033[K", stderr);
    c->live = 0;
    /* Whatever stopped the launches here is a sweep that had to write and could
     * not (a directory under out: replaced by a file since the sweep checked it
     * reads as the user's mistake to qat_mkdirs): exit 1, as docs/cli.md says. */
    if (rc == QAT_EINPUT) rc = qat_fail(QAT_ERUNTIME, "%s", qat_errmsg());
    return rc;
}

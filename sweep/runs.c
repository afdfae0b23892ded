/*
 * sweep/runs.c — the runs of an expanded sweep (expand.c reads the file): each
 * run's name, grid values, seed and `--set` overrides, its full config, the
 * checks made of it before it is launched (train.init and data.text on disk), and
 * the one error of a set of runs none of which is valid.
 *
 * A run's values are not stored: run i is its index read in mixed radix over the
 * axes, the seeds fastest, so the pool, a shard or a dry run can ask for any run
 * in any order. A run's config is the worker's own (the base and the run's overrides,
 * through the loader qat train uses) plus what the worker would refuse only once
 * it builds the model, so an impossible run fails here, before anything starts,
 * and its message names the grid value or repeat behind the "--set" the loader
 * blamed, at the sweep file's LINE:COL.
 */
#include "sweep/runs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "core/error.h"
#include "data/dataset.h"
#include "model/llama.h"
#include "train/trainer.h"

/* Rewrite the loader's "--set k=v: why" as "SWEEP:L:C: why". */
int qat_sweep_move_set_error(const qat_sweep *sw, const char *set, int line, int col) {
    char msg[4096], prefix[1200];
    snprintf(msg, sizeof msg, "%s", qat_errmsg());
    snprintf(prefix, sizeof prefix, "--set %s: ", set);
    const char *why = strncmp(msg, prefix, strlen(prefix)) ? msg : msg + strlen(prefix);
    if (line > 0) return qat_fail(QAT_EINPUT, "%s:%d:%d: %s", sw->path, line, col, why);
    return qat_fail(QAT_EINPUT, "%s: %s", sw->path, why);
}

/* ------------------------------------------------------------------ runs */

int qat_sweep_run_count(const qat_sweep *sw) { return sw->n_runs; }

const char *qat_sweep_run_name(const qat_sweep *sw, int run) {
    QAT_ASSERT(run >= 0 && run < sw->n_runs);
    return sw->names[run];
}

int qat_sweep_run_value(const qat_sweep *sw, int run, int axis) {
    QAT_ASSERT(run >= 0 && run < sw->n_runs && axis >= 0 && axis < sw->n_axes);
    int r = sw->n_seeds ? run / sw->n_seeds : run;
    for (int a = sw->n_axes - 1; a > axis; a--) r /= sw->axes[a].n;
    return r % sw->axes[axis].n;
}

uint64_t qat_sweep_run_seed(const qat_sweep *sw, int run) {
    QAT_ASSERT(run >= 0 && run < sw->n_runs);
    return sw->n_seeds ? sw->seeds[run % sw->n_seeds] : sw->base.seed;
}

int qat_sweep_run_sets(const qat_sweep *sw, int run, const char **sets, int max) {
    QAT_ASSERT(run >= 0 && run < sw->n_runs && max >= QAT_SWEEP_MAX_SETS(sw));
    int n = 0;
    for (int a = 0; a < sw->n_axes; a++) {
        int j = qat_sweep_run_value(sw, run, a);
        sets[n++] = sw->axes[a].set[j];
        if (sw->axes[a].implied[j]) sets[n++] = sw->axes[a].implied[j];
    }
    if (sw->n_seeds) sets[n++] = sw->seed_set[run % sw->n_seeds];
    sets[n++] = sw->name_set[run];
    return n;
}

int qat_sweep_run_config(const qat_sweep *sw, int run, qat_config *cfg) {
    const char **sets = qat_xmalloc((size_t)QAT_SWEEP_MAX_SETS(sw) * sizeof *sets);
    int n = qat_sweep_run_sets(sw, run, sets, QAT_SWEEP_MAX_SETS(sw));
    int rc;
    if (sw->base_node) {
        yaml_document_t *doc = sw->doc;
        rc = qat_config_load_node(sw->doc, (struct yaml_node_s *)yaml_document_get_node(doc, sw->base_node), sw->path,
                                  sets, n, 1, cfg);
    } else {
        rc = qat_config_load_ex(sw->base_path[0] ? sw->base_path : NULL, sets, n, 1, cfg);
    }
    /* source_path names where the config came from: the sweep for an inline base. */
    if (!rc && !sw->base_node)
        snprintf(cfg->source_path, sizeof cfg->source_path, "%s", sw->base_path[0] ? sw->base_path : sw->path);
    if (!rc) {
        /* a run whose directory holds a checkpoint was made already: checks added since
         * refuse new runs only (core/config.h, stored), so an upgrade does not turn a
         * completed run into a failure nor strand an interrupted one */
        char ck[QAT_PATH_MAX * 2 + 16];
        snprintf(ck, sizeof ck, "%s/%s/ckpt.h5", sw->out, qat_sweep_run_name(sw, run));
        if (access(ck, F_OK) == 0) qat_config_mark_stored(cfg);
    }
    if (!rc) {
        /* What the worker would refuse once it builds the model (heads against a
         * preset's width, a Hadamard block against the linears' widths, a token
         * budget against whole steps) is this run's failure now, before anything
         * starts: so a sweep with no possible run is exit 2 and names the value. */
        qat_model_shape shape;
        qat_run_plan plan;
        rc = qat_model_shape_from_config(cfg, &shape);
        if (!rc) rc = qat_model_check(cfg, &shape);
        if (!rc) rc = qat_train_plan(cfg, qat_model_count_params(&shape), shape.seq_len, &plan);
    }
    if (rc) {
        /* Name the grid entry (or repeat) behind a "--set" in the message. */
        const char *msg = qat_errmsg();
        int line = 0, col = 0;
        const char *set = NULL;
        for (int i = 0; i < n && !set; i++) {
            char prefix[1200];
            snprintf(prefix, sizeof prefix, "--set %s: ", sets[i]);
            if (strncmp(msg, prefix, strlen(prefix))) continue;
            set = sets[i];
            for (int a = 0; a < sw->n_axes; a++) {
                int j = qat_sweep_run_value(sw, run, a);
                if (set == sw->axes[a].set[j] || set == sw->axes[a].implied[j]) {
                    line = sw->axes[a].vline[j];
                    col = sw->axes[a].vcol[j];
                }
            }
            if (sw->n_seeds && set == sw->seed_set[run % sw->n_seeds]) {
                line = sw->repeat_line;
                col = sw->repeat_col;
            }
        }
        if (set) rc = qat_sweep_move_set_error(sw, set, line, col);
    }
    free(sets);
    return rc;
}

/* ------------------------------------------------- no possible run */

/* A sweep with no possible run is one mistake of the file or several (each
 * impossible value of the grid): its error names every distinct one, each once
 * with the runs it stops, so that one edit fixes them all (first naming only
 * run 0's hid the others until it was fixed). Repeat seeds and other axes give
 * one error many runs, hence the grouping; past RUN_ERRORS_LISTED distinct
 * errors the rest are counted. */
#define RUN_ERRORS_LISTED 10
#define RUN_ERRORS_NAMED 3 /* run names given with each error */

typedef struct {
    char *msg[RUN_ERRORS_LISTED];                 /* distinct errors, in the order of their first run */
    int runs[RUN_ERRORS_LISTED];                  /* how many runs each stops */
    int named[RUN_ERRORS_LISTED][RUN_ERRORS_NAMED]; /* the first of those runs */
    int n;                                        /* distinct errors kept */
    int others;                                   /* runs stopped by errors past the ones kept */
} run_errors;

static void run_errors_add(run_errors *e, int run, const char *msg) {
    int i = 0;
    while (i < e->n && strcmp(e->msg[i], msg)) i++;
    if (i == e->n) {
        if (e->n == RUN_ERRORS_LISTED) {
            e->others++;
            return;
        }
        e->msg[e->n++] = qat_xstrdup(msg);
    }
    if (e->runs[i] < RUN_ERRORS_NAMED) e->named[i][e->runs[i]] = run;
    e->runs[i]++;
}

/* The runs of error i: " (run a)", " (runs a, b, c)", " (runs a, b, c and 4 more)". */
static void run_errors_names(const qat_sweep *sw, const run_errors *e, int i, char *buf, size_t cap) {
    int shown = e->runs[i] < RUN_ERRORS_NAMED ? e->runs[i] : RUN_ERRORS_NAMED;
    size_t l = (size_t)snprintf(buf, cap, " (run%s ", e->runs[i] > 1 ? "s" : "");
    for (int k = 0; k < shown && l < cap; k++)
        l += (size_t)snprintf(buf + l, cap - l, "%s%s", k ? ", " : "", sw->names[e->named[i][k]]);
    if (l < cap && e->runs[i] > shown) l += (size_t)snprintf(buf + l, cap - l, " and %d more", e->runs[i] - shown);
    if (l < cap) snprintf(buf + l, cap - l, ")");
}

/* The error of a set of `total` runs none of which is valid (every run in e):
 * `what` names the set ("the sweep", "shard 1/4"). */
static void run_errors_report(const qat_sweep *sw, const run_errors *e, const char *what, int total) {
    char names[4 * QAT_NAME_MAX];
    if (total == 1) { /* a set of one run: its error, as qat train would give it, and its name */
        run_errors_names(sw, e, 0, names, sizeof names);
        qat_fail(QAT_EINPUT, "%s%s", e->msg[0], names);
        return;
    }
    /* a line that would not fit the error buffer (core/error.c: 4096 bytes) is
     * counted, not cut: the count at the end must stay readable */
    char buf[4000];
    int others = e->others;
    size_t l = (size_t)snprintf(buf, sizeof buf, "%s: no run of %s is valid; the errors of its %d runs:", sw->path,
                                what, total);
    for (int i = 0; i < e->n; i++) {
        run_errors_names(sw, e, i, names, sizeof names);
        if (l + strlen(e->msg[i]) + strlen(names) + 3 + 64 >= sizeof buf) {
            others += e->runs[i];
            continue;
        }
        l += (size_t)snprintf(buf + l, sizeof buf - l, "\n  %s%s", e->msg[i], names);
    }
    if (others) snprintf(buf + l, sizeof buf - l, "\n  and %d more run%s with other errors", others, others == 1 ? "" : "s");
    qat_fail(QAT_EINPUT, "%s", buf);
}

/* Stops at the first valid run: that is all the file needs to be a sweep, and
 * every run is checked again, one by one, when the pool plans it (pool.c). */
int qat_sweep_check_runs(const qat_sweep *sw) {
    qat_config *cfg = qat_xmalloc(sizeof *cfg);
    run_errors errs;
    memset(&errs, 0, sizeof errs);
    int ok = 0;
    for (int r = 0; r < sw->n_runs && !ok; r++) {
        if (!qat_sweep_run_config(sw, r, cfg)) ok = 1;
        else run_errors_add(&errs, r, qat_errmsg());
    }
    free(cfg);
    if (!ok) run_errors_report(sw, &errs, "the sweep", sw->n_runs);
    for (int i = 0; i < errs.n; i++) free(errs.msg[i]);
    if (!ok) return QAT_EINPUT;
    qat_clear_error();
    return QAT_OK;
}

int qat_sweep_fail_runs(const qat_sweep *sw, const char *what, const int *runs, char *const *msgs, int n) {
    run_errors errs;
    memset(&errs, 0, sizeof errs);
    for (int i = 0; i < n; i++) run_errors_add(&errs, runs[i], msgs[i]);
    run_errors_report(sw, &errs, what, n);
    for (int i = 0; i < errs.n; i++) free(errs.msg[i]);
    return QAT_EINPUT;
}

/* ------------------------------------------------------ before a run starts */

/* Where a run's `key` was given: a grid entry of this run (one key, or the
 * second of a linked pair), else the base, whose position the config kept. */
static void given_at(const qat_sweep *sw, int run, const qat_config *cfg, const char *key, char *pos, size_t n) {
    size_t kl = strlen(key);
    pos[0] = 0;
    for (int a = 0; a < sw->n_axes && !pos[0]; a++) {
        int j = qat_sweep_run_value(sw, run, a);
        const char *v[2] = {sw->axes[a].set[j], sw->axes[a].implied[j]};
        for (int k = 0; k < 2; k++)
            if (v[k] && !strncmp(v[k], key, kl) && v[k][kl] == '=')
                snprintf(pos, n, "%s:%d:%d", sw->path, sw->axes[a].vline[j], sw->axes[a].vcol[j]);
    }
    if (!pos[0]) qat_config_where(cfg, key, pos, n);
}

int qat_sweep_check_init(const qat_sweep *sw, int run, const qat_config *cfg) {
    const char *path = cfg->train.init;
    if (!path[0]) return QAT_OK;
    struct stat st;
    const char *why = NULL;
    if (stat(path, &st) || access(path, R_OK)) why = strerror(errno);
    else if (S_ISDIR(st.st_mode)) why = "is a directory";
    if (!why) return QAT_OK;
    char pos[QAT_PATH_MAX + 96];
    given_at(sw, run, cfg, "train.init", pos, sizeof pos);
    return qat_fail(QAT_EINPUT, "%s: train.init: %s: cannot open: %s; expected the checkpoint (ckpt.h5) the run "
                    "starts from", pos, path, why);
}

int qat_sweep_check_text(const qat_sweep *sw, int run, const qat_config *cfg) {
    const qat_data_cfg *d = &cfg->data;
    if (d->stored || !d->n_text || (d->source[0] && strcmp(d->source, "text"))) return QAT_OK;
    char pos[QAT_PATH_MAX + 96];
    given_at(sw, run, cfg, "data.text", pos, sizeof pos);
    for (int i = 0; i < d->n_text; i++) {
        struct stat st;
        const char *why = NULL;
        if (stat(d->text[i], &st) || access(d->text[i], R_OK)) why = strerror(errno);
        else if (S_ISDIR(st.st_mode)) why = "is a directory";
        if (why)
            return qat_fail(QAT_EINPUT, "%s: data.text: %s: cannot open: %s; expected a text file the run trains on",
                            pos, d->text[i], why);
    }
    return qat_data_text_distinct(d, pos);
}

/*
 * scaling/runs_input.c — runs from HDF5 run logs (docs/files.md) and the dispatch
 * over command-line inputs.
 *
 * A run log counts only when its root attribute `status` is "completed" and
 * /final/val_loss, /final/tokens and the `n_params` attribute are present;
 * anything else (a running, failed or diverged run, a run killed before its
 * final evaluation) is skipped with a warning that names the file and the
 * reason. Attributes may be stored as fixed- or variable-length strings and
 * as integer or float numbers: HDF5 converts on read, so both are accepted.
 */
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>

#include <hdf5.h>

#include "core/error.h"
#include "runlog/runlog.h"
#include "scaling/inputs.h"

static void skip(FILE *warn, int *skipped, const char *path, const char *why) {
    if (warn) fprintf(warn, "qat: warning: %s: skipped: %s\n", path, why);
    if (skipped) (*skipped)++;
}

/* One run log, read through runlog/'s reader (the one definition of the
 * layout): completed runs with a final validation loss become fit points. */
int qat_fit_read_runlog(const char *path, qat_fit_runs *rs, int *skipped, FILE *warn) {
    qat_runlog_summary *sum = qat_xmalloc(sizeof *sum);
    int e = qat_runlog_read_final(path, sum);
    if (e == QAT_ERUNTIME) { /* damaged (a checksum did not match): an error, not a run to skip */
        free(sum);
        return e;
    }
    if (e) {
        char why[600];
        snprintf(why, sizeof why, "not a readable qat run log (%s)", qat_errmsg());
        skip(warn, skipped, path, why);
        free(sum);
        return QAT_OK;
    }
    qat_fit_run r;
    memset(&r, 0, sizeof r);
    r.n_terms = -1;
    snprintf(r.origin, sizeof r.origin, "%s", path);
    char why[160];
    if (strcmp(sum->status, "completed")) {
        snprintf(why, sizeof why, "status is '%s', not 'completed'", sum->status);
        skip(warn, skipped, path, why);
    } else if (!sum->has_final || !(sum->final.val_loss > 0) || !isfinite(sum->final.val_loss))
        skip(warn, skipped, path, "no positive /final/val_loss");
    else if (!(sum->final.tokens > 0))
        skip(warn, skipped, path, "no positive /final/tokens");
    else if (!(sum->n_params > 0))
        skip(warn, skipped, path, "no positive 'n_params' attribute");
    else {
        r.loss = sum->final.val_loss;
        r.D = (double)sum->final.tokens;
        r.N = (double)sum->n_params;
        snprintf(r.wfmt, sizeof r.wfmt, "%s", sum->weight_format[0] ? sum->weight_format : "fp32");
        snprintf(r.afmt, sizeof r.afmt, "%s", sum->act_format[0] ? sum->act_format : "fp32");
        qat_fit_runs_push(rs, &r);
    }
    free(sum);
    return QAT_OK;
}

typedef struct {
    char **v;
    int n, cap;
} strlist;

static void strlist_push(strlist *l, const char *s) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->v = qat_xrealloc(l->v, (size_t)l->cap * sizeof *l->v);
    }
    l->v[l->n++] = qat_xstrdup(s);
}

static void find_runlogs(const char *dir, strlist *out) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        char *p = qat_xmalloc(len);
        snprintf(p, len, "%s/%s", dir, e->d_name);
        struct stat st;
        if (!stat(p, &st)) {
            if (S_ISDIR(st.st_mode)) find_runlogs(p, out);
            else if (S_ISREG(st.st_mode) && !strcmp(e->d_name, "run.h5")) strlist_push(out, p);
        }
        free(p);
    }
    closedir(d);
}

static int str_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int qat_fit_read_inputs(char *const *paths, int n, qat_fit_runs *rs, int *skipped, FILE *warn) {
    for (int i = 0; i < n; i++) {
        struct stat st;
        if (stat(paths[i], &st))
            return qat_fail(QAT_EINPUT, "%s: cannot open: %s", paths[i], strerror(errno));
        if (S_ISDIR(st.st_mode)) {
            strlist l = {0};
            find_runlogs(paths[i], &l);
            if (l.n == 0) return qat_fail(QAT_EINPUT, "%s: no run.h5 below this directory", paths[i]);
            qsort(l.v, (size_t)l.n, sizeof *l.v, str_cmp); /* file order must not depend on readdir */
            int rc = QAT_OK;
            for (int k = 0; k < l.n && !rc; k++) rc = qat_fit_read_runlog(l.v[k], rs, skipped, warn);
            for (int k = 0; k < l.n; k++) free(l.v[k]);
            free(l.v);
            QAT_TRY(rc);
        } else if (H5Fis_hdf5(paths[i]) > 0) {
            QAT_TRY(qat_fit_read_runlog(paths[i], rs, skipped, warn));
        } else {
            QAT_TRY(qat_fit_read_csv(paths[i], rs));
        }
    }
    return QAT_OK;
}

int qat_fit_input_files(char *const *paths, int n, char ***files, int *nf) {
    strlist l = {0};
    for (int i = 0; i < n; i++) {
        struct stat st;
        if (!stat(paths[i], &st) && S_ISDIR(st.st_mode)) find_runlogs(paths[i], &l);
        else strlist_push(&l, paths[i]);
    }
    *files = l.v;
    *nf = l.n;
    return QAT_OK;
}

void qat_fit_drop_highest(qat_fit_runs *rs, int k) {
    for (; k > 0 && rs->n > 0; k--) {
        int worst = 0;
        for (int i = 1; i < rs->n; i++)
            if (rs->run[i].loss > rs->run[worst].loss) worst = i;
        memmove(&rs->run[worst], &rs->run[worst + 1], (size_t)(rs->n - worst - 1) * sizeof *rs->run);
        rs->n--;
    }
}

int qat_fit_exclude(qat_fit_runs *rs, const char *glob) {
    int m = 0, removed = 0;
    for (int i = 0; i < rs->n; i++) {
        const qat_fit_run *r = &rs->run[i];
        char pair[2 * QAT_FIT_FMT_LEN + 2];
        snprintf(pair, sizeof pair, "%s/%s", r->wfmt, r->afmt);
        if (!fnmatch(glob, r->wfmt, 0) || !fnmatch(glob, pair, 0) || !fnmatch(glob, r->origin, 0)) {
            removed++;
            continue;
        }
        rs->run[m++] = *r;
    }
    rs->n = m;
    return removed;
}

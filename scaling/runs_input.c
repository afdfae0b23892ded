/*
 * scaling/runs_input.c — runs from HDF5 run logs (SPEC §4) and the dispatch
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
#include "scaling/inputs.h"

/* 0 ok, -1 missing or unreadable. */
static int attr_string(hid_t loc, const char *name, char *out, size_t cap) {
    if (H5Aexists(loc, name) <= 0) return -1;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0) return -1;
    hid_t ft = H5Aget_type(a);
    int rc = -1;
    if (H5Tget_class(ft) == H5T_STRING) {
        hid_t mt = H5Tcopy(H5T_C_S1);
        if (H5Tis_variable_str(ft) > 0) {
            char *s = NULL;
            H5Tset_size(mt, H5T_VARIABLE);
            if (H5Aread(a, mt, &s) >= 0 && s) {
                snprintf(out, cap, "%s", s);
                H5free_memory(s);
                rc = 0;
            }
        } else {
            size_t n = H5Tget_size(ft);
            char *s = qat_xcalloc(n + 1, 1);
            H5Tset_size(mt, n + 1);
            H5Tset_strpad(mt, H5T_STR_NULLTERM);
            if (H5Aread(a, mt, s) >= 0) { snprintf(out, cap, "%s", s); rc = 0; }
            free(s);
        }
        H5Tclose(mt);
    }
    H5Tclose(ft);
    H5Aclose(a);
    return rc;
}

static int attr_double(hid_t loc, const char *name, double *v) {
    if (H5Aexists(loc, name) <= 0) return -1;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0) return -1;
    hid_t ft = H5Aget_type(a);
    H5T_class_t c = H5Tget_class(ft);
    int rc = (c == H5T_INTEGER || c == H5T_FLOAT) && H5Aread(a, H5T_NATIVE_DOUBLE, v) >= 0 ? 0 : -1;
    H5Tclose(ft);
    H5Aclose(a);
    return rc;
}

static int dataset_double(hid_t f, const char *path, double *v) {
    if (H5Lexists(f, "/final", H5P_DEFAULT) <= 0 || H5Lexists(f, path, H5P_DEFAULT) <= 0) return -1;
    hid_t d = H5Dopen2(f, path, H5P_DEFAULT);
    if (d < 0) return -1;
    hid_t sp = H5Dget_space(d);
    hssize_t npts = H5Sget_simple_extent_npoints(sp);
    int rc = -1;
    if (npts == 1) rc = H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0 ? 0 : -1;
    H5Sclose(sp);
    H5Dclose(d);
    return rc;
}

static void skip(FILE *warn, int *skipped, const char *path, const char *why) {
    if (warn) fprintf(warn, "qat: warning: %s: skipped: %s\n", path, why);
    if (skipped) (*skipped)++;
}

int qat_fit_read_runlog(const char *path, qat_fit_runs *rs, int *skipped, FILE *warn) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* our messages, not HDF5's stack dumps */
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return qat_fail(QAT_EINPUT, "%s: cannot open as an HDF5 run log", path);
    qat_fit_run r;
    memset(&r, 0, sizeof r);
    r.n_terms = -1;
    snprintf(r.origin, sizeof r.origin, "%s", path);
    char status[64] = "";
    char why[160];
    int ok = 0;
    if (attr_string(f, "status", status, sizeof status))
        skip(warn, skipped, path, "no 'status' attribute (not a qat run log, or written by an older qat)");
    else if (strcmp(status, "completed")) {
        snprintf(why, sizeof why, "status is '%s', not 'completed'", status);
        skip(warn, skipped, path, why);
    } else if (dataset_double(f, "/final/val_loss", &r.loss) || !(r.loss > 0) || !isfinite(r.loss))
        skip(warn, skipped, path, "no positive /final/val_loss");
    else if (dataset_double(f, "/final/tokens", &r.D) || !(r.D > 0))
        skip(warn, skipped, path, "no positive /final/tokens");
    else if (attr_double(f, "n_params", &r.N) || !(r.N > 0))
        skip(warn, skipped, path, "no positive 'n_params' attribute");
    else
        ok = 1;
    if (ok) {
        if (attr_string(f, "weight_format", r.wfmt, sizeof r.wfmt) || !r.wfmt[0]) strcpy(r.wfmt, "fp32");
        if (attr_string(f, "act_format", r.afmt, sizeof r.afmt) || !r.afmt[0]) strcpy(r.afmt, "fp32");
        qat_fit_runs_push(rs, &r);
    }
    H5Fclose(f);
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
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
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

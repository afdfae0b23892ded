/*
 * scaling/fit_h5.c — write and read FIT.h5 (layout in fit_h5.h).
 *
 * The root attributes cap_<type>_{L,F,C} are the contract with `qat capacity
 * --fit`; the tables below them carry what the plots draw, so a plot never
 * refits and a figure can be redrawn from the file alone.
 *
 * Written like every qat output (core/fsutil.h: never over an input, through a
 * temporary renamed into place), in the latest HDF5 format with every table
 * checksummed (runlog/h5util.h); the reader reports a damaged table as a
 * checksum mismatch naming it. Strings are fixed-length: a string column is a
 * table like the others (chunked, fletcher32), a string attribute sits in the
 * checksummed object header. Files written before kept them variable-length,
 * in HDF5's global heap, which has no checksum (damaged notes once read back
 * as empty, and a damaged heap crashed HDF5): so every string column carries
 * a `crc32` attribute and every string attribute NAME a NAME_crc32 (zlib's
 * CRC-32), still written and checked, and such files are read after the heap
 * check of h5util.h; a file written before the CRCs is read as it is.
 *
 * Reading tells an absent part (an older file: no /params, no grad_format
 * column) from an unreadable one: absence is decided by the link alone, and a
 * part that exists but cannot be read is damage (exit 1), never a default.
 */
#include "scaling/fit_h5.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>
#include <zlib.h>

#include "core/error.h"
#include "runlog/h5util.h"

/* The file being written and its first failure: the helpers below go on
 * after one (every later call fails fast), and the message keeps the first
 * reason, taken off HDF5's error stack before another call clears it. */
typedef struct {
    const char *path;     /* the destination, for the message */
    int bad;              /* some write failed */
    char what[128];       /* what the first failure was writing */
    char why[256];        /* and why (errno text, checksum, HDF5's words) */
} wctx;

static void failed(wctx *w, const char *what) {
    if (w->bad++) return;
    qat_h5_why(w->why, sizeof w->why);
    snprintf(w->what, sizeof w->what, "%s", what);
}

static void attr_any(wctx *w, hid_t loc, const char *name, hid_t type, const void *v) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, type, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, type, v) < 0) failed(w, name);
    if (a >= 0 && H5Aclose(a) < 0) failed(w, name);
    H5Sclose(sp);
}

static void attr_double(wctx *w, hid_t loc, const char *name, double v) { attr_any(w, loc, name, H5T_NATIVE_DOUBLE, &v); }

static void attr_int(wctx *w, hid_t loc, const char *name, long long v) { attr_any(w, loc, name, H5T_NATIVE_LLONG, &v); }

/* CRC-32 of n strings, each with its terminating NUL (so that where one ends counts). */
static uint32_t strs_crc(const char *const *v, int n) {
    uLong c = crc32_z(0L, Z_NULL, 0);
    for (int i = 0; i < n; i++) {
        const char *x = v[i] ? v[i] : "";
        c = crc32_z(c, (const Bytef *)x, strlen(x) + 1);
    }
    return (uint32_t)c;
}

static void attr_crc(wctx *w, hid_t loc, const char *name, uint32_t c) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, H5T_STD_U32LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, H5T_NATIVE_UINT32, &c) < 0) failed(w, name);
    if (a >= 0 && H5Aclose(a) < 0) failed(w, name);
    H5Sclose(sp);
}

static void attr_str(wctx *w, hid_t loc, const char *name, const char *s) {
    hid_t t = qat_h5_str_type(strlen(s));
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, t, s) < 0) failed(w, name);
    if (a >= 0 && H5Aclose(a) < 0) failed(w, name);
    H5Sclose(sp);
    H5Tclose(t);
    char cn[80];
    snprintf(cn, sizeof cn, "%s_crc32", name);
    attr_crc(w, loc, cn, strs_crc(&s, 1));
}

/* A 1-D table column, checksummed (runlog/h5util.h: chunked with fletcher32,
 * compact when empty). */
static void dset(wctx *w, hid_t g, const char *name, hid_t type, int n, const void *data) {
    hsize_t dims[1] = {(hsize_t)n};
    hid_t sp = H5Screate_simple(1, dims, NULL);
    hid_t dcpl = qat_h5_dcpl(1, dims, H5Tget_size(type));
    hid_t d = H5Dcreate2(g, name, type, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (d < 0 || (n > 0 && H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)) failed(w, name);
    if (d >= 0 && H5Tget_class(type) == H5T_STRING) { /* as the files with heap strings had it */
        const char **v = qat_xmalloc((size_t)(n ? n : 1) * sizeof *v);
        for (int i = 0; i < n; i++) v[i] = (const char *)data + (size_t)i * H5Tget_size(type);
        attr_crc(w, d, "crc32", strs_crc(v, n));
        free(v);
    }
    if (d >= 0 && H5Dclose(d) < 0) failed(w, name);
    H5Pclose(dcpl);
    H5Sclose(sp);
}

/* Strings at a fixed stride (rows of a char[n][w] table), stored fixed-length
 * as wide as the longest. */
static void dset_str(wctx *w, hid_t g, const char *name, int n, const char *base, size_t stride) {
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        size_t k = strnlen(base + (size_t)i * stride, stride - 1);
        if (k > len) len = k;
    }
    char *packed = qat_xcalloc((size_t)(n ? n : 1), len + 1);
    for (int i = 0; i < n; i++) {
        const char *s = base + (size_t)i * stride;
        memcpy(packed + (size_t)i * (len + 1), s, strnlen(s, len));
    }
    hid_t t = qat_h5_str_type(len);
    dset(w, g, name, t, n, packed);
    H5Tclose(t);
    free(packed);
}

static hid_t group(wctx *w, hid_t f, const char *name) {
    hid_t g = H5Gcreate2(f, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) failed(w, name);
    return g;
}

static void write_pairs(wctx *w, hid_t g, const qat_fit_problem *p, const qat_fit_result *r, const qat_fit_cap_point *pt) {
    int n = p->n_pairs;
    double *gm = qat_xmalloc((size_t)(n ? n : 1) * sizeof *gm);
    int *ty = qat_xmalloc((size_t)(n ? n : 1) * sizeof *ty), *pw = qat_xmalloc((size_t)(n ? n : 1) * sizeof *pw);
    for (int k = 0; k < n; k++) { gm[k] = pt[k].gmse; ty[k] = pt[k].type; pw[k] = pt[k].power; }
    dset_str(w, g, "name", n, p->pair[0], sizeof p->pair[0]);
    dset(w, g, "value", H5T_NATIVE_DOUBLE, n, r->pair_rho);
    dset(w, g, "ci_lo", H5T_NATIVE_DOUBLE, n, r->pair_lo);
    dset(w, g, "ci_hi", H5T_NATIVE_DOUBLE, n, r->pair_hi);
    dset(w, g, "cap_gmse", H5T_NATIVE_DOUBLE, n, gm);
    dset(w, g, "cap_type", H5T_NATIVE_INT, n, ty);
    dset(w, g, "cap_power", H5T_NATIVE_INT, n, pw);
    free(gm); free(ty); free(pw);
}

static void law_attrs(wctx *w, hid_t loc, const qat_fit_problem *p, const qat_fit_result *r) {
    for (int k = 0; k < (p->law == QAT_LAW_QUARTET ? 6 : 5); k++) attr_double(w, loc, p->name[k], qat_fit_value(p, r->theta, k));
    attr_double(w, loc, "rmse_log", r->rmse_log);
}

static void write_all(wctx *w, hid_t f, const qat_fit_report *rep) {
    const qat_fit_problem *p = rep->p;
    const qat_fit_result *r = rep->r;
    attr_str(w, f, "law", qat_fit_law_name(p->law));
    attr_str(w, f, "qat_version", QAT_VERSION);
    attr_int(w, f, "n_runs", p->n);
    attr_double(w, f, "loo_rmse_log", r->loo_rmse_log);
    attr_double(w, f, "huber_delta", QAT_FIT_HUBER_DELTA);
    attr_int(w, f, "bootstrap", rep->bootstrap);
    /* the resamples drawn are not all used (a resample that cannot tell an eff is dropped):
     * the interval rests on these, and is NaN below QAT_FIT_MIN_BOOTSTRAP */
    attr_int(w, f, "bootstrap_used", rep->bootstrap ? r->n_boot : 0);
    attr_int(w, f, "seed", (long long)rep->seed);
    law_attrs(w, f, p, r);
    for (int t = 0; t < QAT_CAP_NTYPES; t++)
        if (p->type_off[t] >= 0)
            for (int j = 0; j < 3; j++) {
                char name[32];
                snprintf(name, sizeof name, "cap_%s_%c", qat_fit_type_name(t), "LFC"[j]);
                attr_double(w, f, name, qat_fit_value(p, r->theta, p->type_off[t] + j));
            }
    int np = p->np, n = p->n;

    hid_t g = group(w, f, "params");
    double *v = qat_xmalloc((size_t)(np > n ? np : n) * sizeof *v);
    int *fx = qat_xmalloc((size_t)np * sizeof *fx);
    for (int k = 0; k < np; k++) { v[k] = qat_fit_value(p, r->theta, k); fx[k] = p->fixed[k]; }
    dset_str(w, g, "name", np, p->name[0], sizeof p->name[0]);
    dset(w, g, "value", H5T_NATIVE_DOUBLE, np, v);
    dset(w, g, "ci_lo", H5T_NATIVE_DOUBLE, np, r->lo);
    dset(w, g, "ci_hi", H5T_NATIVE_DOUBLE, np, r->hi);
    dset(w, g, "fixed", H5T_NATIVE_INT, np, fx);
    dset_str(w, g, "fixed_reason", np, p->why[0], sizeof p->why[0]);
    if (g >= 0) H5Gclose(g);
    free(fx);

    g = group(w, f, "runs");
    const qat_fit_run *run = rep->runs->run;
    const double *cols[3] = {&run[0].N, &run[0].D, &run[0].loss};
    const char *cname[3] = {"N", "D", "loss"};
    for (int c = 0; c < 3; c++) {
        for (int i = 0; i < n; i++) v[i] = *(const double *)((const char *)cols[c] + (size_t)i * sizeof *run);
        dset(w, g, cname[c], H5T_NATIVE_DOUBLE, n, v);
    }
    dset(w, g, "pred", H5T_NATIVE_DOUBLE, n, r->pred);
    dset(w, g, "resid", H5T_NATIVE_DOUBLE, n, r->resid);
    dset(w, g, "rho", H5T_NATIVE_DOUBLE, n, r->rho);
    dset_str(w, g, "weight_format", n, run[0].wfmt, sizeof *run);
    dset_str(w, g, "act_format", n, run[0].afmt, sizeof *run);
    {
        char (*gk)[QAT_FIT_FMT_LEN] = qat_xmalloc((size_t)(n ? n : 1) * sizeof *gk);
        for (int i = 0; i < n; i++) snprintf(gk[i], sizeof gk[i], "%s", qat_fit_run_bwd(&run[i]));
        dset_str(w, g, "grad_format", n, gk[0], sizeof gk[0]);
        free(gk);
    }
    dset_str(w, g, "origin", n, run[0].origin, sizeof *run);
    if (g >= 0) H5Gclose(g);
    free(v);

    if (p->law == QAT_LAW_QUARTET) {
        g = group(w, f, "quartet");
        int m = p->n_keys;
        double *e = qat_xmalloc((size_t)6 * (m ? m : 1) * sizeof *e), *col = qat_xmalloc((size_t)(m ? m : 1) * sizeof *col);
        for (int k = 0; k < m; k++) qat_fit_key_effs(p, r, k, e + 6 * k);
        dset_str(w, g, "key", m, p->key[0], sizeof p->key[0]);
        static const char *cn[6] = {"eff_n", "eff_n_lo", "eff_n_hi", "eff_d", "eff_d_lo", "eff_d_hi"};
        for (int c = 0; c < 6; c++) {
            for (int k = 0; k < m; k++) col[k] = e[6 * k + c];
            dset(w, g, cn[c], H5T_NATIVE_DOUBLE, m, col);
        }
        free(e); free(col);
        if (g >= 0) H5Gclose(g);
    }

    g = group(w, f, "pairs");
    write_pairs(w, g, p, r, rep->pt);
    if (g >= 0) H5Gclose(g);
    if (rep->dp) {
        g = group(w, f, "decoupled");
        law_attrs(w, g, rep->dp, rep->dr);
        write_pairs(w, g, rep->dp, rep->dr, rep->dpt);
        if (g >= 0) H5Gclose(g);
    }

    g = group(w, f, "formats");
    int m = rep->n_fmt;
    double *b = qat_xmalloc((size_t)(m ? m : 1) * sizeof *b), *rh = qat_xmalloc((size_t)(m ? m : 1) * sizeof *rh),
           *gm = qat_xmalloc((size_t)(m ? m : 1) * sizeof *gm);
    int *in = qat_xmalloc((size_t)(m ? m : 1) * sizeof *in);
    for (int k = 0; k < m; k++) {
        b[k] = rep->fmt[k].bits; rh[k] = rep->fmt[k].rho; gm[k] = rep->fmt[k].gmse; in[k] = rep->fmt[k].in_data;
    }
    dset_str(w, g, "name", m, m ? rep->fmt[0].name : "", sizeof *rep->fmt);
    dset(w, g, "bits", H5T_NATIVE_DOUBLE, m, b);
    dset(w, g, "rho", H5T_NATIVE_DOUBLE, m, rh);
    dset(w, g, "gmse", H5T_NATIVE_DOUBLE, m, gm);
    dset(w, g, "in_data", H5T_NATIVE_INT, m, in);
    free(b); free(rh); free(gm); free(in);
    if (g >= 0) H5Gclose(g);
}

int qat_fit_h5_write(const char *path, const qat_fit_report *rep, const char *const *inputs, int n_inputs) {
    qat_h5_out h;
    QAT_TRY(qat_h5_out_create(&h, path, QAT_OUT_FIT, inputs, n_inputs));
    wctx w = {.path = path};
    write_all(&w, h.file, rep);
    int rc = w.bad ? qat_fail(QAT_ERUNTIME, "%s: cannot write %s: %s", path, w.what, w.why) : QAT_OK;
    return qat_h5_out_finish(&h, rc);
}

/* ---- reading back ---------------------------------------------------- */

/* Every reader below returns QAT_OK or the first failure with its message:
 * QAT_ERUNTIME for damage (a part that exists but cannot be read, a checksum
 * or CRC that does not match), QAT_EINPUT for a file that is no fit qat wrote. */

static int not_fit(const char *path, const char *what) {
    return qat_fail(QAT_EINPUT, "%s: not a qat fit file (%s)", path, what);
}

/* Number attribute `name` of loc, required or (opt) left alone when absent. */
static int attr_num(hid_t loc, const char *path, const char *name, double *v, int opt, int *found) {
    int e;
    if (found) *found = 0;
    QAT_TRY(qat_h5_attr_exists(loc, path, name, &e));
    if (!e) {
        if (opt) return QAT_OK;
        char what[96];
        snprintf(what, sizeof what, "no attribute %s", name);
        return not_fit(path, what);
    }
    if (found) *found = 1;
    return qat_h5_attr_read(loc, path, name, H5T_NATIVE_DOUBLE, v);
}

/* Is `name` there? The link alone decides; a lookup that fails is damage. */
static int has(hid_t f, const char *path, const char *name, int *yes) { return qat_h5_link_exists(f, path, name, yes); }

/* 1-D table `name`, which must exist: *d open, *n its rows. */
static int open_table(hid_t f, const char *path, const char *name, hid_t *d, int *n) {
    *d = -1;
    *n = 0;
    int e;
    QAT_TRY(has(f, path, name, &e));
    if (!e) {
        char what[96];
        snprintf(what, sizeof what, "no %s", name);
        return not_fit(path, what);
    }
    if ((*d = H5Dopen2(f, name, H5P_DEFAULT)) < 0) return qat_h5_damaged(path, "dataset ", name);
    hid_t sp = H5Dget_space(*d);
    int nd = H5Sget_simple_extent_ndims(sp);
    hssize_t np = H5Sget_simple_extent_npoints(sp);
    H5Sclose(sp);
    if (nd != 1 || np < 0 || np > (1 << 24)) {
        H5Dclose(*d);
        *d = -1;
        return qat_fail(QAT_EINPUT, "%s: %s is not a table of a fit", path, name);
    }
    *n = (int)np;
    return QAT_OK;
}

static int table_len(hid_t f, const char *path, const char *name, int *n) {
    hid_t d;
    QAT_TRY(open_table(f, path, name, &d, n));
    H5Dclose(d);
    return QAT_OK;
}

/* Numbers of table `name` (n rows: another count is no file qat wrote). */
static int read_num(hid_t f, const char *path, const char *name, hid_t type, size_t size, int n, void **out) {
    *out = qat_xcalloc((size_t)(n ? n : 1), size);
    hid_t d;
    int m;
    QAT_TRY(open_table(f, path, name, &d, &m));
    int rc = QAT_OK;
    if (m != n) rc = qat_fail(QAT_EINPUT, "%s: %s has %d rows, expected %d: not a fit qat wrote", path, name, m, n);
    else if (n > 0 && H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) < 0)
        rc = qat_h5_is_checksum() ? qat_h5_damaged(path, "dataset ", name)
                                  : qat_fail(QAT_EINPUT, "%s: %s cannot be read as numbers", path, name);
    H5Dclose(d);
    return rc;
}

/* Strings of table `name` into n rows of `width` bytes; checked against the
 * column's `crc32` when it has one. */
static int read_strs(hid_t f, const char *path, const char *name, int n, size_t width, char **out) {
    *out = qat_xcalloc((size_t)(n ? n : 1), width);
    hid_t d;
    int m, has_crc = 0;
    QAT_TRY(open_table(f, path, name, &d, &m));
    int rc = m != n ? qat_fail(QAT_EINPUT, "%s: %s has %d rows, expected %d: not a fit qat wrote", path, name, m, n)
                    : qat_h5_read_strs(d, path, name, n, width, *out);
    if (!rc) rc = qat_h5_attr_exists(d, path, "crc32", &has_crc);
    if (!rc && has_crc) {
        uint32_t want = 0;
        rc = qat_h5_attr_read(d, path, "crc32", H5T_NATIVE_UINT32, &want);
        const char **v = qat_xmalloc((size_t)(n ? n : 1) * sizeof *v);
        for (int i = 0; i < n; i++) v[i] = *out + (size_t)i * width;
        if (!rc && strs_crc(v, n) != want)
            rc = qat_fail(QAT_ERUNTIME, "%s: dataset %s: checksum mismatch (the file is damaged)", path, name);
        free(v);
    }
    H5Dclose(d);
    return rc;
}

/* String attribute `name` with its NAME_crc32 when present; *out malloc'd,
 * NULL when absent. */
static int attr_str_crc(hid_t f, const char *path, const char *name, char **out) {
    QAT_TRY(qat_h5_attr_get_str(f, path, name, out));
    if (!*out) return QAT_OK;
    char cn[80];
    snprintf(cn, sizeof cn, "%s_crc32", name);
    int e;
    uint32_t want = 0;
    int rc = qat_h5_attr_exists(f, path, cn, &e);
    if (!rc && e) rc = qat_h5_attr_read(f, path, cn, H5T_NATIVE_UINT32, &want);
    if (!rc && e && strs_crc((const char *const *)out, 1) != want)
        rc = qat_fail(QAT_ERUNTIME, "%s: attribute %s: checksum mismatch (the file is damaged)", path, name);
    if (rc) {
        free(*out);
        *out = NULL;
    }
    return rc;
}

/* A table of pairs, absent in a file without it (n = 0). */
static int read_pairs(hid_t f, const char *path, const char *grp, qat_fit_h5_pairs *q) {
    char name[64];
    snprintf(name, sizeof name, "%s/name", grp);
    int e;
    QAT_TRY(has(f, path, name, &e));
    if (!e) return QAT_OK;
    QAT_TRY(table_len(f, path, name, &q->n));
    QAT_TRY(read_strs(f, path, name, q->n, sizeof *q->name, (char **)&q->name));
    const char *dn[4] = {"value", "ci_lo", "ci_hi", "cap_gmse"};
    double **dd[4] = {&q->value, &q->lo, &q->hi, &q->gmse};
    for (int c = 0; c < 4; c++) {
        snprintf(name, sizeof name, "%s/%s", grp, dn[c]);
        QAT_TRY(read_num(f, path, name, H5T_NATIVE_DOUBLE, sizeof(double), q->n, (void **)dd[c]));
    }
    snprintf(name, sizeof name, "%s/cap_type", grp);
    QAT_TRY(read_num(f, path, name, H5T_NATIVE_INT, sizeof(int), q->n, (void **)&q->type));
    snprintf(name, sizeof name, "%s/cap_power", grp);
    return read_num(f, path, name, H5T_NATIVE_INT, sizeof(int), q->n, (void **)&q->power);
}

static void free_pairs(qat_fit_h5_pairs *q) {
    free(q->name); free(q->value); free(q->lo); free(q->hi); free(q->gmse); free(q->type); free(q->power);
}

/* A path that cannot be opened says why, as qat fit does for its inputs
 * (docs/cli.md: a missing input file is exit 2), not "not an HDF5 file". */
static int readable(const char *path) {
    QAT_TRY(qat_h5_in_check(path, "a FIT.h5 from qat fit --out")); /* a FIFO: open() would block */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return qat_fail(QAT_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    int dir = fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
    close(fd);
    /* a directory opens read-only too; "not an HDF5 file" would hide the mix-up
     * of qat fit's RUNS directory with its --out file */
    if (dir) return qat_fail(QAT_EINPUT, "%s: is a directory (expected a FIT.h5 from qat fit --out)", path);
    return QAT_OK;
}

/* Open read-only: a damaged superblock is damage (exit 1), anything else that
 * HDF5 cannot open is no fit (exit 2). */
static int open_fit(const char *path, hid_t *f) {
    qat_h5_quiet();
    QAT_TRY(readable(path));
    *f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (*f < 0) QAT_TRY(qat_h5_open_damage(path)); /* checksum or cut short: exit 1 */
    if (*f < 0 && H5Fis_hdf5(path) <= 0)
        return qat_fail(QAT_EINPUT, "%s: not an HDF5 file (expected a FIT.h5 from qat fit --out)", path);
    if (*f < 0)
        return qat_fail(QAT_EINPUT, "%s: cannot open: HDF5 could not read its superblock (a foreign HDF5 file?)", path);
    return QAT_OK;
}

/* The contract with `qat capacity --fit` (capacity_cli.c): the cap_<type>_L/F/C
 * root attributes the writer above stores, checked strictly — a file that is
 * not a fit, a partial triple or a constant that ran to a bound is refused
 * rather than silently priced with the published constants. */
static int read_capacity(hid_t f, const char *path, qat_cap_params params[QAT_CAP_NTYPES]) {
    /* Any HDF5 file is not a fit: a run log has none of the cap_ attributes, and
     * reading nothing would silently price every format with the published constants. */
    int e;
    QAT_TRY(qat_h5_attr_exists(f, path, "law", &e));
    if (!e) {
        int fin = 0, train = 0, prm = 0, state = 0;
        QAT_TRY(has(f, path, "final", &fin));
        QAT_TRY(has(f, path, "train", &train));
        QAT_TRY(has(f, path, "params", &prm));
        QAT_TRY(has(f, path, "state", &state));
        return qat_fail(QAT_EINPUT, "%s is not a fit file: it has no 'law' attribute%s; expected FIT.h5 written by "
                        "`qat fit RUNS --out FIT.h5`", path,
                        fin || train   ? " (it is a run log, run.h5)"
                        : prm && state ? " (it is a checkpoint, ckpt.h5)"
                                       : "");
    }
    char *law = NULL;
    QAT_TRY(attr_str_crc(f, path, "law", &law));
    int any = 0, rc = QAT_OK; /* some type's constants found */
    for (int t = 0; t < QAT_CAP_NTYPES && !rc; t++) {
        double v[3];
        int found = 0;
        const char *keys = "LFC";
        for (int k = 0; k < 3 && !rc; k++) {
            char name[64];
            int got;
            snprintf(name, sizeof name, "cap_%s_%c", qat_cap_type_name((qat_cap_type)t), keys[k]);
            rc = attr_num(f, path, name, &v[k], 1, &got);
            if (rc == QAT_EINPUT) rc = qat_fail(QAT_EINPUT, "%s: attribute %s is not a number", path, name);
            found |= got << k;
        }
        if (rc) break;
        if (found == 7) {
            /* A fit from before docs/scaling-laws.md rule 5 could store a constant
             * that merely ran toward a bound (F = 9.4e85 made every format ρ = 1). */
            static const double hi[3] = {10.0, 1e3, 1e3};
            for (int k = 0; k < 3 && !rc; k++)
                if (!(v[k] > 0 && v[k] <= hi[k]))
                    rc = qat_fail(QAT_EINPUT, "%s: cap_%s_%c = %g is not a capacity constant a fit can determine "
                                  "(expected 0 < %c <= %g); refit the runs with this qat, which holds or refuses "
                                  "such constants (docs/scaling-laws.md)", path,
                                  qat_cap_type_name((qat_cap_type)t), keys[k], v[k], keys[k], hi[k]);
            if (rc) break;
            params[t].L = v[0];
            params[t].F = v[1];
            params[t].C = v[2];
        } else if (found) {
            rc = qat_fail(QAT_EINPUT, "%s: cap_%s_L/F/C must be present together", path,
                          qat_cap_type_name((qat_cap_type)t));
        }
        any |= found;
    }
    /* A fit without capacity constants (chinchilla, decoupled, quartet, or a
     * unified fit of fp32 runs) would leave every type at the published
     * constants: --fit would print them as if they came from the fit. */
    if (!rc && !any)
        rc = qat_fail(QAT_EINPUT, "%s: --fit needs a capacity law: this %.32s fit has no capacity constants "
                      "(cap_TYPE_L/F/C, stored by a unified fit of runs in compressed formats), so every rho "
                      "would be the published Llama/C4 one; give the FIT.h5 of `qat fit --law unified`, or drop "
                      "--fit for the published constants", path, law && law[0] ? law : "unknown");
    free(law);
    return rc;
}

int qat_fit_h5_read_capacity(const char *path, qat_cap_params params[QAT_CAP_NTYPES]) {
    hid_t f;
    QAT_TRY(open_fit(path, &f));
    int rc = read_capacity(f, path, params);
    H5Fclose(f);
    return rc;
}

/* /params: names and values, and when present which are held and why.
 * Optional columns absent (an older file) leave zeros and empty reasons. */
static int read_params(hid_t f, const char *path, qat_fit_h5 *fr) {
    int e, np = 0;
    QAT_TRY(has(f, path, "/params/name", &e));
    if (e) QAT_TRY(table_len(f, path, "/params/name", &np));
    fr->n_params = np;
    fr->param_value = qat_xcalloc((size_t)(np ? np : 1), sizeof(double));
    fr->param_fixed = qat_xcalloc((size_t)(np ? np : 1), sizeof(int));
    fr->param_why = qat_xcalloc((size_t)(np ? np : 1), sizeof *fr->param_why);
    if (!e) return QAT_OK;
    QAT_TRY(read_strs(f, path, "/params/name", np, sizeof *fr->param, (char **)&fr->param));
    QAT_TRY(has(f, path, "/params/value", &e));
    if (e) {
        free(fr->param_value);
        QAT_TRY(read_num(f, path, "/params/value", H5T_NATIVE_DOUBLE, sizeof(double), np, (void **)&fr->param_value));
    }
    QAT_TRY(has(f, path, "/params/fixed", &e));
    if (e) {
        free(fr->param_fixed);
        QAT_TRY(read_num(f, path, "/params/fixed", H5T_NATIVE_INT, sizeof(int), np, (void **)&fr->param_fixed));
    }
    QAT_TRY(has(f, path, "/params/fixed_reason", &e));
    if (e) {
        free(fr->param_why);
        QAT_TRY(read_strs(f, path, "/params/fixed_reason", np, sizeof *fr->param_why, (char **)&fr->param_why));
    }
    return QAT_OK;
}

/* /runs/grad_format (absent before the quartet law: every run fp32) and,
 * for a quartet fit, each run's effD from /quartet by its W/A/G key. */
static int read_bwd(hid_t f, const char *path, qat_fit_h5 *fr) {
    int n = fr->n_runs, e;
    fr->effd = qat_xmalloc((size_t)(n ? n : 1) * sizeof(double));
    for (int i = 0; i < n; i++) fr->effd[i] = 1.0;
    QAT_TRY(has(f, path, "/runs/grad_format", &e));
    if (e) QAT_TRY(read_strs(f, path, "/runs/grad_format", n, sizeof *fr->gfmt, (char **)&fr->gfmt));
    else {
        fr->gfmt = qat_xcalloc((size_t)(n ? n : 1), sizeof *fr->gfmt);
        for (int i = 0; i < n; i++) snprintf(fr->gfmt[i], sizeof fr->gfmt[i], "fp32");
    }
    int m = 0, ek = 0, ed = 0;
    QAT_TRY(has(f, path, "/quartet/key", &ek));
    QAT_TRY(has(f, path, "/quartet/eff_d", &ed));
    if (ek != ed) return not_fit(path, "/quartet/key without /quartet/eff_d or the other way round");
    if (!ek) return QAT_OK;
    QAT_TRY(table_len(f, path, "/quartet/key", &m));
    char (*key)[QAT_FIT_KEY_LEN] = NULL;
    double *effd = NULL;
    int rc = read_strs(f, path, "/quartet/key", m, sizeof *key, (char **)&key);
    if (!rc) rc = read_num(f, path, "/quartet/eff_d", H5T_NATIVE_DOUBLE, sizeof(double), m, (void **)&effd);
    for (int i = 0; i < n && !rc; i++) {
        char k[QAT_FIT_KEY_LEN];
        snprintf(k, sizeof k, "%s/%s/%s", fr->wfmt[i], fr->afmt[i], fr->gfmt[i][0] ? fr->gfmt[i] : "fp32");
        for (int j = 0; j < m; j++)
            if (!strcmp(key[j], k)) fr->effd[i] = effd[j];
    }
    free(key);
    free(effd);
    return rc;
}

static int read_all(hid_t f, const char *path, qat_fit_h5 *fr) {
    char *law = NULL;
    QAT_TRY(attr_str_crc(f, path, "law", &law));
    if (!law) return not_fit(path, "no attribute law");
    snprintf(fr->law, sizeof fr->law, "%s", law);
    int too_long = strlen(law) >= sizeof fr->law;
    free(law);
    if (too_long) return not_fit(path, "its law attribute names no law");
    double *dst[6] = {&fr->A, &fr->alpha, &fr->B, &fr->beta, &fr->E, &fr->rmse_log};
    const char *an[6] = {"A", "alpha", "B", "beta", "E", "rmse_log"};
    for (int k = 0; k < 6; k++) QAT_TRY(attr_num(f, path, an[k], dst[k], 0, NULL));
    int got;
    fr->gamma = 1.0; /* only the quartet law has one */
    QAT_TRY(attr_num(f, path, "gamma", &fr->gamma, 1, &got));
    for (int t = 0; t < QAT_CAP_NTYPES; t++) {
        char name[32];
        snprintf(name, sizeof name, "cap_%s_L", qat_fit_type_name(t));
        QAT_TRY(attr_num(f, path, name, &fr->cap[t][0], 1, &fr->has_cap[t]));
        for (int j = 1; j < 3 && fr->has_cap[t]; j++) {
            snprintf(name, sizeof name, "cap_%s_%c", qat_fit_type_name(t), "LFC"[j]);
            QAT_TRY(attr_num(f, path, name, &fr->cap[t][j], 0, NULL));
        }
    }
    int n;
    QAT_TRY(table_len(f, path, "/runs/N", &n));
    fr->n_runs = n;
    QAT_TRY(read_num(f, path, "/runs/N", H5T_NATIVE_DOUBLE, sizeof(double), n, (void **)&fr->N));
    QAT_TRY(read_num(f, path, "/runs/D", H5T_NATIVE_DOUBLE, sizeof(double), n, (void **)&fr->D));
    QAT_TRY(read_num(f, path, "/runs/loss", H5T_NATIVE_DOUBLE, sizeof(double), n, (void **)&fr->loss));
    QAT_TRY(read_num(f, path, "/runs/pred", H5T_NATIVE_DOUBLE, sizeof(double), n, (void **)&fr->pred));
    QAT_TRY(read_num(f, path, "/runs/rho", H5T_NATIVE_DOUBLE, sizeof(double), n, (void **)&fr->rho));
    QAT_TRY(read_strs(f, path, "/runs/weight_format", n, sizeof *fr->wfmt, (char **)&fr->wfmt));
    QAT_TRY(read_strs(f, path, "/runs/act_format", n, sizeof *fr->afmt, (char **)&fr->afmt));
    QAT_TRY(read_pairs(f, path, "/pairs", &fr->pairs));
    QAT_TRY(read_pairs(f, path, "/decoupled", &fr->dec));
    int e, m = 0;
    QAT_TRY(has(f, path, "/formats/name", &e));
    if (e) QAT_TRY(table_len(f, path, "/formats/name", &m));
    fr->n_fmt = m;
    if (e) {
        QAT_TRY(read_strs(f, path, "/formats/name", m, sizeof *fr->fmt, (char **)&fr->fmt));
        QAT_TRY(read_num(f, path, "/formats/bits", H5T_NATIVE_DOUBLE, sizeof(double), m, (void **)&fr->fmt_bits));
        QAT_TRY(read_num(f, path, "/formats/rho", H5T_NATIVE_DOUBLE, sizeof(double), m, (void **)&fr->fmt_rho));
        QAT_TRY(read_num(f, path, "/formats/in_data", H5T_NATIVE_INT, sizeof(int), m, (void **)&fr->fmt_in_data));
    } else {
        fr->fmt = qat_xcalloc(1, sizeof *fr->fmt);
        fr->fmt_bits = qat_xcalloc(1, sizeof(double));
        fr->fmt_rho = qat_xcalloc(1, sizeof(double));
        fr->fmt_in_data = qat_xcalloc(1, sizeof(int));
    }
    QAT_TRY(read_params(f, path, fr));
    return read_bwd(f, path, fr);
}

int qat_fit_h5_read(const char *path, qat_fit_h5 *fr) {
    memset(fr, 0, sizeof *fr);
    hid_t f;
    QAT_TRY(open_fit(path, &f));
    int rc = read_all(f, path, fr);
    H5Fclose(f);
    if (rc) qat_fit_h5_free(fr);
    return rc;
}

void qat_fit_h5_free(qat_fit_h5 *f) {
    free(f->N); free(f->D); free(f->loss); free(f->pred); free(f->rho); free(f->wfmt); free(f->afmt);
    free_pairs(&f->pairs); free_pairs(&f->dec);
    free(f->fmt); free(f->fmt_bits); free(f->fmt_rho); free(f->fmt_in_data);
    free(f->param); free(f->param_value); free(f->param_fixed); free(f->param_why);
    free(f->gfmt); free(f->effd);
    memset(f, 0, sizeof *f);
}

double qat_fit_h5_predict(const qat_fit_h5 *f, double N, double D, double rho) {
    return qat_fit_h5_predict_nd(f, N, D, rho, 1.0);
}

double qat_fit_h5_predict_nd(const qat_fit_h5 *f, double N, double D, double effn, double effd) {
    /* gamma 0 is a struct filled by hand without it (the laws other than quartet): 1 */
    const double g = f->gamma > 0 ? f->gamma : 1.0;
    return pow(f->A * pow(N * effn, -f->alpha) + f->B * pow(D * effd, -f->beta), g) + f->E;
}

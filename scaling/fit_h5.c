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
 * checksum mismatch naming it. The characters of variable-length strings live
 * in HDF5's global heap, which has no checksum (damaged notes once read back
 * as empty: the "held" marks silently gone), so every string column carries a
 * `crc32` attribute and every string attribute NAME a NAME_crc32 (zlib's
 * CRC-32, in the checksummed object header), as run.h5's `config` does; a file
 * written before them is read as it is.
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

static hid_t vlen_str_type(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

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
    hid_t t = vlen_str_type();
    attr_any(w, loc, name, t, &s);
    H5Tclose(t);
    char cn[80];
    snprintf(cn, sizeof cn, "%s_crc32", name);
    attr_crc(w, loc, cn, strs_crc(&s, 1));
}

/* A 1-D table column, checksummed (runlog/h5util.h). HDF5 filters cannot
 * take variable-length strings: a string column is compact instead (its heap
 * references then sit in the checksummed object header) while it fits the
 * 64 KiB such a header allows. */
static void dset(wctx *w, hid_t g, const char *name, hid_t type, int n, const void *data) {
    hsize_t dims[1] = {(hsize_t)n};
    int vlen = H5Tis_variable_str(type) > 0;
    hid_t sp = H5Screate_simple(1, dims, NULL);
    hid_t dcpl = !vlen ? qat_h5_dcpl(1, dims, H5Tget_size(type)) : H5Pcreate(H5P_DATASET_CREATE);
    if (vlen && (size_t)n * 16 < 60000) H5Pset_layout(dcpl, H5D_COMPACT);
    hid_t d = H5Dcreate2(g, name, type, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (d < 0 || (n > 0 && H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)) failed(w, name);
    if (d >= 0 && vlen) attr_crc(w, d, "crc32", strs_crc(data, n)); /* the heap's characters */
    if (d >= 0 && H5Dclose(d) < 0) failed(w, name);
    H5Pclose(dcpl);
    H5Sclose(sp);
}

/* Strings at a fixed stride (rows of a char[n][w] table). */
static void dset_str(wctx *w, hid_t g, const char *name, int n, const char *base, size_t stride) {
    const char **v = qat_xmalloc((size_t)(n ? n : 1) * sizeof *v);
    for (int i = 0; i < n; i++) v[i] = base + (size_t)i * stride;
    hid_t t = vlen_str_type();
    dset(w, g, name, t, n, v);
    H5Tclose(t);
    free(v);
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

/* The first dataset whose checksum did not match in this read ("" if none):
 * a damaged file is a runtime error naming it, not "not a fit file". */
static _Thread_local char g_damaged[128];

static void note_damage(const char *path) {
    if (!g_damaged[0] && qat_h5_is_checksum()) snprintf(g_damaged, sizeof g_damaged, "%s", path);
}

static int read_attr_u32(hid_t loc, const char *name, uint32_t *v) {
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0) return -1;
    int rc = H5Aread(a, H5T_NATIVE_UINT32, v) < 0 ? -1 : 0;
    H5Aclose(a);
    return rc;
}

static int read_attr_double(hid_t loc, const char *name, double *v) {
    if (H5Aexists(loc, name) <= 0) return -1;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    int rc = H5Aread(a, H5T_NATIVE_DOUBLE, v) < 0 ? -1 : 0;
    H5Aclose(a);
    return rc;
}

/* Length of a 1-D dataset, -1 if absent. */
static int dset_len(hid_t f, const char *path) {
    if (H5Lexists(f, path, H5P_DEFAULT) <= 0) return -1;
    hid_t d = H5Dopen2(f, path, H5P_DEFAULT);
    if (d < 0) return -1;
    hid_t sp = H5Dget_space(d);
    int n = (int)H5Sget_simple_extent_npoints(sp);
    H5Sclose(sp);
    H5Dclose(d);
    return n;
}

static int read_dset(hid_t f, const char *path, hid_t type, size_t size, int n, void **out) {
    *out = qat_xcalloc((size_t)(n ? n : 1), size);
    if (n == 0) return 0;
    hid_t d = H5Dopen2(f, path, H5P_DEFAULT);
    if (d < 0) return note_damage(path), -1;
    int rc = H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) < 0 ? -1 : 0;
    if (rc) note_damage(path);
    H5Dclose(d);
    return rc;
}

static int read_strs(hid_t f, const char *path, int n, size_t width, char **out) {
    *out = qat_xcalloc((size_t)(n ? n : 1), width);
    if (n == 0) return 0;
    hid_t d = H5Dopen2(f, path, H5P_DEFAULT);
    if (d < 0) return note_damage(path), -1;
    char **v = qat_xcalloc((size_t)n, sizeof *v);
    hid_t t = vlen_str_type();
    int read = H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0, rc = read ? 0 : -1;
    /* the strings' own CRC (absent in files from before it): a mismatch, or
     * a heap too damaged to read, is damage named like a table's checksum */
    uint32_t want = 0;
    int has_crc = H5Aexists(d, "crc32") > 0 && read_attr_u32(d, "crc32", &want) == 0;
    if (!read) note_damage(path);
    if (read && has_crc && strs_crc((const char *const *)v, n) != want) rc = -1;
    if (rc && has_crc && !g_damaged[0]) snprintf(g_damaged, sizeof g_damaged, "%s", path);
    if (read) {
        for (int i = 0; i < n; i++) snprintf(*out + (size_t)i * width, width, "%s", v[i] ? v[i] : "");
        hid_t sp = H5Dget_space(d);
        H5Dvlen_reclaim(t, sp, H5P_DEFAULT, v);
        H5Sclose(sp);
    }
    free(v);
    H5Tclose(t);
    H5Dclose(d);
    return rc;
}

static int read_pairs(hid_t f, const char *grp, qat_fit_h5_pairs *q) {
    char path[64];
    snprintf(path, sizeof path, "%s/name", grp);
    q->n = dset_len(f, path);
    if (q->n < 0) { q->n = 0; return 0; }
    int rc = read_strs(f, path, q->n, sizeof *q->name, (char **)&q->name);
    const char *dn[4] = {"value", "ci_lo", "ci_hi", "cap_gmse"};
    double **dd[4] = {&q->value, &q->lo, &q->hi, &q->gmse};
    for (int c = 0; c < 4; c++) {
        snprintf(path, sizeof path, "%s/%s", grp, dn[c]);
        rc |= read_dset(f, path, H5T_NATIVE_DOUBLE, sizeof(double), q->n, (void **)dd[c]);
    }
    snprintf(path, sizeof path, "%s/cap_type", grp);
    rc |= read_dset(f, path, H5T_NATIVE_INT, sizeof(int), q->n, (void **)&q->type);
    snprintf(path, sizeof path, "%s/cap_power", grp);
    rc |= read_dset(f, path, H5T_NATIVE_INT, sizeof(int), q->n, (void **)&q->power);
    return rc;
}

static void free_pairs(qat_fit_h5_pairs *q) {
    free(q->name); free(q->value); free(q->lo); free(q->hi); free(q->gmse); free(q->type); free(q->power);
}

/* The contract with `qat capacity --fit` (capacity_cli.c): the cap_<type>_L/F/C
 * root attributes the writer above stores, checked strictly — a file that is
 * not a fit, a partial triple or a constant that ran to a bound is refused
 * rather than silently priced with the published constants. */
/* A path that cannot be opened says why, as qat fit does for its inputs
 * (docs/cli.md: a missing input file is exit 2), not "not an HDF5 file". */
static int readable(const char *path) {
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

int qat_fit_h5_read_capacity(const char *path, qat_cap_params params[QAT_CAP_NTYPES]) {
    QAT_TRY(readable(path));
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* our own messages, not HDF5's stack dump */
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return qat_fail(QAT_EINPUT, "%s: not an HDF5 file (expected a FIT.h5 from qat fit --out)", path);
    /* Any HDF5 file is not a fit: a run log has none of the cap_ attributes, and
     * reading nothing would silently price every format with the published constants. */
    if (H5Aexists(f, "law") <= 0) {
        int runlog = H5Lexists(f, "final", H5P_DEFAULT) > 0 || H5Lexists(f, "train", H5P_DEFAULT) > 0;
        int ckpt = H5Lexists(f, "params", H5P_DEFAULT) > 0 && H5Lexists(f, "state", H5P_DEFAULT) > 0;
        H5Fclose(f);
        return qat_fail(QAT_EINPUT, "%s is not a fit file: it has no 'law' attribute%s; expected FIT.h5 written by "
                        "`qat fit RUNS --out FIT.h5`", path,
                        runlog ? " (it is a run log, run.h5)" : ckpt ? " (it is a checkpoint, ckpt.h5)" : "");
    }
    int any = 0; /* some type's constants found */
    for (int t = 0; t < QAT_CAP_NTYPES; t++) {
        double v[3];
        int found = 0;
        const char *keys = "LFC";
        for (int k = 0; k < 3; k++) {
            char name[64];
            snprintf(name, sizeof name, "cap_%s_%c", qat_cap_type_name((qat_cap_type)t), keys[k]);
            if (H5Aexists(f, name) <= 0) continue;
            hid_t a = H5Aopen(f, name, H5P_DEFAULT);
            herr_t rc = a >= 0 ? H5Aread(a, H5T_NATIVE_DOUBLE, &v[k]) : -1;
            if (a >= 0) H5Aclose(a);
            if (rc < 0) {
                H5Fclose(f);
                return qat_fail(QAT_EINPUT, "%s: attribute %s is not a number", path, name);
            }
            found |= 1 << k;
        }
        if (found == 7) {
            /* A fit from before docs/scaling-laws.md rule 5 could store a constant
             * that merely ran toward a bound (F = 9.4e85 made every format ρ = 1). */
            static const double hi[3] = {10.0, 1e3, 1e3};
            for (int k = 0; k < 3; k++)
                if (!(v[k] > 0 && v[k] <= hi[k])) {
                    H5Fclose(f);
                    return qat_fail(QAT_EINPUT, "%s: cap_%s_%c = %g is not a capacity constant a fit can determine "
                                    "(expected 0 < %c <= %g); refit the runs with this qat, which holds or refuses "
                                    "such constants (docs/scaling-laws.md)", path,
                                    qat_cap_type_name((qat_cap_type)t), keys[k], v[k], keys[k], hi[k]);
                }
            params[t].L = v[0];
            params[t].F = v[1];
            params[t].C = v[2];
        } else if (found) {
            H5Fclose(f);
            return qat_fail(QAT_EINPUT, "%s: cap_%s_L/F/C must be present together", path, qat_cap_type_name((qat_cap_type)t));
        }
        any |= found;
    }
    /* A fit without capacity constants (chinchilla, decoupled, quartet, or a
     * unified fit of fp32 runs) would leave every type at the published
     * constants: --fit would print them as if they came from the fit. */
    if (!any) {
        char law[32] = "";
        hid_t a = H5Aopen(f, "law", H5P_DEFAULT), t = a >= 0 ? H5Aget_type(a) : -1; /* its own cset */
        char *s = NULL;
        if (t >= 0 && H5Tis_variable_str(t) > 0 && H5Aread(a, t, &s) >= 0 && s) snprintf(law, sizeof law, "%s", s);
        if (s) H5free_memory(s);
        if (t >= 0) H5Tclose(t);
        if (a >= 0) H5Aclose(a);
        H5Fclose(f);
        return qat_fail(QAT_EINPUT, "%s: --fit needs a capacity law: this %s fit has no capacity constants "
                        "(cap_TYPE_L/F/C, stored by a unified fit of runs in compressed formats), so every rho "
                        "would be the published Llama/C4 one; give the FIT.h5 of `qat fit --law unified`, or drop "
                        "--fit for the published constants", path, law[0] ? law : "unknown");
    }
    H5Fclose(f);
    return QAT_OK;
}

/* /params: names and values, and when present which are held and why.
 * Optional columns absent (an older file) leave zeros and empty reasons. */
static int read_params(hid_t f, qat_fit_h5 *fr) {
    int np = dset_len(f, "/params/name"), rc = 0;
    if (np < 0) np = 0;
    fr->n_params = np;
    rc |= read_strs(f, "/params/name", np, sizeof *fr->param, (char **)&fr->param);
    rc |= dset_len(f, "/params/value") == np
              ? read_dset(f, "/params/value", H5T_NATIVE_DOUBLE, sizeof(double), np, (void **)&fr->param_value)
              : (fr->param_value = qat_xcalloc((size_t)(np ? np : 1), sizeof(double)), 0);
    rc |= dset_len(f, "/params/fixed") == np
              ? read_dset(f, "/params/fixed", H5T_NATIVE_INT, sizeof(int), np, (void **)&fr->param_fixed)
              : (fr->param_fixed = qat_xcalloc((size_t)(np ? np : 1), sizeof(int)), 0);
    rc |= dset_len(f, "/params/fixed_reason") == np
              ? read_strs(f, "/params/fixed_reason", np, sizeof *fr->param_why, (char **)&fr->param_why)
              : (fr->param_why = qat_xcalloc((size_t)(np ? np : 1), sizeof *fr->param_why), 0);
    return rc;
}

/* /runs/grad_format (absent before the quartet law: every run fp32) and,
 * for a quartet fit, each run's effD from /quartet by its W/A/G key. */
static int read_bwd(hid_t f, qat_fit_h5 *fr) {
    int n = fr->n_runs, rc = 0;
    fr->effd = qat_xmalloc((size_t)(n ? n : 1) * sizeof(double));
    for (int i = 0; i < n; i++) fr->effd[i] = 1.0;
    if (dset_len(f, "/runs/grad_format") == n) rc |= read_strs(f, "/runs/grad_format", n, sizeof *fr->gfmt, (char **)&fr->gfmt);
    else {
        fr->gfmt = qat_xcalloc((size_t)(n ? n : 1), sizeof *fr->gfmt);
        for (int i = 0; i < n; i++) snprintf(fr->gfmt[i], sizeof fr->gfmt[i], "fp32");
    }
    int m = dset_len(f, "/quartet/key");
    if (rc || m <= 0 || dset_len(f, "/quartet/eff_d") != m) return rc;
    char (*key)[QAT_FIT_KEY_LEN] = NULL;
    double *effd = NULL;
    rc |= read_strs(f, "/quartet/key", m, sizeof *key, (char **)&key);
    rc |= read_dset(f, "/quartet/eff_d", H5T_NATIVE_DOUBLE, sizeof(double), m, (void **)&effd);
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

int qat_fit_h5_read(const char *path, qat_fit_h5 *fr) {
    qat_h5_quiet();
    memset(fr, 0, sizeof *fr);
    g_damaged[0] = 0;
    QAT_TRY(readable(path));
    if (H5Fis_hdf5(path) <= 0) return qat_fail(QAT_EINPUT, "%s: not an HDF5 file (expected a FIT.h5 from qat fit --out)", path);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0 && qat_h5_is_checksum())
        return qat_fail(QAT_ERUNTIME, "%s: checksum mismatch in the file's metadata (the file is damaged)", path);
    if (f < 0)
        return qat_fail(QAT_EINPUT, "%s: cannot open: HDF5 could not read its superblock (a truncated or foreign "
                        "HDF5 file)", path);
    int rc = 0;
    {
        hid_t a = H5Aexists(f, "law") > 0 ? H5Aopen(f, "law", H5P_DEFAULT) : -1;
        char *s = NULL;
        hid_t t = vlen_str_type();
        if (a < 0 || H5Aread(a, t, &s) < 0 || !s) rc = -1;
        else {
            uint32_t want;
            if (H5Aexists(f, "law_crc32") > 0 && read_attr_u32(f, "law_crc32", &want) == 0 &&
                strs_crc((const char *const *)&s, 1) != want) {
                H5free_memory(s);
                H5Aclose(a);
                H5Tclose(t);
                H5Fclose(f);
                return qat_fail(QAT_ERUNTIME, "%s: attribute law: checksum mismatch (the file is damaged)", path);
            }
            snprintf(fr->law, sizeof fr->law, "%s", s);
            H5free_memory(s);
        }
        if (a >= 0) H5Aclose(a);
        H5Tclose(t);
    }
    double *dst[6] = {&fr->A, &fr->alpha, &fr->B, &fr->beta, &fr->E, &fr->rmse_log};
    const char *an[6] = {"A", "alpha", "B", "beta", "E", "rmse_log"};
    for (int k = 0; k < 6 && !rc; k++) rc = read_attr_double(f, an[k], dst[k]);
    if (!rc && read_attr_double(f, "gamma", &fr->gamma)) fr->gamma = 1.0; /* only the quartet law has one */
    for (int t = 0; t < QAT_CAP_NTYPES && !rc; t++) {
        char name[32];
        snprintf(name, sizeof name, "cap_%s_L", qat_fit_type_name(t));
        if (read_attr_double(f, name, &fr->cap[t][0])) continue;
        fr->has_cap[t] = 1;
        for (int j = 1; j < 3 && !rc; j++) {
            snprintf(name, sizeof name, "cap_%s_%c", qat_fit_type_name(t), "LFC"[j]);
            rc = read_attr_double(f, name, &fr->cap[t][j]);
        }
    }
    int n = rc ? -1 : dset_len(f, "/runs/N");
    if (n < 0) rc = -1;
    if (!rc) {
        fr->n_runs = n;
        rc |= read_dset(f, "/runs/N", H5T_NATIVE_DOUBLE, sizeof(double), n, (void **)&fr->N);
        rc |= read_dset(f, "/runs/D", H5T_NATIVE_DOUBLE, sizeof(double), n, (void **)&fr->D);
        rc |= read_dset(f, "/runs/loss", H5T_NATIVE_DOUBLE, sizeof(double), n, (void **)&fr->loss);
        rc |= read_dset(f, "/runs/pred", H5T_NATIVE_DOUBLE, sizeof(double), n, (void **)&fr->pred);
        rc |= read_dset(f, "/runs/rho", H5T_NATIVE_DOUBLE, sizeof(double), n, (void **)&fr->rho);
        rc |= read_strs(f, "/runs/weight_format", n, sizeof *fr->wfmt, (char **)&fr->wfmt);
        rc |= read_strs(f, "/runs/act_format", n, sizeof *fr->afmt, (char **)&fr->afmt);
        rc |= read_pairs(f, "/pairs", &fr->pairs);
        rc |= read_pairs(f, "/decoupled", &fr->dec);
        int m = dset_len(f, "/formats/name");
        if (m < 0) m = 0;
        fr->n_fmt = m;
        rc |= read_strs(f, "/formats/name", m, sizeof *fr->fmt, (char **)&fr->fmt);
        rc |= read_dset(f, "/formats/bits", H5T_NATIVE_DOUBLE, sizeof(double), m, (void **)&fr->fmt_bits);
        rc |= read_dset(f, "/formats/rho", H5T_NATIVE_DOUBLE, sizeof(double), m, (void **)&fr->fmt_rho);
        rc |= read_dset(f, "/formats/in_data", H5T_NATIVE_INT, sizeof(int), m, (void **)&fr->fmt_in_data);
        rc |= read_params(f, fr);
        rc |= read_bwd(f, fr);
    }
    H5Fclose(f);
    if (rc && g_damaged[0]) {
        qat_fit_h5_free(fr);
        return qat_fail(QAT_ERUNTIME, "%s: dataset %s: checksum mismatch (the file is damaged)", path, g_damaged);
    }
    if (rc) {
        qat_fit_h5_free(fr);
        return qat_fail(QAT_EINPUT, "%s: not a qat fit file (missing or unreadable law attributes or /runs)", path);
    }
    return QAT_OK;
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

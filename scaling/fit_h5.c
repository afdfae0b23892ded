/*
 * scaling/fit_h5.c — write and read FIT.h5 (layout in fit_h5.h).
 *
 * The root attributes cap_<type>_{L,F,C} are the contract with `qat capacity
 * --fit`; the tables below them carry what the plots draw, so a plot never
 * refits and a figure can be redrawn from the file alone.
 */
#include "scaling/fit_h5.h"

#include <math.h>
#include <string.h>

#include <hdf5.h>

#include "core/error.h"

static void attr_double(hid_t loc, const char *name, double v) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, H5T_NATIVE_DOUBLE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_DOUBLE, &v);
    H5Aclose(a);
    H5Sclose(sp);
}

static void attr_int(hid_t loc, const char *name, long long v) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, H5T_NATIVE_LLONG, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_LLONG, &v);
    H5Aclose(a);
    H5Sclose(sp);
}

static hid_t vlen_str_type(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

static void attr_str(hid_t loc, const char *name, const char *s) {
    hid_t t = vlen_str_type();
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, &s);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
}

static int dset(hid_t g, const char *name, hid_t type, int n, const void *data) {
    hsize_t dims[1] = {(hsize_t)n};
    hid_t sp = H5Screate_simple(1, dims, NULL);
    hid_t d = H5Dcreate2(g, name, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int rc = d < 0 || (n > 0 && H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0);
    if (d >= 0) H5Dclose(d);
    H5Sclose(sp);
    return rc;
}

/* Strings at a fixed stride (rows of a char[n][w] table). */
static int dset_str(hid_t g, const char *name, int n, const char *base, size_t stride) {
    const char **v = qat_xmalloc((size_t)(n ? n : 1) * sizeof *v);
    for (int i = 0; i < n; i++) v[i] = base + (size_t)i * stride;
    hid_t t = vlen_str_type();
    int rc = dset(g, name, t, n, v);
    H5Tclose(t);
    free(v);
    return rc;
}

static int write_pairs(hid_t g, const qat_fit_problem *p, const qat_fit_result *r, const qat_fit_cap_point *pt) {
    int n = p->n_pairs, rc = 0;
    double *gm = qat_xmalloc((size_t)n * sizeof *gm);
    int *ty = qat_xmalloc((size_t)n * sizeof *ty), *pw = qat_xmalloc((size_t)n * sizeof *pw);
    for (int k = 0; k < n; k++) { gm[k] = pt[k].gmse; ty[k] = pt[k].type; pw[k] = pt[k].power; }
    rc |= dset_str(g, "name", n, p->pair[0], sizeof p->pair[0]);
    rc |= dset(g, "value", H5T_NATIVE_DOUBLE, n, r->pair_rho);
    rc |= dset(g, "ci_lo", H5T_NATIVE_DOUBLE, n, r->pair_lo);
    rc |= dset(g, "ci_hi", H5T_NATIVE_DOUBLE, n, r->pair_hi);
    rc |= dset(g, "cap_gmse", H5T_NATIVE_DOUBLE, n, gm);
    rc |= dset(g, "cap_type", H5T_NATIVE_INT, n, ty);
    rc |= dset(g, "cap_power", H5T_NATIVE_INT, n, pw);
    free(gm); free(ty); free(pw);
    return rc;
}

static void law_attrs(hid_t loc, const qat_fit_problem *p, const qat_fit_result *r) {
    for (int k = 0; k < 5; k++) attr_double(loc, p->name[k], qat_fit_value(p, r->theta, k));
    attr_double(loc, "rmse_log", r->rmse_log);
}

int qat_fit_h5_write(const char *path, const qat_fit_report *rep) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    const qat_fit_problem *p = rep->p;
    const qat_fit_result *r = rep->r;
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) return qat_fail(QAT_EINPUT, "%s: cannot create the fit file", path);
    attr_str(f, "law", qat_fit_law_name(p->law));
    attr_str(f, "qat_version", QAT_VERSION);
    attr_int(f, "n_runs", p->n);
    attr_double(f, "loo_rmse_log", r->loo_rmse_log);
    attr_double(f, "huber_delta", QAT_FIT_HUBER_DELTA);
    attr_int(f, "bootstrap", rep->bootstrap);
    attr_int(f, "seed", (long long)rep->seed);
    law_attrs(f, p, r);
    for (int t = 0; t < QAT_CAP_NTYPES; t++)
        if (p->type_off[t] >= 0)
            for (int j = 0; j < 3; j++) {
                char name[32];
                snprintf(name, sizeof name, "cap_%s_%c", qat_fit_type_name(t), "LFC"[j]);
                attr_double(f, name, qat_fit_value(p, r->theta, p->type_off[t] + j));
            }
    int rc = 0, np = p->np, n = p->n;

    hid_t g = H5Gcreate2(f, "params", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    double *v = qat_xmalloc((size_t)(np > n ? np : n) * sizeof *v);
    int *fx = qat_xmalloc((size_t)np * sizeof *fx);
    for (int k = 0; k < np; k++) { v[k] = qat_fit_value(p, r->theta, k); fx[k] = p->fixed[k]; }
    rc |= dset_str(g, "name", np, p->name[0], sizeof p->name[0]);
    rc |= dset(g, "value", H5T_NATIVE_DOUBLE, np, v);
    rc |= dset(g, "ci_lo", H5T_NATIVE_DOUBLE, np, r->lo);
    rc |= dset(g, "ci_hi", H5T_NATIVE_DOUBLE, np, r->hi);
    rc |= dset(g, "fixed", H5T_NATIVE_INT, np, fx);
    rc |= dset_str(g, "fixed_reason", np, p->why[0], sizeof p->why[0]);
    H5Gclose(g);
    free(fx);

    g = H5Gcreate2(f, "runs", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    const qat_fit_run *run = rep->runs->run;
    const double *cols[3] = {&run[0].N, &run[0].D, &run[0].loss};
    const char *cname[3] = {"N", "D", "loss"};
    for (int c = 0; c < 3; c++) {
        for (int i = 0; i < n; i++) v[i] = *(const double *)((const char *)cols[c] + (size_t)i * sizeof *run);
        rc |= dset(g, cname[c], H5T_NATIVE_DOUBLE, n, v);
    }
    rc |= dset(g, "pred", H5T_NATIVE_DOUBLE, n, r->pred);
    rc |= dset(g, "resid", H5T_NATIVE_DOUBLE, n, r->resid);
    rc |= dset(g, "rho", H5T_NATIVE_DOUBLE, n, r->rho);
    rc |= dset_str(g, "weight_format", n, run[0].wfmt, sizeof *run);
    rc |= dset_str(g, "act_format", n, run[0].afmt, sizeof *run);
    rc |= dset_str(g, "origin", n, run[0].origin, sizeof *run);
    H5Gclose(g);
    free(v);

    g = H5Gcreate2(f, "pairs", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    rc |= write_pairs(g, p, r, rep->pt);
    H5Gclose(g);
    if (rep->dp) {
        g = H5Gcreate2(f, "decoupled", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        law_attrs(g, rep->dp, rep->dr);
        rc |= write_pairs(g, rep->dp, rep->dr, rep->dpt);
        H5Gclose(g);
    }

    g = H5Gcreate2(f, "formats", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int m = rep->n_fmt;
    double *b = qat_xmalloc((size_t)(m ? m : 1) * sizeof *b), *rh = qat_xmalloc((size_t)(m ? m : 1) * sizeof *rh),
           *gm = qat_xmalloc((size_t)(m ? m : 1) * sizeof *gm);
    int *in = qat_xmalloc((size_t)(m ? m : 1) * sizeof *in);
    for (int k = 0; k < m; k++) {
        b[k] = rep->fmt[k].bits; rh[k] = rep->fmt[k].rho; gm[k] = rep->fmt[k].gmse; in[k] = rep->fmt[k].in_data;
    }
    rc |= dset_str(g, "name", m, m ? rep->fmt[0].name : "", sizeof *rep->fmt);
    rc |= dset(g, "bits", H5T_NATIVE_DOUBLE, m, b);
    rc |= dset(g, "rho", H5T_NATIVE_DOUBLE, m, rh);
    rc |= dset(g, "gmse", H5T_NATIVE_DOUBLE, m, gm);
    rc |= dset(g, "in_data", H5T_NATIVE_INT, m, in);
    free(b); free(rh); free(gm); free(in);
    H5Gclose(g);

    if (H5Fclose(f) < 0) rc = 1;
    if (rc) return qat_fail(QAT_ERUNTIME, "%s: writing the fit file failed", path);
    return QAT_OK;
}

/* ---- reading back ---------------------------------------------------- */

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
    if (d < 0) return -1;
    int rc = H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) < 0 ? -1 : 0;
    H5Dclose(d);
    return rc;
}

static int read_strs(hid_t f, const char *path, int n, size_t width, char **out) {
    *out = qat_xcalloc((size_t)(n ? n : 1), width);
    if (n == 0) return 0;
    hid_t d = H5Dopen2(f, path, H5P_DEFAULT);
    if (d < 0) return -1;
    char **v = qat_xcalloc((size_t)n, sizeof *v);
    hid_t t = vlen_str_type();
    int rc = H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0 ? -1 : 0;
    if (!rc) {
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

int qat_fit_h5_read(const char *path, qat_fit_h5 *fr) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    memset(fr, 0, sizeof *fr);
    if (H5Fis_hdf5(path) <= 0) return qat_fail(QAT_EINPUT, "%s: not an HDF5 file (expected a FIT.h5 from qat fit --out)", path);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return qat_fail(QAT_EINPUT, "%s: cannot open", path);
    int rc = 0;
    {
        hid_t a = H5Aexists(f, "law") > 0 ? H5Aopen(f, "law", H5P_DEFAULT) : -1;
        char *s = NULL;
        hid_t t = vlen_str_type();
        if (a < 0 || H5Aread(a, t, &s) < 0 || !s) rc = -1;
        else { snprintf(fr->law, sizeof fr->law, "%s", s); H5free_memory(s); }
        if (a >= 0) H5Aclose(a);
        H5Tclose(t);
    }
    double *dst[6] = {&fr->A, &fr->alpha, &fr->B, &fr->beta, &fr->E, &fr->rmse_log};
    const char *an[6] = {"A", "alpha", "B", "beta", "E", "rmse_log"};
    for (int k = 0; k < 6 && !rc; k++) rc = read_attr_double(f, an[k], dst[k]);
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
    }
    H5Fclose(f);
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
    memset(f, 0, sizeof *f);
}

double qat_fit_h5_predict(const qat_fit_h5 *f, double N, double D, double rho) {
    return f->A * pow(N * rho, -f->alpha) + f->B * pow(D, -f->beta) + f->E;
}

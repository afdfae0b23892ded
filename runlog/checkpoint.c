/*
 * runlog/checkpoint.c — ckpt.h5: named float32 arrays, model attributes and
 * the resume state, written atomically through qat_h5_out (tmp file + fsync +
 * rename + directory fsync) so that a kill or a full disk mid-write never
 * damages the previous checkpoint.
 *
 * Checkpoints use HDF5's 1.10 ("latest") format, whose metadata is
 * checksummed, and every array carries the fletcher32 checksum (h5util.h), so
 * a damaged byte is an error naming the dataset, never a silently different
 * model; h5py reads them as before. Each write makes a new file (a new
 * inode), so readers holding the old one keep a consistent view.
 */
#include "checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "h5util.h"

struct qat_ckpt_file {
    char path[QAT_PATH_MAX];  /* for messages */
    hid_t file;               /* open read-only */
};

static const char *const reserved_state[] = {"step", "tokens", "data_pos", "rng", NULL};

/* ------------------------------------------------------------- state */

static int check_extra_name(const char *name) {
    if (!name[0] || strlen(name) >= QAT_CKPT_NAME_MAX || strchr(name, '/'))
        return qat_fail(QAT_EINPUT, "checkpoint state: bad name '%s' (1..%d characters, no '/')", name,
                        QAT_CKPT_NAME_MAX - 1);
    for (int i = 0; reserved_state[i]; i++)
        if (!strcmp(name, reserved_state[i]))
            return qat_fail(QAT_EINPUT, "checkpoint state: '%s' is a reserved name", name);
    return QAT_OK;
}

int qat_ckpt_state_set_int(qat_ckpt_state *s, const char *name, int64_t v) {
    QAT_TRY(check_extra_name(name));
    for (int i = 0; i < s->n_reals; i++)
        if (!strcmp(s->reals[i].name, name))
            return qat_fail(QAT_EINPUT, "checkpoint state: '%s' is already a real value", name);
    for (int i = 0; i < s->n_ints; i++)
        if (!strcmp(s->ints[i].name, name)) return s->ints[i].value = v, QAT_OK;
    if (s->n_ints == QAT_CKPT_MAX_EXTRA) return qat_fail(QAT_EINPUT, "checkpoint state: too many integers");
    qat_ckpt_int *e = &s->ints[s->n_ints++];
    memset(e->name, 0, sizeof e->name);
    strcpy(e->name, name);
    e->value = v;
    return QAT_OK;
}

int qat_ckpt_state_set_real(qat_ckpt_state *s, const char *name, double v) {
    QAT_TRY(check_extra_name(name));
    for (int i = 0; i < s->n_ints; i++)
        if (!strcmp(s->ints[i].name, name))
            return qat_fail(QAT_EINPUT, "checkpoint state: '%s' is already an integer value", name);
    for (int i = 0; i < s->n_reals; i++)
        if (!strcmp(s->reals[i].name, name)) return s->reals[i].value = v, QAT_OK;
    if (s->n_reals == QAT_CKPT_MAX_EXTRA) return qat_fail(QAT_EINPUT, "checkpoint state: too many reals");
    qat_ckpt_real *e = &s->reals[s->n_reals++];
    memset(e->name, 0, sizeof e->name);
    strcpy(e->name, name);
    e->value = v;
    return QAT_OK;
}

int qat_ckpt_state_get_int(const qat_ckpt_state *s, const char *name, int64_t *v) {
    for (int i = 0; i < s->n_ints; i++)
        if (!strcmp(s->ints[i].name, name)) return *v = s->ints[i].value, QAT_OK;
    return qat_fail(QAT_EINPUT, "checkpoint state has no integer '%s'", name);
}

int qat_ckpt_state_get_real(const qat_ckpt_state *s, const char *name, double *v) {
    for (int i = 0; i < s->n_reals; i++)
        if (!strcmp(s->reals[i].name, name)) return *v = s->reals[i].value, QAT_OK;
    return qat_fail(QAT_EINPUT, "checkpoint state has no real '%s'", name);
}

/* ------------------------------------------------------------- writing */

static int write_array(hid_t f, const char *path, const qat_ckpt_array *a) {
    if (!a->name || !a->name[0] || a->name[0] == '/' || a->ndim < 1 || a->ndim > QAT_CKPT_MAX_DIMS || !a->data)
        return qat_fail(QAT_EINPUT, "%s: bad array description '%s'", path, a->name ? a->name : "(null)");
    hsize_t dims[QAT_CKPT_MAX_DIMS];
    for (int i = 0; i < a->ndim; i++) {
        if (a->shape[i] < 0) return qat_fail(QAT_EINPUT, "%s: %s has a negative dimension", path, a->name);
        dims[i] = (hsize_t)a->shape[i];
    }
    if (qat_h5_exists(f, a->name)) return qat_fail(QAT_EINPUT, "%s: array /%s is listed twice", path, a->name);
    hid_t sp = H5Screate_simple(a->ndim, dims, NULL);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE), dcpl = qat_h5_dcpl(a->ndim, dims, sizeof(float));
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t d = H5Dcreate2(f, a->name, H5T_IEEE_F32LE, sp, lcpl, dcpl, H5P_DEFAULT);
    int rc = QAT_OK;
    if (d < 0 || H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, a->data) < 0)
        rc = qat_h5_fail_write(path, "cannot write array /%s", a->name);
    if (d >= 0 && H5Dclose(d) < 0 && !rc) rc = qat_h5_fail_write(path, "cannot write array /%s", a->name);
    H5Pclose(dcpl);
    H5Pclose(lcpl);
    H5Sclose(sp);
    return rc;
}

static int write_attrs(hid_t f, const char *path, const qat_ckpt_attrs *a) {
    QAT_TRY(qat_h5_attr_write_str_crc(f, path, "config", a->config_yaml));
    const struct { const char *n; int v; } ints[] = {{"layers", a->layers}, {"dim", a->dim}, {"heads", a->heads},
                                                      {"hidden", a->hidden}, {"vocab", a->vocab},
                                                      {"seq_len", a->seq_len}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        int64_t v = ints[i].v;
        QAT_TRY(qat_h5_attr_write(f, path, ints[i].n, H5T_STD_I64LE, H5T_NATIVE_INT64, &v));
    }
    QAT_TRY(qat_h5_attr_write(f, path, "rope_theta", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &a->rope_theta));
    QAT_TRY(qat_h5_attr_write(f, path, "norm_eps", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &a->norm_eps));
    QAT_TRY(qat_h5_attr_write_str(f, path, "weight_format", a->weight_format));
    QAT_TRY(qat_h5_attr_write_str(f, path, "act_format", a->act_format));
    QAT_TRY(qat_h5_attr_write_str(f, path, "precision", a->precision[0] ? a->precision : "fp32"));
    return qat_h5_attr_write_str(f, path, "estimator", a->estimator);
}

static int write_state(hid_t f, const char *path, const qat_ckpt_state *s) {
    hid_t g = H5Gcreate2(f, "state", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return qat_h5_fail_write(path, "cannot create /state");
    int rc = qat_h5_scalar_write(g, path, "step", H5T_STD_I64LE, H5T_NATIVE_INT64, &s->step);
    if (!rc) rc = qat_h5_scalar_write(g, path, "tokens", H5T_STD_I64LE, H5T_NATIVE_INT64, &s->tokens);
    if (!rc) rc = qat_h5_scalar_write(g, path, "data_pos", H5T_STD_I64LE, H5T_NATIVE_INT64, &s->data_pos);
    if (!rc) {
        if (s->n_rng < 0 || s->n_rng > QAT_CKPT_MAX_RNG) {
            rc = qat_fail(QAT_EINPUT, "%s: bad RNG count %d", path, s->n_rng);
        } else {
            /* 1-D even when empty, so readers need no special case. */
            hsize_t n[1] = {(hsize_t)s->n_rng};
            hid_t sp = H5Screate_simple(1, n, NULL), dcpl = qat_h5_dcpl(1, n, sizeof(uint64_t));
            hid_t d = H5Dcreate2(g, "rng", H5T_STD_U64LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
            if (d < 0 || (s->n_rng && H5Dwrite(d, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, s->rng) < 0))
                rc = qat_h5_fail_write(path, "cannot write /state/rng");
            if (d >= 0 && H5Dclose(d) < 0 && !rc) rc = qat_h5_fail_write(path, "cannot write /state/rng");
            H5Pclose(dcpl);
            H5Sclose(sp);
        }
    }
    for (int i = 0; !rc && i < s->n_ints; i++) {
        rc = check_extra_name(s->ints[i].name);
        if (!rc) rc = qat_h5_scalar_write(g, path, s->ints[i].name, H5T_STD_I64LE, H5T_NATIVE_INT64, &s->ints[i].value);
    }
    for (int i = 0; !rc && i < s->n_reals; i++) {
        rc = check_extra_name(s->reals[i].name);
        if (!rc)
            rc = qat_h5_scalar_write(g, path, s->reals[i].name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &s->reals[i].value);
    }
    H5Gclose(g);
    return rc;
}

int qat_ckpt_write(const char *path, const qat_ckpt *ck) {
    if (strlen(path) >= QAT_PATH_MAX) return qat_fail(QAT_EINPUT, "%s: path too long", path);
    qat_h5_out h;
    int rc = qat_h5_out_create(&h, path, QAT_OUT_CKPT, NULL, 0);
    if (!rc) {
        rc = write_attrs(h.file, path, &ck->attrs);
        if (!rc) rc = write_state(h.file, path, &ck->state);
        for (int i = 0; !rc && i < ck->n_arrays; i++) rc = write_array(h.file, path, &ck->arrays[i]);
        rc = qat_h5_out_finish(&h, rc);
    }
    if (rc == QAT_ERUNTIME && access(path, F_OK) == 0) {
        char m[3000]; /* say what a reader of the message most wants to know */
        snprintf(m, sizeof m, "%s", qat_errmsg());
        qat_fail(rc, "%s; the previous checkpoint is kept", m);
    }
    return rc;
}

/* ------------------------------------------------------------- reading */

int qat_ckpt_open(const char *path, qat_ckpt_file **out) {
    *out = NULL;
    QAT_TRY(qat_h5_in_check(path, "a checkpoint, ckpt.h5"));
    hid_t fapl = qat_h5_fapl(0, 0);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    int rc = f < 0 ? qat_h5_open_damage(path) : QAT_OK; /* before H5Pclose clears the stack */
    H5Pclose(fapl);
    if (rc) return rc;
    if (f < 0) return qat_fail(QAT_EINPUT, "%s: not a readable HDF5 checkpoint", path);
    /* another of qat's HDF5 files given where a checkpoint belongs: say which */
    int has_state = 0;
    rc = qat_h5_link_exists(f, path, "state", &has_state);
    if (rc) {
        H5Fclose(f);
        return rc;
    }
    if (!has_state) {
        int runlog = qat_h5_exists(f, "train") && qat_h5_exists(f, "eval");
        const char *what = runlog ? "a run log (run.h5)"
                           : qat_h5_exists(f, "grads") && qat_h5_exists(f, "batch") ? "a gradients file (qat grads --out)"
                           : qat_h5_exists(f, "runs") && qat_h5_exists(f, "pairs") ? "a fit (qat fit --out)"
                                                                                    : "an HDF5 file without a checkpoint's /state";
        H5Fclose(f);
        return qat_fail(QAT_EINPUT, "%s: is %s, not a checkpoint; expected a run's ckpt.h5%s", path, what,
                        runlog ? " (beside the run.h5)" : "");
    }
    qat_ckpt_file *c = qat_xcalloc(1, sizeof *c);
    snprintf(c->path, sizeof c->path, "%s", path);
    c->file = f;
    *out = c;
    return QAT_OK;
}

void qat_ckpt_close(qat_ckpt_file *f) {
    if (!f) return;
    H5Fclose(f->file);
    free(f);
}

int qat_ckpt_has(qat_ckpt_file *f, const char *name) {
    int e = 0;
    if (qat_h5_link_exists(f->file, f->path, name, &e)) {
        qat_clear_error();
        return 1; /* a lookup that fails is no absence: the read that follows names the damage */
    }
    return e;
}

static void fmt_shape(char *buf, size_t n, int ndim, const int64_t *shape) {
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && k < n; i++) k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

int qat_ckpt_array_shape(qat_ckpt_file *f, const char *name, int *ndim, int64_t shape[QAT_CKPT_MAX_DIMS]) {
    const char *n = name[0] == '/' ? name + 1 : name;
    int e;
    QAT_TRY(qat_h5_link_exists(f->file, f->path, n, &e));
    if (!e) return qat_fail(QAT_EINPUT, "%s: no array /%s (a checkpoint of another model or format?)", f->path, n);
    hid_t d = H5Dopen2(f->file, n, H5P_DEFAULT);
    if (d < 0) return qat_h5_damaged(f->path, "dataset ", n);
    hid_t sp = H5Dget_space(d);
    int nd = H5Sget_simple_extent_ndims(sp);
    hsize_t dims[QAT_CKPT_MAX_DIMS];
    int rc = QAT_OK;
    if (nd < 1 || nd > QAT_CKPT_MAX_DIMS) {
        rc = qat_fail(QAT_EINPUT, "%s: /%s has %d dimensions, expected 1..%d", f->path, n, nd, QAT_CKPT_MAX_DIMS);
    } else {
        H5Sget_simple_extent_dims(sp, dims, NULL);
        *ndim = nd;
        for (int i = 0; i < nd; i++) shape[i] = (int64_t)dims[i];
    }
    H5Sclose(sp);
    H5Dclose(d);
    return rc;
}

int qat_ckpt_read_array(qat_ckpt_file *f, const char *name, int ndim, const int64_t *shape, float *out) {
    const char *n = name[0] == '/' ? name + 1 : name;
    int nd;
    int64_t got[QAT_CKPT_MAX_DIMS];
    QAT_TRY(qat_ckpt_array_shape(f, n, &nd, got));
    int same = nd == ndim;
    for (int i = 0; same && i < nd; i++) same = got[i] == shape[i];
    if (!same) {
        char a[128], b[128];
        fmt_shape(a, sizeof a, nd, got);
        fmt_shape(b, sizeof b, ndim, shape);
        return qat_fail(QAT_EINPUT, "%s: /%s has shape %s, expected %s", f->path, n, a, b);
    }
    hid_t d = H5Dopen2(f->file, n, H5P_DEFAULT);
    int rc = QAT_OK;
    if (d < 0 || H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0)
        rc = qat_h5_fail_read(QAT_EINPUT, f->path, n, "cannot read /%s as float32", n);
    if (d >= 0) H5Dclose(d);
    return rc;
}

/* Collect dataset paths under a group, depth first, in name order. */
typedef struct {
    char **names;   /* growing list */
    int n, cap;
    char prefix[1024];
} list_ctx;

static herr_t list_cb(hid_t loc, const char *name, const H5L_info_t *info, void *op) {
    (void)info;
    list_ctx *c = op;
    H5O_info_t oi;
    if (H5Oget_info_by_name(loc, name, &oi, H5P_DEFAULT) < 0) return -1;
    size_t plen = strlen(c->prefix);
    if (plen + strlen(name) + 2 >= sizeof c->prefix) return 0;
    if (oi.type == H5O_TYPE_DATASET) {
        if (c->n == c->cap) {
            c->cap = c->cap ? 2 * c->cap : 64;
            c->names = qat_xrealloc(c->names, (size_t)c->cap * sizeof *c->names);
        }
        char *s = qat_xmalloc(plen + strlen(name) + 2);
        sprintf(s, "%s/%s", c->prefix, name);
        c->names[c->n++] = s;
    } else if (oi.type == H5O_TYPE_GROUP) {
        snprintf(c->prefix + plen, sizeof c->prefix - plen, "/%s", name);
        hid_t g = H5Gopen2(loc, name, H5P_DEFAULT);
        herr_t rc = H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, list_cb, c);
        H5Gclose(g);
        c->prefix[plen] = 0;
        if (rc < 0) return -1;
    }
    return 0;
}

int qat_ckpt_list(qat_ckpt_file *f, const char *group, char ***names, int *n) {
    *names = NULL;
    *n = 0;
    const char *g = group[0] == '/' ? group + 1 : group;
    int e;
    QAT_TRY(qat_h5_link_exists(f->file, f->path, g, &e));
    if (!e) return qat_fail(QAT_EINPUT, "%s: no group /%s", f->path, g);
    list_ctx c = {0};
    snprintf(c.prefix, sizeof c.prefix, "%s", g);
    hid_t gid = H5Gopen2(f->file, g, H5P_DEFAULT);
    if (gid < 0) return qat_h5_damaged(f->path, "group ", g);
    herr_t rc = H5Literate(gid, H5_INDEX_NAME, H5_ITER_INC, NULL, list_cb, &c);
    int bad = rc < 0 ? qat_h5_damaged(f->path, "group ", g) : QAT_OK;
    H5Gclose(gid);
    if (bad) {
        for (int i = 0; i < c.n; i++) free(c.names[i]);
        free(c.names);
        return bad;
    }
    *names = c.names;
    *n = c.n;
    return QAT_OK;
}

int qat_ckpt_read_attrs(qat_ckpt_file *f, qat_ckpt_attrs *a) {
    memset(a, 0, sizeof *a);
    const char *p = f->path;
    int *ints[] = {&a->layers, &a->dim, &a->heads, &a->hidden, &a->vocab, &a->seq_len};
    const char *names[] = {"layers", "dim", "heads", "hidden", "vocab", "seq_len"};
    for (int i = 0; i < 6; i++) {
        int64_t v;
        QAT_TRY(qat_h5_attr_read(f->file, p, names[i], H5T_NATIVE_INT64, &v));
        *ints[i] = (int)v;
    }
    QAT_TRY(qat_h5_attr_read(f->file, p, "rope_theta", H5T_NATIVE_DOUBLE, &a->rope_theta));
    QAT_TRY(qat_h5_attr_read(f->file, p, "norm_eps", H5T_NATIVE_DOUBLE, &a->norm_eps));
    QAT_TRY(qat_h5_attr_read_str(f->file, p, "weight_format", a->weight_format, sizeof a->weight_format));
    QAT_TRY(qat_h5_attr_read_str(f->file, p, "act_format", a->act_format, sizeof a->act_format));
    /* checkpoints written before train.precision existed were fp32 */
    snprintf(a->precision, sizeof a->precision, "fp32");
    int has_precision;
    QAT_TRY(qat_h5_attr_exists(f->file, p, "precision", &has_precision));
    if (has_precision)
        QAT_TRY(qat_h5_attr_read_str(f->file, p, "precision", a->precision, sizeof a->precision));
    return qat_h5_attr_read_str(f->file, p, "estimator", a->estimator, sizeof a->estimator);
}

int qat_ckpt_read_config(qat_ckpt_file *f, char **yaml) {
    QAT_TRY(qat_h5_attr_dup_str_crc(f->file, f->path, "config", yaml));
    return *yaml ? QAT_OK : qat_fail(QAT_EINPUT, "%s: attribute config is missing", f->path);
}

/* Extra state values: every scalar dataset of /state except the fixed ones,
 * classified by its stored type. */
static herr_t state_cb(hid_t g, const char *name, const H5L_info_t *info, void *op) {
    (void)info;
    qat_ckpt_state *s = op;
    for (int i = 0; reserved_state[i]; i++)
        if (!strcmp(name, reserved_state[i])) return 0;
    if (strlen(name) >= QAT_CKPT_NAME_MAX) return 0;
    hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
    if (d < 0) return -1; /* listed but unreadable: damage, not a value to skip */
    hid_t t = H5Dget_type(d);
    herr_t rc = 0;
    if (H5Tget_class(t) == H5T_INTEGER && s->n_ints < QAT_CKPT_MAX_EXTRA) {
        qat_ckpt_int *e = &s->ints[s->n_ints++];
        strcpy(e->name, name);
        rc = H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, &e->value);
    } else if (H5Tget_class(t) == H5T_FLOAT && s->n_reals < QAT_CKPT_MAX_EXTRA) {
        qat_ckpt_real *e = &s->reals[s->n_reals++];
        strcpy(e->name, name);
        rc = H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, &e->value);
    }
    H5Tclose(t);
    H5Dclose(d);
    return rc < 0 ? -1 : 0;
}

int qat_ckpt_read_state(qat_ckpt_file *f, qat_ckpt_state *s) {
    memset(s, 0, sizeof *s);
    const char *p = f->path;
    QAT_TRY(qat_h5_scalar_read(f->file, p, "state/step", H5T_NATIVE_INT64, &s->step));
    QAT_TRY(qat_h5_scalar_read(f->file, p, "state/tokens", H5T_NATIVE_INT64, &s->tokens));
    QAT_TRY(qat_h5_scalar_read(f->file, p, "state/data_pos", H5T_NATIVE_INT64, &s->data_pos));
    int e;
    QAT_TRY(qat_h5_link_exists(f->file, p, "state/rng", &e));
    if (!e) return qat_fail(QAT_EINPUT, "%s: /state/rng is missing", p);
    hid_t d = H5Dopen2(f->file, "state/rng", H5P_DEFAULT);
    if (d < 0) return qat_h5_damaged(p, "dataset ", "state/rng");
    hid_t sp = H5Dget_space(d);
    hssize_t n = H5Sget_simple_extent_npoints(sp);
    H5Sclose(sp);
    int rc = QAT_OK;
    if (n < 0 || n > QAT_CKPT_MAX_RNG) rc = qat_fail(QAT_EINPUT, "%s: /state/rng has %lld values, at most %d", p,
                                                     (long long)n, QAT_CKPT_MAX_RNG);
    else if (n > 0 && H5Dread(d, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, s->rng) < 0)
        rc = qat_h5_fail_read(QAT_EINPUT, p, "state/rng", "cannot read /state/rng");
    H5Dclose(d);
    if (rc) return rc;
    s->n_rng = (int)n;
    hid_t g = H5Gopen2(f->file, "state", H5P_DEFAULT);
    if (g < 0) return qat_h5_damaged(p, "group ", "state");
    herr_t it = H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, state_cb, s);
    int checksum = it < 0 && qat_h5_is_checksum();
    H5Gclose(g);
    if (checksum) return qat_fail(QAT_ERUNTIME, "%s: a dataset of /state: checksum mismatch (the file is damaged)", p);
    return it < 0 ? qat_fail(QAT_ERUNTIME, "%s: the extra values of /state cannot be read (the file is damaged)", p)
                  : QAT_OK;
}

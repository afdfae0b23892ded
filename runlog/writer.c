/*
 * runlog/writer.c — run.h5 written with HDF5 1.10 SWMR so that every flushed
 * row survives SIGKILL and can be read while the run is alive (see runlog.h
 * for the layout and the reasons; runlog/README.md for reading recipes).
 *
 * Rows are buffered in fixed arrays allocated at creation, so logging a step
 * allocates nothing; a flush extends each dataset of a group by the pending
 * rows, writes them and H5Dflush-es it, `step` last, so the length of `step`
 * counts rows that are complete everywhere even if the process dies mid-flush.
 * The lock is lock.c's, the readers are reader.c.
 */
#include "runlog.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cpu.h"
#include "core/error.h"
#include "h5util.h"

#ifndef QAT_VERSION
#define QAT_VERSION "unknown"
#endif

enum { TRAIN_CAP = 1024, EVAL_CAP = 256, CHUNK_ROWS = 512 };

/* The series, in on-disk order; `step` is always column 0 and flushed last. */
static const char *const train_cols[] = {"step", "tokens", "loss", "lr", "grad_norm", "time_s"};
static const char *const eval_cols[] = {"step", "tokens", "loss"};
enum { N_TRAIN = 6, N_EVAL = 3, MAX_COLS = 6 };

/* One group (/train or /eval): its datasets and the rows not yet on disk. */
typedef struct {
    const char *group;             /* "train" or "eval" */
    const char *const *cols;       /* column names, step first */
    int ncols;                     /* columns in this group */
    int cap;                       /* buffered rows before a forced flush */
    hid_t dset[MAX_COLS];          /* open datasets */
    int64_t on_disk;               /* rows already written */
    int pending;                   /* rows buffered */
    double *buf[MAX_COLS];         /* (cap) per column; step/tokens held exactly (< 2^53) */
} qat_series;

struct qat_runlog {
    char path[QAT_PATH_MAX];       /* run.h5 */
    hid_t file;                    /* open in SWMR-write mode until finish */
    int lock_fd;                   /* flock'd PATH.lock, -1 when none */
    int finished;                  /* qat_runlog_finish done: file closed */
    int failed;                    /* a write failed: the file must be abandoned, not flushed, at close */
    qat_series train, eval;        /* the two appendable groups */
};

const char *qat_run_status_name(qat_run_status s) {
    switch (s) {
    case QAT_RUN_RUNNING: return "running";
    case QAT_RUN_COMPLETED: return "completed";
    case QAT_RUN_FAILED: return "failed";
    case QAT_RUN_DIVERGED: return "diverged";
    }
    return "unknown";
}

int qat_run_status_parse(const char *s) {
    for (int i = QAT_RUN_RUNNING; i <= QAT_RUN_DIVERGED; i++)
        if (!strcmp(s, qat_run_status_name((qat_run_status)i))) return i;
    return -1;
}

/* ---------------------------------------------------------- series setup */

static void series_init(qat_series *s, const char *group, const char *const *cols, int ncols, int cap) {
    memset(s, 0, sizeof *s);
    s->group = group;
    s->cols = cols;
    s->ncols = ncols;
    s->cap = cap;
    for (int c = 0; c < ncols; c++) {
        s->dset[c] = -1;
        s->buf[c] = qat_xcalloc((size_t)cap, sizeof(double));
    }
}

static int col_is_int(const char *name) { return !strcmp(name, "step") || !strcmp(name, "tokens"); }

static int series_create(qat_series *s, hid_t file, const char *path) {
    hid_t g = H5Gcreate2(file, s->group, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return qat_fail(QAT_ERUNTIME, "%s: cannot create /%s", path, s->group);
    hsize_t dims[1] = {0}, maxd[1] = {H5S_UNLIMITED}, chunk[1] = {CHUNK_ROWS};
    hid_t sp = H5Screate_simple(1, dims, maxd);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 1, chunk);
    H5Pset_fletcher32(dcpl); /* every dataset qat writes is checksummed (h5util.h) */
    int rc = QAT_OK;
    for (int c = 0; c < s->ncols && !rc; c++) {
        hid_t t = col_is_int(s->cols[c]) ? H5T_STD_I64LE : H5T_IEEE_F64LE;
        s->dset[c] = H5Dcreate2(g, s->cols[c], t, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        if (s->dset[c] < 0) rc = qat_h5_fail_write(path, "cannot create /%s/%s", s->group, s->cols[c]);
    }
    H5Pclose(dcpl);
    H5Sclose(sp);
    H5Gclose(g);
    return rc;
}

/* Open an existing group for appending after `step`: rows beyond the last
 * complete one, or with a larger step, are cut off every dataset. */
static int series_reopen(qat_series *s, hid_t file, const char *path, int64_t step) {
    int64_t keep = -1;
    for (int c = 0; c < s->ncols; c++) {
        char name[64];
        snprintf(name, sizeof name, "%s/%s", s->group, s->cols[c]);
        H5E_BEGIN_TRY { s->dset[c] = H5Dopen2(file, name, H5P_DEFAULT); } H5E_END_TRY;
        if (s->dset[c] < 0) return qat_fail(QAT_EINPUT, "%s: /%s is missing: not a qat run log", path, name);
        int64_t n = qat_h5_dset_len(s->dset[c]);
        if (keep < 0 || n < keep) keep = n;
    }
    /* Steps are appended in increasing order: keep the prefix with step <= `step`. */
    if (keep > 0) {
        int64_t *steps = qat_xmalloc((size_t)keep * sizeof *steps);
        hsize_t off[1] = {0}, cnt[1] = {(hsize_t)keep};
        hid_t fs = H5Dget_space(s->dset[0]), ms = H5Screate_simple(1, cnt, NULL);
        H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL);
        herr_t rc = H5Dread(s->dset[0], H5T_NATIVE_INT64, ms, fs, H5P_DEFAULT, steps);
        char name[64];
        snprintf(name, sizeof name, "%s/step", s->group);
        int err = rc < 0 ? qat_h5_fail_read(QAT_ERUNTIME, path, name, "cannot read /%s", name) : 0;
        H5Sclose(ms);
        H5Sclose(fs);
        if (err) {
            free(steps);
            return err;
        }
        int64_t k = 0;
        while (k < keep && steps[k] <= step) k++;
        keep = k;
        free(steps);
    }
    for (int c = 0; c < s->ncols; c++) {
        hsize_t n[1] = {(hsize_t)keep};
        if (H5Dset_extent(s->dset[c], n) < 0)
            return qat_h5_fail_write(path, "cannot truncate /%s/%s", s->group, s->cols[c]);
    }
    s->on_disk = keep;
    return QAT_OK;
}

static int series_flush(qat_series *s, const char *path) {
    if (!s->pending) return QAT_OK;
    hsize_t off[1] = {(hsize_t)s->on_disk}, cnt[1] = {(hsize_t)s->pending}, n[1] = {off[0] + cnt[0]};
    hid_t ms = H5Screate_simple(1, cnt, NULL);
    int rc = QAT_OK;
    /* Columns 1.. first, `step` last: a row in `step` is complete everywhere. */
    for (int i = 1; i <= s->ncols && !rc; i++) {
        int c = i % s->ncols;
        hid_t d = s->dset[c];
        herr_t e = H5Dset_extent(d, n);
        hid_t fs = e < 0 ? -1 : H5Dget_space(d);
        if (fs >= 0) e = H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL);
        if (fs >= 0 && e >= 0) e = H5Dwrite(d, H5T_NATIVE_DOUBLE, ms, fs, H5P_DEFAULT, s->buf[c]);
        if (fs >= 0) H5Sclose(fs);
        if (fs < 0 || e < 0 || H5Dflush(d) < 0)
            rc = qat_h5_fail_write(path, "cannot append to /%s/%s", s->group, s->cols[c]);
    }
    H5Sclose(ms);
    if (!rc) {
        s->on_disk += s->pending;
        s->pending = 0;
    }
    return rc;
}

/* A failed append leaves the file's metadata unwritable: remember it for the close. */
static int rl_flush(qat_runlog *rl, qat_series *s) {
    int rc = series_flush(s, rl->path);
    if (rc) rl->failed = 1;
    return rc;
}

static void series_close(qat_series *s) {
    for (int c = 0; c < s->ncols; c++) {
        if (s->dset[c] >= 0) H5Dclose(s->dset[c]);
        s->dset[c] = -1;
    }
}

static void series_free(qat_series *s) {
    series_close(s);
    for (int c = 0; c < s->ncols; c++) free(s->buf[c]);
}

/* ----------------------------------------------------------- lifecycle */

static qat_runlog *runlog_new(const char *path) {
    qat_runlog *rl = qat_xcalloc(1, sizeof *rl);
    snprintf(rl->path, sizeof rl->path, "%s", path);
    rl->file = -1;
    rl->lock_fd = -1;
    series_init(&rl->train, "train", train_cols, N_TRAIN, TRAIN_CAP);
    series_init(&rl->eval, "eval", eval_cols, N_EVAL, EVAL_CAP);
    return rl;
}

/* Also the failure path of create and resume: a file still open here had a
 * write fail (or never got going), so it is abandoned rather than flushed. */
static void runlog_free(qat_runlog *rl) {
    series_free(&rl->train);
    series_free(&rl->eval);
    if (rl->file >= 0) qat_h5_close(rl->file, 1, NULL, 0);
    qat_runlog_unlock(rl->lock_fd);
    free(rl);
}

/* The one place create and resume take the writer lock: a new qat_runlog for
 * path owning lock_fd (the caller's, >= 0) or a lock taken now. `pre` is the
 * caller's check before locking (QAT_OK to go on); on any failure the lock is
 * released (a handed-in one too, as runlog.h promises), *out is NULL and the
 * error returned. */
static int runlog_new_locked(const char *path, int pre, int lock_fd, qat_runlog **rl_out, qat_runlog **out) {
    *out = NULL;
    *rl_out = NULL;
    qat_runlog *rl = runlog_new(path);
    int rc = pre;
    if (!rc && lock_fd < 0) rc = qat_runlog_lock(path, &lock_fd, NULL);
    rl->lock_fd = lock_fd;
    if (rc) {
        runlog_free(rl);
        return rc;
    }
    *rl_out = rl;
    return QAT_OK;
}

static int write_attrs(hid_t f, const char *path, const qat_runlog_attrs *a) {
    int64_t i64;
    uint64_t u64;
    QAT_TRY(qat_h5_attr_write_str(f, path, "qat_version", QAT_VERSION));
    char cpu[1024]; /* the CPU and kernel path: a run's bits depend on them (docs/model.md) */
    qat_cpu_describe(cpu, sizeof cpu);
    QAT_TRY(qat_h5_attr_write_str(f, path, "cpu", cpu));
    QAT_TRY(qat_h5_attr_write_str(f, path, "name", a->name));
    QAT_TRY(qat_h5_attr_write_str_crc(f, path, "config", a->config_yaml));
    u64 = a->seed;
    QAT_TRY(qat_h5_attr_write(f, path, "seed", H5T_STD_U64LE, H5T_NATIVE_UINT64, &u64));
    i64 = a->n_params;
    QAT_TRY(qat_h5_attr_write(f, path, "n_params", H5T_STD_I64LE, H5T_NATIVE_INT64, &i64));
    i64 = a->n_params_total;
    QAT_TRY(qat_h5_attr_write(f, path, "n_params_total", H5T_STD_I64LE, H5T_NATIVE_INT64, &i64));
    i64 = a->tokens_target;
    QAT_TRY(qat_h5_attr_write(f, path, "tokens_target", H5T_STD_I64LE, H5T_NATIVE_INT64, &i64));
    QAT_TRY(qat_h5_attr_write_str(f, path, "weight_format", a->weight_format));
    QAT_TRY(qat_h5_attr_write_str(f, path, "act_format", a->act_format));
    QAT_TRY(qat_h5_attr_write_str(f, path, "estimator", a->estimator));
    QAT_TRY(qat_h5_attr_write(f, path, "gmse_w", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &a->gmse_w));
    QAT_TRY(qat_h5_attr_write(f, path, "gmse_a", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &a->gmse_a));
    QAT_TRY(qat_h5_attr_write(f, path, "rho_pred", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &a->rho_pred));
    /* the backward scheme beside the forward formats, so fits can key on W/A/G */
    QAT_TRY(qat_h5_attr_write_str(f, path, "grad_format", a->grad_format ? a->grad_format : "fp32"));
    QAT_TRY(qat_h5_attr_write_str(f, path, "grad_rounding", a->grad_rounding ? a->grad_rounding : "rtn"));
    i64 = a->grad_hadamard;
    QAT_TRY(qat_h5_attr_write(f, path, "grad_hadamard", H5T_STD_I64LE, H5T_NATIVE_INT64, &i64));
    QAT_TRY(qat_h5_attr_write_str(f, path, "precision", a->precision ? a->precision : "fp32"));
    if (a->resumes) QAT_TRY(qat_h5_attr_write_str(f, path, "resumes", a->resumes));
    if (a->init_from) {
        QAT_TRY(qat_h5_attr_write_str(f, path, "init_from", a->init_from));
        QAT_TRY(qat_h5_attr_write_str(f, path, "init_hash", a->init_hash ? a->init_hash : ""));
        QAT_TRY(qat_h5_attr_write_str(f, path, "init_state", a->init_state ? a->init_state : ""));
        if (a->init_state_weights)
            QAT_TRY(qat_h5_attr_write_str(f, path, "init_state_weights", a->init_state_weights));
        if (a->init_state_activations)
            QAT_TRY(qat_h5_attr_write_str(f, path, "init_state_activations", a->init_state_activations));
        QAT_TRY(qat_h5_attr_write(f, path, "init_ptq_loss", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &a->init_ptq_loss));
        QAT_TRY(qat_h5_attr_write(f, path, "init_source_loss", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
                                  &a->init_source_loss));
    }
    return qat_h5_attr_write_str(f, path, "status", "running");
}

static int start_swmr(qat_runlog *rl) {
    if (H5Fstart_swmr_write(rl->file) < 0)
        return qat_fail(QAT_ERUNTIME, "%s: cannot start SWMR writing (HDF5 >= 1.10 with latest format needed)",
                        rl->path);
    return QAT_OK;
}

int qat_runlog_create(const char *path, const qat_runlog_attrs *attrs, qat_runlog **out) {
    return qat_runlog_create_locked(path, attrs, -1, out);
}

int qat_runlog_create_locked(const char *path, const qat_runlog_attrs *attrs, int lock_fd, qat_runlog **out) {
    /* run.h5 is written in place (SWMR readers follow it), so only a regular
     * file or nothing may be there: a device or a directory is refused. */
    qat_runlog *rl;
    int rc = runlog_new_locked(path, qat_out_check_as(path, QAT_OUT_RUNLOG, NULL, 0), lock_fd, &rl, out);
    if (rc) return rc;
    hid_t fapl = qat_h5_fapl(1, 1), fcpl = qat_h5_fcpl();
    rl->file = H5Fcreate(path, H5F_ACC_TRUNC, fcpl, fapl);
    if (rl->file < 0) rc = qat_h5_fail_write(path, "cannot create"); /* before H5Pclose clears the stack */
    H5Pclose(fcpl);
    H5Pclose(fapl);
    /* Everything that will ever exist during the run is created before SWMR. */
    if (!rc) rc = write_attrs(rl->file, path, attrs);
    if (!rc) rc = series_create(&rl->train, rl->file, path);
    if (!rc) rc = series_create(&rl->eval, rl->file, path);
    if (!rc) rc = start_swmr(rl);
    if (rc) {
        /* a log that could not be set up is no log: remove it (the lock is still ours) */
        int made = rl->file >= 0;
        if (made) qat_h5_close(rl->file, 1, NULL, 0);
        rl->file = -1;
        if (made) unlink(path);
        runlog_free(rl);
        return rc;
    }
    *out = rl;
    return QAT_OK;
}

int qat_runlog_resume(const char *path, int64_t step, qat_runlog **out) {
    return qat_runlog_resume_locked(path, step, -1, out);
}

int qat_runlog_resume_locked(const char *path, int64_t step, int lock_fd, qat_runlog **out) {
    return qat_runlog_resume_noted(path, step, NULL, NULL, -1, lock_fd, out);
}

/* The resume note, the config and the budget change only here, before SWMR
 * writing starts (no attribute may be written under SWMR). */
static int note_resume(hid_t f, const char *path, const char *note, const char *config_yaml, int64_t tokens_target) {
    if (note) {
        char *old;
        QAT_TRY(qat_h5_attr_get_str(f, path, "resumes", &old));
        size_t n = (old ? strlen(old) : 0) + strlen(note) + 2;
        char *all = qat_xmalloc(n);
        snprintf(all, n, "%s%s%s", old ? old : "", old && *old ? "\n" : "", note);
        int rc = qat_h5_attr_write_str(f, path, "resumes", all);
        free(all);
        free(old);
        QAT_TRY(rc);
    }
    if (config_yaml) QAT_TRY(qat_h5_attr_write_str_crc(f, path, "config", config_yaml));
    if (tokens_target >= 0)
        QAT_TRY(qat_h5_attr_write(f, path, "tokens_target", H5T_STD_I64LE, H5T_NATIVE_INT64, &tokens_target));
    return QAT_OK;
}

int qat_runlog_resume_noted(const char *path, int64_t step, const char *note, const char *config_yaml,
                            int64_t tokens_target, int lock_fd, qat_runlog **out) {
    int pre = access(path, F_OK) != 0 ? qat_fail(QAT_EINPUT, "%s: cannot resume: %s", path, strerror(errno)) : QAT_OK;
    qat_runlog *rl;
    int rc = runlog_new_locked(path, pre, lock_fd, &rl, out);
    if (rc) return rc;
    /* A writer killed in SWMR mode leaves its "open for writing" flags in the
     * superblock and an end-of-allocation address older than the data. We hold
     * the lock, so no writer is alive: clear the flags (HDF5's internal
     * "clear_status_flags" access property, what h5clear -s uses) and move the
     * EOA to the end of the file (H5Fincrement_filesize, h5clear --increment). */
    hid_t fapl = qat_h5_fapl(1, 1);
    hbool_t clear = 1;
    if (H5Pset(fapl, "clear_status_flags", &clear) < 0) { /* older HDF5: open may then refuse */ }
    rl->file = H5Fopen(path, H5F_ACC_RDWR, fapl);
    if (rl->file < 0 && qat_h5_is_checksum())
        rc = qat_fail(QAT_ERUNTIME, "%s: checksum mismatch in the file's metadata (the file is damaged)", path);
    else if (rl->file < 0)
        rc = qat_fail(QAT_EINPUT, "%s: cannot open for resuming: not a readable HDF5 run log (cut short or overwritten)", path);
    H5Pclose(fapl);
    if (!rc && H5Fincrement_filesize(rl->file, 0) < 0) rc = qat_h5_fail_write(path, "cannot recover the end of the file");
    if (!rc && qat_h5_exists(rl->file, "final") && H5Ldelete(rl->file, "final", H5P_DEFAULT) < 0)
        rc = qat_h5_fail_write(path, "cannot remove /final");
    if (!rc) rc = qat_h5_attr_write_str(rl->file, path, "status", "running");
    if (!rc) rc = note_resume(rl->file, path, note, config_yaml, tokens_target);
    if (!rc) rc = series_reopen(&rl->train, rl->file, path, step);
    if (!rc) rc = series_reopen(&rl->eval, rl->file, path, step);
    if (!rc && H5Fflush(rl->file, H5F_SCOPE_GLOBAL) < 0) rc = qat_h5_fail_write(path, "cannot flush");
    if (!rc) rc = start_swmr(rl);
    if (rc) {
        runlog_free(rl);
        return rc;
    }
    *out = rl;
    return QAT_OK;
}

/* Buffer one row of s (ncols values, step first), flushing first when full. */
static int series_append(qat_runlog *rl, qat_series *s, const double *row) {
    QAT_ASSERT(!rl->finished);
    if (s->pending == s->cap) QAT_TRY(rl_flush(rl, s));
    int i = s->pending++;
    for (int c = 0; c < s->ncols; c++) s->buf[c][i] = row[c];
    return QAT_OK;
}

int qat_runlog_train(qat_runlog *rl, int64_t step, int64_t tokens, double loss, double lr, double grad_norm,
                     double time_s) {
    const double row[N_TRAIN] = {(double)step, (double)tokens, loss, lr, grad_norm, time_s};
    return series_append(rl, &rl->train, row);
}

int qat_runlog_eval(qat_runlog *rl, int64_t step, int64_t tokens, double loss) {
    const double row[N_EVAL] = {(double)step, (double)tokens, loss};
    return series_append(rl, &rl->eval, row);
}

int qat_runlog_flush(qat_runlog *rl) {
    if (rl->finished) return QAT_OK;
    QAT_TRY(rl_flush(rl, &rl->train));
    return rl_flush(rl, &rl->eval);
}

int64_t qat_runlog_rows(const qat_runlog *rl, int eval) {
    const qat_series *s = eval ? &rl->eval : &rl->train;
    return s->on_disk + s->pending;
}

int qat_runlog_last(const qat_runlog *rl, int eval, const char *col, double *value) {
    const qat_series *s = eval ? &rl->eval : &rl->train;
    int c = 0;
    while (c < s->ncols && strcmp(s->cols[c], col)) c++;
    QAT_ASSERT(c < s->ncols);
    if (s->pending) {
        *value = s->buf[c][s->pending - 1];
        return 1;
    }
    if (!s->on_disk || rl->finished) return 0;
    hsize_t off[1] = {(hsize_t)s->on_disk - 1}, cnt[1] = {1};
    hid_t fs = H5Dget_space(s->dset[c]), ms = H5Screate_simple(1, cnt, NULL);
    herr_t e = fs < 0 ? -1 : H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL);
    if (e >= 0) e = H5Dread(s->dset[c], H5T_NATIVE_DOUBLE, ms, fs, H5P_DEFAULT, value);
    if (fs >= 0) H5Sclose(fs);
    H5Sclose(ms);
    return e >= 0;
}

int qat_runlog_finish(qat_runlog *rl, qat_run_status status, const qat_runlog_final *fin) {
    QAT_ASSERT(!rl->finished);
    int flush_rc = qat_runlog_flush(rl);
    if (flush_rc && status != QAT_RUN_FAILED) return flush_rc;
    /* Leave SWMR mode by closing, then reopen normally: only then may the
     * status attribute be rewritten and /final be created. */
    series_close(&rl->train);
    series_close(&rl->eval);
    char why[256];
    int e = qat_h5_close(rl->file, rl->failed, why, sizeof why);
    rl->file = -1;
    rl->finished = 1;
    if (e < 0) return flush_rc ? flush_rc : qat_fail(QAT_ERUNTIME, "%s: cannot close: %s", rl->path, why);
    hid_t fapl = qat_h5_fapl(1, 1);
    hid_t f = H5Fopen(rl->path, H5F_ACC_RDWR, fapl);
    int rc = f < 0 ? qat_h5_fail_write(rl->path, "cannot reopen to record the end of the run") : QAT_OK;
    H5Pclose(fapl);
    if (rc) return rc;
    rc = qat_h5_attr_write_str(f, rl->path, "status", qat_run_status_name(status));
    if (!rc && fin) {
        hid_t g = qat_h5_exists(f, "final") ? H5Gopen2(f, "final", H5P_DEFAULT)
                                            : H5Gcreate2(f, "final", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (g < 0) rc = qat_h5_fail_write(rl->path, "cannot create /final");
        if (!rc) rc = qat_h5_scalar_write(g, rl->path, "val_loss", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &fin->val_loss);
        if (!rc) rc = qat_h5_scalar_write(g, rl->path, "train_loss", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &fin->train_loss);
        if (!rc) rc = qat_h5_scalar_write(g, rl->path, "tokens", H5T_STD_I64LE, H5T_NATIVE_INT64, &fin->tokens);
        if (!rc) rc = qat_h5_scalar_write(g, rl->path, "steps", H5T_STD_I64LE, H5T_NATIVE_INT64, &fin->steps);
        if (!rc) rc = qat_h5_scalar_write(g, rl->path, "wall_s", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &fin->wall_s);
        if (g >= 0) H5Gclose(g);
    }
    if (qat_h5_close(f, rc != QAT_OK, why, sizeof why) < 0 && !rc)
        rc = qat_fail(QAT_ERUNTIME, "%s: cannot close: %s", rl->path, why);
    return flush_rc ? flush_rc : rc;
}

int qat_runlog_is_finished(const qat_runlog *rl) { return rl->finished; }

int qat_runlog_close(qat_runlog *rl) {
    if (!rl) return QAT_OK;
    int rc = rl->finished ? QAT_OK : qat_runlog_flush(rl);
    series_close(&rl->train);
    series_close(&rl->eval);
    char why[256];
    if (rl->file >= 0 && qat_h5_close(rl->file, rl->failed || rc, why, sizeof why) < 0 && !rc)
        rc = qat_fail(QAT_ERUNTIME, "%s: cannot close: %s", rl->path, why);
    rl->file = -1;
    runlog_free(rl);
    return rc;
}


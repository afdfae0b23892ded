/*
 * runlog/reader.c — reading run.h5 while its writer is alive, after it ended
 * and after it was killed (runlog.h "Reading"): the summary `qat fit` and the
 * scripts need, the stored config, and one series at a time. Only complete rows
 * are returned (those counted by their group's `step`, which the writer flushes
 * last).
 */
#include "runlog.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "h5util.h"

/* Open for reading. SWMR mode works while a writer is alive, after the run
 * ended, and after a writer was killed in SWMR mode (its flags say "SWMR").
 * A writer in its brief non-SWMR steps (creating the file, recording the end,
 * resuming) makes that open fail; alive, it is waited for. Killed there, it
 * leaves "open for writing" without SWMR, which no SWMR reader accepts and no
 * plain reader either: then, with no writer holding the run's lock, the file
 * is opened read-only with those flags ignored in memory (HDF5's
 * "clear_status_flags" access property, what h5clear -s sets, but nothing is
 * written back), so every reader of run.h5 still sees what was flushed. */
static hid_t open_read(const char *path, int *code) {
    *code = QAT_EINPUT;
    if (qat_h5_in_check(path, "a run log, run.h5")) return -1;
    hid_t fapl = qat_h5_fapl(0, 1);
    qat_h5_swmr_attempts(fapl, qat_runlog_is_live(path)); /* not HDF5's 100, a wait of ages on damage */
    hid_t f = -1;
    int damaged = 0; /* a checksum of the file's metadata did not match, or it is cut short */
    for (int attempt = 0; attempt < 20 && f < 0; attempt++) {
        f = H5Fopen(path, H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, fapl);
        if (f >= 0) break;
        damaged = qat_h5_open_damage(path) != QAT_OK; /* checksum or cut short, its message recorded */
        if (!qat_runlog_is_live(path)) {
            hid_t cl = qat_h5_fapl(0, 1);
            hbool_t clear = 1;
            if (H5Pset(cl, "clear_status_flags", &clear) >= 0) {
                f = H5Fopen(path, H5F_ACC_RDONLY, cl);
                if (f < 0 && !damaged) damaged = qat_h5_open_damage(path) != QAT_OK;
            }
            H5Pclose(cl);
            if (f < 0) break; /* no writer to wait for: it will not get better */
        } else {
            usleep(50000);
        }
    }
    H5Pclose(fapl);
    if (f < 0 && damaged) { /* qat_h5_open_damage said which */
        *code = QAT_ERUNTIME;
        return -1;
    }
    if (f < 0) qat_fail(QAT_EINPUT, "%s: cannot open as an HDF5 run log", path);
    return f;
}

int qat_runlog_read_final(const char *path, qat_runlog_summary *o) {
    memset(o, 0, sizeof *o);
    int code;
    hid_t f = open_read(path, &code);
    if (f < 0) return code;
    int rc = qat_h5_attr_read_str(f, path, "status", o->status, sizeof o->status);
    if (!rc) rc = qat_h5_attr_read_str(f, path, "qat_version", o->qat_version, sizeof o->qat_version);
    if (!rc) rc = qat_h5_attr_read_str(f, path, "name", o->name, sizeof o->name);
    if (!rc) rc = qat_h5_attr_read_str(f, path, "weight_format", o->weight_format, sizeof o->weight_format);
    if (!rc) rc = qat_h5_attr_read_str(f, path, "act_format", o->act_format, sizeof o->act_format);
    if (!rc) rc = qat_h5_attr_read_str(f, path, "estimator", o->estimator, sizeof o->estimator);
    if (!rc) rc = qat_h5_attr_read(f, path, "seed", H5T_NATIVE_UINT64, &o->seed);
    if (!rc) rc = qat_h5_attr_read(f, path, "n_params", H5T_NATIVE_INT64, &o->n_params);
    if (!rc) rc = qat_h5_attr_read(f, path, "n_params_total", H5T_NATIVE_INT64, &o->n_params_total);
    if (!rc) rc = qat_h5_attr_read(f, path, "tokens_target", H5T_NATIVE_INT64, &o->tokens_target);
    if (!rc) rc = qat_h5_attr_read(f, path, "gmse_w", H5T_NATIVE_DOUBLE, &o->gmse_w);
    if (!rc) rc = qat_h5_attr_read(f, path, "gmse_a", H5T_NATIVE_DOUBLE, &o->gmse_a);
    if (!rc) rc = qat_h5_attr_read(f, path, "rho_pred", H5T_NATIVE_DOUBLE, &o->rho_pred);
    /* the backward scheme: absent from logs written before it existed (their backward was fp32) */
    snprintf(o->grad_format, sizeof o->grad_format, "fp32");
    snprintf(o->grad_rounding, sizeof o->grad_rounding, "rtn");
    int has_g = 0;
    if (!rc) rc = qat_h5_attr_exists(f, path, "grad_format", &has_g);
    if (!rc && has_g) {
        rc = qat_h5_attr_read_str(f, path, "grad_format", o->grad_format, sizeof o->grad_format);
        if (!rc) rc = qat_h5_attr_read_str(f, path, "grad_rounding", o->grad_rounding, sizeof o->grad_rounding);
        if (!rc) rc = qat_h5_attr_read(f, path, "grad_hadamard", H5T_NATIVE_INT64, &o->grad_hadamard);
    }
    /* a fine-tuned run (qat train --init, or train.init) names its source; others have no such attribute */
    if (!rc) {
        char *init = NULL;
        rc = qat_h5_attr_get_str(f, path, "init_from", &init);
        if (init) snprintf(o->init_from, sizeof o->init_from, "%s", init);
        free(init);
    }
    int has_final = 0;
    if (!rc) rc = qat_h5_link_exists(f, path, "final", &has_final);
    if (!rc && has_final) {
        o->has_final = 1;
        qat_runlog_final *x = &o->final;
        rc = qat_h5_scalar_read(f, path, "final/val_loss", H5T_NATIVE_DOUBLE, &x->val_loss);
        if (!rc) rc = qat_h5_scalar_read(f, path, "final/train_loss", H5T_NATIVE_DOUBLE, &x->train_loss);
        if (!rc) rc = qat_h5_scalar_read(f, path, "final/tokens", H5T_NATIVE_INT64, &x->tokens);
        if (!rc) rc = qat_h5_scalar_read(f, path, "final/steps", H5T_NATIVE_INT64, &x->steps);
        if (!rc) rc = qat_h5_scalar_read(f, path, "final/wall_s", H5T_NATIVE_DOUBLE, &x->wall_s);
    }
    for (int g = 0; g < 2 && !rc; g++) {
        const char *name = g ? "eval/step" : "train/step";
        int e = 0;
        rc = qat_h5_link_exists(f, path, name, &e);
        if (rc) break;
        if (!e) {
            rc = qat_fail(QAT_EINPUT, "%s: /%s is missing: not a qat run log", path, name);
            break;
        }
        hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
        if (d < 0) {
            rc = qat_h5_damaged(path, "dataset ", name);
            break;
        }
        *(g ? &o->n_eval : &o->n_train) = qat_h5_dset_len(d);
        H5Dclose(d);
    }
    H5Fclose(f);
    o->live = qat_runlog_is_live(path);
    return rc;
}

int qat_runlog_config(const char *path, char **yaml) {
    *yaml = NULL;
    int code;
    hid_t f = open_read(path, &code);
    if (f < 0) return code;
    int rc = qat_h5_attr_dup_str_crc(f, path, "config", yaml);
    if (!rc && !*yaml) rc = qat_fail(QAT_EINPUT, "%s: attribute config is missing", path);
    H5Fclose(f);
    return rc;
}

char *qat_runlog_read_config(const char *path) {
    char *s;
    qat_runlog_config(path, &s);
    return s;
}

int qat_runlog_read_series(const char *path, const char *series, double **values, int64_t *n) {
    *values = NULL;
    *n = 0;
    const char *slash = strchr(series, '/');
    if (!slash || slash == series || strlen(series) > 60)
        return qat_fail(QAT_EINPUT, "%s: bad series name '%s', expected e.g. train/loss", path, series);
    char stepname[64];
    snprintf(stepname, sizeof stepname, "%.*s/step", (int)(slash - series), series);
    int code;
    hid_t f = open_read(path, &code);
    if (f < 0) return code;
    hid_t ds = -1, dv = -1;
    int es = 0, ev = 0;
    int rc = qat_h5_link_exists(f, path, stepname, &es);
    if (!rc) rc = qat_h5_link_exists(f, path, series, &ev);
    if (!rc && (!es || !ev))
        rc = qat_fail(QAT_EINPUT, "%s: no series /%s in this run log", path, !es ? stepname : series);
    if (!rc && (ds = H5Dopen2(f, stepname, H5P_DEFAULT)) < 0) rc = qat_h5_damaged(path, "dataset ", stepname);
    if (!rc && (dv = H5Dopen2(f, series, H5P_DEFAULT)) < 0) rc = qat_h5_damaged(path, "dataset ", series);
    if (!rc) {
        /* Only rows counted in `step` are complete (it is flushed last). */
        int64_t len = qat_h5_dset_len(ds), lv = qat_h5_dset_len(dv);
        if (lv < len) len = lv;
        double *v = qat_xmalloc((size_t)(len ? len : 1) * sizeof *v);
        if (len) {
            hsize_t off[1] = {0}, cnt[1] = {(hsize_t)len};
            hid_t fs = H5Dget_space(dv), ms = H5Screate_simple(1, cnt, NULL);
            H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL);
            if (H5Dread(dv, H5T_NATIVE_DOUBLE, ms, fs, H5P_DEFAULT, v) < 0)
                rc = qat_h5_damaged(path, "dataset ", series);
            H5Sclose(fs);
            H5Sclose(ms);
        }
        if (rc) free(v);
        else {
            *values = v;
            *n = len;
        }
    }
    if (ds >= 0) H5Dclose(ds);
    if (dv >= 0) H5Dclose(dv);
    H5Fclose(f);
    return rc;
}

/*
 * runlog/h5util.c — shared HDF5 helpers for the run log and checkpoints.
 *
 * HDF5 prints its error stack on every failed call; the calls that may fail
 * for an ordinary reason (a missing attribute) run inside H5E_BEGIN_TRY so that
 * only qat's own one-line message reaches the user.
 */
#include "h5util.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

hid_t qat_h5_fapl(int latest, int nolock) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    QAT_ASSERT(fapl >= 0);
    if (latest) H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
    /* ignore_when_disabled = 1: fine on file systems without flock support. */
    if (nolock) H5Pset_file_locking(fapl, 0, 1);
    return fapl;
}

int qat_h5_exists(hid_t loc, const char *name) {
    /* H5Lexists needs each intermediate link to exist, so walk the path. */
    char buf[1024];
    size_t n = strlen(name);
    if (n >= sizeof buf) return 0;
    memcpy(buf, name, n + 1);
    for (char *p = buf + (buf[0] == '/');; p++) {
        char *slash = strchr(p, '/');
        if (slash) *slash = 0;
        htri_t e;
        H5E_BEGIN_TRY { e = H5Lexists(loc, buf, H5P_DEFAULT); } H5E_END_TRY;
        if (e <= 0) return 0;
        if (!slash) return 1;
        *slash = '/';
        p = slash;
    }
}

static hid_t vlstr_type(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

int qat_h5_attr_write(hid_t loc, const char *file, const char *name, hid_t filetype, hid_t memtype, const void *v) {
    htri_t e;
    H5E_BEGIN_TRY { e = H5Aexists(loc, name); } H5E_END_TRY;
    if (e > 0 && H5Adelete(loc, name) < 0) return qat_fail(QAT_ERUNTIME, "%s: cannot replace attribute %s", file, name);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, filetype, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = a < 0 ? -1 : H5Awrite(a, memtype, v);
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    return rc < 0 ? qat_fail(QAT_ERUNTIME, "%s: cannot write attribute %s", file, name) : QAT_OK;
}

int qat_h5_attr_write_str(hid_t loc, const char *file, const char *name, const char *value) {
    hid_t t = vlstr_type();
    const char *s = value ? value : "";
    int rc = qat_h5_attr_write(loc, file, name, t, t, &s);
    H5Tclose(t);
    return rc;
}

int qat_h5_attr_read(hid_t loc, const char *file, const char *name, hid_t memtype, void *v) {
    hid_t a;
    H5E_BEGIN_TRY { a = H5Aopen(loc, name, H5P_DEFAULT); } H5E_END_TRY;
    if (a < 0) return qat_fail(QAT_EINPUT, "%s: attribute %s is missing", file, name);
    herr_t rc = H5Aread(a, memtype, v);
    H5Aclose(a);
    return rc < 0 ? qat_fail(QAT_EINPUT, "%s: attribute %s has the wrong type", file, name) : QAT_OK;
}

char *qat_h5_attr_dup_str(hid_t loc, const char *name) {
    hid_t a;
    H5E_BEGIN_TRY { a = H5Aopen(loc, name, H5P_DEFAULT); } H5E_END_TRY;
    if (a < 0) return NULL;
    char *out = NULL;
    hid_t ft = H5Aget_type(a);
    if (H5Tget_class(ft) == H5T_STRING) {
        if (H5Tis_variable_str(ft) > 0) {
            hid_t t = vlstr_type();
            char *s = NULL;
            if (H5Aread(a, t, &s) >= 0 && s) {
                out = qat_xstrdup(s);
                H5free_memory(s);
            }
            H5Tclose(t);
        } else {
            /* Fixed-length strings, as other tools may write them. */
            size_t n = H5Tget_size(ft);
            hid_t t = H5Tcopy(H5T_C_S1);
            H5Tset_size(t, n + 1);
            out = qat_xcalloc(n + 2, 1);
            if (H5Aread(a, t, out) < 0) {
                free(out);
                out = NULL;
            }
            H5Tclose(t);
        }
    }
    H5Tclose(ft);
    H5Aclose(a);
    return out;
}

int qat_h5_attr_read_str(hid_t loc, const char *file, const char *name, char *buf, size_t size) {
    char *s = qat_h5_attr_dup_str(loc, name);
    if (!s) return qat_fail(QAT_EINPUT, "%s: string attribute %s is missing", file, name);
    size_t n = strlen(s);
    if (n >= size) {
        free(s);
        return qat_fail(QAT_EINPUT, "%s: attribute %s is too long (%zu bytes)", file, name, n);
    }
    memcpy(buf, s, n + 1);
    free(s);
    return QAT_OK;
}

int qat_h5_scalar_write(hid_t loc, const char *file, const char *name, hid_t filetype, hid_t memtype, const void *v) {
    hid_t d;
    if (qat_h5_exists(loc, name)) {
        d = H5Dopen2(loc, name, H5P_DEFAULT);
    } else {
        hid_t sp = H5Screate(H5S_SCALAR);
        d = H5Dcreate2(loc, name, filetype, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        H5Sclose(sp);
    }
    herr_t rc = d < 0 ? -1 : H5Dwrite(d, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    if (d >= 0) H5Dclose(d);
    return rc < 0 ? qat_fail(QAT_ERUNTIME, "%s: cannot write %s", file, name) : QAT_OK;
}

int qat_h5_scalar_read(hid_t loc, const char *file, const char *name, hid_t memtype, void *v) {
    hid_t d;
    H5E_BEGIN_TRY { d = H5Dopen2(loc, name, H5P_DEFAULT); } H5E_END_TRY;
    if (d < 0) return qat_fail(QAT_EINPUT, "%s: %s is missing", file, name);
    hid_t sp = H5Dget_space(d);
    int scalar = H5Sget_simple_extent_npoints(sp) == 1;
    H5Sclose(sp);
    herr_t rc = scalar ? H5Dread(d, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) : -1;
    H5Dclose(d);
    return rc < 0 ? qat_fail(QAT_EINPUT, "%s: %s is not a readable scalar", file, name) : QAT_OK;
}

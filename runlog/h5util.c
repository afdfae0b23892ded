/*
 * runlog/h5util.c — shared HDF5 helpers for run logs, checkpoints, gradients
 * and fits: attributes, scalars, checksummed layouts, one-line errors, and
 * closing a file whose disk filled up without crashing the library.
 *
 * HDF5 prints its error stack on every failed call (hundreds of lines for one
 * full disk); that printing is off for the whole process, and the reason is
 * taken from the stack instead: the sec2 driver puts the errno of a failed
 * write in its message ("errno = 28, error message = 'No space left...'").
 */
#include "h5util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <zlib.h>

#include "core/error.h"
#include "runlog.h"

/* HDF5 closes every file still open from an atexit handler. A file whose
 * close failed (its metadata could not be written even to the diverted
 * descriptor, e.g. under RLIMIT_FSIZE, which limits every file) is left
 * half-closed by HDF5 1.10, and that handler then dies with SIGSEGV in
 * H5F__close_cb. So qat registers the handler itself, before the library
 * starts, and skips it once such a close happened: the process then exits
 * with its own status, its files on disk as the last successful write left them. */
static int g_h5_poisoned;

static void h5_atexit(void) {
    if (!g_h5_poisoned) H5close();
}

__attribute__((constructor)) static void h5_early(void) {
    if (H5dont_atexit() >= 0) atexit(h5_atexit);
}

void qat_h5_quiet(void) {
    static int done;
    if (!done) H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    done = 1;
}

/* What the error stack says, collected by one walk. */
typedef struct {
    int sys_errno;       /* errno quoted by a file driver, 0 if none */
    int checksum;        /* some entry is about a checksum */
    char last[256];      /* the innermost description */
} stack_info;

static herr_t walk_cb(unsigned n, const H5E_error2_t *e, void *data) {
    (void)n;
    stack_info *si = data;
    const char *d = e->desc ? e->desc : "";
    const char *p = strstr(d, "errno = ");
    if (p && !si->sys_errno) si->sys_errno = atoi(p + 8);
    if (strstr(d, "checksum") || strstr(d, "Fletcher32")) si->checksum = 1;
    snprintf(si->last, sizeof si->last, "%s", d);
    return 0;
}

static void read_stack(stack_info *si) {
    memset(si, 0, sizeof *si);
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, walk_cb, si);
}

int qat_h5_is_checksum(void) {
    stack_info si;
    read_stack(&si);
    return si.checksum;
}

const char *qat_h5_why(char *buf, size_t n) {
    stack_info si;
    read_stack(&si);
    if (si.checksum) snprintf(buf, n, "checksum mismatch (the file is damaged)");
    else if (si.sys_errno > 0) snprintf(buf, n, "%s", strerror(si.sys_errno));
    else if (si.last[0]) snprintf(buf, n, "HDF5: %s", si.last);
    else snprintf(buf, n, "HDF5 error");
    return buf;
}

int qat_h5_fail_write(const char *file, const char *what_fmt, ...) {
    char why[256], what[512];
    qat_h5_why(why, sizeof why);
    va_list ap;
    va_start(ap, what_fmt);
    vsnprintf(what, sizeof what, what_fmt, ap);
    va_end(ap);
    return qat_fail(QAT_ERUNTIME, "%s: %s: %s", file, what, why);
}

int qat_h5_fail_read(int code, const char *file, const char *name, const char *what_fmt, ...) {
    if (qat_h5_is_checksum())
        return qat_fail(QAT_ERUNTIME, "%s: dataset %s%s: checksum mismatch (the file is damaged)", file,
                        name[0] == '/' ? "" : "/", name);
    char what[512];
    va_list ap;
    va_start(ap, what_fmt);
    vsnprintf(what, sizeof what, what_fmt, ap);
    va_end(ap);
    return qat_fail(code, "%s: %s", file, what);
}

hid_t qat_h5_dcpl(int ndim, const hsize_t *dims, size_t elem) {
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    QAT_ASSERT(dcpl >= 0 && ndim >= 1 && ndim <= 8);
    hsize_t row = elem, chunk[8];
    for (int i = 1; i < ndim; i++) row *= dims[i];
    int empty = row == 0 || dims[0] == 0;
    if (empty) {
        H5Pset_layout(dcpl, H5D_COMPACT); /* nothing to protect, and a chunk cannot be 0 long */
        return dcpl;
    }
    /* ~1 MiB chunks: a damaged byte is pinned to a small region, and a chunk
     * stays far below HDF5's 4 GiB limit whatever the model size. */
    hsize_t rows = ((hsize_t)1 << 20) / row;
    if (rows < 1) rows = 1;
    chunk[0] = rows < dims[0] ? rows : dims[0];
    for (int i = 1; i < ndim; i++) chunk[i] = dims[i];
    H5Pset_chunk(dcpl, ndim, chunk);
    H5Pset_fletcher32(dcpl);
    return dcpl;
}

hid_t qat_h5_dcpl_scalar(void) {
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    QAT_ASSERT(dcpl >= 0);
    H5Pset_layout(dcpl, H5D_COMPACT);
    return dcpl;
}

/* Point the file's descriptor at an anonymous file (see qat_h5_close). */
static void divert_descriptor(hid_t f) {
    hid_t fapl = H5Fget_access_plist(f);
    int *fd = NULL;
    if (fapl >= 0 && H5Pget_driver(fapl) == H5FD_SEC2 && H5Fget_vfd_handle(f, fapl, (void **)&fd) >= 0 && fd &&
        *fd >= 0) {
        int m = memfd_create("qat-abandoned-hdf5", MFD_CLOEXEC);
        if (m < 0) {
            FILE *t = tmpfile(); /* where memfd_create is missing */
            m = t ? dup(fileno(t)) : -1;
            if (t) fclose(t);
        }
        if (m >= 0) {
            dup2(m, *fd);
            close(m);
        }
    }
    if (fapl >= 0) H5Pclose(fapl);
}

int qat_h5_close(hid_t f, int failed, char *why, size_t n) {
    if (why && n) why[0] = 0;
    ssize_t k = H5Fget_obj_count(f, H5F_OBJ_DATASET | H5F_OBJ_GROUP | H5F_OBJ_DATATYPE | H5F_OBJ_ATTR | H5F_OBJ_LOCAL);
    if (k > 0) {
        hid_t *ids = qat_xmalloc((size_t)k * sizeof *ids);
        k = H5Fget_obj_ids(f, H5F_OBJ_DATASET | H5F_OBJ_GROUP | H5F_OBJ_DATATYPE | H5F_OBJ_ATTR | H5F_OBJ_LOCAL,
                           (size_t)k, ids);
        for (ssize_t i = 0; i < k; i++) {
            /* a dataset's close writes its cached chunks: that can fail too */
            herr_t e = H5Iget_type(ids[i]) == H5I_ATTR ? H5Aclose(ids[i]) : H5Oclose(ids[i]);
            if (e < 0 && !failed) {
                failed = 1;
                if (why && n) qat_h5_why(why, n);
            }
        }
        free(ids);
    }
    if (!failed && H5Fflush(f, H5F_SCOPE_LOCAL) < 0) {
        failed = 1;
        if (why && n) qat_h5_why(why, n);
    }
    if (failed) divert_descriptor(f);
    herr_t rc = H5Fclose(f);
    if (rc < 0) g_h5_poisoned = 1;
    if (rc < 0 && why && n && !why[0]) qat_h5_why(why, n);
    return failed || rc < 0 ? -1 : 0;
}

int qat_h5_out_create(qat_h5_out *h, const char *path, qat_out_kind kind, const char *const *inputs, int n_inputs) {
    h->file = -1;
    QAT_TRY(qat_out_begin(&h->out, path, QAT_OUT_AS(kind), inputs, n_inputs));
    hid_t fapl = qat_h5_fapl(1, 1); /* latest format: checksummed metadata; no HDF5 lock: the temporary is ours */
    h->file = H5Fcreate(h->out.tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    /* the reason first: H5Pclose clears HDF5's error stack */
    int rc = h->file < 0 ? qat_h5_fail_write(path, "cannot create %s", h->out.tmp) : QAT_OK;
    H5Pclose(fapl);
    if (rc) qat_out_abort(&h->out);
    return rc;
}

int qat_h5_out_finish(qat_h5_out *h, int rc) {
    char why[256];
    if (h->file >= 0 && qat_h5_close(h->file, rc != QAT_OK, why, sizeof why) < 0 && !rc)
        rc = qat_fail(QAT_ERUNTIME, "%s: cannot write: %s", h->out.path, why);
    h->file = -1;
    if (rc) {
        qat_out_abort(&h->out);
        return rc;
    }
    return qat_out_commit(&h->out);
}

hid_t qat_h5_fapl(int latest, int nolock) {
    qat_h5_quiet();
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
    if (e > 0 && H5Adelete(loc, name) < 0) return qat_h5_fail_write(file, "cannot replace attribute %s", name);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, filetype, sp, H5P_DEFAULT, H5P_DEFAULT);
    int rc = QAT_OK;
    if (a < 0 || H5Awrite(a, memtype, v) < 0) rc = qat_h5_fail_write(file, "cannot write attribute %s", name);
    if (a >= 0 && H5Aclose(a) < 0 && !rc) rc = qat_h5_fail_write(file, "cannot write attribute %s", name);
    H5Sclose(sp);
    return rc;
}

int qat_h5_attr_write_str(hid_t loc, const char *file, const char *name, const char *value) {
    hid_t t = vlstr_type();
    const char *s = value ? value : "";
    int rc = qat_h5_attr_write(loc, file, name, t, t, &s);
    H5Tclose(t);
    return rc;
}

/* NAME_crc32: the attribute holding NAME's CRC-32 */
static void crc_name(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s_crc32", name); }

static uint32_t str_crc(const char *s) { return (uint32_t)crc32_z(0L, (const Bytef *)s, strlen(s)); }

int qat_h5_attr_write_str_crc(hid_t loc, const char *file, const char *name, const char *value) {
    const char *s = value ? value : "";
    char cn[128];
    crc_name(cn, sizeof cn, name);
    uint32_t c = str_crc(s);
    QAT_TRY(qat_h5_attr_write_str(loc, file, name, s));
    return qat_h5_attr_write(loc, file, cn, H5T_STD_U32LE, H5T_NATIVE_UINT32, &c);
}

int qat_h5_attr_dup_str_crc(hid_t loc, const char *file, const char *name, char **out) {
    *out = qat_h5_attr_dup_str(loc, name);
    char cn[128];
    crc_name(cn, sizeof cn, name);
    if (!*out || H5Aexists(loc, cn) <= 0) return QAT_OK; /* missing, or written before the CRC was */
    uint32_t c = 0;
    int rc = qat_h5_attr_read(loc, file, cn, H5T_NATIVE_UINT32, &c);
    if (!rc && c != str_crc(*out))
        rc = qat_fail(QAT_ERUNTIME, "%s: attribute %s: checksum mismatch (the file is damaged)", file, name);
    if (rc) {
        free(*out);
        *out = NULL;
    }
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
        hid_t sp = H5Screate(H5S_SCALAR), dcpl = qat_h5_dcpl_scalar();
        d = H5Dcreate2(loc, name, filetype, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        H5Pclose(dcpl);
        H5Sclose(sp);
    }
    if (d < 0) return qat_h5_fail_write(file, "cannot create %s", name);
    int rc = H5Dwrite(d, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0 ? qat_h5_fail_write(file, "cannot write %s", name)
                                                                         : QAT_OK;
    if (H5Dclose(d) < 0 && !rc) rc = qat_h5_fail_write(file, "cannot write %s", name);
    return rc;
}

int qat_h5_scalar_read(hid_t loc, const char *file, const char *name, hid_t memtype, void *v) {
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    if (d < 0) return qat_h5_fail_read(QAT_EINPUT, file, name, "%s is missing", name);
    hid_t sp = H5Dget_space(d);
    int scalar = H5Sget_simple_extent_npoints(sp) == 1;
    H5Sclose(sp);
    int rc = QAT_OK;
    if (!scalar) rc = qat_fail(QAT_EINPUT, "%s: %s is not a scalar", file, name);
    else if (H5Dread(d, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0)
        rc = qat_h5_fail_read(QAT_EINPUT, file, name, "%s is not a readable scalar", name);
    H5Dclose(d);
    return rc;
}

int64_t qat_h5_dset_len(hid_t d) {
    hid_t sp = H5Dget_space(d);
    hsize_t n = 0;
    H5Sget_simple_extent_dims(sp, &n, NULL);
    H5Sclose(sp);
    return (int64_t)n;
}

/* ------------------------------------------------ output destination probe */

/* What core/fsutil's output check cannot see without HDF5 (fsutil.h,
 * qat_out_probe_fn): the kind of an existing HDF5 file, told by the groups
 * each of qat's files has (docs/files.md), and whether a training writes the
 * run directory that holds `path`. */
static qat_out_kind out_probe(const char *path, int is_hdf5, int *live) {
    char dir[QAT_PATH_MAX], runpath[QAT_PATH_MAX + 8];
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    snprintf(runpath, sizeof runpath, "%s/run.h5", dir);
    *live = qat_runlog_is_live(runpath);
    if (!is_hdf5) return QAT_OUT_PLAIN;
    const char *base = slash ? slash + 1 : path;
    /* a live run.h5 is open for SWMR writing: read it the way its readers do */
    hid_t fapl = qat_h5_fapl(0, 1);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    if (f < 0) f = H5Fopen(path, H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, fapl);
    H5Pclose(fapl);
    if (f < 0) /* unreadable (damaged, foreign): its name is all there is to go by */
        return !strcmp(base, "run.h5") ? QAT_OUT_RUNLOG : !strcmp(base, "ckpt.h5") ? QAT_OUT_CKPT : QAT_OUT_H5_OTHER;
    qat_out_kind k = QAT_OUT_H5_OTHER;
    if (qat_h5_exists(f, "train") && qat_h5_exists(f, "eval")) k = QAT_OUT_RUNLOG;
    else if (qat_h5_exists(f, "params") && qat_h5_exists(f, "state")) k = QAT_OUT_CKPT;
    else if (qat_h5_exists(f, "grads") && qat_h5_exists(f, "batch")) k = QAT_OUT_GRADS;
    else if (qat_h5_exists(f, "runs") && qat_h5_exists(f, "pairs")) k = QAT_OUT_FIT;
    H5Fclose(f);
    return k;
}

/* Registered when runlog is linked in (every binary that writes HDF5 is). */
__attribute__((constructor)) static void out_probe_register(void) { qat_out_set_probe(out_probe); }

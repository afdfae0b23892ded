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
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
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
    int truncated;       /* the file is shorter than its superblock's end-of-file address */
    unsigned long long eof, stored_eof; /* its size and that address, bytes (when truncated) */
    char last[256];      /* the innermost description */
} stack_info;

static herr_t walk_cb(unsigned n, const H5E_error2_t *e, void *data) {
    (void)n;
    stack_info *si = data;
    const char *d = e->desc ? e->desc : "";
    const char *p = strstr(d, "errno = ");
    if (p && !si->sys_errno) si->sys_errno = atoi(p + 8);
    if (strstr(d, "checksum") || strstr(d, "Fletcher32")) si->checksum = 1;
    /* H5Fsuper.c: "truncated file: eof = %llu, sblock->base_addr = %llu, stored_eof = %llu" */
    const char *t = strstr(d, "truncated file: eof = ");
    unsigned long long base;
    if (t && sscanf(t, "truncated file: eof = %llu, sblock->base_addr = %llu, stored_eof = %llu", &si->eof, &base,
                    &si->stored_eof) == 3)
        si->truncated = 1;
    snprintf(si->last, sizeof si->last, "%s", d);
    return 0;
}

static void read_stack(stack_info *si) {
    memset(si, 0, sizeof *si);
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, walk_cb, si);
}

int qat_h5_open_damage(const char *path) {
    stack_info si;
    read_stack(&si);
    if (si.checksum) return qat_fail(QAT_ERUNTIME, "%s: checksum mismatch in the file's metadata (the file is damaged)", path);
    if (si.truncated)
        return qat_fail(QAT_ERUNTIME, "%s: truncated: %llu bytes of the %llu its superblock records (the file is "
                        "damaged, or was not copied whole)", path, si.eof, si.stored_eof);
    return QAT_OK;
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
    hid_t fcpl = qat_h5_fcpl();
    h->file = H5Fcreate(h->out.tmp, H5F_ACC_TRUNC, fcpl, fapl);
    /* the reason first: H5Pclose clears HDF5's error stack */
    int rc = h->file < 0 ? qat_h5_fail_write(path, "cannot create %s", h->out.tmp) : QAT_OK;
    H5Pclose(fcpl);
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

int qat_h5_in_check(const char *path, const char *what) {
    struct stat st;
    if (stat(path, &st) != 0 || access(path, R_OK) != 0)
        return qat_fail(QAT_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))
        return qat_fail(QAT_EINPUT, "%s: is a pipe, not a file (expected %s; HDF5 reads a file by seeking, "
                        "which a pipe cannot: copy it to a file first)", path, what);
    return QAT_OK;
}

void qat_h5_swmr_attempts(hid_t fapl, int live) { H5Pset_metadata_read_attempts(fapl, live ? 28 : 1); }

int qat_h5_exists(hid_t loc, const char *name) {
    /* qat_h5_link_exists' walk, with what it cannot read taken as absent; the
     * message it records then is dropped, and a caller's earlier one kept */
    char keep[4096];
    snprintf(keep, sizeof keep, "%s", qat_errmsg());
    int yes = 0;
    if (qat_h5_link_exists(loc, "", name, &yes)) {
        if (keep[0]) qat_fail(QAT_ERUNTIME, "%s", keep);
        else qat_clear_error();
        yes = 0;
    }
    return yes;
}

/* QAT_ERUNTIME "FILE: WHAT NAME: checksum mismatch (the file is damaged)", or
 * "...: cannot be read, the file is damaged (HDF5's reason)": something the
 * file says is there could not be read. Call it right after the failing call.
 * Objects are named by their path from the root, attributes by their name. */
static int damaged(const char *file, const char *what, const char *name) {
    int sum = qat_h5_is_checksum();
    char why[256] = "";
    if (!sum) qat_h5_why(why, sizeof why);
    const char *slash = strcmp(what, "attribute ") && name[0] != '/' ? "/" : "";
    if (sum)
        return qat_fail(QAT_ERUNTIME, "%s: %s%s%s: checksum mismatch (the file is damaged)", file, what, slash, name);
    return qat_fail(QAT_ERUNTIME, "%s: %s%s%s: cannot be read, the file is damaged (%s)", file, what, slash, name, why);
}

int qat_h5_damaged(const char *file, const char *what, const char *name) { return damaged(file, what, name); }

int qat_h5_link_exists(hid_t loc, const char *file, const char *name, int *yes) {
    *yes = 0;
    char buf[1024];
    size_t n = strlen(name);
    if (n >= sizeof buf) return qat_fail(QAT_EINPUT, "%s: object name too long: %.64s...", file, name);
    memcpy(buf, name, n + 1);
    for (char *p = buf + (buf[0] == '/');; p++) {
        char *slash = strchr(p, '/');
        if (slash) *slash = 0;
        htri_t e;
        H5E_BEGIN_TRY { e = H5Lexists(loc, buf, H5P_DEFAULT); } H5E_END_TRY;
        if (e < 0) { /* the group holding the link cannot be read */
            char *up = strrchr(buf, '/');
            if (up && up != buf) *up = 0;
            else strcpy(buf, "/");
            return damaged(file, "group ", buf);
        }
        if (e == 0) return QAT_OK;
        if (!slash) return *yes = 1, QAT_OK;
        /* the next lookup goes through this object: only a group has links */
        H5O_info_t oi;
        herr_t ok;
        H5E_BEGIN_TRY { ok = H5Oget_info_by_name2(loc, buf, &oi, H5O_INFO_BASIC, H5P_DEFAULT); } H5E_END_TRY;
        if (ok < 0) return damaged(file, "", buf);
        if (oi.type != H5O_TYPE_GROUP) return QAT_OK;
        *slash = '/';
        p = slash;
    }
}

int qat_h5_attr_exists(hid_t loc, const char *file, const char *name, int *yes) {
    htri_t e;
    H5E_BEGIN_TRY { e = H5Aexists(loc, name); } H5E_END_TRY;
    *yes = e > 0;
    return e < 0 ? damaged(file, "attribute ", name) : QAT_OK;
}

hid_t qat_h5_fcpl(void) {
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    QAT_ASSERT(fcpl >= 0);
    /* Every root attribute stays in the root's object header (up to 64 KiB
     * each), whose checksum covers it. Beyond 8 of them HDF5 would move them to
     * "dense" storage, where a value over 4 KiB (run.h5's config) is a "huge"
     * heap object that nothing checksums. */
    H5Pset_attr_phase_change(fcpl, 65535, 0);
    return fcpl;
}

hid_t qat_h5_str_type(size_t len) {
    hid_t t = H5Tcopy(H5T_C_S1);
    QAT_ASSERT(t >= 0);
    H5Tset_size(t, len + 1);
    H5Tset_strpad(t, H5T_STR_NULLTERM);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

/* ---------------------------------- variable-length strings of older files
 *
 * Files written before qat stored strings fixed-length keep the characters of
 * each string in a global heap collection ("GCOL"), the one structure of the
 * format without a checksum, and HDF5 1.10 trusts it: a damaged object size
 * or index made H5Aread/H5Dread crash, write past its buffer or loop for
 * ever. So before HDF5 reads such a string, the heap reference stored for it
 * (in the checksummed header: length, collection address, object index) is
 * taken without following it, and the collection it names is walked here the
 * way HDF5 will walk it; only a collection HDF5 can read safely, holding an
 * object of exactly that length, is left to HDF5. The raw references come
 * from a conversion to an opaque type of ours: HDF5 hands a conversion
 * function the stored bytes, and this one returns them untouched. */

#define VL_RAW 32 /* bytes per raw reference in our buffer: 4 + address + 4 */
static const char VL_TAG[] = "qat: heap reference of a variable-length string";

static herr_t vl_raw_conv(hid_t src, hid_t dst, H5T_cdata_t *cd, size_t n, size_t stride, size_t bkg_stride,
                          void *buf, void *bkg, hid_t dxpl) {
    (void)bkg_stride;
    (void)bkg;
    (void)dxpl;
    if (cd->command == H5T_CONV_INIT) {
        if (H5Tis_variable_str(src) <= 0 || H5Tget_class(dst) != H5T_OPAQUE) return -1;
        char *tag = H5Tget_tag(dst);
        int ours = tag && !strcmp(tag, VL_TAG);
        if (tag) H5free_memory(tag);
        if (!ours || H5Tget_size(src) > H5Tget_size(dst)) return -1;
        cd->need_bkg = H5T_BKG_NO;
        return 0;
    }
    if (cd->command == H5T_CONV_CONV) {
        size_t ss = H5Tget_size(src), ds = H5Tget_size(dst);
        if (stride && stride != ss) return -1;
        unsigned char *b = buf;
        for (size_t i = n; i-- > 0;) { /* spread in place, last first */
            memmove(b + i * ds, b + i * ss, ss);
            memset(b + i * ds + ss, 0, ds - ss);
        }
    }
    return 0;
}

static hid_t vl_raw_type(void) {
    static int registered;
    if (!registered) {
        hid_t vl = H5Tcopy(H5T_C_S1), op = H5Tcreate(H5T_OPAQUE, VL_RAW);
        H5Tset_size(vl, H5T_VARIABLE);
        H5Tset_tag(op, VL_TAG);
        registered = H5Tregister(H5T_PERS_SOFT, "qat_vl_raw", vl, op, vl_raw_conv) >= 0;
        H5Tclose(vl);
        H5Tclose(op);
        if (!registered) return -1;
    }
    hid_t op = H5Tcreate(H5T_OPAQUE, VL_RAW);
    H5Tset_tag(op, VL_TAG);
    return op;
}

static uint64_t le(const unsigned char *p, size_t n) {
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;) v = v << 8 | p[i];
    return v;
}

/* One global heap collection as HDF5 will read it: per object index (0..65535)
 * its size, -1 when absent. */
typedef struct {
    uint64_t addr; /* absolute offset in the file; 0 = none parsed yet */
    int64_t *size;
} gcol;

/* Walk the collection at absolute offset `at` as HDF5 1.10's H5HG deserializer
 * does (H5HGcache.c): signature, version 1, a size of at least 4096 bytes
 * inside the file, then objects (index u16, refcount u16, 4 reserved, size)
 * each padded to 8 bytes, index 0 the free space whose size includes its
 * header, until they end exactly at the collection's end. 0, or -1 with `why`. */
static int gcol_parse(int fd, uint64_t at, size_t ss, gcol *g, const char **why) {
    struct stat st;
    unsigned char hdr[32];
    size_t hsz = 8 + ss, osz = 8 + ss;
    if (fstat(fd, &st) < 0) return *why = "cannot stat the file", -1;
    uint64_t eof = (uint64_t)st.st_size;
    if (ss < 4 || ss > 8 || at >= eof || eof - at < hsz || pread(fd, hdr, hsz, (off_t)at) != (ssize_t)hsz)
        return *why = "its heap address is outside the file", -1;
    if (memcmp(hdr, "GCOL", 4) || hdr[4] != 1) return *why = "no heap collection where its reference points", -1;
    uint64_t size = le(hdr + 8, ss);
    if (size < 4096 || size > eof - at || size > ((uint64_t)1 << 30))
        return *why = "its heap collection has a bad size", -1;
    unsigned char *c = qat_xmalloc((size_t)size);
    int rc = 0;
    if (pread(fd, c, (size_t)size, (off_t)at) != (ssize_t)size) {
        *why = "cannot read its heap collection";
        rc = -1;
    }
    if (!g->size) g->size = qat_xmalloc(65536 * sizeof *g->size);
    for (int i = 0; i < 65536; i++) g->size[i] = -1;
    for (uint64_t p = hsz; !rc && p < size;) {
        if (p + osz > size) break; /* a tail too small for an object: free space */
        unsigned idx = (unsigned)le(c + p, 2);
        uint64_t n = le(c + p + 8, ss), need;
        if (n > size) need = UINT64_MAX;
        else need = idx ? osz + ((n + 7) & ~(uint64_t)7) : n;
        if (need < osz || need > size - p || (idx && g->size[idx] >= 0)) {
            *why = "its heap collection is damaged";
            rc = -1;
            break;
        }
        if (idx) g->size[idx] = (int64_t)n;
        p += need;
    }
    free(c);
    g->addr = rc ? 0 : at;
    return rc;
}

/* Every string of attribute `obj` (is_attr) or dataset `obj` (n of them) is a
 * reference HDF5 can follow safely. QAT_OK, or QAT_ERUNTIME naming `what`. */
static int vl_check(hid_t obj, int is_attr, const char *file, const char *what, const char *name, size_t n) {
    hid_t op = vl_raw_type();
    if (op < 0) return qat_fail(QAT_ERUNTIME, "%s: %s%s: cannot check its variable-length strings", file, what, name);
    unsigned char *raw = qat_xcalloc(n ? n : 1, VL_RAW);
    herr_t e = n == 0 ? 0 : is_attr ? H5Aread(obj, op, raw) : H5Dread(obj, op, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw);
    int rc = e < 0 ? damaged(file, what, name) : QAT_OK;
    H5Tclose(op);
    hid_t fid = rc ? -1 : H5Iget_file_id(obj), fcpl = -1, fapl = -1;
    size_t sa = 0, ss = 0;
    hsize_t ub = 0;
    int fd = -1, own_fd = 0;
    if (fid >= 0) {
        fcpl = H5Fget_create_plist(fid);
        fapl = H5Fget_access_plist(fid);
        if (fcpl >= 0) {
            H5Pget_sizes(fcpl, &sa, &ss);
            H5Pget_userblock(fcpl, &ub);
        }
        int *h = NULL;
        if (fapl >= 0 && H5Pget_driver(fapl) == H5FD_SEC2 && H5Fget_vfd_handle(fid, fapl, (void **)&h) >= 0 && h)
            fd = *h;
        if (fd < 0) { /* another driver: read the file by its name */
            char nm[QAT_PATH_MAX];
            if (H5Fget_name(fid, nm, sizeof nm) > 0 && (fd = open(nm, O_RDONLY | O_CLOEXEC)) >= 0) own_fd = 1;
        }
    }
    if (!rc && (fd < 0 || sa < 4 || sa > 8 || 8 + sa > VL_RAW))
        rc = qat_fail(QAT_ERUNTIME, "%s: %s%s: cannot check its variable-length strings", file, what, name);
    gcol g = {0};
    for (size_t i = 0; !rc && i < n; i++) {
        const unsigned char *p = raw + i * VL_RAW;
        uint64_t len = le(p, 4), addr = le(p + 4, sa), idx = le(p + 4 + sa, 4);
        const char *why = NULL;
        if (addr == 0) { /* no heap object: HDF5 reads nothing */
            if (len) why = "a string without characters has a length"; /* and would hand back garbage */
        } else if (g.addr != addr + ub && gcol_parse(fd, addr + ub, ss, &g, &why) < 0) {
        } else if (idx == 0 || idx > 65535 || g.size[idx] < 0) {
            why = "its heap object is missing";
        } else if ((uint64_t)g.size[idx] != len) {
            why = "its heap object has another length";
        }
        if (why)
            rc = qat_fail(QAT_ERUNTIME, "%s: %s%s: %s (the file is damaged)", file, what, name, why);
    }
    free(g.size);
    free(raw);
    if (own_fd) close(fd);
    if (fcpl >= 0) H5Pclose(fcpl);
    if (fapl >= 0) H5Pclose(fapl);
    if (fid >= 0) H5Fclose(fid);
    return rc;
}

int qat_h5_attr_write(hid_t loc, const char *file, const char *name, hid_t filetype, hid_t memtype, const void *v) {
    int e;
    QAT_TRY(qat_h5_attr_exists(loc, file, name, &e));
    if (e) {
        /* an older file's string: HDF5 frees its heap object, so it must be sound */
        hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
        if (a < 0) return damaged(file, "attribute ", name);
        hid_t t = H5Aget_type(a);
        int rc = t >= 0 && H5Tis_variable_str(t) > 0 ? vl_check(a, 1, file, "attribute ", name, 1) : QAT_OK;
        if (t >= 0) H5Tclose(t);
        H5Aclose(a);
        QAT_TRY(rc);
        if (H5Adelete(loc, name) < 0) return qat_h5_fail_write(file, "cannot replace attribute %s", name);
    }
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, filetype, sp, H5P_DEFAULT, H5P_DEFAULT);
    int rc = QAT_OK;
    if (a < 0 || H5Awrite(a, memtype, v) < 0) rc = qat_h5_fail_write(file, "cannot write attribute %s", name);
    if (a >= 0 && H5Aclose(a) < 0 && !rc) rc = qat_h5_fail_write(file, "cannot write attribute %s", name);
    H5Sclose(sp);
    return rc;
}

int qat_h5_attr_write_str(hid_t loc, const char *file, const char *name, const char *value) {
    const char *s = value ? value : "";
    hid_t t = qat_h5_str_type(strlen(s));
    int rc = qat_h5_attr_write(loc, file, name, t, t, s);
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
    QAT_TRY(qat_h5_attr_get_str(loc, file, name, out));
    char cn[128];
    crc_name(cn, sizeof cn, name);
    int has = 0;
    int rc = *out ? qat_h5_attr_exists(loc, file, cn, &has) : QAT_OK;
    if (!*out || (!rc && !has)) return rc; /* missing, or written before the CRC was */
    uint32_t c = 0;
    if (!rc) rc = qat_h5_attr_read(loc, file, cn, H5T_NATIVE_UINT32, &c);
    if (!rc && c != str_crc(*out))
        rc = qat_fail(QAT_ERUNTIME, "%s: attribute %s: checksum mismatch (the file is damaged)", file, name);
    if (rc) {
        free(*out);
        *out = NULL;
    }
    return rc;
}

int qat_h5_attr_read(hid_t loc, const char *file, const char *name, hid_t memtype, void *v) {
    int e;
    QAT_TRY(qat_h5_attr_exists(loc, file, name, &e));
    if (!e) return qat_fail(QAT_EINPUT, "%s: attribute %s is missing", file, name);
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0) return damaged(file, "attribute ", name);
    hid_t sp = H5Aget_space(a);
    hssize_t np = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    if (sp >= 0) H5Sclose(sp);
    herr_t rc = np == 1 ? H5Aread(a, memtype, v) : -1;
    H5Aclose(a);
    return rc < 0 ? qat_fail(QAT_EINPUT, "%s: attribute %s has the wrong type", file, name) : QAT_OK;
}

/* Fixed-length strings in `buf` (n of `size` bytes each) as C strings: up to
 * the first NUL, trailing spaces dropped for space-padded ones (other tools). */
static void fixed_end(char *s, size_t size, hid_t ft) {
    size_t k = strnlen(s, size);
    if (H5Tget_strpad(ft) == H5T_STR_SPACEPAD)
        while (k > 0 && s[k - 1] == ' ') k--;
    s[k < size ? k : size] = 0;
}

int qat_h5_attr_get_str(hid_t loc, const char *file, const char *name, char **out) {
    *out = NULL;
    int e;
    QAT_TRY(qat_h5_attr_exists(loc, file, name, &e));
    if (!e) return QAT_OK;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0) return damaged(file, "attribute ", name);
    hid_t ft = H5Aget_type(a), sp = H5Aget_space(a);
    hssize_t np = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    int rc = QAT_OK;
    if (ft < 0 || H5Tget_class(ft) != H5T_STRING || np != 1) {
        rc = qat_fail(QAT_EINPUT, "%s: attribute %s is not a string", file, name);
    } else if (H5Tis_variable_str(ft) > 0) {
        rc = vl_check(a, 1, file, "attribute ", name, 1);
        char *s = NULL;
        if (!rc && H5Aread(a, ft, &s) < 0) rc = damaged(file, "attribute ", name);
        if (!rc) *out = qat_xstrdup(s ? s : ""); /* NULL: a string written as none */
        if (s) H5free_memory(s);
    } else {
        size_t n = H5Tget_size(ft);
        char *s = qat_xcalloc(n + 1, 1);
        if (H5Aread(a, ft, s) < 0) {
            free(s);
            rc = damaged(file, "attribute ", name);
        } else {
            fixed_end(s, n, ft);
            *out = s;
        }
    }
    if (ft >= 0) H5Tclose(ft);
    if (sp >= 0) H5Sclose(sp);
    H5Aclose(a);
    return rc;
}

int qat_h5_attr_read_str(hid_t loc, const char *file, const char *name, char *buf, size_t size) {
    char *s;
    QAT_TRY(qat_h5_attr_get_str(loc, file, name, &s));
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

int qat_h5_read_strs(hid_t d, const char *file, const char *name, int n, size_t width, char *out) {
    memset(out, 0, (size_t)(n > 0 ? n : 0) * width);
    hid_t ft = H5Dget_type(d), sp = H5Dget_space(d);
    hssize_t np = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    int rc = QAT_OK;
    if (ft < 0 || H5Tget_class(ft) != H5T_STRING)
        rc = qat_fail(QAT_EINPUT, "%s: /%s is not a table of strings", file, name[0] == '/' ? name + 1 : name);
    else if (np != n)
        rc = qat_fail(QAT_EINPUT, "%s: /%s has %lld rows, expected %d", file, name[0] == '/' ? name + 1 : name,
                      (long long)np, n);
    else if (n == 0) {
    } else if (H5Tis_variable_str(ft) > 0) {
        rc = vl_check(d, 0, file, "dataset ", name, (size_t)n);
        char **v = qat_xcalloc((size_t)n, sizeof *v);
        int read = !rc && H5Dread(d, ft, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0;
        if (!rc && !read) rc = damaged(file, "dataset ", name);
        for (int i = 0; read && !rc && i < n; i++) {
            size_t k = v[i] ? strlen(v[i]) : 0;
            if (k >= width) rc = qat_fail(QAT_EINPUT, "%s: /%s: row %d is too long (%zu bytes)", file,
                                          name[0] == '/' ? name + 1 : name, i, k);
            else if (k) memcpy(out + (size_t)i * width, v[i], k);
        }
        if (read) H5Dvlen_reclaim(ft, sp, H5P_DEFAULT, v);
        free(v);
    } else {
        size_t sz = H5Tget_size(ft);
        char *buf = qat_xmalloc((size_t)n * sz + 1);
        if (H5Dread(d, ft, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
            rc = damaged(file, "dataset ", name);
        char *row = qat_xmalloc(sz + 1);
        for (int i = 0; !rc && i < n; i++) {
            memcpy(row, buf + (size_t)i * sz, sz);
            row[sz] = 0;
            fixed_end(row, sz, ft);
            size_t k = strlen(row);
            if (k >= width) rc = qat_fail(QAT_EINPUT, "%s: /%s: row %d is too long (%zu bytes)", file,
                                          name[0] == '/' ? name + 1 : name, i, k);
            else memcpy(out + (size_t)i * width, row, k);
        }
        free(row);
        free(buf);
    }
    if (ft >= 0) H5Tclose(ft);
    if (sp >= 0) H5Sclose(sp);
    return rc;
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
    int e;
    QAT_TRY(qat_h5_link_exists(loc, file, name, &e));
    if (!e) return qat_fail(QAT_EINPUT, "%s: %s is missing", file, name);
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    if (d < 0) return damaged(file, "dataset ", name);
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
    /* one SWMR retry per live writer's flush, not HDF5's 100: on a damaged superblock
     * those were a wait of ages that no signal ended (qat_h5_swmr_attempts) */
    qat_h5_swmr_attempts(fapl, *live);
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

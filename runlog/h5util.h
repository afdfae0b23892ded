/*
 * runlog/h5util.h — the few HDF5 chores run logs and checkpoints share:
 * string/number attributes and scalar datasets with one call each, a file
 * access list, and turning HDF5's error stack into a qat message.
 *
 * Shared by every HDF5 writer and reader of qat (runlog/, train/grads.c,
 * scaling/fit_h5.c): every function returns QAT_OK or a qat error code with
 * qat_errmsg() set ("FILE: what failed"), so callers can QAT_TRY them.
 *
 * Failures are one line: HDF5's own printing of its error stack is off
 * (qat_h5_quiet, done by qat_h5_fapl), and qat_h5_why reads the reason off
 * that stack (the errno of a full disk, a checksum that did not match).
 *
 * Integrity: every array dataset qat writes is chunked with HDF5's fletcher32
 * checksum filter (qat_h5_dcpl), every scalar is compact (qat_h5_dcpl_scalar),
 * so its value lives in the object header, and files use the latest format,
 * whose metadata (superblock, object headers, B-trees, heaps of names) is
 * checksummed too; HDF5 verifies both on every read, and the readers here
 * turn a mismatch into "FILE: dataset NAME: checksum mismatch" (QAT_ERUNTIME).
 * HDF5 keeps the bytes of variable-length strings in a global heap without a
 * checksum: the `config` attribute carries its own (qat_h5_attr_write_str_crc);
 * the string tables of FIT.h5 are not covered.
 */
#ifndef QAT_RUNLOG_H5UTIL_H
#define QAT_RUNLOG_H5UTIL_H

#include <hdf5.h>
#include <stddef.h>

#include "core/fsutil.h"

/* HDF5 prints nothing by itself from now on (idempotent). */
void qat_h5_quiet(void);

/* Why the HDF5 call that just failed failed, read off HDF5's error stack:
 * the system's reason when a file driver call failed ("No space left on
 * device"), "checksum mismatch (the file is damaged)" for a checksum, else
 * HDF5's innermost description. Call it before any other HDF5 call (most of
 * them clear the stack). Returns buf. */
const char *qat_h5_why(char *buf, size_t n);

/* 1 when the error on the stack is a checksum that did not match. */
int qat_h5_is_checksum(void);

/* A write failed: QAT_ERUNTIME, "FILE: <what>: <why>". */
int qat_h5_fail_write(const char *file, const char *what_fmt, ...) __attribute__((format(printf, 2, 3)));

/* A read of dataset or object `name` failed: on a checksum mismatch
 * QAT_ERUNTIME "FILE: dataset NAME: checksum mismatch (the file is damaged)",
 * otherwise `code` with "FILE: <what>". */
int qat_h5_fail_read(int code, const char *file, const char *name, const char *what_fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Creation property list of an array dataset of this shape (elements of
 * `elem` bytes): chunked (about 1 MiB a chunk, along the first dimension)
 * with the fletcher32 checksum; compact when it holds no element. */
hid_t qat_h5_dcpl(int ndim, const hsize_t *dims, size_t elem);

/* Creation property list of a scalar dataset: compact (checksummed with its
 * object header in the latest format). */
hid_t qat_h5_dcpl_scalar(void);

/* Close file `f` and every object still open in it. `failed` says a write to
 * it already failed; a failing flush says so too. A file with unwritable
 * metadata cannot be closed cleanly by HDF5 1.10 (its close leaves a
 * half-closed file that crashes the library at exit), so its descriptor is
 * first pointed at an anonymous memory file: what HDF5 still wants to write
 * lands there, and the file on disk stays as the last successful write left
 * it. Returns 0, or -1 with the first reason in `why` (the file is closed
 * either way). */
int qat_h5_close(hid_t f, int failed, char *why, size_t n);

/* A one-shot output file (ckpt.h5, GRADS.h5, FIT.h5) written through
 * core/fsutil's qat_out: checked against its inputs, created at the
 * temporary in the latest format, renamed into place by qat_h5_out_finish. */
typedef struct {
    qat_out out;   /* the destination and its temporary */
    hid_t file;    /* open on out.tmp */
} qat_h5_out;

/* `kind` is what the file is (fsutil.h): an existing file of another kind is refused. */
int qat_h5_out_create(qat_h5_out *h, const char *path, qat_out_kind kind, const char *const *inputs, int n_inputs);

/* rc == QAT_OK: close (flushing), commit; any failure removes the temporary
 * with one message naming the destination. rc != QAT_OK (the caller's write
 * failed, its message recorded): close, remove, and return rc. */
int qat_h5_out_finish(qat_h5_out *h, int rc);

/* File access list: latest format (needed for SWMR) when `latest`, HDF5 file
 * locking off when `nolock` (our writers lock a sidecar instead). */
hid_t qat_h5_fapl(int latest, int nolock);

/* Attributes on `loc` (file or group). Writes replace an existing attribute.
 * Strings are stored UTF-8 variable-length; reads accept fixed-length too. */
int qat_h5_attr_write_str(hid_t loc, const char *file, const char *name, const char *value);
int qat_h5_attr_write(hid_t loc, const char *file, const char *name, hid_t filetype, hid_t memtype, const void *v);
int qat_h5_attr_read_str(hid_t loc, const char *file, const char *name, char *buf, size_t size);
char *qat_h5_attr_dup_str(hid_t loc, const char *name); /* malloc'd; NULL when missing */
/* A string attribute with its own checksum: HDF5 keeps a variable-length string's
 * characters in a global heap that has none, so NAME goes with NAME_crc32 (zlib's
 * CRC-32 of its bytes, a uint32 in the checksummed object header). The read gives
 * *out malloc'd (NULL when NAME is missing: QAT_OK, the caller says what it
 * needed), QAT_ERUNTIME "FILE: attribute NAME: checksum mismatch (the file is
 * damaged)" when the CRC does not match; a file written before the CRC was is read
 * as it is. Used for the `config` attribute of run.h5 and ckpt.h5. */
int qat_h5_attr_write_str_crc(hid_t loc, const char *file, const char *name, const char *value);
int qat_h5_attr_dup_str_crc(hid_t loc, const char *file, const char *name, char **out);
int qat_h5_attr_read(hid_t loc, const char *file, const char *name, hid_t memtype, void *v);

/* Scalar datasets (/final/..., /state/...): compact, and read back with a
 * checksum mismatch reported as such. */
int qat_h5_scalar_write(hid_t loc, const char *file, const char *name, hid_t filetype, hid_t memtype, const void *v);
int qat_h5_scalar_read(hid_t loc, const char *file, const char *name, hid_t memtype, void *v);

/* 1 when `name` (a path relative to loc, intermediate groups included) exists. */
int qat_h5_exists(hid_t loc, const char *name);
/* Current length of a 1-D dataset. */
int64_t qat_h5_dset_len(hid_t d);

#endif

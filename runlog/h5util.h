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
 * Strings are fixed-length (qat_h5_str_type), so they live in those same
 * checksummed places; root attributes stay in the root's object header
 * (qat_h5_fcpl). Files written before that hold variable-length strings,
 * whose characters sit in a global heap without a checksum: the readers
 * accept them, after checking that the heap can be read safely (a damaged one
 * crashed or hung HDF5), and the `config` attribute carries its own CRC
 * (qat_h5_attr_write_str_crc).
 *
 * Readers tell "absent" from "unreadable": qat_h5_link_exists and
 * qat_h5_attr_exists report a lookup that fails as damage, never as absent,
 * so that an optional part of a damaged file is not silently taken as missing.
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

/* An HDF5 input before it is opened: QAT_EINPUT "PATH: cannot open: <reason>"
 * when it cannot be read, and "PATH: is a pipe, not a file (expected WHAT ...)"
 * for a FIFO or socket. HDF5 reads a file by seeking, which a pipe cannot, and
 * opening a FIFO with no writer blocks in open() with the stop signals caught
 * and restarted (core/stop.h): `train --init FIFO` waited for ever, deaf to
 * SIGINT and SIGTERM. stat() and access() never block. */
int qat_h5_in_check(const char *path, const char *what);

/* After an H5Fopen of `path` failed: QAT_ERUNTIME when the error stack says the
 * file is damaged, "PATH: checksum mismatch in the file's metadata (the file is
 * damaged)" or "PATH: truncated: N bytes of the M its superblock records (...)";
 * else QAT_OK, and the caller says what the file is not (exit 2). One rule for
 * every reader: a FIT.h5 and a checkpoint cut short were exit 2 ("not a readable
 * HDF5 checkpoint") while a run log cut short was exit 1. */
int qat_h5_open_damage(const char *path);

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

/* How often a SWMR reader (H5F_ACC_SWMR_READ) opened with `fapl` retries metadata
 * whose checksum fails. HDF5 retries 100 times, sleeping 1, 2, 4, ... ns between
 * tries: on a damaged file (a flipped superblock byte) that is a wait of ages, in
 * a sleep no signal ends. A live writer (`live`: someone holds the run's lock)
 * may be mid-write, so 28 tries (~0.27 s in all, far longer than a flush of one
 * metadata block); with none, a checksum that fails is damage and one try says so. */
void qat_h5_swmr_attempts(hid_t fapl, int live);

/* File creation list of every file qat writes: root attributes kept in the
 * root's checksummed object header (HDF5 moves more than 8 to "dense"
 * storage, where a value over 4 KiB is stored without a checksum). */
hid_t qat_h5_fcpl(void);

/* The string type qat writes: fixed-length, `len` characters and a NUL,
 * null-terminated, UTF-8 (h5py reads it as bytes; .decode() gives str). */
hid_t qat_h5_str_type(size_t len);

/* Attributes on `loc` (file or group). Writes replace an existing attribute.
 * Strings are written fixed-length (qat_h5_str_type); reads accept
 * variable-length ones too (files written before), after checking that the
 * global heap holding their characters can be read safely: a damaged heap is
 * QAT_ERUNTIME "FILE: attribute NAME: ... (the file is damaged)". */
int qat_h5_attr_write_str(hid_t loc, const char *file, const char *name, const char *value);
int qat_h5_attr_write(hid_t loc, const char *file, const char *name, hid_t filetype, hid_t memtype, const void *v);
int qat_h5_attr_read_str(hid_t loc, const char *file, const char *name, char *buf, size_t size);
/* String attribute NAME: *out malloc'd, NULL when absent (QAT_OK); damage is
 * QAT_ERUNTIME, a NAME that is no string QAT_EINPUT. */
int qat_h5_attr_get_str(hid_t loc, const char *file, const char *name, char **out);
/* A string attribute with its own checksum: NAME goes with NAME_crc32 (zlib's
 * CRC-32 of its bytes, a uint32). Since strings are fixed-length the header's
 * checksum covers NAME too; the CRC stays for the files written before, whose
 * characters had none (and a config over 64 KiB, which HDF5 stores outside the
 * header). The read gives *out malloc'd (NULL when NAME is missing: QAT_OK, the
 * caller says what it needed), QAT_ERUNTIME "FILE: attribute NAME: checksum
 * mismatch (the file is damaged)" when the CRC does not match; a file written
 * before the CRC was is read as it is. Used for the `config` attribute of run.h5
 * and ckpt.h5. */
int qat_h5_attr_write_str_crc(hid_t loc, const char *file, const char *name, const char *value);
int qat_h5_attr_dup_str_crc(hid_t loc, const char *file, const char *name, char **out);
/* A number attribute: QAT_EINPUT when missing or not a number, QAT_ERUNTIME when damaged. */
int qat_h5_attr_read(hid_t loc, const char *file, const char *name, hid_t memtype, void *v);

/* The n strings of 1-D dataset `d` (named `name` in messages) into n rows of
 * `width` bytes each: fixed-length or (older files) variable-length, the
 * latter after the heap check above. QAT_EINPUT when it is not n strings or
 * one does not fit in width - 1 bytes; QAT_ERUNTIME when damaged. */
int qat_h5_read_strs(hid_t d, const char *file, const char *name, int n, size_t width, char *out);

/* Whether link `name` (a path relative to loc, intermediate groups included)
 * or attribute `name` of loc exists, in *yes: QAT_OK, or QAT_ERUNTIME "FILE:
 * /NAME: checksum mismatch (the file is damaged)" when the lookup itself
 * failed (a group or attribute storage that cannot be read): never "absent". */
int qat_h5_link_exists(hid_t loc, const char *file, const char *name, int *yes);
int qat_h5_attr_exists(hid_t loc, const char *file, const char *name, int *yes);
/* QAT_ERUNTIME for object or attribute `name` (what: "attribute ", "dataset "
 * or "") that exists but could not be opened or read: "FILE: WHAT NAME:
 * checksum mismatch (the file is damaged)" or "...: cannot be read, the file is
 * damaged (HDF5's reason)". Call it right after the failing HDF5 call. */
int qat_h5_damaged(const char *file, const char *what, const char *name);

/* Scalar datasets (/final/..., /state/...): compact, and read back with a
 * checksum mismatch reported as such. */
int qat_h5_scalar_write(hid_t loc, const char *file, const char *name, hid_t filetype, hid_t memtype, const void *v);
int qat_h5_scalar_read(hid_t loc, const char *file, const char *name, hid_t memtype, void *v);

/* 1 when `name` (a path relative to loc, intermediate groups included)
 * exists; 0 when absent or when the lookup failed (writers, probes: readers
 * use qat_h5_link_exists). */
int qat_h5_exists(hid_t loc, const char *name);
/* Current length of a 1-D dataset. */
int64_t qat_h5_dset_len(hid_t d);

#endif

/*
 * core/fsutil.h — the file-system operations several modules need: mkdir -p,
 * and the one way qat writes an output file (qat_out_*).
 *
 * Every file qat writes (a checkpoint, a fit, a plot, a CSV, a token shard,
 * a gradients file, a sweep's resolved base) goes through qat_out, so that
 * they all keep the same promises (docs/cli.md, "Output files"):
 *
 *   - the destination is checked first: an empty path, an existing path that
 *     is not a regular file (a directory, a device, a FIFO) and a path that is
 *     one of the command's inputs (same device and inode, however it is
 *     spelled) are refused with QAT_EINPUT before anything is written;
 *   - the bytes go to a temporary beside the destination (same directory, so
 *     the rename is atomic), which is flushed, fsync'd and renamed over the
 *     destination, then the directory is fsync'd: a reader sees the old file
 *     or the new one, never a part;
 *   - any failure (a full disk, a read-only file system, a size limit) removes
 *     the temporary and is one QAT_ERUNTIME message naming the destination and
 *     the system's reason.
 *
 * Writing a text file:
 *
 *     qat_out o;
 *     QAT_TRY(qat_out_begin(&o, path, 0, inputs, n_inputs));
 *     FILE *f = qat_out_stream(&o);
 *     fprintf(f, ...);
 *     QAT_TRY(qat_out_commit(&o));     // or qat_out_abort(&o) to give up
 *
 * A library that opens the file by name itself (HDF5) writes to o.tmp and
 * then commits; the descriptor o.fd stays open so that the commit can fsync.
 */
#ifndef QAT_CORE_FSUTIL_H
#define QAT_CORE_FSUTIL_H

#include <stddef.h>
#include <stdio.h>

#include "config.h"

/* mkdir -p: create `path` and any missing parents. QAT_ERUNTIME naming the
 * directory that could not be made. */
int qat_mkdirs(const char *path);

/* An output file being written (see above). */
typedef struct {
    char path[QAT_PATH_MAX];       /* the destination */
    char tmp[QAT_PATH_MAX + 32];   /* the temporary beside it */
    int fd;                        /* open on tmp for writing; -1 when none */
    FILE *fp;                      /* stdio stream over fd, once qat_out_stream was called */
    int err;                       /* first errno a write through fp met (0: none) */
} qat_out;

enum {
    /* PATH.PID.tmp instead of PATH.tmp: for a file several processes may write
     * at once (each renames its own complete copy). Without it a stale
     * PATH.tmp left by a killed writer is replaced by the next write. */
    QAT_OUT_UNIQUE = 1,
};

/* The checks alone: QAT_EINPUT when `path` is empty, exists and is not a
 * regular file, or is the same file as one of inputs[0..n_inputs) (NULL
 * entries and inputs that do not exist are ignored). */
int qat_out_check(const char *path, const char *const *inputs, int n_inputs);

/* qat_out_check, then create the temporary. */
int qat_out_begin(qat_out *o, const char *path, int flags, const char *const *inputs, int n_inputs);

/* A stdio stream over the temporary (fully buffered; a failed write is
 * remembered with its errno and reported by qat_out_commit). */
FILE *qat_out_stream(qat_out *o);

/* Flush, fsync, close and rename over the destination, fsync the directory.
 * On any failure the temporary is removed and the message names o->path and
 * the errno text (QAT_ERUNTIME). */
int qat_out_commit(qat_out *o);

/* Give up: close and remove the temporary (the destination is untouched). */
void qat_out_abort(qat_out *o);

/* Record "PATH: cannot write: strerror(err)" (QAT_ERUNTIME), abort, return the code. */
int qat_out_fail(qat_out *o, int err);

#endif

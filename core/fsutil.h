/*
 * core/fsutil.h — the file-system operations several modules need: mkdir -p,
 * and the one way qat writes an output file (qat_out_*).
 *
 * Every file qat writes (a checkpoint, a fit, a plot, a CSV, a token shard,
 * a gradients file, a sweep's resolved base) goes through qat_out, so that
 * they all keep the same promises (docs/cli.md, "Output files"):
 *
 *   - the destination is checked first: an empty path, a symbolic link
 *     (dangling or not: replacing the link by a file is never what was meant),
 *     an existing path that is not a regular file (a directory, a device, a
 *     FIFO), a path that is one of the command's inputs (same device and
 *     inode, however it is spelled), a file of another kind than the command
 *     writes (another HDF5 kind, a text file where a shard goes, ... see
 *     qat_out_kind) and a file in a run directory a training is writing (its run.h5.lock held)
 *     are refused with QAT_EINPUT before anything is written;
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

/* A path given on the command line, input or output, is not empty: QAT_EINPUT
 * "WHERE '': expected WHAT" when it is, WHERE naming the command and the option
 * or argument ("capacity: --fit", "train: CONFIG"), else QAT_OK. open("") fails
 * with ENOENT, so an empty input was reported as ": cannot open: No such file
 * or directory", naming nothing; qat_out_check's own "an output path is empty"
 * cannot say which option it came from, so every command checks its options
 * here, where it reads them, and qat_out_check's is a last guard. */
int qat_in_check(const char *where, const char *path, const char *what);

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

/* What a command writes, and what an existing destination is: a command may
 * replace a file of its own kind only (fit --out over an older FIT.h5), never
 * another kind of HDF5 file (a run log, a checkpoint of someone's run). */
typedef enum {
    QAT_OUT_PLAIN = 0, /* text: CSV, JSON, a script, YAML (told apart from other text by nothing) */
    QAT_OUT_RUNLOG,    /* run.h5 */
    QAT_OUT_CKPT,      /* ckpt.h5 */
    QAT_OUT_GRADS,     /* qat grads --out */
    QAT_OUT_FIT,       /* qat fit --out */
    QAT_OUT_H5_OTHER,  /* an HDF5 file qat does not write */
    QAT_OUT_SHARD,     /* an llm.c token shard (data pack, data synth), told by its magic and version */
    QAT_OUT_SVG,       /* an SVG image (plot, fit --svg): text with an <svg element in its first 4 KiB */
} qat_out_kind;

/* The kind in qat_out_begin's flags. */
#define QAT_OUT_AS(kind) ((int)(kind) << 8)

/* What runlog/ knows and core cannot (no HDF5 here): the kind of the HDF5
 * file at `path` (QAT_OUT_H5_OTHER when none of qat's) and, in *live, whether
 * the run directory holding `path` has a training writing it (run.h5.lock
 * held by another process). runlog registers it when it is linked in; without
 * it every HDF5 file counts as another kind and no directory as live. */
typedef qat_out_kind (*qat_out_probe_fn)(const char *path, int is_hdf5, int *live);
void qat_out_set_probe(qat_out_probe_fn fn);

/* The checks alone, for a command writing `kind`: QAT_EINPUT when `path` is
 * empty, a symbolic link, exists and is not a regular file, is the same file
 * as one of inputs[0..n_inputs) (NULL entries and inputs that do not exist
 * are ignored), is a non-empty file of another kind than `kind` (an HDF5 file
 * of another kind, a text file where a shard or an HDF5 file goes, gzip data
 * or a shard where text goes, ...), or lies in a run directory a training is
 * writing (not checked for the training's own run.h5/ckpt.h5 kinds, which the
 * run's lock guards). An empty file holds nothing to lose: any kind replaces it. */
int qat_out_check_as(const char *path, qat_out_kind kind, const char *const *inputs, int n_inputs);

/* qat_out_check_as for a QAT_OUT_PLAIN (text) writer. */
int qat_out_check(const char *path, const char *const *inputs, int n_inputs);

/* qat_out_check_as (the kind from QAT_OUT_AS in flags), then create the temporary. */
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

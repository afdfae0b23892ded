/*
 * core/fsutil.c — mkdir -p, and qat_out: every output file is checked, then
 * written to a temporary beside it and renamed into place (see fsutil.h).
 *
 * The stdio stream over the temporary is a fopencookie stream whose write
 * function keeps the first errno: with a plain fdopen stream a full disk shows
 * up only as ferror() at the end, by when errno says something else, and the
 * one-line message could not name the reason. (fopencookie and O_NOFOLLOW
 * need _GNU_SOURCE, which meson.build sets for the whole project.)
 */
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"

int qat_mkdirs(const char *path) {
    if (!mkdir(path, 0777) || errno == EEXIST) return QAT_OK;
    const char *slash = strrchr(path, '/');
    if (errno == ENOENT && slash && slash != path) {
        char parent[2 * QAT_PATH_MAX];
        snprintf(parent, sizeof parent, "%.*s", (int)(slash - path), path);
        QAT_TRY(qat_mkdirs(parent));
        if (!mkdir(path, 0777) || errno == EEXIST) return QAT_OK;
    }
    /* ENOTDIR: a component of the path the user gave is a file (train --out FILE): their mistake */
    int e = errno;
    return qat_fail(e == ENOTDIR ? QAT_EINPUT : QAT_ERUNTIME, "%s: cannot create directory: %s", path, strerror(e));
}

/* ------------------------------------------------------------ checks */

static const char *kind_of(mode_t m) {
    if (S_ISDIR(m)) return "a directory";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISFIFO(m)) return "a FIFO";
    if (S_ISSOCK(m)) return "a socket";
    return "not a regular file";
}

/* -1 when the file `st` describes is one of the inputs (its index in *which). */
static int same_as_input(const struct stat *st, const char *const *inputs, int n_inputs, int *which) {
    for (int i = 0; i < n_inputs; i++) {
        struct stat in;
        if (!inputs[i] || stat(inputs[i], &in) != 0) continue;
        if (in.st_dev == st->st_dev && in.st_ino == st->st_ino) return *which = i, -1;
    }
    return 0;
}

static qat_out_probe_fn g_probe;

void qat_out_set_probe(qat_out_probe_fn fn) { g_probe = fn; }

static const char *kind_name(qat_out_kind k) {
    switch (k) {
    case QAT_OUT_RUNLOG: return "a qat run log (run.h5)";
    case QAT_OUT_CKPT: return "a qat checkpoint (ckpt.h5)";
    case QAT_OUT_GRADS: return "a qat gradients file (qat grads)";
    case QAT_OUT_FIT: return "a qat fit (FIT.h5)";
    case QAT_OUT_SHARD: return "an llm.c token shard";
    case QAT_OUT_SVG: return "an SVG image";
    case QAT_OUT_PLAIN: return "a text file";
    default: return "an HDF5 file";
    }
}

/* What a file that is not HDF5 is, from its first 4 KiB: *kind a plain kind
 * qat writes when it is one (else QAT_OUT_H5_OTHER: none of them), and the
 * words for a message. A file too short to tell is text if it holds no NUL. */
static const char *plain_kind(const char *path, qat_out_kind *kind) {
    unsigned char b[4096];
    *kind = QAT_OUT_H5_OTHER;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return "an unreadable file";
    ssize_t n = read(fd, b, sizeof b);
    close(fd);
    if (n < 0) return "an unreadable file";
    uint32_t w0 = n >= 8 ? (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24 : 0;
    uint32_t w1 = n >= 8 ? (uint32_t)b[4] | (uint32_t)b[5] << 8 | (uint32_t)b[6] << 16 | (uint32_t)b[7] << 24 : 0;
    if (w0 == 20240520u && w1 == 1) return *kind = QAT_OUT_SHARD, kind_name(QAT_OUT_SHARD); /* data/shard.h */
    if (n >= 2 && b[0] == 0x1f && b[1] == 0x8b) return "gzip data";
    if (memchr(b, 0, (size_t)n)) return "a binary file";
    if (memmem(b, (size_t)n, "<svg", 4)) return *kind = QAT_OUT_SVG, kind_name(QAT_OUT_SVG);
    return *kind = QAT_OUT_PLAIN, kind_name(QAT_OUT_PLAIN);
}

/* HDF5's signature, at 0 or (after a user block) at 512, 1024, 2048, ... */
static int is_hdf5(const char *path) {
    static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return 0;
    int yes = 0;
    for (off_t at = 0; !yes && at <= (off_t)1 << 20; at = at ? 2 * at : 512) {
        unsigned char b[8];
        if (pread(fd, b, sizeof b, at) != (ssize_t)sizeof b) break;
        yes = !memcmp(b, sig, sizeof sig);
    }
    close(fd);
    return yes;
}

/* A file in a run directory a training is writing: the training may replace
 * it (or read it back on resume) at any moment. The training's own run.h5 and
 * ckpt.h5 are guarded by its lock, which their writer takes. */
static int live_refused(const char *path, qat_out_kind kind, int live) {
    if (live && kind != QAT_OUT_RUNLOG && kind != QAT_OUT_CKPT)
        return qat_fail(QAT_EINPUT, "%s: is in a run directory a training is writing (its run.h5.lock is held); "
                        "refusing to write it", path);
    return QAT_OK;
}

int qat_in_check(const char *where, const char *path, const char *what) {
    if (path && path[0]) return QAT_OK;
    return qat_fail(QAT_EINPUT, "%s '': expected %s", where, what);
}

int qat_out_check_as(const char *path, qat_out_kind kind, const char *const *inputs, int n_inputs) {
    if (!path || !path[0]) return qat_fail(QAT_EINPUT, "an output path is empty: expected a file name");
    if (strlen(path) >= QAT_PATH_MAX) return qat_fail(QAT_EINPUT, "%.80s...: output path too long", path);
    struct stat st;
    int k;
    /* A link (even a dangling one) would be replaced by a file, not written
     * through: never what was meant; the target's own path is unambiguous. */
    if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
        return qat_fail(QAT_EINPUT, "%s: is a symbolic link; refusing to replace it; give its target's path", path);
    if (stat(path, &st) != 0) { /* absent (or unreachable: creating the temporary says why) */
        int live = 0;
        if (g_probe) g_probe(path, 0, &live);
        return live_refused(path, kind, live);
    }
    if (!S_ISREG(st.st_mode))
        return qat_fail(QAT_EINPUT, "%s: exists and is %s, not a regular file; refusing to replace it", path,
                        kind_of(st.st_mode));
    if (same_as_input(&st, inputs, n_inputs, &k))
        return qat_fail(QAT_EINPUT, "%s: is also an input (%s, the same file); writing it would destroy the input, "
                        "choose another output", path, inputs[k]);
    int h5 = is_hdf5(path), live = 0;
    qat_out_kind have = h5 ? QAT_OUT_H5_OTHER : QAT_OUT_PLAIN;
    if (g_probe) have = g_probe(path, h5, &live);
    if (h5 && have != kind)
        return qat_fail(QAT_EINPUT, "%s: is %s; refusing to replace it", path, kind_name(have));
    /* A command replaces a file of its own kind only: `data pack -o a.txt.gz`
     * replaced a gzip text file with a shard, `grads --out notes.txt` a text
     * file with HDF5. An empty file has nothing to lose. */
    if (!h5 && st.st_size > 0) {
        const char *what = plain_kind(path, &have);
        if (have != kind)
            return qat_fail(QAT_EINPUT, "%s: is %s, not %s (what this command writes); refusing to replace it: "
                            "choose another output, or move the file away", path, what, kind_name(kind));
    }
    return live_refused(path, kind, live);
}

int qat_out_check(const char *path, const char *const *inputs, int n_inputs) {
    return qat_out_check_as(path, QAT_OUT_PLAIN, inputs, n_inputs);
}

/* ------------------------------------------------------------ writing */

/* The temporaries being written, so that a command killed by SIGINT, SIGTERM or
 * SIGHUP leaves none behind (`data pack` of a large corpus cut by Ctrl-C left
 * an 80 MB PATH.tmp). The handler does only what is async-signal-safe: unlink
 * the registered paths, restore the default action and raise the signal again,
 * so the command still dies of it (exit status and all). It is installed only
 * over a default disposition: `qat train` and `qat sweep` catch these signals to
 * stop cleanly (core/stop.h) and finish or abort their writes themselves. */
#define TMP_SLOTS 8
static char g_tmp_path[TMP_SLOTS][QAT_PATH_MAX + 32];
static volatile sig_atomic_t g_tmp_used[TMP_SLOTS];
static const int g_tmp_sigs[] = {SIGINT, SIGTERM, SIGHUP};

static void tmp_cleanup_handler(int sig) {
    for (int i = 0; i < TMP_SLOTS; i++)
        if (g_tmp_used[i]) unlink(g_tmp_path[i]);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void tmp_register(const char *tmp) {
    static int installed;
    if (!installed) {
        installed = 1;
        for (size_t s = 0; s < sizeof g_tmp_sigs / sizeof g_tmp_sigs[0]; s++) {
            struct sigaction old, sa;
            if (sigaction(g_tmp_sigs[s], NULL, &old) != 0 || old.sa_handler != SIG_DFL) continue;
            memset(&sa, 0, sizeof sa);
            sa.sa_handler = tmp_cleanup_handler;
            sigaction(g_tmp_sigs[s], &sa, NULL);
        }
    }
    for (int i = 0; i < TMP_SLOTS; i++)
        if (!g_tmp_used[i]) {
            snprintf(g_tmp_path[i], sizeof g_tmp_path[i], "%s", tmp);
            g_tmp_used[i] = 1; /* after the path: the handler reads a whole one */
            return;
        }
    /* more than TMP_SLOTS at once: this one is left to the stale-temporary rule */
}

static void tmp_unregister(const char *tmp) {
    for (int i = 0; i < TMP_SLOTS; i++)
        if (g_tmp_used[i] && !strcmp(g_tmp_path[i], tmp)) {
            g_tmp_used[i] = 0;
            return;
        }
}

int qat_out_begin(qat_out *o, const char *path, int flags, const char *const *inputs, int n_inputs) {
    memset(o, 0, sizeof *o);
    o->fd = -1;
    QAT_TRY(qat_out_check_as(path, (qat_out_kind)(flags >> 8), inputs, n_inputs));
    snprintf(o->path, sizeof o->path, "%s", path);
    if (flags & QAT_OUT_UNIQUE) snprintf(o->tmp, sizeof o->tmp, "%s.%ld.tmp", path, (long)getpid());
    else snprintf(o->tmp, sizeof o->tmp, "%s.tmp", path);
    /* A stale temporary of a killed writer is ours to replace, unless it is
     * an input (a file someone named x.h5.tmp); anything else there (a
     * directory) is reported. The new one is created exclusively and without
     * following a link, so nothing but a fresh file is ever written. */
    struct stat st;
    int k;
    if (lstat(o->tmp, &st) == 0) {
        if (S_ISREG(st.st_mode) && same_as_input(&st, inputs, n_inputs, &k))
            return qat_fail(QAT_EINPUT, "%s: its temporary %s is the input %s; choose another output", path, o->tmp,
                            inputs[k]);
        if (unlink(o->tmp) != 0) {
            int e = errno;
            return qat_fail(e == ENOTDIR ? QAT_EINPUT : QAT_ERUNTIME, "%s: cannot replace the stale temporary %s: %s",
                            path, o->tmp, strerror(e));
        }
    }
    o->fd = open(o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (o->fd < 0) {
        int e = errno;
        /* failing to create the file is an I/O failure, exit 1 (docs/cli.md),
         * whatever errno says: /proc/x.svg gives ENOENT in a directory that
         * exists; commands that can check a directory up front (qat fit) refuse
         * a missing one as the user's argument before any work */
        return qat_fail(QAT_ERUNTIME, "%s: cannot create %s: %s", path, o->tmp, strerror(e));
    }
    tmp_register(o->tmp);
    return QAT_OK;
}

static ssize_t cookie_write(void *c, const char *buf, size_t n) {
    qat_out *o = c;
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(o->fd, buf + done, n - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            if (!o->err) o->err = w < 0 ? errno : EIO;
            return done ? (ssize_t)done : -1;
        }
        done += (size_t)w;
    }
    return (ssize_t)n;
}

FILE *qat_out_stream(qat_out *o) {
    if (!o->fp) {
        cookie_io_functions_t io = {.write = cookie_write};
        o->fp = fopencookie(o, "w", io);
        QAT_ASSERT(o->fp);
        setvbuf(o->fp, NULL, _IOFBF, 1 << 16);
    }
    return o->fp;
}

/* Close the stream (not the descriptor: the cookie has no close function). */
static int close_stream(qat_out *o) {
    if (!o->fp) return 0;
    int bad = fflush(o->fp) != 0 || ferror(o->fp);
    fclose(o->fp);
    o->fp = NULL;
    if (bad && !o->err) o->err = EIO;
    return bad ? -1 : 0;
}

void qat_out_abort(qat_out *o) {
    if (o->fp) {
        int e = o->err; /* nothing more to report: drop what is buffered */
        close_stream(o);
        o->err = e;
    }
    if (o->fd >= 0) close(o->fd);
    o->fd = -1;
    if (o->tmp[0]) {
        tmp_unregister(o->tmp);
        unlink(o->tmp);
    }
    o->tmp[0] = 0;
}

int qat_out_fail(qat_out *o, int err) {
    int rc = qat_fail(QAT_ERUNTIME, "%s: cannot write: %s", o->path, strerror(err ? err : EIO));
    qat_out_abort(o);
    return rc;
}

static int fsync_dir_of(const char *path) {
    char dir[QAT_PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    /* Some file systems cannot fsync a directory (EINVAL): nothing more to do there. */
    int rc = fsync(fd) != 0 && errno != EINVAL ? -1 : 0;
    close(fd);
    return rc;
}

int qat_out_commit(qat_out *o) {
    QAT_ASSERT(o->fd >= 0);
    if (close_stream(o) != 0) return qat_out_fail(o, o->err);
    if (o->err) return qat_out_fail(o, o->err);
    if (fsync(o->fd) != 0) return qat_out_fail(o, errno);
    int fd = o->fd;
    o->fd = -1;
    if (close(fd) != 0) return qat_out_fail(o, errno);
    if (rename(o->tmp, o->path) != 0) return qat_out_fail(o, errno);
    tmp_unregister(o->tmp);
    o->tmp[0] = 0;
    /* The rename is durable only once the directory entry is. */
    if (fsync_dir_of(o->path) != 0)
        return qat_fail(QAT_ERUNTIME, "%s: written, but the directory could not be synced: %s", o->path, strerror(errno));
    return QAT_OK;
}

/*
 * runlog/lock.c — the writer lock of a run, PATH.lock (runlog.h "One writer per
 * file"), and the registry of the locks this process holds.
 *
 * Its own file because it has users besides the writer: `qat train` and the
 * sweep take it to decide, under it, whether to resume, restart or leave a run
 * alone, and the readers ask it whether a run is live. An flock, so the kernel
 * releases it when the holder dies, even by SIGKILL.
 */
#include "runlog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

static void lock_path(const char *path, char *buf, size_t n) { snprintf(buf, n, "%s.lock", path); }

/* The locks this process holds (device, inode of PATH.lock), so that a reader
 * in the process that holds a run's lock (deciding, under it, what to do with
 * the run) does not take that lock for a live writer. A handful at most: one
 * per run this process writes or is deciding about. */
static struct { dev_t dev; ino_t ino; int fd; } g_held[16];
static int g_n_held;

static void held_add(int fd) {
    struct stat st;
    if (g_n_held < (int)(sizeof g_held / sizeof g_held[0]) && fstat(fd, &st) == 0)
        g_held[g_n_held].dev = st.st_dev, g_held[g_n_held].ino = st.st_ino, g_held[g_n_held++].fd = fd;
}

static void held_remove(int fd) {
    for (int i = 0; i < g_n_held; i++)
        if (g_held[i].fd == fd) g_held[i] = g_held[--g_n_held];
}

static int held_by_us(int fd) {
    struct stat st;
    if (fstat(fd, &st) != 0) return 0;
    for (int i = 0; i < g_n_held; i++)
        if (g_held[i].dev == st.st_dev && g_held[i].ino == st.st_ino) return 1;
    return 0;
}

/* Take the writer lock, or say who holds it (*busy = 1 then, when busy is not NULL);
 * the pid written into PATH.lock is for that message only. */
int qat_runlog_lock(const char *path, int *fd_out, int *busy) {
    char lp[QAT_PATH_MAX + 8];
    lock_path(path, lp, sizeof lp);
    if (busy) *busy = 0;
    *fd_out = -1;
    int fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return qat_fail(QAT_ERUNTIME, "%s: cannot create lock file: %s", lp, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = 0;
        pid[strcspn(pid, "\n")] = 0;
        close(fd);
        if (busy) *busy = 1;
        return qat_fail(QAT_ERUNTIME, "%s: another process (pid %s) is writing this run", path, pid[0] ? pid : "?");
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) == 0 && pwrite(fd, pid, (size_t)n, 0) < 0) { /* the pid is informative only */ }
    held_add(fd);
    *fd_out = fd;
    return QAT_OK;
}

void qat_runlog_unlock(int fd) {
    if (fd < 0) return;
    held_remove(fd);
    close(fd); /* releases the flock */
}

void qat_runlog_lock_say(int fd, const char *starting) {
    if (fd < 0) return;
    char text[QAT_PATH_MAX + 96];
    int n = snprintf(text, sizeof text, "%ld\n%s%s", (long)getpid(), starting ? starting : "", starting ? "\n" : "");
    if (n >= (int)sizeof text) n = (int)sizeof text - 1;
    if (ftruncate(fd, 0) == 0 && pwrite(fd, text, (size_t)n, 0) < 0) { /* informative only */ }
}

void qat_runlog_lock_said(const char *path, char *buf, size_t n) {
    char lp[QAT_PATH_MAX + 8], text[QAT_PATH_MAX + 96];
    lock_path(path, lp, sizeof lp);
    buf[0] = 0;
    int fd = open(lp, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    ssize_t got = pread(fd, text, sizeof text - 1, 0);
    close(fd);
    text[got > 0 ? got : 0] = 0;
    char *line = strchr(text, '\n'); /* after the pid */
    if (!line || !line[1]) return;
    line++;
    line[strcspn(line, "\n")] = 0;
    snprintf(buf, n, "%s", line);
}

int qat_runlog_is_live(const char *path) {
    char lp[QAT_PATH_MAX + 8];
    lock_path(path, lp, sizeof lp);
    int fd = open(lp, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    /* our own lock (held while deciding about the run) is no live writer */
    int live = !held_by_us(fd) && flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
    close(fd); /* releases our shared lock if we got it */
    return live;
}


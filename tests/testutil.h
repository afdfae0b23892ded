/*
 * tests/testutil.h — scratch directories for tests that write files, and
 * running the `qat` binary ($QAT_BIN) from end-to-end tests, and capturing what
 * a command prints.
 *
 * Each test group gets its own fresh directory under $TMPDIR (or /tmp), named
 * after the test, and removes it afterwards, so tests can run in parallel and
 * leave nothing behind.
 */
#ifndef QAT_TESTS_TESTUTIL_H
#define QAT_TESTS_TESTUTIL_H

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

/* A fresh directory TMPDIR/qat_test_<tag>_XXXXXX, its path in buf; 0 or -1. */
static inline int qat_test_mkdtemp(char *buf, size_t n, const char *tag) {
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(buf, n, "%s/qat_test_%s_XXXXXX", base, tag);
    return mkdtemp(buf) ? 0 : -1;
}

/* rm -rf dir; 0 or -1. */
static inline int qat_test_rmtree(const char *dir) {
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Start `$QAT_BIN ARGS...` (args NULL-terminated) with stdout and stderr going to
 * DIR/stdout.txt and DIR/stderr.txt, and with as_bytes > 0 under RLIMIT_AS =
 * as_bytes (an allocation past it fails, as on a machine that small); the
 * child's pid, or -1 (QAT_BIN unset, no fork). */
static inline pid_t qat_test_spawn_as(const char *dir, char *const args[], long long as_bytes) {
    const char *bin = getenv("QAT_BIN");
    if (!bin) return -1;
    char out[1100], err[1100];
    snprintf(out, sizeof out, "%s/stdout.txt", dir);
    snprintf(err, sizeof err, "%s/stderr.txt", dir);
    pid_t pid = fork();
    if (pid == 0) {
        int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644), fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fo, 1);
        dup2(fe, 2);
        if (as_bytes > 0) {
            struct rlimit r = {(rlim_t)as_bytes, (rlim_t)as_bytes};
            if (setrlimit(RLIMIT_AS, &r)) _exit(126);
        }
        int count = 0;
        while (args[count]) count++;
        char *argv[count + 2]; /* every argument: a cut-off list would test another command line */
        int n = 0;
        argv[n++] = (char *)bin;
        for (int i = 0; i < count; i++) argv[n++] = args[i];
        argv[n] = NULL;
        execv(bin, argv);
        _exit(127);
    }
    return pid;
}

static inline pid_t qat_test_spawn(const char *dir, char *const args[]) { return qat_test_spawn_as(dir, args, 0); }

/* Wait for a spawned child: its exit code, or 128 + the signal that ended it. */
static inline int qat_test_wait(pid_t pid) {
    int st;
    if (pid <= 0 || waitpid(pid, &st, 0) != pid) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Read DIR/NAME (stdout.txt or stderr.txt: what the last spawned child wrote)
 * into buf (n bytes, NUL-terminated; empty when there is none). */
static inline void qat_test_read_in(const char *dir, const char *name, char *buf, size_t n) {
    char path[1100];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    size_t got = f ? fread(buf, 1, n - 1, f) : 0;
    buf[got] = 0;
    if (f) fclose(f);
}

static inline void qat_test_read_stderr(const char *dir, char *err, size_t n) { qat_test_read_in(dir, "stderr.txt", err, n); }

/* Wait for a child spawned in DIR, then read its stderr into err: its exit code. */
static inline int qat_test_wait_stderr(pid_t pid, const char *dir, char *err, size_t n) {
    int rc = qat_test_wait(pid);
    qat_test_read_stderr(dir, err, n);
    return rc;
}

/* YAML that only a reader which visits each node once reads in linear time, into
 * buf: `head` (which anchors level 0), then lines 1..n-1 of `line`, a format taking
 * (i, i, i-1, i-1, i-1) that anchors level i and refers three times to level i-1
 * (3^n nodes unfolded). Returns buf. */
static inline char *qat_test_alias_levels(char *buf, const char *head, int n, const char *line) {
    char *p = buf + sprintf(buf, "%s", head);
    for (int i = 1; i < n; i++) p += sprintf(p, line, i, i, i - 1, i - 1, i - 1);
    return buf;
}

/* Into buf: `head`, n '[' then n ']' (a flow list n deep), then `tail`. Returns buf. */
static inline char *qat_test_nested_lists(char *buf, const char *head, int n, const char *tail) {
    char *p = buf + sprintf(buf, "%s", head);
    for (int i = 0; i < n; i++) *p++ = '[';
    for (int i = 0; i < n; i++) *p++ = ']';
    strcpy(p, tail);
    return buf;
}

/* Write text to path (the test fails when it cannot). */
static inline int qat_test_write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    int ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* Under `make test-asan`: HDF5 1.10 loses what it allocated while it loads an object
 * header whose checksum fails (and on a few other error paths of its own), so a qat
 * child that reads a damaged file on purpose would fail LeakSanitizer for the
 * library's leak. on = 1 points LSAN_OPTIONS at tests/lsan-hdf5.supp (only
 * allocations with a frame in libhdf5) for the children started after it; on = 0
 * restores full leak checking. Needs $QAT_SOURCE_ROOT (set by meson); a no-op
 * without it and outside ASan builds (where LSAN_OPTIONS is not read). */
static inline void qat_test_lsan_hdf5(int on) {
    const char *root = getenv("QAT_SOURCE_ROOT");
    if (!root) return;
    if (!on) {
        unsetenv("LSAN_OPTIONS");
        return;
    }
    char opt[1200];
    snprintf(opt, sizeof opt, "suppressions=%s/tests/lsan-hdf5.supp:print_suppressions=0", root);
    setenv("LSAN_OPTIONS", opt, 1);
}

/* Run a command's entry point in-process with stdout sent to the file `path`,
 * then read that file into out (NUL-terminated); returns the exit code. */
static inline int qat_test_capture(int (*main_fn)(int, char **), int argc, char **argv, const char *path,
                                   char *out, size_t cap) {
    fflush(stdout);
    int saved = dup(1);
    if (!freopen(path, "w", stdout)) return -1;
    int rc = main_fn(argc, argv);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    FILE *r = fopen(path, "r");
    size_t n = r ? fread(out, 1, cap - 1, r) : 0;
    out[n] = 0;
    if (r) fclose(r);
    return rc;
}

/* Run a shell command (printf-style); what it prints on stdout (and stderr too when
 * with_stderr) in *out, malloc'd (NULL: discarded). Returns its exit status, or -1
 * when it could not be started or did not exit normally. */
static inline int qat_test_popen(char **out, int with_stderr, const char *fmt, ...) {
    static char cmd[32768];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(cmd, sizeof cmd - 8, fmt, ap);
    va_end(ap);
    if (len < 0 || len >= (int)sizeof cmd - 8) return -1;
    if (with_stderr) strcat(cmd, " 2>&1");
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (size_t got; (got = fread(buf + n, 1, cap - n - 1, p)) > 0;) {
        n += got;
        if (n + 1 == cap) buf = realloc(buf, cap *= 2);
    }
    buf[n] = 0;
    int st = pclose(p);
    if (out) *out = buf;
    else free(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#endif

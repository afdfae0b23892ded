/*
 * tests/testutil.h — scratch directories for tests that write files, and
 * capturing what a command prints.
 *
 * Each test group gets its own fresh directory under $TMPDIR (or /tmp), named
 * after the test, and removes it afterwards, so tests can run in parallel and
 * leave nothing behind.
 */
#ifndef QAT_TESTS_TESTUTIL_H
#define QAT_TESTS_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>
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

#endif

/*
 * core/error.h — how qat reports failure.
 *
 * Two kinds of failure exist and they are handled differently:
 *
 *  1. The user's fault (bad YAML, missing file, truncated shard, unknown format):
 *     a function records a message with qat_fail(QAT_EINPUT, ...) and returns the
 *     code up the stack. The command line prints qat_errmsg() and exits with it.
 *     Library code never calls exit() for these, so tests can assert on them.
 *  2. A broken invariant of qat itself (shape mismatch between two of our own
 *     buffers): QAT_ASSERT prints file:line and aborts. These must never happen.
 *
 * Exit codes follow docs/cli.md: 0 ok, 1 runtime failure, 2 usage/config/input error.
 */
#ifndef QAT_CORE_ERROR_H
#define QAT_CORE_ERROR_H

#include <stdio.h>
#include <stdlib.h>

enum {
    QAT_OK = 0,       /* success */
    QAT_ERUNTIME = 1, /* runtime failure: I/O error, out of memory, divergence */
    QAT_EINPUT = 2,   /* usage, config or input-data error: the user can fix it */
};

/* Record an error message (printf-style) and return `code`. The message is kept
 * per thread until the next qat_fail or qat_clear_error. Typical use:
 *     if (!f) return qat_fail(QAT_EINPUT, "%s: cannot open: %s", path, strerror(errno));
 */
int qat_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prepend context to the current message ("while loading config: ..."). Returns code. */
int qat_fail_context(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The last recorded message ("" when none). */
const char *qat_errmsg(void);

/* Forget the last message. */
void qat_clear_error(void);

/* A white-space byte named for a message ("a tab at character 6"): a tab or a
 * newline reported as "a space" sends the reader looking for the wrong thing. */
static inline const char *qat_space_name(unsigned char c) {
    return c == ' ' ? "space" : c == '\t' ? "tab" : c == '\n' ? "newline" : c == '\r' ? "carriage return" : "white-space byte";
}

/* Print "qat: <message>" to stderr and return the code; for the command line. */
int qat_report(int code);

/* Propagate a non-zero status code. */
#define QAT_TRY(expr)                  \
    do {                               \
        int qat_try_rc_ = (expr);      \
        if (qat_try_rc_) return qat_try_rc_; \
    } while (0)

/* Internal invariant: must never fail whatever the user does. */
#define QAT_ASSERT(cond)                                                          \
    do {                                                                          \
        if (!(cond)) {                                                            \
            fprintf(stderr, "qat: internal error at %s:%d: assertion `%s` failed\n" \
                            "     (this is a bug in qat, please report it)\n",    \
                    __FILE__, __LINE__, #cond);                                   \
            abort();                                                              \
        }                                                                         \
    } while (0)

/* Allocation that never returns NULL: out of memory is reported on one line
 * and the process exits 1 (core/error.c says why it exits), since no caller can
 * do anything sensible about it mid-step. */
void *qat_xmalloc(size_t n);
void *qat_xcalloc(size_t n, size_t size);
void *qat_xrealloc(void *p, size_t n);
char *qat_xstrdup(const char *s);
/* 64-byte aligned, for SIMD buffers; release with free(). */
void *qat_xaligned(size_t n);
/* Ask for transparent huge pages over the whole 2 MiB pages inside [p, p + n):
 * for buffers of tens of MiB that a run touches once and keeps (the tape's
 * arena, the corpus). Each first touch of a 4 KiB page is a page fault, ~6 µs
 * on the VMs qat runs on: an s4 run faulted 73,809 times (0.45 s) before its
 * second step. Advice only: with THP off, or on other systems, nothing changes. */
void qat_advise_huge(void *p, size_t n);

#endif

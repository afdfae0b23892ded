/*
 * core/error.c — the per-thread error message behind qat_fail/qat_errmsg,
 * and allocation wrappers that report out-of-memory on one line and exit 1.
 */
#include "error.h"

#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static _Thread_local char qat_err_buf[4096];

int qat_fail(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(qat_err_buf, sizeof qat_err_buf, fmt, ap);
    va_end(ap);
    return code;
}

int qat_fail_context(int code, const char *fmt, ...) {
    char prefix[1024], old[sizeof qat_err_buf];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, qat_err_buf, sizeof old);
    snprintf(qat_err_buf, sizeof qat_err_buf, "%.1000s: %.3000s", prefix, old);
    return code;
}

const char *qat_errmsg(void) { return qat_err_buf; }

void qat_clear_error(void) { qat_err_buf[0] = 0; }

int qat_report(int code) {
    if (code) fprintf(stderr, "qat: %s\n", qat_err_buf[0] ? qat_err_buf : "unknown error");
    return code;
}

/* Out of memory is a runtime failure (docs/cli.md: exit 1, one line), not a
 * broken invariant: no abort, no core dump. This is the one handler in library
 * code that exits instead of returning an error code: allocations happen at
 * hundreds of sites, deep inside ops, quantizers and OpenMP regions, none with
 * an unwind path, and giving each one would make every function that allocates
 * fallible for a failure its caller cannot repair. _exit rather than exit: the
 * failing thread may be an OpenMP worker while others still run, and atexit
 * handlers (HDF5 closing its files) would run beside them and need memory
 * themselves; files qat writes are replaced atomically (core/fsutil.h), so the
 * last complete ones are what stays. A training run whose model is too large
 * for the machine is refused before it allocates (train/trainer.c). */
static void qat_oom(size_t n) {
    /* the size in the unit that reads at a glance: a small request failing is
     * the machine already full, which "(0.0 GiB)" hid */
    double gib = (double)n / (1u << 30), mib = (double)n / (1u << 20);
    if (gib >= 1) fprintf(stderr, "qat: out of memory allocating %zu bytes (%.1f GiB)\n", n, gib);
    else if (mib >= 1) fprintf(stderr, "qat: out of memory allocating %zu bytes (%.1f MiB)\n", n, mib);
    else fprintf(stderr, "qat: out of memory allocating %zu bytes\n", n);
    _exit(1);
}

void *qat_xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) qat_oom(n);
    return p;
}

void *qat_xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) qat_oom(n * size);
    return p;
}

void *qat_xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) qat_oom(n);
    return q;
}

char *qat_xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = qat_xmalloc(n);
    memcpy(p, s, n);
    return p;
}

void *qat_xaligned(size_t n) {
    void *p = NULL;
    size_t rounded = (n + 63) & ~(size_t)63;
    if (posix_memalign(&p, 64, rounded ? rounded : 64)) qat_oom(n);
    return p;
}

void qat_advise_huge(void *p, size_t n) {
#ifdef MADV_HUGEPAGE
    const uintptr_t huge = (uintptr_t)2 << 20;
    uintptr_t lo = ((uintptr_t)p + huge - 1) & ~(huge - 1), hi = ((uintptr_t)p + n) & ~(huge - 1);
    if (hi > lo) (void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE); /* advice: refused is fine */
#else
    (void)p, (void)n;
#endif
}

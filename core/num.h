/*
 * core/num.h — small number helpers shared by modules: a whole number read from
 * an option's text, and the order of doubles for qsort. Callers word their own
 * messages, so each command keeps its own.
 */
#ifndef QAT_CORE_NUM_H
#define QAT_CORE_NUM_H

#include <errno.h>
#include <stdlib.h>

/* *out = s as a base-10 integer in [lo, hi]; 1 on success, 0 (out untouched)
 * when s is empty, has anything after the digits, overflows or is out of range. */
static inline int qat_parse_ll(const char *s, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

/* qsort comparator: ascending doubles (NaN compares equal to everything). */
static inline int qat_dbl_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#endif

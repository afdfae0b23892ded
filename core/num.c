/*
 * core/num.c — num.h: numbers read from text the one way every reader shares,
 * the config's keys and the commands' options alike (a seed accepted by
 * `seed:` is accepted by `--seed`, with the same message when it is not).
 * Moved here from config_load.c, whose K_INT, K_U64 and K_F64 keys use them.
 */
#include "core/num.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Decimal number: digits, sign, point and exponent only (strtod alone would
 * also take hex, "inf" and "nan"). */
int qat_parse_decimal(const char *s, double *out) {
    if (!*s) return 0;
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p) && !strchr("+-.eE", *p)) return 0;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || end == s || errno == ERANGE || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

/* Decimal text as its significant digits (no leading or trailing zeros) and the
 * power of ten of the first one; "" for zero. Returns 0 on text that is not a
 * plain decimal (qat_parse_decimal's syntax, checked before). */
static int decimal_digits(const char *s, char *digits, size_t cap, long *exp10) {
    size_t n = 0;
    long point = -1, count = 0, lead = -1;
    const char *p = s + (*s == '+' || *s == '-');
    for (; isdigit((unsigned char)*p) || *p == '.'; p++) {
        if (*p == '.') {
            point = count;
            continue;
        }
        if (lead < 0 && *p == '0') {
            count++;
            continue;
        }
        if (lead < 0) lead = count;
        if (n + 1 >= cap) return 0;
        digits[n++] = *p;
        count++;
    }
    if (point < 0) point = count;
    long e = 0;
    if (*p == 'e' || *p == 'E') e = strtol(p + 1, NULL, 10);
    while (n && digits[n - 1] == '0') n--;
    digits[n] = 0;
    *exp10 = n ? point - lead - 1 + e : 0;
    return 1;
}

/* Whether decimal text `s` is exactly the double `v` it was read as: from 2^53
 * on, a double no longer holds every whole number, and 9007199254740993 reads as
 * ...992. A double's decimal expansion is finite, so printing it with enough
 * digits (glibc prints the exact value) and comparing digit strings decides. */
int qat_text_is_exactly(const char *s, double v) {
    char a[512], b[512], e[800];
    long ea, eb;
    if ((*s == '-') != (v < 0) && v != 0) return 0;
    snprintf(e, sizeof e, "%.400e", fabs(v));
    if (!decimal_digits(s, a, sizeof a, &ea) || !decimal_digits(e, b, sizeof b, &eb)) return 0;
    return ea == eb && !strcmp(a, b);
}

int qat_parse_u64(const char *s, uint64_t *out) {
    if (!*s || isspace((unsigned char)*s) || *s == '-') return 0; /* strtoull skips spaces and wraps -1 */
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno) {
        /* 1e6 is fine for a seed too, while it is an exact integer: any whole
         * number the text names exactly, below 2^64 (1e16 is one) */
        double d;
        if (!qat_parse_decimal(s, &d) || d != floor(d) || d < 0 || d >= 0x1p64 || !qat_text_is_exactly(s, d)) return 0;
        v = (unsigned long long)d;
    }
    *out = v;
    return 1;
}

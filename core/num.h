/*
 * core/num.h — small helpers shared by the commands' option parsers: an
 * option's value word, a whole number or a count (decimal or scientific
 * notation) read from an option's text, a seed (num.c, shared with the
 * config's keys), and the order of doubles for qsort.
 * Callers word their own number messages, so each command keeps its own; the
 * value-word rule is one for every command.
 */
#ifndef QAT_CORE_NUM_H
#define QAT_CORE_NUM_H

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

/* 1 when option argv[i] has a value word after it: there is one, and it is
 * not itself an option. `--out --csv x.csv` used to write a file named --csv;
 * only the "--" prefix is refused, so "-" (stdin/stdout) and "-1" stay values. */
static inline int qat_opt_has_value(int argc, char **argv, int i) {
    return i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0;
}

/* *v = the value of option argv[*i], advancing *i; or QAT_EINPUT naming the
 * option (and the option found in its place), cmd naming the command's help
 * ("fit", "data synth"). */
static inline int qat_opt_value(const char *cmd, int argc, char **argv, int *i, const char **v) {
    if (*i + 1 >= argc) return qat_fail(QAT_EINPUT, "%s: missing value (see qat %s --help)", argv[*i], cmd);
    if (!qat_opt_has_value(argc, argv, *i))
        return qat_fail(QAT_EINPUT, "%s: expected a value, got the option %s (see qat %s --help)", argv[*i],
                        argv[*i + 1], cmd);
    *v = argv[++*i];
    return QAT_OK;
}

/* *out = s as a base-10 integer in [lo, hi]; 1 on success, 0 (out untouched)
 * when s is empty, starts with white space (strtoll would skip it: ' 2'), has
 * anything after the digits, overflows or is out of range. */
static inline int qat_parse_ll(const char *s, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    if (!*s || isspace((unsigned char)*s)) return 0;
    long long v = strtoll(s, &end, 10);
    if (*end || errno || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

/* *out = s as a whole count in [lo, hi] written in decimal or scientific
 * notation ("65536", "1e6", "2.5e5", as token counts are in the YAML); 1 on
 * success, 0 (out untouched) otherwise. strtod alone also takes hex, "inf",
 * "nan" and leading spaces, which no count option means: those are refused. */
static inline int qat_parse_count(const char *s, double lo, double hi, long long *out) {
    if (!*s) return 0;
    for (const char *c = s; *c; c++)
        if (!strchr("0123456789.eE+-", *c)) return 0;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi) || v != (double)(long long)v) return 0;
    *out = (long long)v;
    return 1;
}

/* *out = s read as a decimal number: digits, sign, point and exponent only
 * (strtod alone would also take hex, "inf" and "nan"), finite and in range;
 * 1 on success, 0 otherwise. */
int qat_parse_decimal(const char *s, double *out);

/* Whether decimal text s (qat_parse_decimal's syntax) is exactly the double v it
 * was read as: from 2^53 on a double no longer holds every whole number, and
 * 9007199254740993 reads as ...992. */
int qat_text_is_exactly(const char *s, double v);

/* What an unsigned 64-bit number (a seed) may be, for messages: "expected " QAT_U64_RULE. */
#define QAT_U64_RULE "an unsigned integer in [0, 18446744073709551615] (digits, or an exact whole number such as 1e6)"

/* *out = s as an unsigned 64-bit integer, the one rule of the config's seeds
 * (`seed`, `data.synth_seed`) and the commands' --seed options: decimal digits,
 * or a whole number the text names exactly (1e6, 2.5e3), in [0, 2^64 − 1]; 1 on
 * success, 0 (out untouched) for anything else (a sign '-', leading white
 * space, hex, a fraction, 2^64 and above). */
int qat_parse_u64(const char *s, uint64_t *out);

/* qsort comparator: ascending doubles (NaN compares equal to everything). */
static inline int qat_dbl_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#endif

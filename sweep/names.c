/*
 * sweep/names.c — the name of each run of a sweep: its directory under `out`,
 * the `name=` override its worker gets, and the row of every table and fit that
 * reads it. expand.c makes the grid labels (int4, s3, dim16: numbers carry
 * their key's last component); here they are joined, made safe for a directory
 * and a shell, unique and short, in that order and for a reason each:
 *  - safe: anything outside [A-Za-z0-9._-] becomes '_' (a glob, a path, a
 *    quoted string as a grid value), and no name starts with '.', so none is
 *    hidden or meets OUT/.sweep;
 *  - unique over the whole sweep, by a hash set and a counter suffix, since two
 *    runs in one directory would resume each other;
 *  - short: an over-long name keeps its head and a hash of the full name
 *    replaces the tail, so it still reads and still differs.
 * A pure function of the sweep file: a sweep run again, or a shard, names its
 * runs the same, which is what lets it find them on disk.
 */
#include "sweep/names.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

/* Keep [A-Za-z0-9._-]; anything else becomes one '_' (runs collapse, and
 * none at the start: "/data/x" reads "data_x"); no leading '.', so a run can
 * never be hidden or collide with OUT/.sweep. */
void qat_sweep_sanitize(const char *in, char *out, size_t n) {
    size_t j = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p && j + 1 < n; p++) {
        int ok = isalnum(*p) || *p == '.' || *p == '_' || *p == '-';
        char c = ok ? (char)*p : '_';
        if (c == '_' && (!j || out[j - 1] == '_') && !ok) continue;
        if (c == '_' && j && out[j - 1] == '_') continue;
        if (c == '.' && !j) c = '_';
        out[j++] = c;
    }
    while (j > 1 && out[j - 1] == '_') j--;
    out[j] = 0;
}

/* 64-bit FNV-1a: a short, stable stand-in for the tail of an over-long name. */
static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* ------------------------------------------------------- a set of names */

typedef struct {
    char **slot;  /* open addressing; NULL = empty; borrowed strings */
    size_t cap;   /* power of two, at least twice the entries */
} name_set;

static int names_add(name_set *s, char *name) {
    size_t i = (size_t)fnv1a(name) & (s->cap - 1);
    for (; s->slot[i]; i = (i + 1) & (s->cap - 1))
        if (!strcmp(s->slot[i], name)) return 0;
    s->slot[i] = name;
    return 1;
}

/* ------------------------------------------------------------ the names */

/* Labels joined by '-', safe, unique, at most QAT_NAME_MAX - 1. */
void qat_sweep_make_names(qat_sweep *sw) {
    sw->names = qat_xcalloc((size_t)sw->n_runs, sizeof *sw->names);
    sw->name_set = qat_xcalloc((size_t)sw->n_runs, sizeof *sw->name_set);
    name_set set = {NULL, 16};
    while (set.cap < 2 * (size_t)sw->n_runs + 16) set.cap *= 2;
    set.slot = qat_xcalloc(set.cap, sizeof *set.slot);
    /* A base name of its own (not the default "run") prefixes every run. */
    int prefix = strcmp(sw->base.name, "run") != 0 || (!sw->n_axes && !sw->n_seeds);
    for (int r = 0; r < sw->n_runs; r++) {
        char full[4096] = "", safe[4096];
        size_t n = 0;
        if (prefix) n += (size_t)snprintf(full + n, sizeof full - n, "%s", sw->base.name);
        for (int a = 0; a < sw->n_axes && n < sizeof full; a++)
            n += (size_t)snprintf(full + n, sizeof full - n, "%s%s", n ? "-" : "", sw->axes[a].label[qat_sweep_run_value(sw, r, a)]);
        if (sw->n_seeds && n < sizeof full)
            snprintf(full + n, sizeof full - n, "%sseed%llu", n ? "-" : "", (unsigned long long)qat_sweep_run_seed(sw, r));
        qat_sweep_sanitize(full, safe, sizeof safe);
        if (strlen(safe) > QAT_NAME_MAX - 1 - 24)
            snprintf(safe + QAT_NAME_MAX - 1 - 24 - 17, 18, "-%016llx", (unsigned long long)fnv1a(full));
        /* safe is at most QAT_NAME_MAX - 25 long here, a counter at most 8 */
        char *name = qat_xstrdup(safe), buf[QAT_NAME_MAX + 32];
        for (int k = 2; !names_add(&set, name); k++) {
            free(name);
            snprintf(buf, sizeof buf, "%s-%d", safe, k);
            name = qat_xstrdup(buf);
        }
        sw->names[r] = name;
        snprintf(buf, sizeof buf, "name=%s", name);
        sw->name_set[r] = qat_xstrdup(buf);
    }
    free(set.slot);
}

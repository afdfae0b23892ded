/*
 * scaling/csv.c — runs from a CSV table.
 *
 * Two layouts are read: the plain `N,D,loss[,format[,act_format[,grad_format]]]` (header
 * optional, columns by position when absent) and any table whose header names
 * its columns, such as the Chinchilla points extracted by Epoch AI
 * (x,y,color,Model Size,Training FLOP,hex_color,loss), where D is derived as
 * FLOP/(6N). Column names are matched case-insensitively:
 *   N      n, model size, params, n_params, parameters
 *   D      d, tokens, training tokens
 *   FLOP   training flop, flop, flops, compute   (used when no D column)
 *   loss   loss, val_loss, final_loss
 *   format format, weight_format     act_format  act_format, activation_format
 *   grad_format  grad_format, gradient_format: the backward scheme key of
 *          docs/scaling-laws.md (e.g. mxfp4@sr; empty or absent = fp32)
 * Unknown columns are ignored. Blank lines and lines starting with '#' are
 * skipped, and so is a UTF-8 byte-order mark at the start. A bad cell is an error at file:line:column.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"
#include "scaling/inputs.h"

enum { COL_N, COL_D, COL_FLOP, COL_LOSS, COL_FMT, COL_ACT, COL_GRAD, NCOL };
#define MAX_FIELDS 64

typedef struct {
    char *text[MAX_FIELDS]; /* field contents, trimmed, unquoted (point into the line) */
    int col[MAX_FIELDS];    /* 1-based character column where the field starts */
    int n;
} fields;

/* Split one line in place on commas; double quotes protect commas. */
static int split(char *line, fields *f) {
    f->n = 0;
    char *p = line;
    for (;;) {
        if (f->n == MAX_FIELDS) return -1;
        while (*p == ' ' || *p == '\t') p++;
        f->col[f->n] = (int)(p - line) + 1;
        char *start = p, *out = p;
        if (*p == '"') {
            p++;
            start = out = p;
            while (*p && !(*p == '"' && p[1] != '"')) {
                if (*p == '"') p++; /* "" inside quotes */
                *out++ = *p++;
            }
            if (*p == '"') p++;
            while (*p && *p != ',') p++;
        } else {
            while (*p && *p != ',') out++, p++;
        }
        char *end = out;
        while (end > start && isspace((unsigned char)end[-1])) end--;
        int last = (*p != ',');
        *end = 0;
        f->text[f->n++] = start;
        if (last) break;
        p++;
    }
    return 0;
}

static int match(const char *name, const char *const *alts) {
    for (; *alts; alts++)
        if (!strcasecmp(name, *alts)) return 1;
    return 0;
}

static int column_of(const char *name) {
    static const char *const n[] = {"n", "model size", "params", "n_params", "parameters", NULL};
    static const char *const d[] = {"d", "tokens", "training tokens", NULL};
    static const char *const fl[] = {"training flop", "flop", "flops", "compute", NULL};
    static const char *const lo[] = {"loss", "val_loss", "final_loss", NULL};
    static const char *const fm[] = {"format", "weight_format", NULL};
    static const char *const ac[] = {"act_format", "activation_format", NULL};
    static const char *const gr[] = {"grad_format", "gradient_format", NULL};
    const char *const *all[NCOL] = {n, d, fl, lo, fm, ac, gr};
    for (int c = 0; c < NCOL; c++)
        if (match(name, all[c])) return c;
    return -1;
}

static int parse_positive(const char *path, int line, const fields *f, int k, const char *what, double *v) {
    if (k >= f->n)
        return qat_fail(QAT_EINPUT, "%s:%d: missing the %s column (row has %d fields)", path, line, what, f->n);
    char *end;
    errno = 0;
    *v = strtod(f->text[k], &end);
    if (end == f->text[k] || *end || errno || !isfinite(*v) || *v <= 0)
        return qat_fail(QAT_EINPUT, "%s:%d:%d: expected a positive number for %s, got '%s'", path, line,
                        f->col[k], what, f->text[k]);
    return QAT_OK;
}

static int set_format(const char *path, int line, const fields *f, int k, char *dst) {
    const char *s = (k >= 0 && k < f->n && f->text[k][0]) ? f->text[k] : "fp32";
    if (strlen(s) >= QAT_FIT_FMT_LEN)
        return qat_fail(QAT_EINPUT, "%s:%d:%d: format name longer than %d characters", path, line,
                        k >= 0 ? f->col[k] : 1, QAT_FIT_FMT_LEN - 1);
    for (const char *c = s; *c; c++)
        if (isspace((unsigned char)*c) || *c == '/')
            return qat_fail(QAT_EINPUT, "%s:%d:%d: format '%s' may not contain spaces or '/'", path, line,
                            f->col[k], s);
    strcpy(dst, s);
    return QAT_OK;
}

int qat_fit_read_csv(const char *path, qat_fit_runs *rs) {
    FILE *fp = fopen(path, "r");
    if (!fp) return qat_fail(QAT_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    int col[NCOL] = {0, 1, -1, 2, 3, 4, 5}; /* positional layout until a header says otherwise */
    char *buf = NULL;
    size_t cap = 0;
    int line = 0, seen_first = 0, rows = 0, rc = QAT_OK;
    fields f;
    while (getline(&buf, &cap, fp) >= 0) {
        line++;
        buf[strcspn(buf, "\r\n")] = 0;
        /* Spreadsheets save UTF-8 with a byte-order mark; it is not part of the first name. */
        if (line == 1 && !strncmp(buf, "\xEF\xBB\xBF", 3)) memmove(buf, buf + 3, strlen(buf + 3) + 1);
        char *s = buf;
        while (isspace((unsigned char)*s)) s++;
        if (!*s || *s == '#') continue;
        if (split(buf, &f)) {
            rc = qat_fail(QAT_EINPUT, "%s:%d: more than %d fields", path, line, MAX_FIELDS);
            break;
        }
        if (!seen_first) {
            seen_first = 1;
            char *end;
            strtod(f.text[0], &end);
            if (end == f.text[0] || *end) { /* not a number: a header */
                for (int c = 0; c < NCOL; c++) col[c] = -1;
                for (int k = 0; k < f.n; k++) {
                    int c = column_of(f.text[k]);
                    if (c >= 0 && col[c] < 0) col[c] = k;
                }
                const char *missing = col[COL_N] < 0 ? "N (or 'Model Size')"
                                    : (col[COL_D] < 0 && col[COL_FLOP] < 0) ? "D (or 'Training FLOP')"
                                    : col[COL_LOSS] < 0 ? "loss" : NULL;
                if (missing) {
                    rc = qat_fail(QAT_EINPUT, "%s:%d: the header has no column for %s; expected "
                                  "N,D,loss[,format[,act_format[,grad_format]]]", path, line, missing);
                    break;
                }
                continue;
            }
        }
        qat_fit_run r;
        memset(&r, 0, sizeof r);
        r.n_terms = -1;
        snprintf(r.origin, sizeof r.origin, "%s:%d", path, line);
        double flop = 0;
        if ((rc = parse_positive(path, line, &f, col[COL_N], "N", &r.N))) break;
        if (col[COL_D] >= 0) {
            if ((rc = parse_positive(path, line, &f, col[COL_D], "D", &r.D))) break;
        } else {
            if ((rc = parse_positive(path, line, &f, col[COL_FLOP], "FLOP", &flop))) break;
            r.D = flop / (6.0 * r.N);
        }
        if ((rc = parse_positive(path, line, &f, col[COL_LOSS], "loss", &r.loss))) break;
        if ((rc = set_format(path, line, &f, col[COL_FMT], r.wfmt))) break;
        if ((rc = set_format(path, line, &f, col[COL_ACT], r.afmt))) break;
        if ((rc = set_format(path, line, &f, col[COL_GRAD], r.gfmt))) break;
        qat_fit_runs_push(rs, &r);
        rows++;
    }
    free(buf);
    fclose(fp);
    if (!rc && rows == 0) rc = qat_fail(QAT_EINPUT, "%s:%d: no data rows", path, line);
    return rc;
}

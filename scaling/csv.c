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
 * A header naming one column twice (or two names of one column, e.g. N and
 * params) is an error: which one was meant cannot be told. An unknown column
 * is warned about, naming the file, the column and the known names (a typo
 * such as `grad` would otherwise silently leave every run on the fp32
 * backward), except Epoch's plot columns x, y, color and hex_color, which
 * its table always has, and the columns qat fit --csv adds to its inputs'
 * (rho, eff_d, pred, resid_log, origin). Blank lines and lines starting with '#' are skipped,
 * and so is a UTF-8 byte-order mark at the start. A bad cell (a value out of
 * the range of qat_fit_check_range, an act_format the trainer refuses on
 * activations (@2d, aq), a grad_format not accepted by qat_fit_bwd_check, a
 * NUL byte) is an error at file:line[:column].
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"
#include "scaling/inputs.h"
#if QAT_HAVE_COMPRESS
#include "compress/format.h"
#include "compress/format_table.h"
#endif

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

/* Columns qat has no use for and knows (not warned about): Epoch's plot
 * columns, and the outputs of qat fit --csv (docs/cli.md), so that a fit's
 * own CSV reads back as its inputs without five warnings. */
static int known_unused_column(const char *name) {
    static const char *const e[] = {"x", "y", "color", "hex_color", "rho", "eff_d", "pred", "resid_log", "origin", NULL};
    return match(name, e);
}

int qat_fit_parse_number(const char *s, double *v) {
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    /* decimal or scientific notation only, as the range checks expect: strtod
     * also reads hex (0x186a0 is 100000, 0x10 16); inf and nan are taken as
     * numbers, for the caller to refuse as not finite by name */
    const char *w = s + (*s == '+' || *s == '-');
    int word = !strcasecmp(w, "inf") || !strcasecmp(w, "infinity") || !strcasecmp(w, "nan");
    int plain = word || strspn(s, "0123456789+-.eE") == strlen(s);
    return plain && end != s && !*end && (!errno || errno == ERANGE);
}

static int parse_positive(const char *path, int line, const fields *f, int k, const char *what, double *v) {
    if (k >= f->n)
        return qat_fail(QAT_EINPUT, "%s:%d: missing the %s column (row has %d fields)", path, line, what, f->n);
    if (!f->text[k][0])
        return qat_fail(QAT_EINPUT, "%s:%d:%d: expected a positive number for %s, got an empty cell", path, line,
                        f->col[k], what);
    if (!qat_fit_parse_number(f->text[k], v) || !isfinite(*v) || *v <= 0)
        return qat_fail(QAT_EINPUT, "%s:%d:%d: expected a positive number for %s, got '%s'", path, line,
                        f->col[k], what, f->text[k]);
    if (strcmp(what, "FLOP")) { /* FLOP is checked as the D it gives */
        char where[600];
        snprintf(where, sizeof where, "%s:%d:%d", path, line, f->col[k]);
        return qat_fit_check_range(where, what, !strcmp(what, "loss"), *v);
    }
    return QAT_OK;
}

/* The grad_format cell through the one backward-scheme check. */
static int set_grad(const char *path, int line, const fields *f, int k, char *dst) {
    const char *s = (k >= 0 && k < f->n) ? f->text[k] : "";
    char where[600];
    snprintf(where, sizeof where, "%s:%d:%d", path, line, k >= 0 && k < f->n ? f->col[k] : 1);
    return qat_fit_bwd_check(where, s, dst);
}

static int set_format(const char *path, int line, const fields *f, int k, int is_act, char *dst) {
    const char *s = (k >= 0 && k < f->n && f->text[k][0]) ? f->text[k] : "fp32";
    if (strlen(s) >= QAT_FIT_FMT_LEN)
        return qat_fail(QAT_EINPUT, "%s:%d:%d: format name longer than %d characters", path, line,
                        k >= 0 ? f->col[k] : 1, QAT_FIT_FMT_LEN - 1);
    for (const char *c = s; *c; c++)
        if (isspace((unsigned char)*c) || *c == '/')
            return qat_fail(QAT_EINPUT, "%s:%d:%d: format '%s' may not contain spaces or '/'", path, line,
                            f->col[k], s);
#if QAT_HAVE_COMPRESS
    /* One check for every law: a label outside the format table would be a pair
     * of its own under --law decoupled (INT4 beside int4) while the unified law
     * refuses it. Kept in its canonical spelling, as a run log stores it. */
    qat_fmt fm;
    if (qat_fmt_parse(s, &fm)) {
        char why[512];
        snprintf(why, sizeof why, "%s", qat_errmsg());
        char *nl = strchr(why, '\n');
        if (nl) *nl = 0;
        return qat_fail(QAT_EINPUT, "%s:%d:%d: format '%s' is not a format string of docs/formats.md (formats are "
                        "lower case; case is not folded): %s", path, line, f->col[k], s, why);
    }
    /* what the trainer's quantizer refuses on an activation side names no run either:
     * the same rule (compress/format_table.h) */
    const char *refused = qat_fmt_side_refusal(&fm, !is_act);
    if (refused)
        return qat_fail(QAT_EINPUT, "%s:%d:%d: act_format '%s': %s, expected an activation format without it", path,
                        line, f->col[k], s, refused);
    char canon[64];
    qat_fmt_print(&fm, canon, sizeof canon);
    if (strlen(canon) < QAT_FIT_FMT_LEN) s = canon;
#endif
    strcpy(dst, s);
    return QAT_OK;
}

/* 1 when `rec` ends inside a quoted field, as split() reads it (a '"' opening
 * a field, closed by a '"' not followed by another); *col the 1-based column
 * where that field opened. */
static int quote_open(const char *rec, int *col) {
    const char *p = rec;
    while (isspace((unsigned char)*p)) p++;
    if (*p == '#') return 0; /* a comment is no row: its quotes open nothing */
    p = rec;
    for (;;) {
        while (*p == ' ' || *p == '\t') p++;
        if (*p == '"') {
            const char *open = p++;
            for (;; p++) {
                if (!*p) return *col = (int)(open - rec) + 1, 1;
                if (*p == '"') {
                    if (p[1] != '"') break;
                    p++;
                }
            }
            p++;
        }
        while (*p && *p != ',') p++;
        if (!*p) return 0;
        p++;
    }
}

/* One record: a line ended by LF, CR or CRLF (or the end of the file; every
 * spreadsheet and OS writes one of the three, and a file of CR-ended lines was
 * read as one line), joined with the lines after it while a quoted field is
 * open (RFC 4180: a field may hold a line end, as qat fit --csv writes an
 * origin whose file name has one), the line ends inside kept. Its text in *buf
 * without the final line end; *lines the lines it took; *nul_line and *nul_col
 * where a NUL byte is (0 when none). -1 at the end of the file. */
static ssize_t read_record(FILE *fp, char **buf, size_t *cap, int *lines, int *nul_line, int *nul_col) {
    size_t n = 0;
    int c = getc(fp), col = 0;
    *lines = 0, *nul_line = 0, *nul_col = 0;
    if (c == EOF) return -1;
    for (;;) {
        if (n + 3 > *cap) *buf = qat_xrealloc(*buf, *cap = *cap ? 2 * *cap : 256);
        if (c == EOF || c == '\n' || c == '\r') {
            (*lines)++;
            int crlf = 0;
            if (c == '\r') {
                int d = getc(fp);
                if (d == '\n') crlf = 1;
                else if (d != EOF) ungetc(d, fp);
            }
            (*buf)[n] = 0;
            int qcol;
            if (c == EOF || *nul_line || !quote_open(*buf, &qcol)) break;
            int next = getc(fp);
            if (next == EOF) break; /* the caller reports the open quote */
            if (c == '\r') (*buf)[n++] = '\r';
            if (c == '\n' || crlf) (*buf)[n++] = '\n';
            c = next, col = 0;
            continue;
        }
        col++;
        if (c == 0 && !*nul_line) *nul_line = *lines + 1, *nul_col = col;
        (*buf)[n++] = (char)c;
        c = getc(fp);
    }
    return (ssize_t)n;
}

int qat_fit_read_csv(const char *path, qat_fit_runs *rs) { return qat_fit_read_csv_warn(path, rs, NULL); }

int qat_fit_read_csv_warn(const char *path, qat_fit_runs *rs, FILE *warn) {
    FILE *fp = fopen(path, "r");
    if (!fp) return qat_fail(QAT_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    int col[NCOL] = {0, 1, -1, 2, 3, 4, 5}; /* positional layout until a header says otherwise */
    char *buf = NULL;
    size_t cap = 0;
    /* line: the first line of the record being read, which messages name; lines_read: every line so far */
    int line = 0, lines_read = 0, seen_first = 0, headed = 0, header_n = 0, header_line = 0, rows = 0, rc = QAT_OK;
    fields f;
    int took, nul_line, nul_col;
    while (read_record(fp, &buf, &cap, &took, &nul_line, &nul_col) >= 0) {
        line = lines_read + 1;
        lines_read += took;
        /* a NUL would silently end the line early (a binary file, a broken copy) */
        if (nul_line) {
            rc = qat_fail(QAT_EINPUT, "%s:%d:%d: a NUL byte inside the line; a CSV is text", path,
                          line + nul_line - 1, nul_col);
            break;
        }
        int qcol;
        if (quote_open(buf, &qcol)) {
            rc = qat_fail(QAT_EINPUT, "%s:%d:%d: a quoted field is not closed (no '\"' before the end of the file)",
                          path, line, qcol);
            break;
        }
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
            /* A header names columns: a first row with a number in it is data,
             * even with its N empty or mistyped (`,1e9,3` was taken for a
             * header naming the columns '1e9' and '3'). */
            int numbers = 0;
            for (int k = 0; k < f.n; k++) {
                char *end;
                strtod(f.text[k], &end);
                numbers += end != f.text[k] && !*end;
            }
            if (!numbers) {
                headed = 1;
                /* trailing empty names are nothing, as trailing empty fields on a
                 * data row: a spreadsheet pads its rows with commas */
                header_n = f.n;
                while (header_n > 1 && !f.text[header_n - 1][0]) header_n--;
                header_line = line;
                for (int c = 0; c < NCOL; c++) col[c] = -1;
                for (int k = 0; k < header_n && !rc; k++) {
                    if (!f.text[k][0]) { /* a column in the middle without a name: its values are not read */
                        if (warn)
                            fprintf(warn, "qat: warning: %s:%d:%d: column %d has no name in the header; its values "
                                    "are ignored\n", path, line, f.col[k], k + 1);
                        continue;
                    }
                    for (int j = 0; j < k && !rc; j++)
                        if (!strcasecmp(f.text[j], f.text[k]) ||
                            (column_of(f.text[k]) >= 0 && column_of(f.text[j]) == column_of(f.text[k])))
                            rc = qat_fail(QAT_EINPUT, "%s:%d:%d: column '%s' names the same column as '%s' "
                                          "(column %d); give each column once", path, line, f.col[k], f.text[k],
                                          f.text[j], j + 1);
                    int c = column_of(f.text[k]);
                    if (c >= 0) col[c] = k;
                    else if (warn && !known_unused_column(f.text[k]))
                        fprintf(warn, "qat: warning: %s:%d: unknown column '%s' ignored; known columns: N (model "
                                "size, params, n_params, parameters), D (tokens, training tokens), FLOP (training "
                                "flop, flops, compute), loss (val_loss, final_loss), format (weight_format), "
                                "act_format (activation_format), grad_format (gradient_format)\n",
                                path, line, f.text[k]);
                }
                if (rc) break;
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
        /* a non-empty field the header names no column for: a shifted row (empty
         * trailing fields, a spreadsheet's trailing comma, are nothing) */
        int last = f.n;
        while (headed && last > header_n && !f.text[last - 1][0]) last--;
        if (headed && last > header_n) {
            rc = qat_fail(QAT_EINPUT, "%s:%d:%d: %d fields, but the header (line %d) names %d columns", path, line,
                          f.col[header_n], last, header_line, header_n);
            break;
        }
        if (!headed && f.n > NCOL - 1) { /* a 7th field by position: no column to put it in */
            rc = qat_fail(QAT_EINPUT, "%s:%d:%d: %d fields, but a CSV without a header has at most %d "
                          "(N,D,loss,format,act_format,grad_format); add a header naming the columns", path, line,
                          f.col[NCOL - 1], f.n, NCOL - 1);
            break;
        }
        qat_fit_run r;
        memset(&r, 0, sizeof r);
        r.n_terms = -1;
        r.from_csv = 1;
        snprintf(r.origin, sizeof r.origin, "%s:%d", path, line);
        double flop = 0;
        if ((rc = parse_positive(path, line, &f, col[COL_N], "N", &r.N))) break;
        if (col[COL_D] >= 0) {
            if ((rc = parse_positive(path, line, &f, col[COL_D], "D", &r.D))) break;
        } else {
            if ((rc = parse_positive(path, line, &f, col[COL_FLOP], "FLOP", &flop))) break;
            r.D = flop / (6.0 * r.N);
            char where[600];
            snprintf(where, sizeof where, "%s:%d:%d", path, line, f.col[col[COL_FLOP]]);
            if ((rc = qat_fit_check_range(where, "D = FLOP/(6N)", 0, r.D))) break;
        }
        if ((rc = parse_positive(path, line, &f, col[COL_LOSS], "loss", &r.loss))) break;
        if ((rc = set_format(path, line, &f, col[COL_FMT], 0, r.wfmt))) break;
        if ((rc = set_format(path, line, &f, col[COL_ACT], 1, r.afmt))) break;
        if ((rc = set_grad(path, line, &f, col[COL_GRAD], r.gfmt))) break;
        qat_fit_runs_push(rs, &r);
        rows++;
    }
    free(buf);
    fclose(fp);
    /* an empty file has no line to point at ("f.csv:0:" read as a line number) */
    if (!rc && rows == 0 && lines_read == 0) rc = qat_fail(QAT_EINPUT, "%s: no data rows (the file is empty)", path);
    else if (!rc && rows == 0) rc = qat_fail(QAT_EINPUT, "%s:%d: no data rows", path, lines_read);
    return rc;
}

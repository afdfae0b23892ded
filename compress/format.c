/*
 * compress/format.c — the grammar of docs/formats.md format strings.
 *
 *   format    := "fp32" | stage | sparse "+" value | "noise(" format ")"
 *   stage     := sparse | value
 *   sparse    := "sp" PERCENT | N ":" M
 *   value     := "int" B | "ternary" | "fp4" | "vq" D "x" B
 *
 * Limits are chosen so every accepted format can actually be trained and
 * measured: int1..int8; sparsity strictly between 0 and 100 %; 1 <= N < M <= 256;
 * vq with 2^(d·b) <= 256 codewords (larger codebooks cannot be built by k-means
 * within the few seconds `qat capacity` allows, and would cost more storage than
 * a small model's weights). Nested noise and sparse+sparse are rejected.
 */
#include "compress/format.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

const char *qat_fmt_valid_list(void) {
    return "fp32, int1..int8, ternary, fp4, spNN (0<NN<100, e.g. sp50), N:M (e.g. 2:4, 1<=N<M<=256), "
           "vqDxB (d·b <= 8, e.g. vq2x2, vq4x2), SPARSE+VALUE (e.g. sp50+int4, 2:4+int4), noise(FORMAT)";
}

static int bad(const char *s, const char *why) {
    return qat_fail(QAT_EINPUT, "unknown format '%s' (%s); valid formats: %s", s, why, qat_fmt_valid_list());
}

/* Parse a non-negative decimal integer occupying exactly [p, end). */
static int parse_uint(const char *p, const char *end, int *out) {
    if (p >= end || end - p > 6) return 0;
    int v = 0;
    for (const char *c = p; c < end; c++) {
        if (!isdigit((unsigned char)*c)) return 0;
        v = v * 10 + (*c - '0');
    }
    *out = v;
    return 1;
}

/* One stage without '+': fills either the sparsity or the value fields. */
static int parse_stage(const char *whole, const char *p, const char *end, qat_fmt *f, int *is_sparse) {
    size_t len = (size_t)(end - p);
    const char *colon = memchr(p, ':', len);
    if (colon) {
        int n, m;
        if (!parse_uint(p, colon, &n) || !parse_uint(colon + 1, end, &m)) return bad(whole, "N:M needs two integers");
        if (n < 1 || n >= m || m > 256) return bad(whole, "N:M needs 1 <= N < M <= 256");
        f->sp = QAT_SP_NM;
        f->nm_n = n;
        f->nm_m = m;
        *is_sparse = 1;
        return QAT_OK;
    }
    if (len > 2 && !strncmp(p, "sp", 2)) {
        /* a percentage, integer or with a decimal part ("sp87.5") */
        char buf[32];
        if (len - 2 >= sizeof buf) return bad(whole, "sparsity percentage too long");
        memcpy(buf, p + 2, len - 2);
        buf[len - 2] = 0;
        for (char *c = buf; *c; c++)
            if (!isdigit((unsigned char)*c) && *c != '.') return bad(whole, "spNN needs a percentage");
        char *e;
        double pct = strtod(buf, &e);
        if (*e || !(pct > 0.0 && pct < 100.0)) return bad(whole, "sparsity must be strictly between 0 and 100");
        f->sp = QAT_SP_MAGNITUDE;
        f->sparsity = pct / 100.0;
        *is_sparse = 1;
        return QAT_OK;
    }
    *is_sparse = 0;
    if (len > 3 && !strncmp(p, "int", 3)) {
        int b;
        if (!parse_uint(p + 3, end, &b)) return bad(whole, "intB needs a whole number of bits B after 'int'");
        if (b < 1 || b > 8) return bad(whole, "intB needs 1 <= B <= 8");
        f->val = QAT_VAL_INT;
        f->bits = b;
        return QAT_OK;
    }
    if (len == 7 && !strncmp(p, "ternary", 7)) {
        f->val = QAT_VAL_TERNARY;
        return QAT_OK;
    }
    if (len == 3 && !strncmp(p, "fp4", 3)) {
        f->val = QAT_VAL_FP4;
        f->bits = 4;
        return QAT_OK;
    }
    if (len > 2 && !strncmp(p, "vq", 2)) {
        const char *x = memchr(p + 2, 'x', len - 2);
        int d, b;
        if (!x || !parse_uint(p + 2, x, &d) || !parse_uint(x + 1, end, &b)) return bad(whole, "vqDxB needs two integers");
        if (d < 1 || b < 1 || d * b > 8) return bad(whole, "vqDxB needs d >= 1, b >= 1, d·b <= 8");
        f->val = QAT_VAL_VQ;
        f->vq_dim = d;
        f->bits = b;
        return QAT_OK;
    }
    return bad(whole, "not a known stage");
}

int qat_fmt_parse(const char *s, qat_fmt *f) {
    memset(f, 0, sizeof *f);
    if (!s) return bad("(null)", "no format given");
    size_t len = strlen(s);
    if (len == 0) return bad(s, "empty string");
    if (len >= QAT_FMT_MAX) return bad(s, "too long");
    memcpy(f->name, s, len + 1);
    /* A stray character is the real problem, not the stage it lands in ('int4 '
     * once said "intB needs 1 <= B <= 8"): name it and where it is. */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (islower(c) || isdigit(c) || strchr(".:+()", c)) continue;
        char why[96];
        if (isspace(c))
            snprintf(why, sizeof why, "%s space at character %zu; formats contain no spaces",
                     i == len - 1 ? "a trailing" : i == 0 ? "a leading" : "a", i + 1);
        else if (isupper(c))
            snprintf(why, sizeof why, "upper-case '%c' at character %zu; formats are lower case", c, i + 1);
        else if (isprint(c))
            snprintf(why, sizeof why, "'%c' at character %zu is not part of any format", c, i + 1);
        else
            snprintf(why, sizeof why, "byte 0x%02X at character %zu is not part of any format", c, i + 1);
        return bad(s, why);
    }
    if (!strcmp(s, "fp32")) return QAT_OK;
    const char *p = s, *end = s + len;
    if (len > 7 && !strncmp(s, "noise(", 6) && s[len - 1] == ')') {
        f->noise = 1;
        p = s + 6;
        end = s + len - 1;
        if (end - p == 4 && !strncmp(p, "fp32", 4)) return bad(s, "noise(fp32) adds nothing");
        if (!strncmp(p, "noise(", 6)) return bad(s, "noise() cannot be nested");
    }
    const char *plus = memchr(p, '+', (size_t)(end - p));
    int sp1 = 0, sp2 = 0;
    if (plus) {
        QAT_TRY(parse_stage(s, p, plus, f, &sp1));
        if (!sp1) return bad(s, "the part before '+' must be a sparsity (spNN or N:M)");
        QAT_TRY(parse_stage(s, plus + 1, end, f, &sp2));
        if (sp2) return bad(s, "the part after '+' must be a value format (intB, ternary, fp4, vqDxB)");
        if (f->val == QAT_VAL_VQ) return bad(s, "sparse+vq is not supported");
        return QAT_OK;
    }
    return parse_stage(s, p, end, f, &sp1);
}

qat_fmt qat_fmt_value_part(const qat_fmt *f) {
    qat_fmt v = *f;
    v.noise = 0;
    v.sp = QAT_SP_NONE;
    v.sparsity = 0;
    v.nm_n = v.nm_m = 0;
    return v;
}

qat_fmt qat_fmt_sparse_part(const qat_fmt *f) {
    qat_fmt v = *f;
    v.noise = 0;
    v.val = QAT_VAL_NONE;
    v.bits = v.vq_dim = 0;
    return v;
}

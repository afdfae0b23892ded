/*
 * compress/format_table.c — format_table.h: one row per kind of format.
 *
 * Each row says everything about its kind that the rest of qat needs; the
 * functions below it combine rows for the composite forms (SPARSE+VALUE,
 * noise(F)). Rows appear in the order the grammar lists them.
 */
#include "compress/format_table.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress/aq.h"
#include "compress/estimator_hooks.h"
#include "compress/grid.h"
#include "compress/hadamard.h"
#include "compress/project.h"
#include "compress/sparse.h"
#include "core/error.h"

int qat_fmt_parse_uint(const char *p, const char *end, int *out) {
    if (p >= end || end - p > 6) return 0;
    int v = 0;
    for (const char *c = p; c < end; c++) {
        if (!isdigit((unsigned char)*c)) return 0;
        v = v * 10 + (*c - '0');
    }
    *out = v;
    return 1;
}

static int prefix(const char *p, size_t len, const char *word) {
    size_t w = strlen(word);
    return len > w && !strncmp(p, word, w);
}

static int exactly(const char *p, size_t len, const char *word) { return len == strlen(word) && !strncmp(p, word, len); }

/* ---- fp32 ---------------------------------------------------------------- */

static int fp32_parse(const char *p, size_t len, qat_fmt *f, const char **why) {
    (void)f, (void)why;
    return exactly(p, len, "fp32");
}
static void fp32_print(const qat_fmt *f, char *b, size_t n) { (void)f, snprintf(b, n, "fp32"); }
static double fp32_bits(const qat_fmt *f, double vb) { (void)f, (void)vb; return 16.0; } /* bf16 storage */
static int fp32_gmse(const qat_fmt *f, double *g) { (void)f; *g = 0.0; return 1; }

/* ---- intB (QuEST) --------------------------------------------------------- */

static int int_parse(const char *p, size_t len, qat_fmt *f, const char **why) {
    if (!prefix(p, len, "int")) return 0;
    int b;
    if (!qat_fmt_parse_uint(p + 3, p + len, &b)) { *why = "intB needs a whole number of bits B after 'int'"; return -1; }
    if (b < 1 || b > 8) { *why = "intB needs 1 <= B <= 8"; return -1; }
    f->val = QAT_VAL_INT;
    f->bits = b;
    return 1;
}
static void int_print(const qat_fmt *f, char *b, size_t n) { snprintf(b, n, "int%d", f->bits); }
static double int_bits(const qat_fmt *f, double vb) { (void)vb; return f->bits; }
static double int_alpha(const qat_fmt *f) { return QAT_INT_ALPHA[f->bits]; }
static int int_gmse(const qat_fmt *f, double *g) {
    *g = qat_grid_int_gmse(f->bits, QAT_INT_ALPHA[f->bits]);
    return 1;
}

/* ---- ternary -------------------------------------------------------------- */

static int ternary_parse(const char *p, size_t len, qat_fmt *f, const char **why) {
    (void)why;
    if (!exactly(p, len, "ternary")) return 0;
    f->val = QAT_VAL_TERNARY;
    return 1;
}
static void ternary_print(const qat_fmt *f, char *b, size_t n) { (void)f, snprintf(b, n, "ternary"); }
static double ternary_bits(const qat_fmt *f, double vb) { (void)f, (void)vb; return log2(3.0); }
static double ternary_alpha(const qat_fmt *f) { (void)f; return QAT_TERNARY_ALPHA; }
static int ternary_gmse(const qat_fmt *f, double *g) {
    (void)f;
    *g = qat_grid_ternary_gmse(QAT_TERNARY_ALPHA);
    return 1;
}

/* ---- fp4 (E2M1 at the Gaussian-optimal RMS scale) ------------------------- */

static int fp4_parse(const char *p, size_t len, qat_fmt *f, const char **why) {
    (void)why;
    if (!exactly(p, len, "fp4")) return 0;
    f->val = QAT_VAL_FP4;
    f->bits = 4;
    return 1;
}
static void fp4_print(const qat_fmt *f, char *b, size_t n) { (void)f, snprintf(b, n, "fp4"); }
static double fp4_bits(const qat_fmt *f, double vb) { (void)f, (void)vb; return 4.0; }
static double fp4_alpha(const qat_fmt *f) { (void)f; return QAT_FP4_SCALE; }
static int fp4_gmse(const qat_fmt *f, double *g) {
    (void)f;
    *g = qat_grid_fp4_gmse(QAT_FP4_SCALE);
    return 1;
}

/* ---- vqDxB ---------------------------------------------------------------- */

static int vq_parse(const char *p, size_t len, qat_fmt *f, const char **why) {
    if (!prefix(p, len, "vq")) return 0;
    const char *x = memchr(p + 2, 'x', len - 2);
    int d, b;
    if (!x || !qat_fmt_parse_uint(p + 2, x, &d) || !qat_fmt_parse_uint(x + 1, p + len, &b)) { *why = "vqDxB needs two integers"; return -1; }
    if (d < 1 || b < 1 || d * b > 8) { *why = "vqDxB needs d >= 1, b >= 1, d·b <= 8"; return -1; }
    f->val = QAT_VAL_VQ;
    f->vq_dim = d;
    f->bits = b;
    return 1;
}
static void vq_print(const qat_fmt *f, char *b, size_t n) { snprintf(b, n, "vq%dx%d", f->vq_dim, f->bits); }
static double vq_bits(const qat_fmt *f, double vb) { (void)vb; return f->bits; } /* the codebook is part of the format */
static int vq_group(const qat_fmt *f) { return f->vq_dim; }

/* ---- aqMxBgG (learned additive codebooks, compress/aq.h) ------------------ */

static int aq_parse(const char *p, size_t len, qat_fmt *f, const char **why) {
    if (!prefix(p, len, "aq")) return 0;
    const char *end = p + len, *x = memchr(p + 2, 'x', len - 2);
    const char *g = x ? memchr(x + 1, 'g', (size_t)(end - x - 1)) : NULL;
    int m, b, grp;
    if (!x || !g || !qat_fmt_parse_uint(p + 2, x, &m) || !qat_fmt_parse_uint(x + 1, g, &b) ||
        !qat_fmt_parse_uint(g + 1, end, &grp)) {
        *why = "aqMxBgG needs three integers (M codebooks of 2^B entries over groups of G inputs, e.g. aq1x8g8)";
        return -1;
    }
    if (m < 1 || m > QAT_AQ_MAX_BOOKS || b < 1 || b > QAT_AQ_MAX_BITS || grp < 1 || grp > QAT_AQ_MAX_GROUP) {
        *why = "aqMxBgG needs 1 <= M <= 4, 1 <= B <= 8, 1 <= G <= 32";
        return -1;
    }
    f->val = QAT_VAL_AQ;
    f->aq_books = m;
    f->bits = b;
    f->vq_dim = grp;
    return 1;
}
static void aq_print(const qat_fmt *f, char *b, size_t n) { snprintf(b, n, "aq%dx%dg%d", f->aq_books, f->bits, f->vq_dim); }
/* the codes only: M·B bits per group of G; the codebooks (M·2^B·G bf16 values)
 * and the per-row scales depend on the layer's shape (docs/formats.md) */
static double aq_bits(const qat_fmt *f, double vb) { (void)vb; return (double)f->aq_books * f->bits / f->vq_dim; }
static void aq_gmse_mc(const qat_fmt *f, int64_t samples, uint64_t seed, double *g, double *se) {
    qat_aq_gmse_mc(f->aq_books, f->bits, f->vq_dim, samples, seed, g, se);
}

/* ---- spNN ----------------------------------------------------------------- */

/* A percentage has one spelling (docs/formats.md, "Format grammar"): decimal
 * digits, the integer part without leading zeros (checked for every number of a
 * format by qat_fmt_parse) and never empty, an optional decimal part of at least
 * one digit, at most QAT_SP_DIGITS significant digits. Zeros ending the decimal
 * part only are dropped from the name (sp50.0 is sp50). The limit is what makes
 * the name exact: sp_print writes that many digits, so every accepted
 * percentage prints back as itself and two different ones never share a name
 * (a sweep grid would call them one run, a fit one format); %.9g printed
 * sp0.00001 as sp1e-05, which no parser took back. */
#define QAT_SP_DIGITS 9

static int sp_parse(const char *p, size_t len, qat_fmt *f, const char **why) {
    if (!prefix(p, len, "sp")) return 0;
    static _Thread_local char msg[160]; /* *why with the spelling to use */
    char buf[32];
    if (len - 2 >= sizeof buf) { *why = "sparsity percentage too long"; return -1; }
    memcpy(buf, p + 2, len - 2);
    buf[len - 2] = 0;
    size_t n = len - 2, points = 0;
    for (char *c = buf; *c; c++) {
        if (*c == '.') points++;
        else if (!isdigit((unsigned char)*c)) {
            *why = "spNN needs a percentage in decimal digits, e.g. sp50 or sp87.5 (no sign or exponent)";
            return -1;
        }
    }
    if (points > 1) { *why = "spNN needs a percentage with at most one decimal point, e.g. sp87.5"; return -1; }
    if (buf[0] == '.' || buf[n - 1] == '.') { /* sp.5, sp50.: a point between digits, as in every name qat writes */
        if (buf[0] == '.') snprintf(msg, sizeof msg, "a percentage starts with a digit (write 'sp0%s')", buf);
        else snprintf(msg, sizeof msg, "a decimal point needs a digit after it (write 'sp%.*s')", (int)n - 1, buf);
        *why = msg;
        return -1;
    }
    if (points) { /* zeros ending the decimal part name the same percentage */
        while (buf[n - 1] == '0') buf[--n] = 0;
        if (buf[n - 1] == '.') buf[--n] = 0;
    }
    int sig = 0, lead = 1;
    for (char *c = buf; *c; c++) {
        if (*c == '.') continue;
        if (lead && *c == '0') continue;
        lead = 0;
        sig++;
    }
    if (sig > QAT_SP_DIGITS) {
        snprintf(msg, sizeof msg, "a percentage has at most %d significant digits, this one has %d, so its name "
                 "could not tell it from its neighbours", QAT_SP_DIGITS, sig);
        *why = msg;
        return -1;
    }
    double pct = strtod(buf, NULL);
    if (!(pct > 0.0 && pct < 100.0)) { *why = "sparsity must be strictly between 0 and 100"; return -1; }
    f->sp = QAT_SP_MAGNITUDE;
    f->sparsity = pct / 100.0;
    return 1;
}

/* The percentage in plain decimal with QAT_SP_DIGITS significant digits at
 * most, trailing zeros dropped: the spelling sp_parse accepts, so it reads back
 * as the same sparsity (the rounding of pct/100 and back is ~1e-16 relative, far
 * inside half a unit of the ninth digit). */
static void sp_print(const qat_fmt *f, char *b, size_t n) {
    char e[32], digits[QAT_SP_DIGITS + 1], out[48];
    snprintf(e, sizeof e, "%.*e", QAT_SP_DIGITS - 1, f->sparsity * 100.0); /* d.dddddddde±XX */
    int nd = 0;
    for (const char *c = e; *c && *c != 'e'; c++)
        if (isdigit((unsigned char)*c)) digits[nd++] = *c;
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    int exp10 = atoi(strchr(e, 'e') + 1), o = 0;
    if (exp10 < 0) { /* 0.000ddd */
        out[o++] = '0', out[o++] = '.';
        for (int i = 0; i < -exp10 - 1; i++) out[o++] = '0';
        for (int i = 0; i < nd; i++) out[o++] = digits[i];
    } else {
        for (int i = 0; i <= exp10; i++) out[o++] = i < nd ? digits[i] : '0';
        if (nd > exp10 + 1) {
            out[o++] = '.';
            for (int i = exp10 + 1; i < nd; i++) out[o++] = digits[i];
        }
    }
    out[o] = 0;
    snprintf(b, n, "sp%s", out);
}
/* survivors cost their value bits, plus a 1-bit bitmap per parameter */
static double sp_bits(const qat_fmt *f, double vb) { return vb * (1.0 - f->sparsity) + 1.0; }
static int sp_gmse(const qat_fmt *f, double *g) {
    if (f->val != QAT_VAL_NONE) return 0; /* sp+VALUE: Monte Carlo */
    *g = qat_sparse_gmse_exact(f->sparsity);
    return 1;
}

/* ---- N:M ------------------------------------------------------------------ */

static int nm_parse(const char *p, size_t len, qat_fmt *f, const char **why) {
    const char *colon = memchr(p, ':', len);
    if (!colon) return 0;
    int n, m;
    if (!qat_fmt_parse_uint(p, colon, &n) || !qat_fmt_parse_uint(colon + 1, p + len, &m)) { *why = "N:M needs two integers"; return -1; }
    if (n < 1 || n >= m || m > 256) { *why = "N:M needs 1 <= N < M <= 256"; return -1; }
    f->sp = QAT_SP_NM;
    f->nm_n = n;
    f->nm_m = m;
    return 1;
}
static void nm_print(const qat_fmt *f, char *b, size_t n) { snprintf(b, n, "%d:%d", f->nm_n, f->nm_m); }
static double log2_binom(int m, int n) { return (lgamma(m + 1.0) - lgamma(n + 1.0) - lgamma(m - n + 1.0)) / log(2.0); }
/* survivors cost their value bits, plus an index of the N kept per group of M */
static double nm_bits(const qat_fmt *f, double vb) { return vb * f->nm_n / f->nm_m + log2_binom(f->nm_m, f->nm_n) / f->nm_m; }
static int nm_group(const qat_fmt *f) { return f->nm_m; }
static int nm_gmse(const qat_fmt *f, double *g) {
    if (f->val != QAT_VAL_NONE) return 0; /* N:M+VALUE: Monte Carlo */
    *g = qat_nm_gmse_exact(f->nm_n, f->nm_m);
    return 1;
}

/* ---- block-scaled formats (numerics: blockfmt.h) --------------------------- */

/* The numerics of a parsed block format, with its modifiers. */
static qat_blk block_of(const qat_fmt *f) {
    qat_blk B;
    if (f->val == QAT_VAL_MX) B = qat_blk_mx(f->elem);
    else if (f->val == QAT_VAL_NVFP4) B = qat_blk_nvfp4(!!(f->mods & QAT_MOD_46));
    else B = qat_blk_int(f->bits, f->block, !!(f->mods & QAT_MOD_CLIP));
    B.stochastic = !!(f->mods & QAT_MOD_SR);
    return B;
}

static void block_setup(qat_proj *P, const qat_fmt *f) {
    P->blk = block_of(f);
    P->row = qat_blkproj_row;
    P->tensor_stats = f->val == QAT_VAL_NVFP4; /* the fp32 tensor scale (and 2-D tiles) */
}

static double block_bits(const qat_fmt *f, double vb) {
    (void)vb;
    if (f->mods & QAT_MOD_2D) return 4.0 + 8.0 / 256.0; /* one E4M3 scale per 16×16 tile */
    qat_blk B = block_of(f);
    return qat_blk_bits(&B);
}

/* OCP MX names: the element is part of the name (E2M3 and E4M3 are the defaults of 6 and 8 bits). */
static const struct { const char *name; qat_el_kind el; int bits; } MX_NAMES[] = {
    {"mxfp4", QAT_EL_E2M1, 4}, {"mxfp6", QAT_EL_E2M3, 6}, {"mxfp6e3m2", QAT_EL_E3M2, 6},
    {"mxfp8", QAT_EL_E4M3, 8}, {"mxfp8e5m2", QAT_EL_E5M2, 8},
};

static int mx_parse(const char *p, size_t len, qat_fmt *f, const char **why) {
    if (!(len >= 2 && !strncmp(p, "mx", 2))) return 0;
    for (size_t i = 0; i < sizeof MX_NAMES / sizeof *MX_NAMES; i++)
        if (exactly(p, len, MX_NAMES[i].name)) {
            f->val = QAT_VAL_MX;
            f->elem = MX_NAMES[i].el;
            f->bits = MX_NAMES[i].bits;
            f->block = 32;
            return 1;
        }
    *why = "MX formats are mxfp4, mxfp6, mxfp6e3m2, mxfp8, mxfp8e5m2";
    return -1;
}
static void mx_print(const qat_fmt *f, char *b, size_t n) {
    for (size_t i = 0; i < sizeof MX_NAMES / sizeof *MX_NAMES; i++)
        if (MX_NAMES[i].el == f->elem) snprintf(b, n, "%s", MX_NAMES[i].name);
}

static int nvfp4_parse(const char *p, size_t len, qat_fmt *f, const char **why) {
    (void)why;
    if (!exactly(p, len, "nvfp4")) return 0;
    f->val = QAT_VAL_NVFP4;
    f->bits = 4;
    f->block = 16;
    return 1;
}
static void nvfp4_print(const qat_fmt *f, char *b, size_t n) { (void)f, snprintf(b, n, "nvfp4"); }
static int nvfp4_check(qat_fmt *f, const char **why) {
    if ((f->mods & QAT_MOD_46) && (f->mods & QAT_MOD_2D)) {
        *why = "@46 and @2d do not combine: a 16x16 tile has one fixed scale";
        return 1;
    }
    return 0;
}

/* intB plus @gG is the group-scaled kind; its other modifiers need the group */
static int int_check(qat_fmt *f, const char **why) {
    if (!(f->mods & QAT_MOD_G)) return 0; /* the modifier test names what int does not take */
    if (f->bits < 2) {
        *why = "intB@gG needs 2 <= B <= 8";
        return 1;
    }
    f->val = QAT_VAL_INTG;
    return 0;
}
static void intg_print(const qat_fmt *f, char *b, size_t n) { snprintf(b, n, "int%d", f->bits); }
static int intg_parse(const char *p, size_t len, qat_fmt *f, const char **why) {
    (void)p, (void)len, (void)f, (void)why;
    return 0; /* spelled intB@gG: the int row parses intB and its check promotes it */
}

/* ---- the table ------------------------------------------------------------ */

/* Block formats: their own scale rule, Monte Carlo GMSE, quant capacity, not
 * rotated unless asked (@hB or hadamard), trust relative to the block's scale. */
#define BLOCK_ROW .stage = QAT_STAGE_BLOCK, .bits = block_bits, .setup = block_setup, .cap = QAT_CAP_QUANT, \
                  .est_class = QAT_ESTF_BLOCK, .default_est = QAT_EST_TRUST, .rotates = 0
#define VALUE_ROW .stage = QAT_STAGE_VALUE, .cap = QAT_CAP_QUANT, .default_est = QAT_EST_TRUST, .rotates = 1

static const qat_fmt_traits TABLE[] = {
    {.kind = "fp32", .frontier = "fp32", .syntax = "fp32", .stage = 0, .parse = fp32_parse, .print = fp32_print, .bits = fp32_bits,
     .gmse_exact = fp32_gmse, .est_class = QAT_ESTF_DENSE, .default_est = QAT_EST_STE},
    {.kind = "int", .frontier = "int1 int2 int3 int4 int5 int6 int8", .syntax = "int1..int8", .val = QAT_VAL_INT, .parse = int_parse, .print = int_print,
     .mods = QAT_MOD_G, .check = int_check, .bits = int_bits, .gmse_exact = int_gmse, .alpha = int_alpha, .est_class = QAT_ESTF_INT, VALUE_ROW},
    {.kind = "ternary", .frontier = "ternary", .syntax = "ternary", .val = QAT_VAL_TERNARY, .parse = ternary_parse, .print = ternary_print,
     .bits = ternary_bits, .gmse_exact = ternary_gmse, .alpha = ternary_alpha, .est_class = QAT_ESTF_GRID, VALUE_ROW},
    {.kind = "fp4", .frontier = "fp4", .syntax = "fp4", .val = QAT_VAL_FP4, .parse = fp4_parse, .print = fp4_print, .bits = fp4_bits,
     .gmse_exact = fp4_gmse, .alpha = fp4_alpha, .est_class = QAT_ESTF_GRID, VALUE_ROW},
    {.kind = "vq", .frontier = "vq2x2 vq4x2", .syntax = "vqDxB (d·b <= 8, e.g. vq2x2, vq4x2)", .val = QAT_VAL_VQ, .parse = vq_parse,
     .print = vq_print, .bits = vq_bits, .group = vq_group, .est_class = QAT_ESTF_VQ, .stage = QAT_STAGE_VALUE, .cap = QAT_CAP_VQ,
     .default_est = QAT_EST_TRUST, .rotates = 1},
    {.kind = "aq", .syntax = "aqMxBgG (learned codebooks, M <= 4, B <= 8, G <= 32, e.g. aq1x8g8, aq2x8g8)", .val = QAT_VAL_AQ,
     .parse = aq_parse, .print = aq_print, .bits = aq_bits, .gmse_mc = aq_gmse_mc, .group = vq_group, .est_class = QAT_ESTF_AQ,
     .stage = QAT_STAGE_VALUE, .cap = QAT_CAP_VQ, .default_est = QAT_EST_STE, .rotates = 0, .est_hooks = qat_aq_est_hooks},
    {.kind = "sp", .frontier = "sp50 sp75 sp50+int4", .syntax = "spNN (0<NN<100, at most 9 significant digits, e.g. sp50, sp87.5)", .stage = QAT_STAGE_SPARSE, .sp = QAT_SP_MAGNITUDE,
     .parse = sp_parse, .print = sp_print, .bits = sp_bits, .gmse_exact = sp_gmse, .cap = QAT_CAP_SPARSE,
     .est_class = QAT_ESTF_SPARSE_MAG, .default_est = QAT_EST_MASKED},
    {.kind = "N:M", .frontier = "2:4 2:4+int4", .syntax = "N:M (e.g. 2:4, 1<=N<M<=256)", .stage = QAT_STAGE_SPARSE, .sp = QAT_SP_NM,
     .parse = nm_parse, .print = nm_print, .bits = nm_bits, .gmse_exact = nm_gmse, .group = nm_group, .cap = QAT_CAP_SPARSE,
     .est_class = QAT_ESTF_SPARSE_NM, .default_est = QAT_EST_MASKED},
    {.kind = "mx", .frontier = "mxfp4 mxfp6 mxfp8", .syntax = "mxfp4 | mxfp6 | mxfp6e3m2 | mxfp8 | mxfp8e5m2", .val = QAT_VAL_MX, .parse = mx_parse,
     .print = mx_print, .mods = QAT_MOD_SR | QAT_MOD_H, BLOCK_ROW},
    {.kind = "nvfp4", .frontier = "nvfp4 nvfp4@46", .syntax = "nvfp4", .val = QAT_VAL_NVFP4, .parse = nvfp4_parse, .print = nvfp4_print,
     .mods = QAT_MOD_46 | QAT_MOD_2D | QAT_MOD_SR | QAT_MOD_H, .check = nvfp4_check, .tensor_bits = 32,
     .mc_values = (int64_t)1 << 22, BLOCK_ROW},
    {.kind = "intB@gG", .frontier = "int4@g32 int4@g128", .syntax = "intB@gG (2<=B<=8, G in 16, 32, 64, 128, 256)", .val = QAT_VAL_INTG,
     .parse = intg_parse, .print = intg_print, .mods = QAT_MOD_G | QAT_MOD_CLIP | QAT_MOD_SR | QAT_MOD_H, BLOCK_ROW},
};
#define NROWS ((int)(sizeof TABLE / sizeof *TABLE))

const qat_fmt_traits *qat_fmt_table(int *n) {
    *n = NROWS;
    return TABLE;
}

const qat_fmt_traits *qat_fmt_sparse_traits(const qat_fmt *f) {
    if (f->sp == QAT_SP_NONE) return NULL;
    for (int i = 0; i < NROWS; i++)
        if (TABLE[i].stage == QAT_STAGE_SPARSE && TABLE[i].sp == f->sp) return &TABLE[i];
    QAT_ASSERT(0);
    return NULL;
}

const qat_fmt_traits *qat_fmt_traits_of(const qat_fmt *f) {
    if (f->val == QAT_VAL_NONE) return f->sp != QAT_SP_NONE ? qat_fmt_sparse_traits(f) : &TABLE[0];
    for (int i = 0; i < NROWS; i++)
        if (TABLE[i].stage != QAT_STAGE_SPARSE && TABLE[i].val == f->val) return &TABLE[i];
    QAT_ASSERT(0);
    return NULL;
}

const char *const *qat_fmt_frontier_candidates(int *n) {
    static char buf[1024];
    static const char *list[128];
    static int count = -1;
    if (count < 0) {
        size_t l = 0;
        int c = 0;
        for (int i = 0; i < NROWS; i++) {
            const char *p = TABLE[i].frontier;
            while (p && *p) {
                size_t w = strcspn(p, " ");
                if (w && c < 128 && l + w + 1 <= sizeof buf) {
                    memcpy(buf + l, p, w);
                    buf[l + w] = 0;
                    list[c++] = buf + l;
                    l += w + 1;
                }
                p += w;
                while (*p == ' ') p++;
            }
        }
        count = c;
    }
    *n = count;
    return list;
}

unsigned qat_fmt_est_class(const qat_fmt *f) {
    if (f->noise || qat_fmt_is_dense(f)) return QAT_ESTF_DENSE;
    if (f->sp != QAT_SP_NONE && f->val != QAT_VAL_NONE) return QAT_ESTF_COMPOSITE;
    return qat_fmt_traits_of(f)->est_class;
}

qat_est qat_fmt_default_est(const qat_fmt *f) {
    if (f->noise || qat_fmt_is_dense(f)) return QAT_EST_STE;
    return qat_fmt_traits_of(f)->default_est; /* composites: the value stage's */
}

int qat_fmt_group(const qat_fmt *f) {
    int g = 1;
    const qat_fmt_traits *s = qat_fmt_sparse_traits(f);
    if (s && s->group) g = s->group(f);
    const qat_fmt_traits *v = qat_fmt_traits_of(f);
    if (f->val != QAT_VAL_NONE && v->group && v->group(f) > g) g = v->group(f);
    return g;
}

const char *qat_fmt_side_refusal(const qat_fmt *f, int is_weight) {
    if (is_weight) return NULL;
    if (f->mods & QAT_MOD_2D) return "@2d (16x16 tiles) applies to weights only";
    if (f->val == QAT_VAL_AQ && !f->noise)
        return "learned additive codebooks (aq) are learned for a weight tensor: the format applies to compress.weights only";
    return NULL;
}

double qat_fmt_bits_parsed(const qat_fmt *f, double *tensor_bits) {
    /* noise(F) stands in for F, so it costs F's bits */
    const qat_fmt_traits *v = qat_fmt_traits_of(f), *s = qat_fmt_sparse_traits(f);
    double b = f->val != QAT_VAL_NONE ? v->bits(f, 0) : 16.0; /* uncompressed survivors: bf16 */
    if (s) b = s->bits(f, b);
    if (tensor_bits) *tensor_bits = f->val != QAT_VAL_NONE ? v->tensor_bits : 0.0;
    return b;
}

int qat_fmt_hadamard(const qat_fmt *f, int configured, int64_t cols, int *block) {
    if (f->had && configured >= 0 && configured != f->had)
        return qat_fail(QAT_EINPUT, "format '%s' rotates with a Hadamard block of %d but hadamard is set to %d; "
                        "expected hadamard: -1 (auto) or %d, or a format without @h%d",
                        f->name, f->had, configured, f->had, f->had);
    if (configured >= 0) *block = configured;
    else if (f->had) *block = f->had;
    /* noise(F) and composites rotate like F's value stage */
    else if (!qat_fmt_is_dense(f) && (f->noise || qat_fmt_traits_of(f)->rotates))
        return qat_hadamard_block(-1, cols, block); /* min(128, largest power of two dividing cols) */
    else *block = 0;
    return QAT_OK;
}

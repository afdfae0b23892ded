/*
 * compress/format.c — the grammar of docs/formats.md format strings.
 *
 *   format    := base ("@" MOD)*
 *   base      := "fp32" | stage | sparse "+" value | "noise(" stage | sparse "+" value ")" | block
 *   stage     := sparse | value
 *   sparse, value, block := the rows of format_table.c (their `syntax`)
 *   MOD       := "g" G | "clip" | "46" | "2d" | "sr" | "h" B     (each kind lists those it takes)
 *
 * The stages themselves are parsed by the rows of the format table; this file
 * only combines them and checks the combinations. Limits are chosen so every
 * accepted format can actually be trained and measured: int1..int8; sparsity
 * strictly between 0 and 100 %; 1 <= N < M <= 256; vq with 2^(d·b) <= 256
 * codewords (larger codebooks cannot be built by k-means within the few seconds
 * `qat capacity` allows, and would cost more storage than a small model's
 * weights); aq with M <= 4 books of 2^B <= 256 learned codewords over groups of
 * G <= 32 (every step searches whole books). Nested noise, sparse+sparse,
 * sparse+vq, sparse+aq and modifiers a kind does not take are
 * rejected.
 */
#include "compress/format.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "compress/format_table.h"
#include "core/error.h"

/* Modifier spellings in canonical order (the bit order of QAT_MOD_*). */
static const char *const MOD_NAMES[] = {"gG", "clip", "46", "2d", "sr", "hB"};
static const char *const MOD_HELP[] = {
    "scale group of G values along the input dim, G in 16, 32, 64, 128, 256",
    "MSE-optimal clip on the group's RMS instead of absmax",
    "four over six: per block, scale to 4 instead of 6 when that errs less",
    "16x16 weight tiles share one scale (weights only)",
    "stochastic rounding, keyed by seed, step and element; E[q(x)] = x below the largest element times "
    "the scale: nvfp4 (its 17/16 margin) and intB@gG always, mx not at block maxima above it (mxfp4: "
    "above 6X; unbiased with scale_mul 4/3, docs/formats.md \"Scale multiplier\")",
    "Hadamard block B applied before blocking (= hadamard: B for this side)",
};
#define NMODS ((int)(sizeof MOD_NAMES / sizeof *MOD_NAMES))

const char *qat_fmt_valid_list(void) {
    static char buf[1024];
    static int done;
    if (done) return buf;
    int n;
    const qat_fmt_traits *t = qat_fmt_table(&n);
    size_t l = 0;
    for (int i = 0; i < n; i++) l += (size_t)snprintf(buf + l, sizeof buf - l, "%s%s", i ? ", " : "", t[i].syntax);
    snprintf(buf + l, sizeof buf - l, ", SPARSE+VALUE (e.g. sp50+int4, 2:4+int4), noise(FORMAT), FORMAT@MOD "
             "(see docs/formats.md)");
    done = 1;
    return buf;
}

const char *qat_fmt_grammar(void) {
    static char buf[2048];
    static int done;
    if (done) return buf;
    int n;
    const qat_fmt_traits *t = qat_fmt_table(&n);
    size_t l = (size_t)snprintf(buf, sizeof buf,
                                "  FORMAT := BASE[@MOD[@MOD...]]\n"
                                "  BASE   := fp32 | SPARSE | VALUE | SPARSE+VALUE | noise(SPARSE|VALUE|SPARSE+VALUE) | BLOCK\n");
    const char *stage_name[] = {"", "SPARSE", "VALUE", "BLOCK"};
    for (int s = QAT_STAGE_SPARSE; s <= QAT_STAGE_BLOCK; s++) {
        int first = 1;
        for (int i = 0; i < n; i++) {
            if ((int)t[i].stage != s) continue;
            l += (size_t)snprintf(buf + l, sizeof buf - l, "%s%s", first ? "" : " | ", t[i].syntax);
            if (first) {
                /* re-emit with the label in front */
                size_t w = strlen(t[i].syntax);
                char tmp[256];
                snprintf(tmp, sizeof tmp, "  %-6s := %s", stage_name[s], t[i].syntax);
                l -= w;
                l += (size_t)snprintf(buf + l, sizeof buf - l, "%s", tmp);
                first = 0;
            }
        }
        if (!first) l += (size_t)snprintf(buf + l, sizeof buf - l, "\n");
    }
    l += (size_t)snprintf(buf + l, sizeof buf - l, "  MOD    := (any order; the run log writes them in this order)\n");
    for (int m = 0; m < NMODS; m++) {
        l += (size_t)snprintf(buf + l, sizeof buf - l, "    @%-5s %s; for", MOD_NAMES[m], MOD_HELP[m]);
        int first = 1;
        for (int i = 0; i < n; i++) {
            if (!(t[i].mods & (1u << m)) || t[i].stage != QAT_STAGE_BLOCK) continue;
            l += (size_t)snprintf(buf + l, sizeof buf - l, "%s %s", first ? "" : ",", t[i].kind);
            first = 0;
        }
        l += (size_t)snprintf(buf + l, sizeof buf - l, "%s\n", (1u << m) == QAT_MOD_G ? " (intB@gG is intB with @gG)" : "");
    }
    l += (size_t)snprintf(buf + l, sizeof buf - l, "  e.g. mxfp4, mxfp4@h32@sr, nvfp4@46, nvfp4@2d, int4@g128, int4@g32@clip\n");
    done = 1;
    return buf;
}

static int bad(const char *s, const char *why) {
    return qat_fail(QAT_EINPUT, "unknown format '%s' (%s); valid formats: %s", s, why, qat_fmt_valid_list());
}

/* One stage without '+': the first table row that recognises it fills f. */
static int parse_stage(const char *whole, const char *p, const char *end, qat_fmt *f, const qat_fmt_traits **row) {
    int n;
    const qat_fmt_traits *t = qat_fmt_table(&n);
    for (int i = 0; i < n; i++) {
        const char *why = NULL;
        int r = t[i].parse(p, (size_t)(end - p), f, &why);
        if (r < 0) return bad(whole, why);
        if (r > 0) {
            *row = &t[i];
            return QAT_OK;
        }
    }
    return bad(whole, "not a known stage");
}

/* One modifier [p, end) into f->mods and its number (read by qat_fmt_parse_uint;
 * leading zeros were refused up front). */
static int parse_mod(const char *whole, const char *p, const char *end, qat_fmt *f) {
    size_t len = (size_t)(end - p);
    unsigned bit = 0;
    int v = 0;
    char why[160];
    if (len == 4 && !strncmp(p, "clip", 4)) bit = QAT_MOD_CLIP;
    else if (len == 2 && !strncmp(p, "46", 2)) bit = QAT_MOD_46;
    else if (len == 2 && !strncmp(p, "2d", 2)) bit = QAT_MOD_2D;
    else if (len == 2 && !strncmp(p, "sr", 2)) bit = QAT_MOD_SR;
    else if (len > 1 && p[0] == 'g' && qat_fmt_parse_uint(p + 1, end, &v)) {
        if (v != 16 && v != 32 && v != 64 && v != 128 && v != 256)
            return bad(whole, "@gG needs a group G of 16, 32, 64, 128 or 256 values sharing one scale (e.g. @g32)");
        bit = QAT_MOD_G;
    } else if (len > 1 && p[0] == 'h' && qat_fmt_parse_uint(p + 1, end, &v)) {
        if (v < 2 || (v & (v - 1)) || v > 65536)
            return bad(whole, "@hB needs a Hadamard block B that is a power of two, 2 <= B <= 65536 (e.g. @h32)");
        bit = QAT_MOD_H;
    } else {
        snprintf(why, sizeof why, "'@%.*s' is not a modifier; modifiers are @gG, @clip, @46, @2d, @sr, @hB", (int)len, p);
        return bad(whole, why);
    }
    /* '@g64' after '@g32' is the second @gG, not '@g64' twice: name the modifier
     * by its kind and both spellings, since a format has one group and one block */
    if (f->mods & bit) {
        if (bit == QAT_MOD_G)
            snprintf(why, sizeof why, "the @gG modifier is given twice (@g%d and @g%d); a format has one group size",
                     f->block, v);
        else if (bit == QAT_MOD_H)
            snprintf(why, sizeof why, "the @hB modifier is given twice (@h%d and @h%d); a format has one Hadamard block",
                     f->had, v);
        else
            snprintf(why, sizeof why, "the @%.*s modifier is given twice", (int)len, p);
        return bad(whole, why);
    }
    if (bit == QAT_MOD_G) f->block = v;
    if (bit == QAT_MOD_H) f->had = v;
    f->mods |= bit;
    return QAT_OK;
}

/* The base with its modifiers in canonical order into f->name. */
static void canonical_name(qat_fmt *f, const char *base, size_t blen) {
    char buf[QAT_FMT_MAX * 2];
    snprintf(buf, sizeof buf, "%.*s", (int)blen, base);
    for (int m = 0; m < NMODS; m++) {
        if (!(f->mods & (1u << m))) continue;
        size_t l = strlen(buf);
        if ((1u << m) == QAT_MOD_G) snprintf(buf + l, sizeof buf - l, "@g%d", f->block);
        else if ((1u << m) == QAT_MOD_H) snprintf(buf + l, sizeof buf - l, "@h%d", f->had);
        else snprintf(buf + l, sizeof buf - l, "@%s", MOD_NAMES[m]);
    }
    snprintf(f->name, sizeof f->name, "%s", buf);
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
        if (islower(c) || isdigit(c) || strchr(".:+()@", c)) continue;
        char why[96];
        if (isspace(c)) /* named, so that a tab is not reported as a space */
            snprintf(why, sizeof why, "%s %s at character %zu; formats contain no white space",
                     i == len - 1 ? "a trailing" : i == 0 ? "a leading" : "a", qat_space_name(c), i + 1);
        else if (isupper(c))
            snprintf(why, sizeof why, "upper-case '%c' at character %zu; formats are lower case", c, i + 1);
        else if (isprint(c))
            snprintf(why, sizeof why, "'%c' at character %zu is not part of any format", c, i + 1);
        else
            snprintf(why, sizeof why, "byte 0x%02X at character %zu is not part of any format", c, i + 1);
        return bad(s, why);
    }
    /* One spelling per format: a number with a leading zero (int04, @g032) would
     * be the same format under another name, so resume checks and fits would
     * see two formats; refuse it and name the canonical spelling. After the
     * stray characters, so that the spelling named is one that parses
     * ('sp1e-05' once was told to write 'sp1e-5', refused for its '-'). */
    for (size_t i = 0; i + 1 < len; i++) {
        if (s[i] != '0' || !isdigit((unsigned char)s[i + 1]) || (i && (isdigit((unsigned char)s[i - 1]) || s[i - 1] == '.')))
            continue;
        char why[160], fixed[QAT_FMT_MAX];
        size_t o = 0;
        for (size_t j = 0; j < len; j++) {
            int starts = isdigit((unsigned char)s[j]) && (!j || (!isdigit((unsigned char)s[j - 1]) && s[j - 1] != '.'));
            if (starts) /* drop the zeros leading this number, keep its last digit */
                while (s[j] == '0' && j + 1 < len && isdigit((unsigned char)s[j + 1])) j++;
            fixed[o++] = s[j];
        }
        fixed[o] = 0;
        snprintf(why, sizeof why, "a leading zero at character %zu; numbers in formats have none (write '%s')", i + 1, fixed);
        return bad(s, why);
    }
    /* modifiers: everything after the first '@' */
    const char *at = memchr(s, '@', len);
    if (at && !strncmp(s, "noise(", 6) && memchr(at, ')', (size_t)(s + len - at)))
        return bad(s, "noise() takes a sparsity or value format: block and group formats (mxfp4, nvfp4, intB@gG) "
                      "and modifiers do not combine with noise()");
    const char *end = at ? at : s + len;
    if (at) {
        for (const char *m = at; m < s + len;) {
            const char *next = memchr(m + 1, '@', (size_t)(s + len - m - 1));
            const char *mend = next ? next : s + len;
            if (mend == m + 1) return bad(s, "an empty modifier after '@'");
            QAT_TRY(parse_mod(s, m + 1, mend, f));
            m = mend;
        }
    }
    const char *p = s;
    const size_t blen = (size_t)(end - s);
    if (blen == 0) return bad(s, "no format before '@'");
    if (blen > 7 && !strncmp(s, "noise(", 6) && end[-1] == ')') {
        f->noise = 1;
        p = s + 6;
        end = end - 1;
        if (end - p == 4 && !strncmp(p, "fp32", 4)) return bad(s, "noise(fp32) adds nothing");
        if (!strncmp(p, "noise(", 6)) return bad(s, "noise() cannot be nested");
    }
    const qat_fmt_traits *r1 = NULL, *r2 = NULL;
    const char *plus = memchr(p, '+', (size_t)(end - p));
    /* a second '+' would otherwise reach a stage parser ("int4+int2" read as intB:
     * "intB needs a whole number of bits"), which blames a part that is fine */
    if (plus && memchr(plus + 1, '+', (size_t)(end - plus - 1)))
        return bad(s, "a composite is exactly two parts, SPARSE+VALUE (one sparsity, then one value format, e.g. "
                      "sp50+int4); this one has more than one '+'");
    if (plus) {
        QAT_TRY(parse_stage(s, p, plus, f, &r1));
        if (r1->stage != QAT_STAGE_SPARSE) return bad(s, "the part before '+' must be a sparsity (spNN or N:M)");
        QAT_TRY(parse_stage(s, plus + 1, end, f, &r2));
        if (r2->stage != QAT_STAGE_VALUE) return bad(s, "the part after '+' must be a value format (intB, ternary, fp4)");
        if (f->val == QAT_VAL_VQ) return bad(s, "sparse+vq is not supported");
        if (f->val == QAT_VAL_AQ) return bad(s, "sparse+aq is not supported");
    } else {
        QAT_TRY(parse_stage(s, p, end, f, &r1));
        if (f->noise && r1->stage != QAT_STAGE_SPARSE && r1->stage != QAT_STAGE_VALUE)
            return bad(s, "noise() takes a sparsity or value format");
    }
    if (f->mods) {
        if (f->noise || plus) return bad(s, "modifiers apply to a single stage, not to composites or noise()");
        /* the kind's own check first: it may turn the kind into another (intB@gG) */
        const qat_fmt_traits *k = qat_fmt_traits_of(f);
        const char *why = NULL;
        if (k->check && k->check(f, &why)) return bad(s, why);
        k = qat_fmt_traits_of(f);
        for (int m = 0; m < NMODS; m++) {
            if (!(f->mods & (1u << m)) || (k->mods & (1u << m))) continue;
            char w[200];
            snprintf(w, sizeof w, "modifier @%s does not apply to %s", MOD_NAMES[m], k->kind);
            return bad(s, w);
        }
    }
    /* the name is the canonical spelling, whatever order the modifiers came in */
    qat_fmt_print(f, f->name, sizeof f->name);
    return QAT_OK;
}

int qat_fmt_canonical_side(const char *format, int hadamard, char *out, size_t n, int *hadamard_out) {
    qat_fmt f;
    QAT_TRY(qat_fmt_parse(format, &f));
    *hadamard_out = hadamard;
    if (f.had && hadamard == f.had) *hadamard_out = -1; /* hadamard: B repeats @hB */
    else if (qat_fmt_is_block(&f) && !f.had && hadamard > 0) {
        f.had = hadamard; /* hadamard: B on a block format is its @hB */
        f.mods |= QAT_MOD_H;
        *hadamard_out = -1;
    }
    qat_fmt_print(&f, out, n);
    return QAT_OK;
}

char *qat_fmt_print(const qat_fmt *f, char *buf, size_t n) {
    char tmp[QAT_FMT_MAX * 2] = "";
    const qat_fmt_traits *s = qat_fmt_sparse_traits(f), *v = qat_fmt_traits_of(f);
    size_t l = 0;
    if (f->noise) l += (size_t)snprintf(tmp + l, sizeof tmp - l, "noise(");
    if (s) {
        s->print(f, tmp + l, sizeof tmp - l);
        l = strlen(tmp);
    }
    if (f->val != QAT_VAL_NONE || !s) {
        if (s) tmp[l++] = '+', tmp[l] = 0;
        v->print(f, tmp + l, sizeof tmp - l);
        l = strlen(tmp);
    }
    if (f->noise) snprintf(tmp + l, sizeof tmp - l, ")");
    qat_fmt g = *f;
    canonical_name(&g, tmp, strlen(tmp));
    snprintf(buf, n, "%s", g.name);
    return buf;
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
    v.bits = v.vq_dim = v.aq_books = 0;
    return v;
}

/*
 * tests/test_compress_formats.c — formats against docs/reference-numbers.md: parsing, the α* table,
 * every published GMSE (exact ones to 1e-5 relative or the published digits;
 * Monte-Carlo ones within 3 standard errors and 1 %), N:M's exact GMSE against
 * independent values and the projection's Monte Carlo, Lloyd–Max, capacity ρ,
 * bits, capacity terms and the three QuEST quantizer vectors with trust masks.
 */
#include <math.h>
#include <stdlib.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "compress/capacity.h"
#include "compress/estimator.h"
#include "compress/format.h"
#include "compress/format_table.h"
#include "compress/gmse.h"
#include "compress/grid.h"
#include "compress/project.h"
#include "compress/sparse.h"
#include "core/error.h"
#include "core/rng.h"

/* |got − want| within 1e-5 relative, or half a unit of the last published digit
 * when the published number has fewer digits than that (`ulp` = that unit). */
static void assert_published(const char *what, double got, double want, double ulp) {
    double tol = fmax(1e-5 * fabs(want), 0.5 * ulp);
    if (fabs(got - want) > tol) fail_msg("%s: got %.8g, published %.8g (tol %.3g)", what, got, want, tol);
}

static void test_parse_valid_and_invalid(void **state) {
    (void)state;
    const char *ok[] = {"fp32", "int1", "int8", "ternary", "fp4", "sp50", "sp87.5", "2:4", "4:8", "1:4",
                        "vq2x2", "vq4x2", "sp50+int4", "2:4+int4", "noise(int4)", "noise(sp50+int2)"};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        qat_fmt f;
        if (qat_fmt_parse(ok[i], &f) != QAT_OK) fail_msg("'%s' rejected: %s", ok[i], qat_errmsg());
    }
    qat_fmt f;
    assert_int_equal(qat_fmt_parse("2:4+int4", &f), QAT_OK);
    assert_int_equal(f.sp, QAT_SP_NM);
    assert_int_equal(f.nm_n, 2);
    assert_int_equal(f.nm_m, 4);
    assert_int_equal(f.val, QAT_VAL_INT);
    assert_int_equal(f.bits, 4);
    assert_int_equal(qat_fmt_parse("noise(sp75)", &f), QAT_OK);
    assert_true(f.noise);
    assert_true(fabs(f.sparsity - 0.75) < 1e-12);

    const char *bad[] = {"", "int0", "int9", "int", "fp16", "sp0", "sp100", "4:2", "2:2", "vq4x4", "int4+sp50",
                         "sp50+sp25", "noise(fp32)", "noise(noise(int4))", "sp50+", "INT4", "int4 "};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        qat_clear_error();
        if (qat_fmt_parse(bad[i], &f) != QAT_EINPUT) fail_msg("'%s' accepted", bad[i]);
        assert_non_null(strstr(qat_errmsg(), "valid formats"));
        assert_non_null(strstr(qat_errmsg(), "int1..int8"));
    }
    double g, se;
    assert_int_equal(qat_fmt_gmse("int17", 0, 0, &g, &se), QAT_EINPUT);
    /* A stray character is named where it is, not blamed on the stage it lands in. */
    struct { const char *fmt, *says; } stray[] = {
        {"int4 ", "a trailing space at character 5"}, {" sp50", "a leading space at character 1"},
        {"mxfp4\t", "a trailing tab at character 6"}, {"int4\n@g32", "a newline at character 5"},
        {"INT4", "upper-case 'I' at character 1"},    {"2:4;", "';' at character 4"},
    };
    for (size_t i = 0; i < sizeof stray / sizeof *stray; i++) {
        qat_clear_error();
        assert_int_equal(qat_fmt_parse(stray[i].fmt, &f), QAT_EINPUT);
        if (!strstr(qat_errmsg(), stray[i].says)) fail_msg("'%s': %s", stray[i].fmt, qat_errmsg());
        assert_null(strstr(qat_errmsg(), "1 <= B <= 8"));
    }
    /* A part given twice is named as the grammar has it, not as a fault of the part
     * itself: the second @gG is not "'@g64' given twice", a third part is not "intB
     * needs a whole number of bits". */
    struct { const char *fmt, *says; } twice[] = {
        {"int4@g32@g64", "the @gG modifier is given twice (@g32 and @g64); a format has one group size"},
        {"mxfp4@h16@h32", "the @hB modifier is given twice (@h16 and @h32); a format has one Hadamard block"},
        {"mxfp4@sr@sr", "the @sr modifier is given twice"},
        {"sp50+int4+int2", "a composite is exactly two parts, SPARSE+VALUE (one sparsity, then one value format, "
                           "e.g. sp50+int4); this one has more than one '+'"},
        {"2:4+sp50+int4", "a composite is exactly two parts"},
    };
    for (size_t i = 0; i < sizeof twice / sizeof *twice; i++) {
        qat_clear_error();
        assert_int_equal(qat_fmt_parse(twice[i].fmt, &f), QAT_EINPUT);
        if (!strstr(qat_errmsg(), twice[i].says)) fail_msg("'%s': %s", twice[i].fmt, qat_errmsg());
        assert_null(strstr(qat_errmsg(), "needs a whole number"));
    }
}

/* One spelling per format: modifiers in any order and an equal hadamard setting
 * give one canonical name (what run logs, resume and fits compare); numbers with
 * leading zeros are refused naming the canonical spelling; @h0, @g0 and
 * noise(BLOCK) say what is wrong instead of "not a modifier". */
static void test_canonical_names(void **state) {
    (void)state;
    qat_fmt f;
    struct { const char *in, *name; } same[] = {
        {"mxfp4@sr@h32", "mxfp4@sr@h32"}, {"mxfp4@h32@sr", "mxfp4@sr@h32"}, {"nvfp4@sr@46", "nvfp4@46@sr"},
        {"int4@clip@g32", "int4@g32@clip"}, {"sp50.0", "sp50"}, {"sp0.5", "sp0.5"}, {"int4", "int4"},
    };
    for (size_t i = 0; i < sizeof same / sizeof *same; i++) {
        if (qat_fmt_parse(same[i].in, &f)) fail_msg("'%s' rejected: %s", same[i].in, qat_errmsg());
        if (strcmp(f.name, same[i].name)) fail_msg("'%s' named '%s', expected '%s'", same[i].in, f.name, same[i].name);
    }
    struct { const char *in, *says; } bad[] = {
        {"int04@g32", "(write 'int4@g32')"}, {"int4@g032", "(write 'int4@g32')"}, {"mxfp4@h032", "(write 'mxfp4@h32')"},
        {"2:04", "(write '2:4')"}, {"sp050", "(write 'sp50')"}, {"int004", "(write 'int4')"},
        {"mxfp4@h0", "@hB needs a Hadamard block B that is a power of two"}, {"mxfp4@g0", "@gG needs a group G of 16"},
        {"int4@g0", "@gG needs a group G of 16"},
        {"noise(int4@g32)", "do not combine with noise()"}, {"noise(mxfp4@h32)", "do not combine with noise()"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        qat_clear_error();
        if (qat_fmt_parse(bad[i].in, &f) != QAT_EINPUT) fail_msg("'%s' accepted as '%s'", bad[i].in, f.name);
        if (!strstr(qat_errmsg(), bad[i].says)) fail_msg("'%s': %s", bad[i].in, qat_errmsg());
        assert_null(strstr(qat_errmsg(), "is not a modifier"));
    }
    /* a side's (format, hadamard): a block format's hadamard: B is its @hB */
    char buf[QAT_FMT_MAX];
    int h;
    assert_int_equal(qat_fmt_canonical_side("mxfp4@sr", 32, buf, sizeof buf, &h), QAT_OK);
    assert_string_equal(buf, "mxfp4@sr@h32");
    assert_int_equal(h, -1);
    assert_int_equal(qat_fmt_canonical_side("mxfp4@h32@sr", 32, buf, sizeof buf, &h), QAT_OK);
    assert_string_equal(buf, "mxfp4@sr@h32");
    assert_int_equal(h, -1);
    assert_int_equal(qat_fmt_canonical_side("int4", 32, buf, sizeof buf, &h), QAT_OK); /* not a block format: kept */
    assert_string_equal(buf, "int4");
    assert_int_equal(h, 32);
    assert_int_equal(qat_fmt_canonical_side("mxfp4", -1, buf, sizeof buf, &h), QAT_OK);
    assert_string_equal(buf, "mxfp4");
    assert_int_equal(h, -1);
}

/* spNN's percentage has one spelling (docs/formats.md, "Format grammar"), and
 * the name qat prints is always that spelling: %.9g printed sp0.00001 as
 * sp1e-05 and sp99.9999999999 as sp100, neither of which parsed back, and gave
 * sp12.34567891 and sp12.3456789 one name. Every accepted percentage (up to 9
 * significant digits, anywhere between 0 and 100) prints as itself and parses
 * back to the same sparsity; the spellings that are not decimals as qat writes
 * them are refused naming the one to use, as a leading zero is. */
static void test_sparsity_spelling(void **state) {
    (void)state;
    qat_fmt f, g;
    char buf[QAT_FMT_MAX];
    struct { const char *in, *name; } same[] = {
        {"sp0.00001", "sp0.00001"}, {"sp0.000000001", "sp0.000000001"}, {"sp99.9999999", "sp99.9999999"},
        {"sp12.3456789", "sp12.3456789"}, {"sp12.34567890", "sp12.3456789"}, {"sp87.50", "sp87.5"},
        {"sp50.000", "sp50"}, {"sp0.5", "sp0.5"}, {"sp10", "sp10"}, {"sp0.0010+int4", "sp0.001+int4"},
    };
    for (size_t i = 0; i < sizeof same / sizeof *same; i++) {
        if (qat_fmt_parse(same[i].in, &f)) fail_msg("'%s' rejected: %s", same[i].in, qat_errmsg());
        if (strcmp(f.name, same[i].name)) fail_msg("'%s' named '%s', expected '%s'", same[i].in, f.name, same[i].name);
        assert_int_equal(qat_fmt_parse(f.name, &g), QAT_OK);
        assert_true(g.sparsity == f.sparsity);
    }
    struct { const char *in, *says; } bad[] = {
        {"sp.5", "(write 'sp0.5')"}, {"sp50.", "(write 'sp50')"}, {"sp050", "(write 'sp50')"},
        {"sp00.5", "(write 'sp0.5')"}, {"sp12.34567891", "at most 9 significant digits, this one has 10"},
        {"sp99.9999999999", "at most 9 significant digits, this one has 12"}, {"sp1e5", "no sign or exponent"},
        {"sp1e-5", "'-' at character 5"}, {"sp1e-05", "'-' at character 5"}, {"sp5.5.5", "one decimal point"},
        {"sp0.0", "strictly between 0 and 100"}, {"sp100.0", "strictly between 0 and 100"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        qat_clear_error();
        if (qat_fmt_parse(bad[i].in, &f) != QAT_EINPUT) fail_msg("'%s' accepted as '%s'", bad[i].in, f.name);
        if (!strstr(qat_errmsg(), bad[i].says)) fail_msg("'%s': %s", bad[i].in, qat_errmsg());
        if (!strstr(qat_errmsg(), bad[i].in)) fail_msg("'%s' not named: %s", bad[i].in, qat_errmsg());
    }
    /* every spelling with 1..9 significant digits, the first at 10^1 .. 10^-9:
     * it is its own name, reads back to the same sparsity, and its neighbour
     * one unit of the last digit up is another sparsity */
    uint64_t st = 7;
    for (int it = 0; it < 20000; it++) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        int nd = 1 + (int)((st >> 33) % 9), e = 1 - (int)((st >> 45) % 11); /* power of ten of the first digit */
        /* the nd digits as an integer M with nonzero first and last digits (the
         * canonical form), written by printf with the decimals it needs */
        uint64_t r = st >> 7, M = 1 + (st >> 40) % 9;
        for (int k = 1; k < nd; k++, r /= 10) M = 10 * M + (k == nd - 1 ? 1 + (st >> 50) % 9 : r % 10);
        int dec = nd - 1 - e;
        char num[48];
        if (dec > 0) snprintf(num, sizeof num, "%.*f", dec, (double)M / pow(10.0, dec));
        else snprintf(num, sizeof num, "%llu", (unsigned long long)M * (dec ? 10ull : 1ull));
        char in[64];
        snprintf(in, sizeof in, "sp%s", num);
        if (qat_fmt_parse(in, &f)) fail_msg("'%s' rejected: %s", in, qat_errmsg());
        if (strcmp(qat_fmt_print(&f, buf, sizeof buf), in)) fail_msg("'%s' printed as '%s'", in, buf);
        assert_int_equal(qat_fmt_parse(buf, &g), QAT_OK);
        if (g.sparsity != f.sparsity) fail_msg("'%s' read back as another sparsity", in);
        if (M % 10 < 9) {
            in[strlen(in) - 1]++;
            assert_int_equal(qat_fmt_parse(in, &g), QAT_OK);
            if (g.sparsity == f.sparsity || !strcmp(g.name, f.name))
                fail_msg("'%s' and its neighbour '%s' are one", f.name, in);
        }
    }
}

/* qat_est_resolve of weight format `fmt` with `scale` and `estimator` ("" = default). */
static int resolve_with(const char *fmt, const char *scale, const char *estimator) {
    qat_fmt f;
    assert_int_equal(qat_fmt_parse(fmt, &f), QAT_OK);
    qat_compress_side side;
    memset(&side, 0, sizeof side);
    snprintf(side.format, sizeof side.format, "%s", fmt);
    snprintf(side.scale, sizeof side.scale, "%s", scale);
    snprintf(side.estimator, sizeof side.estimator, "%s", estimator);
    side.hadamard = -1;
    qat_est e;
    qat_clear_error();
    return qat_est_resolve(&f, &side, 1, &e);
}

/* A block format's scale rule is part of its name: scale lsq on int4@g32 says
 * so, as scale absmax does, instead of "estimator 'lsq' does not apply". */
static void test_block_scale_message(void **state) {
    (void)state;
    const char *scales[] = {"lsq", "absmax"};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(resolve_with("int4@g32", scales[i], ""), QAT_EINPUT);
        if (!strstr(qat_errmsg(), "its scale rule is part of its name")) fail_msg("scale %s: %s", scales[i], qat_errmsg());
    }
}

/* scale absmax with estimator lsq on an int grid: the conflict is the
 * estimator, which learns the step absmax would fix; the message said "scale
 * 'absmax' applies to int, ternary and fp4 grids only (format 'int4')", which
 * int4 is. On a format without such a grid the format is still what it names. */
static void test_absmax_with_lsq_message(void **state) {
    (void)state;
    struct { const char *fmt, *est, *says; } c[] = {
        {"int4", "lsq", "scale 'absmax' does not combine with estimator lsq, which learns its own step (format 'int4'), "
                        "expected scale rms (or lsq) with estimator lsq, or scale absmax with another estimator (ste, "
                        "clip, trust, pv)"},
        {"vq2x2", "", "scale 'absmax' applies to int, ternary and fp4 grids only (format 'vq2x2')"},
    };
    for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
        assert_int_equal(resolve_with(c[i].fmt, "absmax", c[i].est), QAT_EINPUT);
        if (!strstr(qat_errmsg(), c[i].says)) fail_msg("%s + %s: %s", c[i].fmt, c[i].est, qat_errmsg());
        if (i == 0 && strstr(qat_errmsg(), "grids only")) fail_msg("int4 blamed: %s", qat_errmsg());
    }
    /* absmax with the int4 estimators that do not learn a step stays valid */
    const char *ok[] = {"ste", "clip", "trust", "pv"};
    for (int i = 0; i < 4; i++)
        if (resolve_with("int4", "absmax", ok[i])) fail_msg("absmax + %s refused: %s", ok[i], qat_errmsg());
}

/* Little pruned: the closed form (2Φ(t)−1) − 2tφ(t) cancels (sp0.0001 gave
 * −3.8e-17). The GMSE is ∫_{|x|<t} x²φ = (2/3)t³φ(0)(1 − 3t²/10 + …) with
 * t = Φ⁻¹((1+s)/2): positive, and to 1e-9 that series for t ≪ 1. */
/* The format table (format_table.h): every kind's canonical spelling parses back
 * to itself, its default Hadamard choice is the one docs/formats.md states, and
 * the model's question "which block does auto mean here" is answered from the
 * parsed format, never from the string's characters. */
static void test_format_table(void **state) {
    (void)state;
    const char *canon[] = {"fp32", "int4", "ternary", "fp4", "vq2x2", "sp50", "sp87.5", "2:4", "sp50+int4",
                           "2:4+int2", "noise(int4)", "noise(sp50+int2)", "mxfp4", "mxfp6", "mxfp6e3m2", "mxfp8",
                           "mxfp8e5m2", "nvfp4", "nvfp4@46", "nvfp4@2d@sr", "int4@g32", "int8@g256@clip@sr",
                           "mxfp4@sr@h32"};
    for (size_t i = 0; i < sizeof canon / sizeof *canon; i++) {
        qat_fmt f;
        char buf[QAT_FMT_MAX];
        assert_int_equal(qat_fmt_parse(canon[i], &f), QAT_OK);
        if (strcmp(qat_fmt_print(&f, buf, sizeof buf), canon[i])) fail_msg("%s printed as %s", canon[i], buf);
    }
    /* auto Hadamard (configured -1): rounding grids and noise() rotate, fp32 and
     * pure sparsity do not; an explicit block always wins */
    struct { const char *fmt; int64_t cols; int want; } h[] = {
        {"int4", 48, 16}, {"int4", 640, 128}, {"fp4", 96, 32}, {"vq2x2", 64, 64}, {"sp50+int4", 64, 64},
        {"noise(int4)", 64, 64}, {"fp32", 64, 0}, {"sp50", 64, 0}, {"2:4", 64, 0}, {"int4", 33, 0},
        {"mxfp4", 64, 0}, {"nvfp4", 64, 0}, {"int4@g32", 64, 0},
    };
    qat_fmt f;
    int b;
    for (size_t i = 0; i < sizeof h / sizeof *h; i++) {
        b = -5;
        assert_int_equal(qat_fmt_parse(h[i].fmt, &f), QAT_OK);
        assert_int_equal(qat_fmt_hadamard(&f, -1, h[i].cols, &b), QAT_OK);
        if (b != h[i].want) fail_msg("%s over %lld: auto block %d, expected %d", h[i].fmt, (long long)h[i].cols, b, h[i].want);
        assert_int_equal(qat_fmt_hadamard(&f, 8, h[i].cols, &b), QAT_OK);
        assert_int_equal(b, 8);
    }
    /* @hB is the side's Hadamard block: auto takes it, an equal setting is fine, any other is refused */
    assert_int_equal(qat_fmt_parse("mxfp4@h32", &f), QAT_OK);
    assert_int_equal(qat_fmt_hadamard(&f, -1, 96, &b), QAT_OK);
    assert_int_equal(b, 32);
    assert_int_equal(qat_fmt_hadamard(&f, 32, 96, &b), QAT_OK);
    assert_int_equal(qat_fmt_hadamard(&f, 64, 96, &b), QAT_EINPUT);
    assert_non_null(strstr(qat_errmsg(), "hadamard is set to 64"));
    assert_int_equal(qat_fmt_hadamard(&f, 0, 96, &b), QAT_EINPUT);
    /* modifiers in any order, recorded in the table's order */
    assert_int_equal(qat_fmt_parse("nvfp4@sr@46", &f), QAT_OK);
    assert_string_equal(f.name, "nvfp4@46@sr");
    assert_int_equal(qat_fmt_parse("int4@sr@g32", &f), QAT_OK);
    assert_string_equal(f.name, "int4@g32@sr");
    assert_int_equal(f.val, QAT_VAL_INTG);
    assert_int_equal(f.block, 32);
    /* the frontier prices every kind's candidates: the old list and the block formats */
    int nc;
    const char *const *cand = qat_fmt_frontier_candidates(&nc);
    const char *must[] = {"int1", "ternary", "int2", "int3", "int4", "fp4", "int5", "int6", "int8", "sp50", "sp75",
                          "2:4", "sp50+int4", "2:4+int4", "vq2x2", "vq4x2", "fp32", "mxfp4", "nvfp4", "int4@g128"};
    for (size_t i = 0; i < sizeof must / sizeof *must; i++) {
        int found = 0;
        for (int k = 0; k < nc; k++) found |= !strcmp(cand[k], must[i]);
        if (!found) fail_msg("frontier candidates lack %s", must[i]);
    }
    for (int k = 0; k < nc; k++) {
        double bits;
        if (qat_fmt_bits(cand[k], &bits)) fail_msg("candidate %s: %s", cand[k], qat_errmsg());
    }
    /* every estimator has exactly one spelling, shared with the config key */
    int n = 0;
    while (qat_estimator_names[n]) n++;
    assert_int_equal(n, QAT_EST_COUNT + 1);
    assert_string_equal(qat_estimator_names[0], "");
    for (int e = 0; e < QAT_EST_COUNT; e++) assert_string_equal(qat_est_name((qat_est)e), qat_estimator_names[e + 1]);
    assert_string_equal(qat_est_name(QAT_EST_TRUST), "trust");
    assert_string_equal(qat_est_name(QAT_EST_MASKED), "masked");
}

static void test_sparse_gmse_tiny(void **state) {
    (void)state;
    const char *fmt[] = {"sp0.0001", "sp0.001", "sp0.01", "sp0.1", "sp1"};
    const double s[] = {1e-6, 1e-5, 1e-4, 1e-3, 1e-2};
    double prev = 0.0;
    for (int i = 0; i < 5; i++) {
        double g, se;
        assert_int_equal(qat_fmt_gmse(fmt[i], 0, 0, &g, &se), QAT_OK);
        double t = qat_norm_ppf(0.5 * (1.0 + s[i]));
        double want = 2.0 / 3.0 * t * t * t * qat_norm_pdf(0.0) * (1.0 - 0.3 * t * t + 3.0 / 56.0 * t * t * t * t);
        if (!(g > prev) || fabs(g / want - 1.0) > 1e-9) fail_msg("%s: gmse %.10g, series %.10g", fmt[i], g, want);
        prev = g;
    }
}

static void test_alpha_table(void **state) {
    (void)state;
    const double spec[9] = {0, 0.797885, 1.493535, 2.051068, 2.513931, 2.916094, 3.276597, 0, 3.884939};
    for (int b = 1; b <= 8; b++) {
        if (b == 7) continue;
        assert_true(fabs(QAT_INT_ALPHA[b] - spec[b]) < 5e-7);
    }
    /* the table sits at the minimum of the exact GMSE (to its precision for b <= 4;
     * flatter minima above, where QuEST's values are slightly off-optimum) */
    const double recomputed[5] = {0, 0.797885, 1.493530, 2.051068, 2.514005};
    for (int b = 1; b <= 4; b++) {
        double a = qat_grid_int_alpha_opt(b);
        assert_true(fabs(a - recomputed[b]) < 2e-6);
        assert_true(fabs(a - QAT_INT_ALPHA[b]) < 1e-4);
    }
    /* int1's α* is sqrt(2/π) and its GMSE 1 − 2/π */
    assert_true(fabs(QAT_INT_ALPHA[1] - sqrt(2.0 / M_PI)) < 1e-8);
    assert_true(fabs(qat_grid_int_gmse(1, QAT_INT_ALPHA[1]) - (1.0 - 2.0 / M_PI)) < 1e-12);
}

static void test_exact_gmse(void **state) {
    (void)state;
    struct { const char *fmt; double want, ulp; } t[] = {
        {"int1", 0.363380, 1e-6},   {"int2", 0.118846, 1e-6}, {"int3", 0.037440, 1e-6},
        {"int4", 0.011543, 1e-6},   {"int5", 3.495e-3, 1e-6}, {"int6", 1.040e-3, 1e-6},
        {"int8", 8.78e-5, 1e-7},    {"ternary", 0.190174, 1e-6}, {"fp4", 0.012685, 1e-6},
        {"sp25", 0.008347, 1e-6},   {"sp50", 0.071326, 1e-6}, {"sp75", 0.27639, 1e-5},
        {"sp90", 0.56071, 1e-5},    {"fp32", 0.0, 0.0},       {"noise(int4)", 0.011543, 1e-6},
    };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        double g, se;
        assert_int_equal(qat_fmt_gmse(t[i].fmt, 0, 0, &g, &se), QAT_OK);
        assert_true(se == 0.0);
        assert_published(t[i].fmt, g, t[i].want, t[i].ulp);
    }
    /* more digits from the notebook (quest-unified.md §1.1) */
    assert_published("int2 notebook", qat_grid_int_gmse(2, QAT_INT_ALPHA[2]), 0.1188460504, 0);
    assert_published("int4 notebook", qat_grid_int_gmse(4, QAT_INT_ALPHA[4]), 0.0115428845, 0);
    assert_published("fp4 notebook", qat_grid_fp4_gmse(QAT_FP4_SCALE), 0.0126849041, 0);
    assert_published("int8 notebook", qat_grid_int_gmse(8, QAT_INT_ALPHA[8]), 8.782118e-05, 0);
}

/* Lloyd–Max levels by exact-integral Lloyd iteration (centroid of each cell). */
static double lloyd_max_gmse(int n) {
    double c[16];
    for (int i = 0; i < n; i++) c[i] = -2.0 + 4.0 * (i + 0.5) / n;
    for (int it = 0; it < 2000; it++) {
        for (int i = 0; i < n; i++) {
            double t0 = i == 0 ? -INFINITY : 0.5 * (c[i - 1] + c[i]);
            double t1 = i == n - 1 ? INFINITY : 0.5 * (c[i] + c[i + 1]);
            double P = qat_norm_cdf(t1) - qat_norm_cdf(t0);
            double M1 = (isinf(t0) ? 0 : qat_norm_pdf(t0)) - (isinf(t1) ? 0 : qat_norm_pdf(t1));
            c[i] = M1 / P;
        }
    }
    return qat_grid_gmse(c, n);
}

static void test_lloyd_max(void **state) {
    (void)state;
    assert_published("Lloyd-Max 2-bit", lloyd_max_gmse(4), 0.11748, 1e-5);
    assert_published("Lloyd-Max 4-bit", lloyd_max_gmse(16), 0.009501, 1e-6);
    /* and the norm helpers invert each other */
    for (double p = 0.01; p < 1.0; p += 0.07) assert_true(fabs(qat_norm_cdf(qat_norm_ppf(p)) - p) < 1e-14);
}

static void check_mc(const char *fmt, double want) {
    double g, se;
    assert_int_equal(qat_fmt_gmse(fmt, 0, 0, &g, &se), QAT_OK);
    print_message("      %-10s GMSE %.5f ± %.5f (published %.4f)\n", fmt, g, se, want);
    assert_true(se > 0.0);
    if (fabs(g - want) > 3.0 * se || fabs(g - want) > 0.01 * want)
        fail_msg("%s: MC GMSE %.5f ± %.5f vs published %.4f", fmt, g, se, want);
}

/* A plain N:M format's GMSE: exact (se 0), as qat_fmt_gmse reports it. */
static double nm_exact(const char *fmt) {
    double g, se;
    assert_int_equal(qat_fmt_gmse(fmt, 0, 0, &g, &se), QAT_OK);
    if (se != 0.0) fail_msg("%s: GMSE %.6f reported with a Monte-Carlo error %.2g, expected the closed form", fmt, g, se);
    return g;
}

/* N:M's exact GMSE (compress/grid.c, qat_nm_gmse_exact: (1/M)·Σ_{k<=M−N} E[X_(k)²]
 * over the order statistics of M half-normals) against values computed apart from
 * qat with mpmath 1.3 at 30 digits (tanh-sinh quadrature): for M <= 32 the sum of
 * the M − N integrals of x²·M!/((k−1)!(M−k)!)·F^(k−1)·(1−F)^(M−k)·f over [0, ∞),
 * F(x) = erf(x/√2), f(x) = √(2/π)·e^(−x²/2), each on its own; for M = 256 the
 * equivalent ∫ x²·f·P(Bin(M−1, F) <= M−N−1) with exact integer binomials. And the
 * closed forms:
 *  - 1:2 = E[min(|a|,|b|)²]/2 = (1 − 2/π)/2: in polar form (a, b) = r(cos θ, sin θ),
 *    E r² = 2 and the mean over θ of min(cos²θ, sin²θ) is (4/π)∫₀^{π/4} sin²θ dθ
 *    = 1/2 − 1/π, so E[min²] = 1 − 2/π;
 *  - 1:3 = 2/3 − 2/(√3π), 2:4 = 1/2 − 2/(√3π), 1:4 = 3/4 − 2/(√3π): found by PSLQ
 *    (mpmath.identify over 1/π, √3/π) from the 40-digit integrals, which they
 *    equal to 45 digits (1:4 − 2:4 = 1/4: E[X_(3)²] = 1 for M = 4).
 * The docs/reference-numbers.md table (six digits) to half its last digit. */
static void test_nm_gmse_exact(void **state) {
    (void)state;
    const double c = 2.0 / (sqrt(3.0) * M_PI);
    struct { const char *fmt; double want; } t[] = {
        {"1:2", (1.0 - 2.0 / M_PI) / 2.0}, {"1:3", 2.0 / 3.0 - c}, {"2:4", 0.5 - c}, {"1:4", 0.75 - c},
        {"2:4", 0.132447403052139},        {"4:8", 0.103306718050958}, {"1:4", 0.382447403052139},
        {"2:3", 0.0642661579136134},       {"3:4", 0.0301755353443507}, {"8:16", 0.0876333816221609},
        {"16:32", 0.0795514223077228},     {"1:256", 0.963266473651579}, {"10:256", 0.768228192136082},
        {"64:256", 0.278433117995332},     {"128:256", 0.0723613288817512}, {"200:256", 0.00580773766101005},
        {"255:256", 1.85096245810238e-07},
    };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        double g = nm_exact(t[i].fmt);
        print_message("      %-8s GMSE %.15g (independent %.15g)\n", t[i].fmt, g, t[i].want);
        /* 1e-12 absolute; 255:256 (1.9e-7) also to 1e-9 relative */
        if (fabs(g - t[i].want) > fmin(1e-12, 1e-9 * t[i].want + 1e-16))
            fail_msg("%s: exact GMSE %.15g, independent %.15g", t[i].fmt, g, t[i].want);
    }
    assert_published("2:4 table", nm_exact("2:4"), 0.132447, 1e-6);
    assert_published("4:8 table", nm_exact("4:8"), 0.103307, 1e-6);
    assert_published("1:4 table", nm_exact("1:4"), 0.382447, 1e-6);
    /* noise(N:M) is N:M's GMSE; a composite keeps its Monte Carlo */
    assert_true(nm_exact("noise(2:4)") == nm_exact("2:4"));
    double g, se;
    assert_int_equal(qat_fmt_gmse("2:4+int4", 0, 0, &g, &se), QAT_OK);
    assert_true(se > 0.0);
    /* The triangle rule of order statistics, (n−r)μ_{r:n} + rμ_{r+1:n} = nμ_{r:n−1}
     * for any parent (David & Nagaraja, Order Statistics, §3.4), summed over the
     * zeroed ones: (N−1)·G(N:M) + (M−N)·G(N−1:M) = (M−1)·G(N−1:M−1), 2 <= N < M.
     * It ties each M to M − 1 up to M = 256, the parser's largest. */
    const int ms[] = {3, 4, 5, 8, 17, 64, 256};
    for (size_t i = 0; i < sizeof ms / sizeof *ms; i++) {
        int m = ms[i];
        for (int n = 2; n < m; n++) {
            if (m == 256 && n != 2 && n != 3 && n != 128 && n != 255) continue;
            char a[32], b[32], d[32];
            snprintf(a, sizeof a, "%d:%d", n, m);
            snprintf(b, sizeof b, "%d:%d", n - 1, m);
            snprintf(d, sizeof d, "%d:%d", n - 1, m - 1);
            double lhs = (n - 1) * nm_exact(a) + (m - n) * nm_exact(b), rhs = (m - 1) * nm_exact(d);
            if (fabs(lhs - rhs) > 1e-12 * m) fail_msg("triangle rule at %s: %.15g vs %.15g", a, lhs, rhs);
        }
    }
    /* Fewer kept, more error; and above unstructured sparsity at the same fraction
     * zeroed (a global threshold is the best way to zero a fraction s in
     * expectation), which N:M approaches as M grows: 2:4 > 4:8 > … > 128:256 > sp50. */
    double prev = 1.0;
    for (int n = 1; n < 16; n++) {
        char a[32];
        snprintf(a, sizeof a, "%d:16", n);
        double gn = nm_exact(a), sp = qat_sparse_gmse_exact(1.0 - n / 16.0);
        if (!(gn < prev && gn > sp)) fail_msg("%s: %.10g, previous %.10g, unstructured %.10g", a, gn, prev, sp);
        prev = gn;
    }
    prev = 1.0;
    for (int m = 4; m <= 256; m *= 2) {
        char a[32];
        snprintf(a, sizeof a, "%d:%d", m / 2, m);
        double gm = nm_exact(a);
        assert_true(gm < prev && gm > qat_sparse_gmse_exact(0.5));
        prev = gm;
    }
    assert_true(prev - qat_sparse_gmse_exact(0.5) < 1.1e-3); /* 128:256 0.072361, sp50 0.071326 */
}

/* The training projection's Monte Carlo (top N of each M along rows of 128, 256
 * for M = 256; the default 2^21 samples and seed) agrees with the exact GMSE
 * within 3 standard errors. Its s.e. is ~0.2 % of the value, so 3 s.e. is tighter
 * than the 1 % the old Monte-Carlo references were also held to. */
static void check_nm_mc(const char *fmt) {
    qat_fmt f;
    assert_int_equal(qat_fmt_parse(fmt, &f), QAT_OK);
    double ex, g, se;
    assert_true(qat_fmt_gmse_exact(&f, &ex));
    qat_proj P;
    qat_proj_setup(&P, &f);
    qat_proj_gmse_mc(&P, QAT_GMSE_DEFAULT_SAMPLES, QAT_GMSE_DEFAULT_SEED, &g, &se);
    print_message("      %-8s MC %.6g ± %.2g, exact %.6g (%+.2f s.e.)\n", fmt, g, se, ex, (g - ex) / se);
    assert_true(se > 0.0);
    if (fabs(g - ex) > 3.0 * se) fail_msg("%s: MC GMSE %.6g ± %.2g vs exact %.6g", fmt, g, se, ex);
}

static void test_mc_gmse_nm(void **state) {
    (void)state;
    const char *fmts[] = {"2:4", "4:8", "1:4", "1:2", "16:32", "1:256", "255:256"};
    for (size_t i = 0; i < sizeof fmts / sizeof *fmts; i++) check_nm_mc(fmts[i]);
}

static void test_mc_gmse_composite(void **state) {
    (void)state;
    check_mc("2:4+int2", 0.2016);
    check_mc("2:4+int3", 0.1535);
    check_mc("2:4+int4", 0.1387);
    check_mc("2:4+int8", 0.1323);
    /* survivors are the tails: the best α in survivor-RMS units is below the dense α* */
    qat_fmt f;
    assert_int_equal(qat_fmt_parse("2:4+int2", &f), QAT_OK);
    double a = qat_fmt_value_alpha(&f);
    print_message("      2:4+int2 survivors' alpha %.3f (estimators.md: 1.30)\n", a);
    assert_true(a > 1.1 && a < 1.45);
}

/* The published VQ numbers are "≈" with ~1 % codebook (k-means local optimum)
 * error of their own, so only the 1 % criterion is meaningful against them; the
 * 3-standard-error criterion is checked between two independent MC seeds. */
static void check_vq(const char *fmt, double want) {
    double g, se, g2, se2;
    assert_int_equal(qat_fmt_gmse(fmt, 0, 0, &g, &se), QAT_OK);
    assert_int_equal(qat_fmt_gmse(fmt, 0, 12345, &g2, &se2), QAT_OK);
    print_message("      %-10s GMSE %.5f ± %.5f (published ≈ %.4f)\n", fmt, g, se, want);
    if (fabs(g - want) > 0.01 * want) fail_msg("%s: %.5f vs published %.4f", fmt, g, want);
    assert_true(fabs(g - g2) < 3.0 * sqrt(se * se + se2 * se2));
}

static void test_mc_gmse_vq(void **state) {
    (void)state;
    check_vq("vq2x2", 0.1076);
    check_vq("vq4x2", 0.0979);
    /* 1-d k-means is Lloyd–Max */
    double g, se;
    assert_int_equal(qat_fmt_gmse("vq1x2", 0, 0, &g, &se), QAT_OK);
    assert_true(fabs(g - 0.11748) < 3.0 * se + 1e-4);
    /* below the rate–distortion bound is impossible */
    assert_true(g > 0.0625);
}

/* The training projection agrees with the closed forms (infinite-row scale). */
static void test_projection_matches_exact(void **state) {
    (void)state;
    const char *fmts[] = {"int2", "int4", "ternary", "fp4", "sp50"};
    for (size_t i = 0; i < sizeof fmts / sizeof *fmts; i++) {
        qat_fmt f;
        assert_int_equal(qat_fmt_parse(fmts[i], &f), QAT_OK);
        qat_proj P;
        qat_proj_setup(&P, &f);
        P.fixed_rms = 1.0;
        double g, se, ex;
        qat_proj_gmse_mc(&P, 1 << 20, 99, &g, &se);
        assert_true(qat_fmt_gmse_exact(&f, &ex));
        if (fabs(g - ex) > 3.5 * se + 1e-3 * ex) fail_msg("%s: projection %.6f ± %.6f vs exact %.6f", fmts[i], g, se, ex);
    }
}

static void test_capacity_rho(void **state) {
    (void)state;
    struct { const char *fmt; double rho; } t[] = {
        {"int1", 0.180}, {"int2", 0.445}, {"int3", 0.670}, {"int4", 0.820}, {"int8", 0.989}, {"fp4", 0.810},
    };
    qat_cap_params p[QAT_CAP_NTYPES] = {QAT_CAP_PUBLISHED, QAT_CAP_PUBLISHED, QAT_CAP_PUBLISHED};
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        double r;
        assert_int_equal(qat_fmt_rho(t[i].fmt, p, &r), QAT_OK);
        if (fabs(r - t[i].rho) > 1e-3) fail_msg("%s: rho %.4f vs %.3f", t[i].fmt, r, t[i].rho);
    }
    double r;
    assert_int_equal(qat_fmt_rho("fp32", p, &r), QAT_OK);
    assert_true(r == 1.0);
    assert_true(qat_cap_rho(QAT_CAP_PUBLISHED, 0.0) == 1.0);
    assert_true(qat_cap_rho(QAT_CAP_PUBLISHED, 1.0) == 0.0);
    /* composite = product of its stages */
    double r_sp, r_q, r_c;
    assert_int_equal(qat_fmt_rho("sp50", p, &r_sp), QAT_OK);
    assert_int_equal(qat_fmt_rho("int4", p, &r_q), QAT_OK);
    assert_int_equal(qat_fmt_rho("sp50+int4", p, &r_c), QAT_OK);
    assert_true(fabs(r_c - r_sp * r_q) < 1e-12);
    assert_string_equal(qat_cap_type_name(QAT_CAP_SPARSE), "sparse");
}

static void test_capacity_terms_and_bits(void **state) {
    (void)state;
    qat_cap_term t[4];
    int n;
    assert_int_equal(qat_fmt_capacity_terms("fp32", t, 4, &n), QAT_OK);
    assert_int_equal(n, 0);
    assert_int_equal(qat_fmt_capacity_terms("sp50+int4", t, 4, &n), QAT_OK);
    assert_int_equal(n, 2);
    assert_int_equal(t[0].type, QAT_CAP_SPARSE);
    assert_true(fabs(t[0].gmse - 0.071326) < 1e-6);
    assert_int_equal(t[1].type, QAT_CAP_QUANT);
    assert_true(fabs(t[1].gmse - 0.011543) < 1e-6);
    /* a composite's N:M stage is N:M's closed form, the very number of plain 2:4:
     * a fit of 2:4 and 2:4+int4 runs sees one sparse GMSE, not two */
    double g24, se24;
    assert_int_equal(qat_fmt_gmse("2:4", 0, 0, &g24, &se24), QAT_OK);
    assert_int_equal(qat_fmt_capacity_terms("2:4+int4", t, 4, &n), QAT_OK);
    assert_int_equal(n, 2);
    assert_int_equal(t[0].type, QAT_CAP_SPARSE);
    assert_true(t[0].gmse == g24 && se24 == 0.0);
    assert_int_equal(qat_fmt_capacity_terms("2:4", t, 4, &n), QAT_OK);
    assert_true(n == 1 && t[0].gmse == g24);
    assert_int_equal(qat_fmt_capacity_terms("noise(int4)", t, 4, &n), QAT_OK);
    assert_int_equal(n, 1);
    assert_int_equal(t[0].type, QAT_CAP_QUANT);
    assert_int_equal(qat_fmt_capacity_terms("nope", t, 4, &n), QAT_EINPUT);

    struct { const char *fmt; double bits; } b[] = {
        {"int4", 4.0}, {"fp4", 4.0}, {"fp32", 16.0}, {"sp50", 9.0}, {"sp75", 5.0}, {"sp50+int4", 3.0},
        {"2:4", 8.0 + log2(6.0) / 4.0}, {"2:4+int4", 2.0 + log2(6.0) / 4.0}, {"vq4x2", 2.0},
        {"ternary", log2(3.0)}, {"noise(int2)", 2.0},
    };
    for (size_t i = 0; i < sizeof b / sizeof *b; i++) {
        double bits;
        assert_int_equal(qat_fmt_bits(b[i].fmt, &bits), QAT_OK);
        if (fabs(bits - b[i].bits) > 1e-12) fail_msg("%s: %.6f bits, expected %.6f", b[i].fmt, bits, b[i].bits);
    }
}

/* Project one docs/reference-numbers.md vector (no Hadamard, RMS over the vector) with the trust mask. */
static void project_vector(const char *fmt, qat_mask_kind mk, double t, float *x, int n, uint8_t *mask) {
    qat_fmt f;
    assert_int_equal(qat_fmt_parse(fmt, &f), QAT_OK);
    qat_proj P;
    qat_proj_setup(&P, &f);
    P.mask = mk;
    P.mask_t = t;
    qat_proj_seg seg = {0};
    qat_proj_row(&P, x, n, &seg, mask);
}

static void test_quest_vectors(void **state) {
    (void)state;
    {
        float x[4] = {0.1f, -2.0f, 0.5f, 6.0f};
        const double q[4] = {1.579432, -1.579432, 1.579432, 4.738296};
        const uint8_t m[4] = {1, 1, 1, 1};
        uint8_t mask[4];
        project_vector("int2", QAT_MASK_TRUST, 0, x, 4, mask);
        for (int i = 0; i < 4; i++) {
            assert_true(fabs(x[i] - q[i]) < 1e-6);
            assert_int_equal(mask[i], m[i]);
        }
    }
    {
        float x[8] = {0.1f, -2.0f, 0.5f, 6.0f, -0.3f, 1.2f, 0.0f, -4.5f};
        const double q[8] = {0.466716, -2.333581, 0.466716, 6.067311, -0.466716, 1.400149, -0.466716, -4.200446};
        const uint8_t m[8] = {1, 1, 1, 1, 1, 1, 0, 1};
        uint8_t mask[8];
        project_vector("int4", QAT_MASK_TRUST, 0, x, 8, mask);
        for (int i = 0; i < 8; i++) {
            if (fabs(x[i] - q[i]) > 1e-6) fail_msg("int4 q[%d] = %.7f, expected %.6f", i, x[i], q[i]);
            if (mask[i] != m[i]) fail_msg("int4 mask[%d] = %d, expected %d", i, mask[i], m[i]);
        }
    }
    {
        float x[4] = {0.3f, -0.2f, 2.5f, -0.1f};
        float x2[4];
        memcpy(x2, x, sizeof x);
        const uint8_t m[4] = {1, 1, 0, 1};
        uint8_t mask[4], mask2[4];
        project_vector("int1", QAT_MASK_TRUST, 0, x, 4, mask);
        for (int i = 0; i < 4; i++) {
            assert_true(fabs(fabs(x[i]) - 1.008464) < 1e-6);
            assert_true((x[i] > 0) == (i % 2 == 0));
            assert_int_equal(mask[i], m[i]);
        }
        /* QuEST's 1-bit clip variant (c = 1.3) gives the same mask */
        project_vector("int1", QAT_MASK_CLIP, 1.3, x2, 4, mask2);
        for (int i = 0; i < 4; i++) assert_int_equal(mask2[i], m[i]);
    }
}

/* Project one row with a fixed unit RMS and value scale `alpha` (no mask). */
static void project_scaled(const char *fmt, double alpha, float *x, int n) {
    qat_fmt f;
    assert_int_equal(qat_fmt_parse(fmt, &f), QAT_OK);
    qat_proj P;
    qat_proj_setup(&P, &f);
    P.alpha = alpha;
    P.fixed_rms = 1.0;
    uint8_t mask[512];
    qat_proj_seg seg = {0};
    assert_true(n <= 512);
    qat_proj_row(&P, x, n, &seg, mask);
}

/* A NaN entering a scalar grid leaves it NaN on every grid: rounding it to a level
 * (the comparisons of the ternary and fp4 rules are all false for a NaN, which once
 * gave 0) would hide a diverged weight from the loss and let training go on. */
static void test_nan_stays_nan(void **state) {
    (void)state;
    const char *fmts[] = {"int2", "int4", "ternary", "fp4"};
    for (size_t k = 0; k < sizeof fmts / sizeof *fmts; k++) {
        float x[4] = {0.5f, NAN, -0.25f, 1.0f};
        project_scaled(fmts[k], 1.0, x, 4);
        if (!isnan(x[1])) fail_msg("%s: a NaN went to %g", fmts[k], x[1]);
        assert_true(isfinite(x[0]) && isfinite(x[2]) && isfinite(x[3]));
    }
}

/* Every scalar grid sends an exact midpoint to the level with the even code
 * (compress/project.c); off the midpoint, the nearest level wins. */
static void test_ties_to_even_code(void **state) {
    (void)state;
    /* fp4 at unit scale (k = 1): every midpoint of E2M1, both signs, and its neighbours. */
    float x[3 * 2 * 7 + 2];
    double want[3 * 2 * 7 + 2];
    int n = 0;
    for (int i = 0; i < 7; i++) {
        double lo = QAT_FP4_MAGS[i], hi = QAT_FP4_MAGS[i + 1], mid = 0.5 * (lo + hi);
        double tie = (i % 2 == 0) ? lo : hi; /* magnitude code i or i + 1: the even one */
        for (int sg = -1; sg <= 1; sg += 2) {
            x[n] = (float)(sg * mid); want[n++] = sg * tie;
            x[n] = nextafterf((float)(sg * mid), 0.0f); want[n++] = sg * lo;
            x[n] = nextafterf((float)(sg * mid), (float)(sg * 10.0)); want[n++] = sg * hi;
        }
    }
    x[n] = 7.0f; want[n++] = 6.0;   /* saturates */
    x[n] = -0.0f; want[n++] = 0.0;
    project_scaled("fp4", 1.0, x, n);
    for (int j = 0; j < n; j++)
        if (x[j] != (float)want[j]) fail_msg("fp4: element %d went to %g, expected %g", j, x[j], want[j]);
    /* The published examples, spelled out. */
    float pub[7] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f};
    const float pub_want[7] = {0.0f, 1.0f, 1.0f, 2.0f, 2.0f, 4.0f, 4.0f};
    project_scaled("fp4", 1.0, pub, 7);
    for (int j = 0; j < 7; j++) assert_true(pub[j] == pub_want[j]);

    /* ternary at a = 1: ±0.5 goes to code 0. */
    float t[4] = {0.5f, -0.5f, nextafterf(0.5f, 1.0f), -nextafterf(0.5f, 1.0f)};
    project_scaled("ternary", 1.0, t, 4);
    assert_true(t[0] == 0.0f && t[1] == 0.0f && t[2] == 1.0f && t[3] == -1.0f);

    /* int-b with step 1 (clip s = (2^b − 1)/2, levels m − ½): the midpoints are the
     * integers k, between codes m = k and k + 1; the even one wins. */
    for (int b = 1; b <= 8; b++) {
        int L = 1 << b;
        double s = 0.5 * (L - 1), alpha = s - 1e-8; /* project.c adds QuEST's 1e-8 */
        assert_true(alpha + 1e-8 == s);
        float v[256];
        int m = 0;
        for (int k = -(L / 2 - 1); k <= L / 2 - 1; k++) v[m++] = (float)k;
        project_scaled(b == 1 ? "int1" : b == 2 ? "int2" : b == 3 ? "int3" : b == 4 ? "int4"
                       : b == 5 ? "int5" : b == 6 ? "int6" : b == 7 ? "int7" : "int8", alpha, v, m);
        for (int j = 0; j < m; j++) {
            int k = j - (L / 2 - 1), code = (k % 2 == 0) ? k : k + 1;
            if (v[j] != (float)(code - 0.5))
                fail_msg("int%d: %d went to %g, expected %g", b, k, v[j], code - 0.5);
        }
    }
}

/* Fill a row of n with test content `kind`: 0 Gaussian, 1 Gaussian with every
 * other element 0 (each 0 is a rounding tie), 2 exact grid midpoints and their
 * float neighbours at step 1 (with fixed_rms and alpha below), 3 Gaussian with a
 * huge outlier, an infinity and a NaN, 4 a 1e-30-scaled row, 5 all zeros, 6 the
 * clipped inputs nearest to an error of exactly 1 (the trust threshold at T = 1 and
 * unit RMS) and their float neighbours. */
static void fill_row(float *v, int n, int kind, double scale, uint64_t key, int L) {
    for (int i = 0; i < n; i++) v[i] = (float)(scale * qat_normal_at(key, (uint64_t)i));
    if (kind == 1)
        for (int i = 0; i < n; i += 2) v[i] = 0.0f;
    if (kind == 2)
        for (int i = 0; i < n; i++) {
            float k = (float)((i / 3) % (L - 1) - (L / 2 - 1)); /* a midpoint of the step-1 grid */
            v[i] = i % 3 == 0 ? k : nextafterf(k, i % 3 == 1 ? -100.0f : 100.0f);
        }
    if (kind == 6) /* clip s = 0.9 + 1e-8 (alpha 0.9 at unit RMS): the outermost level is s */
        for (int i = 0; i < n; i++) {
            float edge = (float)(0.9 + 1e-8 + 1.0);
            for (int u = 0; u < (i / 2) % 5; u++) edge = nextafterf(edge, (i / 2) % 5 < 3 ? 100.0f : -100.0f);
            v[i] = i % 2 ? -edge : edge;
        }
    if (kind == 3 && n > 5) {
        v[1] = 1e30f;
        v[3] = INFINITY;
        v[5] = NAN;
    }
    if (kind == 4)
        for (int i = 0; i < n; i++) v[i] *= 1e-30f;
    if (kind == 5)
        for (int i = 0; i < n; i++) v[i] = i % 2 ? -0.0f : 0.0f;
}

/* A unit holding a NaN has a NaN scale: every output is NaN, and the fast path
 * leaves the whole unit to the double one, so even the NaNs' sign bits are the
 * reference's (its fallback chunks, compiled at the vector width, could flip a
 * −NaN's sign: found by review on a Zen 3). */
static void test_int_fast_path_nan_unit(void **state) {
    (void)state;
    static float a[40], b[40];
    static uint8_t ma[40], mb[40];
    const uint32_t neg_nan = 0xffc00000u, pos_nan = 0x7fc00000u;
    for (int where = 0; where < 40; where += 13)
        for (int sign = 0; sign < 2; sign++) {
            for (int i = 0; i < 40; i++) a[i] = (float)(i % 7) - 3.0f + 0.1f * (float)i;
            memcpy(&a[where], sign ? &neg_nan : &pos_nan, 4);
            a[(where + 5) % 40] = -a[(where + 5) % 40];
            memcpy(&a[(where + 9) % 40], &neg_nan, 4);
            memcpy(b, a, sizeof a);
            qat_fmt f;
            assert_int_equal(qat_fmt_parse("int4", &f), QAT_OK);
            qat_proj P;
            qat_proj_setup(&P, &f);
            P.mask = QAT_MASK_TRUST;
            qat_proj_seg seg = {0};
            P.reference = 1;
            qat_proj_row(&P, a, 40, &seg, ma);
            P.reference = 0;
            qat_proj_row(&P, b, 40, &seg, mb);
            assert_memory_equal(a, b, sizeof a);
            assert_memory_equal(ma, mb, sizeof ma);
            for (int i = 0; i < 40; i++) assert_true(isnan(a[i]));
        }
}

/* The single-precision path of the int grid (b <= 4, dense, trust or STE) writes the
 * same bits, values and masks, as the double-precision reference path, ties and
 * near-ties included (the cases that send a chunk to the reference). */
static void test_int_fast_path_matches_reference(void **state) {
    (void)state;
    const char *fmts[] = {"int1", "int2", "int3", "int4"};
    const int lens[] = {16, 37, 256, 704};
    const qat_mask_kind masks[] = {QAT_MASK_TRUST, QAT_MASK_TRUST, QAT_MASK_NONE};
    const double mask_t[] = {0.0, 1.0, 0.0};
    static float a[704], b[704];
    static uint8_t ma[704], mb[704];
    int rows = 0;
    for (int fi = 0; fi < 4; fi++)
        for (int li = 0; li < 4; li++)
            for (int mi = 0; mi < 3; mi++)
                for (int group = 0; group <= 32; group += 32)
                    for (int kind = 0; kind <= 6; kind++)
                        for (int rep = 0; rep < 3; rep++) {
                            int n = lens[li], L = 2 << fi;
                            if (group && n % group) continue;
                            qat_fmt f;
                            assert_int_equal(qat_fmt_parse(fmts[fi], &f), QAT_OK);
                            qat_proj P;
                            qat_proj_setup(&P, &f);
                            P.mask = masks[mi];
                            P.mask_t = mask_t[mi];
                            P.group = group;
                            if (kind == 2 || kind == 6) { /* unit RMS; step 1 (clip s = (L − 1)/2) or s = 0.9 */
                                P.fixed_rms = 1.0;
                                P.alpha = kind == 2 ? 0.5 * (L - 1) - 1e-8 : 0.9;
                            }
                            double scale = rep == 0 ? 1.0 : rep == 1 ? 1e-3 : 1e3;
                            fill_row(a, n, kind, scale, (uint64_t)(1000 * rows + 7), L);
                            memcpy(b, a, sizeof(float) * (size_t)n);
                            memset(ma, 7, sizeof ma);
                            memset(mb, 7, sizeof mb);
                            qat_proj_seg seg = {0};
                            P.reference = 1;
                            qat_proj_row(&P, a, n, &seg, ma);
                            P.reference = 0;
                            qat_proj_row(&P, b, n, &seg, mb);
                            for (int i = 0; i < n; i++) {
                                if (memcmp(&a[i], &b[i], sizeof(float)) != 0)
                                    fail_msg("%s mask %d T %g group %d kind %d scale %g n %d: element %d is %a, reference %a",
                                             fmts[fi], masks[mi], mask_t[mi], group, kind, scale, n, i, b[i], a[i]);
                                if (masks[mi] != QAT_MASK_NONE && ma[i] != mb[i])
                                    fail_msg("%s T %g group %d kind %d scale %g n %d: mask[%d] %d, reference %d", fmts[fi],
                                             mask_t[mi], group, kind, scale, n, i, mb[i], ma[i]);
                            }
                            rows++;
                        }
    assert_true(rows > 1000);
}

static int cmp_desc_abs(const void *a, const void *b) {
    float x = fabsf(*(const float *)a), y = fabsf(*(const float *)b);
    return (x < y) - (x > y);
}

/* The k-th largest |x| against a sort, on both paths (the bitwise search for rows up to 1024,
 * radix histograms above), with ties, zeros and signs, for every k of the small sizes. */
static void test_sparse_kth_abs_matches_sort(void **state) {
    (void)state;
    const int64_t sizes[] = {1, 2, 3, 7, 64, 224, 1023, 1024, 1025, 4099};
    uint64_t s = 12345;
    for (size_t c = 0; c < sizeof sizes / sizeof *sizes; c++) {
        int64_t n = sizes[c];
        float *x = malloc((size_t)n * sizeof *x), *sorted = malloc((size_t)n * sizeof *x);
        for (int64_t i = 0; i < n; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            int r = (int)(s >> 40) % 41 - 20; /* few distinct values: many ties, some zeros */
            x[i] = (i % 5 == 0) ? (float)r : (float)r * 0.37f + (float)(s >> 33 & 0xFF) * 1e-4f;
        }
        memcpy(sorted, x, (size_t)n * sizeof *x);
        qsort(sorted, (size_t)n, sizeof *sorted, cmp_desc_abs);
        int64_t step = n > 300 ? n / 37 : 1;
        for (int64_t k = 1; k <= n; k += step) {
            for (int par = 0; par <= 1; par++) {
                float got = qat_sparse_kth_abs(x, n, k, par);
                if (got != fabsf(sorted[k - 1]))
                    fail_msg("n=%lld k=%lld parallel=%d: got %g, sort says %g", (long long)n, (long long)k, par,
                             (double)got, (double)fabsf(sorted[k - 1]));
            }
        }
        assert_true(isinf(qat_sparse_kth_abs(x, n, 0, 0)));
        free(x);
        free(sorted);
    }
    /* rows of one repeated magnitude (signs and zeros aside), where the search's
     * shortcuts (shared high bits, exactly k above the prefix) never or always apply */
    float same[64], distinct[64];
    for (int i = 0; i < 64; i++) same[i] = (i % 3 ? 0.75f : -0.75f), distinct[i] = (float)(i * 7 % 64) - 31.5f;
    for (int64_t k = 1; k <= 64; k++) {
        assert_true(qat_sparse_kth_abs(same, 64, k, 0) == 0.75f);
        /* |distinct| is 0.5, 0.5, 1.5, 1.5, ..., 31.5, 31.5: the k-th largest is 32.5 − ⌈k/2⌉ */
        assert_true(qat_sparse_kth_abs(distinct, 64, k, 0) == 32.5f - (float)((k + 1) / 2));
    }
    same[5] = 0.0f; /* one zero: the 64th largest is 0 */
    assert_true(qat_sparse_kth_abs(same, 64, 64, 0) == 0.0f && qat_sparse_kth_abs(same, 64, 63, 0) == 0.75f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid_and_invalid),
        cmocka_unit_test(test_format_table),
        cmocka_unit_test(test_canonical_names),
        cmocka_unit_test(test_sparsity_spelling),
        cmocka_unit_test(test_block_scale_message),
        cmocka_unit_test(test_absmax_with_lsq_message),
        cmocka_unit_test(test_alpha_table),
        cmocka_unit_test(test_exact_gmse),
        cmocka_unit_test(test_lloyd_max),
        cmocka_unit_test(test_nm_gmse_exact),
        cmocka_unit_test(test_mc_gmse_nm),
        cmocka_unit_test(test_mc_gmse_composite),
        cmocka_unit_test(test_mc_gmse_vq),
        cmocka_unit_test(test_projection_matches_exact),
        cmocka_unit_test(test_capacity_rho),
        cmocka_unit_test(test_capacity_terms_and_bits),
        cmocka_unit_test(test_quest_vectors),
        cmocka_unit_test(test_ties_to_even_code),
        cmocka_unit_test(test_int_fast_path_matches_reference),
        cmocka_unit_test(test_int_fast_path_nan_unit),
        cmocka_unit_test(test_nan_stays_nan),
        cmocka_unit_test(test_sparse_kth_abs_matches_sort),
        cmocka_unit_test(test_sparse_gmse_tiny),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

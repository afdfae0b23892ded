/*
 * tests/test_compress_capacity_cli.c — `qat capacity` through its stand-alone
 * driver: the docs/cli.md JSON keys and values, exit code 2 with the valid formats
 * for a bad one (a stray space named as such), --samples outside what the Monte
 * Carlo can honour refused, and --fit constants read from HDF5 root attributes of a
 * fit file only (a run log, or a constant that ran to a bound, is exit 2); the block
 * formats' bits, tensor bits, published NVFP4 anchors and the grammar in --help;
 * intB@gG's GMSE at every group size against a Monte Carlo of its own.
 */
#include <hdf5.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "compress/capacity.h"
#include "scaling/fit_h5.h"
#include "core/error.h"

/* Run the driver with `args`; stdout (and stderr when merge) into out; returns the exit code. */
static int run(const char *args, char *out, size_t n, int merge) {
    const char *exe = getenv("QAT_CAPACITY_EXE");
    if (!exe) exe = "scaling/qat-capacity";
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' %s%s", exe, args, merge ? " 2>&1" : " 2>/dev/null");
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t got = fread(out, 1, n - 1, p);
    out[got] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static double json_number(const char *s, const char *fmt, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"format\": \"%s\"", fmt);
    const char *p = strstr(s, pat);
    if (!p) fail_msg("no entry for %s in %s", fmt, s);
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    p = strstr(p, pat);
    assert_non_null(p);
    return strtod(p + strlen(pat), NULL);
}

static void test_json(void **state) {
    (void)state;
    char out[4096];
    assert_int_equal(run("int4 sp50 2:4 --samples 655360 --json", out, sizeof out, 0), 0);
    assert_true(out[0] == '[');
    assert_true(fabs(json_number(out, "int4", "gmse") - 0.011543) < 1e-6);
    assert_true(json_number(out, "int4", "gmse_err") == 0.0);
    assert_true(fabs(json_number(out, "int4", "rho") - 0.8196) < 1e-4);
    assert_true(json_number(out, "int4", "bits") == 4.0);
    assert_true(fabs(json_number(out, "sp50", "gmse") - 0.071326) < 1e-6);
    assert_true(json_number(out, "sp50", "bits") == 9.0);
    /* N:M has a closed form (order statistics of the half-normal, 1/2 − 2/(√3π)):
     * exact, whatever --samples says (it printed the Monte Carlo 0.132471 ± 0.000239) */
    assert_true(fabs(json_number(out, "2:4", "gmse") - 0.132447) < 1e-6);
    assert_true(json_number(out, "2:4", "gmse_err") == 0.0);
    assert_int_equal(run("2:4 4:8 1:4 --json", out, sizeof out, 0), 0);
    assert_true(fabs(json_number(out, "2:4", "gmse") - (0.5 - 2.0 / (sqrt(3.0) * M_PI))) < 1e-6);
    assert_true(fabs(json_number(out, "4:8", "gmse") - 0.103307) < 1e-6);
    assert_true(fabs(json_number(out, "1:4", "gmse") - 0.382447) < 1e-6);
    assert_true(json_number(out, "2:4", "gmse_err") == 0.0 && json_number(out, "4:8", "gmse_err") == 0.0);
    assert_true(fabs(json_number(out, "2:4", "rho") - 0.4198) < 1e-9);
    /* aq's GMSE is a Monte Carlo of its fitted books: it says so (it printed 0) */
    assert_int_equal(run("aq1x1g1 --samples 65536 --json", out, sizeof out, 0), 0);
    assert_true(json_number(out, "aq1x1g1", "gmse_err") > 0);
    /* the table form has one row per format plus a header */
    assert_int_equal(run("int2 fp4", out, sizeof out, 0), 0);
    assert_non_null(strstr(out, "int2"));
    assert_non_null(strstr(out, "0.4445"));
    assert_non_null(strstr(out, "fp4"));
    assert_int_equal(run("--help", out, sizeof out, 0), 0);
    assert_non_null(strstr(out, "--samples"));
}

/* ρ with the published constants (L = 1, F = 0.41, C = 1.39) of a GMSE. */
static double rho_of(double g) { return pow(tanh(0.41 * log(g) / log(0.25)), 1.39); }

/* ρ follows from the GMSE the row shows: it came from a fixed default Monte
 * Carlo whatever --samples and --seed said (2:4, then a Monte Carlo, at seed 3
 * and 65536 samples printed gmse 0.131219 beside rho 0.4197, the formula giving
 * 0.4219), so more samples sharpened the GMSE but never ρ. A single stage's ρ is
 * ρ(gmse) to the printed digits (6 significant digits move ρ by < 1e-6, rounding
 * to 4 decimals by 5e-5); a composite's is the product of its stages' ρ, each
 * stage measured on its own with this same Monte Carlo (2:4 and int4 have closed
 * forms, so here neither depends on it; the composite's own gmse does). */
static void test_rho_from_the_same_estimate(void **state) {
    (void)state;
    char out[4096];
    assert_int_equal(run("2:4 mxfp4 vq2x2 2:4+int4 int4 --seed 3 --samples 65536 --json", out, sizeof out, 0), 0);
    const char *single[] = {"2:4", "mxfp4", "vq2x2", "int4"};
    for (int i = 0; i < 4; i++) {
        double g = json_number(out, single[i], "gmse"), r = json_number(out, single[i], "rho");
        printf("  %-6s gmse %.6g rho %.4f, rho(gmse) %.5f\n", single[i], g, r, rho_of(g));
        if (fabs(r - rho_of(g)) > 6e-5) fail_msg("%s: rho %.4f, but gmse %.6g gives %.5f", single[i], r, g, rho_of(g));
    }
    double want = rho_of(json_number(out, "2:4", "gmse")) * rho_of(json_number(out, "int4", "gmse"));
    assert_true(fabs(json_number(out, "2:4+int4", "rho") - want) < 6e-5);
    /* and another Monte Carlo moves ρ with the GMSE (mxfp4: 0.0131122 and 0.8069 at
     * seed 3, the default 0.0132196 and 0.8061); a closed form moves with neither */
    char out2[4096];
    assert_int_equal(run("mxfp4 2:4 2:4+int4 --json", out2, sizeof out2, 0), 0);
    assert_true(fabs(json_number(out2, "mxfp4", "rho") - rho_of(json_number(out2, "mxfp4", "gmse"))) < 6e-5);
    assert_true(json_number(out2, "mxfp4", "rho") != json_number(out, "mxfp4", "rho"));
    assert_true(json_number(out2, "2:4", "gmse") == json_number(out, "2:4", "gmse"));
    assert_true(json_number(out2, "2:4+int4", "rho") == json_number(out, "2:4+int4", "rho"));
    assert_true(json_number(out2, "2:4+int4", "gmse") != json_number(out, "2:4+int4", "gmse"));
}

/* The block formats (issue 17): bits with every block scale, NVFP4's tensor scale
 * beside them, a Monte-Carlo GMSE with its standard error, NVFP4 at Quartet II's
 * published 3.394 effective bits (−log₄ GMSE, notebooks/plots.ipynb) within 0.02,
 * and the grammar in --help. */
static void test_block_formats(void **state) {
    (void)state;
    char out[8192];
    assert_int_equal(run("mxfp4 mxfp6 mxfp8 nvfp4 int4@g32 int4@g128 nvfp4@46 nvfp4@2d --json", out, sizeof out, 0), 0);
    struct { const char *fmt; double bits, tensor_bits; } want[] = {
        {"mxfp4", 4.25, 0}, {"mxfp6", 6.25, 0}, {"mxfp8", 8.25, 0}, {"nvfp4", 4.5, 32},
        {"int4@g32", 4.5, 0}, {"int4@g128", 4.125, 0}, {"nvfp4@46", 4.5, 32}, {"nvfp4@2d", 4.031, 32},
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        double b = json_number(out, want[i].fmt, "bits"), t = json_number(out, want[i].fmt, "tensor_bits");
        double g = json_number(out, want[i].fmt, "gmse"), e = json_number(out, want[i].fmt, "gmse_err");
        if (b != want[i].bits || t != want[i].tensor_bits)
            fail_msg("%s: bits %g + %g, expected %g + %g", want[i].fmt, b, t, want[i].bits, want[i].tensor_bits);
        assert_true(g > 0 && g < 0.05 && e > 0 && e < 0.01 * g);
        assert_true(json_number(out, want[i].fmt, "rho") > 0.7);
    }
    /* Quartet II's anchors: NVFP4 RTN 3.394, four-over-six 3.524, 16×16 tiles 3.167 */
    const struct { const char *fmt; double eff; } anchor[] = {{"nvfp4", 3.394}, {"nvfp4@46", 3.524}, {"nvfp4@2d", 3.167}};
    for (int i = 0; i < 3; i++) {
        double eff = -log(json_number(out, anchor[i].fmt, "gmse")) / log(4.0);
        printf("  %-9s %.4f effective bits (published %.3f)\n", anchor[i].fmt, eff, anchor[i].eff);
        assert_true(fabs(eff - anchor[i].eff) < 0.02);
    }
    /* NVFP4 is finer than MXFP4 at 4-bit elements, int4@g32 finer than int4@g128 */
    assert_true(json_number(out, "nvfp4", "gmse") < json_number(out, "mxfp4", "gmse"));
    assert_true(json_number(out, "int4@g32", "gmse") < json_number(out, "int4@g128", "gmse"));
    assert_int_equal(run("--help", out, sizeof out, 0), 0);
    assert_non_null(strstr(out, "FORMAT := BASE[@MOD[@MOD...]]"));
    assert_non_null(strstr(out, "mxfp4 | mxfp6 | mxfp6e3m2 | mxfp8 | mxfp8e5m2 | nvfp4 | intB@gG"));
    assert_non_null(strstr(out, "@46"));
    assert_non_null(strstr(out, "@hB"));
    /* @sr says when it is unbiased: MX's OCP scale saturates block maxima above 6X
     * (docs/formats.md, "Scale multiplier, stochastic-rounding margins ..."), so an
     * unconditional "E[q(x)] = x" would be false for mx */
    const char *sr = strstr(out, "    @sr");
    assert_non_null(sr);
    char line[512];
    snprintf(line, sizeof line, "%.*s", (int)strcspn(sr, "\n"), sr);
    printf("  %s\n", line);
    assert_null(strstr(line, "unbiased (E[q(x)] = x)"));
    assert_non_null(strstr(line, "6X"));
    assert_non_null(strstr(line, "scale_mul 4/3"));
    assert_non_null(strstr(line, "17/16"));
    /* modifiers order-free and recorded canonically; bad ones exit 2 with the reason */
    assert_int_equal(run("nvfp4@sr@46 --json", out, sizeof out, 0), 0);
    assert_non_null(strstr(out, "\"format\": \"nvfp4@46@sr\""));
    const char *bad[][2] = {{"mxfp4@46", "does not apply to mx"}, {"nvfp4@46@2d", "do not combine"},
                            {"int4@clip", "does not apply to int"}, {"int1@g32", "2 <= B <= 8"},
                            {"int4@g24", "16, 32, 64, 128 or 256"}, {"mxfp4@sr@sr", "given twice"},
                            {"mxfp4@x", "is not a modifier"}, {"sp50+mxfp4", "after '+'"}};
    for (int i = 0; i < 8; i++) {
        char args[64];
        snprintf(args, sizeof args, "'%s'", bad[i][0]);
        assert_int_equal(run(args, out, sizeof out, 1), 2);
        if (!strstr(out, bad[i][1])) fail_msg("%s: '%s' lacks '%s'", bad[i][0], out, bad[i][1]);
    }
}

/* intB@gG's GMSE against this file's own Monte Carlo of the rule in docs/formats.md
 * (levels k·s, |k| <= 2^(B−1)−1, s = amax/(2^(B−1)−1) over each group of G N(0,1)
 * values; the bf16 rounding of s is left out, a relative change of the GMSE below
 * 0.5%). 2^21 values give a standard error of ~0.2% (int4) to ~0.3% (int2); the
 * bound of 2% is seven of them. Every group size, 256 included: a Monte-Carlo row
 * of 128 values once cut each g256 group in two, so int4@g256 was reported with
 * int4@g128's error at fewer bits. The GMSE also grows with G (a larger group's
 * absmax is larger): by 10% (int2) to 30% (int4) from one size to the next, held
 * to 5%, fifteen standard errors. */
static double ref_intg_gmse(int bits, int G) {
    const int64_t n = (int64_t)1 << 21;
    const double qmax = (double)((1 << (bits - 1)) - 1);
    uint64_t st = 0x9E3779B97F4A7C15ull;
    double *x = malloc(sizeof(double) * (size_t)G), err = 0;
    assert_non_null(x);
    for (int64_t done = 0; done < n; done += G) {
        double amax = 0;
        for (int i = 0; i < G; i += 2) { /* Box–Muller on xorshift64* uniforms */
            double u[2];
            for (int k = 0; k < 2; k++) {
                st ^= st >> 12, st ^= st << 25, st ^= st >> 27;
                u[k] = ((double)((st * 0x2545F4914F6CDD1Dull) >> 11) + 0.5) / 9007199254740992.0;
            }
            double r = sqrt(-2.0 * log(u[0]));
            x[i] = r * cos(6.283185307179586 * u[1]);
            x[i + 1] = r * sin(6.283185307179586 * u[1]);
            amax = fmax(amax, fmax(fabs(x[i]), fabs(x[i + 1])));
        }
        double sc = amax / qmax;
        for (int i = 0; i < G; i++) {
            double q = nearbyint(x[i] / sc);
            q = q > qmax ? qmax : q < -qmax ? -qmax : q;
            err += (x[i] - q * sc) * (x[i] - q * sc);
        }
    }
    free(x);
    return err / (double)n;
}

static void test_group_sizes(void **state) {
    (void)state;
    char out[8192];
    assert_int_equal(run("int4@g16 int4@g32 int4@g64 int4@g128 int4@g256 int2@g128 int2@g256 --json", out, sizeof out, 0),
                     0);
    const struct { const char *fmt; int bits, G; } c[] = {{"int4@g16", 4, 16},   {"int4@g32", 4, 32},
                                                          {"int4@g64", 4, 64},   {"int4@g128", 4, 128},
                                                          {"int4@g256", 4, 256}, {"int2@g128", 2, 128},
                                                          {"int2@g256", 2, 256}};
    for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
        double g = json_number(out, c[i].fmt, "gmse"), ref = ref_intg_gmse(c[i].bits, c[i].G);
        printf("  %-10s qat %.6f, reference %.6f\n", c[i].fmt, g, ref);
        if (fabs(g / ref - 1) > 0.02) fail_msg("%s: GMSE %g, reference %g", c[i].fmt, g, ref);
        if (i > 0 && c[i].bits == c[i - 1].bits && !(g > 1.05 * json_number(out, c[i - 1].fmt, "gmse")))
            fail_msg("%s: GMSE %g not above %s's", c[i].fmt, g, c[i - 1].fmt);
    }
}

/* The table names each format by its canonical spelling (modifiers in the
 * grammar's order, in text and JSON) and its first column is as wide as the
 * longest name, so every row's numbers start where the header's do. */
static void test_canonical_names_and_columns(void **state) {
    (void)state;
    char out[4096];
    assert_int_equal(run("nvfp4@sr@46 int4 --samples 65536 --json", out, sizeof out, 0), 0);
    assert_non_null(strstr(out, "\"format\": \"nvfp4@46@sr\""));
    assert_null(strstr(out, "nvfp4@sr@46"));
    assert_int_equal(run("int8@g256@sr@clip@h128 int4 --samples 65536", out, sizeof out, 0), 0);
    assert_non_null(strstr(out, "int8@g256@clip@sr@h128 "));
    /* the "gmse" header and every value column end at the same offset */
    char *line = out, *nl;
    int end = -1, rows = 0;
    while ((nl = strchr(line, '\n'))) {
        *nl = 0;
        /* end of the second whitespace-separated field */
        char *p = line;
        while (*p && *p != ' ') p++;
        while (*p == ' ') p++;
        while (*p && *p != ' ') p++;
        int e = (int)(p - line);
        if (end < 0) end = e;
        else if (e != end) fail_msg("column 2 ends at %d, header at %d: '%s'", e, end, line);
        rows++;
        line = nl + 1;
    }
    assert_int_equal(rows, 3);
}

static void test_bad_input(void **state) {
    (void)state;
    char out[4096];
    assert_int_equal(run("int4 int9", out, sizeof out, 1), 2);
    assert_non_null(strstr(out, "int9"));
    assert_non_null(strstr(out, "valid formats"));
    assert_int_equal(run("", out, sizeof out, 1), 2);
    assert_int_equal(run("int4 --samples many", out, sizeof out, 1), 2);
    assert_int_equal(run("int4 --frobnicate", out, sizeof out, 1), 2);
    /* an option where a value belongs: --fit took "--json" for a file name */
    assert_int_equal(run("int4 --fit --json", out, sizeof out, 1), 2);
    assert_non_null(strstr(out, "--fit: expected a value, got the option --json (see qat capacity --help)"));
    /* an empty path names the option (it said "qat: : cannot open: No such file or directory") */
    assert_int_equal(run("int4 --fit ''", out, sizeof out, 1), 2);
    assert_string_equal(out, "qat: capacity: --fit '': expected a fit file (FIT.h5, written by qat fit --out)\n");
    assert_int_equal(run("int4 --fit /nonexistent/fit.h5", out, sizeof out, 1), 2);
    assert_non_null(strstr(out, "/nonexistent/fit.h5: cannot open: No such file or directory")); /* as qat fit, qat plot */
    /* --samples 0 used the default and 1 drew 65536: refused, naming the range */
    const char *few[] = {"0", "1", "-1", "65535"};
    for (int i = 0; i < 4; i++) {
        char args[64];
        snprintf(args, sizeof args, "2:4 --samples %s", few[i]);
        assert_int_equal(run(args, out, sizeof out, 1), 2);
        assert_non_null(strstr(out, "--samples"));
        assert_non_null(strstr(out, "expected a whole number in [65536, 17179869184]"));
    }
    assert_int_equal(run("2:4 --samples 65536", out, sizeof out, 1), 0);
    /* the counts and seeds every other option and key takes (one parser, core/num.h):
     * --seed up to 2^64 − 1 and 1e3 (refused as "not valid, expected a non-negative
     * integer" from 2^63 on), --samples 1e6 */
    const char *fine[] = {"--seed 9223372036854775808", "--seed 18446744073709551615", "--seed 1e3",
                          "--samples 1e6", "--samples 65536 --seed 0"};
    for (int i = 0; i < 5; i++) {
        char args[96];
        snprintf(args, sizeof args, "2:4 --samples 65536 %s", fine[i]);
        if (i == 3) snprintf(args, sizeof args, "2:4 %s", fine[i]);
        if (run(args, out, sizeof out, 1) != 0) fail_msg("%s: %s", args, out);
    }
    assert_int_equal(run("int4 --seed 18446744073709551616", out, sizeof out, 1), 2);
    assert_non_null(strstr(out, "qat: capacity: --seed 18446744073709551616: expected an unsigned integer in [0, "
                                "18446744073709551615] (digits, or an exact whole number such as 1e6)"));
    assert_int_equal(run("int4 --samples 1e3", out, sizeof out, 1), 2);
    assert_non_null(strstr(out, "--samples 1e3: expected a whole number in [65536, 17179869184]"));
    /* off a terminal, stderr stays empty: a pipe gets the table alone */
    assert_null(strstr(out, "estimating"));
    /* on a terminal (script(1) gives the driver a pty), a live line names each format
     * while its estimate runs (vq builds a codebook, aq fits books: seconds with no
     * output before) and is erased before the row prints */
    if (system("command -v script >/dev/null 2>&1") == 0) {
        const char *exe = getenv("QAT_CAPACITY_EXE");
        char cmd[2048];
        snprintf(cmd, sizeof cmd, "script -qec \"'%s' vq2x2 int4 --samples 65536\" /dev/null",
                 exe ? exe : "scaling/qat-capacity");
        FILE *p = popen(cmd, "r");
        assert_non_null(p);
        size_t got = fread(out, 1, sizeof out - 1, p);
        out[got] = 0;
        assert_int_equal(pclose(p), 0);
        const char *l = strstr(out, "\r\033[Kqat capacity: format 1 of 2, vq2x2: estimating its Gaussian MSE...");
        if (!l) fail_msg("no live line on a terminal: %s", out);
        assert_non_null(strstr(l, "...\r\033[Kvq2x2 "));
        assert_non_null(strstr(out, "format 2 of 2, int4: estimating"));
    } else {
        printf("  (script(1) not installed: the terminal's live line is not checked)\n");
    }
    /* a trailing space is named, not blamed on the bit count */
    assert_int_equal(run("'int4 '", out, sizeof out, 1), 2);
    assert_non_null(strstr(out, "a trailing space at character 5"));
    assert_null(strstr(out, "1 <= B <= 8"));
}

static void put_law_named(hid_t f, const char *v) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, "law", t, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, &v);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
}

static void put_law(hid_t f) { put_law_named(f, "unified"); }

static void put_attr(hid_t f, const char *name, double v) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, name, H5T_NATIVE_DOUBLE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_DOUBLE, &v);
    H5Aclose(a);
    H5Sclose(sp);
}

static void test_fit_file(void **state) {
    (void)state;
    char path[] = "/tmp/qat_test_fitXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    /* A run log (groups /train, /final, no 'law') is not a fit: it priced
     * every format with the published constants and exit 0. */
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5Gclose(H5Gcreate2(f, "final", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    H5Fclose(f);
    char args[256], out[4096];
    snprintf(args, sizeof args, "int4 --fit %s", path);
    assert_int_equal(run(args, out, sizeof out, 1), 2);
    assert_non_null(strstr(out, "is not a fit file"));
    assert_non_null(strstr(out, "run log"));
    /* A fit of a law without capacity constants (quartet, chinchilla,
     * decoupled) was read as "no constants here" and every format priced with
     * the published ones, exit 0 and no word, while qat plot --kind capacity
     * refused the same file. */
    const char *laws[] = {"quartet", "chinchilla", "decoupled"};
    for (int l = 0; l < 3; l++) {
        f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        put_law_named(f, laws[l]);
        put_attr(f, "A", 400.0);
        H5Fclose(f);
        assert_int_equal(run(args, out, sizeof out, 1), 2);
        assert_non_null(strstr(out, "--fit needs a capacity law"));
        char this[64];
        snprintf(this, sizeof this, "this %s fit has no capacity constants", laws[l]);
        assert_non_null(strstr(out, this));
    }
    /* A constant an old fit let run to a bound is refused, not used. */
    f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    put_law(f);
    put_attr(f, "cap_quant_L", 1.0);
    put_attr(f, "cap_quant_F", 9.4284e85);
    put_attr(f, "cap_quant_C", 1.39);
    H5Fclose(f);
    assert_int_equal(run(args, out, sizeof out, 1), 2);
    assert_non_null(strstr(out, "cap_quant_F = 9.4284e+85 is not a capacity constant"));

    f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    put_law(f);
    put_attr(f, "cap_quant_L", 0.9);
    put_attr(f, "cap_quant_F", 0.5);
    put_attr(f, "cap_quant_C", 1.2);
    H5Fclose(f);
    qat_cap_params p[QAT_CAP_NTYPES] = {QAT_CAP_PUBLISHED, QAT_CAP_PUBLISHED, QAT_CAP_PUBLISHED};
    assert_int_equal(qat_fit_h5_read_capacity(path, p), QAT_OK);
    assert_true(p[QAT_CAP_QUANT].L == 0.9 && p[QAT_CAP_QUANT].F == 0.5 && p[QAT_CAP_QUANT].C == 1.2);
    assert_true(p[QAT_CAP_SPARSE].F == QAT_CAP_PUBLISHED.F); /* absent: published */
    snprintf(args, sizeof args, "int4 sp50 --json --fit %s", path);
    assert_int_equal(run(args, out, sizeof out, 0), 0);
    double want = qat_cap_rho(p[QAT_CAP_QUANT], 0.011542884);
    assert_true(fabs(json_number(out, "int4", "rho") - want) < 1e-4);
    assert_true(fabs(json_number(out, "sp50", "rho") - qat_cap_rho(QAT_CAP_PUBLISHED, 0.071326)) < 1e-4);
    unlink(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_rho_from_the_same_estimate),
        cmocka_unit_test(test_block_formats),
        cmocka_unit_test(test_group_sizes),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_canonical_names_and_columns),
        cmocka_unit_test(test_fit_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

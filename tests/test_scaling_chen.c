/*
 * tests/test_scaling_chen.c — `qat fit --law chen` (scaling/law_chen.c,
 * docs/scaling-laws.md): the fit recovers known (k, γD, γN, γG) from runs
 * drawn from L = L_fp32(N, D) + k·D^γD·(log₂ G)^γG/N^γN with multiplicative
 * noise like real runs' (on the fp32 twins and the quantized runs alike), and
 * its bootstrap interval holds the estimate; data that cannot identify γD or
 * γN is refused with exit 2 naming the axis; a design with one G per model
 * size holds γG by rule and says so; a quantized run without an fp32 twin is
 * refused naming the run; the per-run CSV round trip; G from the format's @gG.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/error.h"
#include "core/rng.h"
#include "scaling/fit.h"
#include "scaling/fit_cli.h"
#include "testutil.h"

static char dir[256];
static char text[1 << 16];

static void path_in(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

static int setup(void **s) {
    (void)s;
    return qat_test_mkdtemp(dir, sizeof dir, "scaling_chen");
}

static int teardown(void **s) {
    (void)s;
    return qat_test_rmtree(dir);
}

/* ---- the synthetic design ---------------------------------------------------
 * A CPU-scale fp32 law (losses 1.9–3.4 nats over N 5e4–4e5, D/N 25–800) and a
 * W4A4 penalty of the paper's shape, δ from 0.02 to 0.6 nats over the grid: it
 * rises with D (γD 0.25) and G (γG 1.2), falls with N (γN 0.45). Every (N, D/N,
 * G) is one run; G ∈ {16, 32, 64, 128} through the format's @gG. Noise: σ =
 * 0.0075 on ln L of every run, fp32 twins included (the run-to-run spread of
 * one-seed runs at s2–s4, as in test_scaling_quartet.c). */
static const double FA = 60, FALPHA = 0.35, FB = 120, FBETA = 0.3, FE = 1.2;
static const double TK = 0.05, TGD = 0.25, TGN = 0.45, TGG = 1.2;
static const double NS[] = {5e4, 1e5, 2e5, 4e5}, RATIO[] = {25, 50, 100, 200, 400, 800};
static const int GS[] = {16, 32, 64, 128};
#define NOISE 0.0075

/* keep(iN, iD, iG): which runs of the grid to draw (a refusal drops some). */
typedef int (*keep_fn)(int, int, int);
static int keep_all(int a, int b, int c) { (void)a, (void)b, (void)c; return 1; }

static void push(qat_fit_runs *rs, double N, double D, const char *fmt, double L) {
    qat_fit_run r;
    memset(&r, 0, sizeof r);
    r.N = N, r.D = D, r.loss = L * exp(NOISE * qat_normal_at(77, (uint64_t)rs->n)), r.from_csv = 1, r.n_terms = -1;
    snprintf(r.wfmt, sizeof r.wfmt, "%s", fmt);
    snprintf(r.afmt, sizeof r.afmt, "%s", fmt);
    snprintf(r.origin, sizeof r.origin, "synthetic:%d", rs->n + 1);
    qat_fit_runs_push(rs, &r);
}

static void make_runs(qat_fit_runs *rs, keep_fn keep, int n_g) {
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 6; j++) {
            double N = NS[i], D = RATIO[j] * N, Lfp = FA * pow(N, -FALPHA) + FB * pow(D, -FBETA) + FE;
            int any = 0;
            for (int g = 0; g < n_g; g++) any |= keep(i, j, g);
            if (any) push(rs, N, D, "fp32", Lfp);
            for (int g = 0; g < n_g; g++) {
                if (!keep(i, j, g)) continue;
                char fmt[32];
                snprintf(fmt, sizeof fmt, "int4@g%d", GS[g]);
                push(rs, N, D, fmt, Lfp + TK * pow(D, TGD) * pow(log2(GS[g]), TGG) / pow(N, TGN));
            }
        }
}

/* The law's G of a CSV row comes from its @gG; a per-row format there has none. */
static void test_group_from_format(void **s) {
    (void)s;
    qat_fit_run r;
    memset(&r, 0, sizeof r);
    r.from_csv = 1;
    snprintf(r.wfmt, sizeof r.wfmt, "int4@g128");
    assert_true(qat_fit_chen_group(&r) == 128.0);
    snprintf(r.wfmt, sizeof r.wfmt, "mxfp4@h32");
    assert_true(qat_fit_chen_group(&r) == 0.0);
    snprintf(r.wfmt, sizeof r.wfmt, "int4");
    assert_true(qat_fit_chen_group(&r) == 0.0);
}

/* Recovery: 96 quantized runs, σ 0.0075 on each loss and on its twin's (the
 * twin's noise is shared by the four G of a cell, so the design has 24
 * independent cells for γD and γN). Thresholds from the spread of the
 * estimates over 16 noise seeds of this design (seeds 1-15 and 77):
 * γD mean 0.238 sd 0.047, γN 0.44 sd 0.075, γG 1.21 sd 0.12, ln k sd ≈ 0.65
 * (k is the penalty extrapolated to D = N = 1, far outside the design); each
 * tolerance is ≥ 3.3 sd (a false failure below 1/1000 under a normal model):
 * γD ± 0.16, γN ± 0.25, γG ± 0.4, k within a factor 10. */
static void test_recovers_known_law(void **s) {
    (void)s;
    qat_fit_runs rs = {0};
    make_runs(&rs, keep_all, 4);
    assert_int_equal(rs.n, 24 * 5);
    qat_fit_chen_opts o = {.bootstrap = 40, .seed = 3};
    qat_fit_chen_result res = {0};
    assert_int_equal(qat_fit_chen(&rs, &o, &res, NULL, NULL), QAT_OK);
    assert_int_equal(res.n_pairs, 1);
    const qat_fit_chen_pair *p = &res.pair[0];
    assert_string_equal(p->key, "int4/int4"); /* @gG is the G axis, not another pair */
    assert_int_equal(p->n, 96);
    fprintf(stderr, "recovered k %.4g gammaD %.4f gammaN %.4f gammaG %.4f (rmse %.4g, %d resamples)\n", p->value[0],
            p->value[1], p->value[2], p->value[3], p->rmse_log, p->n_boot);
    assert_true(fabs(p->value[1] - TGD) < 0.16);
    assert_true(fabs(p->value[2] - TGN) < 0.25);
    assert_true(fabs(p->value[3] - TGG) < 0.4);
    assert_true(p->value[0] > TK / 10 && p->value[0] < TK * 10);
    assert_true(p->rmse_log < 2 * NOISE);
    assert_true(p->n_boot >= 30);
    for (int k = 0; k < 4; k++) {
        assert_int_equal(p->held[k], QAT_FIT_FREE);
        assert_true(p->lo[k] <= p->value[k] && p->value[k] <= p->hi[k] && p->lo[k] < p->hi[k]);
    }
    qat_fit_chen_result_free(&res);
    qat_fit_runs_free(&rs);
}

static void write_csv(const char *name, const qat_fit_runs *rs) {
    char p[512];
    path_in(p, sizeof p, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fprintf(f, "N,D,loss,format,act_format\n");
    for (int i = 0; i < rs->n; i++)
        fprintf(f, "%.10g,%.10g,%.12g,%s,%s\n", rs->run[i].N, rs->run[i].D, rs->run[i].loss, rs->run[i].wfmt,
                rs->run[i].afmt);
    fclose(f);
}

/* `qat fit ARGS... --law chen` in-process; stdout into text, returns the exit code. */
static int fit(int argc, const char **args) {
    char out[512];
    path_in(out, sizeof out, "stdout.txt");
    char *argv[24] = {"fit"};
    for (int k = 0; k < argc; k++) argv[1 + k] = (char *)args[k];
    qat_clear_error();
    return qat_test_capture(qat_fit_main, 1 + argc, argv, out, text, sizeof text);
}

static int one_d_per_n(int i, int j, int g) { return j == i && g < 2; }   /* D/N differs by N, one D each */
static int one_n(int i, int j, int g) { return i == 1 && g < 2; }         /* every D, one N */
static int one_g(int i, int j, int g) { (void)i, (void)j; return g == 1; } /* every N and D, G = 32 only */
static int g_with_n(int i, int j, int g) { (void)j; return g == i % 2; }  /* G changes only with N */

static void expect_refusal(keep_fn keep, const char *csv, const char *const *needles) {
    qat_fit_runs rs = {0};
    make_runs(&rs, keep, 4);
    write_csv(csv, &rs);
    qat_fit_runs_free(&rs);
    char p[512];
    path_in(p, sizeof p, csv);
    const char *args[] = {p, "--law", "chen"};
    assert_int_equal(fit(3, args), 2);
    for (int k = 0; needles[k]; k++) {
        if (!strstr(qat_errmsg(), needles[k])) fprintf(stderr, "missing '%s' in: %s\n", needles[k], qat_errmsg());
        assert_non_null(strstr(qat_errmsg(), needles[k]));
    }
}

/* D fixed at each N (the D/N ladder cut to one rung per size) cannot tell γD
 * from γN; one N cannot tell γN at all. Both exit 2 naming the axis and the cure. */
static void test_refuses_unidentifiable(void **s) {
    (void)s;
    expect_refusal(one_d_per_n, "one_d.csv", (const char *const[]){"D takes one value", "gammaD", "int4/int4", NULL});
    expect_refusal(one_n, "one_n.csv", (const char *const[]){"N takes one value", "gammaN", "--fix gammaN", NULL});
    /* with γD held the same data is accepted */
    qat_fit_runs rs = {0};
    make_runs(&rs, one_d_per_n, 4);
    const char *names[] = {"gammaD"};
    double vals[] = {TGD};
    qat_fit_chen_opts o = {.n_fix = 1, .fix_name = names, .fix_value = vals};
    qat_fit_chen_result res = {0};
    assert_int_equal(qat_fit_chen(&rs, &o, &res, NULL, NULL), QAT_OK);
    assert_int_equal(res.pair[0].held[1], QAT_FIT_BY_USER);
    assert_true(res.pair[0].value[1] == TGD);
    qat_fit_chen_result_free(&res);
    qat_fit_runs_free(&rs);
    /* k is never held */
    make_runs(&rs, keep_all, 4);
    const char *kn[] = {"k"};
    o = (qat_fit_chen_opts){.n_fix = 1, .fix_name = kn, .fix_value = vals};
    assert_int_equal(qat_fit_chen(&rs, &o, NULL, NULL, NULL), QAT_EINPUT);
    assert_non_null(strstr(qat_errmsg(), "--fix k="));
    qat_fit_runs_free(&rs);
}

/* One G (or G tied to N): γG is held at 0 by rule and the note says why; γD
 * and γN are still fitted. */
static void test_one_group_holds_gamma_g(void **s) {
    (void)s;
    keep_fn designs[] = {one_g, g_with_n};
    for (int d = 0; d < 2; d++) {
        qat_fit_runs rs = {0};
        make_runs(&rs, designs[d], 4);
        char notes[512] = "";
        FILE *note = fmemopen(notes, sizeof notes, "w");
        qat_fit_chen_opts o = {0};
        qat_fit_chen_result res = {0};
        assert_int_equal(qat_fit_chen(&rs, &o, &res, NULL, note), QAT_OK);
        fclose(note);
        assert_int_equal(res.pair[0].held[3], QAT_FIT_BY_RULE);
        assert_true(res.pair[0].value[3] == 0.0);
        assert_non_null(strstr(notes, "gammaG is not identifiable; held at 0"));
        assert_non_null(strstr(notes, "G takes one value at each model size"));
        assert_true(fabs(res.pair[0].value[1] - TGD) < 0.16);
        qat_fit_chen_result_free(&res);
        qat_fit_runs_free(&rs);
    }
}

/* A quantized run without its fp32/fp32 twin has no penalty to fit. */
static void test_refuses_missing_twin(void **s) {
    (void)s;
    qat_fit_runs rs = {0};
    make_runs(&rs, keep_all, 4);
    /* drop the fp32 run at N = 1e5, D/N = 50 (index: runs come in blocks of 5) */
    int drop = (1 * 6 + 1) * 5;
    assert_string_equal(rs.run[drop].wfmt, "fp32");
    memmove(&rs.run[drop], &rs.run[drop + 1], (size_t)(rs.n - drop - 1) * sizeof rs.run[0]);
    rs.n--;
    qat_fit_chen_opts o = {0};
    assert_int_equal(qat_fit_chen(&rs, &o, NULL, NULL, NULL), QAT_EINPUT);
    assert_non_null(strstr(qat_errmsg(), "no fp32/fp32 twin"));
    assert_non_null(strstr(qat_errmsg(), "synthetic:"));
    qat_fit_runs_free(&rs);
}

/* Through the command line: the table, the CSV of per-run penalties and the
 * figure; --out (FIT.h5) is refused for this law. */
static void test_cli_csv_and_svg(void **s) {
    (void)s;
    qat_fit_runs rs = {0};
    make_runs(&rs, keep_all, 4);
    write_csv("all.csv", &rs);
    qat_fit_runs_free(&rs);
    char in[512], csv[512], svg[512], h5[512];
    path_in(in, sizeof in, "all.csv");
    path_in(csv, sizeof csv, "per_run.csv");
    path_in(svg, sizeof svg, "delta.svg");
    path_in(h5, sizeof h5, "fit.h5");
    const char *args[] = {in, "--law", "chen", "--csv", csv, "--svg", svg};
    assert_int_equal(fit(7, args), 0);
    assert_non_null(strstr(text, "pair int4/int4: 96 runs"));
    assert_non_null(strstr(text, "gammaD"));
    FILE *f = fopen(csv, "r");
    assert_non_null(f);
    char line[512];
    int rows = 0;
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "pair,N,D,G,loss_fp32,loss,delta,delta_pred,resid\n");
    while (fgets(line, sizeof line, f)) rows++;
    fclose(f);
    assert_int_equal(rows, 96);
    f = fopen(svg, "r");
    assert_non_null(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = 0;
    fclose(f);
    assert_non_null(strstr(text, "data-name=\"int4/int4 N=5e+04 G=16\""));
    /* the penalty axis is linear and starts below 0 (a penalty can be negative): drawn on
     * its own range, not replaced by the stand-in svg.c draws for a range it cannot use */
    assert_null(strstr(text, "stand-in"));
    /* a figure that cannot be created is an I/O failure (exit 1), not the user's argument;
     * for all but root, /proc is a directory we may not write: the argument's fault, exit 2 */
    const char *proc[] = {in, "--law", "chen", "--svg", "/proc/x.svg"};
    assert_int_equal(fit(5, proc), geteuid() == 0 ? 1 : 2);
    assert_non_null(strstr(qat_errmsg(), "/proc/x.svg"));
    assert_non_null(strstr(qat_errmsg(), geteuid() == 0 ? "No such file or directory" : "cannot write in the directory"));
    const char *bad[] = {in, "--law", "chen", "--out", h5};
    assert_int_equal(fit(5, bad), 2);
    assert_non_null(strstr(qat_errmsg(), "--law chen writes no FIT.h5"));
}

/* --fix through the command line: a value that is not finite, or a second value
 * for the same exponent, is refused like the other laws' --fix (NaN was printed
 * as gammaD, the last of two values silently won); a negative exponent stays
 * allowed. gammaG cannot be held when no run has a G (it would be printed
 * without entering the fit), and an unknown G is printed as '-', not 0. */
static void test_cli_fix_checks(void **s) {
    (void)s;
    qat_fit_runs rs = {0};
    make_runs(&rs, keep_all, 4);
    write_csv("fix.csv", &rs);
    qat_fit_runs_free(&rs);
    char in[512];
    path_in(in, sizeof in, "fix.csv");
    const char *bad[] = {"gammaD=nan", "gammaD=inf", "gammaN=-inf", "gammaG=1e999"};
    for (int k = 0; k < 4; k++) {
        const char *args[] = {in, "--law", "chen", "--fix", bad[k]};
        assert_int_equal(fit(5, args), 2);
        char want[64];
        snprintf(want, sizeof want, "--fix %.6s: value is not a finite number", bad[k]);
        if (!strstr(qat_errmsg(), want)) fprintf(stderr, "got: %s\n", qat_errmsg());
        assert_non_null(strstr(qat_errmsg(), want));
    }
    const char *twice[] = {in, "--law", "chen", "--fix", "gammaD=1", "--fix", "gammaD=2"};
    assert_int_equal(fit(7, twice), 2);
    assert_non_null(strstr(qat_errmsg(), "--fix gammaD=2: gammaD is already held by --fix gammaD=1"));
    /* finite but so large the penalty overflows: refused, not printed as 0 */
    const char *huge[] = {in, "--law", "chen", "--fix", "gammaD=1e308"};
    assert_int_equal(fit(5, huge), 2);
    assert_non_null(strstr(qat_errmsg(), "is not a finite number at these runs with --fix gammaD=1e+308"));
    const char *neg[] = {in, "--law", "chen", "--fix", "gammaD=-0.5"};
    assert_int_equal(fit(5, neg), 0);
    assert_non_null(strstr(text, "(held: --fix)"));

    /* per-row int4 (no @gG): G unknown for every run */
    make_runs(&rs, one_g, 4);
    for (int i = 0; i < rs.n; i++)
        if (strcmp(rs.run[i].wfmt, "fp32")) {
            snprintf(rs.run[i].wfmt, sizeof rs.run[i].wfmt, "int4");
            snprintf(rs.run[i].afmt, sizeof rs.run[i].afmt, "int4");
        }
    write_csv("nog.csv", &rs);
    qat_fit_runs_free(&rs);
    path_in(in, sizeof in, "nog.csv");
    const char *held[] = {in, "--law", "chen", "--fix", "gammaG=1"};
    assert_int_equal(fit(5, held), 2);
    assert_non_null(strstr(qat_errmsg(), "--fix gammaG=1: G (the weights' scale group size) is unknown for these runs"));
    char csv[512];
    path_in(csv, sizeof csv, "nog_out.csv");
    const char *plain[] = {in, "--law", "chen", "--csv", csv};
    assert_int_equal(fit(5, plain), 0);
    const char *row = strstr(text, "N            D");
    assert_non_null(row);
    assert_non_null(strstr(row, "      - "));     /* the G column */
    FILE *f = fopen(csv, "r");
    assert_non_null(f);
    char line[512];
    assert_non_null(fgets(line, sizeof line, f)); /* header */
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    char *c = line;
    for (int k = 0; k < 3; k++) c = strchr(c, ',') + 1; /* after pair,N,D */
    assert_true(!strncmp(c, "-,", 2));
}

static int two_cells(int i, int j, int g) { return ((i == 0 && j == 0) || (i == 1 && j == 1)) && g == 1; }
static int four_cells(int i, int j, int g) { return i < 2 && j < 2 && g == 1; }

/* Points, not runs: two (N, D) cells of one G, each run twice (two seeds), with
 * gammaD held, left k and gammaN to two penalty points; the old check counted 4
 * runs > 2 free parameters and printed an exact fit through the two points
 * (once k 1.1e-146, gammaN -28.9) with zero-width "95 % intervals". Refused
 * naming the count; four cells (4 points, 3 free) are fitted. */
static void test_refuses_too_few_points(void **s) {
    (void)s;
    qat_fit_runs rs = {0};
    make_runs(&rs, two_cells, 4);
    make_runs(&rs, two_cells, 4); /* the second seed: other noise (push() keys it by the row) */
    assert_int_equal(rs.n, 8);
    const char *names[] = {"gammaD"};
    double vals[] = {TGD};
    qat_fit_chen_opts o = {.n_fix = 1, .fix_name = names, .fix_value = vals, .bootstrap = 20};
    assert_int_equal(qat_fit_chen(&rs, &o, NULL, NULL, NULL), QAT_EINPUT);
    if (!strstr(qat_errmsg(), "give 2 distinct (N, D, G) penalty points for 2 free parameters (k, gammaN)"))
        fail_msg("got: %s", qat_errmsg());
    qat_fit_runs_free(&rs);
    make_runs(&rs, four_cells, 4);
    o = (qat_fit_chen_opts){0};
    qat_fit_chen_result res = {0};
    assert_int_equal(qat_fit_chen(&rs, &o, &res, NULL, NULL), QAT_OK);
    assert_int_equal(res.pair[0].held[3], QAT_FIT_BY_RULE);
    qat_fit_chen_result_free(&res);
    qat_fit_runs_free(&rs);
}

/* Intervals only from 20 usable resamples, the minimum --bootstrap itself
 * demands: four cells and three free parameters need every cell in a resample,
 * which 4!/4^4 = 9 % of resamples draw, so 40 give about 4. They printed
 * "intervals" from those few; now none, and the table says why. */
static void test_bootstrap_too_few_usable(void **s) {
    (void)s;
    qat_fit_runs rs = {0};
    make_runs(&rs, four_cells, 4);
    write_csv("four.csv", &rs);
    qat_fit_chen_opts o = {.bootstrap = 40, .seed = 1};
    qat_fit_chen_result res = {0};
    assert_int_equal(qat_fit_chen(&rs, &o, &res, NULL, NULL), QAT_OK);
    const qat_fit_chen_pair *p = &res.pair[0];
    printf("  %d of 40 resamples usable\n", p->n_boot);
    assert_true(p->n_boot > 0 && p->n_boot < 20);
    for (int k = 0; k < 4; k++) assert_true(isnan(p->lo[k]) && isnan(p->hi[k]));
    qat_fit_chen_result_free(&res);
    qat_fit_runs_free(&rs);
    char in[512];
    path_in(in, sizeof in, "four.csv");
    const char *args[] = {in, "--law", "chen", "--bootstrap", "40", "--seed", "1"};
    assert_int_equal(fit(7, args), 0);
    assert_non_null(strstr(text, "of 40 bootstrap resamples used"));
    assert_non_null(strstr(text, "no intervals: "));
    assert_non_null(strstr(text, "fewer than the 20 a 95% percentile interval needs"));
    assert_null(strstr(text, "["));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_from_format),
        cmocka_unit_test(test_recovers_known_law),
        cmocka_unit_test(test_refuses_unidentifiable),
        cmocka_unit_test(test_one_group_holds_gamma_g),
        cmocka_unit_test(test_refuses_missing_twin),
        cmocka_unit_test(test_cli_csv_and_svg),
        cmocka_unit_test(test_cli_fix_checks),
        cmocka_unit_test(test_refuses_too_few_points),
        cmocka_unit_test(test_bootstrap_too_few_usable),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

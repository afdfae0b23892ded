/*
 * tests/test_scaling_plot.c — FIT.h5 round trip and the three SVG figures:
 * well-formed XML (every tag closed, one root), both axes with ticks and
 * labels, a title, a legend, and exactly one series per format pair (law) or
 * per priced format (frontier). Runs are synthetic with known terms; the
 * resolver here prices bits by the docs/formats.md names so compress/ is not needed.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <hdf5.h>

#include "h5fuzz.h"

#include "core/error.h"
#include "scaling/fit.h"
#include "scaling/fit_cli.h"
#include "scaling/fit_h5.h"
#include "scaling/plot.h"
#include "scaling/report.h"
#include "scaling/svg.h"
#include "scaling/synth.h"

static int test_bits(const char *fmt, double *bits) {
    if (!strncmp(fmt, "int", 3)) { *bits = atof(fmt + 3); return 0; }
    if (!strcmp(fmt, "fp32")) { *bits = 32; return 0; }
    if (!strcmp(fmt, "ternary")) { *bits = log2(3.0); return 0; } /* a budget 3 and 4 digits write differently */
    if (!strncmp(fmt, "sp", 2)) { *bits = 32 * (1 - atof(fmt + 2) / 100) + 1; return 0; }
    return qat_fail(QAT_EINPUT, "unknown %s", fmt);
}

static int test_terms(const char *fmt, qat_cap_term *t, int max, int *n) {
    for (int k = 0; k < qat_fit_synth_npairs; k++)
        if (!strcmp(qat_fit_synth_pairs[k].w, fmt) && qat_fit_synth_pairs[k].n_terms == 1) {
            t[0] = qat_fit_synth_pairs[k].terms[0];
            *n = 1;
            return 0;
        }
    if (!strcmp(fmt, "ternary")) { /* a frontier candidate beside the data, at its published GMSE */
        t[0] = (qat_cap_term){QAT_CAP_QUANT, 0.1095};
        *n = 1;
        return 0;
    }
    *n = 0;
    return strcmp(fmt, "fp32") ? qat_fail(QAT_EINPUT, "unknown %s", fmt) : 0;
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *s = malloc((size_t)n + 1);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = 0;
    fclose(f);
    return s;
}

/* Tags balance: a stack of element names, self-closing tags skipped. */
static int well_formed(const char *s) {
    char stack[64][32];
    int depth = 0, roots = 0;
    for (const char *p = strchr(s, '<'); p; p = strchr(p + 1, '<')) {
        if (p[1] == '?' || p[1] == '!') continue;
        const char *end = strchr(p, '>');
        if (!end) return 0;
        if (p[1] == '/') {
            if (depth == 0) return 0;
            size_t n = strcspn(p + 2, " >");
            if (strncmp(stack[depth - 1], p + 2, n) || stack[depth - 1][n]) return 0;
            depth--;
        } else if (end[-1] != '/') {
            if (depth == 0) roots++;
            if (depth == 64) return 0;
            size_t n = strcspn(p + 1, " >/");
            if (n >= 32) return 0;
            memcpy(stack[depth], p + 1, n);
            stack[depth++][n] = 0;
        }
        for (const char *q = p + 1; q < end; q++)
            if (*q == '<' || *q == '&' ) { if (*q == '<') return 0; }
    }
    return depth == 0 && roots == 1;
}

static int count(const char *s, const char *needle) {
    int c = 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle)) c++;
    return c;
}

static void check_common(const char *svg, int panels) {
    assert_true(well_formed(svg));
    assert_non_null(strstr(svg, "xmlns=\"http://www.w3.org/2000/svg\""));
    assert_non_null(strstr(svg, "class=\"title\""));
    assert_non_null(strstr(svg, "class=\"axis x\""));
    assert_non_null(strstr(svg, "class=\"axis y\""));
    assert_true(count(svg, "class=\"tick\"") >= 6);
    assert_true(count(svg, "class=\"label\"") == 1 + panels); /* one x label, a y label per panel */
    assert_non_null(strstr(svg, "class=\"legend\""));
    assert_true(strstr(svg, "nan") == NULL && strstr(svg, "inf\"") == NULL);
}

/* Below, with the law plot's own test. */
static void check_ticks_on_curves(const char *svg, int n_runs, double panel_bottom);

static void test_plots(void **s) {
    (void)s;
    const qat_fit_synth_law law = {250, 0.32, 900, 0.30, 1.7, {{1, 0.41, 1.39}, {1, 0.5, 1.2}, {1, 1, 1}}, 0.004, 5};
    const double N[] = {1e6, 1e7, 1e8}, ratio[] = {20, 100};
    qat_fit_runs rs = {0};
    qat_fit_synth(&rs, &law, N, 3, ratio, 2, qat_fit_synth_pairs, qat_fit_synth_npairs);
    qat_fit_problem p, dp;
    qat_fit_result r, dr;
    assert_int_equal(qat_fit_problem_init(&p, QAT_LAW_UNIFIED, &rs), QAT_OK);
    qat_fit_opts o = {.max_starts = 16};
    assert_int_equal(qat_fit_run_fit(&p, &o, &r), QAT_OK);
    assert_int_equal(qat_fit_problem_init(&dp, QAT_LAW_DECOUPLED, &rs), QAT_OK);
    assert_int_equal(qat_fit_run_fit(&dp, &o, &dr), QAT_OK);
    qat_fit_resolver res = {test_terms, test_bits};
    qat_fit_report rep = {.runs = &rs, .p = &p, .r = &r, .dp = &dp, .dr = &dr};
    qat_fit_report_prepare(&rep, &res);
    char dir[] = "/tmp/qat_test_scaling_plot_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char h5[128], svg[128];
    snprintf(h5, sizeof h5, "%s/fit.h5", dir);
    assert_int_equal(qat_fit_h5_write(h5, &rep, NULL, 0), QAT_OK);

    qat_fit_h5 f;
    assert_int_equal(qat_fit_h5_read(h5, &f), QAT_OK);
    assert_string_equal(f.law, "unified");
    assert_int_equal(f.n_runs, rs.n);
    assert_true(f.has_cap[QAT_CAP_QUANT] && f.has_cap[QAT_CAP_SPARSE] && !f.has_cap[QAT_CAP_VQ]);
    assert_true(f.cap[QAT_CAP_QUANT][1] == qat_fit_value(&p, r.theta, p.type_off[QAT_CAP_QUANT] + 1));
    assert_int_equal(f.pairs.n, qat_fit_synth_npairs);
    assert_int_equal(f.dec.n, qat_fit_synth_npairs);
    for (int i = 0; i < rs.n; i++) assert_true(fabs(f.pred[i] - r.pred[i]) < 1e-12);

    /* law: one series per format pair, and one of its residuals, plus the residual panel's zero line */
    snprintf(svg, sizeof svg, "%s/law.svg", dir);
    assert_int_equal(qat_fit_plot(&f, h5, QAT_PLOT_LAW, svg, NULL), QAT_OK);
    char *t = slurp(svg);
    check_common(t, 2);
    assert_int_equal(count(t, "class=\"series\""), 2 * qat_fit_synth_npairs + 1);
    for (int k = 0; k < f.pairs.n; k++) {
        char key[160];
        snprintf(key, sizeof key, "data-name=\"%s\"", f.pairs.name[k]);
        assert_int_equal(count(t, key), 1);
        snprintf(key, sizeof key, "data-name=\"%s residuals\"", f.pairs.name[k]);
        assert_int_equal(count(t, key), 1);
    }
    /* runs at D/N 20 and 100 on three sizes: two curves per pair, at those ratios */
    assert_int_equal(count(t, "<polyline class=\"fit\""), 2 * qat_fit_synth_npairs);
    assert_non_null(strstr(t, "D/N = 20"));
    check_ticks_on_curves(t, rs.n, 440);
    free(t);
    /* capacity: a curve per fitted type plus the published reference, points of the decoupled fit */
    snprintf(svg, sizeof svg, "%s/capacity.svg", dir);
    assert_int_equal(qat_fit_plot(&f, h5, QAT_PLOT_CAPACITY, svg, NULL), QAT_OK);
    t = slurp(svg);
    check_common(t, 1);
    assert_int_equal(count(t, "data-name=\"quant\""), 1);
    assert_int_equal(count(t, "data-name=\"sparse\""), 1);
    assert_int_equal(count(t, "data-name=\"vq\""), 0);
    assert_true(count(t, "<circle") >= 9); /* int1..int8 and sp25..sp90 weight-only effs */
    free(t);
    /* frontier: one series per priced format plus the frontier line */
    snprintf(svg, sizeof svg, "%s/frontier.svg", dir);
    char info_path[600];
    snprintf(info_path, sizeof info_path, "%s/frontier.txt", dir);
    FILE *info = fopen(info_path, "w");
    assert_non_null(info);
    assert_int_equal(qat_fit_plot(&f, h5, QAT_PLOT_FRONTIER, svg, info), QAT_OK);
    fclose(info);
    /* both answers: capacity per bit, and the most capacity whose storage fits the budget
     * (rising ρ along rising budgets, the block formats priced with their scales) */
    t = slurp(info_path);
    const char *most = strstr(t, "most capacity within each bit budget");
    assert_non_null(most);
    double last = -1;
    for (const char *l = strstr(most, "\n  <= "); l; l = strstr(l + 1, "\n  <= ")) {
        double b, r;
        char name[64];
        assert_int_equal(sscanf(l, "\n  <= %lf bits: %63s %lf", &b, name, &r), 3);
        assert_true(r > last);
        last = r;
    }
    assert_true(last > 0);
    /* one precision for budgets in both lists: ternary's log2(3) bits leads both,
     * written 1.585 in each (it was 1.58 in the first) */
    assert_int_equal(count(t, "<= 1.585 "), 2);
    assert_null(strstr(t, "<= 1.58 "));
    free(t);
    t = slurp(svg);
    check_common(t, 1);
    assert_int_equal(count(t, "class=\"series\""), f.n_fmt + 1);
    assert_true(f.n_fmt >= 9);
    assert_non_null(strstr(t, "bits: "));
    free(t);
    qat_fit_h5_free(&f);

    /* A chinchilla fit has nothing to put on the capacity or frontier plots: an input error, not a crash. */
    qat_fit_problem cp;
    qat_fit_result cr;
    assert_int_equal(qat_fit_problem_init(&cp, QAT_LAW_CHINCHILLA, &rs), QAT_OK);
    qat_fit_opts co = {.max_starts = 8};
    assert_int_equal(qat_fit_run_fit(&cp, &co, &cr), QAT_OK);
    qat_fit_report crep = {.runs = &rs, .p = &cp, .r = &cr};
    qat_fit_report_prepare(&crep, NULL);
    assert_int_equal(qat_fit_h5_write(h5, &crep, NULL, 0), QAT_OK);
    assert_int_equal(qat_fit_h5_read(h5, &f), QAT_OK);
    assert_int_equal(qat_fit_plot(&f, h5, QAT_PLOT_CAPACITY, svg, NULL), QAT_EINPUT);
    assert_non_null(strstr(qat_errmsg(), "fit.h5"));
    assert_int_equal(qat_fit_plot(&f, h5, QAT_PLOT_FRONTIER, svg, NULL), QAT_EINPUT);
    qat_fit_h5_free(&f);
    assert_int_equal(qat_fit_h5_read(svg, &f), QAT_EINPUT); /* not HDF5 */
    /* a missing file says so, as qat fit does (before: "not an HDF5 file") */
    char missing[160], want[260];
    snprintf(missing, sizeof missing, "%s/missing.h5", dir);
    assert_int_equal(qat_fit_h5_read(missing, &f), QAT_EINPUT);
    snprintf(want, sizeof want, "%s: cannot open: No such file or directory", missing);
    assert_string_equal(qat_errmsg(), want);
    /* `-o -` is refused (exit 2), not written as a file named "-" */
    assert_int_equal(access("-", F_OK), -1);
    assert_int_equal(qat_plot_main(6, (char *[]){"plot", h5, "--kind", "law", "-o", "-", NULL}), 2);
    assert_non_null(strstr(qat_errmsg(), "-o -: the figure is written to a file only"));
    assert_int_equal(access("-", F_OK), -1);
    /* a directory (qat fit's RUNS given for its FIT.h5) is named as one */
    assert_int_equal(qat_fit_h5_read(dir, &f), QAT_EINPUT);
    snprintf(want, sizeof want, "%s: is a directory (expected a FIT.h5 from qat fit --out)", dir);
    assert_string_equal(qat_errmsg(), want);

    qat_fit_report_free(&crep);
    qat_fit_result_free(&cr);
    qat_fit_problem_free(&cp);
    qat_fit_report_free(&rep);
    qat_fit_result_free(&r);
    qat_fit_result_free(&dr);
    qat_fit_problem_free(&p);
    qat_fit_problem_free(&dp);
    qat_fit_runs_free(&rs);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* ---- the law plot: every run on its own curve ------------------------- */

/* The quickstart design: four sizes at one token budget for every pair, and
 * fp32 also at a half and a quarter of it on the middle sizes. Each pair then
 * has four D/N ratios, which the drawing before issue 20 replaced by one curve
 * at their geometric mean: no run lay on it. */
static void quickstart_runs(qat_fit_runs *rs, const qat_fit_synth_law *law) {
    static const double N[] = {2.7e4, 6e4, 1.2e5, 2.4e5};
    static const int pairs[] = {0, 6, 7}; /* fp32/fp32, int4/int4, int2/int2 */
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < 4; i++) {
            double r = 3.5e6 / N[i];
            qat_fit_synth(rs, law, &N[i], 1, &r, 1, &qat_fit_synth_pairs[pairs[k]], 1);
        }
    for (int b = 1; b <= 2; b++)
        for (int i = 1; i <= 2; i++) {
            double r = 3.5e6 / (1 << b) / N[i];
            qat_fit_synth(rs, law, &N[i], 1, &r, 1, &qat_fit_synth_pairs[0], 1);
        }
}

/* The value of attribute `name` in the element at p ("" if absent). */
static double attr(const char *p, const char *name) {
    const char *end = strchr(p, '>');
    char key[32];
    snprintf(key, sizeof key, " %s=\"", name);
    const char *a = strstr(p, key);
    assert_true(a && a < end);
    return strtod(a + strlen(key), NULL);
}

/* y of polyline `pts` ("x,y x,y ...") at x, by linear interpolation; NAN outside. */
static double poly_y(const char *pts, double x) {
    double x0 = NAN, y0 = NAN;
    for (const char *q = pts; *q && *q != '"';) {
        char *e;
        double x1 = strtod(q, &e);
        assert_true(*e == ',');
        double y1 = strtod(e + 1, &e);
        if (x0 <= x && x <= x1) return y0 + (y1 - y0) * (x - x0) / (x1 - x0);
        x0 = x1; y0 = y1;
        q = e;
        while (*q == ' ') q++;
    }
    return NAN;
}

/* Centre of the marker element starting at the '<' before m (svg.c's shapes:
 * circle; square; triangle with apex at (X, Y − 1.2r) and base at Y + 0.8r;
 * diamond with its second vertex at (X + 1.3r, Y)). */
static void marker_center(const char *m, double *cx, double *cy) {
    const char *lt = m;
    while (*lt != '<') lt--;
    if (!strncmp(lt, "<circle", 7)) { *cx = attr(m, "cx"); *cy = attr(m, "cy"); return; }
    if (!strncmp(lt, "<rect", 5)) { *cx = attr(m, "x") + attr(m, "width") / 2; *cy = attr(m, "y") + attr(m, "height") / 2; return; }
    assert_true(!strncmp(lt, "<polygon", 8));
    double v[8];
    char *e = strstr(m, "points=\"") + 8;
    int k = 0;
    while (k < 8 && *e != '"') {
        v[k++] = strtod(e, &e);
        if (*e == ',' || *e == ' ') e++;
    }
    *cx = v[0];
    *cy = k == 6 ? 0.4 * v[1] + 0.6 * v[3] : v[3];
}

/* Every residual tick of the upper panel starts at a run's marker of its
 * group and ends on that group's curve (in px: what a reader sees). */
static void check_ticks_on_curves(const char *svg, int n_runs, double panel_bottom) {
    int ticks = 0;
    for (const char *p = strstr(svg, "<line class=\"resid\""); p; p = strstr(p + 1, "<line class=\"resid\"")) {
        double y1 = attr(p, "y1");
        if (y1 > panel_bottom) continue; /* the residual panel */
        int g = (int)attr(p, "data-group");
        double x1 = attr(p, "x1"), x2 = attr(p, "x2"), y2 = attr(p, "y2");
        assert_true(fabs(x1 - x2) < 1e-9);
        /* the run's marker (a circle or square in the first budgets) sits at the tick's start */
        const char *m = strstr(p, "class=\"run\"");
        assert_non_null(m);
        assert_int_equal((int)attr(m, "data-group"), g);
        double cx, cy;
        marker_center(m, &cx, &cy);
        assert_true(fabs(cx - x1) < 0.02 && fabs(cy - y1) < 0.02);
        /* its group's curve passes through the tick's other end */
        char key[64];
        snprintf(key, sizeof key, "<polyline class=\"fit\" data-group=\"%d\"", g);
        const char *c = strstr(svg, key);
        assert_non_null(c);
        double yc = poly_y(strstr(c, "points=\"") + 8, x2);
        if (!(fabs(yc - y2) < 0.5)) fail_msg("run tick at x %.2f: ends at y %.2f, its curve (group %d) is at %.2f", x2, y2, g, yc);
        ticks++;
    }
    assert_int_equal(ticks, n_runs);
}

static void test_law_curves_through_runs(void **s) {
    (void)s;
    const qat_fit_synth_law law = {4.0, 0.21, 4500, 0.63, 0.8, {{1, 0.41, 1.39}, {1, 0.5, 1.2}, {1, 1, 1}}, 0.01, 11};
    qat_fit_runs rs = {0};
    quickstart_runs(&rs, &law);
    assert_int_equal(rs.n, 16);
    qat_fit_problem p;
    qat_fit_result r;
    assert_int_equal(qat_fit_problem_init(&p, QAT_LAW_UNIFIED, &rs), QAT_OK);
    assert_int_equal(qat_fit_problem_fix(&p, "E", 0.8), QAT_OK);
    assert_int_equal(qat_fit_identify(&p, NULL), QAT_OK); /* holds quant_L: two GMSE values */
    qat_fit_opts o = {.max_starts = 16};
    assert_int_equal(qat_fit_run_fit(&p, &o, &r), QAT_OK);
    qat_fit_report rep = {.runs = &rs, .p = &p, .r = &r};
    qat_fit_resolver res = {test_terms, test_bits};
    qat_fit_report_prepare(&rep, &res);
    char dir[] = "/tmp/qat_test_scaling_law_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char h5[128], svg[128];
    snprintf(h5, sizeof h5, "%s/fit.h5", dir);
    snprintf(svg, sizeof svg, "%s/law.svg", dir);
    assert_int_equal(qat_fit_h5_write(h5, &rep, NULL, 0), QAT_OK);
    qat_fit_h5 f;
    assert_int_equal(qat_fit_h5_read(h5, &f), QAT_OK);

    /* The curves: one per (pair, D), each through the fit at its runs' own (N, D). */
    qat_plot_law_layout lay;
    qat_plot_law_layout_make(&f, &lay);
    assert_int_equal(lay.n, 5);          /* fp32 at three budgets, int4 and int2 at one */
    assert_int_equal(lay.n_budgets, 3);
    assert_true(fabs(lay.budget[0] / 3.5e6 - 1) < 1e-12 && !lay.budget_by_ratio[0]); /* largest first: the solid one */
    for (int i = 0; i < f.n_runs; i++) {
        const qat_plot_law_group *g = &lay.g[lay.group_of[i]];
        char key[160];
        snprintf(key, sizeof key, "%s/%s", f.wfmt[i], f.afmt[i]);
        assert_string_equal(f.pairs.name[g->pair], key);
        assert_true(g->exact && !g->by_ratio && fabs(g->value / f.D[i] - 1) < 0.01);
        double c = qat_plot_law_curve(&f, g, f.N[i]);
        /* the curve at the run's N is the fit at the run, so the run is off it by its residual */
        assert_true(fabs(c / f.pred[i] - 1) < 1e-9);
        assert_true(fabs(log(f.loss[i] / c)) <= fabs(r.resid[i]) + 1e-9);
    }
    qat_plot_law_layout_free(&lay);

    assert_int_equal(qat_fit_plot(&f, h5, QAT_PLOT_LAW, svg, NULL), QAT_OK);
    char *t = slurp(svg);
    assert_true(well_formed(t));
    check_ticks_on_curves(t, f.n_runs, 440);
    assert_int_equal(count(t, "class=\"run\""), 2 * f.n_runs);  /* upper panel and residual panel */
    assert_int_equal(count(t, "class=\"resid\""), 2 * f.n_runs);
    assert_int_equal(count(t, "<polyline class=\"fit\""), 5);
    assert_non_null(strstr(t, "run \xE2\x88\x92 fit (%)"));           /* the residual panel's axis */
    assert_non_null(strstr(t, "D = 3.5M tokens"));                    /* the budgets in the legend */
    assert_non_null(strstr(t, "D = 875k tokens"));
    assert_non_null(strstr(t, "lines: the fitted law"));
    assert_non_null(strstr(t, "markers: the runs"));
    assert_non_null(strstr(t, "quant_L = 1: held at the published"));   /* rule 3, named under the plot */
    assert_non_null(strstr(t, "E = 0.8: held by --fix"));
    free(t);
    /* held by rule 5: the caption marks the way each was flat, as its reason
     * says (it said "as good 1000 times larger or smaller" of a B whose note
     * said only larger was flat) */
    int kb = -1, kbeta = -1;
    for (int k = 0; k < f.n_params; k++) {
        if (!strcmp(f.param[k], "B")) kb = k;
        if (!strcmp(f.param[k], "beta")) kbeta = k;
    }
    assert_true(kb >= 0 && kbeta >= 0 && f.param_why);
    f.param_fixed[kb] = f.param_fixed[kbeta] = QAT_FIT_BY_RULE;
    snprintf(f.param_why[kb], sizeof f.param_why[kb], "not identified, held at its fitted value: B = 4507 ran toward "
             "its bound +inf: the fit is as good (within the runs' noise) with B held at 4.507e+06, 1000 times larger");
    snprintf(f.param_why[kbeta], sizeof f.param_why[kbeta], "not identified, held at its fitted value: beta = 0.3 is "
             "not determined either: it moved along with B, which is not identified");
    assert_int_equal(qat_fit_plot(&f, h5, QAT_PLOT_LAW, svg, NULL), QAT_OK);
    t = slurp(svg);
    assert_non_null(strstr(t, " (toward +inf)"));
    assert_non_null(strstr(t, " (moves with B)"));
    assert_non_null(strstr(t, "held 1000 times further the way marked"));
    assert_null(strstr(t, "larger or smaller"));
    free(t);
    /* budgets past a billion keep a unit that reads: "D = 3.5e+19 tokens", not
     * "D = 3.5e+10B tokens" */
    for (int i = 0; i < f.n_runs; i++) f.D[i] *= 1e13;
    assert_int_equal(qat_fit_plot(&f, h5, QAT_PLOT_LAW, svg, NULL), QAT_OK);
    t = slurp(svg);
    assert_non_null(strstr(t, "D = 3.5e+19 tokens"));
    assert_null(strstr(t, "e+10B"));
    free(t);
    for (int i = 0; i < f.n_runs; i++) f.D[i] *= 1e-6;
    assert_int_equal(qat_fit_plot(&f, h5, QAT_PLOT_LAW, svg, NULL), QAT_OK);
    t = slurp(svg);
    assert_non_null(strstr(t, "D = 35T tokens"));
    free(t);
    for (int i = 0; i < f.n_runs; i++) f.D[i] *= 1e-7;
    /* a note long enough to wrap: its comma ends the line, no line starts with ", " */
    for (int k = 0; k < f.n_params; k++) f.param_fixed[k] = QAT_FIT_BY_USER;
    assert_int_equal(qat_fit_plot(&f, h5, QAT_PLOT_LAW, svg, NULL), QAT_OK);
    t = slurp(svg);
    assert_non_null(strstr(t, "\xC2\xA0\xC2\xA0\xC2\xA0"));    /* it wrapped */
    assert_null(strstr(t, "\xC2\xA0\xC2\xA0\xC2\xA0,"));
    assert_null(strstr(t, "\xC2\xA0\xC2\xA0\xC2\xA0 ,"));
    assert_non_null(strstr(t, ",</text>"));
    free(t);
    qat_fit_h5_free(&f);

    /* A FIT.h5 written before /params had fixed and fixed_reason (or /params at
     * all) still plots, without the note. */
    hid_t h = H5Fopen(h5, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(h >= 0);
    assert_true(H5Ldelete(h, "/params/fixed_reason", H5P_DEFAULT) >= 0);
    assert_true(H5Ldelete(h, "/params/fixed", H5P_DEFAULT) >= 0);
    H5Fclose(h);
    assert_int_equal(qat_fit_h5_read(h5, &f), QAT_OK);
    assert_int_equal(f.param_fixed[0], 0);
    assert_int_equal(qat_fit_plot(&f, h5, QAT_PLOT_LAW, svg, NULL), QAT_OK);
    t = slurp(svg);
    assert_null(strstr(t, "Held, not fitted"));
    check_ticks_on_curves(t, f.n_runs, 440);
    free(t);
    qat_fit_h5_free(&f);
    h = H5Fopen(h5, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(H5Ldelete(h, "/params", H5P_DEFAULT) >= 0);
    H5Fclose(h);
    assert_int_equal(qat_fit_h5_read(h5, &f), QAT_OK);
    assert_int_equal(f.n_params, 0);
    assert_int_equal(qat_fit_plot(&f, h5, QAT_PLOT_LAW, svg, NULL), QAT_OK);
    qat_fit_h5_free(&f);
    /* a truncated FIT.h5 is damage (exit 1), as a run log or a checkpoint cut short
     * is, and says how much is missing (it was exit 2, "HDF5 could not read its
     * superblock (a truncated or foreign HDF5 file)") */
    struct stat st;
    assert_int_equal(stat(h5, &st), 0);
    char whole[64];
    snprintf(whole, sizeof whole, "600 bytes of the %lld its superblock records", (long long)st.st_size);
    assert_int_equal(truncate(h5, 600), 0);
    assert_int_equal(qat_fit_h5_read(h5, &f), QAT_ERUNTIME);
    assert_non_null(strstr(qat_errmsg(), "fit.h5: truncated: "));
    assert_non_null(strstr(qat_errmsg(), whole));

    qat_fit_report_free(&rep);
    qat_fit_result_free(&r);
    qat_fit_problem_free(&p);
    qat_fit_runs_free(&rs);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* A quartet fit over two forward pairs × two backward schemes at two budgets:
 * each W/A/G key gets its own curve per budget, at its own effN and effD, so
 * that every run's tick ends on its curve (the curves were at effD = 1, and
 * runs with a quantized backward sat on none). */
static void test_quartet_law_curves(void **s) {
    (void)s;
    static const double N[] = {2e5, 6e5, 2e6, 6e6}, R[] = {20, 80};
    static const struct { const char *w, *g; double effn, effd; } K[] = {
        {"fp32", "fp32", 1, 1}, {"int4", "fp32", 0.6, 1}, {"fp32", "int4@sr", 1, 0.5}, {"int4", "int4@sr", 0.6, 0.5}};
    qat_fit_runs rs = {0};
    uint64_t z = 7;
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < 4; i++)
            for (int b = 0; b < 2; b++) {
                qat_fit_run r = {.N = N[i], .D = N[i] * R[b], .n_terms = -1};
                z = z * 6364136223846793005ULL + 1442695040888963407ULL; /* a little deterministic noise */
                double eps = 0.004 * ((double)(z >> 11) / 9007199254740992.0 - 0.5);
                r.loss = (pow(170 * pow(r.N * K[k].effn, -0.32) + 1100 * pow(r.D * K[k].effd, -0.36), 0.8) + 1.38) *
                         exp(eps);
                snprintf(r.wfmt, sizeof r.wfmt, "%s", K[k].w);
                snprintf(r.afmt, sizeof r.afmt, "%s", K[k].w);
                snprintf(r.gfmt, sizeof r.gfmt, "%s", K[k].g);
                snprintf(r.origin, sizeof r.origin, "synthetic:%d", rs.n + 1);
                qat_fit_runs_push(&rs, &r);
            }
    qat_fit_problem p;
    qat_fit_result r;
    assert_int_equal(qat_fit_problem_init(&p, QAT_LAW_QUARTET, &rs), QAT_OK);
    assert_int_equal(qat_fit_identify(&p, NULL), QAT_OK);
    qat_fit_opts o = {.max_starts = 16};
    assert_int_equal(qat_fit_run_fit(&p, &o, &r), QAT_OK);
    qat_fit_report rep = {.runs = &rs, .p = &p, .r = &r};
    qat_fit_resolver res = {test_terms, test_bits};
    qat_fit_report_prepare(&rep, &res);
    char dir[] = "/tmp/qat_test_scaling_quartet_plot_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char h5[128], svg[128];
    snprintf(h5, sizeof h5, "%s/fit.h5", dir);
    snprintf(svg, sizeof svg, "%s/law.svg", dir);
    assert_int_equal(qat_fit_h5_write(h5, &rep, NULL, 0), QAT_OK);
    qat_fit_h5 f;
    assert_int_equal(qat_fit_h5_read(h5, &f), QAT_OK);
    qat_plot_law_layout lay;
    qat_plot_law_layout_make(&f, &lay);
    assert_int_equal(lay.n_bwd, 2);
    assert_int_equal(lay.n, 4 * 2); /* four W/A/G keys, two budgets (D/N 20 and 80) */
    for (int i = 0; i < f.n_runs; i++) {
        const qat_plot_law_group *g = &lay.g[lay.group_of[i]];
        assert_string_equal(f.gfmt[i], rs.run[i].gfmt);
        assert_true(fabs(qat_plot_law_curve(&f, g, f.N[i]) / f.pred[i] - 1) < 1e-9);
    }
    qat_plot_law_layout_free(&lay);
    assert_int_equal(qat_fit_plot(&f, h5, QAT_PLOT_LAW, svg, NULL), QAT_OK);
    char *t = slurp(svg);
    check_common(t, 2);
    check_ticks_on_curves(t, f.n_runs, 440);
    assert_int_equal(count(t, "<polyline class=\"fit\""), 8);
    assert_non_null(strstr(t, "data-name=\"int4/int4/int4@sr\""));
    assert_non_null(strstr(t, ">int4/int4/int4@sr (effN "));
    assert_non_null(strstr(t, "effD)^-"));                /* the quartet law's form, not the unified one */
    assert_null(strstr(t, "\xCF\x81)^-"));
    free(t);
    /* the capacity and frontier plots have nothing to show of a quartet fit */
    assert_int_equal(qat_fit_plot(&f, h5, QAT_PLOT_CAPACITY, svg, NULL), QAT_EINPUT);
    assert_non_null(strstr(qat_errmsg(), "needs a capacity law"));
    assert_int_equal(qat_fit_plot(&f, h5, QAT_PLOT_FRONTIER, svg, NULL), QAT_EINPUT);
    qat_fit_h5_free(&f);
    qat_fit_report_free(&rep);
    qat_fit_result_free(&r);
    qat_fit_problem_free(&p);
    qat_fit_runs_free(&rs);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* Whatever reaches the SVG writer, it writes no NaN or inf coordinate: an
 * infinite axis range is replaced and noted, a point at 1e308 on it left out
 * and counted. */
static void test_svg_never_nonfinite(void **s) {
    (void)s;
    char dir[] = "/tmp/qat_test_svg_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/x.svg", dir);
    qat_svg g;
    assert_int_equal(qat_svg_begin(&g, path, NULL, 600, 400, "t", NULL), QAT_OK);
    double lo = 1, hi = 1e308;
    qat_svg_pad_range(&lo, &hi, 1); /* hi becomes inf */
    qat_svg_axes(&g, 1e6, 1e8, 1, lo, hi, 1, "N", "loss", NULL, 0, NULL, 0);
    qat_svg_marker(&g, 1e7, 1e308, QAT_SVG_CIRCLE, "#000", 1, 3);
    double xs[2] = {1e6, 1e7}, ys[2] = {2, NAN};
    qat_svg_polyline(&g, 2, xs, ys, "#000", 1, 0);
    assert_int_equal(qat_svg_end(&g), QAT_OK);
    char *t = slurp(path);
    assert_true(well_formed(t));
    assert_null(strstr(t, "nan"));
    assert_null(strstr(t, "inf"));
    assert_non_null(strstr(t, "non-finite coordinate left out; an axis range was not finite"));
    free(t);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* IsoFLOP-like data (every run at its own D) is grouped by D/N when the runs
 * share few ratios, and binned otherwise: the curves stay few, and a binned
 * group says that its runs are near, not on, its curve. */
static void test_law_layout_many_budgets(void **s) {
    (void)s;
    const qat_fit_synth_law law = {250, 0.32, 900, 0.30, 1.7, {{1, 0.41, 1.39}, {1, 0.5, 1.2}, {1, 1, 1}}, 0, 1};
    const double N[] = {1e6, 2e6, 4e6, 8e6, 1.6e7, 3.2e7, 6.4e7, 1.28e8}, ratio[] = {20, 100};
    qat_fit_runs rs = {0};
    qat_fit_synth(&rs, &law, N, 8, ratio, 2, qat_fit_synth_pairs, 1);
    qat_fit_h5 f = {.n_runs = rs.n, .A = law.A, .alpha = law.alpha, .B = law.B, .beta = law.beta, .E = law.E};
    char name[1][2 * QAT_FIT_FMT_LEN + 2] = {"fp32/fp32"};
    char (*fmt)[QAT_FIT_FMT_LEN] = calloc((size_t)rs.n, sizeof *fmt);
    double *Nv = calloc((size_t)rs.n, sizeof *Nv), *Dv = calloc((size_t)rs.n, sizeof *Dv),
           *rho = calloc((size_t)rs.n, sizeof *rho);
    for (int i = 0; i < rs.n; i++) { Nv[i] = rs.run[i].N; Dv[i] = rs.run[i].D; rho[i] = 1; strcpy(fmt[i], "fp32"); }
    f.N = Nv; f.D = Dv; f.rho = rho; f.wfmt = fmt; f.afmt = fmt;
    f.pairs.n = 1; f.pairs.name = name;
    qat_plot_law_layout lay;
    qat_plot_law_layout_make(&f, &lay);
    assert_int_equal(lay.n, 2); /* more distinct D than D/N: by D/N */
    for (int g = 0; g < 2; g++) assert_true(lay.g[g].by_ratio && lay.g[g].exact);
    for (int i = 0; i < rs.n; i++)
        assert_true(fabs(qat_plot_law_curve(&f, &lay.g[lay.group_of[i]], Nv[i]) / rs.run[i].loss - 1) < 1e-12);
    qat_plot_law_layout_free(&lay);
    /* jitter every D so neither D nor D/N repeats: binned, at most QAT_PLOT_MAX_BUDGETS curves */
    for (int i = 0; i < rs.n; i++) Dv[i] *= 1 + 0.05 * i;
    qat_plot_law_layout_make(&f, &lay);
    assert_true(lay.n >= 2 && lay.n <= QAT_PLOT_MAX_BUDGETS);
    int inexact = 0;
    for (int g = 0; g < lay.n; g++) inexact += !lay.g[g].exact && !lay.g[g].by_ratio;
    assert_true(inexact > 0);
    qat_plot_law_layout_free(&lay);
    free(fmt); free(Nv); free(Dv); free(rho);
    qat_fit_runs_free(&rs);
}

/* Flip the first byte of `needle` in the file (and every later occurrence when
 * all); returns how many were changed. */
static int corrupt(const char *path, const char *needle, int all) {
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *b = malloc((size_t)n);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    int hits = 0;
    size_t m = strlen(needle);
    for (long i = 0; i + (long)m <= n; i++)
        if (!memcmp(b + i, needle, m) && (all || !hits)) {
            b[i] ^= 0x20; /* a letter's case: same length, still text */
            hits++;
        }
    rewind(f);
    assert_int_equal(fwrite(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    free(b);
    return hits;
}

/* The string columns of FIT.h5, made variable-length for the old layout. */
static const char *const fit_str_cols[] = {"/params/name", "/params/fixed_reason", "/runs/weight_format",
                                           "/runs/act_format", "/runs/grad_format", "/runs/origin", "/pairs/name",
                                           "/decoupled/name", "/quartet/key", "/formats/name", NULL};

static int same_mem(const void *a, const void *b, size_t n) { return n == 0 || (a && b && !memcmp(a, b, n)); }

static int pairs_same(const qat_fit_h5_pairs *a, const qat_fit_h5_pairs *b) {
    size_t n = (size_t)a->n;
    return a->n == b->n && same_mem(a->name, b->name, n * sizeof *a->name) &&
           same_mem(a->value, b->value, n * sizeof(double)) && same_mem(a->lo, b->lo, n * sizeof(double)) &&
           same_mem(a->hi, b->hi, n * sizeof(double)) && same_mem(a->gmse, b->gmse, n * sizeof(double)) &&
           same_mem(a->type, b->type, n * sizeof(int)) && same_mem(a->power, b->power, n * sizeof(int));
}

/* Everything qat plot reads of a FIT.h5, the same to the last bit. */
static int fit_same(const qat_fit_h5 *a, const qat_fit_h5 *b) {
    size_t n = (size_t)a->n_runs, m = (size_t)a->n_fmt, np = (size_t)a->n_params;
    return !strcmp(a->law, b->law) && a->n_runs == b->n_runs && a->n_fmt == b->n_fmt && a->n_params == b->n_params &&
           same_mem(&a->A, &b->A, sizeof(double)) && same_mem(&a->alpha, &b->alpha, sizeof(double)) &&
           same_mem(&a->B, &b->B, sizeof(double)) && same_mem(&a->beta, &b->beta, sizeof(double)) &&
           same_mem(&a->E, &b->E, sizeof(double)) && same_mem(&a->gamma, &b->gamma, sizeof(double)) &&
           same_mem(&a->rmse_log, &b->rmse_log, sizeof(double)) && same_mem(a->has_cap, b->has_cap, sizeof a->has_cap) &&
           same_mem(a->cap, b->cap, sizeof a->cap) && same_mem(a->N, b->N, n * sizeof(double)) &&
           same_mem(a->D, b->D, n * sizeof(double)) && same_mem(a->loss, b->loss, n * sizeof(double)) &&
           same_mem(a->pred, b->pred, n * sizeof(double)) && same_mem(a->rho, b->rho, n * sizeof(double)) &&
           same_mem(a->wfmt, b->wfmt, n * sizeof *a->wfmt) && same_mem(a->afmt, b->afmt, n * sizeof *a->afmt) &&
           pairs_same(&a->pairs, &b->pairs) && pairs_same(&a->dec, &b->dec) &&
           same_mem(a->fmt, b->fmt, m * sizeof *a->fmt) && same_mem(a->fmt_bits, b->fmt_bits, m * sizeof(double)) &&
           same_mem(a->fmt_rho, b->fmt_rho, m * sizeof(double)) &&
           same_mem(a->fmt_in_data, b->fmt_in_data, m * sizeof(int)) &&
           same_mem(a->param, b->param, np * sizeof *a->param) &&
           same_mem(a->param_value, b->param_value, np * sizeof(double)) &&
           same_mem(a->param_fixed, b->param_fixed, np * sizeof(int)) &&
           same_mem(a->param_why, b->param_why, np * sizeof *a->param_why) &&
           same_mem(a->gfmt, b->gfmt, n * sizeof *a->gfmt) && same_mem(a->effd, b->effd, n * sizeof(double));
}

static int fit_fuzz_read(const char *path, void *ctx) {
    qat_fit_h5 f;
    int rc = qat_fit_h5_read(path, &f);
    if (rc) return rc;
    int r = fit_same(&f, ctx) ? H5FUZZ_SAME : H5FUZZ_WRONG;
    qat_fit_h5_free(&f);
    return r;
}

/* A unified fit with its decoupled companion, a constant held by rule with
 * its reason (as rules 3 and 5 store them), written to `h5`. */
static void write_unified_fit(const char *h5, const char *why) {
    const qat_fit_synth_law law = {250, 0.32, 900, 0.30, 1.7, {{1, 0.41, 1.39}, {1, 0.5, 1.2}, {1, 1, 1}}, 0.004, 5};
    const double N[] = {1e6, 1e7, 1e8}, ratio[] = {20, 100};
    qat_fit_runs rs = {0};
    qat_fit_synth(&rs, &law, N, 3, ratio, 2, qat_fit_synth_pairs, qat_fit_synth_npairs);
    qat_fit_problem p, dp;
    qat_fit_result r, dr;
    assert_int_equal(qat_fit_problem_init(&p, QAT_LAW_UNIFIED, &rs), QAT_OK);
    int held = p.type_off[QAT_CAP_QUANT];
    assert_true(held >= 0);
    p.fixed[held] = QAT_FIT_BY_RULE;
    p.fixval[held] = 0.0;
    snprintf(p.why[held], sizeof p.why[held], "%s", why);
    qat_fit_opts o = {.max_starts = 16};
    assert_int_equal(qat_fit_run_fit(&p, &o, &r), QAT_OK);
    assert_int_equal(qat_fit_problem_init(&dp, QAT_LAW_DECOUPLED, &rs), QAT_OK);
    assert_int_equal(qat_fit_run_fit(&dp, &o, &dr), QAT_OK);
    qat_fit_resolver res = {test_terms, test_bits};
    qat_fit_report rep = {.runs = &rs, .p = &p, .r = &r, .dp = &dp, .dr = &dr};
    qat_fit_report_prepare(&rep, &res);
    assert_int_equal(qat_fit_h5_write(h5, &rep, NULL, 0), QAT_OK);
    qat_fit_report_free(&rep);
    qat_fit_result_free(&r);
    qat_fit_result_free(&dr);
    qat_fit_problem_free(&p);
    qat_fit_problem_free(&dp);
    qat_fit_runs_free(&rs);
}

/* A quartet fit: two forward pairs × two backward schemes, 16 runs. */
static void write_quartet_fit(const char *h5) {
    static const double N[] = {2e5, 2e6}, R[] = {20, 80};
    static const struct { const char *w, *g; double effn, effd; } K[] = {
        {"fp32", "fp32", 1, 1}, {"int4", "fp32", 0.6, 1}, {"fp32", "int4@sr", 1, 0.5}, {"int4", "int4@sr", 0.6, 0.5}};
    qat_fit_runs rs = {0};
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < 2; i++)
            for (int b = 0; b < 2; b++) {
                qat_fit_run r = {.N = N[i], .D = N[i] * R[b], .n_terms = -1};
                r.loss = pow(170 * pow(r.N * K[k].effn, -0.32) + 1100 * pow(r.D * K[k].effd, -0.36), 0.8) + 1.38;
                snprintf(r.wfmt, sizeof r.wfmt, "%s", K[k].w);
                snprintf(r.afmt, sizeof r.afmt, "%s", K[k].w);
                snprintf(r.gfmt, sizeof r.gfmt, "%s", K[k].g);
                snprintf(r.origin, sizeof r.origin, "synthetic:%d", rs.n + 1);
                qat_fit_runs_push(&rs, &r);
            }
    qat_fit_problem p;
    qat_fit_result r;
    assert_int_equal(qat_fit_problem_init(&p, QAT_LAW_QUARTET, &rs), QAT_OK);
    qat_fit_opts o = {.max_starts = 4};
    assert_int_equal(qat_fit_run_fit(&p, &o, &r), QAT_OK);
    qat_fit_report rep = {.runs = &rs, .p = &p, .r = &r};
    qat_fit_resolver res = {test_terms, test_bits};
    qat_fit_report_prepare(&rep, &res);
    assert_int_equal(qat_fit_h5_write(h5, &rep, NULL, 0), QAT_OK);
    qat_fit_report_free(&rep);
    qat_fit_result_free(&r);
    qat_fit_problem_free(&p);
    qat_fit_runs_free(&rs);
}

/* Strings once sat in HDF5's global heap, which has no checksum: a FIT.h5
 * whose held-constant notes were damaged plotted with exit 0 and the "held"
 * notes silently gone. Now they are fixed-length columns, chunked with the
 * fletcher32 checksum like the number columns; a FIT.h5 in the old layout
 * (variable-length) still reads, its strings checked against their CRC-32 when
 * it has them, and read as they are when written before the CRCs. */
static void test_strings_checksummed(void **s) {
    (void)s;
    char dir[] = "/tmp/qat_test_scaling_crc_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char h5[128], old[128];
    snprintf(h5, sizeof h5, "%s/fit.h5", dir);
    snprintf(old, sizeof old, "%s/old.h5", dir);
    /* the reason's own words, found in the file and damaged there */
    const char *needle = "a reason to be damaged";
    write_unified_fit(h5, "not identified, held at its fitted value: a reason to be damaged");
    qat_fit_h5 want, f;
    assert_int_equal(qat_fit_h5_read(h5, &want), QAT_OK);
    assert_int_equal(h5fuzz_find_gcol(h5, (size_t[1]){0}, (size_t[1]){0}, 1), 0); /* no global heap at all */
    hid_t fh = H5Fopen(h5, H5F_ACC_RDONLY, H5P_DEFAULT), d = H5Dopen2(fh, "params/fixed_reason", H5P_DEFAULT);
    hid_t t = H5Dget_type(d), dcpl = H5Dget_create_plist(d);
    assert_true(H5Tis_variable_str(t) == 0 && H5Pget_nfilters(dcpl) == 1); /* fixed-length, fletcher32 */
    H5Pclose(dcpl);
    H5Tclose(t);
    H5Dclose(d);
    H5Fclose(fh);
    for (int layout = 0; layout < 3; layout++) { /* new; old with CRCs; old from before the CRCs */
        const char *path = old;
        if (!layout) h5fuzz_copy(h5, old);
        else {
            h5fuzz_write_old(h5, old, layout == 1, fit_str_cols);
            assert_int_equal(qat_fit_h5_read(old, &f), QAT_OK);
            assert_true(fit_same(&f, &want));
            qat_fit_h5_free(&f);
        }
        assert_true(corrupt(path, needle, 1) >= 1);
        int rc = qat_fit_h5_read(path, &f);
        printf("  %s: %s\n", layout == 0 ? "fixed-length" : layout == 1 ? "heap strings with CRCs" : "heap strings without",
               rc ? qat_errmsg() : "read");
        if (layout == 2) {
            assert_int_equal(rc, QAT_OK); /* read as it is, as run.h5's config without its CRC */
            assert_false(fit_same(&f, &want));
            qat_fit_h5_free(&f);
        } else {
            assert_int_equal(rc, QAT_ERUNTIME);
            assert_non_null(strstr(qat_errmsg(), "dataset /params/fixed_reason: checksum mismatch (the file is damaged)"));
        }
    }
    /* the law attribute of the old layout: its characters are in the heap too */
    h5fuzz_write_old(h5, old, 1, fit_str_cols);
    fh = H5Fopen(old, H5F_ACC_RDWR, H5P_DEFAULT);
    t = h5fuzz_vlen_type();
    hid_t a = H5Aopen(fh, "law", H5P_DEFAULT);
    const char *other = "qat-law-crc-probe"; /* a string found once in the file */
    assert_true(H5Awrite(a, t, &other) >= 0);
    H5Aclose(a);
    H5Tclose(t);
    H5Fclose(fh);
    assert_int_equal(corrupt(old, "qat-law-crc-probe", 0), 1);
    assert_int_equal(qat_fit_h5_read(old, &f), QAT_ERUNTIME);
    assert_non_null(strstr(qat_errmsg(), "attribute law: checksum mismatch"));
    qat_fit_h5_free(&want);
    unlink(h5);
    unlink(old);
    rmdir(dir);
}

/* One damaged byte of a FIT.h5 reads as the same fit or as an error naming the
 * file, never as another fit, a crash or a hang: every other byte of a unified
 * fit (with its decoupled companion and a held constant) and of a quartet fit. Heap
 * strings crashed HDF5 (19 of 425 flips of one file) or hung it; in the old
 * layout the bytes of its first heap collection are flipped too. */
static void test_damaged_bytes(void **s) {
    (void)s;
    char dir[] = "/tmp/qat_test_scaling_fuzz_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char h5[128], dst[128], old[128];
    snprintf(h5, sizeof h5, "%s/fit.h5", dir);
    snprintf(dst, sizeof dst, "%s/damaged.h5", dir);
    snprintf(old, sizeof old, "%s/old.h5", dir);
    for (int kind = 0; kind < 2; kind++) {
        if (kind == 0) write_unified_fit(h5, "not identified, held at its fitted value");
        else write_quartet_fit(h5);
        qat_fit_h5 want;
        assert_int_equal(qat_fit_h5_read(h5, &want), QAT_OK);
        h5fuzz_counts c;
        /* every other byte, to keep the test short: the unified fit's even
         * offsets, the quartet fit's odd ones */
        h5fuzz_run(h5, dst, (size_t)kind, SIZE_MAX, 2, 0, NULL, NULL, 0, 1, fit_fuzz_read, &want, &c);
        h5fuzz_print(kind ? "quartet FIT.h5" : "unified FIT.h5", &c);
        assert_int_equal(c.wrong, 0);
        assert_int_equal(c.crashed, 0);
        assert_int_equal(c.bad_message, 0);
        assert_true(c.damaged > 0 && c.same > 0);

        /* the old layout: its first heap collection, objects and free space
         * (a crash or a hang fails the test; the heap is checked before HDF5
         * reads it, so there is none) */
        h5fuzz_write_old(h5, old, 1, fit_str_cols);
        size_t at[4], size[4];
        assert_true(h5fuzz_find_gcol(old, at, size, 4) >= 1);
        const size_t sf[1] = {at[0] + 1024}, st[1] = {at[0] + size[0]};
        h5fuzz_run(old, dst, at[0], at[0] + size[0], 1, 0, sf, st, 1, 64, fit_fuzz_read, &want, &c);
        h5fuzz_print("  in the old layout, its global heap", &c);
        assert_int_equal(c.crashed, 0);
        assert_int_equal(c.bad_message, 0);
        assert_int_equal(c.wrong, 0); /* every string of a FIT.h5 had its CRC */
        qat_fit_h5_free(&want);
    }
    unlink(h5);
    unlink(dst);
    unlink(old);
    rmdir(dir);
}

/* An older FIT.h5 lacks some tables (/params, its fixed and fixed_reason
 * columns, /runs/grad_format, /quartet): absent, they read as defaults. A
 * table that is there but cannot be read is damage, never absence: a
 * /params/fixed whose header failed its checksum once read as "every
 * parameter is fitted (none held)" with exit 0. */
static void test_absent_is_not_damaged(void **s) {
    (void)s;
    char dir[] = "/tmp/qat_test_scaling_absent_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char h5[128], dst[128];
    snprintf(h5, sizeof h5, "%s/fit.h5", dir);
    snprintf(dst, sizeof dst, "%s/damaged.h5", dir);
    const char *optional[] = {"/params/name", "/params/value", "/params/fixed", "/params/fixed_reason",
                              "/runs/grad_format", "/pairs/name", "/decoupled/name", "/formats/name",
                              "/quartet/key", "/quartet/eff_d", NULL};
    qat_fit_h5 f;
    for (int kind = 0; kind < 2; kind++) {
        if (kind == 0) write_unified_fit(h5, "not identified, held at its fitted value");
        else write_quartet_fit(h5);
        for (int i = 0; optional[i]; i++) {
            hid_t fh = H5Fopen(h5, H5F_ACC_RDONLY, H5P_DEFAULT);
            char grp[64];
            snprintf(grp, sizeof grp, "%.*s", (int)(strrchr(optional[i], '/') - optional[i]), optional[i]);
            if (H5Lexists(fh, grp, H5P_DEFAULT) <= 0 || H5Lexists(fh, optional[i], H5P_DEFAULT) <= 0) {
                H5Fclose(fh);
                continue;
            }
            H5O_info_t oi;
            assert_true(H5Oget_info_by_name(fh, optional[i], &oi, H5P_DEFAULT) >= 0);
            H5Fclose(fh);
            /* one byte of the table's object header, past its signature */
            h5fuzz_copy(h5, dst);
            FILE *fp = fopen(dst, "r+b");
            assert_non_null(fp);
            unsigned char b;
            assert_int_equal(fseek(fp, (long)oi.addr + 12, SEEK_SET), 0);
            assert_int_equal(fread(&b, 1, 1, fp), 1);
            b ^= 0x5a;
            assert_int_equal(fseek(fp, (long)oi.addr + 12, SEEK_SET), 0);
            assert_int_equal(fwrite(&b, 1, 1, fp), 1);
            fclose(fp);
            assert_int_equal(qat_fit_h5_read(dst, &f), QAT_ERUNTIME);
            char want[160];
            snprintf(want, sizeof want, "dataset %s: checksum mismatch (the file is damaged)", optional[i]);
            if (!strstr(qat_errmsg(), want)) fail_msg("%s damaged: %s", optional[i], qat_errmsg());
        }
    }
    /* absent, the same tables read as an older file's defaults */
    write_unified_fit(h5, "not identified, held at its fitted value");
    hid_t fh = H5Fopen(h5, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(H5Ldelete(fh, "params/fixed", H5P_DEFAULT) >= 0);
    assert_true(H5Ldelete(fh, "params/fixed_reason", H5P_DEFAULT) >= 0);
    assert_true(H5Ldelete(fh, "runs/grad_format", H5P_DEFAULT) >= 0);
    H5Fclose(fh);
    assert_int_equal(qat_fit_h5_read(h5, &f), QAT_OK);
    for (int k = 0; k < f.n_params; k++) assert_true(f.param_fixed[k] == 0 && !f.param_why[k][0]);
    for (int i = 0; i < f.n_runs; i++) assert_string_equal(f.gfmt[i], "fp32");
    qat_fit_h5_free(&f);
    fh = H5Fopen(h5, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(H5Ldelete(fh, "params", H5P_DEFAULT) >= 0);
    H5Fclose(fh);
    assert_int_equal(qat_fit_h5_read(h5, &f), QAT_OK);
    assert_int_equal(f.n_params, 0);
    qat_fit_h5_free(&f);
    unlink(h5);
    unlink(dst);
    rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_plots), cmocka_unit_test(test_law_curves_through_runs),
                                       cmocka_unit_test(test_law_layout_many_budgets),
                                       cmocka_unit_test(test_quartet_law_curves),
                                       cmocka_unit_test(test_svg_never_nonfinite),
                                       cmocka_unit_test(test_strings_checksummed),
                                       cmocka_unit_test(test_damaged_bytes),
                                       cmocka_unit_test(test_absent_is_not_damaged)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}

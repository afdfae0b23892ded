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
#include <cmocka.h>

#include "core/error.h"
#include "scaling/fit.h"
#include "scaling/fit_h5.h"
#include "scaling/plot.h"
#include "scaling/report.h"
#include "scaling/synth.h"

static int test_bits(const char *fmt, double *bits) {
    if (!strncmp(fmt, "int", 3)) { *bits = atof(fmt + 3); return 0; }
    if (!strcmp(fmt, "fp32")) { *bits = 32; return 0; }
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

static void check_common(const char *svg) {
    assert_true(well_formed(svg));
    assert_non_null(strstr(svg, "xmlns=\"http://www.w3.org/2000/svg\""));
    assert_non_null(strstr(svg, "class=\"title\""));
    assert_non_null(strstr(svg, "class=\"axis x\""));
    assert_non_null(strstr(svg, "class=\"axis y\""));
    assert_true(count(svg, "class=\"tick\"") >= 6);
    assert_true(count(svg, "class=\"label\"") == 2);
    assert_non_null(strstr(svg, "class=\"legend\""));
    assert_true(strstr(svg, "nan") == NULL && strstr(svg, "inf\"") == NULL);
}

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

    /* law: one series per format pair */
    snprintf(svg, sizeof svg, "%s/law.svg", dir);
    assert_int_equal(qat_fit_plot(&f, h5, QAT_PLOT_LAW, svg, NULL), QAT_OK);
    char *t = slurp(svg);
    check_common(t);
    assert_int_equal(count(t, "class=\"series\""), qat_fit_synth_npairs);
    for (int k = 0; k < f.pairs.n; k++) {
        char key[160];
        snprintf(key, sizeof key, "data-name=\"%s\"", f.pairs.name[k]);
        assert_int_equal(count(t, key), 1);
    }
    free(t);
    /* capacity: a curve per fitted type plus the published reference, points of the decoupled fit */
    snprintf(svg, sizeof svg, "%s/capacity.svg", dir);
    assert_int_equal(qat_fit_plot(&f, h5, QAT_PLOT_CAPACITY, svg, NULL), QAT_OK);
    t = slurp(svg);
    check_common(t);
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
    free(t);
    t = slurp(svg);
    check_common(t);
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

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_plots)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * scaling/plot.c — the figures of a fit (issue 4):
 *   law       loss against N per format pair, observed runs as markers and the
 *             fitted law as lines (log–log), with a residual panel below. A
 *             curve L(N) must hold D fixed, and it passes through a run's point
 *             only at that run's own D: so each pair gets one curve per token
 *             budget among its runs (issue 20: one curve per pair at a mean D/N
 *             went through none of them), its runs marked in the pair's colour
 *             and the budget's marker, each with a tick from the point to the
 *             fit at its own (N, D). Held constants are named under the plot.
 *   capacity  ρ against GMSE: the fitted tanh curve per compression type, the
 *             published Llama/C4 curve for reference, and the free effs of the
 *             decoupled law as points (a pair of k equal terms at eff^(1/k)).
 *   frontier  capacity per bit against bits per parameter for every format the
 *             fit can price, with the best format under each bit budget named.
 */
#include "scaling/plot.h"

#include <math.h>
#include <string.h>

#include "core/error.h"
#include "scaling/svg.h"

int qat_plot_kind_parse(const char *s, qat_plot_kind *k) {
    if (!strcmp(s, "law")) *k = QAT_PLOT_LAW;
    else if (!strcmp(s, "capacity")) *k = QAT_PLOT_CAPACITY;
    else if (!strcmp(s, "frontier")) *k = QAT_PLOT_FRONTIER;
    else return qat_fail(QAT_EINPUT, "--kind %s: unknown plot, expected law, capacity or frontier", s);
    return QAT_OK;
}

#define W 940
#define H 540
#define NCURVE 120

/* ---- law ------------------------------------------------------------- */

/* Two budgets (or N values) within 1 % are one: a run's tokens may differ
 * from its budget by part of a batch. */
static int same(double a, double b) { return fabs(log(a / b)) < 0.01; }

static int pair_index(const qat_fit_h5 *f, int i) {
    char key[2 * QAT_FIT_FMT_LEN + 2];
    snprintf(key, sizeof key, "%s/%s", f->wfmt[i], f->afmt[i]);
    for (int k = 0; k < f->pairs.n; k++)
        if (!strcmp(f->pairs.name[k], key)) return k;
    return -1;
}

/* Run i's backward scheme key (a qat_fit_h5 filled by hand may have none). */
static const char *gkey(const qat_fit_h5 *f, int i) { return f->gfmt && f->gfmt[i][0] ? f->gfmt[i] : "fp32"; }

/* Distinct values (within 1 %) among v[idx[0..m)]. */
static int n_distinct(const double *v, const int *idx, int m) {
    int d = 0;
    for (int a = 0; a < m; a++) {
        int seen = 0;
        for (int b = 0; b < a && !seen; b++) seen = same(v[idx[a]], v[idx[b]]);
        d += !seen;
    }
    return d;
}

void qat_plot_law_layout_make(const qat_fit_h5 *f, qat_plot_law_layout *lay) {
    int n = f->n_runs, m1 = n ? n : 1;
    memset(lay, 0, sizeof *lay);
    lay->g = qat_xcalloc((size_t)m1, sizeof *lay->g);
    lay->group_of = qat_xmalloc((size_t)m1 * sizeof *lay->group_of);
    lay->budget = qat_xmalloc((size_t)m1 * sizeof *lay->budget);
    lay->budget_by_ratio = qat_xmalloc((size_t)m1 * sizeof *lay->budget_by_ratio);
    int *pair_of = qat_xmalloc((size_t)m1 * sizeof *pair_of), *idx = qat_xmalloc((size_t)m1 * sizeof *idx);
    double *ratio = qat_xmalloc((size_t)m1 * sizeof *ratio);
    for (int i = 0; i < n; i++) { pair_of[i] = pair_index(f, i); ratio[i] = f->D[i] / f->N[i]; }
    /* backward schemes, sorted by name: a quartet fit's curve is per W/A/G key
     * (each at its own effN and effD), so runs of one pair with different
     * backward schemes never share a curve */
    int *bwd_of = qat_xmalloc((size_t)m1 * sizeof *bwd_of);
    lay->bwd_run = qat_xmalloc((size_t)m1 * sizeof *lay->bwd_run);
    for (int i = 0; i < n; i++) {
        int j = 0;
        while (j < lay->n_bwd && strcmp(gkey(f, lay->bwd_run[j]), gkey(f, i))) j++;
        if (j == lay->n_bwd) {
            int at = lay->n_bwd++;
            while (at > 0 && strcmp(gkey(f, lay->bwd_run[at - 1]), gkey(f, i)) > 0) {
                lay->bwd_run[at] = lay->bwd_run[at - 1];
                at--;
            }
            lay->bwd_run[at] = i;
        }
    }
    for (int i = 0; i < n; i++) {
        bwd_of[i] = 0;
        while (strcmp(gkey(f, lay->bwd_run[bwd_of[i]]), gkey(f, i))) bwd_of[i]++;
    }
    for (int kk = -1; kk < f->pairs.n * lay->n_bwd; kk++) {
        int k = kk < 0 ? -1 : kk / lay->n_bwd, jb = kk < 0 ? -1 : kk % lay->n_bwd;
        int m = 0;
        for (int i = 0; i < n; i++)
            if (pair_of[i] == k && (k < 0 || bwd_of[i] == jb)) idx[m++] = i;
        if (!m) continue;
        int first = lay->n;
        int nd = n_distinct(f->D, idx, m), nr = n_distinct(ratio, idx, m);
        int by_ratio = nr < nd && nr <= QAT_PLOT_MAX_BUDGETS; /* fewer curves; D on a tie */
        int binned = nd > QAT_PLOT_MAX_BUDGETS && !by_ratio;
        const double *v = by_ratio ? ratio : f->D;
        double lo = INFINITY, hi = -INFINITY;
        for (int a = 0; a < m; a++) { lo = fmin(lo, log(f->D[idx[a]])); hi = fmax(hi, log(f->D[idx[a]])); }
        int bin_group[QAT_PLOT_MAX_BUDGETS];
        double bin_sum[QAT_PLOT_MAX_BUDGETS] = {0};
        for (int b = 0; b < QAT_PLOT_MAX_BUDGETS; b++) bin_group[b] = -1;
        for (int a = 0; a < m; a++) {
            int i = idx[a], g = -1;
            if (binned) {
                int b = (int)((log(f->D[i]) - lo) / (hi - lo) * QAT_PLOT_MAX_BUDGETS);
                if (b >= QAT_PLOT_MAX_BUDGETS) b = QAT_PLOT_MAX_BUDGETS - 1;
                if (bin_group[b] < 0) bin_group[b] = lay->n++;
                g = bin_group[b];
                bin_sum[b] += log(f->D[i]);
            } else {
                for (int q = first; q < lay->n && g < 0; q++)
                    if (same(lay->g[q].value, v[i])) g = q;
                if (g < 0) { g = lay->n++; lay->g[g].value = v[i]; }
            }
            qat_plot_law_group *G = &lay->g[g];
            if (!G->nhi) {
                G->pair = k; G->by_ratio = by_ratio; G->rho = f->rho[i]; G->nlo = G->nhi = f->N[i]; G->exact = 1;
                G->bwd = bwd_of[i];
                G->effd = f->effd ? f->effd[i] : 1.0;
            }
            G->nlo = fmin(G->nlo, f->N[i]);
            G->nhi = fmax(G->nhi, f->N[i]);
            lay->group_of[i] = g;
        }
        for (int b = 0; binned && b < QAT_PLOT_MAX_BUDGETS; b++) {
            if (bin_group[b] < 0) continue;
            int cnt = 0;
            for (int a = 0; a < m; a++) cnt += lay->group_of[idx[a]] == bin_group[b];
            lay->g[bin_group[b]].value = exp(bin_sum[b] / cnt);
        }
        for (int a = 0; a < m; a++) {
            int i = idx[a];
            qat_plot_law_group *G = &lay->g[lay->group_of[i]];
            G->exact &= same(G->value, G->by_ratio ? ratio[i] : f->D[i]);
        }
    }
    /* The figure's budgets, largest first within a kind: budget 0 (solid line,
     * circles) is the main budget of a sweep. */
    for (int g = 0; g < lay->n; g++) {
        int b = -1;
        for (int q = 0; q < lay->n_budgets && b < 0; q++)
            if (lay->budget_by_ratio[q] == lay->g[g].by_ratio && same(lay->budget[q], lay->g[g].value)) b = q;
        if (b < 0) {
            b = lay->n_budgets++;
            lay->budget[b] = lay->g[g].value;
            lay->budget_by_ratio[b] = lay->g[g].by_ratio;
        }
    }
    for (int a = 1; a < lay->n_budgets; a++) /* insertion sort: a handful of budgets */
        for (int b = a; b > 0; b--) {
            int r0 = lay->budget_by_ratio[b - 1], r1 = lay->budget_by_ratio[b];
            if (r0 < r1 || (r0 == r1 && lay->budget[b - 1] >= lay->budget[b])) break;
            double t = lay->budget[b]; lay->budget[b] = lay->budget[b - 1]; lay->budget[b - 1] = t;
            lay->budget_by_ratio[b] = r0; lay->budget_by_ratio[b - 1] = r1;
        }
    for (int g = 0; g < lay->n; g++)
        for (int q = 0; q < lay->n_budgets; q++)
            if (lay->budget_by_ratio[q] == lay->g[g].by_ratio && same(lay->budget[q], lay->g[g].value)) {
                lay->g[g].budget = q;
                break;
            }
    free(pair_of); free(idx); free(ratio); free(bwd_of);
}

void qat_plot_law_layout_free(qat_plot_law_layout *lay) {
    free(lay->g); free(lay->group_of); free(lay->budget); free(lay->budget_by_ratio); free(lay->bwd_run);
    memset(lay, 0, sizeof *lay);
}

double qat_plot_law_curve(const qat_fit_h5 *f, const qat_plot_law_group *g, double N) {
    return qat_fit_h5_predict_nd(f, N, g->by_ratio ? g->value * N : g->value, g->rho, g->effd > 0 ? g->effd : 1.0);
}

/* "3.5M tokens", "D/N 20". */
static void budget_label(char *buf, size_t n, int by_ratio, double v, int exact) {
    if (by_ratio) { snprintf(buf, n, "D/N %s %.3g", exact ? "=" : "\xE2\x89\x88", v); return; }
    /* past 1000T no unit: "%.3g" of the quotient would print "9.9e+10B" */
    const char *u = v >= 1e15 ? "" : v >= 1e12 ? "T" : v >= 1e9 ? "B" : v >= 1e6 ? "M" : v >= 1e3 ? "k" : "";
    double s = v >= 1e15 ? 1 : v >= 1e12 ? 1e12 : v >= 1e9 ? 1e9 : v >= 1e6 ? 1e6 : v >= 1e3 ? 1e3 : 1;
    snprintf(buf, n, "D %s %.3g%s tokens", exact ? "=" : "\xE2\x89\x88", v / s, u);
}

/* The notes under the law plot: which constants are held and why (rule 3 and
 * rule 5 of docs/scaling-laws.md, and --fix), and curves that are not at their
 * runs' own budget. Lines wrap at `width` characters. */
/* A capacity constant (quant_L ... vq_C): held by rule at its published value;
 * anything else held by rule stays where the fit put it. */
static int is_cap_name(const char *name) {
    for (int t = 0; t < QAT_CAP_NTYPES; t++) {
        size_t l = strlen(qat_fit_type_name(t));
        if (!strncmp(name, qat_fit_type_name(t), l) && name[l] == '_' && strchr("LFC", name[l + 1]) && name[l + 1] &&
            !name[l + 2])
            return 1;
    }
    return 0;
}

/* The way rule 5 found a constant flat, from its stored reason, so that the
 * caption says what the fit's note says (a caption of "as good 1000 times
 * larger or smaller" stood beside a note that only larger was flat). */
static void flat_way(const char *why, char *out, size_t cap) {
    const char *w = strstr(why, "moved along with ");
    out[0] = 0;
    if (w) {
        w += strlen("moved along with ");
        snprintf(out, cap, " (moves with %.*s)", (int)strcspn(w, ",;: "), w);
    } else if (strstr(why, "ran toward its bound +inf")) snprintf(out, cap, " (toward +inf)");
    else if (strstr(why, "ran toward its bound 0")) snprintf(out, cap, " (toward 0)");
    else if (strstr(why, "sits at its bound 0")) snprintf(out, cap, " (at its bound 0)");
    else if (strstr(why, "not determined either way")) snprintf(out, cap, " (either way)");
}

#define NOTE_LINES 12
#define NOTE_LEN 200
static int law_notes(const qat_fit_h5 *f, const qat_plot_law_layout *lay, char lines[NOTE_LINES][NOTE_LEN]) {
    static const char *why[3] = {
        ": not identified (the fit is as good with it held 1000 times further the way marked), held where the fit "
        "put it",
        ": held at the published Llama/C4 values (the runs' formats cannot determine them)",
        ": held by --fix"};
    int nl = 0;
    for (int c = 0; c < 3; c++) {
        char line[NOTE_LEN];
        int len = snprintf(line, sizeof line, "\xE2\x80\xA2 "), items = 0;
        for (int k = 0; k < f->n_params; k++) {
            int fx = f->param_fixed[k];
            int cat = fx == QAT_FIT_BY_USER ? 2 : fx != QAT_FIT_BY_RULE ? -1 : is_cap_name(f->param[k]) ? 1 : 0;
            if (cat != c) continue;
            char item[128], way[64] = "";
            if (c == 0 && f->param_why) flat_way(f->param_why[k], way, sizeof way);
            int il = snprintf(item, sizeof item, "%s = %.4g%s", f->param[k], f->param_value[k], way);
            if (items) len += snprintf(line + len, sizeof line - (size_t)len, ","); /* the comma ends its line */
            if (len + il + 1 >= 80 && nl < NOTE_LINES - 2) { /* wrap */
                snprintf(lines[nl++], NOTE_LEN, "%s", line);
                len = snprintf(line, sizeof line, "\xC2\xA0\xC2\xA0\xC2\xA0");
            } else if (items)
                len += snprintf(line + len, sizeof line - (size_t)len, " ");
            len += snprintf(line + len, sizeof line - (size_t)len, "%s", item);
            items++;
        }
        if (items && nl < NOTE_LINES) snprintf(lines[nl++], NOTE_LEN, "%s%s", line, why[c]);
    }
    if (nl) { /* a heading above them */
        memmove(lines[1], lines[0], (size_t)(nl < NOTE_LINES ? nl : NOTE_LINES - 1) * NOTE_LEN);
        nl = nl < NOTE_LINES ? nl + 1 : NOTE_LINES;
        snprintf(lines[0], NOTE_LEN, "Held, not fitted, so without an interval (docs/scaling-laws.md, \"What the data must vary\"):");
    } else if (f->n_params) snprintf(lines[nl++], NOTE_LEN, "Every parameter is fitted (none held).");
    for (int g = 0; g < lay->n && nl < NOTE_LINES; g++)
        if (!lay->g[g].exact) {
            snprintf(lines[nl++], NOTE_LEN, "A format with runs at more than %d budgets is drawn against curves at "
                     "binned mean D; its ticks end at the fit at each run's own D.", QAT_PLOT_MAX_BUDGETS);
            break;
        }
    return nl;
}

static int plot_law(const qat_fit_h5 *f, const char *src, const char *path) {
    int n = f->n_runs;
    qat_plot_law_layout lay;
    qat_plot_law_layout_make(f, &lay);
    double xmin = INFINITY, xmax = 0, ymin = INFINITY, ymax = 0, rmax = 0;
    for (int i = 0; i < n; i++) {
        xmin = fmin(xmin, f->N[i]); xmax = fmax(xmax, f->N[i]);
        ymin = fmin(ymin, fmin(f->loss[i], f->pred[i])); ymax = fmax(ymax, fmax(f->loss[i], f->pred[i]));
        rmax = fmax(rmax, fabs(100 * (f->loss[i] / f->pred[i] - 1)));
    }
    qat_svg_pad_range(&xmin, &xmax, 1);
    /* Each curve spans its runs' N (and a little beyond, to show its slope), not the
     * whole axis: it is the law at those runs' budget, not at every size. */
    double (*span)[2] = qat_xmalloc((size_t)(lay.n ? lay.n : 1) * sizeof *span);
    double lmax = ymax;
    for (int g = 0; g < lay.n; g++) {
        span[g][0] = fmax(xmin, lay.g[g].nlo / 1.6);
        span[g][1] = fmin(xmax, lay.g[g].nhi * 1.6);
        for (int q = 0; q < NCURVE; q++) {
            double L = qat_plot_law_curve(f, &lay.g[g], span[g][0] * pow(span[g][1] / span[g][0], q / (NCURVE - 1.0)));
            ymin = fmin(ymin, L); ymax = fmax(ymax, L);
        }
    }
    if (ymax > 1.6 * lmax) ymax = 1.6 * lmax; /* a curve shooting up at tiny N must not squash the data */
    qat_svg_pad_range(&ymin, &ymax, 1);
    double rlim = fmax(0.5, 1.25 * rmax);

    char notes[NOTE_LINES][NOTE_LEN];
    int nnotes = law_notes(f, &lay, notes);
    double top = 62, main1 = 430, res0 = 462, res1 = 572, Hh = 650 + 15.0 * nnotes;
    qat_svg s;
    char title[160], sub[240];
    snprintf(title, sizeof title, "Loss against parameters: %s law, %d runs", f->law, n);
    int quartet = !strcmp(f->law, "quartet");
    if (quartet)
        snprintf(sub, sizeof sub, "L = (%.4g\xC2\xB7(N\xC2\xB7" "effN)^-%.3g + %.4g\xC2\xB7(D\xC2\xB7" "effD)^-%.3g)^%.3g"
                 " + %.4g;  rmse(ln L) %.3g;  a curve per W/A/G key at its runs' D",
                 f->A, f->alpha, f->B, f->beta, f->gamma > 0 ? f->gamma : 1.0, f->E, f->rmse_log);
    else
        snprintf(sub, sizeof sub, "L = %.4g\xC2\xB7(N\xC2\xB7\xCF\x81)^-%.3g + %.4g\xC2\xB7" "D^-%.3g + %.4g;  "
                 "rmse(ln L) %.3g;  each curve at its runs' token budget D",
                 f->A, f->alpha, f->B, f->beta, f->E, f->rmse_log);
    int rc = qat_svg_begin(&s, path, src, W, Hh, title, sub);
    if (rc) {
        free(span);
        qat_plot_law_layout_free(&lay);
        return rc;
    }
    qat_svg_panel(&s, top, main1);
    qat_svg_axes(&s, xmin, xmax, 1, ymin, ymax, 1, NULL, "final validation loss (nats/token)", NULL, 0, NULL, 0);
    double xs[NCURVE], ys[NCURVE];
    for (int pass = 0; pass < 2; pass++) {
        if (pass) { /* the residual panel: run − fit at its own (N, D), in % of the fit */
            qat_svg_panel(&s, res0, res1);
            qat_svg_axes(&s, xmin, xmax, 1, -rlim, rlim, 0, "non-embedding parameters N",
                         "run \xE2\x88\x92 fit (%)", NULL, 0, NULL, 0);
            double zx[2] = {xmin, xmax}, zy[2] = {0, 0};
            qat_svg_series_begin(&s, "zero");
            qat_svg_polyline(&s, 2, zx, zy, "#777777", 1, 0);
            qat_svg_series_end(&s);
        }
        /* one series per W/A pair, or per W/A/G key when the runs have more
         * than one backward scheme (quartet): each its own colour */
        int nb = lay.n_bwd > 1 ? lay.n_bwd : 1, ci = 0;
        for (int kk = -1; kk < f->pairs.n * nb; kk++) {
            int k = kk < 0 ? -1 : kk / nb, jb = kk < 0 ? -1 : kk % nb;
            int has = 0, g0 = -1;
            for (int g = 0; g < lay.n; g++)
                if (lay.g[g].pair == k && (k < 0 || nb == 1 || lay.g[g].bwd == jb)) has = 1, g0 = g0 < 0 ? g : g0;
            if (!has) continue;
            const char *col = qat_svg_color(k < 0 ? f->pairs.n * nb : ci++);
            char sname[240], kname[200];
            if (k >= 0 && nb > 1) snprintf(kname, sizeof kname, "%s/%s", f->pairs.name[k], gkey(f, lay.bwd_run[jb]));
            else snprintf(kname, sizeof kname, "%s", k < 0 ? "other" : f->pairs.name[k]);
            snprintf(sname, sizeof sname, "%s%s", kname, pass ? " residuals" : "");
            qat_svg_series_begin(&s, sname);
            for (int g = 0; g < lay.n; g++) {
                const qat_plot_law_group *G = &lay.g[g];
                if (G->pair != k || (k >= 0 && nb > 1 && G->bwd != jb)) continue;
                qat_svg_shape sh = (qat_svg_shape)(G->budget % 4);
                if (!pass) {
                    for (int q = 0; q < NCURVE; q++) {
                        xs[q] = span[g][0] * pow(span[g][1] / span[g][0], q / (NCURVE - 1.0));
                        ys[q] = qat_plot_law_curve(f, G, xs[q]);
                    }
                    qat_svg_tag(&s, "fit", g);
                    qat_svg_polyline(&s, NCURVE, xs, ys, col, 1.8, G->budget % 4);
                }
                for (int i = 0; i < n; i++) {
                    if (lay.group_of[i] != g) continue;
                    double r = 100 * (f->loss[i] / f->pred[i] - 1);
                    qat_svg_tag(&s, "resid", g);
                    if (!pass) qat_svg_segment(&s, f->N[i], f->loss[i], f->N[i], f->pred[i], col, 1.6);
                    else qat_svg_segment(&s, f->N[i], 0, f->N[i], r, col, 1.6);
                    qat_svg_tag(&s, "run", g);
                    qat_svg_marker(&s, f->N[i], pass ? r : f->loss[i], sh, col, G->budget / 4 % 2 == 0, 3.6);
                }
            }
            qat_svg_tag(&s, NULL, -1);
            qat_svg_series_end(&s);
            if (pass) continue;
            qat_svg_legend_entry e = {.color = col, .line = 1};
            if (k < 0) snprintf(e.label, sizeof e.label, "runs of unlisted pairs");
            else if (quartet)
                snprintf(e.label, sizeof e.label, "%.60s (effN %.3g, effD %.3g)", nb > 1 ? kname : f->pairs.name[k],
                         f->pairs.value[k], lay.g[g0].effd);
            else if (!strcmp(f->law, "chinchilla")) snprintf(e.label, sizeof e.label, "%s", f->pairs.name[k]);
            else snprintf(e.label, sizeof e.label, "%s (%s %.3g)", f->pairs.name[k],
                          strcmp(f->law, "unified") ? "eff" : "\xCF\x81", f->pairs.value[k]);
            qat_svg_legend_add(&s, &e);
        }
    }
    for (int b = 0; b < lay.n_budgets; b++) {
        int exact = 1;
        for (int g = 0; g < lay.n; g++)
            if (lay.g[g].budget == b) exact &= lay.g[g].exact;
        /* four shapes, filled then hollow: eight budgets before a marker repeats */
        qat_svg_legend_entry e = {.color = "#555555", .line = 1, .dash = b % 4, .marker = 1, .shape = (qat_svg_shape)(b % 4),
                                  .filled = b / 4 % 2 == 0};
        budget_label(e.label, sizeof e.label, lay.budget_by_ratio[b], lay.budget[b], exact);
        qat_svg_legend_add(&s, &e);
    }
    static const char *key[3] = {"lines: the fitted law", "markers: the runs", "vertical ticks: run \xE2\x88\x92 fit"};
    for (int j = 0; j < 3; j++) {
        qat_svg_legend_entry e = {.color = "#555555"};
        snprintf(e.label, sizeof e.label, "%s", key[j]);
        qat_svg_legend_add(&s, &e);
    }
    for (int j = 0; j < nnotes; j++) qat_svg_text_px(&s, 16, 650 + 15.0 * j, "start", 11, "#333", notes[j]);
    free(span);
    qat_plot_law_layout_free(&lay);
    return qat_svg_end(&s);
}

/* ---- capacity --------------------------------------------------------- */

static double tanh_rho(double L, double F, double C, double g) {
    return L * pow(tanh(F * log(g) / log(0.25)), C);
}

static int plot_capacity(const qat_fit_h5 *f, const char *src, const char *path) {
    const qat_fit_h5_pairs *pts = f->dec.n ? &f->dec : !strcmp(f->law, "decoupled") ? &f->pairs : NULL;
    int ncurves = 0, npts = 0;
    for (int t = 0; t < QAT_CAP_NTYPES; t++) ncurves += f->has_cap[t];
    double gmin = 1e-3, ymax = 1.05;
    for (int k = 0; pts && k < pts->n; k++)
        if (pts->type[k] >= 0 && pts->power[k] > 0 && pts->gmse[k] > 0) {
            npts++;
            gmin = fmin(gmin, pts->gmse[k] / 3);
            ymax = fmax(ymax, 1.05 * pow(pts->value[k], 1.0 / pts->power[k]));
        }
    if (ncurves == 0 && npts == 0)
        return qat_fail(QAT_EINPUT, "%s: the capacity plot needs a unified or decoupled fit with compressed formats "
                        "(this is a %s fit without any)", src, f->law);
    if (gmin < 1e-6) gmin = 1e-6;
    qat_svg s;
    char title[160];
    snprintf(title, sizeof title, "Capacity against Gaussian MSE: %s fit, %d runs", f->law, f->n_runs);
    QAT_TRY(qat_svg_begin(&s, path, src, W, H, title,
                          "\xCF\x81 = L\xC2\xB7tanh(F\xC2\xB7log_1/4 GMSE)^C per type; points: free effs of the decoupled law"));
    qat_svg_axes(&s, gmin, 1.0, 1, 0.0, ymax, 0, "Gaussian MSE of the representation (GMSE)", "capacity \xCF\x81 (dense-equivalent fraction)",
                 NULL, 0, NULL, 0);
    double xs[NCURVE], ys[NCURVE];
    for (int q = 0; q < NCURVE; q++) xs[q] = gmin * pow(0.999 / gmin, q / (NCURVE - 1.0));
    /* Published reference curve. */
    qat_svg_series_begin(&s, "published");
    for (int q = 0; q < NCURVE; q++) ys[q] = tanh_rho(1.0, 0.41, 1.39, xs[q]);
    qat_svg_polyline(&s, NCURVE, xs, ys, "#999999", 1.5, 1);
    qat_svg_series_end(&s);
    qat_svg_legend_entry e = {.color = "#999999", .line = 1, .dash = 1};
    snprintf(e.label, sizeof e.label, "published Llama/C4 (L 1, F .41, C 1.39)");
    qat_svg_legend_add(&s, &e);
    for (int t = 0; t < QAT_CAP_NTYPES; t++) {
        int has_pts = 0;
        for (int k = 0; pts && k < pts->n; k++) has_pts |= pts->type[k] == t;
        if (!f->has_cap[t] && !has_pts) continue;
        const char *col = qat_svg_color(t);
        qat_svg_series_begin(&s, qat_fit_type_name(t));
        if (f->has_cap[t]) {
            for (int q = 0; q < NCURVE; q++) ys[q] = tanh_rho(f->cap[t][0], f->cap[t][1], f->cap[t][2], xs[q]);
            qat_svg_polyline(&s, NCURVE, xs, ys, col, 2.2, 0);
            qat_svg_legend_entry c = {.color = col, .line = 1};
            snprintf(c.label, sizeof c.label, "%s fit: L %.3g, F %.3g, C %.3g", qat_fit_type_name(t), f->cap[t][0],
                     f->cap[t][1], f->cap[t][2]);
            qat_svg_legend_add(&s, &c);
        }
        for (int k = 0; pts && k < pts->n; k++) {
            if (pts->type[k] != t || pts->power[k] <= 0 || !(pts->gmse[k] > 0)) continue;
            double y = pow(pts->value[k], 1.0 / pts->power[k]);
            qat_svg_shape sh = pts->power[k] == 1 ? QAT_SVG_CIRCLE : pts->power[k] == 2 ? QAT_SVG_SQUARE : QAT_SVG_TRIANGLE;
            qat_svg_marker(&s, pts->gmse[k], y, sh, col, 1, 4.5);
            qat_svg_text(&s, pts->gmse[k], y, 7, -6, "start", 10, "#333", pts->name[k]);
        }
        qat_svg_series_end(&s);
    }
    if (npts) {
        qat_svg_legend_entry a = {.color = "#333333", .marker = 1, .shape = QAT_SVG_CIRCLE, .filled = 1};
        snprintf(a.label, sizeof a.label, "decoupled eff, one tensor");
        qat_svg_legend_add(&s, &a);
        qat_svg_legend_entry b = {.color = "#333333", .marker = 1, .shape = QAT_SVG_SQUARE, .filled = 1};
        snprintf(b.label, sizeof b.label, "eff^(1/2), same on W and A");
        qat_svg_legend_add(&s, &b);
    }
    return qat_svg_end(&s);
}

/* ---- frontier --------------------------------------------------------- */

typedef struct {
    int k;
    double bits, per_bit;
} priced;

static int by_bits(const void *a, const void *b) {
    const priced *x = a, *y = b;
    if (x->bits != y->bits) return x->bits < y->bits ? -1 : 1;
    return (y->per_bit > x->per_bit) - (y->per_bit < x->per_bit);
}

static int plot_frontier(const qat_fit_h5 *f, const char *src, const char *path, FILE *info) {
    priced *pr = qat_xmalloc((size_t)(f->n_fmt ? f->n_fmt : 1) * sizeof *pr);
    int m = 0;
    for (int k = 0; k < f->n_fmt; k++)
        if (f->fmt_bits[k] > 0 && f->fmt_rho[k] > 0) pr[m++] = (priced){k, f->fmt_bits[k], f->fmt_rho[k] / f->fmt_bits[k]};
    if (m < 2) {
        free(pr);
        return qat_fail(QAT_EINPUT, "%s: the frontier needs a unified or decoupled fit pricing at least two formats "
                        "(this %s fit prices %d)", src, f->law, m);
    }
    qsort(pr, (size_t)m, sizeof *pr, by_bits);
    int nw = 14; /* the lists' name column: as wide as the longest priced name */
    for (int j = 0; j < m; j++)
        if ((int)strlen(f->fmt[pr[j].k]) > nw) nw = (int)strlen(f->fmt[pr[j].k]);
    double xmin = pr[0].bits, xmax = pr[m - 1].bits, ymax = 0;
    for (int j = 0; j < m; j++) ymax = fmax(ymax, pr[j].per_bit);
    xmin /= 1.4; xmax *= 1.4; ymax *= 1.18;
    double xt[16];
    int nx = 0;
    for (double b = 0.25; b <= 64 && nx < 16; b *= 2)
        if (b >= xmin && b <= xmax) xt[nx++] = b;
    qat_svg s;
    char title[160];
    snprintf(title, sizeof title, "Capacity per bit: %s fit, %d formats priced", f->law, m);
    int rc = qat_svg_begin(&s, path, src, W, H, title,
                           "black steps: the best capacity per bit among formats within each bits-per-parameter budget");
    if (rc) {
        free(pr);
        return rc;
    }
    qat_svg_axes(&s, xmin, xmax, 1, 0.0, ymax, 0, "bits per parameter", "capacity per bit (\xCF\x81 / bits)", xt, nx, NULL, 0);
    /* The frontier as steps, naming the best format at each change. */
    double *fx = qat_xmalloc((size_t)(2 * m + 2) * sizeof *fx), *fy = qat_xmalloc((size_t)(2 * m + 2) * sizeof *fy);
    int nf = 0, best = -1, changes = 0;
    qat_svg_series_begin(&s, "frontier");
    if (info) fprintf(info, "best format under each bit budget (capacity per bit):\n");
    for (int j = 0; j < m; j++) {
        int changed = best < 0 || pr[j].per_bit > pr[best].per_bit;
        if (changed) {
            if (best >= 0) { fx[nf] = pr[j].bits; fy[nf++] = pr[best].per_bit; }
            best = j;
            fx[nf] = pr[j].bits; fy[nf++] = pr[j].per_bit;
            char lab[96];
            snprintf(lab, sizeof lab, "\xE2\x89\xA4 %.4g bits: %s", pr[j].bits, f->fmt[pr[j].k]);
            /* Alternate above/below so neighbouring names do not overlap. */
            qat_svg_text(&s, pr[j].bits, pr[j].per_bit, 0, changes++ % 2 ? 22 : -12, "middle", 11, "#000", lab);
        }
        if (info && (j + 1 == m || pr[j + 1].bits != pr[j].bits))
            fprintf(info, "  <= %-6.4g bits: %-*s %.4g\n", pr[j].bits, nw, f->fmt[pr[best].k], pr[best].per_bit); /* one precision for budgets in both lists and the plot */
    }
    /* The other question a budget asks: the most capacity (not per bit) whose storage,
     * every block scale included, fits within it ("at <= 4.5 bits: nvfp4"). */
    if (info) {
        fprintf(info, "most capacity within each bit budget (rho):\n");
        int top = -1;
        for (int j = 0; j < m; j++) {
            if (top < 0 || f->fmt_rho[pr[j].k] > f->fmt_rho[pr[top].k]) {
                top = j;
                fprintf(info, "  <= %-6.4g bits: %-*s %.4g\n", pr[j].bits, nw, f->fmt[pr[j].k], f->fmt_rho[pr[j].k]);
            }
        }
    }
    fx[nf] = xmax; fy[nf++] = pr[best].per_bit;
    qat_svg_polyline(&s, nf, fx, fy, "#000000", 1.6, 0);
    qat_svg_series_end(&s);
    free(fx); free(fy);
    for (int j = 0; j < m; j++) {
        int k = pr[j].k;
        const char *col = qat_svg_color(j);
        qat_svg_series_begin(&s, f->fmt[k]);
        qat_svg_marker(&s, pr[j].bits, pr[j].per_bit, QAT_SVG_CIRCLE, col, f->fmt_in_data[k], 5);
        qat_svg_series_end(&s);
        qat_svg_legend_entry e = {.color = col, .marker = 1, .shape = QAT_SVG_CIRCLE, .filled = f->fmt_in_data[k]};
        snprintf(e.label, sizeof e.label, "%s: \xCF\x81 %.3g at %.3g bits%s", f->fmt[k], f->fmt_rho[k], pr[j].bits,
                 f->fmt_in_data[k] ? "" : " (priced)");
        qat_svg_legend_add(&s, &e);
    }
    qat_svg_legend_entry e = {.color = "#000000", .line = 1};
    snprintf(e.label, sizeof e.label, "best within the budget");
    qat_svg_legend_add(&s, &e);
    free(pr);
    return qat_svg_end(&s);
}

int qat_fit_plot(const qat_fit_h5 *f, const char *src, qat_plot_kind kind, const char *path, FILE *info) {
    /* a quartet fit's effN/effD are not capacities of a format (ρ of the
     * unified/decoupled laws): there is nothing to put on those axes */
    if (kind != QAT_PLOT_LAW && !strcmp(f->law, "quartet"))
        return qat_fail(QAT_EINPUT, "%s: --kind %s needs a capacity law (a unified or decoupled fit); this is a "
                        "quartet fit, whose effN/effD are not format capacities: plot it with --kind law, or refit "
                        "with --law unified or --law decoupled over runs of one backward scheme", src,
                        kind == QAT_PLOT_CAPACITY ? "capacity" : "frontier");
    switch (kind) {
    case QAT_PLOT_LAW: return plot_law(f, src, path);
    case QAT_PLOT_CAPACITY: return plot_capacity(f, src, path);
    default: return plot_frontier(f, src, path, info);
    }
}

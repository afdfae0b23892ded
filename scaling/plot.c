/*
 * scaling/plot.c — the figures of a fit (issue 4):
 *   law       loss against N per format pair, observed runs as markers and the
 *             fitted law as lines (log–log). Runs of one pair that share a
 *             tokens-per-parameter ratio get a curve at that ratio; a pair with
 *             many ratios (IsoFLOP data such as Chinchilla's) gets one curve at
 *             the geometric-mean ratio, so the curve is what the law predicts
 *             for the runs shown, not an arbitrary D.
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

static int plot_law(const qat_fit_h5 *f, const char *src, const char *path) {
    int n = f->n_runs, np = f->pairs.n;
    double xmin = INFINITY, xmax = 0, ymin = INFINITY, ymax = 0;
    for (int i = 0; i < n; i++) {
        xmin = fmin(xmin, f->N[i]); xmax = fmax(xmax, f->N[i]);
        ymin = fmin(ymin, f->loss[i]); ymax = fmax(ymax, f->loss[i]);
    }
    qat_svg_pad_range(&xmin, &xmax, 1);
    int *pair_of = qat_xmalloc((size_t)n * sizeof *pair_of);
    for (int i = 0; i < n; i++) {
        char key[2 * QAT_FIT_FMT_LEN + 2];
        snprintf(key, sizeof key, "%s/%s", f->wfmt[i], f->afmt[i]);
        pair_of[i] = -1;
        for (int k = 0; k < np; k++)
            if (!strcmp(f->pairs.name[k], key)) pair_of[i] = k;
    }
    /* Curves: per pair, the distinct D/N ratios (within 5%), or their geometric mean. */
    double (*ratio)[4] = qat_xcalloc((size_t)(np ? np : 1), sizeof *ratio);
    int *nratio = qat_xcalloc((size_t)(np ? np : 1), sizeof *nratio);
    double xs[NCURVE], ys[NCURVE];
    for (int k = 0; k < np; k++) {
        double lsum = 0;
        int cnt = 0, many = 0;
        for (int i = 0; i < n; i++) {
            if (pair_of[i] != k) continue;
            double r = f->D[i] / f->N[i];
            lsum += log(r);
            cnt++;
            int hit = 0;
            for (int j = 0; j < nratio[k]; j++) hit |= fabs(log(r / ratio[k][j])) < 0.05;
            if (!hit) {
                if (nratio[k] < 3) ratio[k][nratio[k]++] = r;
                else many = 1;
            }
        }
        if (many) { nratio[k] = 1; ratio[k][0] = exp(lsum / cnt); }
        for (int j = 0; j < nratio[k]; j++)
            for (int q = 0; q < NCURVE; q++) {
                double N = xmin * pow(xmax / xmin, q / (NCURVE - 1.0));
                double L = qat_fit_h5_predict(f, N, ratio[k][j] * N, f->pairs.value[k]);
                ymin = fmin(ymin, L); ymax = fmax(ymax, L);
            }
    }
    double lmax = 0;
    for (int i = 0; i < n; i++) lmax = fmax(lmax, f->loss[i]);
    if (ymax > 1.6 * lmax) ymax = 1.6 * lmax; /* a curve shooting up at tiny N must not squash the data */
    qat_svg_pad_range(&ymin, &ymax, 1);

    qat_svg s;
    char title[160], sub[200];
    snprintf(title, sizeof title, "Loss against parameters: %s law, %d runs", f->law, n);
    snprintf(sub, sizeof sub, "L = %.4g (N\xC2\xB7\xCF\x81)^-%.3g + %.4g D^-%.3g + %.4g   (lines: the fit at each run group's D/N)",
             f->A, f->alpha, f->B, f->beta, f->E);
    int rc = qat_svg_begin(&s, path, src, W, H, title, sub);
    if (rc) {
        free(pair_of); free(ratio); free(nratio);
        return rc;
    }
    qat_svg_axes(&s, xmin, xmax, 1, ymin, ymax, 1, "non-embedding parameters N", "final validation loss (nats/token)",
                 NULL, 0, NULL, 0);
    for (int k = 0; k < np; k++) {
        const char *col = qat_svg_color(k);
        qat_svg_series_begin(&s, f->pairs.name[k]);
        for (int j = 0; j < nratio[k]; j++) {
            for (int q = 0; q < NCURVE; q++) {
                xs[q] = xmin * pow(xmax / xmin, q / (NCURVE - 1.0));
                ys[q] = qat_fit_h5_predict(f, xs[q], ratio[k][j] * xs[q], f->pairs.value[k]);
            }
            qat_svg_polyline(&s, NCURVE, xs, ys, col, 1.8, j > 0);
            if (k == 0) { /* one pair's labels say it; all pairs share the ratios in a sweep */
                char lab[32];
                snprintf(lab, sizeof lab, "D/N %.3g", ratio[k][j]);
                qat_svg_text(&s, xs[NCURVE - 1], ys[NCURVE - 1], -4, -5, "end", 10, col, lab);
            }
        }
        for (int i = 0; i < n; i++)
            if (pair_of[i] == k) qat_svg_marker(&s, f->N[i], f->loss[i], (qat_svg_shape)(k / 10 % 4), col, 1, 3.2);
        qat_svg_series_end(&s);
        qat_svg_legend_entry e = {.color = col, .line = 1, .marker = 1, .shape = (qat_svg_shape)(k / 10 % 4), .filled = 1};
        if (!strcmp(f->law, "chinchilla")) snprintf(e.label, sizeof e.label, "%s", f->pairs.name[k]);
        else snprintf(e.label, sizeof e.label, "%s (%s %.3g)", f->pairs.name[k],
                      strcmp(f->law, "unified") ? "eff" : "\xCF\x81", f->pairs.value[k]);
        qat_svg_legend_add(&s, &e);
    }
    free(pair_of); free(ratio); free(nratio);
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
            snprintf(lab, sizeof lab, "\xE2\x89\xA4 %.3g bits: %s", pr[j].bits, f->fmt[pr[j].k]);
            /* Alternate above/below so neighbouring names do not overlap. */
            qat_svg_text(&s, pr[j].bits, pr[j].per_bit, 0, changes++ % 2 ? 22 : -12, "middle", 11, "#000", lab);
        }
        if (info && (j + 1 == m || pr[j + 1].bits != pr[j].bits))
            fprintf(info, "  <= %-6.3g bits: %-14s %.4g\n", pr[j].bits, f->fmt[pr[best].k], pr[best].per_bit);
    }
    /* The other question a budget asks: the most capacity (not per bit) whose storage,
     * every block scale included, fits within it ("at <= 4.5 bits: nvfp4"). */
    if (info) {
        fprintf(info, "most capacity within each bit budget (rho):\n");
        int top = -1;
        for (int j = 0; j < m; j++) {
            if (top < 0 || f->fmt_rho[pr[j].k] > f->fmt_rho[pr[top].k]) {
                top = j;
                fprintf(info, "  <= %-6.4g bits: %-14s %.4g\n", pr[j].bits, f->fmt[pr[j].k], f->fmt_rho[pr[j].k]);
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
    switch (kind) {
    case QAT_PLOT_LAW: return plot_law(f, src, path);
    case QAT_PLOT_CAPACITY: return plot_capacity(f, src, path);
    default: return plot_frontier(f, src, path, info);
    }
}

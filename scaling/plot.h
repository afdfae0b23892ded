/*
 * scaling/plot.h — the three figures of a fit, drawn from FIT.h5 alone.
 */
#ifndef QAT_SCALING_PLOT_H
#define QAT_SCALING_PLOT_H

#include <stdio.h>

#include "scaling/fit_h5.h"

typedef enum { QAT_PLOT_LAW, QAT_PLOT_CAPACITY, QAT_PLOT_FRONTIER } qat_plot_kind;

int qat_plot_kind_parse(const char *s, qat_plot_kind *k);

/* Draw `kind` of the fit into an SVG at `path`; `info` (may be NULL) gets a
 * short text summary (the frontier's best format per budget). `src` names the
 * fit file in error messages. */
int qat_fit_plot(const qat_fit_h5 *f, const char *src, qat_plot_kind kind, const char *path, FILE *info);

/* The curves of the law plot. A curve L(N) holds the token budget fixed, so it
 * can pass through a run's point only at that run's own budget: the runs of
 * each format pair are grouped by their D (within 1 %), one curve per group.
 * A pair with more than QAT_PLOT_MAX_BUDGETS distinct D whose runs share few
 * D/N ratios (a tokens-per-parameter sweep) is grouped by D/N instead; one with
 * many of both (IsoFLOP data) by D in QAT_PLOT_MAX_BUDGETS bins of ln D, each
 * curve at its bin's geometric-mean D (`exact` 0: its runs sit near, not on, it). */
#define QAT_PLOT_MAX_BUDGETS 6

typedef struct {
    int pair;       /* index into f->pairs (-1: a run whose pair is not listed) */
    int by_ratio;   /* 1: the curve holds D/N at `value`; 0: it holds D at `value` */
    double value;   /* the group's D (tokens) or D/N */
    double rho;     /* capacity multiplier of the pair's runs */
    double nlo, nhi;/* smallest and largest N among the group's runs */
    int budget;     /* index of (by_ratio, value) among the figure's distinct budgets: marker and dash */
    int exact;      /* every run's own D (or D/N) is the curve's, within 1 % */
    int bwd;        /* index of the runs' backward scheme among the layout's (quartet: a W/A/G key per pair × bwd) */
    double effd;    /* effD of that scheme (1 for laws without a backward term) */
} qat_plot_law_group;

typedef struct {
    int n;                    /* groups */
    qat_plot_law_group *g;
    int *group_of;            /* per run of the fit: its group */
    int n_budgets;            /* distinct (by_ratio, value) over all groups, sorted by kind, then value */
    double *budget;           /* their values */
    int *budget_by_ratio;     /* and their kinds */
    int n_bwd;                /* distinct backward schemes among the runs */
    int *bwd_run;             /* a run of each (its f->gfmt names the scheme), in sorted order */
} qat_plot_law_layout;

void qat_plot_law_layout_make(const qat_fit_h5 *f, qat_plot_law_layout *lay);
void qat_plot_law_layout_free(qat_plot_law_layout *lay);
/* The fitted law along group g's curve, at N. */
double qat_plot_law_curve(const qat_fit_h5 *f, const qat_plot_law_group *g, double N);

#endif

/*
 * scaling/report.h — everything a finished fit hands to its outputs (the
 * table, --json, --csv, FIT.h5), gathered once so the four writers agree.
 */
#ifndef QAT_SCALING_REPORT_H
#define QAT_SCALING_REPORT_H

#include <stdio.h>

#include "scaling/fit.h"

/* A format priced for the frontier plot: what one parameter costs and holds. */
typedef struct {
    char name[QAT_FIT_FMT_LEN];
    double bits;   /* bits per parameter (qat_fmt_bits) */
    double rho;    /* capacity of the format on the weights alone, from the fit */
    double gmse;   /* GMSE when the format is a single term, else NaN */
    int in_data;   /* 1 if some run used it as weight format */
} qat_fit_format_row;

/* Where a format pair sits on the ρ(GMSE) plane: only pairs made of k equal
 * terms (int4/fp32: k = 1; int4/int4: k = 2) have a point, at (gmse, ρ^(1/k)). */
typedef struct {
    int type;     /* capacity type, -1 when the pair has no single-term point */
    double gmse;
    int power;    /* k */
} qat_fit_cap_point;

typedef struct {
    const qat_fit_runs *runs;
    const qat_fit_problem *p;
    const qat_fit_result *r;
    qat_fit_cap_point *pt;        /* per pair of p */
    /* Decoupled companion of a unified fit (NULL otherwise): its effs are the
     * points the capacity plot sets against the fitted tanh curve. */
    const qat_fit_problem *dp;
    const qat_fit_result *dr;
    qat_fit_cap_point *dpt;       /* per pair of dp */
    qat_fit_format_row *fmt;
    int n_fmt;
    int bootstrap;                /* resamples asked for */
    unsigned long long seed;
    int skipped;                  /* inputs skipped with a warning */
} qat_fit_report;

/* Fill pt/dpt and the format table from the runs' terms and the resolver. */
void qat_fit_report_prepare(qat_fit_report *rep, const qat_fit_resolver *res);
void qat_fit_report_free(qat_fit_report *rep);

/* Quartet law: format key k's (effN, lo, hi, effD, lo, hi) into e[6]; the
 * fp32 baselines are 1 with the interval [1, 1], a held eff has no interval. */
void qat_fit_key_effs(const qat_fit_problem *p, const qat_fit_result *r, int k, double e[6]);

void qat_fit_print_table(FILE *out, const qat_fit_report *rep);
void qat_fit_print_json(FILE *out, const qat_fit_report *rep);
/* Per-run CSV through core/fsutil's qat_out: refused (QAT_EINPUT) over an
 * input or a non-regular file; an I/O failure is QAT_ERUNTIME naming the
 * path and the reason, and leaves no partial file. */
int qat_fit_write_csv(const char *path, const qat_fit_report *rep, const char *const *inputs, int n_inputs);

#endif

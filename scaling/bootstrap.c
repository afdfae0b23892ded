/*
 * scaling/bootstrap.c — uncertainty of a fit: bootstrap over runs and the
 * leave-one-out error.
 *
 * A resample is a vector of multiplicities (run i drawn w_i times), so it
 * needs no copy of the data. Resample b draws from qat_rng_make(seed, b) and
 * writes only its own row, so the OpenMP loop gives the same intervals on
 * any number of threads. Each resample starts from the full-data optimum —
 * it is close to the resample's optimum — plus a few other local optima of
 * the full fit, in case the resample tips the balance between basins.
 * Intervals are percentiles (2.5 %, 97.5 %) of the natural-scale values, and
 * only when at least QAT_FIT_MIN_BOOTSTRAP resamples were usable.
 */
#include <math.h>
#include <string.h>

#include "core/error.h"
#include "core/num.h"
#include "core/rng.h"
#include "scaling/fit.h"

/* Percentile q of v[0..n) by linear interpolation on the sorted copy. */
static double percentile(double *tmp, const double *v, int n, int stride, double q) {
    int m = 0;
    for (int b = 0; b < n; b++)
        if (isfinite(v[(size_t)b * stride])) tmp[m++] = v[(size_t)b * stride];
    if (m == 0) return NAN;
    qsort(tmp, (size_t)m, sizeof *tmp, qat_dbl_cmp);
    double pos = q * (m - 1);
    int lo = (int)floor(pos);
    int hi = lo + 1 < m ? lo + 1 : lo;
    return tmp[lo] + (pos - lo) * (tmp[hi] - tmp[lo]);
}

/* Distinct values among the drawn runs of one group (of[i] == g, w[i] > 0)
 * along x: 0, 1 or 2 (at least two). */
static int drawn_values(const qat_fit_problem *p, const int *of, int g, const double *x, const double *w) {
    double first = NAN;
    for (int i = 0; i < p->n; i++) {
        if (of[i] != g || w[i] <= 0) continue;
        if (isnan(first)) first = x[i];
        else if (x[i] != first) return 2;
    }
    return isnan(first) ? 0 : 1;
}

/* 1 when the drawn runs can tell every free eff (the rules identify.c and
 * law_quartet.c apply to the full data): a resample that drew no run of a
 * format pair, none of the fp32/fp32 anchor, or (quartet) one N of a forward
 * pair or one D of a backward scheme leaves that eff wherever the start put
 * it — a point in the percentiles that no data chose, narrowing the interval. */
static int resample_tells_effs(const qat_fit_problem *p, const double *w) {
    if (p->law != QAT_LAW_DECOUPLED && p->law != QAT_LAW_QUARTET) return 1;
    int need = p->law == QAT_LAW_QUARTET ? 2 : 1, free_eff = 0;
    for (int k = 0; k < p->n_pairs; k++) {
        int t = p->eff_of_pair[k];
        if (t < 0 || p->fixed[t]) continue;
        free_eff = 1;
        if (drawn_values(p, p->pair_of, k, p->logN, w) < need) return 0;
    }
    for (int k = 0; k < p->n_pairs && free_eff; k++)
        if (p->eff_of_pair[k] < 0 && drawn_values(p, p->pair_of, k, p->logN, w) == 0) return 0;
    if (p->law != QAT_LAW_QUARTET) return 1;
    int free_d = 0;
    for (int j = 0; j < p->n_bwd; j++) {
        int t = p->effd_of_bwd[j];
        if (t < 0 || p->fixed[t]) continue;
        free_d = 1;
        if (drawn_values(p, p->bwd_of, j, p->logD, w) < 2) return 0;
    }
    for (int j = 0; j < p->n_bwd && free_d; j++)
        if (p->effd_of_bwd[j] < 0 && drawn_values(p, p->bwd_of, j, p->logD, w) == 0) return 0;
    return 1;
}

int qat_fit_bootstrap(const qat_fit_problem *p, const qat_fit_opts *o, const double *starts, int n_starts,
                      qat_fit_result *r) {
    int nb = o->bootstrap, np = p->np, n = p->n, npair = p->n_pairs;
    double *boot = qat_xmalloc((size_t)nb * np * sizeof(double));
    double *pair = qat_xmalloc((size_t)nb * (npair ? npair : 1) * sizeof(double));
    unsigned char *dropped = qat_xcalloc((size_t)nb + 1, 1);
#pragma omp parallel
    {
        double *w = qat_xmalloc((size_t)n * sizeof(double));
        double *th = qat_xmalloc((size_t)np * sizeof(double));
        double *best = qat_xmalloc((size_t)np * sizeof(double));
#pragma omp for schedule(static)
        for (int b = 0; b < nb; b++) {
            qat_rng g = qat_rng_make(o->seed, (uint64_t)b);
            memset(w, 0, (size_t)n * sizeof(double));
            for (int j = 0; j < n; j++) w[qat_rng_below(&g, (uint64_t)n)] += 1.0;
            double fbest = INFINITY;
            dropped[b] = !resample_tells_effs(p, w);
            if (dropped[b]) {
                for (int k = 0; k < np; k++) boot[(size_t)b * np + k] = NAN;
                for (int k = 0; k < npair; k++) pair[(size_t)b * npair + k] = NAN;
                continue;
            }
            for (int s = -1; s < n_starts; s++) {
                memcpy(th, s < 0 ? r->theta : starts + (size_t)s * np, (size_t)np * sizeof(double));
                double f = qat_fit_local(p, th, w);
                if (isfinite(f) && f < fbest) { fbest = f; memcpy(best, th, (size_t)np * sizeof(double)); }
            }
            for (int k = 0; k < np; k++)
                boot[(size_t)b * np + k] = isfinite(fbest) ? qat_fit_value(p, best, k) : NAN;
            for (int k = 0; k < npair; k++)
                pair[(size_t)b * npair + k] = isfinite(fbest) ? exp(qat_fit_log_rho(p, best, p->pair_run[k])) : NAN;
        }
        free(w); free(th); free(best);
    }
    double *tmp = qat_xmalloc((size_t)nb * sizeof(double));
    int ok = 0, nd = 0;
    for (int b = 0; b < nb; b++) ok += isfinite(boot[(size_t)b * np]), nd += dropped[b];
    free(dropped);
    r->n_boot_dropped = nd;
    for (int k = 0; k < np; k++) {
        r->lo[k] = percentile(tmp, boot + k, nb, np, 0.025);
        r->hi[k] = percentile(tmp, boot + k, nb, np, 0.975);
    }
    for (int k = 0; k < npair; k++) {
        r->pair_lo[k] = percentile(tmp, pair + k, nb, npair, 0.025);
        r->pair_hi[k] = percentile(tmp, pair + k, nb, npair, 0.975);
    }
    free(tmp); free(pair);
    r->boot = boot;
    r->n_boot = ok;
    /* Fewer usable resamples than --bootstrap itself demands (QAT_FIT_MIN_BOOTSTRAP,
     * docs/cli.md) give 2.5/97.5 "percentiles" that are single extreme resamples:
     * no interval at all then, as without --bootstrap; the table and the JSON say
     * how many were used (4 of 20 once printed intervals as if there were 20). */
    if (ok < QAT_FIT_MIN_BOOTSTRAP) {
        for (int k = 0; k < np; k++) r->lo[k] = r->hi[k] = NAN;
        for (int k = 0; k < npair; k++) r->pair_lo[k] = r->pair_hi[k] = NAN;
    }
    if (ok == 0 && nd > 0)
        return qat_fail(QAT_EINPUT, "bootstrap: none of the %d resamples drew enough runs of every format to tell "
                        "its eff (too few runs per format for a bootstrap; add runs or drop --bootstrap)", nb);
    if (ok == 0) return qat_fail(QAT_ERUNTIME, "bootstrap: no resample reached a finite objective");
    return QAT_OK;
}

double qat_fit_loo(const qat_fit_problem *p, const double *theta) {
    int n = p->n, np = p->np;
    double *sq = qat_xmalloc((size_t)n * sizeof(double));
#pragma omp parallel
    {
        double *w = qat_xmalloc((size_t)n * sizeof(double));
        double *th = qat_xmalloc((size_t)np * sizeof(double));
#pragma omp for schedule(static)
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) w[j] = 1.0;
            w[i] = 0.0;
            memcpy(th, theta, (size_t)np * sizeof(double));
            qat_fit_local(p, th, w);
            double e = qat_fit_predict(p, th, i, NULL, 0.0) - p->logL[i];
            sq[i] = e * e;
        }
        free(w); free(th);
    }
    double s = 0.0; /* fixed-order sum */
    for (int i = 0; i < n; i++) s += sq[i];
    free(sq);
    return sqrt(s / n);
}

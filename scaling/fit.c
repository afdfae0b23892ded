/*
 * scaling/fit.c — the full-data fit: L-BFGS from every point of the docs/scaling-laws.md
 * grid, best end point kept, then per-run predictions and fit errors.
 *
 * The grid is Epoch AI's (α, β ∈ {0,.5,…,2}, e ∈ {−1,…,1}, a, b ∈ {0,5,…,25}):
 * the Huber objective has many shallow local minima along the A–α and B–β
 * ridges, and a wide grid is what makes the Chinchilla refit land where theirs
 * does. Capacity parameters start at neutral values (eff = 1; the published
 * L = 1, F = 0.41, C = 1.39) and, from the best end point, at a few
 * alternatives. Starts are independent, so they run in parallel; the winner
 * is chosen by (objective, start index), which does not depend on timing.
 */
#include "scaling/fit.h"

#include <math.h>
#include <string.h>

#include <omp.h>

#include "core/error.h"
#include "scaling/lbfgs.h"

typedef struct {
    const qat_fit_problem *p;
    const double *w;
} objective_ctx;

static double objective_fn(const double *x, double *g, void *ctx) {
    const objective_ctx *c = ctx;
    return qat_fit_objective(c->p, x, c->w, g);
}

double qat_fit_local(const qat_fit_problem *p, double *theta, const double *w) {
    for (int k = 0; k < p->np; k++)
        if (p->fixed[k]) theta[k] = p->fixval[k];
    objective_ctx c = {p, w};
    qat_lbfgs_opts o = {10, 1000, 1e-11, 1e-13};
    return qat_lbfgs_minimize(p->np, theta, objective_fn, &c, &o, NULL);
}

static const double grid_ab[] = {0, 5, 10, 15, 20, 25};
static const double grid_exp[] = {0, 0.5, 1, 1.5, 2};
static const double grid_e[] = {-1, -0.5, 0, 0.5, 1};
/* Quartet's γ: the paper's grid {0, 0.5, 1} without the degenerate 0 (every
 * gradient but γ's vanishes there), and 2 for a sum that curves the other way. */
static const double grid_gamma[] = {0.5, 1, 2};

int qat_fit_grid_count(const qat_fit_problem *p) { return 6 * 6 * 5 * 5 * 5 * (p->law == QAT_LAW_QUARTET ? 3 : 1); }

/* Neutral capacity start: eff = 1 (effN and effD too), or the published Llama/C4 (L, F, C). */
static void capacity_start(const qat_fit_problem *p, double *theta, double eff, double F, double C) {
    for (int k = 0; k < p->n_pairs; k++)
        if (p->eff_of_pair[k] >= 0) theta[p->eff_of_pair[k]] = log(eff);
    for (int j = 0; j < p->n_bwd; j++)
        if (p->effd_of_bwd[j] >= 0) theta[p->effd_of_bwd[j]] = log(eff);
    for (int t = 0; t < QAT_CAP_NTYPES; t++)
        if (p->type_off[t] >= 0) {
            theta[p->type_off[t]] = 0.0;
            theta[p->type_off[t] + 1] = log(F);
            theta[p->type_off[t] + 2] = log(C);
        }
}

/* A held scale (A or B, by --fix or by rule 5) with its exponent free: the
 * grid point's (a, α) becomes (held a, α') with the same term at the runs'
 * mean ln N (resp. ln D), x̄: a − α·x̄ = a' − α'·x̄. Without it, a scale held
 * beyond the grid's [0, 25] (ln A = 31 on a steep, narrow N range) makes that
 * term of every start thousands of times the loss; the starts screened from
 * such a grid are the ones where the other term happens to vanish (B = 1,
 * β = 2), and its gradient with it, so no start reaches the basin where the
 * data put it. The shift spreads the starts over the same term levels as the
 * free grid. */
static void held_scale_start(const qat_fit_problem *p, double *theta, int scale, int expo, const double *logx) {
    if (!p->fixed[scale] || p->fixed[expo] || p->n == 0) return;
    double xbar = 0.0;
    for (int i = 0; i < p->n; i++) xbar += logx[i];
    xbar /= p->n;
    if (!(xbar > 0)) return; /* N, D ≥ 1: only all-ones, where the exponent is moot */
    theta[expo] = fmax(0.0, theta[expo] + (p->fixval[scale] - theta[scale]) / xbar);
}

/* Start s of the documented grid; shift: with a held scale's shift of its
 * exponent (held_scale_start), as the fit starts. */
static void grid_point(const qat_fit_problem *p, int s, double *theta, int shift) {
    int i = s;
    theta[QAT_FIT_A] = grid_ab[i % 6]; i /= 6;
    theta[QAT_FIT_B] = grid_ab[i % 6]; i /= 6;
    theta[QAT_FIT_ALPHA] = grid_exp[i % 5]; i /= 5;
    theta[QAT_FIT_BETA] = grid_exp[i % 5]; i /= 5;
    theta[QAT_FIT_E] = grid_e[i % 5]; i /= 5;
    if (p->law == QAT_LAW_QUARTET) theta[QAT_FIT_GAMMA] = log(grid_gamma[i % 3]); /* θ holds ln γ */
    capacity_start(p, theta, 1.0, 0.41, 1.39);
    if (shift) {
        held_scale_start(p, theta, QAT_FIT_A, QAT_FIT_ALPHA, p->logN);
        held_scale_start(p, theta, QAT_FIT_B, QAT_FIT_BETA, p->logD);
    }
    for (int k = 0; k < p->np; k++)
        if (p->fixed[k]) theta[k] = p->fixval[k];
}

void qat_fit_grid_start(const qat_fit_problem *p, int s, double *theta) { grid_point(p, s, theta, 1); }

void qat_fit_start_range(const qat_fit_problem *p, int k, double *lo, double *hi) {
    double *theta = qat_xmalloc((size_t)p->np * sizeof *theta);
    *lo = INFINITY, *hi = -INFINITY;
    /* the documented grid, not its starts shifted under a held A or B: with B
     * held at 0.005 on runs of 3–20 tokens every beta start was shifted to 0, so
     * beta = 1.7e-12, flat both ways, "ran toward its bound +inf" */
    for (int s = 0, n = qat_fit_grid_count(p); s < n; s++) {
        grid_point(p, s, theta, 0);
        *lo = fmin(*lo, theta[k]), *hi = fmax(*hi, theta[k]);
    }
    free(theta);
}

typedef struct {
    double f;
    int idx;
} ranked;

static int ranked_cmp(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->f < y->f) return -1;
    if (x->f > y->f) return 1;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

/* NaN sorts last: a start that blew up never wins. */
static double rank_value(double f) { return isfinite(f) ? f : INFINITY; }

void qat_fit_result_free(qat_fit_result *r) {
    free(r->theta); free(r->boot); free(r->lo); free(r->hi); free(r->pred); free(r->resid);
    free(r->rho); free(r->pair_rho); free(r->pair_lo); free(r->pair_hi);
    memset(r, 0, sizeof *r);
}

int qat_fit_run_fit(const qat_fit_problem *p, const qat_fit_opts *o, qat_fit_result *r) {
    double t0 = omp_get_wtime();
    memset(r, 0, sizeof *r);
    int np = p->np, ng = qat_fit_grid_count(p);
    r->np = np;
    r->theta = qat_xcalloc((size_t)np, sizeof(double));

    /* Optionally screen the grid by the objective at the start point. */
    ranked *order = qat_xmalloc((size_t)ng * sizeof *order);
    int nrun = ng;
    /* Chinchilla starts are cheap: run them all, as Epoch did. With capacity
     * parameters a local fit costs ~10× more, so only the most promising grid
     * points (by their starting objective) are run to convergence. */
    int max_starts = o->max_starts ? o->max_starts : p->law == QAT_LAW_CHINCHILLA ? -1 : QAT_FIT_SCREENED_STARTS;
    if (max_starts > 0 && max_starts < ng) {
        double *th = qat_xmalloc((size_t)np * sizeof(double));
        for (int s = 0; s < ng; s++) {
            qat_fit_grid_start(p, s, th);
            order[s] = (ranked){rank_value(qat_fit_objective(p, th, NULL, NULL)), s};
        }
        free(th);
        qsort(order, (size_t)ng, sizeof *order, ranked_cmp);
        nrun = max_starts;
    } else {
        for (int s = 0; s < ng; s++) order[s] = (ranked){0, s};
    }

    double *ends = qat_xmalloc((size_t)nrun * np * sizeof(double));
    ranked *fin = qat_xmalloc((size_t)nrun * sizeof *fin);
#pragma omp parallel for schedule(static)
    for (int j = 0; j < nrun; j++) {
        double *th = ends + (size_t)j * np;
        qat_fit_grid_start(p, order[j].idx, th);
        fin[j] = (ranked){rank_value(qat_fit_local(p, th, NULL)), j};
    }
    qsort(fin, (size_t)nrun, sizeof *fin, ranked_cmp);
    if (!isfinite(fin[0].f)) {
        free(order); free(ends); free(fin);
        return qat_fail(QAT_ERUNTIME, "fit: no grid start reached a finite objective");
    }
    memcpy(r->theta, ends + (size_t)fin[0].idx * np, (size_t)np * sizeof(double));
    r->objective = fin[0].f;

    if (o->warm) {
        double *th = qat_xmalloc((size_t)np * sizeof(double));
        memcpy(th, o->warm, (size_t)np * sizeof(double));
        double f = qat_fit_local(p, th, NULL);
        if (isfinite(f) && f < r->objective) {
            r->objective = f;
            memcpy(r->theta, th, (size_t)np * sizeof(double));
        }
        free(th);
    }

    /* Capacity alternatives from the best end point (they are few: run serially). */
    if (p->law != QAT_LAW_CHINCHILLA) {
        static const double alt[][3] = {{0.5, 0.2, 0.7}, {0.5, 0.2, 2.8}, {0.7, 0.8, 0.7},
                                        {0.7, 0.8, 2.8}, {0.9, 0.41, 1.39}, {0.3, 1.5, 1.0}};
        double *th = qat_xmalloc((size_t)np * sizeof(double));
        for (size_t a = 0; a < sizeof alt / sizeof alt[0]; a++) {
            memcpy(th, r->theta, (size_t)np * sizeof(double));
            capacity_start(p, th, alt[a][0], alt[a][1], alt[a][2]);
            double f = qat_fit_local(p, th, NULL);
            if (isfinite(f) && f < r->objective) {
                r->objective = f;
                memcpy(r->theta, th, (size_t)np * sizeof(double));
            }
        }
        free(th);
    }

    /* Distinct local optima, best first, as extra starts for the resamples. */
    int want = o->boot_starts > 0 ? o->boot_starts : 3;
    double *starts = qat_xmalloc((size_t)want * np * sizeof(double));
    int n_starts = 0;
    for (int j = 1; j < nrun && n_starts < want; j++) {
        if (!isfinite(fin[j].f)) break;
        const double *c = ends + (size_t)fin[j].idx * np;
        int distinct = 1;
        for (int q = -1; q < n_starts && distinct; q++) {
            const double *u = q < 0 ? r->theta : starts + (size_t)q * np;
            double dmax = 0.0;
            for (int k = 0; k < np; k++) dmax = fmax(dmax, fabs(c[k] - u[k]));
            if (dmax < 1e-2) distinct = 0;
        }
        if (distinct) memcpy(starts + (size_t)n_starts++ * np, c, (size_t)np * sizeof(double));
    }
    free(order); free(ends); free(fin);

    /* Per-run predictions and errors. */
    int n = p->n;
    r->pred = qat_xmalloc((size_t)n * sizeof(double));
    r->resid = qat_xmalloc((size_t)n * sizeof(double));
    r->rho = qat_xmalloc((size_t)n * sizeof(double));
    double ss = 0.0;
    for (int i = 0; i < n; i++) {
        double lp = qat_fit_predict(p, r->theta, i, NULL, 0.0);
        r->pred[i] = exp(lp);
        r->resid[i] = lp - p->logL[i];
        r->rho[i] = exp(qat_fit_log_rho(p, r->theta, i));
        ss += r->resid[i] * r->resid[i];
    }
    r->rmse_log = sqrt(ss / n);
    r->pair_rho = qat_xmalloc((size_t)p->n_pairs * sizeof(double));
    r->pair_lo = qat_xmalloc((size_t)p->n_pairs * sizeof(double));
    r->pair_hi = qat_xmalloc((size_t)p->n_pairs * sizeof(double));
    for (int k = 0; k < p->n_pairs; k++) {
        r->pair_rho[k] = exp(qat_fit_log_rho(p, r->theta, p->pair_run[k]));
        r->pair_lo[k] = r->pair_hi[k] = NAN;
    }
    r->lo = qat_xmalloc((size_t)np * sizeof(double));
    r->hi = qat_xmalloc((size_t)np * sizeof(double));
    for (int k = 0; k < np; k++) r->lo[k] = r->hi[k] = NAN;
    r->loo_rmse_log = NAN;

    int rc = QAT_OK;
    if (o->bootstrap > 0) rc = qat_fit_bootstrap(p, o, starts, n_starts, r);
    free(starts);
    if (rc) return rc;
    if (o->loo) r->loo_rmse_log = qat_fit_loo(p, r->theta);
    r->seconds = omp_get_wtime() - t0;
    return QAT_OK;
}

/*
 * scaling/lbfgs.h — limited-memory BFGS with a strong-Wolfe line search.
 *
 * Written here rather than borrowed because the fits need only a few dozen
 * parameters, must be bit-reproducible across machines and thread counts, and
 * run thousands of times per command (grid starts × bootstrap resamples), so a
 * small allocation-free-per-iteration minimiser is the right tool.
 */
#ifndef QAT_SCALING_LBFGS_H
#define QAT_SCALING_LBFGS_H

/* f(x) and its gradient into g (never NULL). */
typedef double (*qat_lbfgs_fn)(const double *x, double *g, void *ctx);

typedef struct {
    int m;          /* history pairs kept (default 10) */
    int max_iter;   /* iterations (default 500) */
    double gtol;    /* stop when max|g| ≤ gtol (default 1e-10) */
    double ftol;    /* stop when the decrease over an iteration ≤ ftol·max(|f|, 1e-12) (default 1e-12) */
} qat_lbfgs_opts;

typedef struct {
    int iters;      /* iterations taken */
    int evals;      /* function evaluations */
    int converged;  /* 1 if a tolerance was met, 0 if stopped by max_iter or a failed search */
} qat_lbfgs_info;

/* Minimise f from x (overwritten with the minimiser). opts NULL = defaults.
 * Returns the final f. Never fails: a line search that finds no decrease
 * ends the run at the best point seen. */
double qat_lbfgs_minimize(int n, double *x, qat_lbfgs_fn fn, void *ctx, const qat_lbfgs_opts *opts,
                          qat_lbfgs_info *info);

#endif

/*
 * scaling/lbfgs.c — L-BFGS (Nocedal & Wright, Alg. 7.4/7.5) with a line search
 * that enforces the strong Wolfe conditions (Alg. 3.5/3.6, cubic interpolation
 * with safeguards).
 *
 * The strong Wolfe curvature condition guarantees sᵀy > 0, so the inverse
 * Hessian approximation stays positive definite and every direction is a
 * descent direction; a plain backtracking search would not, and on the nearly
 * piecewise-linear Huber objective that shows up as stalls. Non-finite values
 * (an exp overflow far from the data) are treated as "step too long".
 */
#include "scaling/lbfgs.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

typedef struct {
    int n;
    const double *x0, *d; /* line origin and direction */
    double *xt, *gt;      /* last evaluated point and its gradient */
    qat_lbfgs_fn fn;
    void *ctx;
    int evals;
} line;

static double phi(line *l, double a, double *dphi) {
    for (int k = 0; k < l->n; k++) l->xt[k] = l->x0[k] + a * l->d[k];
    double f = l->fn(l->xt, l->gt, l->ctx);
    l->evals++;
    double s = 0.0;
    for (int k = 0; k < l->n; k++) s += l->gt[k] * l->d[k];
    *dphi = s;
    return f;
}

/* Minimiser of the cubic matching values and slopes at a and b (N&W 3.59); NaN if none. */
static double cubic_min(double a, double fa, double da, double b, double fb, double db) {
    if (!isfinite(fa) || !isfinite(fb) || a == b) return NAN;
    double d1 = da + db - 3.0 * (fa - fb) / (a - b);
    double disc = d1 * d1 - da * db;
    if (disc < 0) return NAN;
    double d2 = (b > a ? 1.0 : -1.0) * sqrt(disc);
    double den = db - da + 2.0 * d2;
    if (den == 0) return NAN;
    return b - (b - a) * (db + d2 - d1) / den;
}

enum { C1 = 0, C2 = 1 };
static const double wolfe_c[2] = {1e-4, 0.9};

/* Returns 1 when a point with sufficient decrease was found (left in l->xt/gt with
 * its value in *fout), 0 otherwise. */
static int zoom(line *l, double f0, double dg0, double lo, double flo, double dlo, double hi, double fhi,
                double dhi, double *fout) {
    for (int j = 0; j < 50; j++) {
        double a = cubic_min(lo, flo, dlo, hi, fhi, dhi);
        double left = fmin(lo, hi), width = fabs(hi - lo);
        if (!(a >= left + 0.1 * width && a <= left + 0.9 * width)) a = 0.5 * (lo + hi);
        double d, f = phi(l, a, &d);
        if (!isfinite(f) || f > f0 + wolfe_c[C1] * a * dg0 || f >= flo) {
            hi = a; fhi = f; dhi = d;
        } else {
            if (fabs(d) <= -wolfe_c[C2] * dg0) { *fout = f; return 1; }
            if (d * (hi - lo) >= 0) { hi = lo; fhi = flo; dhi = dlo; }
            lo = a; flo = f; dlo = d;
        }
        if (width <= 1e-15 * fmax(1.0, fabs(lo))) break;
    }
    /* The interval collapsed without the curvature condition: lo still has
     * sufficient decrease, so take it if it moved at all. */
    if (lo > 0) {
        double d;
        *fout = phi(l, lo, &d);
        return *fout < f0;
    }
    return 0;
}

static int wolfe_search(line *l, double f0, double dg0, double a, double *fout) {
    double a_prev = 0.0, f_prev = f0, d_prev = dg0;
    for (int it = 0; it < 50; it++) {
        double d, f = phi(l, a, &d);
        if (!isfinite(f) || f > f0 + wolfe_c[C1] * a * dg0 || (it > 0 && f >= f_prev))
            return zoom(l, f0, dg0, a_prev, f_prev, d_prev, a, f, d, fout);
        if (fabs(d) <= -wolfe_c[C2] * dg0) { *fout = f; return 1; }
        if (d >= 0) return zoom(l, f0, dg0, a, f, d, a_prev, f_prev, d_prev, fout);
        /* Still descending: extrapolate, at least ×1.5 and at most ×8. */
        double next = cubic_min(a_prev, f_prev, d_prev, a, f, d);
        if (!isfinite(next) || next < 1.5 * a) next = 1.5 * a;
        if (next > 8.0 * a) next = 8.0 * a;
        a_prev = a; f_prev = f; d_prev = d;
        a = next;
    }
    return 0;
}

double qat_lbfgs_minimize(int n, double *x, qat_lbfgs_fn fn, void *ctx, const qat_lbfgs_opts *opts,
                          qat_lbfgs_info *info) {
    qat_lbfgs_opts o = {10, 500, 1e-10, 1e-12};
    if (opts) {
        if (opts->m > 0) o.m = opts->m;
        if (opts->max_iter > 0) o.max_iter = opts->max_iter;
        if (opts->gtol > 0) o.gtol = opts->gtol;
        if (opts->ftol > 0) o.ftol = opts->ftol;
    }
    int m = o.m;
    /* One block: g, d, xt, gt, then m pairs (s, y), then rho and alpha. */
    double *buf = qat_xcalloc((size_t)(4 * n + 2 * m * n + 2 * m), sizeof(double));
    double *g = buf, *d = g + n, *xt = d + n, *gt = xt + n, *S = gt + n, *Y = S + m * n;
    double *rho = Y + m * n, *al = rho + m;
    line l = {n, x, d, xt, gt, fn, ctx, 0};
    double f = fn(x, g, ctx);
    l.evals = 1;
    int hist = 0, head = 0, it = 0, converged = 0;
    if (!isfinite(f)) goto done;
    for (; it < o.max_iter; it++) {
        double gmax = 0.0;
        for (int k = 0; k < n; k++) gmax = fmax(gmax, fabs(g[k]));
        if (gmax <= o.gtol) { converged = 1; break; }
        /* Two-loop recursion: d = −H·g. */
        for (int k = 0; k < n; k++) d[k] = -g[k];
        for (int j = 0; j < hist; j++) {
            int h = (head - 1 - j + m) % m;
            double s = 0.0;
            for (int k = 0; k < n; k++) s += S[h * n + k] * d[k];
            al[h] = rho[h] * s;
            for (int k = 0; k < n; k++) d[k] -= al[h] * Y[h * n + k];
        }
        if (hist) {
            int h = (head - 1 + m) % m;
            double sy = 0.0, yy = 0.0;
            for (int k = 0; k < n; k++) { sy += S[h * n + k] * Y[h * n + k]; yy += Y[h * n + k] * Y[h * n + k]; }
            for (int k = 0; k < n; k++) d[k] *= sy / yy;
        }
        for (int j = hist - 1; j >= 0; j--) {
            int h = (head - 1 - j + m) % m;
            double s = 0.0;
            for (int k = 0; k < n; k++) s += Y[h * n + k] * d[k];
            double b = rho[h] * s;
            for (int k = 0; k < n; k++) d[k] += S[h * n + k] * (al[h] - b);
        }
        double dg = 0.0;
        for (int k = 0; k < n; k++) dg += d[k] * g[k];
        if (!(dg < 0)) { /* lost descent (round-off): restart from steepest descent */
            for (int k = 0; k < n; k++) d[k] = -g[k];
            dg = 0.0;
            for (int k = 0; k < n; k++) dg -= g[k] * g[k];
            hist = 0;
        }
        /* First step: a unit move in the largest coordinate; later: the quasi-Newton step. */
        double a0 = hist ? 1.0 : fmin(1.0, 1.0 / gmax);
        double fnew;
        if (!wolfe_search(&l, f, dg, a0, &fnew)) {
            if (hist) { hist = 0; continue; } /* retry once along −g */
            break;
        }
        double sy = 0.0;
        for (int k = 0; k < n; k++) {
            S[head * n + k] = xt[k] - x[k];
            Y[head * n + k] = gt[k] - g[k];
            sy += S[head * n + k] * Y[head * n + k];
        }
        if (sy > 1e-300) {
            rho[head] = 1.0 / sy;
            head = (head + 1) % m;
            if (hist < m) hist++;
        }
        double fold = f;
        memcpy(x, xt, (size_t)n * sizeof *x);
        memcpy(g, gt, (size_t)n * sizeof *g);
        f = fnew;
        if (fold - f <= o.ftol * fmax(fmax(fabs(fold), fabs(f)), 1e-12)) { converged = 1; it++; break; }
    }
done:
    if (info) { info->iters = it; info->evals = l.evals; info->converged = converged; }
    free(buf);
    return f;
}

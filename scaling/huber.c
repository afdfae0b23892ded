/*
 * scaling/huber.c — the fit objective: Σ_i w_i·Huber_δ(ln L̂_i − ln L_i).
 *
 * Huber on log residuals (δ = 1e-3, SPEC §8, as Hoffmann et al. and Epoch AI)
 * is quadratic only within 0.1% of the observed loss and linear beyond, so a
 * few bad runs cannot dominate the fit. Its derivative is continuous, which is
 * all L-BFGS needs. Run weights turn a bootstrap resample into multiplicities
 * and a leave-one-out fold into a zero, without copying data.
 */
#include "scaling/fit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double qat_fit_huber(double r, double delta, double *dr) {
    double a = fabs(r);
    if (a <= delta) {
        if (dr) *dr = r;
        return 0.5 * r * r;
    }
    if (dr) *dr = r > 0 ? delta : -delta;
    return delta * (a - 0.5 * delta);
}

double qat_fit_objective(const qat_fit_problem *p, const double *theta, const double *w, double *g) {
    int np = p->np;
    if (g) memset(g, 0, (size_t)np * sizeof *g);
    /* ∂ ln L̂_i/∂θ lands in dp first: the Huber slope needs the residual, which
     * needs the prediction, and one pass through the law is half the cost of two. */
    double stack[64];
    double *dp = np <= 64 ? stack : malloc((size_t)np * sizeof *dp);
    double f = 0.0;
    for (int i = 0; i < p->n; i++) {
        double wi = w ? w[i] : 1.0;
        if (wi == 0.0) continue;
        if (!g) {
            f += wi * qat_fit_huber(qat_fit_predict(p, theta, i, NULL, 0.0) - p->logL[i], QAT_FIT_HUBER_DELTA, NULL);
            continue;
        }
        memset(dp, 0, (size_t)np * sizeof *dp);
        double r = qat_fit_predict(p, theta, i, dp, 1.0) - p->logL[i];
        double dr;
        f += wi * qat_fit_huber(r, QAT_FIT_HUBER_DELTA, &dr);
        double c = wi * dr;
        for (int k = 0; k < np; k++) g[k] += c * dp[k];
    }
    if (dp != stack) free(dp);
    if (g)
        for (int k = 0; k < np; k++)
            if (p->fixed[k]) g[k] = 0.0;
    return f;
}

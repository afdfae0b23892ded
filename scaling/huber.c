/*
 * scaling/huber.c — the fit objective: Σ_i w_i·Huber_δ(ln L̂_i − ln L_i).
 *
 * Huber on log residuals (δ = 1e-3, docs/scaling-laws.md, as Hoffmann et al. and Epoch AI)
 * is quadratic only within 0.1% of the observed loss and linear beyond, so a
 * few bad runs cannot dominate the fit. Its derivative is continuous, which is
 * all L-BFGS needs. Run weights turn a bootstrap resample into multiplicities
 * and a leave-one-out fold into a zero, without copying data.
 */
#include "scaling/fit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

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
    if (p->law == QAT_LAW_QUARTET) return qat_fit_quartet_objective(p, theta, w, g);
    int np = p->n_pairs;
    /* ln ρ depends on the run only through its format pair, so it and its
     * gradient are computed once per pair: per run only the LSE remains. */
    double stack[2 * 64];
    double *lr = np <= 64 ? stack : qat_xmalloc((size_t)2 * np * sizeof *lr), *coef = lr + np;
    for (int k = 0; k < np; k++) {
        lr[k] = qat_fit_log_rho(p, theta, p->pair_run[k]);
        coef[k] = 0.0;
    }
    double f = 0.0, gA = 0, gal = 0, gB = 0, gbe = 0, gE = 0, alpha = theta[QAT_FIT_ALPHA];
    for (int i = 0; i < p->n; i++) {
        double wi = w ? w[i] : 1.0;
        if (wi == 0.0) continue;
        int k = p->pair_of[i];
        double s[3], dr;
        double r = qat_fit_predict_given_rho(p, theta, i, lr[k], s) - p->logL[i];
        f += wi * qat_fit_huber(r, QAT_FIT_HUBER_DELTA, &dr);
        if (!g) continue;
        double c = wi * dr;
        gA += c * s[0];
        gal -= c * s[0] * (p->logN[i] + lr[k]);
        gB += c * s[1];
        gbe -= c * s[1] * p->logD[i];
        gE += c * s[2];
        coef[k] -= c * s[0] * alpha;
    }
    if (g) {
        memset(g, 0, (size_t)p->np * sizeof *g);
        g[QAT_FIT_A] = gA; g[QAT_FIT_ALPHA] = gal; g[QAT_FIT_B] = gB; g[QAT_FIT_BETA] = gbe; g[QAT_FIT_E] = gE;
        if (p->law != QAT_LAW_CHINCHILLA)
            for (int k = 0; k < np; k++) qat_fit_log_rho_grad(p, theta, p->pair_run[k], g, coef[k]);
        for (int k = 0; k < p->np; k++)
            if (p->fixed[k]) g[k] = 0.0;
    }
    if (lr != stack) free(lr);
    return f;
}

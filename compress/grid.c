/*
 * compress/grid.c — the constants and closed-form integrals behind grid.h.
 *
 * The α* values are QuEST's own table (not re-optimised) because the published
 * runs and docs/reference-numbers.md use them; qat_grid_int_alpha_opt exists so a test can show the
 * table is where the exact GMSE is minimal (to the table's precision for b <= 4).
 */
#include "compress/grid.h"

#include <math.h>

#include "core/error.h"

const double QAT_INT_ALPHA[9] = {
    0.0, /* unused: b starts at 1 */
    0.7978845587140913, 1.4935346200015913, 2.051068354131873, 2.513930578568423,
    2.9160938834961225, 3.276597282593217, 3.6010497188221655, 3.884938678807525,
};

const double QAT_FP4_MAGS[8] = {0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0};

double qat_norm_pdf(double x) { return 0.3989422804014327 * exp(-0.5 * x * x); }

double qat_norm_cdf(double x) { return 0.5 * erfc(-x * 0.7071067811865476); }

double qat_norm_ppf(double p) {
    QAT_ASSERT(p > 0.0 && p < 1.0);
    /* Start from a logistic-like approximation, then Newton on Φ(x) − p; Φ is
     * smooth and monotone so a few steps reach double precision. Work in the
     * lower tail and mirror, where erfc keeps full relative accuracy. */
    int upper = p > 0.5;
    double q = upper ? 1.0 - p : p;
    double t = sqrt(-2.0 * log(q));
    double x = -(t - (2.515517 + 0.802853 * t + 0.010328 * t * t) /
                         (1.0 + 1.432788 * t + 0.189269 * t * t + 0.001308 * t * t * t));
    for (int i = 0; i < 50; i++) {
        double f = qat_norm_cdf(x) - q;
        double d = qat_norm_pdf(x);
        if (d <= 0) break;
        double step = f / d;
        x -= step;
        if (fabs(step) < 1e-15 * (1.0 + fabs(x))) break;
    }
    return upper ? -x : x;
}

/* tφ(t) with the limit 0 at ±∞. */
static double tphi(double t) { return isinf(t) ? 0.0 : t * qat_norm_pdf(t); }
static double phi_or0(double t) { return isinf(t) ? 0.0 : qat_norm_pdf(t); }

double qat_grid_gmse(const double *c, int n) {
    /* Each cell [t0, t1] contributes E[(ξ − c)² 1{cell}] = M2 − 2c·M1 + c²·P. */
    double total = 0.0;
    for (int i = 0; i < n; i++) {
        double t0 = i == 0 ? -INFINITY : 0.5 * (c[i - 1] + c[i]);
        double t1 = i == n - 1 ? INFINITY : 0.5 * (c[i] + c[i + 1]);
        double P = qat_norm_cdf(t1) - qat_norm_cdf(t0);
        double M1 = phi_or0(t0) - phi_or0(t1);
        double M2 = P + tphi(t0) - tphi(t1);
        total += M2 - 2.0 * c[i] * M1 + c[i] * c[i] * P;
    }
    return total;
}

int qat_grid_int_levels(int bits, double alpha, double *c) {
    int n = 1 << bits;
    for (int k = 0; k < n; k++) c[k] = alpha * (2.0 * k - (n - 1)) / (n - 1);
    return n;
}

double qat_grid_int_gmse(int bits, double alpha) {
    double c[256];
    int n = qat_grid_int_levels(bits, alpha, c);
    return qat_grid_gmse(c, n);
}

double qat_grid_ternary_gmse(double a) {
    double c[3] = {-a, 0.0, a};
    return qat_grid_gmse(c, 3);
}

double qat_grid_fp4_gmse(double k) {
    double c[15];
    for (int i = 0; i < 7; i++) c[i] = -k * QAT_FP4_MAGS[7 - i];
    for (int i = 0; i < 8; i++) c[7 + i] = k * QAT_FP4_MAGS[i];
    return qat_grid_gmse(c, 15);
}

double qat_golden_min(double (*f)(double x, const void *ctx), const void *ctx, double a, double b, double tol,
                      int max_iter) {
    const double g = 0.6180339887498949;
    double x1 = b - g * (b - a), x2 = a + g * (b - a);
    double f1 = f(x1, ctx), f2 = f(x2, ctx);
    for (int i = 0; i < max_iter && b - a > tol; i++) {
        if (f1 < f2) {
            b = x2; x2 = x1; f2 = f1;
            x1 = b - g * (b - a); f1 = f(x1, ctx);
        } else {
            a = x1; x1 = x2; f1 = f2;
            x2 = a + g * (b - a); f2 = f(x2, ctx);
        }
    }
    return 0.5 * (a + b);
}

static double int_gmse_at(double alpha, const void *ctx) { return qat_grid_int_gmse(*(const int *)ctx, alpha); }

double qat_grid_int_alpha_opt(int bits) {
    /* GMSE(α) is unimodal on a bracket around the table value. */
    return qat_golden_min(int_gmse_at, &bits, 0.3, 6.0, 1e-10, 200);
}

double qat_sparse_gmse_exact(double s) {
    if (s <= 0.0) return 0.0;
    if (s >= 1.0) return 1.0;
    double t = qat_norm_ppf(0.5 * (1.0 + s));
    double x = 0.5 * t * t;
    if (x < 2.0) {
        /* E[ξ²; |ξ| < t] is the χ²₃ CDF at t², i.e. P(3/2, t²/2), summed as its
         * series: the closed form below subtracts two nearly equal numbers when
         * little is pruned (sp0.0001 gave −3.8e-17). All terms are positive. */
        const double a = 1.5;
        double term = 1.0, sum = 1.0;
        for (int n = 1; n < 200 && term > 1e-17 * sum; n++) {
            term *= x / (a + n);
            sum += term;
        }
        return pow(x, a) * exp(-x) / (0.75 * sqrt(M_PI)) * sum; /* Γ(5/2) = 3√π/4 */
    }
    return (2.0 * qat_norm_cdf(t) - 1.0) - 2.0 * t * qat_norm_pdf(t);
}

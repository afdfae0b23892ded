/*
 * compress/grid.c — the constants and closed-form integrals behind grid.h.
 *
 * The α* values are QuEST's own table (not re-optimised) because the published
 * runs and docs/reference-numbers.md use them; qat_grid_int_alpha_opt exists so a test can show the
 * table is where the exact GMSE is minimal (to the table's precision for b <= 4).
 */
#include "compress/grid.h"

#include <math.h>
#include <stdlib.h>

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

/* ---- N:M sparsity ----------------------------------------------------------- */

typedef struct {
    int m, k;          /* group size M; zeroed when at most k = M − N − 1 of the others are smaller */
    const double *lb;  /* ln C(M − 1, j), j = 0..k */
} nm_ctx;

/* x²·2φ(x)·P(Bin(M − 1, F(x)) <= k): the density of a zeroed |ξ| = x times x². The
 * binomial terms are summed from their logarithms (lgamma coefficients), so none
 * overflows however large M is, and a term that underflows is one below 1e-308. */
static double nm_integrand(double x, const nm_ctx *c) {
    if (x <= 0.0) return 0.0;
    double F = erf(x * 0.7071067811865476), G = erfc(x * 0.7071067811865476); /* F and 1 − F, each accurate */
    double lF = log(F), lG = log(G), p = 0.0;
    for (int j = 0; j <= c->k; j++) p += exp(c->lb[j] + j * lF + (c->m - 1 - j) * lG);
    if (p > 1.0) p = 1.0;
    return x * x * 2.0 * qat_norm_pdf(x) * p;
}

/* Adaptive Simpson on [a, b] (midpoint m, values fa fm fb, Simpson estimate s) to
 * an absolute tol that halves with the interval, so it stays a fixed multiple of
 * the interval's rounding error (~1e-16·width) and the recursion ends; the cap
 * on depth is a guard that smooth integrands never reach. */
static double nm_simpson(const nm_ctx *c, double a, double b, double fa, double fm, double fb, double s, double tol,
                         int depth) {
    double m = 0.5 * (a + b), l = 0.5 * (a + m), r = 0.5 * (m + b);
    double fl = nm_integrand(l, c), fr = nm_integrand(r, c);
    double sl = (m - a) / 6.0 * (fa + 4.0 * fl + fm), sr = (b - m) / 6.0 * (fm + 4.0 * fr + fb);
    double d = sl + sr - s;
    if (depth >= 40 || fabs(d) <= 15.0 * tol) return sl + sr + d / 15.0; /* Richardson */
    return nm_simpson(c, a, m, fa, fl, fm, sl, 0.5 * tol, depth + 1) +
           nm_simpson(c, m, b, fm, fr, fb, sr, 0.5 * tol, depth + 1);
}

/* Exact GMSE of N:M sparsity.
 *
 * Definition (the U-paper's GMSE of a sparsifier, §2, as for spNN: E(ξ − S(ξ))²
 * per coordinate for i.i.d. ξ ~ N(0, 1); N:M keeps the N largest |ξ| of each
 * group of M): the error is the sum of the squares that are zeroed, so with
 * X_(1) <= ... <= X_(M) the order statistics of M i.i.d. half-normal |ξ|
 * (F(x) = erf(x/√2), f(x) = √(2/π)·e^(−x²/2), x >= 0),
 *
 *   GMSE(N:M) = (1/M)·Σ_{k=1}^{M−N} E[X_(k)²],
 *   E[X_(k)²] = ∫₀^∞ x²·M!/((k−1)!(M−k)!)·F(x)^(k−1)·(1 − F(x))^(M−k)·f(x) dx
 *
 * (order statistics: David & Nagaraja, Order Statistics, §2.1). Since
 * M!/((k−1)!(M−k)!) = M·C(M−1, k−1), the sum over k is M times a binomial
 * distribution function, and
 *
 *   GMSE(N:M) = ∫₀^∞ x²·f(x)·P(Bin(M−1, F(x)) <= M−N−1) dx,
 *
 * which reads directly: a value x is zeroed when at most M−N−1 of the other
 * M−1 are smaller (ties have probability 0). Checks: 1:2 = (1 − 2/π)/2
 * (E[min(|a|,|b|)²] = 1 − 2/π from the polar angle of (a, b)), 2:4 =
 * 1/2 − 2/(√3·π) = 0.132447, 4:8 = 0.103307, 1:4 = 0.382447; as M grows at fixed
 * N/M it tends to spNN's value at s = 1 − N/M from above.
 *
 * Method: the integrand is smooth; it changes where F(x) crosses (M−N)/M, over a
 * width ~1/√M in F, and for N = M − 1 it is a spike of width ~1/M in F at 0. So
 * [0, 13] is cut at the points where F(x) = j/(2M), j = 1..2M−1 (the spike and
 * the transition span several panels each, no Simpson rule can step over
 * them), then at 2, 3, …, 13 beyond the last, and each panel is integrated by
 * adaptive Simpson to 1e-13·(width/13); the tail beyond 13 is below
 * 13²·f(13) < 1e-34. */
double qat_nm_gmse_exact(int n, int m) {
    QAT_ASSERT(n >= 1 && n < m);
    const int k = m - n - 1;
    double *lb = qat_xmalloc(sizeof(double) * (size_t)(k + 1));
    for (int j = 0; j <= k; j++) lb[j] = lgamma(m) - lgamma(j + 1.0) - lgamma(m - j + 0.0);
    const nm_ctx c = {m, k, lb};
    const double xmax = 13.0, tol = 1e-13;
    static const double tail[] = {2, 3, 4, 5, 6, 7, 8, 10, 13};
    double a = 0.0, fa = 0.0, total = 0.0;
    const int panels = 2 * m, nt = (int)(sizeof tail / sizeof *tail);
    for (int j = 1; j <= panels + nt; j++) {
        double b;
        if (j < panels) b = qat_norm_ppf(0.5 + 0.25 * j / m); /* F(b) = j/(2M) */
        else if (j - panels < nt) b = tail[j - panels];
        else break;
        if (b <= a) continue;
        double fb = nm_integrand(b, &c), fm = nm_integrand(0.5 * (a + b), &c);
        double s = (b - a) / 6.0 * (fa + 4.0 * fm + fb);
        total += nm_simpson(&c, a, b, fa, fm, fb, s, tol * (b - a) / xmax, 0);
        a = b, fa = fb;
    }
    free(lb);
    return total;
}

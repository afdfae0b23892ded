/*
 * compress/grid.h — scalar grids in RMS units and their exact Gaussian MSE.
 *
 * The training quantizers and the capacity numbers must agree on the grids, so
 * the constants (QuEST's α* table, the ternary and FP4 scales) and the exact
 * GMSE integral live here once. All levels are for a unit-RMS input; a row is
 * scaled by its RMS before use.
 */
#ifndef QAT_COMPRESS_GRID_H
#define QAT_COMPRESS_GRID_H

/* QuEST OPTIMAL_GAUSSIAN_SCALES: clip α*(b) in RMS units for int1..int8 (index b). */
extern const double QAT_INT_ALPHA[9];
/* Ternary level a/RMS and the FP4 E2M1 scale (multiplies {0, .5, 1, 1.5, 2, 3, 4, 6}). */
#define QAT_TERNARY_ALPHA 1.2240089519030855
#define QAT_FP4_SCALE 0.487079483934662
/* The E2M1 magnitudes in units of QAT_FP4_SCALE. */
extern const double QAT_FP4_MAGS[8];
/* The trust T the published FP4 runs really used (quest-unified.md §1.4): half the top
 * gap of QuEST's unconverged 16-level Lloyd–Max grid, not of the FP4 grid. Kept for
 * reference; qat's default is half the largest FP4 gap (= QAT_FP4_SCALE). */
#define QAT_FP4_TRUST_QUEST_CODE 0.3186

/* Standard normal pdf, cdf and inverse cdf (ppf accurate to ~1e-15 in (0,1)). */
double qat_norm_pdf(double x);
double qat_norm_cdf(double x);
double qat_norm_ppf(double p);

/* Exact E(ξ − Q(ξ))², ξ ~ N(0,1), for nearest-level rounding onto the sorted grid
 * c[0] < ... < c[n-1] (decision boundaries at the midpoints). */
double qat_grid_gmse(const double *c, int n);

/* The int-b grid with clip alpha (levels ±α/(2^b−1), ±3α/(2^b−1), ..., ±α) into c
 * (2^b doubles); returns the count. */
int qat_grid_int_levels(int bits, double alpha, double *c);

/* Exact GMSE of int-b at clip alpha / of ternary at level a / of FP4 at scale k. */
double qat_grid_int_gmse(int bits, double alpha);
double qat_grid_ternary_gmse(double a);
double qat_grid_fp4_gmse(double k);

/* Golden-section search for the minimum of f(x, ctx) on [a, b], f unimodal there:
 * stops when the bracket is at most tol wide or after max_iter steps; returns the
 * bracket's midpoint. The one implementation behind the int α check below and the
 * survivors' α of composites (gmse.c). */
double qat_golden_min(double (*f)(double x, const void *ctx), const void *ctx, double a, double b, double tol,
                      int max_iter);

/* The alpha minimising qat_grid_int_gmse (golden section), for checking the table. */
double qat_grid_int_alpha_opt(int bits);

/* Exact GMSE of unstructured magnitude sparsity s (fraction zeroed):
 * t = Φ⁻¹((1+s)/2), GMSE = (2Φ(t) − 1) − 2tφ(t). */
double qat_sparse_gmse_exact(double s);

/* Exact GMSE of N:M sparsity (keep the n largest |ξ| of every m consecutive
 * i.i.d. ξ ~ N(0,1), zero the rest), 1 <= n < m: the mean of the m − n smallest
 * squared order statistics of m half-normals over m, computed as
 * ∫ x²·2φ(x)·P(Bin(m − 1, F(x)) <= m − n − 1) dx, F(x) = erf(x/√2), to ~1e-13
 * absolute (formula and method in grid.c). 2:4 = 1/2 − 2/(√3·π) = 0.132447. */
double qat_nm_gmse_exact(int n, int m);

#endif

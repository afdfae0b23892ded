/*
 * compress/gmse.h — Gaussian MSE of a parsed format: closed form where one exists,
 * otherwise Monte Carlo through the training projection (project.h).
 */
#ifndef QAT_COMPRESS_GMSE_H
#define QAT_COMPRESS_GMSE_H

#include <stdint.h>

#include "compress/format.h"
#include "compress/project.h"

#define QAT_GMSE_DEFAULT_SAMPLES ((int64_t)1 << 21) /* ~2·10^6 as in estimators.md §7 */
#define QAT_GMSE_DEFAULT_SEED 20250601ull
#define QAT_GMSE_ROW 128 /* MC row length: one Hadamard block, as the reference numbers */

/* The value-stage scale in RMS units qat uses for f: α*(b) for int, the ternary
 * and FP4 constants, and for a composite SPARSE+VALUE the α that minimises the
 * composite's GMSE with the scale taken from the survivors' RMS (found once per
 * process by golden section on a fixed-seed Monte Carlo, then cached). 0 when the
 * format has no value stage. */
double qat_fmt_value_alpha(const qat_fmt *f);

/* Fill P for format f with its default value scale (α*(b), the survivors' α for
 * composites, ...), rms scale rule, whole-row units and no mask. Builds the vq
 * codebook if needed (cached). Lives here, not in project.c, because that α is found
 * through qat_proj_row: project.c stays below this file (no include cycle). */
void qat_proj_setup(qat_proj *P, const qat_fmt *f);

/* 1 and *g when f has a closed form (fp32, int, ternary, fp4, spNN, N:M, noise of those). */
int qat_fmt_gmse_exact(const qat_fmt *f, double *g);

/* Monte Carlo of the projection P: `samples` N(0,1) values (rounded up to whole
 * tensors of 256 rows), keyed by seed; *g the mean squared error per coordinate,
 * *se its standard error across tensors. */
void qat_proj_gmse_mc(const qat_proj *P, int64_t samples, uint64_t seed, double *g, double *se);

/* The mean of n >= 2 per-chunk errors x and its standard error, summed in
 * index order (the one estimate every Monte Carlo of a GMSE reports). */
void qat_mc_mean_se(const double *x, int64_t n, double *mean, double *se);

/* GMSE of a parsed format: exact when possible (se = 0), else Monte Carlo
 * (samples/seed 0 = defaults). */
void qat_fmt_gmse_parsed(const qat_fmt *f, int64_t samples, uint64_t seed, double *g, double *se);

#endif

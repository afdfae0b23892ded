/*
 * scaling/synth.h — synthetic runs from a known law, for the recovery test,
 * the benchmark and demonstrations: the only way to check that a fitter finds
 * constants is to hand it data whose constants are known.
 */
#ifndef QAT_SCALING_SYNTH_H
#define QAT_SCALING_SYNTH_H

#include <stdint.h>

#include "scaling/fit.h"

typedef struct {
    const char *w, *a;           /* weight and activation format */
    int n_terms;
    qat_cap_term terms[4];       /* their capacity terms (GMSE of docs/reference-numbers.md) */
} qat_fit_synth_pair;

/* Twelve pairs spanning quantization (weights only and W+A) and sparsity:
 * fp32/fp32, int1…int8 on weights, int2/int4 on both, sp25…sp90 on weights. */
extern const qat_fit_synth_pair qat_fit_synth_pairs[];
extern const int qat_fit_synth_npairs;

typedef struct {
    double A, alpha, B, beta, E;
    qat_cap_params cap[QAT_CAP_NTYPES]; /* true (L, F, C) per type */
    double noise;                        /* σ of the multiplicative log-normal noise on L */
    uint64_t seed;
} qat_fit_synth_law;

/* Append one run per (N, D/N ratio, pair): loss from the unified law, times
 * exp(noise·z) with z from qat_normal_at(seed, run index). */
void qat_fit_synth(qat_fit_runs *rs, const qat_fit_synth_law *law, const double *N, int nN, const double *ratio,
                   int nratio, const qat_fit_synth_pair *pairs, int npairs);

#endif

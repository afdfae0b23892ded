/*
 * compress/vq.h — Gaussian-optimal vector-quantization codebooks (vqDxB).
 *
 * A vqDxB weight row is rotated, divided by its RMS and cut into d-dim vectors,
 * each replaced by the nearest of K = 2^(d·b) codewords fitted to N(0, I_d). The
 * codebook is a fixed part of the format (zero storage per tensor), built once
 * per process by deterministic Lloyd/k-means (LBG splitting) on samples from a
 * fixed seed and cached, so every quantizer and `qat capacity` share it.
 */
#ifndef QAT_COMPRESS_VQ_H
#define QAT_COMPRESS_VQ_H

#include <math.h>
#include <stdint.h>

#include "core/rng.h"

typedef struct {
    int d;          /* vector dimension */
    int k;          /* number of codewords, 2^(d·b) */
    float *cw;      /* (k, d) codewords for unit-variance coordinates */
    float *soa;     /* (d, k) the same, transposed so the search vectorises over codewords */
    float *norm2;   /* (k) squared norms ‖c_j‖² */
    double radius;  /* default trust radius in RMS units: max‖c‖ + half the median nearest-neighbour gap */
    double fit_mse; /* per-coordinate MSE on the training samples (for diagnostics) */
} qat_vq_codebook;

/* The cached codebook for (d, bits); built on first use (thread-safe). d·bits <= 8. */
const qat_vq_codebook *qat_vq_get(int d, int bits);

/* The building blocks, shared with the learned codebooks of aq.h. */
/* Recompute soa and norm2 from cw (after cw changed). */
void qat_vq_refresh(qat_vq_codebook *cb);
/* One Lloyd pass over the n samples x (n, d): assign each to its nearest
 * codeword (into assign), then move every non-empty cell's codeword to its
 * mean (sums (k, d) and counts (k) are scratch), summed serially in sample
 * order so the codebook does not depend on the thread count. Returns the
 * per-coordinate MSE of the assignment. */
double qat_vq_lloyd_pass(qat_vq_codebook *cb, const float *x, int64_t n, int *assign, double *sums, int64_t *counts);
/* k-means++ seeding of all cb->k codewords from the samples x (n, d), drawing
 * from rng; d2 is (n) scratch. */
void qat_vq_kmeans_seed(qat_vq_codebook *cb, const float *x, int64_t n, qat_rng *rng, double *d2);

#endif

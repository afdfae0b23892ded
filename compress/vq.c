/*
 * compress/vq.c — building the Gaussian-optimal codebooks of vq.h.
 *
 * LBG: start from the mean, double the codebook by splitting every codeword
 * into two slightly perturbed copies, run Lloyd iterations after each split.
 * Splitting reaches good local optima for Gaussian sources without the seeding
 * luck of random initialisation, and it is deterministic given the sample seed.
 * The assignment step runs in parallel (each sample's nearest codeword does not
 * depend on the schedule); the centroid sums are accumulated serially in sample
 * order, so the codebook is bit-identical for any thread count.
 */
#include "compress/vq.h"
#include "compress/vq_search.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"

#define VQ_SEED 0x51C0DEB00Cull /* fixed: the codebook is part of the format */

static qat_vq_codebook *cache[9][9];
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

void qat_vq_refresh(qat_vq_codebook *cb) {
    for (int j = 0; j < cb->k; j++) {
        double s = 0;
        for (int t = 0; t < cb->d; t++) {
            float c = cb->cw[(int64_t)j * cb->d + t];
            cb->soa[(int64_t)t * cb->k + j] = c;
            s += (double)c * c;
        }
        cb->norm2[j] = (float)s;
    }
}

double qat_vq_lloyd_pass(qat_vq_codebook *cb, const float *x, int64_t n, int *assign, double *sums, int64_t *counts) {
    const int d = cb->d;
    double err = 0;
#pragma omp parallel for schedule(static) reduction(+ : err)
    for (int64_t i = 0; i < n; i++) {
        const float *v = x + i * d;
        int j = qat_vq_nearest(cb, v);
        assign[i] = j;
        double e = 0;
        for (int t = 0; t < d; t++) {
            double diff = (double)v[t] - cb->cw[(int64_t)j * d + t];
            e += diff * diff;
        }
        err += e;
    }
    memset(sums, 0, sizeof(double) * (size_t)cb->k * d);
    memset(counts, 0, sizeof(int64_t) * (size_t)cb->k);
    for (int64_t i = 0; i < n; i++) {
        int j = assign[i];
        counts[j]++;
        for (int t = 0; t < d; t++) sums[(int64_t)j * d + t] += x[i * d + t];
    }
    for (int j = 0; j < cb->k; j++)
        if (counts[j]) /* an empty cell keeps its codeword */
            for (int t = 0; t < d; t++) cb->cw[(int64_t)j * d + t] = (float)(sums[(int64_t)j * d + t] / counts[j]);
    qat_vq_refresh(cb);
    return err / ((double)n * d);
}

static qat_vq_codebook *build(int d, int bits) {
    const int K = 1 << (d * bits);
    /* ~1000 samples per cell keeps the fit within a few tenths of a percent of the
     * population optimum while a 256-codeword book builds in about a second on
     * two cores. */
    int64_t n = (int64_t)K * 1000;
    if (n < 65536) n = 65536;
    if (n > 262144) n = 262144;
    float *x = qat_xmalloc(sizeof(float) * (size_t)(n * d));
    for (int64_t i = 0; i < n * d; i++) x[i] = (float)qat_normal_at(VQ_SEED + (uint64_t)(d * 16 + bits), (uint64_t)i);

    qat_vq_codebook *cb = qat_xcalloc(1, sizeof *cb);
    cb->d = d;
    cb->cw = qat_xcalloc((size_t)K * d, sizeof(float));
    cb->soa = qat_xcalloc((size_t)K * d, sizeof(float));
    cb->norm2 = qat_xcalloc((size_t)K, sizeof(float));
    int *assign = qat_xmalloc(sizeof(int) * (size_t)n);
    double *sums = qat_xmalloc(sizeof(double) * (size_t)K * d);
    int64_t *counts = qat_xmalloc(sizeof(int64_t) * (size_t)K);
    qat_rng rng = qat_rng_make(VQ_SEED, (uint64_t)(d * 16 + bits));

    cb->k = 1; /* the mean of N(0, I) samples, ≈ 0 */
    qat_vq_refresh(cb);
    double mse = qat_vq_lloyd_pass(cb, x, n, assign, sums, counts);
    while (cb->k < K) {
        /* split: c → c ± δ with a small random δ (a multiplicative split would
         * leave the zero codeword of the first stage stuck at the origin) */
        int k = cb->k;
        for (int j = 0; j < k; j++)
            for (int t = 0; t < d; t++) {
                float delta = 0.05f * (float)qat_rng_normal(&rng);
                float c = cb->cw[(int64_t)j * d + t];
                cb->cw[(int64_t)j * d + t] = c + delta;
                cb->cw[(int64_t)(j + k) * d + t] = c - delta;
            }
        cb->k = 2 * k;
        qat_vq_refresh(cb);
        int iters = cb->k == K ? 60 : 20;
        double prev = INFINITY;
        for (int it = 0; it < iters; it++) {
            mse = qat_vq_lloyd_pass(cb, x, n, assign, sums, counts);
            if (prev - mse < 1e-5 * mse) break;
            prev = mse;
        }
    }
    cb->fit_mse = mse;

    /* default trust radius: the outermost codeword plus half a typical cell width */
    double maxn = 0;
    double *nn = qat_xmalloc(sizeof(double) * (size_t)K);
    for (int j = 0; j < K; j++) {
        maxn = fmax(maxn, sqrt(cb->norm2[j]));
        double best = INFINITY;
        for (int i = 0; i < K; i++) {
            if (i == j) continue;
            double s = 0;
            for (int t = 0; t < d; t++) {
                double diff = (double)cb->cw[(int64_t)i * d + t] - cb->cw[(int64_t)j * d + t];
                s += diff * diff;
            }
            best = fmin(best, s);
        }
        nn[j] = K > 1 ? sqrt(best) : 0.0;
    }
    /* median by insertion sort (K <= 256) */
    for (int i = 1; i < K; i++) {
        double v = nn[i];
        int j = i - 1;
        while (j >= 0 && nn[j] > v) { nn[j + 1] = nn[j]; j--; }
        nn[j + 1] = v;
    }
    cb->radius = maxn + 0.5 * nn[K / 2];
    free(nn);
    free(x);
    free(assign);
    free(sums);
    free(counts);
    return cb;
}

void qat_vq_kmeans_seed(qat_vq_codebook *cb, const float *x, int64_t n, qat_rng *rng, double *d2) {
    const int d = cb->d, K = cb->k;
    /* k-means++ (Arthur & Vassilvitskii 2007): the first centre uniformly, each
     * next one with probability proportional to its squared distance to the
     * nearest centre so far; serial in sample order, so the draw is a pure
     * function of the stream */
    int64_t first = (int64_t)qat_rng_below(rng, (uint64_t)n);
    memcpy(cb->cw, x + first * d, sizeof(float) * (size_t)d);
    for (int64_t i = 0; i < n; i++) d2[i] = INFINITY;
    for (int j = 1; j < K; j++) {
        const float *c = cb->cw + (int64_t)(j - 1) * d;
        double total = 0;
        for (int64_t i = 0; i < n; i++) {
            double e = 0;
            for (int t = 0; t < d; t++) {
                double diff = (double)x[i * d + t] - c[t];
                e += diff * diff;
            }
            if (e < d2[i]) d2[i] = e;
            total += d2[i];
        }
        int64_t pick = n - 1;
        if (total > 0) {
            double u = qat_rng_uniform(rng) * total, acc = 0;
            for (int64_t i = 0; i < n; i++) {
                acc += d2[i];
                if (acc > u) { pick = i; break; }
            }
        } else {
            pick = (int64_t)qat_rng_below(rng, (uint64_t)n); /* every sample is a centre already */
        }
        memcpy(cb->cw + (int64_t)j * d, x + pick * d, sizeof(float) * (size_t)d);
    }
    qat_vq_refresh(cb);
}

const qat_vq_codebook *qat_vq_get(int d, int bits) {
    QAT_ASSERT(d >= 1 && d <= 8 && bits >= 1 && d * bits <= 8);
    pthread_mutex_lock(&cache_lock);
    if (!cache[d][bits]) cache[d][bits] = build(d, bits);
    qat_vq_codebook *cb = cache[d][bits];
    pthread_mutex_unlock(&cache_lock);
    return cb;
}
